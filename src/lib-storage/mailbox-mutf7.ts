/**
 * mailbox-mutf7 - RFC 3501 §5.1.3 modified UTF-7, the mailbox name encoding IMAP clients use
 * and Dovecot 2.3 stores on disk (folder directory names, `subscriptions`) unless the UTF8
 * mail_location option is given.
 *
 * Printable US-ASCII except '&' stands for itself; '&' is "&-"; anything else is '&',
 * base64 of UTF-16BE with ',' instead of '/', no padding, then '-'. The decoder is strict like
 * Dovecot's imap_utf7_to_utf8(): it rejects what a correct encoder would never produce
 * (unterminated shifts, printable ASCII inside a shift, "&AGE-&AGE-" style split shifts,
 * bad base64, lone surrogates, non-zero padding bits) so one name has exactly one encoding.
 */

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';

export function mutf7Encode(s: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) {
      out += c === 0x26 ? '&-' : s[i];
      i++;
      continue;
    }
    // collect a run of non-printable characters as UTF-16 code units
    const units: number[] = [];
    while (i < s.length) {
      const d = s.charCodeAt(i);
      if (d >= 0x20 && d <= 0x7e) break;
      units.push(d);
      i++;
    }
    const bytes: number[] = [];
    for (const u of units) bytes.push(u >> 8, u & 0xff);
    let bits = 0, acc = 0;
    out += '&';
    for (const b of bytes) {
      acc = (acc << 8) | b; bits += 8;
      while (bits >= 6) { bits -= 6; out += B64[(acc >> bits) & 0x3f]; }
    }
    if (bits > 0) out += B64[(acc << (6 - bits)) & 0x3f];
    out += '-';
  }
  return out;
}

/** Decode; returns undefined for anything that is not canonical modified UTF-7. */
export function mutf7Decode(s: string): string | undefined {
  let out = '';
  let i = 0;
  let prevShiftEnd = -2;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return undefined;
    if (c !== 0x26) { out += s[i]; i++; continue; }
    const end = s.indexOf('-', i + 1);
    if (end < 0) return undefined;
    if (end === i + 1) { out += '&'; i = end + 1; continue; }
    if (prevShiftEnd === i) return undefined;          // two shifts back to back: not canonical
    let acc = 0, bits = 0;
    const units: number[] = [];
    const bytes: number[] = [];
    for (let j = i + 1; j < end; j++) {
      const v = B64.indexOf(s[j]!);
      if (v < 0) return undefined;
      acc = ((acc << 6) | v) & 0xffffff; bits += 6;
      if (bits >= 8) { bits -= 8; bytes.push((acc >> bits) & 0xff); }
    }
    if (bits >= 6 || (acc & ((1 << bits) - 1)) !== 0) return undefined;   // padding must be zero
    if (bytes.length % 2 !== 0) return undefined;
    for (let k = 0; k < bytes.length; k += 2) units.push((bytes[k]! << 8) | bytes[k + 1]!);
    for (let k = 0; k < units.length; k++) {
      const u = units[k]!;
      if (u <= 0x7e || u === 0x7f) return undefined;   // ASCII must not be encoded; control characters are refused
      if (u >= 0xd800 && u <= 0xdbff) {
        const lo = units[k + 1];
        if (lo === undefined || lo < 0xdc00 || lo > 0xdfff) return undefined;
        out += String.fromCharCode(u, lo); k++;
        continue;
      }
      if (u >= 0xdc00 && u <= 0xdfff) return undefined;
      out += String.fromCharCode(u);
    }
    i = end + 1;
    prevShiftEnd = i;
  }
  return out;
}
