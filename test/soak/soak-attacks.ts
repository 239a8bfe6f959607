/**
 * soak-attacks - the nine attacks of issue 13 ("Hostile clients cannot exhaust Postern"), each a
 * loop that runs until the soak's deadline with a fixed cap on its connections, for
 * hostile-soak.ts. Each attack comes from its own loopback address outside mynetworks
 * (127.0.0.1/32) and tallies its attempts and the outcomes it saw (the server's reply, how the
 * connection ended). No attack allocates a whole message: big streams write one reused 64 KB
 * buffer again and again, with the socket's backpressure.
 *
 *   quit       127.0.0.2  SMTP EHLO + QUIT then the socket held open, 30 at a time with the
 *                         slowloris below (beyond smtpd_client_connection_count_limit = 50: 421)
 *   slowloris  127.0.0.2  30 SMTP connections, one byte every 3 s
 *              127.0.0.3  30 IMAP connections, one byte every 3 s
 *   size       127.0.0.4  DATA and BDAT of twice message_size_limit, at full speed
 *   literals   127.0.0.3  pre-login IMAP command with up to 5,000 literals (8 KB; 1 KB), 2 at a time
 *   compress   127.0.0.5  IMAPS login, COMPRESS DEFLATE, FETCH 1:* BODY[] every 250 ms unread
 *   lmtp       127.0.0.6  LMTP DATA of 4 MB, one at a time, the delivered file removed
 *   authline   127.0.0.7  IMAPS AUTHENTICATE PLAIN then a 10 MB response line, 2 at a time
 *   guess      127.0.0.8  wrong passwords for the real user: IMAPS LOGIN x3, SMTP AUTH x2
 *   junk       127.0.0.9  5,000 unknown commands at once on SMTP, IMAP and POP3
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { constants, deflateRawSync } from 'node:zlib';
import { Peer } from './soak-peer.ts';

export interface SoakContext {
  ports: { smtp: number; submissions: number; imap: number; imaps: number; pop3: number; lmtp: number };
  /** The real user (normal traffic, and the guessing target). */
  user: string;
  /** A user with a few large messages, for the COMPRESS attack. */
  bulk: { user: string; pass: string };
  /** The LMTP attack's recipient and its Maildir (emptied after each delivery). */
  sink: { user: string; maildir: string };
  messageSizeLimit: number;
  live(): boolean;
  /** Sleep, returning early at the deadline. */
  sleep(ms: number): Promise<void>;
}

/** Set by the soak at its deadline: what ends after it is cut, not an outcome. */
export const deadline = { passed: false };

export class Tally {
  attempts = 0;
  /** Bytes streamed and the time it took (the full-speed attacks). */
  bytes = 0;
  busyMs = 0;
  readonly outcomes = new Map<string, number>();
  readonly name: string;
  readonly from: string;
  constructor(name: string, from: string) { this.name = name; this.from = from; }
  /** Count an outcome; after the deadline it counts as cut (unless `atDeadline` says what the deadline found). */
  note(outcome: string, atDeadline = false): void {
    if (deadline.passed && !atDeadline) outcome = '(cut by the deadline)';
    const k = this.outcomes.size >= 24 && !this.outcomes.has(outcome) ? '(other)' : outcome;
    this.outcomes.set(k, (this.outcomes.get(k) ?? 0) + 1);
  }
}

/** A reused chunk of 64 KB of text lines (no line starts with a dot). */
const TEXT = Buffer.from(Array.from({ length: 1024 }, (_, i) => `soak ${String(i).padStart(5, '0')} `.padEnd(62, 'abcdefghijklmnopqrstuvwxyz'[i % 26]!) + '\r\n').join(''), 'latin1');
const A64K = Buffer.alloc(64 * 1024, 'A');
const K8 = Buffer.alloc(8192, 'k');

/** The server's host name in a reply (a dotted name with a letter; not an enhanced status code). */
const HOST = / (?=[^ ]*[a-z])[a-z0-9-]+(?:\.[a-z0-9-]+)+ /;

/** The first line the server sent (its greeting), shortened. */
function firstLine(text: string): string {
  return text.slice(0, text.indexOf('\r\n') >>> 0).replace(HOST, ' HOST ').slice(0, 60) || '(none)';
}

/** The last status line of a reply text, shortened (the outcome's name). */
function lastLine(text: string, re = /^(?:\d{3}[ -]|[a-z]\d* |\* BYE|\+OK|-ERR)[^\r\n]*/gm): string {
  const all = text.match(re);
  // Tags, queue IDs and session IDs vary: keep the outcome's name stable.
  return all ? all.at(-1)!.replace(/^[a-z]\d* /, 'TAG ').replace(HOST, ' HOST ').replace(/<[^>]*>/g, '<..>').replace(/ [A-Za-z0-9+/]{16,}(?= |$)/g, ' ID').replace(/\b(?=[A-Za-z+/]*[0-9])[A-Za-z0-9+/]{10,}\b/g, 'ID').slice(0, 72) : '(no reply)';
}

function lived(p: Peer): string {
  const s = ((p.closedAt || Date.now()) - p.opened) / 1000;
  return s < 10 ? '<10 s' : s < 60 ? '<60 s' : s < 300 ? '<300 s' : '>=300 s';
}

async function tryConnect(t: Tally, port: number, from: string, o: { tls?: boolean; record?: boolean } = {}): Promise<Peer | undefined> {
  t.attempts++;
  try { return await Peer.connect(port, from, o); } catch (e) { t.note(`connect failed: ${(e as Error).message.slice(0, 40)}`); return undefined; }
}

async function streamBytes(p: Peer, bytes: number, chunk: Buffer): Promise<number> {
  let sent = 0;
  while (sent < bytes && !p.gone) {
    const b = bytes - sent >= chunk.length ? chunk : chunk.subarray(0, bytes - sent);
    if (!(await p.write(b))) break;
    sent += b.length;
  }
  return sent;
}

const MB = (n: number) => `${(n / 1048576).toFixed(0)} MB`;

/** (1) SMTP EHLO + QUIT, then keep the socket without closing it; 10 s later, did the server close? */
export async function quitHolders(ctx: SoakContext, t: Tally, from = '127.0.0.2', batch = 30): Promise<void> {
  while (ctx.live()) {
    const peers = (await Promise.all(Array.from({ length: batch }, () => tryConnect(t, ctx.ports.smtp, from)))).filter((p) => p !== undefined);
    // All greeted first, so the batch's sessions are alive together (with the slowloris of the
    // same address, past smtpd_client_connection_count_limit), then EHLO + QUIT, never a close.
    await Promise.all(peers.map((p) => p.wait(/\r\n/, 10_000).then((m) => { if (m) p.got = m.input; })));
    for (const p of peers) p.sock.write('EHLO quit.example\r\nQUIT\r\n');
    await ctx.sleep(10_000);
    for (const p of peers) {
      t.note(`${firstLine(p.got)} ... ${lastLine(p.got)} / ${p.gone ? 'closed by the server' : 'still open after 10 s'}`);
      p.destroy();
    }
  }
}

/** (2) Slowloris: `n` connections, each trickling one byte every 3 s; reconnect when closed. */
export async function slowloris(ctx: SoakContext, t: Tally, port: number, from: string, n: number, proto: 'smtp' | 'imap'): Promise<void> {
  const line = proto === 'smtp' ? 'EHLO ' + 'x'.repeat(4000) : 'a LOGIN ' + 'x'.repeat(4000);
  const slot = async (k: number) => {
    await ctx.sleep(k * 100);
    while (ctx.live()) {
      const p = await tryConnect(t, port, from);
      if (!p) { await ctx.sleep(3000); continue; }
      const greeting = await p.wait(/^[^\r\n]*\r\n/, 10_000);
      for (let i = 0; ctx.live() && !p.gone; i++) {
        p.sock.write(line[i % line.length]!);
        await ctx.sleep(3000);
      }
      const g = greeting ? firstLine(greeting[0]) : '(no greeting)';
      if (p.gone) t.note(`${g} ... closed by the server (${lived(p)}): ${lastLine(p.got)}`);
      else t.note(`${g} ... open at the deadline (${lived(p)})`, true);
      p.destroy();
    }
  };
  await Promise.all(Array.from({ length: n }, (_, k) => slot(k)));
}

/** (3) DATA of twice message_size_limit at full speed. */
export async function oversizeData(ctx: SoakContext, t: Tally, from = '127.0.0.4'): Promise<void> {
  while (ctx.live()) {
    const p = await tryConnect(t, ctx.ports.smtp, from);
    if (!p) { await ctx.sleep(1000); continue; }
    const t0 = Date.now();
    if (await p.wait(/^220 [^\r\n]*\r\n/m, 10_000)) {
      p.sock.write(`EHLO size.example\r\nMAIL FROM:<big@example.org>\r\nRCPT TO:<${ctx.user}>\r\nDATA\r\n`);
      const go = await p.wait(/^(?:354|[45]\d\d) [^\r\n]*\r\n/m, 10_000);
      if (go?.[0].startsWith('354')) {
        const sent = await streamBytes(p, 2 * ctx.messageSizeLimit, TEXT);
        await p.write('.\r\n');
        const r = await p.wait(/^\d{3} [^\r\n]*\r\n/m, 60_000);
        const secs = (Date.now() - t0) / 1000;
        t.note(r ? `${lastLine(r[0])} after ${MB(sent)}` : `${p.gone ? 'closed' : 'no reply in 60 s'} after ${MB(sent)}`);
        t.bytes += sent;
        t.busyMs += secs * 1000;
      } else t.note(`DATA refused: ${go ? lastLine(go[0]) : '(no reply)'}`);
    } else t.note('no greeting in 10 s');
    p.sock.write('QUIT\r\n');
    p.destroy();
  }
}

/** (3) BDAT of twice message_size_limit, 1 MB chunks pipelined, at full speed. */
export async function oversizeBdat(ctx: SoakContext, t: Tally, from = '127.0.0.4'): Promise<void> {
  const chunk = 1024 * 1024;
  while (ctx.live()) {
    const p = await tryConnect(t, ctx.ports.smtp, from);
    if (!p) { await ctx.sleep(1000); continue; }
    const t0 = Date.now();
    if (await p.wait(/^220 [^\r\n]*\r\n/m, 10_000)) {
      p.sock.write(`EHLO size.example\r\nMAIL FROM:<big@example.org>\r\nRCPT TO:<${ctx.user}>\r\n`);
      const rcpt = await p.wait(/^(?:250 2\.1\.5|[45]\d\d) [^\r\n]*\r\n/m, 10_000);
      if (rcpt?.[0].startsWith('250')) {
        const chunks = Math.ceil((2 * ctx.messageSizeLimit) / chunk);
        let sent = 0;
        for (let i = 0; i < chunks && !p.gone; i++) {
          if (!(await p.write(`BDAT ${chunk}\r\n`))) break;
          sent += await streamBytes(p, chunk, TEXT);
        }
        t.bytes += sent;
        t.busyMs += Date.now() - t0;
        await p.write('BDAT 0 LAST\r\n');
        const codes = new Map<string, number>();
        for (let i = 0; i <= chunks; i++) {
          const r = await p.wait(/^\d{3} [^\r\n]*\r\n/m, i === 0 ? 60_000 : 5000);
          if (!r) break;
          const k = lastLine(r[0]);
          codes.set(k, (codes.get(k) ?? 0) + 1);
        }
        t.note(`${[...codes].map(([k, v]) => `${v} x ${k}`).join('; ') || '(no reply)'} for ${chunks + 1} BDAT, ${MB(sent)}${p.gone ? ', closed' : ''}`);
      } else t.note(`RCPT refused: ${rcpt ? lastLine(rcpt[0]) : '(no reply)'}`);
    } else t.note('no greeting in 10 s');
    p.sock.write('QUIT\r\n');
    p.destroy();
  }
}

/**
 * (4) Pre-login IMAP: one ID command carrying up to 5,000 synchronizing literals, of 8 KB on
 * one connection and of 1 KB on the other (a server that refuses an 8 KB literal before login,
 * as Dovecot's login process does, still meets thousands of small ones in one command).
 */
export async function literals(ctx: SoakContext, t: Tally, from = '127.0.0.3', parallel = 2): Promise<void> {
  const one = async (k: number) => {
    const size = k % 2 === 0 ? 8192 : 1024;
    const data = K8.subarray(0, size);
    while (ctx.live()) {
      const p = await tryConnect(t, ctx.ports.imap, from);
      if (!p) { await ctx.sleep(1000); continue; }
      let n = 0;
      let end = '(no greeting)';
      if (await p.wait(/^\* OK[^\r\n]*\r\n/m, 10_000)) {
        await p.write(`a ID ({${size}}\r\n`);
        for (;;) {
          const r = await p.wait(/^(?:\+|a |\* BYE)[^\r\n]*\r\n/m, 10_000);
          if (!r || !r[0].startsWith('+')) { end = r ? lastLine(r[0]) : p.gone ? 'closed' : 'no answer in 10 s'; break; }
          n++;
          if (!ctx.live()) { end = ''; break; }
          if (n >= 5000) {
            await p.write(Buffer.concat([data, Buffer.from(')\r\n')]));
            const f = await p.wait(/^(?:a |\* BYE)[^\r\n]*\r\n/m, 10_000);
            end = `all 5000 sent; ${f ? lastLine(f[0]) : '(no answer)'}`;
            break;
          }
          await p.write(Buffer.concat([data, Buffer.from(` {${size}}\r\n`)]));
        }
      }
      if (end === '') t.note('(cut by the deadline)', true);
      else t.note(`${size / 1024} KB literals: ${end} after ${n < 10 ? n : n < 100 ? '10-99' : n < 1000 ? '100-999' : '1000+'} literals`);
      p.destroy();
      await ctx.sleep(100);
    }
  };
  await Promise.all(Array.from({ length: parallel }, (_, k) => one(k)));
}

/** (5) IMAPS login, COMPRESS DEFLATE, then FETCH 1:* BODY[] every 250 ms (deflated), never reading. */
export async function compressFetch(ctx: SoakContext, t: Tally, from = '127.0.0.5', parallel = 2, fetches = 200): Promise<void> {
  const z = (s: string) => deflateRawSync(Buffer.from(s), { finishFlush: constants.Z_SYNC_FLUSH });
  const one = async () => {
    while (ctx.live()) {
      const p = await tryConnect(t, ctx.ports.imaps, from, { tls: true });
      if (!p) { await ctx.sleep(1000); continue; }
      let outcome = '(no greeting)';
      if (await p.wait(/^\* OK[^\r\n]*\r\n/m, 10_000)) {
        p.sock.write(`l LOGIN ${ctx.bulk.user} ${ctx.bulk.pass}\r\ns SELECT INBOX\r\nz COMPRESS DEFLATE\r\n`);
        const ok = await p.wait(/^z [^\r\n]*\r\n/m, 20_000);
        if (ok?.[0].startsWith('z OK')) {
          p.sock.removeAllListeners('data');
          p.sock.pause();
          let i = 0;
          for (; i < fetches && ctx.live() && !p.gone; i++) {
            p.sock.write(z(`f${i} FETCH 1:* BODY[]\r\n`));
            await ctx.sleep(250);
          }
          outcome = `${i < 50 ? i : i < 200 ? '50-199' : '200'} FETCH 1:* BODY[] sent unread; ${p.gone ? 'closed by the server' : 'connection open'}`;
        } else outcome = `COMPRESS: ${ok ? lastLine(ok[0]) : lastLine(p.got)}`;
      }
      t.note(outcome);
      p.destroy();
    }
  };
  await Promise.all(Array.from({ length: parallel }, one));
}

/** (6) LMTP DATA of 4 MB, one at a time; the delivered files are removed after each. */
export async function lmtpBig(ctx: SoakContext, t: Tally, from = '127.0.0.6', bytes = 4 * 1024 * 1024): Promise<void> {
  const clean = () => {
    for (const d of ['new', 'cur']) {
      try { for (const f of readdirSync(join(ctx.sink.maildir, d))) rmSync(join(ctx.sink.maildir, d, f), { force: true }); } catch { /* not yet */ }
    }
  };
  while (ctx.live()) {
    const p = await tryConnect(t, ctx.ports.lmtp, from);
    if (!p) { await ctx.sleep(1000); continue; }
    if (await p.wait(/^220 [^\r\n]*\r\n/m, 10_000)) {
      p.sock.write(`LHLO lmtp.example\r\nMAIL FROM:<lmtp@example.org>\r\nRCPT TO:<${ctx.sink.user}>\r\nDATA\r\n`);
      const go = await p.wait(/^(?:354|[45]\d\d) [^\r\n]*\r\n/m, 10_000);
      if (go?.[0].startsWith('354')) {
        await p.write('Subject: soak lmtp\r\n\r\n');
        const sent = await streamBytes(p, bytes, TEXT);
        await p.write('.\r\n');
        const r = await p.wait(/^\d{3} [^\r\n]*\r\n/m, 60_000);
        t.note(r ? `${lastLine(r[0]).replace(/<[^>]*>/g, '<..>')} (${MB(sent)})` : p.gone ? 'closed' : 'no reply in 60 s');
      } else t.note(`DATA refused: ${go ? lastLine(go[0]) : '(no reply)'}`);
      p.sock.write('QUIT\r\n');
    } else t.note('no greeting in 10 s');
    p.destroy();
    clean();
  }
  clean();
}

/** (7) IMAPS AUTHENTICATE PLAIN, then a 10 MB response line; what answers, and when? */
export async function authenticateLine(ctx: SoakContext, t: Tally, from = '127.0.0.7', parallel = 2): Promise<void> {
  const one = async () => {
    while (ctx.live()) {
      const p = await tryConnect(t, ctx.ports.imaps, from, { tls: true });
      if (!p) { await ctx.sleep(1000); continue; }
      let outcome = '(no greeting)';
      if (await p.wait(/^\* OK[^\r\n]*\r\n/m, 10_000)) {
        p.sock.write('a AUTHENTICATE PLAIN\r\n');
        const plus = await p.wait(/^(?:\+|a |\* BYE)[^\r\n]*\r\n/m, 10_000);
        if (plus?.[0].startsWith('+')) {
          const sent = await streamBytes(p, 10 * 1024 * 1024, A64K);
          await p.write('\r\n');
          const r = await p.wait(/^(?:a |\* BYE)[^\r\n]*\r\n/m, 30_000);
          // A server that closes with our bytes unread resets the connection: its last words may be lost.
          outcome = r ? `${lastLine(r[0])} (${MB(sent)} sent)` : `${p.gone ? 'closed, no answer read' : 'no answer in 30 s'} (${MB(sent)} sent)`;
        } else outcome = `AUTHENTICATE: ${plus ? lastLine(plus[0]) : '(no answer)'}`;
      }
      t.note(outcome);
      p.destroy();
      await ctx.sleep(100);
    }
  };
  await Promise.all(Array.from({ length: parallel }, one));
}

/** (8) Guess the real user's password: IMAPS LOGIN on `imapConns`, SMTP AUTH (submissions) on `smtpConns`. */
export async function guess(ctx: SoakContext, t: Tally, delays: number[], from = '127.0.0.8', imapConns = 3, smtpConns = 2): Promise<void> {
  let n = 0;
  const imap = async () => {
    while (ctx.live()) {
      const p = await tryConnect(t, ctx.ports.imaps, from, { tls: true });
      if (!p) { await ctx.sleep(1000); continue; }
      if (await p.wait(/^\* OK[^\r\n]*\r\n/m, 10_000)) {
        while (ctx.live() && !p.gone) {
          const t0 = Date.now();
          p.sock.write(`g${n} LOGIN ${ctx.user} guess${n++}\r\n`);
          const r = await p.wait(/^(?:g\d+ |\* BYE)[^\r\n]*\r\n/m, 30_000);
          if (!r) break;
          delays.push(Date.now() - t0);
          t.note(`IMAP ${lastLine(r[0])}`);
        }
      }
      p.destroy();
    }
  };
  const smtp = async () => {
    while (ctx.live()) {
      const p = await tryConnect(t, ctx.ports.submissions, from, { tls: true });
      if (!p) { await ctx.sleep(1000); continue; }
      if (await p.wait(/^220 [^\r\n]*\r\n/m, 10_000)) {
        p.sock.write('EHLO guesser.example\r\n');
        if (await p.wait(/^250 [^\r\n]*\r\n/m, 10_000)) {
          while (ctx.live() && !p.gone) {
            const t0 = Date.now();
            p.sock.write(`AUTH PLAIN ${Buffer.from(`\0${ctx.user}\0smtp-guess${n++}`).toString('base64')}\r\n`);
            const r = await p.wait(/^\d{3} [^\r\n]*\r\n/m, 30_000);
            if (!r) break;
            delays.push(Date.now() - t0);
            t.note(`SMTP ${lastLine(r[0])}`);
          }
        }
      }
      p.destroy();
    }
  };
  await Promise.all([...Array.from({ length: imapConns }, imap), ...Array.from({ length: smtpConns }, smtp)]);
}

/** (9) 5,000 unknown commands at once per connection, on SMTP, IMAP and POP3 (one connection each at a time). */
export async function junk(ctx: SoakContext, t: Tally, from = '127.0.0.9', lines = 5000): Promise<void> {
  const one = async (proto: 'SMTP' | 'IMAP' | 'POP3', port: number, cmd: string) => {
    const flood = cmd.repeat(lines);
    while (ctx.live()) {
      const p = await tryConnect(t, port, from);
      if (!p) { await ctx.sleep(1000); continue; }
      const t0 = Date.now();
      await p.write(flood);
      const closed = await p.closedWithin(20_000);
      const secs = ((p.closedAt || Date.now()) - t0) / 1000;
      t.note(`${proto}: ${lastLine(p.got)} / ${closed ? `closed by the server in ${secs < 2 ? '<2' : secs < 10 ? '<10' : '<20'} s` : 'open after 20 s'}`);
      p.destroy();
    }
  };
  await Promise.all([
    one('SMTP', ctx.ports.smtp, 'XJUNK junk junk\r\n'),
    one('IMAP', ctx.ports.imap, 'j XJUNK junk\r\n'),
    one('POP3', ctx.ports.pop3, 'XJUNK junk\r\n'),
  ]);
}
