/**
 * mail-section — BODY[section]<partial> and BINARY[section] extraction (RFC 3501 §6.4.5,
 * RFC 9051 §6.4.5, RFC 3516), with Dovecot's answers for the corner cases:
 * - part numbers: a message with a non-multipart body has that body as part 1; a message/rfc822
 *   part N has the parts of the encapsulated message as N.1, N.2...;
 * - N.MIME of the single part of a non-multipart message is the message header itself;
 * - N.1 of a part that is neither multipart nor message/rfc822 is the part itself;
 * - HEADER.FIELDS / .NOT return the matching raw fields (folding kept) followed by CRLF;
 * - a part that does not exist, or HEADER/TEXT of a part that is not message/rfc822, gives an
 *   empty string (Dovecot answers `BODY[3] {0}`, not NIL);
 * - BINARY of a multipart or message/rfc822 part is its raw body with every base64 or
 *   quoted-printable leaf inside decoded and its Content-Transfer-Encoding field rewritten to
 *   "binary" (Dovecot's istream-binary-converter).
 * All data is the CRLF form of the message.
 */
import type { MimeMessage, MimePart } from './mail-mime.ts';
import { decodeCte } from './mail-decode.ts';
import { headerFirst, type HeaderField } from './mail-header.ts';

export type SectionText = 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';

export interface SectionSpec {
  /** Part numbers, e.g. [1, 2] for "1.2"; [] = the whole message. */
  path: number[];
  text?: SectionText;
  /** Header names for HEADER.FIELDS(.NOT). */
  fields?: string[];
}

/** Resolves a part path; undefined if there is no such part. */
export function findPart(msg: MimeMessage, path: readonly number[]): MimePart | undefined {
  let cur: MimePart | undefined = msg.root;
  let isMessage = true;
  let isMessageBody = false; // cur is a message's single (non-multipart) body
  for (const num of path) {
    if (!cur) return undefined;
    let next: MimePart | undefined;
    let nextIsBody = false;
    if (isMessage) { next = subOfMessage(cur, num); nextIsBody = next === cur; }
    else if (cur.isMultipart) next = cur.children[num - 1];
    else if (cur.message) { next = subOfMessage(cur.message, num); nextIsBody = next === cur.message; }
    else if (isMessageBody) next = undefined; // 1.1 of a plain single-part message: nothing
    else next = num === 1 ? cur : undefined; // Dovecot: 2.1 of a leaf inside a multipart is the leaf
    cur = next;
    isMessage = false;
    isMessageBody = nextIsBody;
  }
  return cur;
}

function subOfMessage(m: MimePart, num: number): MimePart | undefined {
  if (m.isMultipart) return m.children[num - 1];
  return num === 1 ? m : undefined;
}

/**
 * HEADER.FIELDS always ends with CRLF; HEADER.FIELDS.NOT ends with the header's own empty line,
 * so nothing when the message has none (both as Dovecot answers).
 */
function headerFields(data: Buffer, p: MimePart, names: readonly string[], not: boolean): Buffer {
  const want = new Set(names.map((n) => n.toLowerCase()));
  const out: Buffer[] = [];
  for (const f of p.headers) {
    if (f.noColon) continue;
    if (want.has(f.name.toLowerCase()) !== not) {
      let chunk = data.subarray(f.start, f.end);
      if (chunk.length < 2 || chunk[chunk.length - 1] !== 10) chunk = Buffer.concat([chunk, Buffer.from('\r\n')]);
      out.push(chunk);
    }
  }
  if (!not || p.hasSeparator) out.push(Buffer.from('\r\n'));
  return Buffer.concat(out);
}

const EMPTY = Buffer.alloc(0);

/** The bytes of BODY[section] (before <partial> is applied). */
export function extractSection(msg: MimeMessage, spec: SectionSpec): Buffer {
  const data = msg.data;
  const part = findPart(msg, spec.path);
  if (!part) return EMPTY;
  if (spec.text === undefined) {
    if (spec.path.length === 0) return data;
    return data.subarray(part.bodyStart, part.bodyEnd);
  }
  if (spec.text === 'MIME') {
    if (spec.path.length === 0) return EMPTY;
    return data.subarray(part.headerStart, part.bodyStart);
  }
  // HEADER, HEADER.FIELDS, TEXT: of the message at this path (root, or an rfc822 part)
  const m = spec.path.length === 0 ? part : part.message;
  if (!m) return EMPTY;
  switch (spec.text) {
    case 'HEADER': return data.subarray(m.headerStart, m.bodyStart);
    case 'TEXT': return data.subarray(m.bodyStart, m.bodyEnd);
    case 'HEADER.FIELDS': return headerFields(data, m, spec.fields ?? [], false);
    case 'HEADER.FIELDS.NOT': return headerFields(data, m, spec.fields ?? [], true);
  }
  return EMPTY;
}

/** RFC 3501 <origin.octets>: the substring (an origin past the end gives ""). */
export function applyPartial(b: Buffer, origin: number, octets?: number): Buffer {
  if (origin >= b.length) return Buffer.alloc(0);
  return b.subarray(origin, octets === undefined ? b.length : Math.min(b.length, origin + octets));
}

const CTE_BINARY = Buffer.from('Content-Transfer-Encoding: binary\r\n');

function isDecodable(p: MimePart): HeaderField | undefined {
  const f = headerFirst(p.headers, 'Content-Transfer-Encoding');
  const e = f?.value.toString('latin1').trim().toLowerCase();
  return e === 'base64' || e === 'quoted-printable' ? f : undefined;
}

/** BINARY data and whether Dovecot sends it as literal8 (`~{N}`, RFC 3516 §4.2). */
export interface BinaryData {
  data: Buffer;
  /**
   * Dovecot 2.3 (index-mail-binary.c): literal8 when something was decoded (a base64 or
   * quoted-printable part) or the data holds NUL bytes; never for empty data.
   */
  literal8: boolean;
}

/** Raw [start,end) of a multipart/message part with every encoded leaf inside decoded. */
function convertToBinary(msg: MimeMessage, top: MimePart, start: number, end: number): { data: Buffer; converted: boolean } {
  const edits: { s: number; e: number; data: Buffer }[] = [];
  const stack: MimePart[] = [top];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (p.isMultipart) { for (const c of p.children) stack.push(c); continue; }
    if (p.message) { stack.push(p.message); continue; }
    if (p === top && start !== p.headerStart) continue; // BINARY[n] of a leaf is handled by the caller
    const f = isDecodable(p);
    if (!f) continue;
    edits.push({ s: f.start, e: f.end, data: CTE_BINARY });
    edits.push({ s: p.bodyStart, e: p.bodyEnd, data: decodeCte(msg.data.subarray(p.bodyStart, p.bodyEnd), f.value.toString('latin1')) });
  }
  if (edits.length === 0) return { data: msg.data.subarray(start, end), converted: false };
  edits.sort((x, y) => x.s - y.s);
  const out: Buffer[] = [];
  let pos = start;
  for (const ed of edits) {
    if (ed.s < pos || ed.e > end) continue;
    out.push(msg.data.subarray(pos, ed.s), ed.data);
    pos = ed.e;
  }
  out.push(msg.data.subarray(pos, end));
  return { data: Buffer.concat(out), converted: true };
}

/**
 * BINARY[path]: the part body with its Content-Transfer-Encoding removed (RFC 3516 §4.2).
 * Throws UnknownCteError for an encoding we cannot decode (→ NO [UNKNOWN-CTE]).
 * [] = the whole message; a part that does not exist is empty.
 */
export function extractBinary(msg: MimeMessage, path: readonly number[]): BinaryData {
  const r = extractBinaryData(msg, path);
  return { data: r.data, literal8: r.data.length > 0 && r.literal8 }; // Dovecot 2.3: empty data is `{0}`
}

function extractBinaryData(msg: MimeMessage, path: readonly number[]): BinaryData {
  if (path.length === 0) {
    const r = convertToBinary(msg, msg.root, 0, msg.data.length);
    return { data: r.data, literal8: r.converted || r.data.includes(0) };
  }
  const part = findPart(msg, path);
  if (!part) return { data: EMPTY, literal8: false };
  if (part.isMultipart || part.message) {
    const r = convertToBinary(msg, part, part.bodyStart, part.bodyEnd);
    return { data: r.data, literal8: r.converted || r.data.includes(0) };
  }
  const body = msg.data.subarray(part.bodyStart, part.bodyEnd);
  const cte = headerFirst(part.headers, 'Content-Transfer-Encoding');
  const data = decodeCte(body, cte?.value.toString('latin1'));
  return { data, literal8: isDecodable(part) !== undefined || data.includes(0) };
}
