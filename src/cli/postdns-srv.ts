/**
 * postdns-srv - the client set-up records `postern dns DOMAIN` prints after the mail records:
 * the SRV records of RFC 6186 (§3.1 submission, §3.2 imap/pop3) and RFC 8314 §5.1 (submissions,
 * imaps, pop3s: implicit TLS), with the ports and TLS modes of the running configuration
 * (global/client-settings.ts), and, when postern_autoconfig = yes, _autodiscover._tcp (Outlook)
 * and the autoconfig./autodiscover. host names (Thunderbird, Outlook; docs/autoconfig.md).
 *
 * Priorities are compared across the service names (RFC 6186 §3.4): implicit TLS before STARTTLS
 * (RFC 8314 §5.1), IMAP before POP3. A service that is not offered gets the RFC 6186 §4 "not
 * available" record (target ".") so clients do not guess.
 */
import type { ClientEndpoint, ClientSettings } from '../global/client-settings.ts';

const TTL = 3600;

const SERVICES: { name: string; protocol: ClientEndpoint['protocol']; tls: ClientEndpoint['tls']; priority: number }[] = [
  { name: '_submissions._tcp', protocol: 'smtp', tls: 'implicit', priority: 0 },
  { name: '_submission._tcp', protocol: 'smtp', tls: 'starttls', priority: 5 },
  { name: '_imaps._tcp', protocol: 'imap', tls: 'implicit', priority: 0 },
  { name: '_imap._tcp', protocol: 'imap', tls: 'starttls', priority: 5 },
  { name: '_pop3s._tcp', protocol: 'pop3', tls: 'implicit', priority: 10 },
  { name: '_pop3._tcp', protocol: 'pop3', tls: 'starttls', priority: 15 },
];

function srvLine(name: string, priority: number, weight: number, port: number, target: string): string {
  return `${name.padEnd(32)} ${TTL} IN SRV  ${priority} ${weight} ${port} ${target}`;
}

/** The zone lines (with their comments) for DOMAIN; httpsPort when autoconfiguration is served. */
export function clientSrvText(domain: string, s: ClientSettings, httpsPort?: number): string {
  const out = [`; mail client set-up (RFC 6186, RFC 8314 §5.1): where clients find IMAP, POP3 and submission`];
  const all = [...s.incoming, ...s.outgoing];
  for (const svc of SERVICES) {
    const e = all.find((x) => x.protocol === svc.protocol && x.tls === svc.tls);
    out.push(e ? srvLine(`${svc.name}.${domain}.`, svc.priority, 1, e.port, `${e.host}.`)
      : srvLine(`${svc.name}.${domain}.`, 0, 0, 0, '.') + '   ; not offered (RFC 6186 §4)');
  }
  if (httpsPort !== undefined) {
    out.push('; autoconfiguration (postern_autoconfig = yes): Outlook\'s Autodiscover, Thunderbird\'s autoconfig host');
    out.push(srvLine(`_autodiscover._tcp.${domain}.`, 0, 1, httpsPort, `${s.host}.`));
    out.push(`${`autoconfig.${domain}.`.padEnd(32)} ${TTL} IN CNAME ${s.host}.`);
    out.push(`${`autodiscover.${domain}.`.padEnd(32)} ${TTL} IN CNAME ${s.host}.`);
    out.push(`; the certificate must name autoconfig.${domain} and autodiscover.${domain} too (postern_acme_names)`);
  }
  return out.join('\n') + '\n';
}
