/**
 * sieve-message - the message a Sieve script looks at and edits: its header fields (as
 * Pigeonhole gives them to tests: unfolded, RFC 2047 words decoded, surrounding white space
 * trimmed), its MIME parts (for body, mime, foreverypart and extracttext: RFC 5173, RFC 5703),
 * and the edits of editheader (RFC 5293: addheader puts a field at the top, or the bottom with
 * :last; deleteheader removes fields). Envelope data travels beside it (SieveEnvelope).
 *
 * The raw bytes are never changed: content() rebuilds the message from the current field list
 * and the untouched body, so a message no script edited is stored byte for byte as received.
 */
import { parseHeaderBlock } from '../lib-mail/mail-header.ts';
import { parseMime, toCrlf, type MimePart, type MimeMessage } from '../lib-mail/mail-mime.ts';
import { decodeRfc2047 } from '../lib-mail/mail-rfc2047.ts';
import { decodeCharset, decodeCte } from '../lib-mail/mail-decode.ts';
import { mimeParam } from '../lib-mail/mail-content-type.ts';
import { encodeRfc2047Header } from './sieve-mime-out.ts';

export interface SieveEnvelope {
  /** MAIL FROM, '' for the null sender. */
  from: string;
  /** The final recipient (RCPT TO). */
  to: string;
  /** The original recipient (ORCPT), default `to`. */
  origTo?: string;
  /** The authenticated submitter, if known. */
  auth?: string;
}

export interface SieveField {
  name: string;
  /** The whole field as stored: "Name: value" with its folding and line end. */
  raw: Buffer;
  /** Unfolded value (full_value). */
  value: Buffer;
  /** Added by addheader in this delivery. */
  added?: boolean;
}

/** Header value as Sieve tests see it: unfolded, encoded words decoded, trimmed. */
export function sieveHeaderValue(v: Buffer): string {
  return decodeRfc2047(v).replace(/^[ \t]+|[ \t]+$/g, '');
}

export class SieveMessage {
  readonly raw: Buffer;
  readonly size: number;
  fields: SieveField[];
  private readonly bodyStart: number;
  private readonly lineEnd: string;
  private mime?: MimeMessage;
  /** Bumped on every edit, so actions can keep the version they saw. */
  version = 0;

  constructor(raw: Buffer) {
    this.raw = raw;
    this.size = raw.length;
    const hb = parseHeaderBlock(raw, 0, raw.length);
    this.fields = hb.fields.filter((f) => !f.noColon).map((f) => ({ name: f.name, raw: raw.subarray(f.start, f.end), value: f.value }));
    this.bodyStart = hb.bodyStart;
    this.lineEnd = raw.indexOf('\r\n') >= 0 && raw.indexOf('\r\n') <= raw.indexOf('\n') ? '\r\n' : '\n';
  }

  /** Values of every field with this name, top to bottom. */
  header(name: string): string[] {
    const n = name.toLowerCase();
    const out: string[] = [];
    for (const f of this.fields) if (f.name.toLowerCase() === n) out.push(sieveHeaderValue(f.value));
    return out;
  }

  /** Raw (undecoded) values, for address parsing. */
  headerRaw(name: string): Buffer[] {
    const n = name.toLowerCase();
    return this.fields.filter((f) => f.name.toLowerCase() === n).map((f) => f.value);
  }

  addHeader(name: string, value: string, last: boolean): void {
    // 8-bit text becomes RFC 2047 encoded words, as Pigeonhole writes it.
    const folded = foldHeader(`${name}: ${encodeRfc2047Header(value)}`, this.lineEnd);
    const f: SieveField = { name, raw: Buffer.from(folded + this.lineEnd), value: Buffer.from(encodeRfc2047Header(value)), added: true };
    this.fields = last ? [...this.fields, f] : [f, ...this.fields];
    this.version++;
  }

  deleteFields(keep: (f: SieveField, occurrence: number, total: number) => boolean, name: string): number {
    const n = name.toLowerCase();
    const total = this.fields.filter((f) => f.name.toLowerCase() === n).length;
    let occ = 0;
    let removed = 0;
    this.fields = this.fields.filter((f) => {
      if (f.name.toLowerCase() !== n) return true;
      occ++;
      if (keep(f, occ, total)) return true;
      removed++;
      return false;
    });
    if (removed) this.version++;
    return removed;
  }

  /** The message as it is now (edits applied). */
  content(fields: readonly SieveField[] = this.fields): Buffer {
    if (this.version === 0 && fields === this.fields) return this.raw;
    const sep = this.raw.subarray(this.bodyStart - (this.raw[this.bodyStart - 2] === 13 ? 2 : 1), this.bodyStart);
    const body = this.raw.subarray(this.bodyStart);
    return Buffer.concat([...fields.map((f) => f.raw), this.bodyStart > 0 && (sep[0] === 10 || sep[0] === 13) ? sep : Buffer.from(this.lineEnd), body]);
  }

  /** The MIME tree (parsed once, on the message as received). */
  mimeTree(): MimeMessage {
    this.mime ??= parseMime(toCrlf(this.raw));
    return this.mime;
  }

  /** Every part, depth first (the message itself first), each with its parent. */
  parts(): { part: MimePart; parent: MimePart | null }[] {
    const out: { part: MimePart; parent: MimePart | null }[] = [];
    const walk = (p: MimePart, parent: MimePart | null): void => {
      out.push({ part: p, parent });
      for (const c of p.children) walk(c, p);
      if (p.message) walk(p.message, p);
    };
    walk(this.mimeTree().root, null);
    return out;
  }

  /** Header values of one MIME part. */
  partHeader(p: MimePart, name: string): string[] {
    const n = name.toLowerCase();
    return p.headers.filter((f) => !f.noColon && f.name.toLowerCase() === n).map((f) => sieveHeaderValue(f.value));
  }

  /** A leaf part's content, transfer-decoded and converted to UTF-8 text. */
  partText(p: MimePart): string {
    const data = this.mimeTree().data.subarray(p.bodyStart, p.bodyEnd);
    const cte = this.partHeader(p, 'content-transfer-encoding')[0];
    let bytes: Buffer;
    try { bytes = decodeCte(data, cte); } catch { bytes = data; }
    const cs = mimeParam(p.contentType.params, 'charset')?.toString('latin1');
    return decodeCharset(bytes, cs);
  }

  /** The body as stored, undecoded (body :raw). */
  rawBody(): string {
    return this.raw.subarray(this.bodyStart).toString('latin1');
  }
}

/** Folds a long header line at white space (RFC 5322 §2.2.3), keeping lines under 78 characters. */
export function foldHeader(line: string, eol: string): string {
  if (line.length <= 78) return line;
  const out: string[] = [];
  let cur = '';
  for (const word of line.split(/(?=[ \t])/)) {
    if (cur.length + word.length > 76 && cur.trim() !== '') { out.push(cur); cur = word.startsWith(' ') || word.startsWith('\t') ? word : ' ' + word; } else cur += word;
  }
  out.push(cur);
  return out.join(eol);
}
