/**
 * password-crypt - the crypt(3) formats Dovecot's CRYPT family of schemes stores, computed in
 * TypeScript so they give the same strings as glibc/libxcrypt:
 *
 *   $1$salt$hash                    md5-crypt (Poul-Henning Kamp's FreeBSD algorithm; Dovecot MD5-CRYPT)
 *   $5$[rounds=N$]salt$hash         sha256-crypt (Ulrich Drepper, "Unix crypt using SHA-256 and SHA-512")
 *   $6$[rounds=N$]salt$hash         sha512-crypt (same specification; Dovecot SHA512-CRYPT)
 *   $2a$ / $2b$ / $2y$ cost$...      bcrypt (Dovecot BLF-CRYPT), through the bcryptjs package
 *
 * Traditional DES crypt (13 characters) is not implemented: `cryptVerify` reports it as an
 * unsupported format rather than a mismatch, so the administrator learns to rehash.
 *
 * Work is bounded: sha-crypt `rounds=` is clamped to the specification's 1000..999999999 and we
 * refuse more than MAX_SHA_CRYPT_ROUNDS (a hostile or mistyped hash must not stall the server).
 */
import { createHash, randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';

/** The crypt(3) alphabet ("./0-9A-Za-z"), also Dovecot's salt_chars. */
export const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Above this, sha-crypt verification is refused: 10 million SHA-512 rounds is about 10 s of CPU. */
export const MAX_SHA_CRYPT_ROUNDS = 2_000_000;
/** bcrypt costs above this take minutes; refuse rather than stall. */
export const MAX_BCRYPT_COST = 16;

/** A random salt of `len` characters from the crypt alphabet (Dovecot password_generate_salt). */
export function cryptSalt(len: number): string {
  const bytes = randomBytes(len);
  let s = '';
  for (let i = 0; i < len; i++) s += CRYPT_ALPHABET[bytes[i]! % 64];
  return s;
}

/** crypt(3)'s b64_from_24bit: `n` characters of the 24-bit group (b2 b1 b0), least significant first. */
function to64(out: string[], b2: number, b1: number, b0: number, n: number): void {
  let w = (b2 << 16) | (b1 << 8) | b0;
  for (let i = 0; i < n; i++) { out.push(CRYPT_ALPHABET[w & 0x3f]!); w >>>= 6; }
}

/** md5-crypt as in FreeBSD's crypt-md5.c: `$1$` + salt (≤8 chars, up to `$`) + `$` + 22 chars. */
export function md5Crypt(password: Buffer, setting: string): string {
  const magic = '$1$';
  let salt = setting.startsWith(magic) ? setting.slice(3) : setting;
  const end = salt.indexOf('$');
  if (end >= 0) salt = salt.slice(0, end);
  salt = salt.slice(0, 8);
  const saltB = Buffer.from(salt, 'latin1');

  const alt = createHash('md5').update(password).update(saltB).update(password).digest();
  const ctx = createHash('md5').update(password).update(magic).update(saltB);
  for (let pl = password.length; pl > 0; pl -= 16) ctx.update(alt.subarray(0, Math.min(16, pl)));
  // "Then something really weird...": a NUL byte for each set bit, the first password byte otherwise.
  for (let i = password.length; i; i >>= 1) ctx.update(i & 1 ? Buffer.alloc(1) : password.subarray(0, 1));
  let final = ctx.digest();
  for (let i = 0; i < 1000; i++) {
    const c = createHash('md5');
    c.update(i & 1 ? password : final);
    if (i % 3) c.update(saltB);
    if (i % 7) c.update(password);
    c.update(i & 1 ? final : password);
    final = c.digest();
  }
  const f = final;
  const out: string[] = [];
  to64(out, f[0]!, f[6]!, f[12]!, 4);
  to64(out, f[1]!, f[7]!, f[13]!, 4);
  to64(out, f[2]!, f[8]!, f[14]!, 4);
  to64(out, f[3]!, f[9]!, f[15]!, 4);
  to64(out, f[4]!, f[10]!, f[5]!, 4);
  to64(out, 0, 0, f[11]!, 2);
  return `${magic}${salt}$${out.join('')}`;
}

// Drepper's byte orders for the final encoding (sha256crypt.c / sha512crypt.c).
const SHA256_ORDER: readonly (readonly [number, number, number])[] = [
  [0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14],
  [15, 25, 5], [6, 16, 26], [27, 7, 17], [18, 28, 8], [9, 19, 29],
];
const SHA512_ORDER: readonly (readonly [number, number, number])[] = [
  [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48],
  [28, 49, 7], [50, 8, 29], [9, 30, 51], [31, 52, 10], [53, 11, 32], [12, 33, 54], [34, 55, 13],
  [56, 14, 35], [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
];

/** Repeat `block` to exactly `len` bytes (the P and S sequences of the specification). */
function stretch(block: Buffer, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let off = 0; off < len; off += block.length) block.copy(out, off, 0, Math.min(block.length, len - off));
  return out;
}

/**
 * sha-crypt (Drepper): `setting` is `$5$salt`, `$6$rounds=N$salt` or a whole stored hash.
 * Throws RangeError when rounds exceed MAX_SHA_CRYPT_ROUNDS.
 */
export function shaCrypt(password: Buffer, setting: string): string {
  const bits = setting.startsWith('$5$') ? 256 : setting.startsWith('$6$') ? 512 : 0;
  if (!bits) throw new RangeError('not a $5$ or $6$ setting');
  const algo = bits === 256 ? 'sha256' : 'sha512';
  const hlen = bits / 8;
  let rest = setting.slice(3);
  let rounds = 5000;
  let customRounds = false;
  const m = /^rounds=(\d{1,10})\$/.exec(rest);
  if (m) {
    rounds = Math.min(999_999_999, Math.max(1000, Number(m[1])));
    customRounds = true;
    rest = rest.slice(m[0].length);
    if (rounds > MAX_SHA_CRYPT_ROUNDS) throw new RangeError(`rounds=${rounds} exceeds the limit of ${MAX_SHA_CRYPT_ROUNDS}`);
  }
  const end = rest.indexOf('$');
  const salt = (end >= 0 ? rest.slice(0, end) : rest).slice(0, 16);
  const S0 = Buffer.from(salt, 'latin1');
  const K = password;

  const B = createHash(algo).update(K).update(S0).update(K).digest();
  const a = createHash(algo).update(K).update(S0);
  let n = K.length;
  for (; n > hlen; n -= hlen) a.update(B);
  a.update(B.subarray(0, n));
  for (let i = K.length; i > 0; i >>= 1) a.update(i & 1 ? B : K);
  const A = a.digest();

  const dp = createHash(algo);
  for (let i = 0; i < K.length; i++) dp.update(K);
  const P = stretch(dp.digest(), K.length);
  const ds = createHash(algo);
  for (let i = 0; i < 16 + A[0]!; i++) ds.update(S0);
  const S = stretch(ds.digest(), S0.length);

  let C = A;
  for (let i = 0; i < rounds; i++) {
    const c = createHash(algo);
    c.update(i & 1 ? P : C);
    if (i % 3) c.update(S);
    if (i % 7) c.update(P);
    c.update(i & 1 ? C : P);
    C = c.digest();
  }
  const out: string[] = [];
  if (bits === 256) {
    for (const [x, y, z] of SHA256_ORDER) to64(out, C[x]!, C[y]!, C[z]!, 4);
    to64(out, 0, C[31]!, C[30]!, 3);
  } else {
    for (const [x, y, z] of SHA512_ORDER) to64(out, C[x]!, C[y]!, C[z]!, 4);
    to64(out, 0, 0, C[63]!, 2);
  }
  return `$${bits === 256 ? 5 : 6}$${customRounds ? `rounds=${rounds}$` : ''}${salt}$${out.join('')}`;
}

/** Make a crypt(3) string of the given kind with a fresh salt (16 chars for sha-crypt, 8 for md5). */
export function cryptGenerate(kind: 'md5' | 'sha256' | 'sha512' | 'bcrypt', password: Buffer, rounds?: number): string {
  switch (kind) {
    case 'md5': return md5Crypt(password, '$1$' + cryptSalt(8));
    case 'sha256':
    case 'sha512': {
      const r = rounds && rounds !== 5000 ? `rounds=${rounds}$` : '';
      return shaCrypt(password, `$${kind === 'sha256' ? 5 : 6}$${r}${cryptSalt(16)}`);
    }
    case 'bcrypt': {
      // Dovecot writes $2y$ with cost 5 (doveadm pw -s BLF-CRYPT); bcryptjs writes $2b$, same algorithm.
      const cost = Math.min(MAX_BCRYPT_COST, Math.max(4, rounds ?? 5));
      return '$2y$' + bcrypt.hashSync(password.toString('utf8'), bcrypt.genSaltSync(cost)).slice(4);
    }
  }
}

/** Outcome of a crypt comparison; `error` explains why the stored string cannot be checked. */
export interface CryptCheck { match: boolean; error?: string }

/**
 * Compute the crypt string for `password` with the stored string as setting, as crypt(3) would.
 * Returns undefined (with an error) for formats we do not implement or cannot accept.
 */
export async function cryptCompute(password: Buffer, stored: string): Promise<{ computed?: string; error?: string }> {
  try {
    if (stored.startsWith('$1$')) return { computed: md5Crypt(password, stored) };
    if (stored.startsWith('$5$') || stored.startsWith('$6$')) return { computed: shaCrypt(password, stored) };
    const b = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/.exec(stored);
    if (b) {
      if (Number(b[1]) > MAX_BCRYPT_COST) return { error: `bcrypt cost ${b[1]} exceeds the limit of ${MAX_BCRYPT_COST}` };
      // bcryptjs understands $2a$/$2b$/$2y$ the same way (they differ only in historic C bugs).
      const normalized = '$2b$' + stored.slice(4);
      const h = await bcrypt.hash(password.toString('utf8'), normalized.slice(0, 29));
      return { computed: stored.slice(0, 4) + h.slice(4) };
    }
    if (stored.startsWith('$2')) return { error: 'malformed bcrypt hash' };
    if (/^[./0-9A-Za-z]{13}$/.test(stored)) return { error: 'traditional DES crypt is not supported: rehash the password with SHA512-CRYPT' };
    return { error: 'unknown crypt(3) format' };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}
