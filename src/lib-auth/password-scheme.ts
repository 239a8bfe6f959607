/**
 * password-scheme - Dovecot's password schemes (auth/password-scheme.c): the `{SCHEME}hash`
 * strings found in passwd-files and SQL tables, how to make them (`postern pw -s`) and how to
 * check a plaintext against them (`postern pw -t`, every passdb).
 *
 * Names, default encodings and formats are Dovecot 2.3's, so hashes move both ways between
 * Postern and `doveadm pw`:
 *   PLAIN CLEAR CLEARTEXT PLAIN-TRUNC        the password itself
 *   CRYPT DES-CRYPT(verify: no) MD5-CRYPT MD5 SHA256-CRYPT SHA512-CRYPT BLF-CRYPT   crypt(3) strings
 *   ARGON2I ARGON2ID                          PHC strings `$argon2id$v=19$m=..,t=..,p=..$salt$hash`
 *   SHA SHA1 SHA256 SHA512 SSHA SSHA256 SSHA512 SMD5 LDAP-MD5   base64 digests (S = digest + salt)
 *   PLAIN-MD5                                 hex MD5
 *   PBKDF2                                    `$1$salt$rounds$hexsha1`
 *   SCRAM-SHA-1 SCRAM-SHA-256                 `iter,salt,StoredKey,ServerKey` (RFC 5802 §3)
 * A `.b64`/`.base64`/`.hex` suffix overrides the encoding (`{SHA256.HEX}...`). When no suffix is
 * given and the scheme has a fixed digest length, hex vs base64 is guessed from the length, as
 * Dovecot's password_decode() does. A stored `$1$...` with no braces is MD5-CRYPT
 * (password_get_scheme()).
 *
 * Comparisons are constant-time (crypto.timingSafeEqual). Verification never throws: a malformed
 * hash gives `{ match: false, error }`. Plaintexts are bounded (MAX_PASSWORD_BYTES) and may not
 * contain NUL (Dovecot passes them as C strings).
 */
import { argon2, createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { cryptCompute, cryptGenerate, cryptSalt, md5Crypt } from './password-crypt.ts';

/** Longest plaintext we hash or verify (Dovecot's auth protocol lines are 16 KiB at most). */
export const MAX_PASSWORD_BYTES = 4096;
/** Argon2 parameters we refuse to compute from a stored hash (memory in KiB). */
const MAX_ARGON2_MEMORY_KIB = 1024 * 1024;
const MAX_ARGON2_PASSES = 64;
const MAX_PBKDF2_ROUNDS = 10_000_000;

type Encoding = 'none' | 'b64' | 'hex';

interface Scheme {
  name: string;
  encoding: Encoding;
  /** Fixed raw length (bytes) for hex/base64 guessing; 0 = variable. */
  rawLen: number;
  generate?: (pw: Buffer, opts: HashOptions) => Promise<Buffer> | Buffer;
  /** Compare; raw is the decoded stored password. */
  verify: (pw: Buffer, raw: Buffer) => Promise<CheckResult> | CheckResult;
}

interface CheckResult { match: boolean; error?: string }

export interface HashOptions {
  /** -r: rounds (sha-crypt rounds=, bcrypt cost, argon2 passes, pbkdf2 iterations). */
  rounds?: number;
  /** -u: user name (only DIGEST-MD5 needs it; accepted for doveadm compatibility). */
  user?: string;
}

export interface VerifyOutcome {
  match: boolean;
  /** Why the stored password could not be checked (unknown scheme, malformed hash, ...). */
  error?: string;
  /** The scheme name used, upper case. */
  scheme?: string;
}

export class PasswordError extends Error {
  override name = 'PasswordError';
}

/** Constant-time equality for buffers of possibly different length. */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) {
    timingSafeEqual(a, a); // spend comparable time, reveal only the length mismatch
    return false;
  }
  return timingSafeEqual(a, b);
}

const ok = (m: boolean): CheckResult => ({ match: m });

/** Verify by regenerating: for unsalted digests and PLAIN. */
function byDigest(algo: string): (pw: Buffer, raw: Buffer) => CheckResult {
  return (pw, raw) => ok(safeEqual(createHash(algo).update(pw).digest(), raw));
}

/** Salted digests: raw = digest(pw + salt) + salt (Dovecot ssha_verify and friends). */
function salted(algo: string, len: number, name: string): Pick<Scheme, 'generate' | 'verify'> {
  return {
    generate: (pw) => {
      const salt = randomBytes(4);
      return Buffer.concat([createHash(algo).update(pw).update(salt).digest(), salt]);
    },
    verify: (pw, raw) => {
      if (raw.length <= len) return { match: false, error: `${name} password is too short` };
      const d = createHash(algo).update(pw).update(raw.subarray(len)).digest();
      return ok(safeEqual(d, raw.subarray(0, len)));
    },
  };
}

/** Verify a crypt(3)-family string by recomputing it with the stored string as setting. */
async function cryptCheck(pw: Buffer, raw: Buffer): Promise<CheckResult> {
  const stored = raw.toString('latin1');
  if (stored.length === 0) return { match: false, error: 'empty crypt password' };
  const r = await cryptCompute(pw, stored);
  if (r.computed === undefined) return { match: false, error: r.error };
  return ok(safeEqual(Buffer.from(r.computed, 'latin1'), raw));
}

const PHC_RE = /^\$(argon2id|argon2i|argon2d)\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

function argon2Run(algorithm: string, pw: Buffer, salt: Buffer, m: number, t: number, p: number, len: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    argon2(algorithm as 'argon2id', { message: pw, nonce: salt, parallelism: p, tagLength: len, memory: m, passes: t },
      (err, key) => (err ? reject(err) : resolve(Buffer.from(key))));
  });
}

function argon2Scheme(kind: 'argon2i' | 'argon2id', m: number, t: number): Pick<Scheme, 'generate' | 'verify'> {
  return {
    // Dovecot (libsodium crypto_pwhash_str): ARGON2I m=32768,t=4; ARGON2ID m=65536,t=3; p=1, 16-byte salt, 32-byte hash.
    generate: async (pw, opts) => {
      const passes = opts.rounds ?? t;
      const salt = randomBytes(16);
      const h = await argon2Run(kind, pw, salt, m, passes, 1, 32);
      const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');
      return Buffer.from(`$${kind}$v=19$m=${m},t=${passes},p=1$${b64(salt)}$${b64(h)}`, 'latin1');
    },
    verify: async (pw, raw) => {
      const mm = PHC_RE.exec(raw.toString('latin1'));
      if (!mm) return { match: false, error: 'malformed Argon2 hash (expected $argon2id$v=19$m=..,t=..,p=..$salt$hash)' };
      const [, alg, v, ms, ts, ps, s64, h64] = mm as unknown as string[];
      if (v !== '19') return { match: false, error: `unsupported Argon2 version v=${v}` };
      const mem = Number(ms), passes = Number(ts), par = Number(ps);
      if (mem > MAX_ARGON2_MEMORY_KIB || passes > MAX_ARGON2_PASSES || par < 1 || par > 255 || passes < 1 || mem < 8 * par) {
        return { match: false, error: `Argon2 parameters out of range (m=${mem},t=${passes},p=${par})` };
      }
      const salt = Buffer.from(s64!, 'base64');
      const want = Buffer.from(h64!, 'base64');
      if (salt.length < 8 || want.length < 4 || want.length > 1024) return { match: false, error: 'Argon2 salt or hash has an invalid length' };
      try {
        const got = await argon2Run(alg!, pw, salt, mem, passes, par, want.length);
        return ok(safeEqual(got, want));
      } catch (err) {
        return { match: false, error: `Argon2 failed: ${(err as Error).message}` };
      }
    },
  };
}

function scramScheme(algo: 'sha1' | 'sha256'): Pick<Scheme, 'generate' | 'verify'> {
  const len = algo === 'sha1' ? 20 : 32;
  const keys = (pw: Buffer, salt: Buffer, iter: number) => {
    const salted = pbkdf2Sync(pw, salt, iter, len, algo);
    const clientKey = createHmac(algo, salted).update('Client Key').digest();
    return {
      stored: createHash(algo).update(clientKey).digest(),
      server: createHmac(algo, salted).update('Server Key').digest(),
    };
  };
  return {
    generate: (pw, opts) => {
      const iter = opts.rounds ?? 4096;
      const salt = randomBytes(16);
      const k = keys(pw, salt, iter);
      return Buffer.from(`${iter},${salt.toString('base64')},${k.stored.toString('base64')},${k.server.toString('base64')}`);
    },
    verify: (pw, raw) => {
      const f = raw.toString('latin1').split(',');
      const iter = Number(f[0]);
      if (f.length !== 4 || !Number.isInteger(iter) || iter < 1 || iter > MAX_PBKDF2_ROUNDS) return { match: false, error: 'malformed SCRAM password' };
      const k = keys(pw, Buffer.from(f[1]!, 'base64'), iter);
      return ok(safeEqual(k.stored, Buffer.from(f[2]!, 'base64')));
    },
  };
}

const plain: Pick<Scheme, 'generate' | 'verify'> = { generate: (pw) => pw, verify: (pw, raw) => ok(safeEqual(pw, raw)) };
const crypt = (kind: 'md5' | 'sha256' | 'sha512' | 'bcrypt'): Pick<Scheme, 'generate' | 'verify'> => ({
  generate: (pw, o) => Buffer.from(cryptGenerate(kind, pw, o.rounds), 'latin1'),
  verify: cryptCheck,
});

const SCHEME_LIST: Scheme[] = [
  { name: 'PLAIN', encoding: 'none', rawLen: 0, ...plain },
  { name: 'CLEAR', encoding: 'none', rawLen: 0, ...plain },
  { name: 'CLEARTEXT', encoding: 'none', rawLen: 0, ...plain },
  {
    name: 'PLAIN-TRUNC', encoding: 'none', rawLen: 0,
    // <length>-<password>: a stored password truncated to <length> accepts any longer plaintext with that prefix.
    verify: (pw, raw) => {
      const m = /^(\d+)-/.exec(raw.toString('latin1'));
      if (!m) return { match: false, error: 'PLAIN-TRUNC missing length: prefix' };
      const stored = raw.subarray(m[0].length);
      const n = Number(m[1]);
      if (stored.length === n && pw.length >= n) return ok(safeEqual(pw.subarray(0, n), stored));
      return ok(safeEqual(pw, stored));
    },
  },
  // Dovecot 2.3's CRYPT generates bcrypt ($2y$05$) and verifies any crypt(3) string.
  { name: 'CRYPT', encoding: 'none', rawLen: 0, ...crypt('bcrypt') },
  { name: 'DES-CRYPT', encoding: 'none', rawLen: 0, verify: cryptCheck },
  { name: 'MD5-CRYPT', encoding: 'none', rawLen: 0, ...crypt('md5') },
  {
    name: 'MD5', encoding: 'none', rawLen: 0, generate: (pw) => Buffer.from(md5Crypt(pw, '$1$' + cryptSalt(8)), 'latin1'),
    // md5_verify(): $1$ is MD5-CRYPT, anything else is tried as PLAIN-MD5.
    verify: (pw, raw) => {
      const s = raw.toString('latin1');
      if (s.startsWith('$1$')) return cryptCheck(pw, raw);
      const d = decode(s, 'hex-or-b64', 16);
      if (!d) return { match: false, error: 'Not a valid MD5-CRYPT or PLAIN-MD5 password' };
      return ok(safeEqual(createHash('md5').update(pw).digest(), d));
    },
  },
  { name: 'SHA256-CRYPT', encoding: 'none', rawLen: 0, ...crypt('sha256') },
  { name: 'SHA512-CRYPT', encoding: 'none', rawLen: 0, ...crypt('sha512') },
  { name: 'BLF-CRYPT', encoding: 'none', rawLen: 0, ...crypt('bcrypt') },
  { name: 'ARGON2I', encoding: 'none', rawLen: 0, ...argon2Scheme('argon2i', 32768, 4) },
  { name: 'ARGON2ID', encoding: 'none', rawLen: 0, ...argon2Scheme('argon2id', 65536, 3) },
  { name: 'SHA', encoding: 'b64', rawLen: 20, generate: (pw) => createHash('sha1').update(pw).digest(), verify: byDigest('sha1') },
  { name: 'SHA1', encoding: 'b64', rawLen: 20, generate: (pw) => createHash('sha1').update(pw).digest(), verify: byDigest('sha1') },
  { name: 'SHA256', encoding: 'b64', rawLen: 32, generate: (pw) => createHash('sha256').update(pw).digest(), verify: byDigest('sha256') },
  { name: 'SHA512', encoding: 'b64', rawLen: 64, generate: (pw) => createHash('sha512').update(pw).digest(), verify: byDigest('sha512') },
  { name: 'SSHA', encoding: 'b64', rawLen: 0, ...salted('sha1', 20, 'SSHA') },
  { name: 'SSHA256', encoding: 'b64', rawLen: 0, ...salted('sha256', 32, 'SSHA256') },
  { name: 'SSHA512', encoding: 'b64', rawLen: 0, ...salted('sha512', 64, 'SSHA512') },
  { name: 'SMD5', encoding: 'b64', rawLen: 0, ...salted('md5', 16, 'SMD5') },
  { name: 'PLAIN-MD5', encoding: 'hex', rawLen: 16, generate: (pw) => createHash('md5').update(pw).digest(), verify: byDigest('md5') },
  { name: 'LDAP-MD5', encoding: 'b64', rawLen: 16, generate: (pw) => createHash('md5').update(pw).digest(), verify: byDigest('md5') },
  {
    name: 'PBKDF2', encoding: 'none', rawLen: 0,
    // Dovecot pbkdf2.c: $1$<16-char salt>$<rounds>$<hex PBKDF2-HMAC-SHA1, 20 bytes>
    generate: (pw, o) => {
      const salt = cryptSalt(16);
      const rounds = o.rounds ?? 5000;
      return Buffer.from(`$1$${salt}$${rounds}$${pbkdf2Sync(pw, salt, rounds, 20, 'sha1').toString('hex')}`);
    },
    verify: (pw, raw) => {
      const m = /^\$1\$([^$]+)\$(\d{1,9})\$([0-9a-fA-F]+)$/.exec(raw.toString('latin1'));
      if (!m || Number(m[2]) < 1 || Number(m[2]) > MAX_PBKDF2_ROUNDS) return { match: false, error: 'malformed PBKDF2 password' };
      const want = Buffer.from(m[3]!, 'hex');
      if (want.length === 0 || want.length > 64) return { match: false, error: 'malformed PBKDF2 password' };
      return ok(safeEqual(pbkdf2Sync(pw, Buffer.from(m[1]!, 'latin1'), Number(m[2]), want.length, 'sha1'), want));
    },
  },
  { name: 'SCRAM-SHA-1', encoding: 'none', rawLen: 0, ...scramScheme('sha1') },
  { name: 'SCRAM-SHA-256', encoding: 'none', rawLen: 0, ...scramScheme('sha256') },
];

const SCHEMES = new Map(SCHEME_LIST.map((s) => [s.name, s]));

/** Scheme names we can generate (postern pw -l), in Dovecot's spelling. */
export function listSchemes(): string[] {
  return SCHEME_LIST.filter((s) => s.generate).map((s) => s.name);
}

/** Upper-cases and resolves `NAME[.b64|.base64|.hex]`; undefined when unknown. */
function lookupScheme(spec: string): { scheme: Scheme; encoding: Encoding; explicit: boolean } | undefined {
  const dot = spec.indexOf('.');
  const name = (dot >= 0 ? spec.slice(0, dot) : spec).toUpperCase();
  const scheme = SCHEMES.get(name);
  if (!scheme) return undefined;
  if (dot < 0) return { scheme, encoding: scheme.encoding, explicit: false };
  const enc = spec.slice(dot + 1).toLowerCase();
  if (enc === 'b64' || enc === 'base64') return { scheme, encoding: 'b64', explicit: true };
  if (enc === 'hex') return { scheme, encoding: 'hex', explicit: true };
  return undefined;
}

export function isKnownScheme(spec: string): boolean { return lookupScheme(spec) !== undefined; }

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Dovecot password_decode(). mode 'hex-or-b64' guesses by length like an unsuffixed fixed-length scheme. */
function decode(s: string, mode: Encoding | 'hex-or-b64', rawLen: number): Buffer | undefined {
  let enc = mode;
  if (mode === 'hex-or-b64') enc = s.length === rawLen * 2 ? 'hex' : 'b64';
  let out: Buffer | undefined;
  if (enc === 'none') return Buffer.from(s, 'utf8');
  if (enc === 'hex') {
    if (/^(?:[0-9a-fA-F]{2})*$/.test(s)) out = Buffer.from(s, 'hex');
    else if (mode !== 'hex-or-b64') return undefined;
    else enc = 'b64';
  }
  if (enc === 'b64') {
    const t = s.replace(/\s+/g, '');
    if (!B64_RE.test(t)) return undefined;
    out = Buffer.from(t, 'base64');
  }
  if (out && rawLen && out.length !== rawLen) return undefined;
  return out;
}

/** Split `{SCHEME}rest`; a bare `$1$...` is MD5-CRYPT (password_get_scheme()). */
export function splitScheme(stored: string): { scheme?: string; hash: string } {
  if (stored.startsWith('$1$')) return { scheme: 'MD5-CRYPT', hash: stored };
  if (!stored.startsWith('{')) return { hash: stored };
  const end = stored.indexOf('}');
  if (end < 0) return { hash: stored };
  return { scheme: stored.slice(1, end), hash: stored.slice(end + 1) };
}

/** Bytes of a plaintext, or a PasswordError naming what is wrong with it. */
export function passwordBytes(password: string | Buffer): Buffer {
  const b = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  if (b.length > MAX_PASSWORD_BYTES) throw new PasswordError(`password is too long (${b.length} bytes; the limit is ${MAX_PASSWORD_BYTES})`);
  if (b.includes(0)) throw new PasswordError('password contains a NUL byte');
  return b;
}

/** `doveadm pw -s SCHEME -p PASSWORD`: returns `{SCHEME}hash` (scheme upper-cased, as doveadm prints it). */
export async function passwordHash(schemeSpec: string, password: string | Buffer, opts: HashOptions = {}): Promise<string> {
  const found = lookupScheme(schemeSpec);
  if (!found) throw new PasswordError(`Unknown scheme: ${schemeSpec}`);
  if (!found.scheme.generate) throw new PasswordError(`Scheme ${found.scheme.name} can be verified but not generated`);
  const raw = await found.scheme.generate(passwordBytes(password), opts);
  const text = found.encoding === 'b64' ? raw.toString('base64') : found.encoding === 'hex' ? raw.toString('hex') : raw.toString('utf8');
  return `{${schemeSpec.toUpperCase()}}${text}`;
}

/**
 * Check `password` against a stored password. `defaultScheme` applies when the stored string has
 * no `{SCHEME}` prefix (passwd-file `scheme=`, sql `default_pass_scheme`). Never throws.
 */
export async function passwordVerify(password: string | Buffer, stored: string, defaultScheme?: string): Promise<VerifyOutcome> {
  let pw: Buffer;
  try {
    pw = passwordBytes(password);
  } catch (err) {
    return { match: false, error: (err as Error).message };
  }
  const { scheme: given, hash } = splitScheme(stored);
  const spec = given ?? defaultScheme;
  if (!spec) return { match: false, error: 'Missing {scheme} prefix from hash' };
  const found = lookupScheme(spec);
  if (!found) return { match: false, error: `Unknown scheme: ${spec}`, scheme: spec.toUpperCase() };
  const name = found.scheme.name;
  const raw = found.scheme.rawLen && !found.explicit && found.encoding !== 'none'
    ? decode(hash, 'hex-or-b64', found.scheme.rawLen)
    : decode(hash, found.encoding, found.scheme.rawLen);
  if (!raw) return { match: false, error: `Input for ${name} isn't valid ${found.encoding === 'hex' ? 'HEX' : 'base64'} encoded data of the right length`, scheme: name };
  try {
    const r = await found.scheme.verify(pw, raw);
    return { ...r, scheme: name };
  } catch (err) {
    return { match: false, error: `${name}: ${(err as Error).message}`, scheme: name };
  }
}

let dummyHash: string | undefined;
/**
 * Spend the time of one real verification against nothing, so a caller can answer "unknown user"
 * no faster than "wrong password" (user enumeration by timing).
 */
export async function passwordDummyVerify(password: string | Buffer): Promise<void> {
  dummyHash ??= await passwordHash('SHA512-CRYPT', randomBytes(12).toString('base64'));
  await passwordVerify(typeof password === 'string' && Buffer.byteLength(password) > MAX_PASSWORD_BYTES ? '' : password, dummyHash);
}
