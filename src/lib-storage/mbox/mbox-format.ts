/**
 * mbox-format - the UNIX mailbox format as Postfix local(8)/virtual(8) write it and Dovecot
 * reads it (mbox(5) "mboxo"): each message starts with a "From <sender> <asctime>" line, lines
 * of the body that begin with "From " are written as ">From ", and a message ends with an
 * empty line. Postern does not unquote ">From " when serving a message (neither does Dovecot).
 *
 * Status lines Dovecot (and mutt/pine) keep in the headers are read as flags:
 *   Status: R (\Seen) O (old: not \Recent)     X-Status: A (\Answered) F (\Flagged) T (\Draft) D (\Deleted)
 *   X-Keywords: kw1 kw2      X-UID: <uid>      X-IMAPbase: <uidvalidity> <uidnext> [keywords] (first message)
 * They are hidden from the served content, as Dovecot's mbox driver hides them.
 */
import type { SystemFlag } from '../mail-storage.ts';
import { asctime } from '../../util/asctime.ts';

export interface MboxMessage {
  /** Offset of the "From " line. */
  fromOffset: number;
  /** Offset and length of the message itself (after the From_ line, without the separator blank line). */
  offset: number;
  length: number;
  fromLine: string;
  flags: SystemFlag[];
  keywords: string[];
  /** X-UID header, if any. */
  xUid?: number;
  /** Length of the header block (for hiding status headers) and where the body starts. */
  headerLength: number;
  bodyStart: number;
}

export interface MboxParse {
  messages: MboxMessage[];
  /** From X-IMAPbase of the first message (uidNext = Dovecot's last UID + 1). */
  imapBase?: { uidValidity: number; uidNext: number };
  /** Bytes before the first From_ line that are not a message (corrupt start), reported. */
  garbageBytes: number;
}

export const HIDDEN_HEADERS = new Set(['status', 'x-status', 'x-keywords', 'x-uid', 'x-imapbase', 'x-imap', 'content-length']);

/**
 * Split an mbox buffer into messages. Never throws. A message ends where the next
 * "\nFrom " line starts, except when its Content-Length header (written by Dovecot, which
 * does not quote "From " in bodies) points exactly at the end of the file or at an empty
 * line followed by "From ": then that length is trusted, as Dovecot's mbox reader does.
 */
export function parseMbox(buf: Buffer): MboxParse {
  const out: MboxParse = { messages: [], garbageBytes: 0 };
  let s: number;
  if (buf.length >= 5 && buf.toString('latin1', 0, 5) === 'From ') s = 0;
  else {
    const j = buf.indexOf('\nFrom ', 0, 'latin1');
    if (j < 0) { out.garbageBytes = buf.length; return out; }
    s = j + 1;
    out.garbageBytes = s;
  }
  while (s < buf.length) {
    let eol = buf.indexOf(10, s);
    if (eol < 0) eol = buf.length;
    const fromLine = buf.toString('latin1', s, eol).replace(/\r$/, '');
    const off = Math.min(eol + 1, buf.length);
    const m: MboxMessage = { fromOffset: s, offset: off, length: 0, fromLine, flags: [], keywords: [], headerLength: 0, bodyStart: off };
    // provisional end: the next From_ line
    const nx = buf.indexOf('\nFrom ', Math.max(off - 1, s), 'latin1');
    let end = nx < 0 ? buf.length : nx + 1;
    m.length = end - off;
    const cl = parseStatusHeaders(buf, m, out.messages.length === 0 ? out : undefined);
    if (cl !== undefined) {
      const bodyEnd = m.bodyStart + cl;
      if (bodyEnd === buf.length || (bodyEnd + 1 === buf.length && buf[bodyEnd] === 10)) end = buf.length;
      else if (bodyEnd < buf.length && buf[bodyEnd] === 10 && buf.toString('latin1', bodyEnd + 1, bodyEnd + 6) === 'From ') end = bodyEnd + 1;
    }
    let len = end - off;
    // the separator: one empty line before the next From_ (LF or CRLF)
    if (len >= 2 && buf[off + len - 1] === 10 && buf[off + len - 2] === 10) len -= 1;
    else if (len >= 3 && buf[off + len - 1] === 10 && buf[off + len - 2] === 13 && buf[off + len - 3] === 10) len -= 2;
    m.length = Math.max(0, len);
    out.messages.push(m);
    if (end <= s) break;
    s = end;
  }
  return out;
}

/** Reads the status headers into m; returns Content-Length if present. */
function parseStatusHeaders(buf: Buffer, m: MboxMessage, first: MboxParse | undefined): number | undefined {
  let contentLength: number | undefined;
  // header block: up to and including its last line end; the body starts after the empty line
  const lim = m.offset + m.length;
  const lf = buf.indexOf('\n\n', m.offset, 'latin1');
  const crlf = buf.indexOf('\r\n\r\n', m.offset, 'latin1');
  let hdrEnd: number, bodyStart: number;
  if (crlf >= 0 && crlf < lim && (lf < 0 || crlf < lf)) { hdrEnd = crlf + 2; bodyStart = crlf + 4; }
  else if (lf >= 0 && lf < lim) { hdrEnd = lf + 1; bodyStart = lf + 2; }
  else { hdrEnd = lim; bodyStart = lim; }
  m.headerLength = hdrEnd - m.offset;
  m.bodyStart = bodyStart;
  const hdr = buf.toString('latin1', m.offset, Math.min(hdrEnd, m.offset + 65536));
  const set = new Set<SystemFlag>();
  for (const line of hdr.split(/\r?\n/)) {
    const c = line.indexOf(':');
    if (c <= 0) continue;
    const name = line.slice(0, c).toLowerCase();
    const val = line.slice(c + 1).trim();
    if (name === 'status') { if (val.includes('R')) set.add('\\Seen'); }
    else if (name === 'x-status') {
      if (val.includes('A')) set.add('\\Answered');
      if (val.includes('F')) set.add('\\Flagged');
      if (val.includes('T')) set.add('\\Draft');
      if (val.includes('D')) set.add('\\Deleted');
    } else if (name === 'x-keywords') m.keywords = val.split(/[\s,]+/).filter((k) => k !== '');
    else if (name === 'x-uid' && /^\d{1,10}$/.test(val)) m.xUid = Number(val);
    else if (name === 'content-length' && /^\d{1,12}$/.test(val)) contentLength = Number(val);
    else if (name === 'x-imapbase' && first) {
      const p = /^(\d{1,10}) (\d{1,10})/.exec(val);
      // Dovecot writes the LAST UID given ("%010u" of next_uid - 1)
      if (p) first.imapBase = { uidValidity: Number(p[1]), uidNext: Number(p[2]) + 1 };
    }
  }
  m.flags = (['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'] as SystemFlag[]).filter((f) => set.has(f));
  return contentLength;
}

/** The served content: the message without the status headers Dovecot hides. */
export function messageContent(buf: Buffer, m: MboxMessage): Buffer {
  const hdr = buf.subarray(m.offset, m.offset + Math.min(m.headerLength, m.length));
  const body = buf.subarray(m.offset + Math.min(m.headerLength, m.length), m.offset + m.length);
  const kept: Buffer[] = [];
  let skip = false;
  let pos = 0;
  while (pos < hdr.length) {
    let e = hdr.indexOf(10, pos);
    if (e < 0) e = hdr.length - 1;
    const line = hdr.subarray(pos, e + 1);
    const first = line[0];
    if (first === 32 || first === 9) { if (!skip) kept.push(line); }
    else {
      const c = line.indexOf(58);
      const name = c > 0 ? line.toString('latin1', 0, c).toLowerCase() : '';
      skip = HIDDEN_HEADERS.has(name);
      if (!skip) kept.push(line);
    }
    pos = e + 1;
  }
  return Buffer.concat([...kept, body]);
}

/**
 * One message in mbox form: From_ line, content with CRLF → LF and "From " lines quoted
 * (Postfix mail_copy() MAIL_COPY_QUOTE), a final newline and the separating empty line.
 */
export function formatMboxMessage(content: Buffer, sender: string, when: Date): Buffer {
  let text = content.toString('latin1').replace(/\r\n/g, '\n');
  if (!text.endsWith('\n')) text += '\n';
  text = text.replace(/^From /gm, '>From ');
  const from = `From ${sender === '' ? 'MAILER-DAEMON' : sender.replace(/\s/g, '')}  ${asctime(when, true)}\n`;
  return Buffer.from(from + text + '\n', 'latin1');
}
