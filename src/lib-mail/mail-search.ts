/**
 * mail-search — the message-content part of IMAP SEARCH (RFC 3501 §6.4.4) the way Dovecot 2.3
 * answers it without FTS (checked against it in mail-search-golden.test.ts):
 * - comparison is case-insensitive on decoded text: both sides are NFKD-decomposed and mapped to
 *   upper case per code point (≈ Dovecot's i;unicode-casemap titlecase+decomposition), so
 *   "cafe" finds "Café" and "straße" finds "Straße" (but "strasse" does not);
 * - HEADER/FROM/TO/CC/BCC/SUBJECT look at the top-level header only, values unfolded, RFC 2047
 *   decoded, tabs as spaces; an empty string matches every message that has the header;
 * - FROM/TO/CC/BCC match the address list as Dovecot normalises it (mail-address.ts
 *   writeAddressList: `"Name" <user@host>`, groups `g: <a@b>;`, MISSING_DOMAIN filled in), so
 *   `user@host` finds `user @ host` and `<` finds every address (RFC 3501 §6.4.4);
 * - BODY looks at the decoded text of text/* parts only (Content-Transfer-Encoding removed,
 *   charset converted), not at preamble/epilogue, binary parts, nor embedded message headers;
 * - TEXT is BODY plus every header block (top-level, MIME part headers, embedded messages).
 * The walk over the MIME tree uses an explicit stack.
 */
import type { MimeMessage, MimePart } from './mail-mime.ts';
import type { HeaderField } from './mail-header.ts';
import { decodeRfc2047 } from './mail-rfc2047.ts';
import { decodeCharset, decodeCte, UnknownCteError } from './mail-decode.ts';
import { mimeParam } from './mail-content-type.ts';
import { headerFirst, headerLast } from './mail-header.ts';
import { parseAddressList, writeAddressList } from './mail-address.ts';
import { parseMailDate, type MailDate } from './mail-date.ts';

/**
 * Search normal form: NFKD, then upper case without the one-to-many mappings (ß stays ß, as in
 * Dovecot's simple titlecase map; NFKD has already split ligatures and precomposed letters).
 */
export function searchFold(s: string): string {
  if (/^[\x00-\x7f]*$/.test(s)) return s.toUpperCase();
  const d = s.normalize('NFKD');
  if (!d.includes('ß')) return d.toUpperCase();
  return d.split('ß').map((x) => x.toUpperCase()).join('ß');
}

function headerText(f: HeaderField): string {
  return decodeRfc2047(f.value).replace(/\t/g, ' ');
}

/**
 * HEADER field value / SUBJECT on the top-level header. `compressLwsp` (SUBJECT, Dovecot's
 * SEARCH_HEADER_COMPRESS_LWSP): runs of spaces and tabs in the header count as one space and
 * leading ones as none, so `SUBJECT "a b"` finds `a  b` (the search string is taken as given).
 */
export function matchHeader(msg: MimeMessage, field: string, value: string, compressLwsp = false): boolean {
  const name = field.toLowerCase();
  const needle = searchFold(value);
  for (const f of msg.root.headers) {
    if (f.noColon || f.name.toLowerCase() !== name) continue;
    if (needle === '') return true;
    const text = compressLwsp ? headerText(f).replace(/^ +/, '').replace(/ {2,}/g, ' ') : headerText(f);
    if (searchFold(text).includes(needle)) return true;
  }
  return false;
}

/** FROM / TO / CC / BCC: the normalised address list of each such top-level header. */
export function matchAddress(msg: MimeMessage, field: string, value: string): boolean {
  const name = field.toLowerCase();
  const needle = searchFold(value);
  for (const f of msg.root.headers) {
    if (f.noColon || f.name.toLowerCase() !== name) continue;
    if (needle === '') return true;
    const text = decodeRfc2047(writeAddressList(parseAddressList(f.value, true))).replace(/\t/g, ' ');
    if (searchFold(text).includes(needle)) return true;
  }
  return false;
}

/**
 * Decoded text of a leaf text/* part, or undefined for parts BODY does not look at. A
 * message/rfc822 part cut off by the nesting limit is searched as text, as Dovecot does.
 */
export function partText(msg: MimeMessage, p: MimePart): string | undefined {
  if (p.contentType.type.toLowerCase() !== 'text' && p.limitedFrom?.type.toLowerCase() !== 'message') return undefined;
  const raw = msg.data.subarray(p.bodyStart, p.bodyEnd);
  let bytes: Buffer;
  try {
    bytes = decodeCte(raw, headerFirst(p.headers, 'Content-Transfer-Encoding')?.value.toString('latin1'));
  } catch (e) {
    if (!(e instanceof UnknownCteError)) throw e;
    bytes = raw;
  }
  return decodeCharset(bytes, mimeParam(p.contentType.params, 'charset')?.toString('latin1'));
}

/**
 * The texts BODY (withHeaders false) and TEXT (true) compare against, one at a time, before
 * searchFold: each header line `Name: value` of every part (`header` true), then the decoded
 * text of each text/* part. `visit` returns true to stop. lib-fts indexes exactly these texts.
 */
export function walkSearchText(msg: MimeMessage, withHeaders: boolean, visit: (text: string, header: boolean) => boolean): boolean {
  const stack: MimePart[] = [msg.root];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (withHeaders) {
      for (const f of p.headers) {
        if (!f.noColon && visit(`${f.name}: ${headerText(f)}`, true)) return true;
      }
    }
    if (p.isMultipart) { for (let i = p.children.length - 1; i >= 0; i--) stack.push(p.children[i]!); continue; }
    if (p.message) { stack.push(p.message); continue; }
    const t = partText(msg, p);
    if (t !== undefined && visit(t, false)) return true;
  }
  return false;
}

export function matchBody(msg: MimeMessage, value: string): boolean {
  const needle = searchFold(value);
  if (needle === '') return true;
  return walkSearchText(msg, false, (t) => searchFold(t).includes(needle));
}

export function matchText(msg: MimeMessage, value: string): boolean {
  const needle = searchFold(value);
  if (needle === '') return true;
  return walkSearchText(msg, true, (t) => searchFold(t).includes(needle));
}

/** The Date header, parsed (last occurrence, like ENVELOPE). */
export function messageSentDate(msg: MimeMessage): MailDate | undefined {
  const f = headerLast(msg.root.headers, 'Date');
  return f ? parseMailDate(f.value.toString('latin1')) : undefined;
}
