/**
 * Tests for triggers across the master's threads and child processes (mail-trigger.ts,
 * master-thread.ts, master-process.ts): a trigger for a service that runs in a worker thread or
 * a child process reaches it, and a trigger that service sends and nobody listens to there
 * comes back to the master's thread (how smtpd in a child names a new queue file to qmgr).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { setLogSink } from '../util/msg.ts';
import { onTrigger, trigger } from '../global/mail-trigger.ts';
import { Master } from './master.ts';
import { loadConfigSet } from './master-config.ts';
import type { ServiceRegistry } from './master-services.ts';

let dir: string;
const lines: string[] = [];
let restoreSink: ReturnType<typeof setLogSink>;
const registry: ServiceRegistry = { qmgr: async () => (await import('./testdata/trigger-service.ts')).service };
const modules = { qmgr: './testdata/trigger-service.ts' };

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-mtrig-'));
  restoreSink = setLogSink((l) => { lines.push(l); });
});
after(() => {
  setLogSink(restoreSink);
  rmSync(dir, { recursive: true, force: true });
});

async function pingPong(mode: string): Promise<string> {
  const conf = join(dir, mode);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(conf, { recursive: true });
  writeFileSync(join(conf, 'main.cf'), `queue_directory = ${conf}/queue\ninet_interfaces = loopback-only\ninet_protocols = ipv4\n`);
  writeFileSync(join(conf, 'master.cf'), `qmgr unix n - n 300 1 qmgr -o postern_process_mode=${mode}\n`);
  writeFileSync(join(conf, 'dovecot.conf'), 'protocols =\n');
  const master = new Master({ configDir: conf, load: () => loadConfigSet(conf), registry, modules, restartDelay: 100 });
  const pongs: string[] = [];
  const off = onTrigger('pong', (w) => { pongs.push(w); });
  await master.start();
  try {
    assert.equal(trigger('qmgr', `ping:${mode}`), true, 'somebody listens for qmgr in the master');
    const end = Date.now() + 10_000;
    while (pongs.length === 0) {
      if (Date.now() > end) assert.fail(`no pong from the ${mode} service; log:\n${lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(pongs.length, 1, `exactly one answer: ${pongs.join(' | ')}`);
    return pongs[0]!;
  } finally {
    off();
    await master.stop();
  }
}

test('a trigger reaches qmgr in a worker thread, and its own trigger comes back to the master', async () => {
  const pong = await pingPong('thread');
  const m = /^thread pid=(\d+) thread=(\d+)$/.exec(pong);
  assert.ok(m, pong);
  assert.equal(Number(m[1]), process.pid);
  assert.notEqual(Number(m[2]), threadId, 'answered from another thread');
});

test('a trigger reaches qmgr in a child process, and its own trigger comes back to the master', async () => {
  const pong = await pingPong('process');
  const m = /^process pid=(\d+) thread=0$/.exec(pong);
  assert.ok(m, pong);
  assert.notEqual(Number(m[1]), process.pid, 'answered from another process');
});

test('inline: the trigger is a call in the same thread', async () => {
  assert.equal(await pingPong('inline'), `inline pid=${process.pid} thread=${threadId}`);
});
