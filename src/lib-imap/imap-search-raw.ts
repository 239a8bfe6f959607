/**
 * imap-search-raw - answers "SEARCH BODY x cannot match this message" from the raw bytes,
 * exactly, so the MIME parse, Content-Transfer-Encoding decoding and charset conversion of
 * lib-mail's matchBody() (mail-search.ts: Dovecot's search without FTS) run only for the
 * messages that might match. Dovecot reads and decodes every message; so do we, minus the
 * decoding where it provably changes nothing.
 *
 * When is the raw test exact? matchBody() looks for searchFold(needle) in searchFold(text)
 * of each text/* part, where text = charset-decode(CTE-decode(part body)). If
 *   1. the needle is non-empty US-ASCII without CR/LF (its fold is then plain ASCII upper
 *      case, and bare-LF → CRLF conversion cannot create or break a match),
 *   2. every byte of the message is US-ASCII (so no NFKD decomposition or non-ASCII case
 *      mapping can turn text into ASCII letters: "café" / full-width letters are excluded),
 *   3. no part can be base64 or quoted-printable (the words do not occur at all), and every
 *      `charset` parameter is one whose decoder maps ASCII bytes to themselves (US-ASCII,
 *      UTF-8, ISO-8859-*, Windows-125x, KOI8; not UTF-16, ISO-2022-JP, RFC 2231 `charset*`),
 * then each part's decoded text is a substring of the raw message with ASCII case folding,
 * and "the needle does not occur in the raw bytes, ignoring ASCII case" proves no match.
 * In every other case the answer is "don't know" and the caller does the full evaluation.
 */

export interface RawNeedle {
  /** Matches any non-ASCII byte or the needle, ASCII case-insensitively (on a latin1 string). */
  readonly hitOrNonAscii: RegExp;
}

/** The raw-testable form of a BODY needle, or undefined when only the full evaluation is exact. */
export function rawNeedle(value: string): RawNeedle | undefined {
  if (value.length === 0 || !/^[\x00-\x7f]*$/.test(value) || /[\r\n]/.test(value)) return undefined;
  const esc = value.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
  return { hitOrNonAscii: new RegExp(`[\\x80-\\xff]|${esc}`, 'i') };
}

/** base64 / quoted-printable anywhere, or a charset parameter (its value checked below; the
 * bare word "charset" without `=` or `*` does not match and is harmless). */
const HAZARD = /base64|quoted-printable|charset\s*(\*|=\s*"?([^\s";]*))/gi;
/** Charsets whose decoder maps every byte 0x00-0x7f to the same code point. */
const ASCII_SAFE = /^(?:us-?ascii|ascii|utf-?8|iso[-_]?8859-\d{1,2}|latin-?1|l1|(?:windows|cp)-?125\d|koi8-[ru])$/i;

/**
 * True when BODY `n` provably matches no text part of `raw` (see the file comment); false
 * means "maybe": evaluate it fully.
 */
export function rawBodyCannotMatch(raw: Buffer, n: RawNeedle): boolean {
  const s = raw.toString('latin1');
  if (n.hitOrNonAscii.test(s)) return false;
  HAZARD.lastIndex = 0;
  for (let m = HAZARD.exec(s); m !== null; m = HAZARD.exec(s)) {
    if (m[1] === undefined) return false;                               // base64, quoted-printable
    if (m[1] === '*' || !ASCII_SAFE.test(m[2] ?? '')) return false;    // RFC 2231 or another charset
  }
  return true;
}
