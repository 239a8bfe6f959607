/**
 * pop3d-commands - the TRANSACTION state commands of RFC 1939 §5 and RFC 2449 (STAT LIST RETR
 * DELE NOOP RSET TOP UIDL CAPA), one table entry per command as Dovecot's pop3/pop3-commands.c,
 * with its argument checks and reply texts word for word:
 *
 *   -ERR Invalid message number: ARGS      -ERR Message number too large: ARGS
 *   -ERR Noise after message number: ARGS  -ERR There's no message N.
 *   -ERR Message is deleted.               -ERR Message N expunged.
 *   -ERR Invalid size: ARGS                -ERR Noise after size: ARGS
 *   +OK Marked to be deleted.              +OK N messages:       +OK N octets
 *
 * RETR and TOP send the message with CRLF line ends and dot-stuffing (RFC 1939 §3), ended by
 * ".", writing with back-pressure. A message over STREAM_MIN is read and sent chunk by chunk
 * (pop3d-stream.ts), so a session never holds a large message, a slow reader neither.
 */
import { MailError } from '../lib-storage/mail-storage.ts';
import { dotStuff } from '../lib-smtp/smtp-data-stream.ts';
import type { Pop3Maildrop } from './pop3d-maildrop.ts';
import { DotStuffer, TopCutter } from './pop3d-stream.ts';
import type { Readable } from 'node:stream';

/** Messages larger than this (bytes) are streamed from the file instead of read whole. */
export const STREAM_MIN = 256 * 1024;

export interface Pop3Io {
  /** One reply line (CRLF added). */
  line(text: string): Promise<void>;
  /** Raw bytes (already CRLF and dot-stuffed). */
  raw(data: Buffer): Promise<void>;
}

export type Pop3Command = (drop: Pop3Maildrop, args: string, io: Pop3Io) => Promise<void>;

const MAX_UINT = 0xffffffff;

/** Dovecot's get_msgnum(): returns the 0-based index and the rest, or undefined after replying. */
async function msgnum(drop: Pop3Maildrop, args: string, io: Pop3Io, thenSpace: boolean): Promise<[number, string] | undefined> {
  const m = /^\d+/.exec(args);
  if (!m) { await io.line(`-ERR Invalid message number: ${args}`); return undefined; }
  let rest = args.slice(m[0].length);
  const num = Number(m[0]);
  if (num > MAX_UINT) { await io.line(`-ERR Message number too large: ${rest}`); return undefined; }
  if (rest[0] !== (thenSpace ? ' ' : undefined)) { await io.line(`-ERR Noise after message number: ${rest}`); return undefined; }
  if (num === 0 || num > drop.messages.length) { await io.line(`-ERR There's no message ${num}.`); return undefined; }
  if (drop.messages[num - 1]!.deleted) { await io.line('-ERR Message is deleted.'); return undefined; }
  rest = rest.replace(/^ +/, '');
  return [num - 1, rest];
}

async function sizeArg(args: string, io: Pop3Io): Promise<number | undefined> {
  const m = /^\d+/.exec(args);
  if (!m) { await io.line(`-ERR Invalid size: ${args}`); return undefined; }
  const rest = args.slice(m[0].length);
  const n = Number(m[0]);
  if (!Number.isSafeInteger(n)) { await io.line(`-ERR Size too large: ${rest}`); return undefined; }
  if (rest !== '') { await io.line(`-ERR Noise after size: ${rest}`); return undefined; }
  return n;
}

async function content(drop: Pop3Maildrop, i: number, io: Pop3Io): Promise<Buffer | undefined> {
  try {
    return await drop.box.readContent(drop.messages[i]!.uid);
  } catch (e) {
    if (e instanceof MailError && (e.code === 'EXPUNGED' || e.code === 'NOTFOUND')) {
      await io.line(`-ERR Message ${i + 1} expunged.`);
      return undefined;
    }
    throw e;
  }
}

/** The message as a stream (large messages); undefined after replying when it is gone. */
async function openStream(drop: Pop3Maildrop, i: number, io: Pop3Io): Promise<Readable | undefined> {
  try {
    return await drop.box.openContent(drop.messages[i]!.uid);
  } catch (e) {
    if (e instanceof MailError && (e.code === 'EXPUNGED' || e.code === 'NOTFOUND')) {
      await io.line(`-ERR Message ${i + 1} expunged.`);
      return undefined;
    }
    throw e;
  }
}

/** Send `src` dot-stuffed, chunk by chunk; with `top`, only what TOP wants. Returns the bytes taken. */
async function sendStream(src: Readable, io: Pop3Io, top?: TopCutter): Promise<number> {
  const ds = new DotStuffer();
  let taken = 0;
  try {
    for await (const c of src) {
      const part = top ? top.cut(c as Buffer) : (c as Buffer);
      taken += part.length;
      const out = ds.push(part);
      if (out.length > 0) await io.raw(out);
      if (top?.done) break;
    }
  } finally { src.destroy(); }
  await io.raw(ds.end());
  return taken;
}

/** Header block + blank line + the first `lines` body lines (RFC 1939 §7 TOP). */
export function topOf(msg: Buffer, lines: number): Buffer {
  let pos = 0;
  // End of the header: the first empty line.
  for (;;) {
    const nl = msg.indexOf(0x0a, pos);
    if (nl < 0) return msg;
    const empty = nl === pos || (nl === pos + 1 && msg[pos] === 0x0d);
    pos = nl + 1;
    if (empty) break;
  }
  for (let n = 0; n < lines; n++) {
    const nl = msg.indexOf(0x0a, pos);
    if (nl < 0) return msg;
    pos = nl + 1;
  }
  return msg.subarray(0, pos);
}

export const TRANSACTION_COMMANDS: ReadonlyMap<string, Pop3Command> = new Map<string, Pop3Command>([
  ['STAT', async (drop, _args, io) => {
    const [n, size] = drop.stat();
    await io.line(`+OK ${n} ${size}`);
  }],
  ['LIST', async (drop, args, io) => {
    if (args === '') {
      const [n] = drop.stat();
      const out = [`+OK ${n} messages:`];
      drop.messages.forEach((m, i) => { if (!m.deleted) out.push(`${i + 1} ${m.size}`); });
      out.push('.');
      await io.raw(Buffer.from(out.join('\r\n') + '\r\n'));
      return;
    }
    const r = await msgnum(drop, args, io, false);
    if (r) await io.line(`+OK ${r[0] + 1} ${drop.messages[r[0]]!.size}`);
  }],
  ['UIDL', async (drop, args, io) => {
    if (args === '') {
      const out = ['+OK'];
      drop.messages.forEach((m, i) => { if (!m.deleted) out.push(`${i + 1} ${m.uidl}`); });
      out.push('.');
      await io.raw(Buffer.from(out.join('\r\n') + '\r\n'));
      return;
    }
    const r = await msgnum(drop, args, io, false);
    if (r) await io.line(`+OK ${r[0] + 1} ${drop.messages[r[0]]!.uidl}`);
  }],
  ['RETR', async (drop, args, io) => {
    const r = await msgnum(drop, args, io, false);
    if (!r) return;
    const msg = drop.messages[r[0]]!;
    if (msg.size > STREAM_MIN) {
      const src = await openStream(drop, r[0], io);
      if (!src) return;
      await io.line(`+OK ${msg.size} octets`);
      await sendStream(src, io);
    } else {
      const body = await content(drop, r[0], io);
      if (!body) return;
      await io.line(`+OK ${msg.size} octets`);
      await io.raw(dotStuff(body));
    }
    msg.retrieved = true;
    drop.stats.retr++;
    drop.stats.retrBytes += msg.size;
  }],
  ['TOP', async (drop, args, io) => {
    const r = await msgnum(drop, args, io, true);
    if (!r) return;
    const lines = await sizeArg(r[1], io);
    if (lines === undefined) return;
    if (drop.messages[r[0]]!.size > STREAM_MIN) {
      const src = await openStream(drop, r[0], io);
      if (!src) return;
      await io.line('+OK');
      drop.stats.topBytes += await sendStream(src, io, new TopCutter(lines));
      drop.stats.top++;
      return;
    }
    const body = await content(drop, r[0], io);
    if (!body) return;
    const part = topOf(body, lines);
    await io.line('+OK');
    await io.raw(dotStuff(part));
    drop.stats.top++;
    drop.stats.topBytes += part.length;
  }],
  ['DELE', async (drop, args, io) => {
    const r = await msgnum(drop, args, io, false);
    if (!r) return;
    drop.messages[r[0]]!.deleted = true;
    drop.stats.del++;
    await io.line('+OK Marked to be deleted.');
  }],
  ['RSET', async (drop, _args, io) => {
    drop.rset();
    await io.line('+OK');
  }],
  ['NOOP', async (_drop, _args, io) => { await io.line('+OK'); }],
  ['CAPA', async (_drop, _args, io) => {
    await io.raw(Buffer.from(['+OK', ...POP3_CAPABILITIES, '.'].join('\r\n') + '\r\n'));
  }],
]);

/** RFC 2449 capabilities as Dovecot 2.3 lists them after login. */
export const POP3_CAPABILITIES: readonly string[] = ['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE'];
