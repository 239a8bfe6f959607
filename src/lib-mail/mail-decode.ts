/**
 * mail-decode — Content-Transfer-Encoding decoding (RFC 2045 §6.7 quoted-printable, §6.8
 * base64) for IMAP BINARY (RFC 3516) and SEARCH BODY/TEXT, and charset → UTF-8 conversion via
 * TextDecoder (WHATWG encodings; unknown charsets fall back to UTF-8 with replacement chars,
 * as Dovecot falls back when iconv does not know the charset).
 *
 * Decoders are lenient like Dovecot's: base64 skips characters outside the alphabet and stops at
 * padding; quoted-printable keeps a malformed `=XY` as is. An unknown CTE is reported with
 * UnknownCteError (IMAP answers `NO [UNKNOWN-CTE]`, RFC 3516 §4.3).
 */

import { TextDecoder } from 'node:util';

export class UnknownCteError extends Error {
  readonly cte: string;
  constructor(cte: string) {
    super(`Unknown Content-Transfer-Encoding: ${cte}`);
    this.name = 'UnknownCteError';
    this.cte = cte;
  }
}

const B64 = new Int16Array(256).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => {
  B64[c.charCodeAt(0)] = i;
});

export function decodeBase64(src: Buffer): Buffer {
  const out = Buffer.allocUnsafe(Math.floor((src.length * 3) / 4) + 3);
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (const c of src) {
    if (c === 0x3d) break; // padding: end of data
    const v = B64[c]!;
    if (v < 0) continue;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, o);
}

function hexVal(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Quoted-printable; `underscoreSpace` for RFC 2047 Q-encoding. */
export function decodeQuotedPrintable(src: Buffer, underscoreSpace = false): Buffer {
  const out = Buffer.allocUnsafe(src.length);
  let o = 0;
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    if (c === 0x3d) {
      const h = hexVal(src[i + 1]);
      const l = hexVal(src[i + 2]);
      if (h >= 0 && l >= 0) { out[o++] = (h << 4) | l; i += 3; continue; }
      // soft line break: "=" [white space] CRLF
      let j = i + 1;
      while (j < n && (src[j] === 32 || src[j] === 9)) j++;
      if (j < n && src[j] === 13 && src[j + 1] === 10) { i = j + 2; continue; }
      if (j < n && src[j] === 10) { i = j + 1; continue; }
      if (j >= n) { i = n; continue; }
      out[o++] = c; i++; continue;
    }
    if (underscoreSpace && c === 0x5f) { out[o++] = 32; i++; continue; }
    if ((c === 32 || c === 9) && !underscoreSpace) {
      // trailing white space before a line break is not part of the data (RFC 2045 §6.7 (3))
      let j = i;
      while (j < n && (src[j] === 32 || src[j] === 9)) j++;
      if (j >= n || src[j] === 13 || src[j] === 10) { i = j; continue; }
    }
    out[o++] = c;
    i++;
  }
  return out.subarray(0, o);
}

/** Decodes a part body by its Content-Transfer-Encoding value (undefined = 7bit). */
export function decodeCte(body: Buffer, cte: string | undefined): Buffer {
  const e = (cte ?? '7bit').trim().toLowerCase();
  switch (e) {
    case '': case '7bit': case '8bit': case 'binary': return body;
    case 'base64': return decodeBase64(body);
    case 'quoted-printable': return decodeQuotedPrintable(body);
    default: throw new UnknownCteError(cte ?? '');
  }
}

const decoders = new Map<string, TextDecoder | null>();

/** True if TextDecoder knows this charset label. */
export function isKnownCharset(charset: string): boolean {
  return getDecoder(charset) !== null;
}

function getDecoder(charset: string): TextDecoder | null {
  const key = charset.trim().toLowerCase();
  let d = decoders.get(key);
  if (d === undefined) {
    try { d = new TextDecoder(key === 'us-ascii' || key === 'ascii' ? 'utf-8' : key, { fatal: false }); }
    catch { d = null; }
    if (decoders.size < 200) decoders.set(key, d);
  }
  return d;
}

/** Bytes in `charset` → JS string; unknown or absent charset → UTF-8 (invalid bytes → U+FFFD). */
export function decodeCharset(bytes: Buffer, charset: string | undefined): string {
  const d = (charset ? getDecoder(charset) : null) ?? getDecoder('utf-8')!;
  return d.decode(bytes);
}
