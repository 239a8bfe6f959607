/**
 * mta-sts-policy - the MTA-STS policy (RFC 8461 §3.2) Postern publishes for its own domains, and
 * its id (§3.1), computed the same way by the HTTP service that serves it (lib-http route,
 * master/master-httpd.ts) and by `postern dns --mta-sts` that prints the TXT record:
 *
 *   version: STSv1
 *   mode: testing                  postern_mta_sts_mode (testing | enforce | none)
 *   mx: mail.example.com           postern_mta_sts_mx (default $myhostname), one line each
 *   max_age: 604800                postern_mta_sts_max_age (seconds, at most 31557600)
 *
 * The id is derived from the policy text (the first 20 hex digits of its SHA-256), so it changes
 * exactly when the policy changes and the TXT record printed by `postern dns --mta-sts` always
 * names the policy being served (§3.1: "id" 1-32 alphanumeric characters, changed whenever the
 * policy changes). The policy is the same for every domain of postern_mta_sts_domains.
 */
import { createHash } from 'node:crypto';

interface Conf { get(name: string): string; list(name: string): string[] }

export interface PublishedMtaSts { text: string; id: string; mode: string }

export class MtaStsConfigError extends Error { override name = 'MtaStsConfigError'; }

export function publishedMtaSts(c: Conf): PublishedMtaSts {
  const mode = c.get('postern_mta_sts_mode').trim().toLowerCase() || 'testing';
  if (!['testing', 'enforce', 'none'].includes(mode)) throw new MtaStsConfigError(`postern_mta_sts_mode = ${mode}: use testing, enforce or none (RFC 8461 §5)`);
  const mx = c.list('postern_mta_sts_mx').map((m) => m.toLowerCase().replace(/\.$/, ''));
  if (mx.length === 0) throw new MtaStsConfigError('postern_mta_sts_mx is empty: name the MX hosts (default $myhostname)');
  for (const m of mx) if (!/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(m)) throw new MtaStsConfigError(`postern_mta_sts_mx: "${m}" is not a host name or *.domain pattern`);
  const maxAge = Number(c.get('postern_mta_sts_max_age'));
  if (!Number.isInteger(maxAge) || maxAge < 0 || maxAge > 31557600) throw new MtaStsConfigError('postern_mta_sts_max_age: seconds from 0 to 31557600 (RFC 8461 §3.2)');
  const text = ['version: STSv1', `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), `max_age: ${maxAge}`, ''].join('\r\n');
  return { text, id: createHash('sha256').update(text).digest('hex').slice(0, 20), mode };
}

/** The domains whose mta-sts.DOMAIN host serves the policy (lowercase, no trailing dot). */
export function mtaStsDomains(c: Conf): string[] {
  return [...new Set(c.list('postern_mta_sts_domains').map((d) => d.toLowerCase().replace(/\.$/, '')).filter(Boolean))];
}
