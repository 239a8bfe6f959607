/**
 * trivial-rewrite-params - a tiny main.cf reader for the trivial-rewrite tests: `name = value`
 * lines, continuation lines, `#` comments, and `$name` expansion (src/util/mac-expand.ts, as
 * main.cf's) over BASE_PARAMS, which hold Postfix 3.7's `postconf -d` values at
 * compatibility_level = 3.6 (append_dot_mydomain = no, relay_domains = empty) with a fixed host
 * identity and loopback-only interfaces, so results do not depend on the machine. The production
 * path uses MainConfig (src/global/mail-conf.ts).
 */
import type { ParamSource } from '../../src/trivial-rewrite/resolve-context.ts';
import { macExpand } from '../../src/util/mac-expand.ts';

export const BASE_PARAMS: Record<string, string> = {
  myhostname: 'mx.example.net',
  mydomain: 'example.net',
  myorigin: '$myhostname',
  mydestination: '$myhostname, localhost.$mydomain, localhost',
  inet_interfaces: '127.0.0.1',
  proxy_interfaces: '',
  append_at_myorigin: 'yes',
  append_dot_mydomain: 'no',
  swap_bangpath: 'yes',
  allow_percent_hack: 'yes',
  resolve_dequoted_address: 'yes',
  resolve_null_domain: 'no',
  resolve_numeric_domain: 'no',
  allow_min_user: 'no',
  show_user_unknown_table_name: 'yes',
  helpful_warnings: 'yes',
  empty_address_recipient: 'MAILER-DAEMON',
  recipient_delimiter: '',
  double_bounce_sender: 'double-bounce',
  local_transport: 'local:$myhostname',
  virtual_transport: 'virtual',
  relay_transport: 'relay',
  default_transport: 'smtp',
  relayhost: '',
  virtual_maps: '',
  virtual_alias_maps: '$virtual_maps',
  virtual_alias_domains: '$virtual_alias_maps',
  virtual_mailbox_maps: '',
  virtual_mailbox_domains: '$virtual_mailbox_maps',
  relay_domains: '',
  relay_recipient_maps: '',
  transport_maps: '',
  relocated_maps: '',
  parent_domain_matches_subdomains: 'debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps',
  local_recipient_maps: '',
  canonical_maps: '',
  recipient_canonical_maps: '',
  sender_dependent_relayhost_maps: '',
  sender_dependent_default_transport_maps: '',
  empty_address_relayhost_maps_lookup_key: '<>',
  empty_address_default_transport_maps_lookup_key: '<>',
  unknown_local_recipient_reject_code: '550',
  unknown_virtual_alias_reject_code: '550',
  unknown_virtual_mailbox_reject_code: '550',
  unknown_relay_recipient_reject_code: '550',
  relay_domains_reject_code: '554',
};

/** Parse main.cf-style text (no error handling beyond what the tests need). */
export function parseParams(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue;
    if (/^\s/.test(line) && last) { out[last] += ' ' + line.trim(); continue; }
    const m = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new Error(`bad test main.cf line: ${line}`);
    last = m[1]!;
    out[last] = m[2]!.trim();
  }
  return out;
}

/** A ParamSource over BASE_PARAMS + overrides, with $name expansion. */
export function paramSource(overrides: Record<string, string> = {}): ParamSource {
  const raw: Record<string, string> = { ...BASE_PARAMS, ...overrides };
  return { get: (name: string) => macExpand(raw[name] ?? '', (n) => raw[n]) };
}
