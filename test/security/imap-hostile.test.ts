/**
 * Issue 13, IMAP: hostile clients against a whole Postern (PosternSystem, one process), each
 * attack from loopback sockets while a normal client (Python imaplib: LOGIN, SELECT, LOGOUT) logs
 * in on another connection, asserting the three things of the issue: the server's RSS (from
 * /proc) grows by less than a stated bound, the normal client completes within 2 s, and the
 * messages in the mailbox before the attacks are still there with the same UIDs. The limits are
 * Dovecot 2.3's (src/imapd/imapd-session.ts; compared with the real Dovecot in
 * test/interop/imap-limits-vs-dovecot.test.ts).
 *   item 3  pre-login literals: 10 connections each try to send 16 MB of 8000-byte LITERAL+
 *           literals in one LOGIN → `* BYE Literal size too large` at the second one
 *   item 4  COMPRESS=DEFLATE: 40 deflated FETCHes of 5 MB each, answers never read → the
 *           session waits for the socket; memory stays bounded
 *   item 6  AUTHENTICATE with a 10 MB response line → closed; IDLE with one → BAD, goes on
 *   item 8  100,000 junk lines before and after login → BYE after 3 / 20; 100,000 NOOPs
 *           whose answers are never read and 1,000,000 empty lines do not stall anyone
 *   item 1  after LOGOUT's BYE and OK the server closes the connection even if the client does not
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { createDeflateRaw, createInflateRaw, constants as zc } from 'node:zlib';
import { PosternSystem } from '../harness/postern-system.ts';
import { normalImap, serverMemory, watchMemory } from '../harness/attack-kit.ts';

const USER = 'postmaster@example.test';
const LARGE = 5;
const LARGE_BYTES = 1024 * 1024;

let sys: PosternSystem;
let uidsBefore = '';

/** A raw IMAP connection: everything received as text, tagged commands awaited. */
class Conn {
  readonly sock: Socket;
  buf = '';
  closed = false;
  constructor(port: number, o: { allowHalfOpen?: boolean } = {}) {
    this.sock = connect({ port, host: '127.0.0.1', allowHalfOpen: o.allowHalfOpen ?? false });
    this.sock.on('data', (d: Buffer) => { if (this.buf.length < 1 << 20) this.buf += d.toString('latin1'); });
    this.sock.on('close', () => { this.closed = true; });
    this.sock.on('error', () => { this.closed = true; });
  }
  async wait(re: RegExp, ms = 10_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.buf);
      if (m) return m[0];
      if (this.closed || Date.now() > end) throw new Error(`no ${re} (closed=${this.closed}): ${this.buf.slice(-500)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  async cmd(tag: string, text: string, ms = 10_000): Promise<string> {
    this.sock.write(`${tag} ${text}\r\n`);
    return this.wait(new RegExp(`(?:^|\\n)${tag} (?:OK|NO|BAD)[^\\n]*\\n`), ms);
  }
  /** Write, waiting for the socket to drain; false once the server has closed. */
  async write(data: string | Buffer): Promise<boolean> {
    if (this.closed || this.sock.destroyed) return false;
    if (this.sock.write(data)) return true;
    await new Promise<void>((r) => {
      const done = () => { this.sock.off('drain', done); this.sock.off('close', done); r(); };
      this.sock.on('drain', done); this.sock.on('close', done);
    });
    return !this.closed;
  }
  async untilClosed(ms = 5000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!this.closed && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    return this.closed;
  }
  destroy(): void { this.sock.destroy(); }
}

async function loggedIn(): Promise<Conn> {
  const c = new Conn(sys.ports.imap);
  await c.wait(/^\* OK[^\n]*\n/);
  assert.match(await c.cmd('l', `LOGIN ${USER} ${sys.password}`), /l OK/);
  return c;
}

async function uidList(): Promise<string> {
  const c = await loggedIn();
  await c.cmd('s', 'EXAMINE INBOX');
  c.buf = '';
  await c.cmd('f', 'FETCH 1:* (UID RFC822.SIZE)');
  c.destroy();
  return c.buf.split('\r\n').filter((l) => l.startsWith('* ')).join('\n');
}

/**
 * Run `attack` while a normal IMAP client logs in again and again; the normal client's times,
 * and the server's RSS before, at its peak and after.
 */
async function underAttack(name: string, attack: () => Promise<void>, boundMiB: number): Promise<void> {
  const pid = sys.pid!;
  const before = serverMemory(pid);
  const watch = watchMemory(pid);
  let done = false;
  const running = attack().finally(() => { done = true; });
  const ms: number[] = [];
  do {
    ms.push(await normalImap(sys.ports.imap, USER, sys.password));
    await new Promise((r) => setTimeout(r, 50));
  } while (!done);
  await running;
  const mem = watch.stop();
  const afterMem = serverMemory(pid);
  console.log(`${name}: RSS before ${before.rssMiB.toFixed(1)} MiB, peak ${mem.peakMiB.toFixed(1)} MiB, after ${afterMem.rssMiB.toFixed(1)} MiB; normal IMAP logins (ms): ${ms.map((m) => m.toFixed(0)).join(' ')}`);
  assert.ok(ms.every((m) => m < 2000), `normal IMAP logins took ${ms.join(', ')} ms`);
  assert.ok(mem.peakMiB - before.rssMiB < boundMiB, `RSS grew from ${before.rssMiB.toFixed(1)} to a peak of ${mem.peakMiB.toFixed(1)} MiB (bound ${boundMiB} MiB)`);
  assert.equal(await uidList(), uidsBefore, 'the messages from before the attack, with their UIDs');
}

before(async () => {
  sys = await PosternSystem.start();
  // mail from before the attacks: three small messages and LARGE of 1 MiB (not compressible)
  const c = await loggedIn();
  for (let i = 0; i < 3; i++) {
    const m = `Subject: before ${i}\r\n\r\nkept ${i}\r\n`;
    assert.match(await c.cmd(`a${i}`, `APPEND INBOX {${m.length}+}\r\n${m}`), /OK/);
  }
  for (let i = 0; i < LARGE; i++) {
    const body = randomBytes(LARGE_BYTES * 3 / 4).toString('base64').replace(/.{76}/g, '$&\r\n');
    const m = `Subject: large ${i}\r\n\r\n${body}\r\n`;
    assert.match(await c.cmd(`b${i}`, `APPEND INBOX {${m.length}+}\r\n${m}`), /OK/);
  }
  c.destroy();
  uidsBefore = await uidList();
  assert.equal(uidsBefore.split('\n').length, 3 + LARGE);
});
after(async () => { await sys?.destroy(); });

test('item 3: literals before login are bounded by the whole command (8192 bytes, Dovecot imap-login)', async () => {
  const PER_CONN = 16 * 1024 * 1024;
  const byes: string[] = [];
  await underAttack('pre-login literals, 10 x 16 MB tried', async () => {
    await Promise.all(Array.from({ length: 10 }, async () => {
      const c = new Conn(sys.ports.imap);
      await c.wait(/^\* OK[^\n]*\n/);
      const lit = ' {8000+}\r\n' + 'x'.repeat(8000);
      let sent = 0;
      if (await c.write('a LOGIN')) {
        while (sent < PER_CONN && await c.write(lit.repeat(8))) sent += 8 * lit.length;
      }
      await c.untilClosed();
      byes.push(/\* BYE [^\r]*/.exec(c.buf)?.[0] ?? `none (sent ${sent}, closed ${c.closed})`);
      c.destroy();
    }));
  }, 48);
  assert.deepEqual(new Set(byes), new Set(['* BYE Literal size too large']));
});

test('item 8: junk lines before and after login end the connection after 3 / 20 (Dovecot)', async () => {
  const results: string[] = [];
  await underAttack('100,000 junk lines x 2 before login, x 2 after login', async () => {
    await Promise.all([false, false, true, true].map(async (login) => {
      const c = login ? await loggedIn() : new Conn(sys.ports.imap);
      await c.wait(/^\* OK[^\n]*\n/);
      const lines = Array.from({ length: 1000 }, (_, i) => `j${i} FOO bar\r\n`).join('');
      for (let i = 0; i < 100 && await c.write(lines); i++) { /* until closed */ }
      await c.untilClosed();
      results.push(`${login ? 'after' : 'before'}: ${c.buf.split('\r\n').filter((l) => / BAD /.test(l)).length} BAD, ${/\* BYE [^\r]*/.exec(c.buf)?.[0]}`);
      c.destroy();
    }));
  }, 40);
  assert.deepEqual(results.sort(), [
    'after: 20 BAD, * BYE Too many invalid IMAP commands.', 'after: 20 BAD, * BYE Too many invalid IMAP commands.',
    'before: 2 BAD, * BYE Too many invalid IMAP commands.', 'before: 2 BAD, * BYE Too many invalid IMAP commands.',
  ]);
});

test('item 8: 100,000 NOOPs never read and 1,000,000 empty lines do not stall other clients', async () => {
  await underAttack('100,000 unread NOOPs + 1,000,000 empty lines', async () => {
    const flood = async (text: string, total: number): Promise<void> => {
      const c = await loggedIn();
      c.sock.removeAllListeners('data');
      c.sock.pause(); // never read the answers
      const chunk = text.repeat(1000);
      const end = Date.now() + 3000;
      for (let i = 0; i < total / 1000 && Date.now() < end; i++) {
        // a client that does not read blocks on the socket: give up after a while
        const w = c.write(chunk);
        const ok = await Promise.race([w, new Promise<boolean>((r) => setTimeout(() => r(false), Math.max(0, end - Date.now())))]);
        if (!ok) break;
      }
      // keep the connection while the server works through what it was sent
      await new Promise((r) => setTimeout(r, Math.max(1500, end - Date.now())));
      c.destroy();
    };
    await Promise.all([flood('n NOOP\r\n', 100_000), flood('\r\n', 1_000_000)]);
  }, 40);
});

test('item 6: an AUTHENTICATE response of 10 MB closes the connection; IDLE answered with one gets BAD', async () => {
  await underAttack('10 MB AUTHENTICATE response, 10 MB line in IDLE', async () => {
    const a = new Conn(sys.ports.imap);
    await a.wait(/^\* OK[^\n]*\n/);
    a.sock.write('a AUTHENTICATE PLAIN\r\n');
    await a.wait(/\+ \r\n/);
    const mb = 'A'.repeat(1024 * 1024);
    for (let i = 0; i < 10 && await a.write(mb); i++) { /* until closed */ }
    await a.write('\r\n');
    assert.ok(await a.untilClosed(), 'the server closes the connection');
    assert.doesNotMatch(a.buf, /^a /m, 'no reply, as imap-login');
    a.destroy();

    const b = await loggedIn();
    await b.cmd('s', 'SELECT INBOX');
    b.sock.write('i IDLE\r\n');
    await b.wait(/\+ idling\r\n/);
    for (let i = 0; i < 10; i++) assert.ok(await b.write(mb));
    await b.write('\r\n');
    assert.match(await b.wait(/i BAD[^\n]*\n/), /^i BAD Expected DONE \(/);
    assert.match(await b.cmd('n', 'NOOP'), /n OK NOOP completed/);
    b.destroy();
  }, 40);
});

test('item 4: COMPRESS=DEFLATE answers wait for the socket like plain ones', async () => {
  await underAttack('40 deflated FETCHes of 5 MB, never read', async () => {
    const c = await loggedIn();
    try {
    await c.cmd('s', 'SELECT INBOX');
    assert.match(await c.cmd('z', 'COMPRESS DEFLATE'), /z OK/);
    c.sock.removeAllListeners('data');
    c.sock.pause(); // never read: the server's answers pile up unless it waits
    const def = createDeflateRaw();
    def.on('data', (d: Buffer) => c.sock.write(d));
    for (let i = 0; i < 40; i++) def.write(`f${i} FETCH 4:${3 + LARGE} BODY.PEEK[]\r\n`);
    def.flush(zc.Z_SYNC_FLUSH);
    // the server writes until the socket buffers are full, then must stop: wait for that
    await new Promise((r) => setTimeout(r, 3000));
    // then read: the answers come, deflated correctly
    const inf = createInflateRaw();
    let tail = '';
    let seen = false;
    inf.on('data', (d: Buffer) => {
      const text = tail + d.toString('latin1');
      if (!seen && /f0 OK Fetch completed/.test(text)) { seen = true; c.sock.pause(); }
      tail = text.slice(-100);
    });
    let total = 0;
    let error = '';
    inf.on('error', (e) => { error = e.message; });
    inf.on('data', (d: Buffer) => { total += d.length; });
    c.sock.on('data', (d: Buffer) => inf.write(d));
    c.sock.resume();
    const end = Date.now() + 10_000;
    while (!seen && !error && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.ok(seen, `the first FETCH completes once the client reads (${total} bytes read${error ? `, ${error}` : ''}): ${JSON.stringify(tail.slice(-300))}`);
    } finally { c.destroy(); }
  }, 40);
});

test('item 1: after LOGOUT the server closes the connection, also when the client does not', async () => {
  for (const login of [false, true]) {
    const c = new Conn(sys.ports.imap, { allowHalfOpen: true });
    await c.wait(/^\* OK[^\n]*\n/);
    if (login) await c.cmd('l', `LOGIN ${USER} ${sys.password}`);
    const t = Date.now();
    assert.match(await c.cmd('o', 'LOGOUT'), /o OK Logout completed/);
    assert.match(c.buf, /\* BYE Logging out\r\n/);
    await new Promise<void>((r) => { if (c.sock.readableEnded) r(); else c.sock.once('end', () => r()); });
    // our side stays open: the server must still let the socket go (a write then fails)
    const end = Date.now() + 5000;
    while (!c.closed && Date.now() < end) { c.sock.write('x\r\n'); await new Promise((r) => setTimeout(r, 100)); }
    assert.ok(c.closed, `the server released the connection (${login ? 'after' : 'before'} login)`);
    console.log(`LOGOUT ${login ? 'after' : 'before'} login: connection gone after ${Date.now() - t} ms with the client holding its side open`);
    c.destroy();
  }
});
