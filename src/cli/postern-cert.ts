/**
 * postern-cert - `postern cert`: the TLS certificate the services present, and its ACME renewal
 * (docs/acme.md). certbot's `certificates`/`renew` plus an import for certificates from
 * elsewhere.
 *
 * SYNOPSIS
 *   postern cert status            names, issuer, validity, days left, next renewal, last error
 *   postern cert renew [--force]   order now when due (always with --force), install, reload
 *   postern cert import CERT KEY   check and install a certificate chain + key from elsewhere
 *
 * The certificate is the one of smtpd_tls_cert_file / smtpd_tls_key_file (the embedded default
 * configuration points Dovecot's ssl_cert/ssl_key at the same files). After installing, the
 * running master is sent SIGHUP (`postern reload`): every service's new handshakes get the new
 * certificate, open sessions keep theirs. `renew` runs the order in this process; http-01
 * answers are served by the running master's HTTP service (postern_http_listen).
 *
 * Exit status: 0 done (or nothing due), 1 failure (the installed certificate is unchanged).
 */
import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { resolve } from 'node:path';
import type { CliContext } from './cli-context.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { logger } from '../util/msg.ts';
import { acmeSettings, certNames, installCertificate, readCert, readStatus, renewalTime } from '../lib-acme/acme-issue.ts';
import { ANOTHER_ORDER, renewIfDue } from '../acme/acme.ts';
import { pidFilePath, runningMasterPid } from '../master/master-pid.ts';

const say = (s: string) => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`postern cert: ${s}\n`);

function reloadMaster(main: MainConfig): void {
  const pid = runningMasterPid(pidFilePath(main.get('queue_directory'), main.get('process_id_directory')));
  if (pid === undefined) { say('the mail system is not running: it will use the new certificate when started'); return; }
  process.kill(pid, 'SIGHUP');
  say(`reloaded the running mail system (pid ${pid}): new connections get the new certificate`);
}

function status(main: MainConfig): number {
  const certFile = main.get('smtpd_tls_cert_file');
  say(`certificate file: ${certFile || '(smtpd_tls_cert_file is not set)'}`);
  const x = certFile ? readCert(certFile) : undefined;
  if (!x) {
    say('certificate: none readable');
  } else {
    const left = (new Date(x.validTo).getTime() - Date.now()) / 86400_000;
    say(`names: ${certNames(x).join(', ') || x.subject}`);
    say(`issuer: ${x.issuer.replace(/\n/g, ', ')}${x.issuer === x.subject ? ' (self-signed)' : ''}`);
    say(`valid from: ${x.validFrom}`);
    say(`valid until: ${x.validTo} (${left < 0 ? 'EXPIRED' : `${Math.floor(left)} days left`})`);
    say(`fingerprint: SHA256 ${x.fingerprint256}`);
  }
  const directory = main.get('postern_acme_directory').trim();
  if (!directory) { say('ACME: off (postern_acme_directory is not set)'); return x ? 0 : 1; }
  say(`ACME: ${directory}`);
  const st = readStatus(main.get('postern_acme_state_directory'));
  const next = st.nextAttempt ?? (x && x.issuer !== x.subject ? renewalTime(x).toISOString() : undefined);
  say(`next renewal: ${next ?? 'at once (the service orders when it starts)'}`);
  if (st.lastAttempt) say(`last attempt: ${st.lastAttempt}`);
  if (st.lastSuccess) say(`last success: ${st.lastSuccess}`);
  if (st.lastError) say(`last error: ${st.lastError}${st.failures ? ` (${st.failures} failure${st.failures > 1 ? 's' : ''} in a row)` : ''}`);
  return 0;
}

async function renew(main: MainConfig, force: boolean): Promise<number> {
  let s;
  try { s = acmeSettings(main); } catch (e) { err((e as Error).message); return 1; }
  if (!s.directoryUrl) { err('postern_acme_directory is not set in main.cf: there is no CA to renew from (see docs/acme.md), or use postern cert import'); return 1; }
  const pid = runningMasterPid(pidFilePath(main.get('queue_directory'), main.get('process_id_directory')));
  if (pid === undefined && s.challenges[0] !== 'dns-01') {
    say(`warning: the mail system is not running, so nothing answers the CA's ${s.challenges[0]} challenge; start it first (or use dns-01)`);
  }
  let r = await renewIfDue(s, logger('cert'), force);
  // The master's own renewal is under way: wait for it (bounded), then order as asked.
  for (let i = 0; r.error === ANOTHER_ORDER && i < 120; i++) {
    await new Promise((res) => setTimeout(res, 1000));
    r = await renewIfDue(s, logger('cert'), force);
  }
  if (r.error) { err(`renewal failed: ${r.error}; the installed certificate is unchanged`); return 1; }
  if (!r.renewed) { say(`not due: next renewal at ${new Date(Date.now() + r.nextMs).toISOString()} (use --force to renew now)`); return 0; }
  const x = readCert(s.certFile)!;
  say(`renewed: ${certNames(x).join(', ')}, issued by ${x.issuer.replace(/\n/g, ', ')}, valid until ${x.validTo}`);
  reloadMaster(main);
  return 0;
}

function importPair(main: MainConfig, certPath: string, keyPath: string): number {
  let certPem: string; let keyPem: string;
  try { certPem = readFileSync(certPath, 'utf8'); keyPem = readFileSync(keyPath, 'utf8'); } catch (e) { err((e as Error).message); return 1; }
  let x: X509Certificate;
  try {
    x = new X509Certificate(certPem);
    if (!x.checkPrivateKey(createPrivateKey(keyPem))) { err(`${keyPath} is not the key of ${certPath}`); return 1; }
  } catch (e) { err(`${certPath} / ${keyPath}: ${(e as Error).message}`); return 1; }
  if (new Date(x.validTo) <= new Date()) { err(`${certPath} expired on ${x.validTo}; not installed`); return 1; }
  const certFile = main.get('smtpd_tls_cert_file');
  if (!certFile) { err('smtpd_tls_cert_file is not set in main.cf: nowhere to install'); return 1; }
  try {
    installCertificate({ certFile, keyFile: main.get('smtpd_tls_key_file') || certFile }, certPem, keyPem);
  } catch (e) { err((e as Error).message); return 1; }
  say(`installed: ${certNames(x).join(', ') || x.subject}, issued by ${x.issuer.replace(/\n/g, ', ')}, valid until ${x.validTo}, in ${certFile}`);
  reloadMaster(main);
  return 0;
}

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const main = MainConfig.load(resolve(ctx.configDir));
  const [sub, ...rest] = args;
  if (sub === 'status' || sub === undefined) return status(main);
  if (sub === 'renew') {
    const bad = rest.filter((a) => a !== '--force');
    if (bad.length) { err(`renew: unknown argument ${bad[0]}`); return 1; }
    return renew(main, rest.includes('--force'));
  }
  if (sub === 'import' && rest.length === 2) return importPair(main, rest[0]!, rest[1]!);
  err('usage: postern cert status | renew [--force] | import CERT KEY');
  return 1;
}
