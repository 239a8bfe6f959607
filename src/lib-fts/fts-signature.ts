/**
 * fts-signature - the per-message trigram signature of Postern's full-text index (docs/fts.md),
 * and the test "can SEARCH BODY/TEXT x match this message?" on it.
 *
 * WHAT IS INDEXED. Exactly the strings IMAP SEARCH compares against without an index
 * (lib-mail/mail-search.ts, Dovecot 2.3's substring search): for every text walkSearchText()
 * visits (the decoded text of each text/* part; for TEXT also each header line `Name: value`
 * of every part and embedded message), its searchFold() form. Every trigram (three consecutive
 * UTF-16 code units) of each such folded text sets one bit of a Bloom filter (TEXT looks at
 * these), and each trigram of a body text one more bit, hashed differently (BODY looks at both).
 *
 * WHY IT IS EXACT. SEARCH matches when searchFold(needle) is a substring of searchFold(text) for
 * one visited text; then every trigram of the folded needle is a trigram of that folded text,
 * so its bit is set. A clear bit therefore PROVES "no match" (`cannotMatch` → true); a set bit
 * proves nothing and the message is checked exactly as before. Needles whose fold is shorter
 * than three code units have no trigram and never narrow anything. A message that cannot be
 * parsed gets the empty signature, which never excludes it.
 *
 * SIZE. The filter is built in a 2^16-bit scratch, then folded in halves (bit i of the half size
 * = bit i or bit i + half: the same test with one bit less of the hash) down to the smallest
 * power of two keeping at most MAX_FILL of the bits set: 4.5-9 bits per bit set, so a
 * word of 7 letters (5 trigrams) is a false candidate in fewer than 1 in 3,000 messages.
 */
import { parseMime } from '../lib-mail/mail-mime.ts';
import { searchFold, walkSearchText } from '../lib-mail/mail-search.ts';

const SCRATCH_BITS = 1 << 16;
const MIN_BITS = 64;
const MAX_FILL = 0.2;
/** Every visited text's trigrams (TEXT), and again, differently hashed, the body texts' (BODY). */
const SEED_ALL = 0x7a4d9e25;
const SEED_BODY = 0x2f0b3c1d;
/** A long needle is tested on at most this many of its trigrams (any subset is still exact). */
const MAX_QUERY_GRAMS = 32;


function gramHash(a: number, b: number, c: number, seed: number): number {
  let h = seed ^ Math.imul(a, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b) ^ Math.imul(b, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 13), 0x27d4eb2f) ^ c;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const scratch = new Uint8Array(SCRATCH_BITS >> 3);
const scratch32 = new Uint32Array(scratch.buffer);
/** Bits set in the scratch so far (counted as they are set). */
let setBits = 0;

function setBit(bit: number): void {
  const m = 1 << (bit & 7);
  if (scratch[bit >> 3]! & m) return;
  scratch[bit >> 3]! |= m;
  setBits++;
}

function addText(t: string, body: boolean): void {
  const n = t.length - 2;
  if (n <= 0) return;
  let a = t.charCodeAt(0), b = t.charCodeAt(1);
  for (let i = 0; i < n; i++) {
    const c = t.charCodeAt(i + 2);
    setBit(gramHash(a, b, c, SEED_ALL) & (SCRATCH_BITS - 1));
    if (body) setBit(gramHash(a, b, c, SEED_BODY) & (SCRATCH_BITS - 1));
    a = b; b = c;
  }
}

/** The signature of one message (raw RFC 5322 bytes); empty when it cannot be parsed. */
export function messageSignature(raw: Buffer): Uint8Array {
  scratch.fill(0);
  setBits = 0;
  try {
    const msg = parseMime(raw);
    walkSearchText(msg, true, (text, header) => { addText(searchFold(text), !header); return false; });
  } catch {
    return new Uint8Array(0);
  }
  // distinct positions hashed ≈ -m ln(1 - set/m); smallest m' with expected fill <= MAX_FILL
  const fill = Math.min(setBits / SCRATCH_BITS, 0.999999);
  const distinct = -SCRATCH_BITS * Math.log(1 - fill);
  let bits = SCRATCH_BITS;
  while (bits > MIN_BITS && distinct / (bits / 2) <= -Math.log(1 - MAX_FILL)) bits /= 2;
  // fold in 32-bit words (the same as bytewise: halves are whole words down to 8 bytes)
  let words = SCRATCH_BITS >> 5;
  const want = bits >> 5;
  while (words > want) {
    const half = words >> 1;
    for (let i = 0; i < half; i++) scratch32[i]! |= scratch32[i + half]!;
    words = half;
  }
  return scratch.slice(0, words * 4);
}

/** A compiled BODY or TEXT needle; undefined grams: too short to narrow. */
export interface FtsQuery {
  readonly body: boolean;
  /** Hashes of the needle's trigrams: as in every text, and as in a body text. */
  readonly hAll: Uint32Array;
  readonly hBody: Uint32Array;
}

/** The query for SEARCH BODY (body true) or TEXT x; undefined when it cannot narrow. */
export function compileQuery(value: string, body: boolean): FtsQuery | undefined {
  const t = searchFold(value);
  const n = t.length - 2;
  if (n <= 0) return undefined;
  const count = Math.min(n, MAX_QUERY_GRAMS);
  const hAll = new Uint32Array(count), hBody = new Uint32Array(count);
  for (let j = 0; j < count; j++) {
    // spread over the needle: first and last trigram always included
    const i = count === 1 ? 0 : Math.round((j * (n - 1)) / (count - 1));
    const a = t.charCodeAt(i), b = t.charCodeAt(i + 1), c = t.charCodeAt(i + 2);
    hAll[j] = gramHash(a, b, c, SEED_ALL);
    hBody[j] = gramHash(a, b, c, SEED_BODY);
  }
  return { body, hAll, hBody };
}

/** True when the signature proves the query matches no text of the message. */
export function cannotMatch(sig: Uint8Array, q: FtsQuery): boolean {
  if (sig.length === 0) return false;
  const mask = sig.length * 8 - 1;
  for (let j = 0; j < q.hAll.length; j++) {
    const ba = q.hAll[j]! & mask;
    if (!(sig[ba >> 3]! & (1 << (ba & 7)))) return true;
    if (!q.body) continue;
    const bb = q.hBody[j]! & mask;
    if (!(sig[bb >> 3]! & (1 << (bb & 7)))) return true;
  }
  return false;
}
