/**
 * acme - the ACME client's renewal loop (RFC 8555), run by the master when main.cf sets
 * postern_acme_directory: keeps the certificate of smtpd_tls_cert_file/smtpd_tls_key_file
 * issued by the CA and current, for every service at once.
 *
 * DESCRIPTION
 *   At start and after each attempt, the service looks at the installed certificate: missing,
 *   self-issued, not naming every postern_acme_names name, or past its renewal time (two thirds
 *   of its lifetime, or a random moment of the CA's ARI window, RFC 9773) means an order now
 *   (lib-acme/acme-issue.ts). A new certificate is installed and every TLS context of the
 *   master's process is re-read, as `postern reload` does (lib-tls/tls-provider.ts): new
 *   handshakes of SMTP, submission, IMAP, POP3, LMTP, ManageSieve and HTTPS get it, sessions
 *   already open keep the old one. A failed order keeps the installed certificate, is logged
 *   with what to fix, and is retried after postern_acme_minimal_backoff_time, doubling up to
 *   postern_acme_maximal_backoff_time, with ±20% jitter so that many servers do not retry in
 *   step. The state (last attempt, last error, next attempt) is in STATE/status.json for
 *   `postern cert status`.
 *
 * SECURITY
 *   Talks to the CA over HTTPS (every answer bounded: lib-acme/acme-client.ts) and runs
 *   postern_acme_dns_hook for dns-01. Writes the TLS key (mode 0600).
 *
 * DIAGNOSTICS
 *   "certificate for NAMES issued by ISSUER, valid until DATE, installed in FILE; N TLS
 *   services reloaded"; "warning: ACME order for NAMES failed: WHY; keeping the installed
 *   certificate (valid until DATE); next attempt in T"; "warning: certificate FILE expires in N
 *   days (DATE) and could not be renewed" when a renewal failed with under 14 days left.
 *
 * PARAMETERS
 *   postern_acme_directory, postern_acme_contact, postern_acme_challenges,
 *   postern_acme_key_type, postern_acme_names, postern_acme_state_directory,
 *   postern_acme_ca_file, postern_acme_dns_hook, postern_acme_timeout,
 *   postern_acme_order_timeout, postern_acme_minimal_backoff_time,
 *   postern_acme_maximal_backoff_time, smtpd_tls_cert_file, smtpd_tls_key_file.
 */
import type { RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import { AcmeClient, ariCertId } from '../lib-acme/acme-client.ts';
import { loadKey } from '../lib-acme/acme-crypto.ts';
import {
  acmeSettings, backoffMs, certNames, dueNow, installCertificate, obtainCertificate, readCert, readStatus, renewalTime, writeStatus,
  type AcmeSettings,
} from '../lib-acme/acme-issue.ts';
import { reloadTlsContexts } from '../lib-tls/tls-provider.ts';
import { metrics } from '../util/metrics.ts';
import type { Logger } from '../util/msg.ts';
import { existsSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Longest single sleep: the loop looks again at least this often (reading one file), so a
 * certificate replaced meanwhile (`postern cert renew`, `postern cert import`) is rescheduled.
 */
const MAX_SLEEP_MS = 3600_000;

export function fmtDelay(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/**
 * One look at the certificate: order when due. Returns the delay until the next look.
 * Exported for `postern cert renew` and tests.
 */
export async function renewIfDue(s: AcmeSettings, log: Logger, force = false, now = new Date()): Promise<{ renewed: boolean; nextMs: number; error?: string }> {
  const st = readStatus(s.stateDir);
  const x = readCert(s.certFile);
  let why = force ? 'renewal forced' : dueNow(x, s.names, now);
  if (!why && x) {
    let at = renewalTime(x);
    try {
      const ari = existsSync(join(s.stateDir, 'account.key'))
        ? await new AcmeClient({ directoryUrl: s.directoryUrl, ...(s.caFile ? { caFile: s.caFile } : {}), timeoutMs: s.timeoutMs }, loadKey(readFileSync(join(s.stateDir, 'account.key'), 'utf8'))).renewalInfo(x.toString())
        : undefined;
      if (ari) at = new Date(ari.start.getTime() + Math.random() * (ari.end.getTime() - ari.start.getTime()));
    } catch { /* ARI is advice: without it, two thirds of the lifetime */ }
    if (at > now) {
      writeStatus(s.stateDir, { ...st, nextAttempt: at.toISOString() });
      return { renewed: false, nextMs: at.getTime() - now.getTime() };
    }
    why = `renewal time ${at.toISOString()} reached`;
  }
  // A retry before its time (a restart) waits for the backoff still running.
  if (!force && st.failures > 0 && st.nextAttempt && new Date(st.nextAttempt) > now && x && new Date(x.validTo) > now && x.issuer !== x.subject) {
    return { renewed: false, nextMs: new Date(st.nextAttempt).getTime() - now.getTime() };
  }
  const unlock = lockOrders(s);
  if (!unlock) {
    log.info(`an ACME order for ${s.certFile} is already under way (${join(s.stateDir, 'order.lock')}); looking again in a minute`);
    return { renewed: false, nextMs: 60_000, error: ANOTHER_ORDER };
  }
  log.info(`ordering a certificate for ${s.names.join(', ')} from ${s.directoryUrl}: ${why}`);
  const attempt = now.toISOString();
  try {
    let replaces: string | undefined;
    try { if (x && x.issuer !== x.subject) replaces = ariCertId(x.toString()); } catch { /* no AKI: nothing to name */ }
    const { certPem, keyPem } = await obtainCertificate(s, log, undefined, replaces);
    const nx = installCertificate(s, certPem, keyPem);
    const n = reloadTlsContexts();
    log.info(`certificate for ${certNames(nx).join(', ')} issued by ${nx.issuer.replace(/\n/g, ', ')}, valid until ${nx.validTo}, installed in ${s.certFile}; ${n} TLS services reloaded`);
    const next = renewalTime(nx);
    writeStatus(s.stateDir, { lastAttempt: attempt, lastSuccess: new Date().toISOString(), failures: 0, nextAttempt: next.toISOString() });
    return { renewed: true, nextMs: Math.max(1000, next.getTime() - Date.now()) };
  } catch (e) {
    const failures = st.failures + 1;
    const wait = backoffMs(s, failures);
    const msg = (e as Error).message;
    const keep = x ? `keeping the installed certificate (valid until ${x.validTo})` : 'no certificate installed';
    log.warn(`ACME order for ${s.names.join(', ')} failed: ${msg}; ${keep}; next attempt in ${fmtDelay(wait)}`);
    if (x && x.issuer !== x.subject) {
      const left = (new Date(x.validTo).getTime() - now.getTime()) / 86400_000;
      if (left < 14) log.warn(`certificate ${s.certFile} expires in ${Math.max(0, Math.floor(left))} days (${x.validTo}) and could not be renewed`);
    }
    writeStatus(s.stateDir, { ...st, lastAttempt: attempt, lastError: msg, failures, nextAttempt: new Date(Date.now() + wait).toISOString() });
    return { renewed: false, nextMs: wait, error: msg };
  } finally {
    unlock();
  }
}

/**
 * One order at a time per state directory (the service and `postern cert renew`): STATE/order.lock
 * holds the pid; a lock whose process is gone, or older than twice the order time limit, is stale.
 */
function lockOrders(s: AcmeSettings): (() => void) | undefined {
  const f = join(s.stateDir, 'order.lock');
  mkdirSync(s.stateDir, { recursive: true });
  for (let i = 0; i < 2; i++) {
    try {
      writeFileSync(f, String(process.pid), { flag: 'wx', mode: 0o600 });
      return () => { try { unlinkSync(f); } catch { /* gone */ } };
    } catch {
      let stale = true;
      try {
        const pid = Number(readFileSync(f, 'utf8'));
        const age = Date.now() - statSync(f).mtimeMs;
        if (Number.isInteger(pid) && pid > 0 && age < 2 * s.orderTimeoutMs + s.timeoutMs * 10) {
          try { process.kill(pid, 0); stale = false; } catch (e) { stale = (e as NodeJS.ErrnoException).code === 'ESRCH'; }
        }
      } catch { /* unreadable: stale */ }
      if (!stale) return undefined;
      try { unlinkSync(f); } catch { /* raced */ }
    }
  }
  return undefined;
}

export const ANOTHER_ORDER = 'another order is under way';

/** What will make every order fail, said once at start (the first order says it again, later). */
export function acmeWarnings(c: { list(n: string): string[] }, s: AcmeSettings): string[] {
  const out: string[] = [];
  const only = (t: string) => s.challenges.length === 1 && s.challenges[0] === t;
  if (only('http-01') && c.list('postern_http_listen').length === 0) out.push('postern_acme_challenges = http-01 needs postern_http_listen (port 80 for a public CA): the CA cannot reach the challenge answer');
  if (only('tls-alpn-01') && c.list('postern_https_listen').length === 0) out.push('postern_acme_challenges = tls-alpn-01 needs postern_https_listen (port 443 for a public CA)');
  if (s.challenges.includes('dns-01') && !s.dnsHook) out.push('postern_acme_challenges names dns-01 but postern_acme_dns_hook is not set');
  if (s.names.some((n) => n.startsWith('*.')) && !s.challenges.includes('dns-01')) out.push('a wildcard name in postern_acme_names needs dns-01 in postern_acme_challenges');
  return out;
}

/** The settings of the running service, for the metrics gauges (registered once per process). */
let live: AcmeSettings | undefined;

function registerMetrics(): void {
  // docs/metrics.md: read at each scrape of /metrics (postern_metrics = yes).
  metrics.gauge('postern_tls_certificate_expiry_timestamp_seconds', 'notAfter of the certificate the ACME client keeps (smtpd_tls_cert_file), as a UNIX time', ['file'], (g) => {
    const x = live ? readCert(live.certFile) : undefined;
    if (live && x) g.labels(live.certFile).set(Math.floor(new Date(x.validTo).getTime() / 1000));
  });
  metrics.gauge('postern_acme_renewal_failures', 'Consecutive failed ACME orders (0 after a success)', [], (g) => {
    if (live) g.labels().set(readStatus(live.stateDir).failures);
  });
}

export const service: ServiceImpl = {
  name: 'acme',
  async start(ctx: ServiceContext): Promise<RunningService> {
    const s = acmeSettings(ctx.config);          // a configuration error fails the start, loudly
    for (const w of acmeWarnings(ctx.config, s)) ctx.log.warn(w);
    live = s;
    registerMetrics();
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    let running: Promise<unknown> = Promise.resolve();
    const look = () => {
      running = renewIfDue(s, ctx.log).then((r) => {
        if (stopped) return;
        timer = setTimeout(look, Math.min(MAX_SLEEP_MS, Math.max(1000, r.nextMs)));
      }, (e: Error) => {
        ctx.log.warn(`ACME: ${e.message}`);
        if (!stopped) timer = setTimeout(look, s.minBackoffMs);
      });
    };
    // A moment for the HTTP service (started alongside) before the CA calls back.
    timer = setTimeout(look, 200);
    return {
      async stop() {
        stopped = true;
        clearTimeout(timer);
        // An order under way finishes (or times out) by itself; the stop does not wait for it
        // longer than a few seconds (its result is still installed and logged).
        await Promise.race([running, new Promise((r) => setTimeout(r, 5000).unref())]);
        if (live === s) live = undefined;
      },
    };
  },
};
