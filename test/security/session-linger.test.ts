/**
 * Issue 13 item 1, the Dovecot-side listeners: a client that sends QUIT/LOGOUT, reads the answer
 * and then keeps its socket open (never sending its FIN) no longer keeps its session: the
 * session skeleton (src/lib-master/master-session.ts) frees the session when the server has
 * ended it — by the server's half-close of the accepted socket, or slot.end() for POP3 over TLS
 * (pop3s) — and closes the socket after the 2 s linger. 40 such sockets on each of
 * pop3, pop3s, imap and sieve (ManageSieve) from 127.0.0.2; meanwhile a normal POP3 and IMAP login from 127.0.0.1
 * completes within 2 s, and the server's memory stays flat.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { PosternSystem } from '../harness/postern-system.ts';
import { normalImap, normalPop3, rawConn, serverClosed, serverMemory, until, watchMemory, type Conn } from '../harness/attack-kit.ts';

/** From 127.0.0.2, never closing its end by itself; TLS from the first byte when `tls`. */
function open(port: number, tls = false): Conn {
  const raw = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2', allowHalfOpen: true });
  if (!tls) return rawConn(raw);
  return rawConn(tlsConnect({ socket: raw, rejectUnauthorized: false, allowHalfOpen: true } as ConnectionOptions));
}

test('POP3, POP3S, IMAP and ManageSieve clients that log out and stay connected are closed by the server; normal logins go on', { timeout: 60_000 }, async () => {
  const sys = await PosternSystem.start();
  const all: Conn[] = [];
  try {
    const pid = sys.pid!;
    const before = serverMemory(pid).rssMiB;
    const mem = watchMemory(pid);
    const kinds: [string, number, boolean, string, RegExp][] = [
      ['pop3', sys.ports.pop3, false, 'QUIT\r\n', /\+OK Logging out/],
      ['pop3s', sys.ports.pop3s, true, 'QUIT\r\n', /\+OK Logging out/],
      ['imap', sys.ports.imap, false, 'a LOGOUT\r\n', /a OK Logout completed/],
      ['sieve', sys.ports.sieve, false, 'LOGOUT\r\n', /OK "Logout completed."/],
    ];
    for (const [name, port, tls, bye, byeRe] of kinds) {
      const conns = Array.from({ length: 40 }, () => open(port, tls));
      all.push(...conns);
      await until(() => conns.every((c) => c.data.includes('\r\n')), 10_000, `${name} greetings`);
      for (const c of conns) c.sock.write(bye);
      await until(() => conns.every((c) => byeRe.test(c.data)), 10_000, `${name} logout replies`);
      const t0 = Date.now();
      const closed = await Promise.all(conns.map((c) => serverClosed(c, 4000)));
      assert.equal(closed.filter(Boolean).length, 40, `${name}: the server closed every logged-out connection`);
      console.log(`# ${name}: 40 logged-out sockets closed by the server within ${Date.now() - t0} ms`);
    }
    const pop = await normalPop3(sys.ports.pop3, 'postmaster@example.test', sys.password);
    const imap = await normalImap(sys.ports.imap, 'postmaster@example.test', sys.password);
    console.log(`# normal POP3 ${pop.toFixed(0)} ms, IMAP ${imap.toFixed(0)} ms`);
    assert.ok(pop < 2000 && imap < 2000);
    const m = mem.stop();
    console.log(`# RSS before ${before.toFixed(0)} MiB, peak ${m.peakMiB.toFixed(0)} MiB, after ${m.lastMiB.toFixed(0)} MiB`);
    assert.ok(m.peakMiB - before < 64, `RSS grew ${m.peakMiB - before} MiB`);
  } finally {
    for (const c of all) c.sock.destroy();
    await sys.destroy();
  }
});
