/**
 * acme-issue - obtain a certificate from an ACME CA (RFC 8555 §7.1 "the order process") and
 * install it where the mail services read theirs; the renewal schedule and the state file.
 * Used by the acme service (acme/acme.ts, the renewal loop in the master) and by
 * `postern cert renew` (cli/cert.ts).
 *
 * Order: the names of postern_acme_names; per authorization the first challenge type of
 * postern_acme_challenges the CA offers (a wildcard name: dns-01 only, §8.4 + RFC 8555 §7.1.3):
 *   http-01     the key authorization is written to STATE/http-01/TOKEN, which the HTTP
 *               service answers at http://NAME/.well-known/acme-challenge/TOKEN
 *               (acme-http-route.ts; postern_http_listen must include port 80 for a real CA);
 *   tls-alpn-01 a challenge certificate is written to STATE/tls-alpn-01/NAME.pem, which the
 *               HTTP service's HTTPS listener presents to a ClientHello offering only
 *               "acme-tls/1" (acme-tls-alpn.ts; postern_https_listen must include port 443);
 *   dns-01      postern_acme_dns_hook is run as `HOOK set _acme-challenge.NAME VALUE`, then
 *               `HOOK clear _acme-challenge.NAME VALUE` (RFC 8555 §8.4: VALUE is the base64url
 *               SHA-256 of the key authorization; the hook publishes the TXT record).
 * The certificate key is new for every order (postern_acme_key_type). The new key and chain
 * replace smtpd_tls_key_file and smtpd_tls_cert_file atomically (write, fsync, rename; the
 * previous pair is kept as FILE.prev); the caller then reloads the TLS contexts.
 *
 * Renewal (renewalTime): at two thirds of the certificate's lifetime (Let's Encrypt's advice),
 * or at a random moment in the CA's ARI window (RFC 9773) when it offers one. A certificate
 * that does not cover every wanted name, or that is self-issued (the embedded default's
 * self-signed one), is due at once.
 */
import { execFile } from 'node:child_process';
import { createHash, X509Certificate, createPrivateKey } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync, copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { MainConfig } from '../global/mail-conf.ts';
import { mtaStsDomains } from '../global/mta-sts-policy.ts';
import type { Logger } from '../util/msg.ts';
import { AcmeClient, AcmeError, type AcmeAuthorization } from './acme-client.ts';
import { challengeCertificate } from './acme-tls-alpn.ts';
import { b64u, csrDer, jwkThumbprint, loadKey, newAccountKeyPem, newCertKeyPem, type CertKeyType } from './acme-crypto.ts';

export type ChallengeType = 'http-01' | 'dns-01' | 'tls-alpn-01';
const CHALLENGES: readonly ChallengeType[] = ['http-01', 'dns-01', 'tls-alpn-01'];

export interface AcmeSettings {
  directoryUrl: string;
  caFile: string;
  contact: string[];
  challenges: ChallengeType[];
  keyType: CertKeyType;
  names: string[];
  stateDir: string;
  certFile: string;
  keyFile: string;
  dnsHook: string;
  timeoutMs: number;
  orderTimeoutMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
}

export class AcmeConfigError extends Error { override name = 'AcmeConfigError'; }

export function acmeSettings(c: MainConfig): AcmeSettings {
  const challenges = c.list('postern_acme_challenges').map((x) => x.toLowerCase());
  for (const ch of challenges) {
    if (!CHALLENGES.includes(ch as ChallengeType)) throw new AcmeConfigError(`postern_acme_challenges: unknown challenge type "${ch}" (use http-01, dns-01 or tls-alpn-01)`);
  }
  const keyType = c.get('postern_acme_key_type').trim().toLowerCase();
  if (keyType !== 'ecdsa-p256' && keyType !== 'rsa-2048') throw new AcmeConfigError(`postern_acme_key_type: "${keyType}" (use ecdsa-p256 or rsa-2048)`);
  const wanted = c.list('postern_acme_names');
  // The MTA-STS policy hosts the HTTP service answers need the certificate too (RFC 8461 §3.3).
  if (c.list('postern_https_listen').length) {
    for (const d of mtaStsDomains(c)) wanted.push(`mta-sts.${d}`);
  }
  const names = [...new Set(wanted.map((n) => n.toLowerCase().replace(/\.$/, '')))];
  for (const n of names) if (!/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(n)) throw new AcmeConfigError(`postern_acme_names: "${n}" is not a fully qualified host name`);
  if (names.length === 0) throw new AcmeConfigError('postern_acme_names is empty: name at least $myhostname');
  const certFile = c.get('smtpd_tls_cert_file');
  const keyFile = c.get('smtpd_tls_key_file') || certFile;
  if (!certFile) throw new AcmeConfigError('the ACME client installs the certificate in smtpd_tls_cert_file and smtpd_tls_key_file: set them (smtpd_tls_chain_files is not managed)');
  const contact = c.list('postern_acme_contact').map((m) => (m.startsWith('mailto:') ? m : `mailto:${m}`));
  return {
    directoryUrl: c.get('postern_acme_directory').trim(),
    caFile: c.get('postern_acme_ca_file').trim(),
    contact,
    challenges: (challenges.length ? challenges : ['http-01']) as ChallengeType[],
    keyType,
    names,
    stateDir: c.get('postern_acme_state_directory'),
    certFile, keyFile,
    dnsHook: c.get('postern_acme_dns_hook').trim(),
    timeoutMs: Math.max(1, c.time('postern_acme_timeout')) * 1000,
    orderTimeoutMs: Math.max(1, c.time('postern_acme_order_timeout')) * 1000,
    minBackoffMs: Math.max(1, c.time('postern_acme_minimal_backoff_time')) * 1000,
    maxBackoffMs: Math.max(1, c.time('postern_acme_maximal_backoff_time')) * 1000,
  };
}

/** What `postern cert status` shows and the service keeps between runs: STATE/status.json. */
export interface AcmeStatus {
  lastAttempt?: string;
  lastSuccess?: string;
  lastError?: string;
  failures: number;
  nextAttempt?: string;
}

export function readStatus(stateDir: string): AcmeStatus {
  try {
    const v = JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')) as AcmeStatus;
    return { ...v, failures: Number(v.failures) || 0 };
  } catch {
    return { failures: 0 };
  }
}

export function writeStatus(stateDir: string, st: AcmeStatus): void {
  writeAtomic(join(stateDir, 'status.json'), JSON.stringify(st, null, 2) + '\n', 0o644);
}

/** write, fsync, rename: a reader sees the old file or the new one, never half. */
export function writeAtomic(file: string, text: string, mode: number): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try { writeSync(fd, text); fsyncSync(fd); } finally { closeSync(fd); }
  renameSync(tmp, file);
}

/** The certificate in a PEM file (first of the chain), or undefined. */
export function readCert(file: string): X509Certificate | undefined {
  try {
    const m = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(readFileSync(file, 'latin1'));
    return m ? new X509Certificate(m[0]) : undefined;
  } catch {
    return undefined;
  }
}

export function certNames(x: X509Certificate): string[] {
  return (x.subjectAltName ?? '').split(/,\s*/).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4).toLowerCase());
}

/** Why the certificate must be replaced now, or undefined when it is fine until renewalTime(). */
export function dueNow(x: X509Certificate | undefined, names: string[], now: Date): string | undefined {
  if (!x) return 'no certificate';
  if (x.issuer === x.subject) return 'the certificate is self-issued';
  const have = new Set(certNames(x));
  const missing = names.filter((n) => !have.has(n));
  if (missing.length) return `the certificate does not name ${missing.join(', ')}`;
  if (new Date(x.validTo) <= now) return 'the certificate has expired';
  return undefined;
}

/** Two thirds into the lifetime. */
export function renewalTime(x: X509Certificate): Date {
  const from = new Date(x.validFrom).getTime();
  const to = new Date(x.validTo).getTime();
  return new Date(from + (to - from) * 2 / 3);
}

/** The backoff after `failures` consecutive failures: doubling, capped, ±20% jitter. */
export function backoffMs(s: Pick<AcmeSettings, 'minBackoffMs' | 'maxBackoffMs'>, failures: number, rand = Math.random): number {
  const base = Math.min(s.maxBackoffMs, s.minBackoffMs * 2 ** Math.max(0, Math.min(30, failures - 1)));
  return Math.round(base * (0.8 + 0.4 * rand()));
}

function accountKey(stateDir: string) {
  const f = join(stateDir, 'account.key');
  if (!existsSync(f)) writeAtomic(f, newAccountKeyPem(), 0o600);
  return loadKey(readFileSync(f, 'utf8'));
}

function runHook(hook: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(hook, args, { timeout: timeoutMs, maxBuffer: 65536 }, (err, _out, stderr) => {
      if (err) reject(new AcmeError(`postern_acme_dns_hook ${hook} ${args.slice(0, 2).join(' ')} failed: ${err.message.split('\n')[0]}${stderr ? `: ${String(stderr).trim().slice(0, 200)}` : ''}`));
      else resolve();
    });
  });
}

/** Run the whole order; resolves with the new key and chain (not yet installed). */
export async function obtainCertificate(s: AcmeSettings, log: Logger, client?: AcmeClient, replaces?: string): Promise<{ certPem: string; keyPem: string }> {
  if (!s.directoryUrl) throw new AcmeConfigError('postern_acme_directory is not set');
  const key = accountKey(s.stateDir);
  const c = client ?? new AcmeClient({ directoryUrl: s.directoryUrl, ...(s.caFile ? { caFile: s.caFile } : {}), timeoutMs: s.timeoutMs }, key);
  await c.account(s.contact);
  // RFC 9773 §5: the order names the certificate it replaces (sent only to a CA with ARI).
  const { url, order } = await c.newOrder(s.names, replaces);
  const thumb = jwkThumbprint(key);
  const cleanups: (() => Promise<void>)[] = [];
  try {
    for (const authzUrl of order.authorizations) {
      const a = await c.authorization(authzUrl);
      if (a.status === 'valid') continue;
      if (a.status !== 'pending') throw new AcmeError(`authorization for ${a.identifier.value} is ${a.status}`);
      const ch = pickChallenge(a, s.challenges);
      const keyAuth = `${ch.token}.${thumb}`;
      const name = a.identifier.value;
      if (ch.type === 'http-01') {
        const f = join(s.stateDir, 'http-01', ch.token);
        writeAtomic(f, keyAuth, 0o644);
        cleanups.push(async () => rmSync(f, { force: true }));
      } else if (ch.type === 'dns-01') {
        if (!s.dnsHook) throw new AcmeConfigError('dns-01 needs postern_acme_dns_hook');
        const value = b64u(createHash('sha256').update(keyAuth).digest());
        const rr = `_acme-challenge.${name}`;
        await runHook(s.dnsHook, ['set', rr, value], s.timeoutMs);
        cleanups.push(() => runHook(s.dnsHook, ['clear', rr, value], s.timeoutMs).catch((e: Error) => log.warn(e.message)));
      } else {
        // tls-alpn-01 (RFC 8737): the HTTPS listener answers from this file (acme-tls-alpn.ts).
        const f = join(s.stateDir, 'tls-alpn-01', `${name}.pem`);
        writeAtomic(f, challengeCertificate(name, keyAuth), 0o600);
        cleanups.push(async () => rmSync(f, { force: true }));
      }
      log.info(`ACME ${ch.type} challenge for ${name} ready, asking the CA to validate`);
      await c.respond(ch.url);
      const done = await c.poll(() => c.authorization(authzUrl), (x) => x.status !== 'pending', s.orderTimeoutMs);
      if (done.status !== 'valid') {
        const why = done.challenges.find((x) => x.type === ch.type)?.error?.detail ?? done.status;
        throw new AcmeError(`${ch.type} validation of ${name} failed: ${String(why).slice(0, 300)}`);
      }
    }
    const o = await c.poll(() => c.getOrder(url), (x) => x.status !== 'pending', s.orderTimeoutMs);
    if (o.status !== 'ready' && o.status !== 'valid') throw new AcmeError(`the order is ${o.status}${o.error?.detail ? `: ${o.error.detail}` : ''}`);
    const keyPem = newCertKeyPem(s.keyType);
    const certPem = await c.finalizeAndDownload(url, o, csrDer(createPrivateKey(keyPem), s.names), s.orderTimeoutMs);
    return { certPem, keyPem };
  } finally {
    for (const f of cleanups) await f();
  }
}

function pickChallenge(a: AcmeAuthorization, wanted: ChallengeType[]) {
  const usable = a.wildcard ? wanted.filter((t) => t === 'dns-01') : wanted;
  for (const t of usable) {
    const ch = a.challenges.find((c) => c.type === t);
    if (ch) return ch;
  }
  throw new AcmeError(`the CA offers no challenge of postern_acme_challenges (${wanted.join(', ')}) for ${a.identifier.value}${a.wildcard ? ' (a wildcard name needs dns-01)' : ''}; it offers ${a.challenges.map((c) => c.type).join(', ') || 'none'}`);
}

/**
 * Check the pair, then replace smtpd_tls_key_file and smtpd_tls_cert_file (the old pair kept as
 * .prev). Throws, leaving the installed pair untouched, when the key does not match.
 */
export function installCertificate(s: Pick<AcmeSettings, 'certFile' | 'keyFile'>, certPem: string, keyPem: string): X509Certificate {
  const x = new X509Certificate(certPem);
  if (!x.checkPrivateKey(createPrivateKey(keyPem))) throw new AcmeError('the certificate does not match its key; not installed');
  for (const f of new Set([s.certFile, s.keyFile])) if (existsSync(f)) copyFileSync(f, `${f}.prev`);
  if (s.keyFile === s.certFile) {
    writeAtomic(s.certFile, keyPem.trimEnd() + '\n' + certPem, 0o600);
  } else {
    writeAtomic(s.keyFile, keyPem, 0o600);
    writeAtomic(s.certFile, certPem, 0o644);
  }
  return x;
}
