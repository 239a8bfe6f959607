/**
 * Tests for master.ts: a Master over real configuration files in a temp dir, with fake services
 * in the registry, real sockets on 127.0.0.1 and under $queue_directory/private.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setLogSink } from '../util/msg.ts';
import { Master } from './master.ts';
import { freePort } from '../../test/harness/free-port.ts';
import { loadConfigSet } from './master-config.ts';
import type { RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import type { ServiceRegistry } from './master-services.ts';

let dir: string;
const lines: string[] = [];
let restoreSink: ReturnType<typeof setLogSink>;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-master-'));
  restoreSink = setLogSink((l) => { lines.push(l); });
});
after(() => {
  setLogSink(restoreSink);
  rmSync(dir, { recursive: true, force: true });
});

/** Connect, read everything until the server closes. */
function fetch(opts: { port: number } | { path: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = 'port' in opts ? connect(opts.port, '127.0.0.1') : connect(opts.path);
    let data = '';
    sock.on('data', (d) => { data += d; });
    sock.on('end', () => resolve(data));
    sock.on('error', reject);
  });
}

const waitFor = async (what: string, cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; log:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A fake service: answers "<name>#<generation>:<listener>\n"; records what it was given. */
interface FakeState { starts: number; stops: number; reloads: number; wakeups: number; failStart: number; ctx?: ServiceContext; servers: Server[] }
function fakeImpl(name: string, st: FakeState, withReload = false): ServiceImpl {
  return {
    name,
    async start(ctx) {
      st.starts++;
      if (st.failStart > 0) { st.failStart--; throw new Error('cannot open the database'); }
      const gen = st.starts;
      st.ctx = ctx;
      st.servers = ctx.listeners.map((l) => l.server);
      for (const l of ctx.listeners) l.accept((sock) => sock.end(`${name}#${gen}:${l.name}\n`));
      const r: RunningService = {
        async stop() { st.stops++; },
        wakeup() { st.wakeups++; },
      };
      if (withReload) r.reload = async (c) => { st.reloads++; st.ctx = c; };
      return r;
    },
  };
}

const newState = (): FakeState => ({ starts: 0, stops: 0, reloads: 0, wakeups: 0, failStart: 0, servers: [] });

function writeConfig(smtpPort: number, imapPort: number, extraMain = '', extraMaster = ''): void {
  writeFileSync(join(dir, 'main.cf'), `queue_directory = ${dir}/queue\ninet_interfaces = loopback-only\ninet_protocols = ipv4\nservice_throttle_time = 1s\n${extraMain}`);
  writeFileSync(join(dir, 'master.cf'), [
    `127.0.0.1:${smtpPort} inet n - n - - smtpd`,
    'cleanup unix n - n 1 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'oqmgr unix n - n 300 1 oqmgr',
    '  -o syslog_name=postfix/oqmgr',
    extraMaster,
  ].join('\n') + '\n');
  writeFileSync(join(dir, 'dovecot.conf'), `protocols = imap\nlisten = 127.0.0.1\nservice imap-login {\n  inet_listener imap {\n    port = ${imapPort}\n  }\n  inet_listener imaps {\n    port = 0\n  }\n}\n`);
}

test('start, route, restart after a failure, reload, stop', async () => {
  const smtpPort = await freePort();
  const imapPort = await freePort();
  writeConfig(smtpPort, imapPort);
  const smtpd = newState();
  const cleanup = newState();
  const imapd = newState();
  const registry: ServiceRegistry = {
    smtpd: async () => fakeImpl('smtpd', smtpd),
    cleanup: async () => fakeImpl('cleanup', cleanup, true),
    imapd: async () => fakeImpl('imapd', imapd),
  };
  cleanup.failStart = 1;   // the first start fails: "bad command startup -- throttling"
  const master = new Master({ configDir: dir, load: () => loadConfigSet(dir), registry, restartDelay: 50 });
  await master.start();
  try {
    // One warning for what Postern never runs, one info line for what it lacks yet.
    assert.equal(lines.filter((l) => l.includes('warning: master.cf: services not implemented by Postern, skipped: oqmgr(line 4)')).length, 1);
    assert.ok(lines.some((l) => /postern\/master\[\d+\]: services not available yet in this version of Postern, skipped: qmgr\(line 3\)$/.test(l)));
    assert.ok(lines.some((l) => l.endsWith(`daemon started -- version 0.1.0, configuration ${dir}`)));

    assert.equal(await fetch({ port: smtpPort }), `smtpd#1:127.0.0.1:${smtpPort}\n`);
    assert.equal(await fetch({ port: imapPort }), 'imapd#1:imap\n');
    assert.equal(imapd.ctx?.protocol, 'imap');
    assert.equal(imapd.ctx?.listeners.length, 1, 'port = 0 disables the imaps listener');
    assert.equal(smtpd.ctx?.config.get('queue_directory'), `${dir}/queue`);

    // cleanup failed at start, then came back after the backoff.
    assert.ok(lines.some((l) => l.includes('warning: cleanup/unix: cleanup: cannot open the database')));
    assert.ok(lines.some((l) => /warning: process postern\/cleanup pid \d+ exit status 1$/.test(l)));
    assert.ok(lines.some((l) => l.includes('warning: postern/cleanup: bad command startup -- throttling for 50ms')));
    const sockPath = join(dir, 'queue', 'public', 'cleanup');
    await waitFor('cleanup restart', () => cleanup.starts === 2);
    assert.equal(await fetch({ path: sockPath }), 'cleanup#2:cleanup\n');

    // wakeup every second (master.cf column 6).
    await waitFor('wakeup', () => cleanup.wakeups > 0, 2500);

    // A running service that fails is restarted; the socket stays the same.
    const before = smtpd.servers[0];
    smtpd.ctx!.failed(new Error('out of file descriptors'));
    assert.ok(lines.some((l) => l.includes('warning: 127.0.0.1:' + smtpPort + '/inet: smtpd: out of file descriptors')));
    assert.ok(lines.some((l) => l.includes('warning: postern/smtpd: restarting in 50ms')));
    await waitFor('smtpd restart', () => smtpd.starts === 2);
    assert.equal(await fetch({ port: smtpPort }), `smtpd#2:127.0.0.1:${smtpPort}\n`);
    assert.equal(smtpd.servers[0], before);
    assert.equal(smtpd.stops, 1);

    // Reload with nothing changed: nothing restarts.
    await master.reload();
    assert.ok(lines.some((l) => l.endsWith(`reload -- version 0.1.0, configuration ${dir}`)));
    assert.deepEqual([smtpd.starts, cleanup.starts, cleanup.reloads, imapd.starts], [2, 2, 0, 1]);

    // main.cf changed: smtpd restarts on the same socket, cleanup gets reload(ctx).
    writeConfig(smtpPort, imapPort, 'myhostname = changed.example\n');
    await master.reload();
    assert.deepEqual([smtpd.starts, smtpd.stops, cleanup.starts, cleanup.reloads, imapd.starts], [3, 2, 2, 1, 2]);
    assert.equal(smtpd.servers[0], before, 'listener kept across reload');
    assert.equal(smtpd.ctx?.config.get('myhostname'), 'changed.example');
    assert.equal(cleanup.ctx?.config.get('myhostname'), 'changed.example');
    assert.equal(await fetch({ port: smtpPort }), `smtpd#3:127.0.0.1:${smtpPort}\n`);
    assert.equal(await fetch({ path: sockPath }), 'cleanup#2:cleanup\n', 'reload() kept the instance');

    // A broken master.cf keeps the running configuration.
    writeFileSync(join(dir, 'master.cf'), 'smtp inet n - n - - smtpd\nbroken line\n');
    await master.reload();
    assert.ok(lines.some((l) => /error: reload failed: .*master\.cf, line 2: bad field count.*keeping the running configuration/.test(l)));
    assert.equal(await fetch({ port: smtpPort }), `smtpd#3:127.0.0.1:${smtpPort}\n`);

    // A new port: bound, the old one closed.
    const newPort = await freePort();
    writeConfig(newPort, imapPort, 'myhostname = changed.example\n');
    await master.reload();
    assert.equal(await fetch({ port: newPort }), `smtpd#4:127.0.0.1:${newPort}\n`);
    await assert.rejects(fetch({ port: smtpPort }), /ECONNREFUSED/);
  } finally {
    await master.stop();
  }
  assert.equal(smtpd.stops, smtpd.starts);
  assert.equal(imapd.stops, imapd.starts);
  assert.equal(existsSync(join(dir, 'queue', 'public', 'cleanup')), false, 'socket file removed');
  await assert.rejects(fetch({ port: imapPort }), /ECONNREFUSED/);
});

test('a port in use stops the start with the master.cf line to change, and nothing keeps running', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as AddressInfo).port;
  const imapPort = await freePort();
  writeConfig(port, imapPort);
  const st = newState();
  const master = new Master({
    configDir: dir, load: () => loadConfigSet(dir), restartDelay: 50,
    registry: { smtpd: async () => fakeImpl('smtpd', st), imapd: async () => fakeImpl('imapd', st) },
  });
  try {
    await assert.rejects(master.start(), (err: Error) => {
      assert.equal(err.name, 'ListenError');
      assert.equal(err.message, `bind 127.0.0.1:${port}: address already in use; change the service name "127.0.0.1:${port}" in ${dir}/master.cf, line 1, or stop the program using it`);
      return true;
    });
    assert.equal(st.starts, 0);
    // The imap socket bound before the failure was released again.
    const s = createServer();
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(imapPort, '127.0.0.1', resolve); });
    await new Promise((r) => s.close(r));
  } finally {
    blocker.close();
  }
});

test('a Dovecot listener port in use names the inet_listener in dovecot.conf', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as AddressInfo).port;
  writeConfig(await freePort(), port);
  const st = newState();
  const master = new Master({ configDir: dir, load: () => loadConfigSet(dir), registry: { imapd: async () => fakeImpl('imapd', st) } });
  try {
    await assert.rejects(master.start(), new RegExp(`bind 127\\.0\\.0\\.1:${port}: address already in use; change "port = ${port}" of inet_listener imap in service imap-login of ${dir}/dovecot.conf`));
  } finally {
    blocker.close();
  }
});

test('the restart backoff measures a service\'s life on the monotonic clock: a wall clock stepped back does not keep it growing', async (t) => {
  writeConfig(await freePort(), await freePort());
  const smtpd = newState();
  const master = new Master({ configDir: dir, load: () => loadConfigSet(dir), registry: { smtpd: async () => fakeImpl('smtpd', smtpd) }, restartDelay: 50 });
  await master.start();
  try {
    const mark = lines.length;
    // A failure at once: the first restart after 50 ms, the next one would wait 100 ms...
    smtpd.ctx!.failed(new Error('first'));
    await waitFor('smtpd restart', () => smtpd.starts === 2);
    // ...unless the service ran for service_throttle_time (1s) first, which resets the backoff,
    // even though the wall clock was stepped back an hour meanwhile (NTP, an administrator).
    const wall = Date.now;
    t.mock.method(Date, 'now', () => wall() - 3600_000);
    await new Promise((r) => setTimeout(r, 1100));
    smtpd.ctx!.failed(new Error('second'));
    const restarts = lines.slice(mark).filter((l) => l.includes('warning: postern/smtpd: restarting in'));
    assert.deepEqual(restarts.map((l) => l.replace(/.*restarting in /, '')), ['50ms', '50ms']);
    await waitFor('smtpd restart', () => smtpd.starts === 3);
  } finally {
    await master.stop();
  }
});
