/**
 * Tests for master-session.ts: the session limit (master.cf maxproc) with waiting connections,
 * Postfix's process-limit warning, failing sessions, and a graceful stop with a drain timeout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { logger, setLogSink } from '../util/msg.ts';
import { bindListen } from '../master/master-listen.ts';
import type { ServiceContext } from './master-service.ts';
import { serveSessions } from './master-session.ts';

async function setup(maxproc: number) {
  const b = await bindListen({ kind: 'inet', name: 'smtp', ssl: false, addresses: ['127.0.0.1'], port: 0, where: 'x' }, logger('master'));
  const server = b.servers[0]!.server;
  const port = (server.address() as AddressInfo).port;
  const ctx = {
    entry: { service: 'smtp', maxproc },
    log: logger('smtpd'),
    listeners: [{ kind: 'inet', name: 'smtp', ssl: false, address: `127.0.0.1:${port}`, server, accept: (h: (s: Socket) => void) => b.setRoute(h) }],
  } as unknown as ServiceContext;
  return { b, port, ctx };
}

/** A client that reads lines; `lines` grows as data arrives. */
function client(port: number) {
  const sock = connect(port, '127.0.0.1');
  const st = { sock, data: '', closed: false };
  sock.on('data', (d) => { st.data += d; });
  sock.on('close', () => { st.closed = true; });
  sock.on('error', () => undefined);
  return st;
}

const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

test('maxproc limits concurrent sessions; the next client waits, then is served', async () => {
  const lines: string[] = [];
  const old = setLogSink((l) => { lines.push(l); });
  const { b, port, ctx } = await setup(2);
  let n = 0;
  const srv = serveSessions(ctx, (sock) => {
    const id = ++n;
    sock.write(`220 session ${id}\r\n`);
    sock.on('data', (d) => { if (String(d).startsWith('QUIT')) sock.end('221 bye\r\n'); });
  });
  try {
    const a = client(port), c = client(port), d = client(port);
    await until(() => a.data !== '' && c.data !== '' && srv.waiting() === 1);
    assert.equal(d.data, '', 'third client waits');
    assert.equal(srv.active(), 2);
    assert.ok(lines.some((l) => /postern\/smtpd\[\d+\]: warning: service "smtp" \(127\.0\.0\.1:\d+\) has reached its process limit "2": new clients may experience noticeable delays/.test(l)));
    a.sock.write('QUIT\r\n');
    await until(() => d.data === '220 session 3\r\n');
    assert.equal(srv.active(), 2);
    c.sock.destroy();
    d.sock.destroy();
    await until(() => srv.active() === 0);
  } finally {
    setLogSink(old);
    await srv.stop();
    await b.close();
  }
});

test('a failing session is logged and closed; others go on', async () => {
  const lines: string[] = [];
  const old = setLogSink((l) => { lines.push(l); });
  const { b, port, ctx } = await setup(0);
  let n = 0;
  const srv = serveSessions(ctx, async (sock) => {
    if (++n === 1) throw new Error('parser bug');
    sock.end('ok\r\n');
  });
  try {
    const bad = client(port);
    await until(() => bad.closed);
    assert.ok(lines.some((l) => /error: smtp: session with unknown\[127\.0\.0\.1\]:\d+: Error: parser bug/.test(l)));
    const good = client(port);
    await until(() => good.closed);
    assert.equal(good.data, 'ok\r\n');
  } finally {
    setLogSink(old);
    await srv.stop();
    await b.close();
  }
});

test('stop lets sessions finish, and cuts them off after the drain time', async () => {
  const { b, port, ctx } = await setup(0);
  const srv = serveSessions(ctx, (sock) => {
    sock.write('220 hi\r\n');
    sock.on('data', () => setTimeout(() => sock.end('221 done\r\n'), 50));
  }, { drainMs: 300 });
  const polite = client(port);
  const stuck = client(port);
  await until(() => polite.data !== '' && stuck.data !== '');
  polite.sock.write('QUIT\r\n');
  const t0 = Date.now();
  await srv.stop();
  const took = Date.now() - t0;
  assert.equal(polite.data, '220 hi\r\n221 done\r\n', 'the session in progress finished');
  await until(() => stuck.closed);
  assert.ok(took >= 250 && took < 2000, `stop waited for the drain time (${took} ms)`);
  await b.close();
});
