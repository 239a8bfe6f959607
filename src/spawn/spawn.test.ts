/**
 * spawn(8) on a real unix socket with real commands: the connection is the command's stdin and
 * stdout (/bin/cat echoes), maxproc bounds the commands running at once (the next connection
 * waits), a command that cannot be started is logged and its connection closed, and entries
 * without user=/argv= or with user=root are configuration errors.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../global/mail-conf.ts';
import { parseMasterCf } from '../global/master-cf.ts';
import { logger, setLogSink } from '../util/msg.ts';
import type { RunningService, ServiceContext } from '../lib-master/master-service.ts';
import { service, spawnAttrs } from './spawn.ts';

const lines: string[] = [];
setLogSink((l) => lines.push(l));
const dir = mkdtempSync(join(tmpdir(), 'postern-spawn-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function start(entryLine: string): Promise<{ path: string; running: RunningService; server: Server }> {
  const entry = parseMasterCf(entryLine + '\n', join(dir, 'master.cf'))[0]!;
  const path = join(dir, `${entry.service}.sock`);
  let handler: (s: Socket) => void = (s) => s.destroy();
  const server = createServer((s) => handler(s));
  await new Promise<void>((r) => server.listen(path, r));
  const ctx = {
    config: MainConfig.parse(`queue_directory = ${dir}\n`, join(dir, 'main.cf'), dir),
    entry, masterCf: [entry], log: logger(entry.service), failed: () => {},
    listeners: [{ kind: 'unix', name: entry.service, ssl: false, address: path, server, accept: (h: (s: Socket) => void) => { handler = h; } }],
  } as unknown as ServiceContext;
  const running = await service.start(ctx);
  return { path, running, server };
}

/** Send, then read until `expect` bytes came back or the connection closed; no half-close. */
function talk(path: string, send: string, expect: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ path });
    let got = '';
    const done = () => { s.destroy(); resolve(got); };
    s.on('data', (d) => { got += d.toString(); if (got.length >= expect) done(); });
    s.on('close', done);
    s.on('error', () => { /* closed by the other side first */ });
    s.write(send);
  });
}

test('the connection is the command\'s stdin and stdout', async () => {
  const { path, running, server } = await start('echo unix - n n - 0 spawn user=nobody argv=/bin/cat');
  try {
    assert.equal(await talk(path, 'request=smtpd_access_policy\n\n', 29), 'request=smtpd_access_policy\n\n');
  } finally { await running.stop(); server.close(); }
});

test('maxproc: a second connection waits until the first command ends', async () => {
  const { path, running, server } = await start('one unix - n n - 1 spawn user=nobody argv=/bin/sh -c {read x; echo "$x"}');
  const a = connect({ path });
  const b = connect({ path });
  let bGot = '';
  b.on('data', (d) => { bGot += d.toString(); });
  b.write('second\n');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(bGot, '', 'the second command has not started');
  let aGot = '';
  a.on('data', (d) => { aGot += d.toString(); });
  a.write('first\n');
  await new Promise<void>((r) => b.on('end', () => r()));
  assert.equal(aGot, 'first\n');
  assert.equal(bGot, 'second\n');
  a.destroy(); b.destroy();
  await running.stop();
  server.close();
  assert.ok(!lines.some((l) => /one\[\d+\]: warning/.test(l)), 'both commands ended normally');
});

test('a command that cannot be started: logged, the connection closed', async () => {
  const { path, running, server } = await start('gone unix - n n - 0 spawn user=nobody argv=/nonexistent/policyd');
  try {
    assert.equal(await talk(path, 'x\n', 1), '');
    assert.ok(lines.some((l) => /gone\[\d+\]: warning: command \/nonexistent\/policyd: spawn \/nonexistent\/policyd ENOENT/.test(l)), lines.join('\n'));
  } finally { await running.stop(); server.close(); }
});

test('user= and argv= are required; root is refused', () => {
  const e = (l: string) => parseMasterCf(l + '\n', join(dir, 'master.cf'))[0]!;
  assert.throws(() => spawnAttrs(e('p unix - n n - 0 spawn argv=/bin/true')), /missing user= command-line attribute/);
  assert.throws(() => spawnAttrs(e('p unix - n n - 0 spawn user=nobody')), /missing argv= command-line attribute/);
  assert.throws(() => spawnAttrs(e('p unix - n n - 0 spawn user=root argv=/bin/true')), /specifies root privileges/);
  assert.throws(() => spawnAttrs(e('p unix - n n - 0 spawn flags=R user=nobody argv=/bin/true')), /unknown attribute name: flags=R/);
  assert.deepEqual(spawnAttrs(e('p unix - n n - 0 spawn user=nobody:nogroup argv=/usr/bin/policyd-spf /etc/x.conf')),
    { user: 'nobody', group: 'nogroup', argv: ['/usr/bin/policyd-spf', '/etc/x.conf'] });
});
