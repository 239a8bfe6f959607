/**
 * mail-rfc2047 — decoding of RFC 2047 encoded words (`=?charset?B|Q?text?=`) in header values
 * to UTF-8, for SEARCH/SORT/THREAD comparisons (ENVELOPE keeps the raw text, as Dovecot does).
 * White space between two adjacent encoded words is dropped (RFC 2047 §6.2); RFC 2231 language
 * suffixes (`charset*lang`) are ignored. Raw 8-bit bytes outside encoded words are taken as
 * UTF-8; invalid sequences become U+FFFD (Dovecot 2.3 does not guess another charset: SEARCH
 * FROM "andré" does not match a raw ISO-8859-1 "Andr\xe9" header, checked against Dovecot).
 */
import { decodeBase64, decodeCharset, decodeQuotedPrintable } from './mail-decode.ts';

const ENCODED_WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;

function rawToString(b: Buffer): string {
  return b.toString('utf8');
}

/** Decodes encoded words in an (unfolded) header value. */
export function decodeRfc2047(value: Buffer): string {
  const text = value.toString('latin1');
  let out = '';
  let last = 0;
  let prevWasWord = false;
  ENCODED_WORD.lastIndex = 0;
  for (let m = ENCODED_WORD.exec(text); m; m = ENCODED_WORD.exec(text)) {
    const between = text.slice(last, m.index);
    if (!(prevWasWord && /^[ \t\r\n]*$/.test(between))) out += rawToString(Buffer.from(between, 'latin1'));
    const charset = m[1]!.split('*')[0]!;
    const payload = Buffer.from(m[3]!, 'latin1');
    const bytes = m[2]!.toUpperCase() === 'B' ? decodeBase64(payload) : decodeQuotedPrintable(payload, true);
    out += decodeCharset(bytes, charset);
    last = m.index + m[0].length;
    prevWasWord = true;
  }
  out += rawToString(Buffer.from(text.slice(last), 'latin1'));
  return out;
}
