/**
 * imap-utf7 — mailbox names in modified UTF-7 (RFC 3501 §5.1.3) ⇄ UTF-8 (JS strings).
 *
 * Decoding is strict, like Dovecot's imap-utf7.c, so that every name has exactly one encoding:
 * rejected are a `&` without its `-`, base64 using `/` or padding, leftover non-zero bits,
 * an encoded printable ASCII character (must be written directly), two adjacent encoded runs
 * (`&AOQ-&AOQ-` must be one run), broken UTF-16 surrogate pairs, and raw 8-bit or control bytes.
 * With UTF8=ACCEPT (RFC 6855) names are UTF-8 and are only checked for validity.
 *
 * The one implementation for the IMAP server (client names: mutf7Decode() throws
 * ImapParseError) and for lib-storage (names on disk, which Dovecot 2.3 stores in modified
 * UTF-7 unless mail_location has UTF8: mutf7ToUtf8() gives undefined instead, and also refuses
 * encoded control characters).
 */
import { ImapParseError } from './imap-parser.ts';

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';

/** UTF-8 string → modified UTF-7. */
export function mutf7Encode(name: string): string {
  let out = '';
  let pending: number[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    const bytes: number[] = [];
    for (const u of pending) bytes.push(u >> 8, u & 0xff);
    let bits = 0;
    let acc = 0;
    out += '&';
    for (const b of bytes) {
      acc = (acc << 8) | b;
      bits += 8;
      while (bits >= 6) { bits -= 6; out += B64[(acc >> bits) & 63]; }
    }
    if (bits > 0) out += B64[(acc << (6 - bits)) & 63];
    out += '-';
    pending = [];
  };
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) {
      flush();
      out += c === 0x26 ? '&-' : name[i];
    } else {
      pending.push(c); // UTF-16 code units, surrogates included
    }
  }
  flush();
  return out;
}

/** Why a name is not canonical modified UTF-7 (returned, not thrown, by the decoder). */
class Invalid {
  readonly reason: string;
  constructor(reason: string) { this.reason = reason; }
}

/**
 * The decoder (Dovecot imap_utf7_to_utf8()): the UTF-8 name, or why it is not canonical.
 * `refuseControls` also refuses encoded control characters (U+0000-U+001F, U+007F), as the
 * store does for names on disk.
 */
function decode(s: string, refuseControls: boolean): string | Invalid {
  let out = '';
  let i = 0;
  let lastWasEncoded = false;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return new Invalid('8-bit or control character not allowed in modified UTF-7');
    if (c !== 0x26) { out += s[i]; i++; lastWasEncoded = false; continue; }
    const end = s.indexOf('-', i + 1);
    if (end < 0) return new Invalid("'&' without terminating '-'");
    if (end === i + 1) { out += '&'; i = end + 1; lastWasEncoded = false; continue; }
    if (lastWasEncoded) return new Invalid('adjacent encoded runs must be merged');
    let acc = 0;
    let bits = 0;
    const units: number[] = [];
    let bytes: number[] = [];
    for (let j = i + 1; j < end; j++) {
      const v = B64.indexOf(s[j]!);
      if (v < 0) return new Invalid(`'${s[j]}' is not modified base64`);
      acc = ((acc << 6) | v) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes.push((acc >> bits) & 0xff);
        if (bytes.length === 2) { units.push((bytes[0]! << 8) | bytes[1]!); bytes = []; }
      }
    }
    if (bytes.length !== 0 || bits >= 6 || (acc & ((1 << bits) - 1)) !== 0) {
      return new Invalid('bad modified base64 length or padding');
    }
    for (let k = 0; k < units.length; k++) {
      const u = units[k]!;
      if (u >= 0x20 && u <= 0x7e) return new Invalid('printable ASCII must not be encoded');
      if (refuseControls && (u < 0x20 || u === 0x7f)) return new Invalid('control character');
      if (u >= 0xd800 && u <= 0xdbff) {
        const lo = units[k + 1];
        if (lo === undefined || lo < 0xdc00 || lo > 0xdfff) return new Invalid('broken UTF-16 surrogate pair');
        out += String.fromCharCode(u, lo);
        k++;
        continue;
      }
      if (u >= 0xdc00 && u <= 0xdfff) return new Invalid('broken UTF-16 surrogate pair');
      out += String.fromCharCode(u);
    }
    i = end + 1;
    lastWasEncoded = true;
  }
  return out;
}

/** Modified UTF-7 → UTF-8 string; throws ImapParseError with a clear reason on invalid input. */
export function mutf7Decode(s: string): string {
  const r = decode(s, false);
  if (r instanceof Invalid) throw new ImapParseError(`Invalid mailbox name "${s.slice(0, 64)}": ${r.reason}`);
  return r;
}

/**
 * Modified UTF-7 → UTF-8, or undefined when it is not canonical or encodes a control
 * character: lib-storage's rule for names (folder directories, `subscriptions` lines, and
 * decodeImapMailboxName()).
 */
export function mutf7ToUtf8(s: string): string | undefined {
  const r = decode(s, true);
  return r instanceof Invalid ? undefined : r;
}

/**
 * A mailbox name argument → UTF-8. Without UTF8=ACCEPT it is modified UTF-7; with it, raw UTF-8
 * (RFC 6855 §3). Invalid UTF-8 is rejected either way.
 */
export function decodeMailboxName(raw: Buffer, utf8Accept: boolean): string {
  const s = raw.toString('utf8');
  if (s.includes('\ufffd') && !raw.includes(Buffer.from('\ufffd'))) {
    throw new ImapParseError('Invalid mailbox name: not valid UTF-8');
  }
  if (s.includes('\0')) throw new ImapParseError('Invalid mailbox name: NUL byte');
  if (utf8Accept) return s;
  return mutf7Decode(raw.toString('latin1'));
}
