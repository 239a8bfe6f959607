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

/** A client that reads lines; `lines` grows as data arrives. `halfOpen`: it never closes its end by itself. */
function client(port: number, halfOpen = false) {
  const sock = connect({ port, host: '127.0.0.1', allowHalfOpen: halfOpen });
  const st = { sock, data: '', closed: false };
  sock.on('data', (d) => { st.data += d; });
  sock.on('close', () => { st.closed = true; });
  sock.on('error', () => undefined);
  return st;
}

/** Write until the connection breaks: the server has closed it fully (not just half-closed). */
async function refusedWrites(c: { sock: Socket; closed: boolean }): Promise<void> {
  for (let i = 0; i < 50 && !c.closed; i++) {
    if (!c.sock.destroyed) c.sock.write('NOOP\r\n');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(c.closed, 'the server closed the connection');
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

test('a session the server ended (221 then end()) frees its slot at once; the idle client socket is closed after the linger', async () => {
  const { b, port, ctx } = await setup(1);
  const srv = serveSessions(ctx, (sock) => {
    sock.write('220 hi\r\n');
    sock.on('data', (d) => { if (String(d).startsWith('QUIT')) sock.end('221 bye\r\n'); });
  }, { lingerMs: 300 });
  try {
    const idle = client(port, true);
    await until(() => idle.data === '220 hi\r\n');
    idle.sock.write('QUIT\r\n');   // and never closes
    await until(() => idle.data.endsWith('221 bye\r\n'));
    const next = client(port);
    await until(() => next.data === '220 hi\r\n', 1000);   // the one slot is free although `idle` is open
    assert.equal(srv.active(), 1);
    assert.equal(srv.lingering(), 1);
    await until(() => srv.lingering() === 0, 1500);      // the server closed its socket after lingerMs
    await refusedWrites(idle);
    next.sock.destroy();
  } finally {
    await srv.stop();
    await b.close();
  }
});

test('slot.end() frees the slot of a session whose socket is still open (a TLS session over the accepted socket)', async () => {
  const { b, port, ctx } = await setup(1);
  let n = 0;
  const srv = serveSessions(ctx, (sock, _l, slot) => {
    sock.write(`220 session ${++n}\r\n`);
    sock.on('data', () => slot.end());
  }, { lingerMs: 200 });
  try {
    const a = client(port, true);
    await until(() => a.data !== '');
    a.sock.write('x\r\n');
    const c = client(port);
    await until(() => c.data === '220 session 2\r\n');
    await until(() => srv.lingering() === 0, 1500);
    await refusedWrites(a);
    c.sock.destroy();
  } finally {
    await srv.stop();
    await b.close();
  }
});

test('admit runs before a slot is taken: a refused connection gets its reply and holds no slot; release() at the end', async () => {
  const { b, port, ctx } = await setup(2);
  let released = 0;
  let admitted = 0;
  const srv = serveSessions(ctx, (sock) => { sock.write('220 hi\r\n'); }, {
    lingerMs: 200,
    admit: async () => {
      return admitted++ < 2 ? { release: () => { released++; } } : { reply: '421 4.7.0 too many connections\r\n' };
    },
  });
  try {
    const ok1 = client(port), ok2 = client(port);
    await until(() => ok1.data !== '' && ok2.data !== '');
    const refused = Array.from({ length: 20 }, () => client(port, true));
    await until(() => refused.every((r) => r.data === '421 4.7.0 too many connections\r\n'));
    assert.equal(srv.active(), 2);
    assert.equal(srv.waiting(), 0, 'refused connections never wait for a slot');
    await until(() => srv.lingering() === 0, 1500);
    await Promise.all(refused.map(refusedWrites));
    ok1.sock.destroy();
    await until(() => released === 1);
    ok2.sock.destroy();
    await until(() => released === 2 && srv.active() === 0);
  } finally {
    await srv.stop();
    await b.close();
  }
});

test('stress: when every slot is busy, sessions that start afterwards get stress = true (non-loopback listeners only)', async () => {
  const { b, port, ctx } = await setup(2);
  // As master_ent.c: a service listening on loopback only is never under stress; pretend this
  // listener is a public one.
  const publicCtx = { ...ctx, listeners: ctx.listeners.map((l) => ({ ...l, address: `192.0.2.1:${port}` })) } as ServiceContext;
  const stress: boolean[] = [];
  const admitted: boolean[] = [];
  const srv = serveSessions(publicCtx, (sock, _l, slot) => {
    stress.push(slot.stress);
    sock.write(`220 stress=${slot.stress ? 'yes' : ''}\r\n`);
  }, { admit: (_s, _l, st) => { admitted.push(st); return {}; } });
  const old = setLogSink(() => {});
  try {
    const a = client(port), c = client(port);
    await until(() => a.data !== '' && c.data !== '');
    assert.equal(srv.stressed(), false);
    const d = client(port);                     // all slots busy: stress from now on
    await until(() => srv.waiting() === 1);
    assert.equal(srv.stressed(), true);
    a.sock.destroy();
    await until(() => d.data === '220 stress=yes\r\n');
    c.sock.destroy();
    const e = client(port);
    await until(() => e.data === '220 stress=yes\r\n', 1000);   // it lasts (Postfix: 1000 s)
    assert.deepEqual(stress, [false, false, true, true]);
    assert.deepEqual(admitted, [false, false, true, true], 'admit is told the stress state at arrival');
    d.sock.destroy(); e.sock.destroy();
  } finally {
    setLogSink(old);
    await srv.stop();
    await b.close();
  }
  // The same on a loopback-only listener: never stress.
  const s2 = await setup(1);
  const seen: boolean[] = [];
  const srv2 = serveSessions(s2.ctx, (sock, _l, slot) => { seen.push(slot.stress); sock.write('220\r\n'); });
  const old2 = setLogSink(() => {});
  try {
    const a = client(s2.port);
    await until(() => a.data !== '');
    const c = client(s2.port);
    await until(() => srv2.waiting() === 1);
    a.sock.destroy();
    await until(() => c.data !== '');
    assert.deepEqual(seen, [false, false]);
    assert.equal(srv2.stressed(), false);
    c.sock.destroy();
  } finally {
    setLogSink(old2);
    await srv2.stop();
    await s2.b.close();
  }
});
