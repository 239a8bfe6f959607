/**
 * Issue 13 items 8 and 1 (POP3) against a whole Postern (PosternSystem): 100,000 pipelined lines
 * on one connection must not cost memory nor stall other clients.
 *  - junk before login: Dovecot's pop3-login answer, `-ERR Too many invalid bad commands.` after
 *    the 3rd unknown command, and the close (the rest is never read);
 *  - junk after login (after a DELE): `-ERR Too many bad commands.` after the 21st failed
 *    command, the close, and nothing deleted (no QUIT, RFC 1939 §6);
 *  - 100,000 valid commands (NOOP, never a bad command) are all answered, while a normal POP3
 *    client logs in within 2 s; after QUIT's reply the server frees the session slot and closes
 *    fully within its 2 s linger even though this client keeps its own side open (LMTP too).
 * The server's RSS may grow by BOUND_MIB at most.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { PosternSystem } from '../harness/postern-system.ts';
import { normalPop3, serverMemory, watchMemory } from '../harness/attack-kit.ts';

const USER = 'postmaster@example.test';
const LINES = 100_000;
const BOUND_MIB = 40;

let sys: PosternSystem;
before(async () => { sys = await PosternSystem.start(); });
const sockets: Socket[] = [];
after(async () => { for (const s of sockets) s.destroy(); await sys?.destroy(); });

/** A raw client that keeps its side open after the server's FIN; collects reply lines. */
function client(): Promise<{ sock: Socket; lines: string[]; ended: Promise<void>; reset: Promise<string>; waitLines(n: number): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port: sys.ports.pop3, host: '127.0.0.1', allowHalfOpen: true });
    sockets.push(sock);
    const lines: string[] = [];
    let buf = '';
    let wake: (() => void) | undefined;
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 2); }
      wake?.();
    });
    const ended = new Promise<void>((r) => sock.once('end', () => { wake?.(); r(); }));
    const reset = new Promise<string>((r) => { sock.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error')); sock.once('close', () => r('close')); });
    const waitLines = async (n: number) => {
      const end = Date.now() + 30_000;
      while (lines.length < n) {
        if (sock.readableEnded || Date.now() > end) throw new Error(`${lines.length} of ${n} lines: ${lines.slice(-3).join(' | ')}`);
        await new Promise<void>((r) => { wake = r; setTimeout(r, 500); });
      }
    };
    sock.once('connect', () => resolve({ sock, lines, ended, reset, waitLines }));
    sock.once('error', reject);
  });
}

/**
 * After the server's FIN, keep writing (the client never closes its side): the server must
 * close fully within its linger (2 s, lib-master/master-session.ts), so a write is refused.
 */
async function serverCloses(sock: Socket, reset: Promise<string>): Promise<string> {
  const timer = setInterval(() => { if (!sock.destroyed) sock.write('NOOP\r\n'); }, 100);
  try {
    return await Promise.race([reset, new Promise<string>((r) => setTimeout(() => r('still open'), 4000))]);
  } finally { clearInterval(timer); }
}

/** `p`, or a failure after `ms` (every wait of this test ends by itself). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, rej) => { t = setTimeout(() => rej(new Error(`no ${what} within ${ms} ms`)), ms); })]).finally(() => clearTimeout(t));
}

async function login(c: Awaited<ReturnType<typeof client>>): Promise<void> {
  await c.waitLines(1);
  c.sock.write(`USER ${USER}\r\nPASS ${sys.password}\r\n`);
  await c.waitLines(3);
  assert.equal(c.lines[2], '+OK Logged in.');
}

test('100,000 pipelined POP3 lines: Dovecot\'s bad-command limits, memory bounded, other clients served, slot freed after QUIT', async () => {
  // A message accepted before the attack.
  // (over LMTP, whose server must close fully after QUIT's 221 too)
  const l = connect({ port: sys.ports.lmtp, host: '127.0.0.1', allowHalfOpen: true });
  sockets.push(l);
  const lReset = new Promise<string>((r) => { l.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error')); l.once('close', () => r('close')); });
  l.write(`LHLO t\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<${USER}>\r\nDATA\r\nSubject: before the attack\r\n\r\nkept\r\n.\r\nQUIT\r\n`);
  let lmtpOut = '';
  l.on('data', (d) => { lmtpOut += d; });
  await within(new Promise((r) => l.once('end', r)), 10_000, "FIN after LMTP QUIT's reply");
  assert.match(lmtpOut, /250 2\.0\.0 <postmaster@example\.test> \S+ Saved\r\n221 2\.0\.0 Bye\r\n$/);
  const lmtpClose = await serverCloses(l, lReset);
  assert.notEqual(lmtpClose, 'still open', 'lmtpd closed the connection fully after QUIT');
  l.destroy();

  const pid = sys.pid!;
  const before = serverMemory(pid);
  const watch = watchMemory(pid);

  const junk = Buffer.from('FOO\r\n'.repeat(LINES));
  const preJunk = (async () => {
    const c = await client();
    await c.waitLines(1);
    c.sock.write(junk);
    await within(c.ended, 10_000, 'close after the junk before login');
    c.sock.destroy();
    return c.lines.slice(1);
  })();
  const postJunk = (async () => {
    const c = await client();
    await login(c);
    c.sock.write('DELE 1\r\n');
    c.sock.write(junk);
    await within(c.ended, 10_000, 'close after the junk after login');
    c.sock.destroy();
    return c.lines.slice(3);
  })();
  const noops = (async () => {
    const c = await client();
    await login(c);
    c.sock.write(Buffer.from('NOOP\r\n'.repeat(LINES)));
    await c.waitLines(3 + LINES);
    c.sock.write('QUIT\r\n');
    await within(c.ended, 10_000, "FIN after QUIT's reply");
    const t0 = performance.now();
    const how = await serverCloses(c.sock, c.reset);
    c.sock.destroy();
    return { ok: c.lines.slice(3, 3 + LINES).filter((x) => x === '+OK').length, quit: c.lines[3 + LINES], how, ms: performance.now() - t0 };
  })();
  let done = false;
  const all = Promise.all([preJunk, postJunk, noops]).finally(() => { done = true; });
  const popMs: number[] = [];
  while (!done) {
    popMs.push(await normalPop3(sys.ports.pop3, USER, sys.password));
    await new Promise((r) => setTimeout(r, 100));
  }
  const [pre, post, flood] = await all;
  const mem = watch.stop();
  console.log(`pop3 floods of ${LINES} lines: RSS before ${before.rssMiB.toFixed(1)} MiB, peak ${mem.peakMiB.toFixed(1)} MiB, after ${serverMemory(pid).rssMiB.toFixed(1)} MiB; normal POP3 logins (ms): ${popMs.map((m) => m.toFixed(0)).join(' ')}; pop3d closed fully ${flood.ms.toFixed(0)} ms after QUIT's reply (${flood.how}), lmtpd too (${lmtpClose})`);

  assert.deepEqual(pre, ['-ERR Unknown command.', '-ERR Unknown command.', '-ERR Unknown command.', '-ERR Too many invalid bad commands.']);
  assert.deepEqual(post, ['+OK Marked to be deleted.', ...Array<string>(21).fill('-ERR Unknown command: FOO'), '-ERR Too many bad commands.']);
  assert.equal(flood.ok, LINES, 'every NOOP answered');
  assert.equal(flood.quit, '+OK Logging out.');
  assert.notEqual(flood.how, 'still open', 'the server closed the connection fully after QUIT');
  assert.ok(popMs.length > 0 && popMs.every((m) => m < 2000), `normal POP3 logins: ${popMs.join(', ')} ms`);
  assert.ok(mem.peakMiB - before.rssMiB < BOUND_MIB, `RSS grew from ${before.rssMiB} to a peak of ${mem.peakMiB} MiB`);
  // Nothing lost: the DELE without QUIT deleted nothing.
  const c = await client();
  await login(c);
  c.sock.write('STAT\r\nQUIT\r\n');
  await c.waitLines(5);
  assert.match(c.lines[3]!, /^\+OK 1 \d+$/);
  c.sock.destroy();
});
