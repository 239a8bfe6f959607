/**
 * pickup-file - reads ONE maildrop file with the strict checks Postfix applies to local
 * submissions (REC_TYPE_POST_ENVELOPE / _CONTENT / _EXTRACT in rec_type.h, postdrop.c,
 * pickup.c): a local user can write any bytes into a maildrop file, so nothing in it is trusted.
 *
 * Accepted (CONTRACT 1 framing, src/global/rec-type.ts):
 *
 *   envelope:  C (first), T (ignored: the file's mtime is used), S (exactly one), A (allowlisted;
 *              notify_flags = DSN NOTIFY before its R), n (the same as a record), R;  then an
 *              empty M record that ends where the C record says the content starts
 *   content:   N and L records only (Postfix REC_TYPE_POST_CONTENT), each at most
 *              line_length_limit, up to the X record where the C record says the content ends
 *   extracted: X, n, R, A (allowlisted), then E, and nothing after E
 *
 * Rejected as corrupt (MaildropError): any other record type — D (a "done" recipient), O/o
 * (original recipient / ORCPT, which would show in delivery reports), W, a second S, records
 * longer than line_length_limit, lengths past the end of the file, a missing E, control
 * characters in addresses. Attributes outside POST_ATTRS (src/global/maildrop.ts), such as
 * client_address or sasl_username that would make the message look as if it came over SMTP,
 * are dropped and reported in `ignoredAttrs`: Postfix's postdrop does the same with a warning.
 *
 * Opening: O_NOFOLLOW (a symlink to /etc/shadow is refused, not read), a regular file with one
 * link only (a hard link to another user's file is refused), as Postfix's safe_open().
 */
import { promises as fsp, constants as C, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { attrFromFile, FILE_ATTR, REC, SIZE_FIELDS, SIZE_FIELD_WIDTH } from '../global/rec-type.ts';
import { postAttrAllowed } from '../global/maildrop.ts';

export class MaildropError extends Error {
  override name = 'MaildropError';
  /** 'corrupt': move to the corrupt queue; 'unsafe': remove (a symlink or hard link, never read). */
  readonly kind: 'corrupt' | 'unsafe';
  constructor(message: string, kind: 'corrupt' | 'unsafe' = 'corrupt') { super(message); this.kind = kind; }
}

export interface MaildropRecipient { address: string; notify?: number }

export interface MaildropFile {
  fh: FileHandle;
  st: Stats;
  sender: string;
  attrs: Map<string, string>;
  /** Attributes the user may not set, dropped ("name=value", truncated). */
  ignoredAttrs: string[];
  recipients: MaildropRecipient[];
  contentOffset: number;
  contentLength: number;
}

interface RawRec { type: string; offset: number; data: Buffer; end: number }

/** Decode one record header+payload at `pos`; `maxLen` bounds the payload. */
function recordAt(buf: Buffer, pos: number, maxLen: number, where: string): RawRec {
  const offset = pos;
  const type = String.fromCharCode(buf[pos++]!);
  let len = 0;
  let mul = 1;
  for (let i = 0; ; i++) {
    if (pos >= buf.length) throw new MaildropError(`${where}: truncated record length at offset ${offset}`);
    if (i >= 5) throw new MaildropError(`${where}: too many length bits, record type ${type.charCodeAt(0)} at offset ${offset}`);
    const b = buf[pos++]!;
    len += (b & 0x7f) * mul;
    mul *= 128;
    if ((b & 0x80) === 0) break;
  }
  if (len > maxLen) throw new MaildropError(`${where}: record type '${printable(type)}' at offset ${offset} is longer than line_length_limit (${len} > ${maxLen})`);
  if (pos + len > buf.length) throw new MaildropError(`${where}: record at offset ${offset} runs past the end of the file`);
  return { type, offset, data: buf.subarray(pos, pos + len), end: pos + len };
}

function printable(t: string): string {
  return /^[\x21-\x7e]$/.test(t) ? t : `\\x${t.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

const ENVELOPE_MAX = 64 * 1024 * 1024;

/**
 * Open and check a maildrop file. The caller owns `fh` (close it) and streams the content from
 * contentOffset. `where` prefixes error texts (e.g. "maildrop/3AC1A210419: uid=1000").
 */
export async function openMaildropFile(path: string, lineLimit: number, where: string): Promise<MaildropFile> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(path, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'EMLINK') throw new MaildropError(`${where}: is a symbolic link: refused`, 'unsafe');
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new MaildropError(`${where}: not a regular file: refused`, 'unsafe');
    if (st.nlink !== 1) throw new MaildropError(`${where}: file has ${st.nlink} hard links: refused`, 'unsafe');
    const f = await parse(fh, st, Math.max(lineLimit, 256), where);
    return f;
  } catch (e) {
    await fh.close().catch(() => {});
    throw e;
  }
}

async function parse(fh: FileHandle, st: Stats, lineLimit: number, where: string): Promise<MaildropFile> {
  const size = st.size;
  const sizeRecLen = 2 + SIZE_FIELD_WIDTH * SIZE_FIELDS + (SIZE_FIELDS - 1);
  if (size < sizeRecLen) throw new MaildropError(`${where}: file too short to be a queue file (${size} bytes)`);
  const head = Buffer.alloc(sizeRecLen);
  await fh.read(head, 0, sizeRecLen, 0);
  const c = recordAt(head, 0, lineLimit, where);
  if (c.type !== REC.SIZE) throw new MaildropError(`${where}: unexpected or malformed record type '${printable(c.type)}' at offset 0: not a queue file`);
  const nums = c.data.toString('latin1').trim().split(/\s+/).map(Number);
  // Postfix's C record: content size (M to X), content offset, ...
  const [contentLength = NaN, contentOffset = NaN] = nums;
  if (!Number.isSafeInteger(contentOffset) || !Number.isSafeInteger(contentLength) || contentOffset < sizeRecLen
      || contentLength <= 0 || contentOffset > ENVELOPE_MAX || contentOffset + contentLength > size) {
    throw new MaildropError(`${where}: bad size record (content ${contentOffset}+${contentLength}, file ${size} bytes)`);
  }
  const env = Buffer.alloc(contentOffset);
  await fh.read(env, 0, contentOffset, 0);
  const f: MaildropFile = { fh, st, sender: '', attrs: new Map(), ignoredAttrs: [], recipients: [], contentOffset, contentLength };
  let senders = 0;
  let notify: number | undefined;
  const attr = (data: Buffer): void => {
    const v = data.toString('utf8');
    const i = v.indexOf('=');
    if (i > 0 && v.slice(0, i) === FILE_ATTR.DSN_NOTIFY) { dsnNotify(data.subarray(i + 1), 0); return; }
    const [name, value] = i > 0 ? attrFromFile(v.slice(0, i), v.slice(i + 1)) : [v, ''];
    if (i > 0 && postAttrAllowed(name, value)) f.attrs.set(name, value);
    else f.ignoredAttrs.push(`${name.slice(0, 200)}=${value.slice(0, 200)}`);
  };
  const rcpt = (data: Buffer, off: number): void => {
    const a = data.toString('utf8');
    // eslint-disable-next-line no-control-regex
    if (a === '' || /[\x00-\x1f\x7f]/.test(a)) throw new MaildropError(`${where}: bad recipient address at offset ${off}`);
    f.recipients.push(notify === undefined ? { address: a } : { address: a, notify });
    notify = undefined;
  };
  const dsnNotify = (data: Buffer, off: number): void => {
    const s = data.toString('latin1');
    if (!/^\d{1,2}$/.test(s) || Number(s) > 15) throw new MaildropError(`${where}: bad DSN NOTIFY record at offset ${off}`);
    notify = Number(s);
  };

  // Envelope segment.
  let pos = c.end;
  for (;;) {
    if (pos >= env.length) throw new MaildropError(`${where}: envelope runs into the content (no M record at offset ${contentOffset})`);
    const r = recordAt(env, pos, lineLimit, where);
    if (r.type === REC.MESG) {
      // An empty M record, ending exactly where the C record says the content starts.
      if (r.end !== contentOffset || r.data.length !== 0) {
        throw new MaildropError(`${where}: message record at offset ${pos} does not match the size record`);
      }
      break;
    }
    switch (r.type) {
      case REC.TIME: break;
      case REC.FROM: {
        if (++senders > 1) throw new MaildropError(`${where}: more than one sender record (offset ${r.offset})`);
        const s = r.data.toString('utf8');
        // eslint-disable-next-line no-control-regex
        if (/[\x00-\x1f\x7f]/.test(s)) throw new MaildropError(`${where}: bad sender address at offset ${r.offset}`);
        f.sender = s;
        break;
      }
      case REC.ATTR: attr(r.data); break;
      case REC.DSN_NOTIFY: dsnNotify(r.data, r.offset); break;
      case REC.RCPT: rcpt(r.data, r.offset); break;
      default:
        throw new MaildropError(`${where}: unexpected or malformed record type '${printable(r.type)}' at offset ${r.offset}`);
    }
    pos = r.end;
  }
  if (senders === 0) throw new MaildropError(`${where}: no envelope sender`);

  await scanContent(fh, contentOffset, contentOffset + contentLength, lineLimit, where);

  // Extracted segment and end.
  const tailStart = contentOffset + contentLength;
  const tailLen = size - tailStart;
  if (tailLen > ENVELOPE_MAX) throw new MaildropError(`${where}: extracted segment too large`);
  const tail = Buffer.alloc(tailLen);
  await fh.read(tail, 0, tailLen, tailStart);
  pos = 0;
  let sawEnd = false;
  while (pos < tail.length) {
    const r = recordAt(tail, pos, lineLimit, where);
    const off = tailStart + r.offset;
    if (r.type === REC.END) {
      if (r.end !== tail.length) throw new MaildropError(`${where}: data after the end record (offset ${tailStart + r.end})`);
      sawEnd = true;
      break;
    }
    switch (r.type) {
      case REC.XTRA: break;
      case REC.ATTR: attr(r.data); break;
      case REC.DSN_NOTIFY: dsnNotify(r.data, off); break;
      case REC.RCPT: rcpt(r.data, off); break;
      default:
        throw new MaildropError(`${where}: unexpected or malformed record type '${printable(r.type)}' at offset ${off}`);
    }
    pos = r.end;
  }
  if (!sawEnd) throw new MaildropError(`${where}: no end record: incomplete file`);
  return f;
}

/**
 * The content [start, end) holds only N and L records of at most lineLimit bytes and is followed
 * by the X record (checked by the extracted segment's reading, which starts at `end`).
 */
async function scanContent(fh: FileHandle, start: number, end: number, lineLimit: number, where: string): Promise<void> {
  const win = Buffer.alloc(65536);
  let winStart = -1;
  let winLen = 0;
  let pos = start;
  while (pos < end) {
    // The record's header (type and up to 5 length bytes) must be in the window.
    if (winStart < 0 || pos >= winStart + winLen || (pos + 6 > winStart + winLen && winStart + winLen < end)) {
      winStart = pos;
      winLen = (await fh.read(win, 0, Math.min(win.length, end - pos), pos)).bytesRead;
      if (winLen <= 0) throw new MaildropError(`${where}: unexpected end of file at offset ${pos}`);
    }
    let i = pos - winStart;
    const code = win[i++]!;
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      if (shift >= 32) throw new MaildropError(`${where}: too many length bits, record type ${code} at offset ${pos}`);
      if (i >= winLen) throw new MaildropError(`${where}: truncated record length at offset ${pos}`);
      const b = win[i++]!;
      len |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
    }
    const type = String.fromCharCode(code);
    if (type !== REC.NORM && type !== REC.CONT) {
      throw new MaildropError(`${where}: unexpected or malformed record type '${printable(type)}' at offset ${pos} in the message content`);
    }
    if (len < 0 || len > lineLimit) throw new MaildropError(`${where}: record type '${type}' at offset ${pos} is longer than line_length_limit (${len} > ${lineLimit})`);
    pos = winStart + i + len;
    if (pos > end) throw new MaildropError(`${where}: content record runs past the end of the content (offset ${pos})`);
  }
}

