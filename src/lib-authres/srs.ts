/**
 * srs - the Sender Rewriting Scheme (Shevek's SRS, as libsrs2 and postsrsd implement it), so
 * that mail Postern forwards to another domain keeps passing SPF, and bounces come back.
 *
 * SUMMARY
 *   srsForward('alice@example.org', cfg)   → 'SRS0=HHHH=TT=example.org=alice@forward.example'
 *   srsForward('SRS0=HHHH=TT=a.org=u@b.org', cfg) → 'SRS1=GGGG=b.org==HHHH=TT=a.org=u@forward.example'
 *   srsReverse('SRS0=HHHH=TT=example.org=alice@forward.example', cfg) → 'alice@example.org'
 *   srsReverse('SRS1=GGGG=b.org==HHHH=TT=a.org=u@forward.example', cfg) → 'SRS0=HHHH=TT=a.org=u@b.org'
 *
 * DESCRIPTION
 *   SRS0 (a first forward): `SRS0=<hash>=<TT>=<original domain>=<original local part>@<our
 *   SRS domain>`; TT is the day (Unix time / 86400) modulo 1024 in two base32 characters
 *   (A-Z2-7), <hash> the first 4 characters of the base64 HMAC-SHA1, keyed with the secret, of
 *   TT, domain and local part, each lower-cased. SRS1 (forwarding an SRS0 address again): the
 *   original forwarder's domain and the SRS0 address's tail after "SRS0", hashed the same way,
 *   so the bounce goes back through the first forwarder only. Reversal checks the hash against
 *   every secret (the first one signs: keep an old one on a later line while rotating),
 *   case-insensitively, and the timestamp against a maximum age of SRS_MAX_AGE_DAYS (21, as
 *   postsrsd); an address that fails is not reversed (the mail bounces as an unknown user).
 *   Addresses are the same as postsrsd's with the same secret and domain (tested against it).
 *
 * SECURITY
 *   The secret makes the addresses unforgeable: without it nobody can make Postern relay a
 *   bounce to an arbitrary address (no open relay through SRS). It is read from
 *   postern_srs_secret_file, created (32 random bytes, base64, mode 0600) when missing.
 *
 * PARAMETERS
 *   postern_srs, postern_srs_domain, postern_srs_secret_file
 */
import { createHmac, randomBytes } from 'node:crypto';
import { constants as C, closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { MainConfig } from '../global/mail-conf.ts';

export const SRS_MAX_AGE_DAYS = 21;
export const SRS_HASH_LENGTH = 4;
const TIME_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const DAY = 86_400_000;
const SLOTS = 1024;
/** SRS0/SRS1 followed by one of the separators libsrs2 accepts. */
const SRS_TAG = /^srs([01])[=+-]/i;

export interface SrsConfig {
  /** The domain of the rewritten addresses (postern_srs_domain); bounces to it come back to us. */
  domain: string;
  /** The first signs; all are accepted when reversing. */
  secrets: string[];
}

function hash(secret: string, parts: string[]): string {
  const h = createHmac('sha1', secret);
  for (const p of parts) h.update(p.toLowerCase(), 'latin1');
  return h.digest('base64').slice(0, SRS_HASH_LENGTH);
}

function stamp(now: number): string {
  const day = Math.floor(now / DAY) % SLOTS;
  return TIME_CHARS[(day >> 5) & 31]! + TIME_CHARS[day & 31]!;
}

function stampValid(tt: string, now: number): boolean {
  if (tt.length !== 2) return false;
  let then = 0;
  for (const ch of tt.toUpperCase()) {
    const i = TIME_CHARS.indexOf(ch);
    if (i < 0) return false;
    then = (then << 5) | i;
  }
  let today = Math.floor(now / DAY) % SLOTS;
  while (today < then) today += SLOTS;
  return today <= then + SRS_MAX_AGE_DAYS;
}

function hashValid(c: SrsConfig, given: string, parts: string[]): boolean {
  if (given.length < SRS_HASH_LENGTH) return false;
  const g = given.slice(0, SRS_HASH_LENGTH).toLowerCase();
  return c.secrets.some((s) => hash(s, parts).toLowerCase() === g);
}

/** Is this an SRS0/SRS1 address (of anyone's)? */
export function isSrsAddress(address: string): boolean { return SRS_TAG.test(address); }

/**
 * The SRS form of `sender` for mail we forward; the sender itself when it is already of our SRS
 * domain or has no domain (libsrs2 srs_forward without alwaysrewrite).
 */
export function srsForward(sender: string, c: SrsConfig, now = Date.now()): string {
  const at = sender.indexOf('@');
  if (at <= 0 || c.secrets.length === 0) return sender;
  const user = sender.slice(0, at);
  const host = sender.slice(at + 1);
  if (host.toLowerCase() === c.domain.toLowerCase()) return sender;
  const secret = c.secrets[0]!;
  const tag = SRS_TAG.exec(user);
  if (tag?.[1] === '1') {
    // SRS1=hash=srshost=srsuser: re-hashed for us, the rest kept.
    const rest = user.slice(5);
    const h1 = rest.indexOf('=');
    const h2 = h1 < 0 ? -1 : rest.indexOf('=', h1 + 1);
    if (h1 >= 0 && h2 > h1 + 1 && h2 < rest.length - 1) {
      const srshost = rest.slice(h1 + 1, h2);
      const srsuser = rest.slice(h2 + 1);
      return `SRS1=${hash(secret, [srshost, srsuser])}=${srshost}=${srsuser}@${c.domain}`;
    }
  } else if (tag?.[1] === '0') {
    const srsuser = user.slice(4);
    return `SRS1=${hash(secret, [host, srsuser])}=${host}=${srsuser}@${c.domain}`;
  }
  const tt = stamp(now);
  return `SRS0=${hash(secret, [tt, host, user])}=${tt}=${host}=${user}@${c.domain}`;
}

export type SrsReverse = { address: string } | { error: string };

/** The address an SRS address of ours stands for; undefined when it is not an SRS address. */
export function srsReverse(address: string, c: SrsConfig, now = Date.now()): SrsReverse | undefined {
  const tag = SRS_TAG.exec(address);
  if (!tag) return undefined;
  const at = address.lastIndexOf('@');
  const local = at < 0 ? address : address.slice(0, at);
  const body = local.slice(5);
  if (tag[1] === '1') {
    const i = body.indexOf('=');
    const j = i < 0 ? -1 : body.indexOf('=', i + 1);
    if (i <= 0 || j <= i + 1 || j >= body.length - 1) return { error: 'malformed SRS1 address' };
    const h = body.slice(0, i), srshost = body.slice(i + 1, j), srsuser = body.slice(j + 1);
    if (!hashValid(c, h, [srshost, srsuser])) return { error: 'hash invalid in SRS address' };
    return { address: `SRS0${srsuser}@${srshost}` };
  }
  const p = body.split('=');
  if (p.length < 4 || p.slice(0, 3).some((x) => x === '') || p.slice(3).join('=') === '') return { error: 'malformed SRS0 address' };
  const [h, tt, host] = p as [string, string, string];
  const user = p.slice(3).join('=');
  if (!stampValid(tt, now)) return { error: 'time stamp out of date' };
  if (!hashValid(c, h, [tt, host, user])) return { error: 'hash invalid in SRS address' };
  return { address: `${user}@${host}` };
}

const loaded = new Map<string, string[]>();

/** Read the secrets file (one secret a line), creating it with a random secret when missing. */
export function srsSecrets(file: string): string[] {
  const hit = loaded.get(file);
  if (hit) return hit;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`postern_srs_secret_file: cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`);
    try {
      const fd = openSync(file, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600);
      try { writeSync(fd, randomBytes(32).toString('base64') + '\n'); } finally { closeSync(fd); }
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`postern_srs_secret_file: cannot create ${file}: ${(e2 as NodeJS.ErrnoException).code}`);
    }
    text = readFileSync(file, 'utf8');
  }
  const secrets = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (secrets.length === 0) throw new Error(`postern_srs_secret_file: ${file} holds no secret`);
  loaded.set(file, secrets);
  return secrets;
}

/** main.cf → the SRS configuration; undefined when postern_srs = no. Throws naming the parameter. */
export function srsConfig(c: MainConfig): SrsConfig | undefined {
  if (!c.bool('postern_srs')) return undefined;
  const domain = c.get('postern_srs_domain').trim().toLowerCase();
  if (!domain) return undefined;
  const file = c.get('postern_srs_secret_file');
  // The secrets file is read (or created) when first needed: mail that is neither forwarded
  // nor an SRS bounce never touches it.
  return { domain, get secrets() { return srsSecrets(file); } };
}

/**
 * For recipient validation (smtpd's reject_unlisted_recipient, as Postfix skips it for an
 * address its recipient_canonical_maps know): is this a valid SRS address of our SRS domain?
 */
export function srsRecipientCheck(c: MainConfig): (address: string) => boolean {
  let cfg: SrsConfig | undefined | null = null;
  return (address) => {
    if (!isSrsAddress(address)) return false;
    if (cfg === null) { try { cfg = srsConfig(c); } catch { cfg = undefined; } }
    if (!cfg) return false;
    const at = address.lastIndexOf('@');
    if (at < 0 || address.slice(at + 1).toLowerCase() !== cfg.domain) return false;
    try {
      const r = srsReverse(address, cfg);
      return !!r && 'address' in r;
    } catch {
      return false;   // no usable secret: not known (cleanup logs why)
    }
  };
}
