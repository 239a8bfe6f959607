/**
 * imap-append-save - the bytes an APPENDed message is saved as, the way Dovecot 2.3 saves them:
 *
 *  - RFC 3516 §4.4: a message sent as literal8 (`~{n}`) may carry parts whose
 *    Content-Transfer-Encoding is `binary`; like Dovecot's binary converter (istream-binary-
 *    converter.c) each such leaf part is saved base64-encoded (76-character lines, no line end
 *    after the last) with its header field rewritten to `Content-Transfer-Encoding: base64` in
 *    place, so BODY[n] shows base64 and BINARY[n] / BINARY.SIZE[n] the decoded bytes. The part
 *    boundaries are found on the raw bytes (bare LFs inside binary data stay data).
 *  - Dovecot's `mail_save_crlf = no`: every CRLF becomes LF on disk (Maildir `,S=` is then the
 *    LF size and `,W=` the CRLF size), as delivered mail already is; a bare CR stays.
 *
 *   saveForm(literal, { literal8 }) → the bytes to hand to MailUser.deliver()
 */
import { parseMime, type MimePart } from '../lib-mail/mail-mime.ts';
import { headerFirst } from '../lib-mail/mail-header.ts';

/** Base64 in lines of 76 characters separated by CRLF, no line end after the last. */
function base64Lines(data: Buffer): Buffer {
  const b64 = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

/**
 * Offsets of parseMime's CRLF form back to the raw bytes: parseMime inserted a CR before each
 * bare LF; `inserted` holds where those CRs are in the CRLF form.
 */
function rawOffsetMapper(raw: Buffer): (o: number) => number {
  const inserted: number[] = [];
  for (let i = raw.indexOf(10); i >= 0; i = raw.indexOf(10, i + 1)) {
    if (i === 0 || raw[i - 1] !== 13) inserted.push(i + inserted.length);
  }
  return (o: number): number => {
    let lo = 0, hi = inserted.length; // count of inserted CRs at positions < o
    while (lo < hi) { const mid = (lo + hi) >> 1; if (inserted[mid]! < o) lo = mid + 1; else hi = mid; }
    return o - lo;
  };
}

/** RFC 3516 §4.4: binary parts of a literal8 message re-encoded as base64 (Dovecot's converter). */
export function convertBinaryParts(raw: Buffer): Buffer {
  if (!/content-transfer-encoding/i.test(raw.toString('latin1'))) return raw;
  const msg = parseMime(raw);
  const toRaw = rawOffsetMapper(raw);
  const edits: { start: number; end: number; data: Buffer }[] = [];
  const stack: MimePart[] = [msg.root];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (p.isMultipart) { for (const c of p.children) stack.push(c); continue; }
    if (p.message) { stack.push(p.message); continue; }
    const cte = headerFirst(p.headers, 'Content-Transfer-Encoding');
    if (!cte || cte.value.toString('latin1').trim().toLowerCase() !== 'binary') continue;
    edits.push({ start: toRaw(cte.start), end: toRaw(cte.end), data: Buffer.from('Content-Transfer-Encoding: base64\r\n') });
    const bs = toRaw(p.bodyStart);
    const be = toRaw(p.bodyEnd);
    edits.push({ start: bs, end: be, data: base64Lines(raw.subarray(bs, be)) });
  }
  if (edits.length === 0) return raw;
  edits.sort((a, b) => a.start - b.start);
  const out: Buffer[] = [];
  let pos = 0;
  for (const e of edits) {
    if (e.start < pos) continue; // overlapping edits cannot happen in a parsed tree; be safe
    out.push(raw.subarray(pos, e.start), e.data);
    pos = e.end;
  }
  out.push(raw.subarray(pos));
  return Buffer.concat(out);
}

/** Dovecot's mail_save_crlf = no: CRLF → LF (a bare CR stays). */
export function crlfToLf(data: Buffer): Buffer {
  let i = data.indexOf('\r\n');
  if (i < 0) return data;
  const out = Buffer.allocUnsafe(data.length);
  let o = 0;
  let s = 0;
  for (; i >= 0; i = data.indexOf('\r\n', i + 2)) {
    o += data.copy(out, o, s, i);
    s = i + 1; // keep the LF
  }
  o += data.copy(out, o, s);
  return out.subarray(0, o);
}

/** The bytes an APPENDed message is saved as. */
export function saveForm(data: Buffer, o: { literal8: boolean }): Buffer {
  return crlfToLf(o.literal8 ? convertBinaryParts(data) : data);
}
