/**
 * client-settings - what a mail client (Thunderbird, Outlook, Apple Mail, iOS) must be told to
 * reach this server: the host name it connects to and, per protocol, the ports and whether TLS
 * starts at once (RFC 8314 §3 "implicit TLS", preferred) or by STARTTLS (RFC 3207, RFC 2595).
 * Read from the running configuration, never typed twice:
 *
 *   - submission (outgoing): master.cf inet smtpd entries on 587 or 465 or with
 *     -o smtpd_sasl_auth_enable=yes (never port 25, RFC 6409 §1); an entry with
 *     -o smtpd_tls_wrappermode=yes is implicit TLS (submissions, 465, RFC 8314 §3.3), the
 *     others STARTTLS (submission, 587, RFC 6409);
 *   - imap / pop3 (incoming): dovecot.conf's imap-login and pop3-login inet_listeners (Dovecot's
 *     defaults 143/993 and 110/995) when the protocol is in `protocols`; `ssl = yes` on a
 *     listener is implicit TLS, port 0 is off;
 *   - the host: postern_autoconfig_hostname (default $myhostname).
 *
 * Used by lib-http/autoconfig-*.ts (Mozilla autoconfig, Autodiscover, .mobileconfig) and by
 * `postern dns` (the RFC 6186 / RFC 8314 SRV records).
 */
import type { MainConfig } from './mail-conf.ts';
import type { MasterEntry } from './master-cf.ts';
import { inetEndpoint } from './master-cf.ts';
import type { DovecotConfig } from './dovecot-conf.ts';

export interface ClientEndpoint {
  protocol: 'imap' | 'pop3' | 'smtp';
  host: string;
  port: number;
  /** Implicit TLS ('SSL' in Mozilla's and Microsoft's vocabulary) or STARTTLS. */
  tls: 'implicit' | 'starttls';
}

export interface ClientSettings {
  host: string;
  /** Implicit TLS first (RFC 8314 §3: preferred), then STARTTLS; IMAP before POP3. */
  incoming: ClientEndpoint[];
  outgoing: ClientEndpoint[];
}

const ORDER = (a: ClientEndpoint, b: ClientEndpoint) =>
  (a.protocol === b.protocol ? 0 : a.protocol === 'imap' ? -1 : 1) || (a.tls === b.tls ? 0 : a.tls === 'implicit' ? -1 : 1) || a.port - b.port;

export function clientSettings(main: MainConfig, masterCf: readonly MasterEntry[], dovecot: DovecotConfig): ClientSettings {
  const host = main.get('postern_autoconfig_hostname').toLowerCase();
  const outgoing: ClientEndpoint[] = [];
  for (const e of masterCf) {
    if (e.type !== 'inet' || e.command !== 'smtpd') continue;
    let port: number;
    try { port = inetEndpoint(e).port; } catch { continue; }
    const yes = (n: string) => /^(yes|true|1)$/i.test(e.overrides[n] ?? '');
    const wrapper = yes('smtpd_tls_wrappermode');
    // Port 25 is for other servers (RFC 6409 §1); a submission entry authenticates its users.
    if (port === 25 || port === 0 || !(port === 587 || port === 465 || wrapper || yes('smtpd_sasl_auth_enable'))) continue;
    outgoing.push({ protocol: 'smtp', host, port, tls: wrapper ? 'implicit' : 'starttls' });
  }
  const incoming: ClientEndpoint[] = [];
  for (const proto of ['imap', 'pop3'] as const) {
    if (!dovecot.protocols.includes(proto)) continue;
    const svc = dovecot.services.find((s) => s.name === `${proto}-login`);
    for (const l of svc?.inetListeners ?? []) {
      if (l.port <= 0) continue;
      incoming.push({ protocol: proto, host, port: l.port, tls: l.ssl ? 'implicit' : 'starttls' });
    }
  }
  const dedupe = (l: ClientEndpoint[]) => l.filter((x, i) => l.findIndex((y) => y.protocol === x.protocol && y.port === x.port) === i).sort(ORDER);
  return { host, incoming: dedupe(incoming), outgoing: dedupe(outgoing) };
}

/** The domains whose users autoconfiguration answers for (postern_autoconfig_domains), lowercase. */
export function autoconfigDomains(main: MainConfig): string[] {
  return main.list('postern_autoconfig_domains').map((d) => d.toLowerCase().replace(/\.$/, '')).filter((d) => d !== '');
}
