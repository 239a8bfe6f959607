/**
 * authres-settings - main.cf → the settings of inbound verification (authres-verify.ts), read
 * once per configuration object (each service's -o overrides give their own).
 *
 * PARAMETERS
 *   postern_authres_verify, postern_authres_timeout, postern_authres_header_limit,
 *   postern_authres_temperror_action, postern_dkim_min_key_bits, postern_dmarc_reject,
 *   postern_dmarc_quarantine, postern_public_suffix_list, postern_dns_servers, myhostname
 *
 * DIAGNOSTICS
 *   A bad value is a ConfigError naming the parameter and its main.cf line.
 */
import type { MainConfig } from '../global/mail-conf.ts';
import { ConfigError } from '../global/config-error.ts';
import { dnsResolverFromConfig } from '../util/dns-resolver.ts';
import { authresDns } from './authres-dns.ts';
import { loadPsl, type PublicSuffixList } from './dmarc-psl.ts';
import type { AuthresSettings } from './authres-verify.ts';

const cache = new WeakMap<MainConfig, AuthresSettings | null>();
const psls = new Map<string, PublicSuffixList>();

/** undefined when postern_authres_verify = no. */
export function authresSettings(c: MainConfig): AuthresSettings | undefined {
  const hit = cache.get(c);
  if (hit !== undefined) return hit ?? undefined;
  const s = build(c);
  cache.set(c, s ?? null);
  return s;
}

function build(c: MainConfig): AuthresSettings | undefined {
  if (!c.bool('postern_authres_verify')) return undefined;
  const action = c.get('postern_authres_temperror_action').trim().toLowerCase();
  if (action !== 'accept' && action !== 'defer') {
    throw new ConfigError(c.file, c.lineOf('postern_authres_temperror_action'), `postern_authres_temperror_action = ${action}: expected accept or defer`);
  }
  const file = c.get('postern_public_suffix_list').trim();
  let psl = psls.get(file);
  if (!psl) {
    try { psl = loadPsl(file); } catch (e) { throw new ConfigError(c.file, c.lineOf('postern_public_suffix_list'), (e as Error).message); }
    psls.set(file, psl);
  }
  let dns;
  try { dns = dnsResolverFromConfig(c); } catch (e) { throw new ConfigError(c.file, c.lineOf('postern_dns_servers'), (e as Error).message); }
  return {
    authservId: c.get('myhostname'),
    dns: authresDns(dns),
    psl,
    timeoutMs: c.time('postern_authres_timeout') * 1000,
    minKeyBits: c.int('postern_dkim_min_key_bits'),
    headerLimit: c.size('postern_authres_header_limit'),
    dmarcReject: c.bool('postern_dmarc_reject'),
    dmarcQuarantine: c.bool('postern_dmarc_quarantine'),
    temperrorAction: action,
  };
}

/** Forget a file's list (reload re-reads it). */
export function forgetPsl(): void { psls.clear(); }
