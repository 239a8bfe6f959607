/**
 * Issue 13 item 5: LMTP DATA is spooled with a fixed memory window (src/lmtpd/lmtpd-spool.ts,
 * Dovecot's mail_temp_dir file past 128 KiB), not held whole in memory. Three clients send a
 * 100 MB message each at once, as fast as loopback allows, into one PosternSystem: the server's
 * RSS stays within a bound, a normal POP3 client logs in within 2 s meanwhile, every message is
 * delivered byte for byte (size and SHA-256 of the stored file after lmtpd's own headers, computed
 * while streaming: the test never holds a message either), and the message delivered before the
 * attack is still there. Then the three are fetched at once over POP3 (RETR, streamed by
 * pop3d-stream.ts): memory bounded again, every octet LIST promised is sent.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { normalPop3, serverMemory, watchMemory } from '../harness/attack-kit.ts';

const USER = 'postmaster@example.test';
const MESSAGE_BYTES = 100 * 1024 * 1024;
const CLIENTS = 3;
/** Extra server RSS allowed during the attack: three sessions' windows and GC slack, not 300 MB. */
const BOUND_MIB = 120;

let sys: PosternSystem;
before(async () => { sys = await PosternSystem.start(); });
after(async () => { await sys?.destroy(); });

/** Read replies line by line from a socket. */
function replies(sock: Socket): () => Promise<string> {
  let buf = '';
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i).replace(/\r$/, '')); buf = buf.slice(i + 1); }
    wake?.();
  });
  sock.on('close', () => wake?.());
  return async () => {
    const end = Date.now() + 120_000;
    while (lines.length === 0) {
      if (sock.destroyed || Date.now() > end) throw new Error('connection closed or no reply');
      await new Promise<void>((r) => { wake = r; setTimeout(r, 1000); });
    }
    return lines.shift()!;
  };
}

/** Line `i` of message `n`: 100 bytes with CRLF; never starts with a dot. */
function line(n: number, i: number): string {
  return `m${n} line ${String(i).padStart(10, '0')} `.padEnd(98, 'abcdefghijklmnopqrstuvwxyz'[i % 26]!) + '\r\n';
}

/**
 * Send one LMTP transaction with a message of MESSAGE_BYTES; resolves to the SHA-256 and size
 * of the content as lmtpd stores it (LF line ends) and the DATA reply.
 */
async function sendBig(n: number): Promise<{ sha: string; size: number; reply: string }> {
  const sock = connect(sys.ports.lmtp, '127.0.0.1');
  const next = replies(sock);
  assert.match(await next(), /^220 /);
  sock.write('LHLO attacker.test\r\n');
  for (;;) { const l = await next(); if (/^250 /.test(l)) break; }
  sock.write(`MAIL FROM:<big${n}@example.org>\r\nRCPT TO:<${USER}>\r\nDATA\r\n`);
  assert.equal(await next(), '250 2.1.0 OK');
  assert.equal(await next(), '250 2.1.5 OK');
  assert.match(await next(), /^354 /);
  const hash = createHash('sha256');
  let size = 0;
  const hdr = `Subject: big ${n}\r\nMessage-ID: <big${n}@example.org>\r\n\r\n`;
  const put = async (s: string) => {
    const lf = s.replace(/\r\n/g, '\n');
    hash.update(lf);
    size += Buffer.byteLength(lf);
    if (!sock.write(s)) {
      await new Promise<void>((r) => {
        const done = () => { sock.off('drain', done); sock.off('close', done); r(); };
        sock.on('drain', done); sock.on('close', done);
      });
    }
  };
  await put(hdr);
  const perChunk = 640;   // lines per write: 64,000 bytes
  for (let i = 0; size < MESSAGE_BYTES; i += perChunk) {
    let s = '';
    for (let j = 0; j < perChunk; j++) s += line(n, i + j);
    await put(s);
  }
  sock.write('.\r\n');
  const reply = await next();
  sock.end('QUIT\r\n');
  return { sha: hash.digest('hex'), size, reply };
}

/** SHA-256 and size of a stored message after lmtpd's headers (from the first "Subject: big"). */
async function storedDigest(path: string): Promise<{ sha: string; size: number }> {
  const fd = createReadStream(path, { start: 0, end: 8191 });
  let head = Buffer.alloc(0);
  for await (const c of fd) head = Buffer.concat([head, c as Buffer]);
  const off = head.indexOf('Subject: big ');
  assert.ok(off > 0, `no message start in ${path}`);
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(path, { start: off, highWaterMark: 1 << 20 })) { hash.update(c as Buffer); size += (c as Buffer).length; }
  return { sha: hash.digest('hex'), size };
}

test('three parallel 100 MB LMTP DATA: memory bounded, POP3 login within 2 s, each message byte for byte', async () => {
  // A message accepted before the attack.
  const pre = connect(sys.ports.lmtp, '127.0.0.1');
  const preNext = replies(pre);
  assert.match(await preNext(), /^220 /);
  pre.write(`LHLO before.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<${USER}>\r\nDATA\r\n`);
  for (;;) { if (/^354 /.test(await preNext())) break; }
  pre.write('Subject: before the attack\r\n\r\nkept\r\n.\r\nQUIT\r\n');
  assert.match(await preNext(), /^250 2\.0\.0 /);
  pre.end();

  const pid = sys.pid!;
  const before = serverMemory(pid);
  const watch = watchMemory(pid);
  const attack = Promise.all(Array.from({ length: CLIENTS }, (_, n) => sendBig(n)));
  // Normal POP3 logins while the attack runs.
  const popMs: number[] = [];
  let done = false;
  void attack.finally(() => { done = true; });
  while (!done) {
    popMs.push(await normalPop3(sys.ports.pop3, USER, sys.password));
    await new Promise((r) => setTimeout(r, 200));
  }
  const sent = await attack;
  const mem = watch.stop();
  const afterMem = serverMemory(pid);
  console.log(`lmtp 3 x 100 MB: RSS before ${before.rssMiB.toFixed(1)} MiB, peak ${mem.peakMiB.toFixed(1)} MiB, after ${afterMem.rssMiB.toFixed(1)} MiB; POP3 logins during the attack (ms): ${popMs.map((m) => m.toFixed(0)).join(' ')}`);
  for (const s of sent) assert.match(s.reply, /^250 2\.0\.0 <postmaster@example\.test> \S+ Saved$/);
  assert.ok(popMs.length > 0 && popMs.every((m) => m < 2000), `POP3 logins: ${popMs.join(', ')} ms`);
  assert.ok(mem.peakMiB - before.rssMiB < BOUND_MIB, `RSS grew from ${before.rssMiB} to a peak of ${mem.peakMiB} MiB`);

  // Every message stored byte for byte; the one from before the attack is still there.
  const dir = sys.maildir(USER);
  const files = ['new', 'cur'].flatMap((sub) => readdirSync(join(dir, sub)).map((f) => join(dir, sub, f)));
  const found = new Map<string, { sha: string; size: number }>();
  let kept = false;
  for (const f of files) {
    const head = createReadStream(f, { start: 0, end: 4095 });
    let h = '';
    for await (const c of head) h += (c as Buffer).toString('latin1');
    if (h.includes('Subject: before the attack')) kept = true;
    const m = /Subject: big (\d)/.exec(h);
    if (m) found.set(m[1]!, await storedDigest(f));
  }
  assert.ok(kept, 'the message accepted before the attack is still in the mailbox');
  sent.forEach((s, n) => {
    assert.deepEqual(found.get(String(n)), { sha: s.sha, size: s.size }, `message ${n} stored byte for byte`);
  });
});

/** RETR message `n` over POP3, counting the bytes up to the final ".": the multi-line reply's length. */
async function retr(n: number): Promise<{ status: string; bytes: number }> {
  const sock = connect(sys.ports.pop3, '127.0.0.1');
  let stage = 0;
  let status = '';
  let bytes = 0;
  let tail = Buffer.alloc(0);
  let head = '';
  return new Promise((resolve, reject) => {
    sock.on('error', reject);
    sock.on('data', (d: Buffer) => {
      if (stage < 4) {
        head += d.toString('latin1');
        const lines = head.split('\r\n');
        if (stage === 0 && lines.length > 1) { stage = 1; sock.write(`USER ${USER}\r\nPASS ${sys.password}\r\nRETR ${n}\r\n`); }
        if (lines.length > 4) {
          stage = 4;
          status = lines[3]!;
          const at = lines.slice(0, 4).join('\r\n').length + 2;
          d = Buffer.from(head.slice(at), 'latin1');
        } else return;
      }
      bytes += d.length;
      tail = Buffer.concat([tail, d]).subarray(-5);
      if (tail.toString('latin1') === '\r\n.\r\n') { sock.end('QUIT\r\n'); resolve({ status, bytes }); }
    });
  });
}

test('RETR of the three 100 MB messages at once over POP3: streamed, memory bounded, every byte sent', async () => {
  const pid = sys.pid!;
  const before = serverMemory(pid);
  const watch = watchMemory(pid);
  // Messages 1 (before the attack) and 2-4 (the 100 MB ones, in some order).
  let done = false;
  const fetches = Promise.all([2, 3, 4].map((n) => retr(n))).finally(() => { done = true; });
  const popMs: number[] = [];
  while (!done) {
    popMs.push(await normalPop3(sys.ports.pop3, USER, sys.password));
    await new Promise((r) => setTimeout(r, 100));
  }
  const got = await fetches;
  const mem = watch.stop();
  console.log(`pop3 RETR 3 x 100 MB: RSS before ${before.rssMiB.toFixed(1)} MiB, peak ${mem.peakMiB.toFixed(1)} MiB; POP3 logins meanwhile (ms): ${popMs.map((m) => m.toFixed(0)).join(' ')}`);
  assert.ok(popMs.every((m) => m < 2000), `POP3 logins: ${popMs.join(', ')} ms`);
  for (const g of got) {
    const size = Number(/^\+OK (\d+) octets$/.exec(g.status)?.[1]);
    assert.ok(size > MESSAGE_BYTES, g.status);
    assert.equal(g.bytes, size + 3, 'the message in CRLF form (its octets) and the final ".\\r\\n"');
  }
  assert.ok(mem.peakMiB - before.rssMiB < BOUND_MIB, `RSS grew from ${before.rssMiB} to a peak of ${mem.peakMiB} MiB`);
});

test('pipelined NOOPs from a client that never reads: lmtpd stops reading, memory stays flat', async () => {
  const pid = sys.pid!;
  const before = serverMemory(pid);
  const watch = watchMemory(pid);
  const sock = connect(sys.ports.lmtp, '127.0.0.1');
  sock.pause();   // never reads a reply
  sock.on('error', () => {});
  const chunk = Buffer.from('NOOP\r\n'.repeat(10_000));
  let sent = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < 3000) {
    if (!sock.write(chunk)) {
      await new Promise<void>((r) => {
        const done = () => { clearTimeout(t); sock.off('drain', done); r(); };
        const t = setTimeout(done, 200);
        sock.on('drain', done);
      });
    } else sent += chunk.length;
  }
  const popMs = await normalPop3(sys.ports.pop3, USER, sys.password);
  const mem = watch.stop();
  sock.destroy();
  console.log(`lmtp NOOP flood, no reads: ${(sent / 1e6).toFixed(1)} MB taken in 3 s; RSS before ${before.rssMiB.toFixed(1)} MiB, peak ${mem.peakMiB.toFixed(1)} MiB; POP3 login ${popMs.toFixed(0)} ms`);
  assert.ok(mem.peakMiB - before.rssMiB < 30, `RSS grew from ${before.rssMiB} to a peak of ${mem.peakMiB} MiB`);
  assert.ok(popMs < 2000, `POP3 login ${popMs} ms`);
});
