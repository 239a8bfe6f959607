/**
 * Tests for master-process.ts through the Master: a service (testdata/echo-service.ts) run with
 * `-o postern_process_mode=process` on a TCP and a unix socket bound by the master. The child's
 * pid differs from ours; bytes a client sends before the greeting reach the child (the master
 * reads nothing); a SIGKILLed child is logged with its own pid and signal and restarted while
 * waiting clients are held; stop lets a running session finish; the status file lists the pids;
 * a bad mode is a configuration error.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setLogSink } from '../util/msg.ts';
import { Master } from './master.ts';
import { freePort } from '../../test/harness/free-port.ts';
import { loadConfigSet } from './master-config.ts';
import { parseServiceStatus } from './master-status.ts';
import type { ServiceRegistry } from './master-services.ts';

let dir: string;
const lines: string[] = [];
let restoreSink: ReturnType<typeof setLogSink>;
const registry: ServiceRegistry = { smtpd: async () => (await import('./testdata/echo-service.ts')).service };
const modules = { smtpd: './testdata/echo-service.ts' };

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-mproc-'));
  restoreSink = setLogSink((l) => { lines.push(l); });
});
after(() => {
  setLogSink(restoreSink);
  rmSync(dir, { recursive: true, force: true });
});

/** A line-reading client. */
class Client {
  readonly sock: Socket;
  private buf = '';
  private waiters: (() => void)[] = [];
  closed = false;
  constructor(target: { port: number } | { path: string }, first?: string) {
    this.sock = 'port' in target ? connect(target.port, '127.0.0.1') : connect(target.path);
    this.sock.setEncoding('latin1');
    if (first) this.sock.write(first);
    this.sock.on('data', (d: string) => { this.buf += d; this.waiters.splice(0).forEach((w) => w()); });
    this.sock.on('close', () => { this.closed = true; this.waiters.splice(0).forEach((w) => w()); });
    this.sock.on('error', () => {});
  }
  async line(ms = 10_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.buf.indexOf('\n');
      if (i >= 0) { const l = this.buf.slice(0, i); this.buf = this.buf.slice(i + 1); return l; }
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > end) throw new Error('no line in time');
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
  }
  send(l: string): void { this.sock.write(l + '\n'); }
}

const waitFor = async (what: string, cond: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; log:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

function writeConfig(port: number, mode = 'process'): void {
  writeFileSync(join(dir, 'main.cf'), `queue_directory = ${dir}/queue\ninet_interfaces = loopback-only\ninet_protocols = ipv4\nservice_throttle_time = 2s\n`);
  writeFileSync(join(dir, 'master.cf'), [
    `127.0.0.1:${port} inet n - n - - smtpd -o postern_process_mode=${mode}`,
    `echo unix - - n - - smtpd -o postern_process_mode=${mode}`,
  ].join('\n') + '\n');
  writeFileSync(join(dir, 'dovecot.conf'), 'protocols =\n');
}

test('a service in a child process: connections over IPC, kill and restart, graceful stop, status', async () => {
  const port = await freePort();
  writeConfig(port);
  const statusFile = join(dir, 'services');
  const master = new Master({ configDir: dir, load: () => loadConfigSet(dir), registry, modules, restartDelay: 100, statusFile });
  await master.start();
  let stopped = false;
  try {
    const status = () => parseServiceStatus(readFileSync(statusFile, 'utf8'));
    const inet = status().find((s) => s.key.endsWith('/inet'))!;
    assert.equal(inet.mode, 'process');
    assert.equal(inet.running, true);
    assert.equal(inet.pids.length, 1);
    const childPid = inet.pids[0]!;
    assert.notEqual(childPid, process.pid, 'the service runs in another process');
    assert.deepEqual(master.services().find((s) => s.key.endsWith('/inet'))!.pids, [childPid]);

    // The client speaks first (as with implicit TLS): those bytes must reach the child.
    const c1 = new Client({ port }, 'early\n');
    assert.equal(await c1.line(), `hello 127.0.0.1:${port} pid=${childPid}`);
    assert.equal(await c1.line(), 'echo early');
    c1.send('QUIT');
    assert.equal(await c1.line(), 'bye');

    // The unix-socket listener (an LMTP-like service) works the same way, in its own child.
    const u = new Client({ path: join(dir, 'queue', 'private', 'echo') });
    const hello = await u.line();
    const unixPid = Number(/pid=(\d+)/.exec(hello)![1]);
    assert.notEqual(unixPid, process.pid);
    assert.notEqual(unixPid, childPid, 'each master.cf entry has its own child');
    u.send('QUIT');
    assert.equal(await u.line(), 'bye');

    // SIGKILL the child: the master logs Postfix's line with the CHILD's pid, restarts it;
    // a client connecting meanwhile waits for the new child.
    const open = new Client({ port });
    await open.line();
    process.kill(childPid, 'SIGKILL');
    await waitFor('the exit line', () => lines.some((l) => l.includes(`warning: process postern/smtpd pid ${childPid} killed by signal 9`)));
    assert.ok(lines.some((l) => l.includes('warning: postern/smtpd: restarting in')), 'restart scheduled');
    const during = new Client({ port }, 'waited\n');
    const h2 = await during.line();
    const newPid = Number(/pid=(\d+)/.exec(h2)![1]);
    assert.ok(newPid !== childPid && newPid !== process.pid, `a new child (${h2})`);
    assert.equal(await during.line(), 'echo waited');
    await waitFor('the session of the killed child to end', () => open.closed);
    await waitFor('the status file to show the new pid', () => status().find((s) => s.key.endsWith('/inet'))?.pids[0] === newPid);

    // ctx.failed() inside the child: reported with the child's pid, exit status 1.
    during.send('FAIL');
    assert.equal(await during.line(), 'failing');
    await waitFor('the failure line', () => lines.some((l) => l.includes(`warning: process postern/smtpd pid ${newPid} exit status 1`)));
    let third = 0;
    await waitFor('a third child', () => { third = status().find((s) => s.key.endsWith('/inet'))?.pids[0] ?? 0; return third !== 0 && third !== newPid; });

    // Graceful stop: a session in progress finishes in the child.
    const slow = new Client({ port });
    assert.match(await slow.line(), new RegExp(`pid=${third}$`));
    slow.send('SLOW');
    await new Promise((r) => setTimeout(r, 50));
    const stopping = master.stop();
    assert.equal(await slow.line(), 'slow done', 'the running session finishes after stop');
    slow.send('QUIT');
    assert.equal(await slow.line(), 'bye');
    await stopping;
    stopped = true;
    await waitFor('the child to exit', () => { try { process.kill(third, 0); return false; } catch { return true; } });
    assert.deepEqual(status(), [], 'the status file is empty after stop');
  } finally {
    if (!stopped) await master.stop();
  }
});

test('an unknown postern_process_mode is a configuration error naming the master.cf line', async () => {
  writeConfig(await freePort(), 'fork');
  const master = new Master({ configDir: dir, load: () => loadConfigSet(dir), registry, modules, restartDelay: 100 });
  await assert.rejects(master.start(), /master\.cf, line 1: -o postern_process_mode=fork: not one of inline, thread, process/);
  await master.stop();
});

test('postern_process_count=2: connections are shared out between two children; one dying is replaced alone while the other serves', async () => {
  const port = await freePort();
  writeConfig(port);
  writeFileSync(join(dir, 'master.cf'), `127.0.0.1:${port} inet n - n 10 - smtpd -o postern_process_mode=process -o postern_process_count=2\n`
    + 'echo2 unix - - n - - smtpd -o postern_process_mode=process -o postern_process_count=2\n');
  const statusFile = join(dir, 'services2');
  const mark = lines.length;
  let survivor = 0;
  const survivorPid = () => survivor;
  const master = new Master({ configDir: dir, load: () => loadConfigSet(dir), registry, modules, restartDelay: 100, statusFile });
  await master.start();
  try {
    const pids = parseServiceStatus(readFileSync(statusFile, 'utf8'))[0]!.pids;
    assert.equal(pids.length, 2, 'two children');
    // Both entries run in the same two worker processes (master-pool.ts), not two each.
    assert.deepEqual([...parseServiceStatus(readFileSync(statusFile, 'utf8'))[1]!.pids].sort(), [...pids].sort(), 'one pool for both services');
    const u = new Client({ path: join(dir, 'queue', 'private', 'echo2') });
    assert.ok(pids.includes(Number(/pid=(\d+)/.exec(await u.line())![1])), 'the unix-socket service answers from a pool worker');
    u.sock.destroy();
    const seen = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const c = new Client({ port });
      seen.add(Number(/pid=(\d+)/.exec(await c.line())![1]));
      c.send('QUIT');
      await c.line();
    }
    assert.deepEqual([...seen].sort(), [...pids].sort(), 'round robin over both children');
    // A session open on the survivor is not disturbed by its sibling's death.
    let onSurvivor: Client | undefined;
    for (let i = 0; i < 2 && !onSurvivor; i++) {
      const c = new Client({ port });
      if ((await c.line()).endsWith(`pid=${pids[1]}`)) onSurvivor = c; else c.sock.destroy();
    }
    assert.ok(onSurvivor, 'a session on the second child');
    process.kill(pids[0]!, 'SIGKILL');
    await waitFor('the exit line', () => lines.some((l) => l.includes(`warning: process postern/smtpd pid ${pids[0]} killed by signal 9`)));
    assert.ok(lines.some((l) => l.includes('warning: postern/worker: restarting one of 2 processes in')), 'only the dead child is restarted');
    // Meanwhile the other child takes every connection.
    const during = new Client({ port });
    assert.equal(await during.line(), `hello 127.0.0.1:${port} pid=${pids[1]}`);
    during.send('QUIT');
    assert.equal(await during.line(), 'bye');
    onSurvivor.send('ping');
    assert.equal(await onSurvivor.line(), 'echo ping', 'the survivor\'s session goes on');
    onSurvivor.send('QUIT');
    await onSurvivor.line();
    await waitFor('a new child beside the survivor', () => {
      const now = parseServiceStatus(readFileSync(statusFile, 'utf8'))[0]?.pids ?? [];
      return now.length === 2 && !now.includes(pids[0]!) && now.includes(pids[1]!);
    });
    process.kill(pids[1]!, 0);   // still alive: throws otherwise
    survivor = pids[1]!;
    assert.ok(!lines.slice(mark).some((l) => /postern\/smtpd: restarting in/.test(l)), 'the service as a whole was not restarted');
  } finally {
    await master.stop();
  }
  // Once no service uses the pool, its workers exit.
  const last = parseServiceStatus(readFileSync(statusFile, 'utf8'));
  assert.deepEqual(last, [], 'stopped');
  await waitFor('the workers to exit', () => { try { process.kill(survivorPid(), 0); return false; } catch { return true; } });
});

test('postern_process_count=2: with both workers killed, a connection waits in the master for the first one back; an instance that fails is restarted in its worker alone', async () => {
  const port = await freePort();
  writeConfig(port);
  writeFileSync(join(dir, 'master.cf'), `127.0.0.1:${port} inet n - n 10 - smtpd -o postern_process_mode=process -o postern_process_count=2\n`);
  const statusFile = join(dir, 'services3');
  const mark = lines.length;
  const master = new Master({ configDir: dir, load: () => loadConfigSet(dir), registry, modules, restartDelay: 100, statusFile });
  await master.start();
  try {
    const pids = () => parseServiceStatus(readFileSync(statusFile, 'utf8'))[0]?.pids ?? [];
    const first = pids();
    assert.equal(first.length, 2);
    // ctx.failed() in one worker: that instance is stopped and started again there; the
    // worker process and its sibling keep running.
    const f = new Client({ port });
    const fPid = Number(/pid=(\d+)/.exec(await f.line())![1]);
    // A session of that instance stays open through the restart (the old instance drains it).
    let keep: Client | undefined;
    for (let i = 0; i < 4 && !keep; i++) {
      const c = new Client({ port });
      if ((await c.line()).endsWith(`pid=${fPid}`)) keep = c; else c.sock.destroy();
    }
    assert.ok(keep, 'a second session in the same worker');
    f.send('FAIL');
    await waitFor('the instance restart', () => lines.slice(mark).some((l) => l.includes(`postern/smtpd: restarting in process ${fPid} in`)));
    const other = new Client({ port });
    assert.match(await other.line(), /^hello /, 'the service still answers');
    other.sock.destroy();
    // After its backoff the instance serves again in the same worker process, also once the
    // old instance has finished its last session and stopped.
    const servesAgain = async () => {
      const end = Date.now() + 10_000;
      for (;;) {
        const c = new Client({ port });
        const pid = Number(/pid=(\d+)/.exec(await c.line())![1]);
        c.sock.destroy();
        if (pid === fPid) return;
        assert.ok(Date.now() < end, 'the failed instance did not serve again in its worker');
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await servesAgain();
    keep.send('QUIT');
    assert.equal(await keep.line(), 'bye');
    await new Promise((r) => setTimeout(r, 500));
    await servesAgain();
    assert.deepEqual([...pids()].sort(), [...first].sort(), 'no process was replaced');

    // Both workers killed at once: the listening socket stays; a client connecting meanwhile
    // is held by the master and answered by the first worker back.
    for (const p of first) process.kill(p, 'SIGKILL');
    await waitFor('both exits', () => first.every((p) => lines.slice(mark).some((l) => l.includes(`process postern/smtpd pid ${p} killed by signal 9`))));
    const held = new Client({ port });
    const hello = await held.line(15_000);
    const newPid = Number(/pid=(\d+)/.exec(hello)![1]);
    assert.ok(!first.includes(newPid), `answered by a new worker (${hello})`);
    held.send('QUIT');
    assert.equal(await held.line(), 'bye');
    await waitFor('two new workers', () => pids().length === 2 && pids().every((p) => !first.includes(p)));
  } finally {
    await master.stop();
  }
});

test('a bad postern_process_count is a configuration error naming the setting', async () => {
  const port = await freePort();
  writeConfig(port);
  writeFileSync(join(dir, 'master.cf'), `127.0.0.1:${port} inet n - n - - smtpd -o postern_process_count=two\n`);
  const m1 = new Master({ configDir: dir, load: () => loadConfigSet(dir), registry, modules });
  await assert.rejects(m1.start(), /master\.cf, line 1: -o postern_process_count=two: not a number of processes \(1 or more; at most 64 are used\)/);
  await m1.stop();
  writeConfig(port, 'inline');
  writeFileSync(join(dir, 'main.cf'), `${readFileSync(join(dir, 'main.cf'), 'utf8')}postern_process_count = 0\n`);
  const m2 = new Master({ configDir: dir, load: () => loadConfigSet(dir), registry, modules });
  await assert.rejects(m2.start(), /main\.cf.*postern_process_count = 0: not a number of processes/);
  await m2.stop();
});

test('postern_process_mode=thread on a service that accepts connections is refused at start and at reload, naming the service and the setting', async () => {
  const port = await freePort();
  writeConfig(port, 'thread');
  const master = new Master({ configDir: dir, load: () => loadConfigSet(dir), registry, modules, restartDelay: 100 });
  await assert.rejects(master.start(), /master\.cf, line 1: -o postern_process_mode=thread: smtpd cannot run in a worker thread: it accepts connections, which a thread is never given \(only qmgr and pickup can\); use process or inline/);
  await master.stop();

  // Running inline; a reload that asks for a thread keeps the running service and says why.
  writeConfig(port, 'inline');
  const m2 = new Master({ configDir: dir, load: () => loadConfigSet(dir), registry, modules, restartDelay: 100 });
  await m2.start();
  try {
    const before = lines.length;
    writeConfig(port, 'thread');
    await m2.reload();
    const said = lines.slice(before).join('\n');
    assert.match(said, /reload: 127\.0\.0\.1:\d+\/inet: \S*master\.cf, line 1: -o postern_process_mode=thread: smtpd cannot run in a worker thread.*; keeping the old service/);
    const c = new Client({ port });
    assert.match(await c.line(), /^hello /, 'the running service still greets');
    c.sock.destroy();
  } finally {
    await m2.stop();
  }
});
