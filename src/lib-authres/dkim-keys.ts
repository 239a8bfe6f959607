/**
 * dkim-keys - the DKIM key directory (CONFIG_DIR/dkim, main.cf postern_dkim_key_directory):
 * one place and one format for the keys `postern dkim keygen|rotate`, `postern dns` and the
 * signer (dkim-sign.ts) share. The counterpart of the key files an OpenDKIM site keeps under
 * /etc/opendkim/keys, with the file name doing the KeyTable's job.
 *
 * FILES
 *   DIR/DOMAIN.SELECTOR.ALGORITHM.key      a signing key: PKCS#8 PEM, mode 0600, the directory 0700
 *   DIR/DOMAIN.SELECTOR.ALGORITHM.retired  a key rotated out: no longer signs, its public half is
 *                                          still printed by `postern dns` (mail signed with it is
 *                                          still in flight or in mailboxes) until it is removed
 *   ALGORITHM is rsa (2048 bits, RFC 8301 §3.2) or ed25519 (RFC 8463). A domain with both keys
 *   signs twice (RFC 8463 §4: verifiers that do not know ed25519 ignore that signature). Names
 *   are lower case; the selector is one DNS label (RFC 6376 §3.1), so the name splits from the
 *   right. `postern dkim keygen example.com` makes the selectors `postern` (rsa) and
 *   `postern-ed25519`, the names `postern dns --dkim-key` used before.
 *
 * SECURITY
 *   readSigningKey() refuses, with a message naming the file and what to change: a file that is
 *   not a regular file (a symbolic link counts as its target, whose mode is checked), one readable or writable by group or others (OpenDKIM's "key data is not
 *   secure"), a file that is not a PEM private key, a key of another algorithm than its name
 *   says, an RSA key under 1024 bits (RFC 8301 §3.2). The caller logs it and sends unsigned.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type DkimAlgorithm = 'rsa' | 'ed25519';

export interface DkimKeyFile {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  file: string;
  /** false: a .retired key (published, not signing). */
  active: boolean;
}

/** The selector `keygen` uses without --selector (and `postern dns` always used). */
export const DEFAULT_SELECTOR = 'postern';

/** A DKIM selector is one DNS label here (RFC 6376 §3.1 allows dotted ones; we make none). */
export function checkSelector(s: string): string | undefined {
  return /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i.test(s) ? undefined : `selector ${JSON.stringify(s)}: must be one DNS label (letters, digits, '-')`;
}

/** Parse one file name of the directory; undefined for anything else. */
export function parseKeyFileName(dir: string, name: string): DkimKeyFile | undefined {
  const parts = name.split('.');
  if (parts.length < 5) return undefined;
  const state = parts.pop()!;
  const algorithm = parts.pop()!;
  const selector = parts.pop()!;
  const domain = parts.join('.');
  if ((state !== 'key' && state !== 'retired') || (algorithm !== 'rsa' && algorithm !== 'ed25519')) return undefined;
  if (checkSelector(selector) || !/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(domain)) return undefined;
  return { domain, selector, algorithm, file: join(dir, name), active: state === 'key' };
}

/** Every key of the directory (a missing directory has none), sorted by domain, then selector. */
export function listKeys(dir: string, domain?: string): DkimKeyFile[] {
  let names: string[];
  try { names = readdirSync(dir); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`DKIM key directory ${dir}: ${(e as Error).message}`);
  }
  const out: DkimKeyFile[] = [];
  for (const n of names) {
    const k = parseKeyFileName(dir, n);
    if (k && (domain === undefined || k.domain === domain)) out.push(k);
  }
  return out.sort((a, b) => a.domain.localeCompare(b.domain) || a.selector.localeCompare(b.selector) || a.algorithm.localeCompare(b.algorithm));
}

export function keyFileName(domain: string, selector: string, algorithm: DkimAlgorithm, active = true): string {
  return `${domain}.${selector}.${algorithm}.${active ? 'key' : 'retired'}`;
}

/**
 * The p= value of the key record: base64 SubjectPublicKeyInfo for RSA (RFC 6376 §3.6.1), the
 * raw 32-byte key for Ed25519 (RFC 8463 §4).
 */
export function dkimPublicValue(key: KeyObject): string {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  // An Ed25519 SPKI is a fixed 12-byte header followed by the 32 key bytes (RFC 8410 §4).
  return (key.asymmetricKeyType === 'ed25519' ? spki.subarray(spki.length - 32) : spki).toString('base64');
}

/** The TXT record value of a key. */
export function dkimRecordValue(k: DkimKeyFile, key: KeyObject): string {
  return `v=DKIM1; k=${k.algorithm}; p=${dkimPublicValue(key)}`;
}

/** Create one key (mode 0600, never over an existing file); the directory is made 0700. */
export function generateKey(dir: string, domain: string, selector: string, algorithm: DkimAlgorithm): DkimKeyFile {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, keyFileName(domain, selector, algorithm));
  const pair = algorithm === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 })   // RFC 8301 §3.2: at least 1024, 2048 recommended
    : generateKeyPairSync('ed25519');
  writeFileSync(file, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);   // whatever the umask
  return { domain, selector, algorithm, file, active: true };
}

/**
 * Read a private key for signing or for printing its public half, with the checks of the
 * header (SECURITY). Throws an Error whose message names the file and the fix.
 */
export function readSigningKey(file: string, algorithm?: DkimAlgorithm): KeyObject {
  let st;
  try { st = statSync(file); } catch (e) { throw new Error(`DKIM key ${file}: ${(e as Error).message}`); }
  if (!st.isFile()) throw new Error(`DKIM key ${file}: not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new Error(`DKIM key ${file}: readable or writable by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): not used; run chmod 600 ${file}`);
  }
  if (st.size > 65536) throw new Error(`DKIM key ${file}: ${st.size} bytes, too large for a private key`);
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(file));
  } catch (e) {
    throw new Error(`DKIM key ${file}: not a PEM private key (${(e as Error).message}); replace it with \`postern dkim rotate\` or \`postern dkim keygen\``);
  }
  if (key.type !== 'private') throw new Error(`DKIM key ${file}: not a private key`);
  if (algorithm !== undefined && key.asymmetricKeyType !== algorithm) throw new Error(`DKIM key ${file}: holds a ${key.asymmetricKeyType} key, its name says ${algorithm}`);
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ed25519') throw new Error(`DKIM key ${file}: a ${key.asymmetricKeyType} key; DKIM signs with rsa or ed25519`);
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType === 'rsa' && bits !== undefined && bits < 1024) throw new Error(`DKIM key ${file}: RSA key of ${bits} bits; verifiers refuse keys under 1024 bits (RFC 8301 §3.2)`);
  return key;
}

export interface KeygenOptions {
  selector?: string;
  type?: DkimAlgorithm | 'both';
}

/**
 * `postern dkim keygen`: the keys of DOMAIN for SELECTOR. With both types, RSA gets SELECTOR and
 * Ed25519 SELECTOR-ed25519 (one key record per DNS name); with one type it gets SELECTOR.
 * Refuses to replace an existing key (that is `rotate`'s job).
 */
export function keygen(dir: string, domain: string, o: KeygenOptions = {}): DkimKeyFile[] {
  const base = o.selector ?? DEFAULT_SELECTOR;
  const type = o.type ?? 'both';
  const plan: [DkimAlgorithm, string][] = type === 'both' ? [['rsa', base], ['ed25519', `${base}-ed25519`]] : [[type, base]];
  for (const [alg, sel] of plan) {
    const bad = checkSelector(sel);
    if (bad) throw new Error(bad);
    for (const active of [true, false]) {
      const f = join(dir, keyFileName(domain, sel, alg, active));
      if (existsSync(f)) throw new Error(`${f} exists already; \`postern dkim rotate ${domain}\` makes a new selector`);
    }
  }
  return plan.map(([alg, sel]) => generateKey(dir, domain, sel, alg));
}

/** A selector for a rotation: BASE-YYYYMMDD, then -2, -3... while taken. */
export function rotationSelector(dir: string, domain: string, now: Date, base = DEFAULT_SELECTOR): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  const taken = new Set(listKeys(dir, domain).map((k) => k.selector.replace(/-ed25519$/, '')));
  let sel = `${base}-${day}`;
  for (let n = 2; taken.has(sel); n++) sel = `${base}-${day}-${n}`;
  return sel;
}

/**
 * `postern dkim rotate`: new keys (the same algorithms as the active ones, both when there are
 * none) under a new selector sign from now on; the old ones become .retired (still published).
 */
export function rotate(dir: string, domain: string, now = new Date(), selector?: string): { created: DkimKeyFile[]; retired: DkimKeyFile[] } {
  const old = listKeys(dir, domain).filter((k) => k.active);
  const algs = new Set(old.map((k) => k.algorithm));
  const type: DkimAlgorithm | 'both' = algs.size === 1 ? [...algs][0]! : 'both';
  const created = keygen(dir, domain, { selector: selector ?? rotationSelector(dir, domain, now), type });
  const retired: DkimKeyFile[] = [];
  for (const k of old) {
    const to = join(dir, keyFileName(k.domain, k.selector, k.algorithm, false));
    renameSync(k.file, to);
    retired.push({ ...k, file: to, active: false });
  }
  return { created, retired };
}

/**
 * `postern dkim remove DOMAIN SELECTOR`: delete the retired keys of a selector (and of its
 * SELECTOR-ed25519 twin, as keygen and rotate name them).
 */
export function removeRetired(dir: string, domain: string, selector: string): DkimKeyFile[] {
  const keys = listKeys(dir, domain).filter((k) => k.selector === selector || (k.algorithm === 'ed25519' && k.selector === `${selector}-ed25519`));
  if (keys.length === 0) throw new Error(`no key of ${domain} with selector ${selector} in ${dir}`);
  const active = keys.filter((k) => k.active);
  if (active.length) throw new Error(`${active[0]!.file} still signs; \`postern dkim rotate ${domain}\` first, then remove the old selector once its DNS record is gone`);
  for (const k of keys) unlinkSync(k.file);
  return keys;
}
