/**
 * imap-base-subject — the "base subject" of RFC 5256 §2.1 used by SORT SUBJECT and both THREAD
 * algorithms, computed step by step like Dovecot 2.3's lib-imap/imap-base-subject.c so that our
 * SORT/THREAD answers equal Dovecot's byte for byte:
 *
 *   (1) RFC 2047 encoded words are decoded to UTF-8 (lib-mail's decodeRfc2047) and every
 *       character is case-folded the way Dovecot implements i;unicode-casemap (foldForSort:
 *       simple titlecase + one level of decomposition); tabs, CR, LF and runs of
 *       spaces become one space;
 *   (2) trailing "(fwd)" and spaces are removed (subj-trailer);
 *   (3) a leading space, then `*subj-blob ("re" / "fw" / "fwd") [" "] [subj-blob] ":"` is removed
 *       (subj-leader); (4) a leading "[blob]" is removed if something is left after it;
 *       (5) (3) and (4) repeat until nothing matches;
 *   (6) "[fwd: ... ]" around the whole remainder is removed and the steps repeat from (2).
 *
 * Dovecot details copied on purpose (they differ slightly from the RFC's ABNF):
 * - after "re"/"fw"/"fwd" only ONE optional space is skipped, and after a blob's "]" only one;
 * - the folding happens before the prefix checks, so "RE", "Re", "rE" are all the same;
 * - a reply/forward flag is set by any removed "re:"/"fw:"/"fwd:", "(fwd)" or "[fwd: ]".
 *
 * API:
 *   baseSubject(raw: Buffer | string): { subject: string; isReplyOrForward: boolean }
 *   foldForSort(s: string): string          — the i;unicode-casemap key of a decoded string
 *   compareKeys(a: string, b: string): number — strcmp() order of the UTF-8 encodings
 *
 * Cost is linear in the subject length (a 10 MB subject is fine): a run of "[blob]"s that fails
 * to end in "re:" is skipped in one step instead of being re-scanned per removed blob (Dovecot
 * re-scans, which is quadratic; the result is the same).
 */
import { decodeRfc2047 } from '../lib-mail/mail-rfc2047.ts';

export interface BaseSubject {
  /** The base subject, folded (upper case, decomposed): the sort and thread key. */
  subject: string;
  /** True if a "Re:", "Fw:", "Fwd:", "(fwd)" or "[fwd: ...]" was removed. */
  isReplyOrForward: boolean;
}

/** Dovecot's simple titlecase (UnicodeData field 14) where JS toUpperCase() differs from it. */
function titlecase(cp: number, ch: string): string {
  if (cp < 0x80) return ch.toUpperCase();
  if (cp >= 0x01c4 && cp <= 0x01cc) return String.fromCharCode(0x01c5 + 3 * Math.floor((cp - 0x01c4) / 3));
  if (cp >= 0x01f1 && cp <= 0x01f3) return '\u01f2';
  if ((cp >= 0x10d0 && cp <= 0x10fa) || (cp >= 0x10fd && cp <= 0x10ff)) return ch; // Georgian: title = self
  if ((cp >= 0x1f80 && cp <= 0x1faf) && (cp & 0x0f) < 8) return String.fromCharCode(cp + 8);
  if (cp === 0x1fb3 || cp === 0x1fc3 || cp === 0x1ff3) return String.fromCharCode(cp + 9);
  const u = ch.toUpperCase();
  // A full (multi-character) upper case such as ß → SS has no simple mapping: unchanged.
  return u.length === ch.length || u.codePointAt(0)! > 0xffff && u.length === 2 ? u : ch;
}

/** Titlecase characters whose compatibility decomposition Dovecot's table leaves out. */
const NO_DECOMP = new Set([0x01c5, 0x01c8, 0x01cb, 0x01f2]);

/**
 * One character through Dovecot's uni_utf8_to_decomposed_titlecase(): simple titlecase, then
 * Hangul syllables split into jamo, else ONE level of the UnicodeData decomposition mapping
 * (canonical or compatibility) — not the full NFD/NFKD: "ǖ" becomes "Ü" + U+0304 (Ü stays
 * precomposed), "Å" (U+212B) becomes "Å" (U+00C5), "㌀" becomes "アパート" with a precomposed "パ",
 * "ﬁ" a lower-case "fi" (mapped values are not folded again). Checked against Dovecot 2.3.19.
 */
function foldChar(cp: number, ch: string): string {
  const t = titlecase(cp, ch);
  const tc = t.codePointAt(0)!;
  if (tc >= 0xac00 && tc <= 0xd7a3) return t.normalize('NFD');
  if (NO_DECOMP.has(tc)) return t;
  const d = t.normalize('NFD');
  if (d !== t) {
    // Canonical mapping. A singleton or an excluded composite: NFC gives the one-level value;
    // otherwise the mapping is (base, last mark) and the base is NFC of everything before it.
    const c = t.normalize('NFC');
    if (c !== t) return c;
    const cps = [...d];
    const last = cps.pop()!;
    return cps.join('').normalize('NFC') + last;
  }
  const k = t.normalize('NFKD');
  // Compatibility mapping: recompose what NFKD decomposed beyond the first level.
  return k === t ? t : k.normalize('NFC');
}

const foldCache = new Map<number, string>();

/**
 * i;unicode-casemap key of already-decoded text, exactly as Dovecot 2.3 builds it
 * (lib/unichar.c uni_utf8_to_decomposed_titlecase, tables from unicodemap.pl). Runs of U+FFFD
 * collapse to one, as Dovecot writes one replacement character per run of invalid bytes.
 */
export function foldForSort(s: string): string {
  if (/^[\x00-\x7f]*$/.test(s)) return s.toUpperCase();
  const out: string[] = [];
  let lastFffd = false;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0xfffd) {
      if (!lastFffd) out.push(ch);
      lastFffd = true;
      continue;
    }
    lastFffd = false;
    let f = foldCache.get(cp);
    if (f === undefined) {
      f = foldChar(cp, ch);
      if (foldCache.size < 65536) foldCache.set(cp, f);
    }
    out.push(f);
  }
  return out.join('');
}

/**
 * Compares two strings the way C strcmp() compares their UTF-8 encodings (code point order).
 * JS `<` compares UTF-16 units, which puts U+E000..U+FFFF after astral characters: fixed here.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x = x < 0xe000 ? x + 0x2000 : x - 0x800;
    if (y >= 0xd800) y = y < 0xe000 ? y + 0x2000 : y - 0x800;
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Step (1) tail: tabs/CR/LF → space, runs of white space → one space (Dovecot pack_whitespace). */
function packWhitespace(s: string): string {
  return s.replace(/[ \t\r\n]+/g, ' ');
}

/** remove_blob: at `p` a "[" ... "]" without nested "[", plus one optional space. -1 if none. */
function blobEnd(s: string, p: number, end: number): number {
  if (p >= end || s.charCodeAt(p) !== 0x5b) return -1;
  let i = p + 1;
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c === 0x5b || c === 0x5d) break;
    i++;
  }
  if (i >= end || s.charCodeAt(i) !== 0x5d) return -1;
  i++;
  if (i < end && s.charCodeAt(i) === 0x20) i++;
  return i;
}

/** The base subject of a raw (unfolded, possibly RFC 2047 encoded) Subject value. */
export function baseSubject(raw: Buffer | string): BaseSubject {
  const decoded = decodeRfc2047(typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw);
  const s = packWhitespace(foldForSort(decoded));
  let start = 0;
  let end = s.length;
  let reply = false;

  for (;;) {
    // (2) subj-trailer = "(fwd)" / WSP, repeatedly. Dovecot tests `size >= 5` against the whole
    // buffer, not the remainder; clamping at `start` keeps the same result for real input.
    while (end > start) {
      if (s.charCodeAt(end - 1) === 0x20) end--;
      else if (end - 5 >= start && s.startsWith('(FWD)', end - 5)) { reply = true; end -= 5; }
      else break;
    }

    // (3)-(5) subj-leader and subj-blob removal.
    let found: boolean;
    do {
      found = false;
      // (3) subj-leader
      if (start < end && s.charCodeAt(start) === 0x20) { start++; found = true; }
      let p = start;
      let blobs = 0;
      let lastBlob = -1;
      let brokenBlob = false;
      while (p < end && s.charCodeAt(p) === 0x5b) {
        const e = blobEnd(s, p, end);
        if (e < 0) { brokenBlob = true; break; }
        lastBlob = p;
        p = e;
        blobs++;
      }
      let leader = false;
      if (!brokenBlob) {
        let q = p;
        if (s.startsWith('RE', q) && q + 2 <= end) q += 2;
        else if (s.startsWith('FWD', q) && q + 3 <= end) q += 3;
        else if (s.startsWith('FW', q) && q + 2 <= end) q += 2;
        else q = -1;
        if (q >= 0) {
          if (q < end && s.charCodeAt(q) === 0x20) q++;
          if (q < end && s.charCodeAt(q) === 0x5b) q = blobEnd(s, q, end);
          if (q >= 0 && q < end && s.charCodeAt(q) === 0x3a) {
            start = q + 1;
            reply = true;
            leader = true;
            found = true;
          }
        }
      }
      if (!leader && blobs > 0) {
        // (4) The leader failed after a run of blobs: Dovecot now removes the first blob (if
        // something is left) and tries (3) again, which fails again at the same place, so every
        // blob of the run goes — except the last one when nothing would be left after it.
        start = p < end ? p : lastBlob;
        if (start !== lastBlob || blobs > 1) found = true;
        if (p >= end && blobs > 1) found = true;
      }
    } while (found);

    // (6) subj-fwd = "[fwd:" subject "]"
    if (end - start >= 5 && s.startsWith('[FWD:', start) && s.charCodeAt(end - 1) === 0x5d) {
      reply = true;
      end -= 1;
      start += 5;
      continue;
    }
    break;
  }
  return { subject: s.slice(start, Math.max(start, end)), isReplyOrForward: reply };
}
