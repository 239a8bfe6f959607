/**
 * resolve-context - everything the resolver reads from main.cf and lookup tables, built once
 * (Postfix resolve_init()/RES_CONTEXT and rewrite_init()), so that resolve() is a pure function
 * of (context, address).
 *
 * The context is built from any `{ get(name) }` parameter source — a MainConfig in production
 * (see resolve-context-open.ts), a plain object in unit tests — and a TableOpener that turns
 * `type:name` lists into tables. Parameter names are Postfix's, spelled as Postfix spells them.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { DomainList, splitList, type KeyTable } from './domain-list.ts';
import { normalizeIp } from '../global/address-syntax.ts';
import type { RewriteParams } from './rewrite.ts';

/** What the context needs of the configuration: MainConfig.get() (fully expanded values). */
export interface ParamSource {
  get(name: string): string;
}

/** mail_addr_find(3) options: how `user+ext@domain` keys are searched. */
export interface AddrFindOptions {
  recipientDelimiter?: string;
  isLocalDomain?: (domain: string) => boolean;
}

/**
 * How tables are opened. openMaps() takes a whole Postfix table list (`hash:/a, inline:{..}`)
 * and returns undefined for an empty list; addrFind() is Postfix's mail_addr_find() over it
 * (user+ext@domain, user@domain, user+ext and user for local domains, @domain).
 */
export interface TableOpener {
  openMaps(spec: string, paramName: string): Promise<KeyTable | undefined>;
  addrFind(maps: KeyTable, address: string, opts: AddrFindOptions): Promise<string | undefined>;
}

/** A table with the Postfix search order for addresses already applied. */
export interface AddressTable {
  readonly paramName: string;
  /** The table list as configured, e.g. "hash:/etc/postfix/virtual". */
  readonly spec: string;
  /** Open the tables now (postern check), instead of on the first find(). */
  open(): Promise<void>;
  find(address: string, opts?: { isLocalDomain?: (domain: string) => boolean }): Promise<string | undefined>;
}

export interface ResolveContext {
  configDir: string;
  rewrite: RewriteParams;
  myhostname: string;
  resolve_dequoted_address: boolean;
  resolve_null_domain: boolean;
  resolve_numeric_domain: boolean;
  allow_min_user: boolean;
  show_user_unknown_table_name: boolean;
  helpful_warnings: boolean;
  empty_address_recipient: string;
  recipient_delimiter: string;
  double_bounce_sender: string;

  local_transport: string;
  virtual_transport: string;
  relay_transport: string;
  default_transport: string;
  relayhost: string;

  /** Domain classes (ADDRESS_CLASS_README). */
  mydestination: DomainList;
  virtual_alias_domains: DomainList;
  virtual_mailbox_domains: DomainList;
  relay_domains: DomainList;
  /** Normalised IP addresses of inet_interfaces ∪ proxy_interfaces, for `user@[1.2.3.4]`. */
  localAddresses: Set<string>;

  transport_maps?: KeyTable;
  transportParentMatch: boolean;
  relocated_maps?: AddressTable;
  sender_dependent_relayhost_maps?: AddressTable;
  sender_dependent_default_transport_maps?: AddressTable;
  empty_address_relayhost_maps_lookup_key: string;
  empty_address_default_transport_maps_lookup_key: string;

  /** Recipient tables per class (smtpd recipient validation). */
  local_recipient_maps?: AddressTable;
  virtual_alias_maps?: AddressTable;
  virtual_mailbox_maps?: AddressTable;
  relay_recipient_maps?: AddressTable;
  canonical_maps?: AddressTable;
  recipient_canonical_maps?: AddressTable;
  /** Reply codes for unknown recipients, per class. */
  unknown_local_recipient_reject_code: number;
  unknown_virtual_alias_reject_code: number;
  unknown_virtual_mailbox_reject_code: number;
  unknown_relay_recipient_reject_code: number;
  relay_domains_reject_code: number;

  /** Things the administrator should know about, found while building (e.g. unresolvable interfaces). */
  warnings: string[];
}

const yes = (v: string): boolean => /^(yes|true|1|on)$/i.test(v.trim());
const int = (v: string, dflt: number): number => (/^\d+$/.test(v.trim()) ? Number(v.trim()) : dflt);

/** Is `param` named in parent_domain_matches_subdomains? */
export function parentStyle(p: ParamSource, param: string): boolean {
  return splitList(p.get('parent_domain_matches_subdomains')).includes(param);
}

/** Names from /etc/hosts, so that `inet_interfaces = mail.example.com` works without DNS. */
function hostsFileAddresses(name: string, hostsFile: string): string[] {
  let text: string;
  try { text = readFileSync(hostsFile, 'utf8'); } catch { return []; }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.replace(/#.*/, '').trim().split(/\s+/);
    if (f.length >= 2 && f.slice(1).some((n) => n.toLowerCase() === name.toLowerCase())) out.push(f[0]!);
  }
  return out;
}

/**
 * own_inet_addr()/proxy_inet_addr(): the addresses of inet_interfaces and proxy_interfaces.
 * `all` is every address of this machine; `loopback-only` is 127.0.0.1 and ::1; a host name is
 * looked up in /etc/hosts only (Postern never asks DNS for this), else reported in `warnings`.
 */
export function interfaceAddresses(inet: string, proxy: string, warnings: string[],
                                   hostsFile = '/etc/hosts'): Set<string> {
  const out = new Set<string>();
  const add = (a: string): void => { const n = normalizeIp(a); if (n) out.add(n); };
  const one = (param: string, item: string): void => {
    const v = item.replace(/^\[(.*)\]$/, '$1');
    if (v.toLowerCase() === 'all') {
      for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) add(i.address);
    } else if (v.toLowerCase() === 'loopback-only') {
      add('127.0.0.1'); add('::1');
    } else if (normalizeIp(v)) {
      add(v);
    } else {
      const found = hostsFileAddresses(v, hostsFile);
      if (found.length === 0 && v.toLowerCase() === 'localhost') found.push('127.0.0.1', '::1');
      if (found.length === 0) {
        warnings.push(`${param}: cannot find the address of "${v}" in ${hostsFile} (DNS is not used): `
          + `mail to [address] literals of that host is not recognised as local; write the IP address instead`);
      }
      for (const a of found) add(a);
    }
  };
  for (const i of splitList(inet)) one('inet_interfaces', i);
  for (const i of splitList(proxy)) one('proxy_interfaces', i);
  return out;
}

/** Build the context. Throws ConfigError / DictError when a list or table cannot be opened. */
export async function buildResolveContext(p: ParamSource, tables: TableOpener,
                                          configDir = '/etc/postern'): Promise<ResolveContext> {
  const warnings: string[] = [];
  const open = async (spec: string, paramName: string): Promise<KeyTable> => {
    const t = await tables.openMaps(spec, paramName);
    return t ?? { find: async () => undefined };
  };
  const delim = p.get('recipient_delimiter');
  // Address tables are opened on first use: a table that only smtpd's recipient check needs
  // (e.g. local_recipient_maps = proxy:unix:passwd.byname) must not stop address resolution.
  const addrTable = (name: string): AddressTable | undefined => {
    const spec = p.get(name);
    if (splitList(spec).length === 0) return undefined;
    let maps: Promise<KeyTable | undefined> | undefined;
    const opened = (): Promise<KeyTable | undefined> => (maps ??= tables.openMaps(spec, name));
    return {
      paramName: name,
      spec,
      open: async () => { await opened(); },
      find: async (address, o) => {
        const m = await opened();
        return m ? tables.addrFind(m, address, { recipientDelimiter: delim, isLocalDomain: o?.isLocalDomain }) : undefined;
      },
    };
  };
  const list = (name: string, style: 'string' | 'hostname') =>
    DomainList.create(name, p.get(name), style, style === 'hostname' && parentStyle(p, name), open);

  return {
    configDir,
    rewrite: {
      myorigin: p.get('myorigin'),
      mydomain: p.get('mydomain'),
      append_at_myorigin: yes(p.get('append_at_myorigin')),
      append_dot_mydomain: yes(p.get('append_dot_mydomain')),
      swap_bangpath: yes(p.get('swap_bangpath')),
      allow_percent_hack: yes(p.get('allow_percent_hack')),
    },
    myhostname: p.get('myhostname'),
    resolve_dequoted_address: yes(p.get('resolve_dequoted_address')),
    resolve_null_domain: yes(p.get('resolve_null_domain')),
    resolve_numeric_domain: yes(p.get('resolve_numeric_domain')),
    allow_min_user: yes(p.get('allow_min_user')),
    show_user_unknown_table_name: yes(p.get('show_user_unknown_table_name')),
    helpful_warnings: yes(p.get('helpful_warnings')),
    empty_address_recipient: p.get('empty_address_recipient') || 'MAILER-DAEMON',
    recipient_delimiter: delim,
    double_bounce_sender: p.get('double_bounce_sender') || 'double-bounce',

    local_transport: p.get('local_transport'),
    virtual_transport: p.get('virtual_transport'),
    relay_transport: p.get('relay_transport'),
    default_transport: p.get('default_transport'),
    relayhost: p.get('relayhost'),

    mydestination: await list('mydestination', 'string'),
    virtual_alias_domains: await list('virtual_alias_domains', 'string'),
    virtual_mailbox_domains: await list('virtual_mailbox_domains', 'string'),
    relay_domains: await list('relay_domains', 'hostname'),
    localAddresses: interfaceAddresses(p.get('inet_interfaces'), p.get('proxy_interfaces'), warnings),

    transport_maps: await tables.openMaps(p.get('transport_maps'), 'transport_maps'),
    transportParentMatch: parentStyle(p, 'transport_maps'),
    relocated_maps: addrTable('relocated_maps'),
    sender_dependent_relayhost_maps: addrTable('sender_dependent_relayhost_maps'),
    sender_dependent_default_transport_maps: addrTable('sender_dependent_default_transport_maps'),
    empty_address_relayhost_maps_lookup_key: p.get('empty_address_relayhost_maps_lookup_key') || '<>',
    empty_address_default_transport_maps_lookup_key: p.get('empty_address_default_transport_maps_lookup_key') || '<>',

    local_recipient_maps: addrTable('local_recipient_maps'),
    virtual_alias_maps: addrTable('virtual_alias_maps'),
    virtual_mailbox_maps: addrTable('virtual_mailbox_maps'),
    relay_recipient_maps: addrTable('relay_recipient_maps'),
    canonical_maps: addrTable('canonical_maps'),
    recipient_canonical_maps: addrTable('recipient_canonical_maps'),
    unknown_local_recipient_reject_code: int(p.get('unknown_local_recipient_reject_code'), 550),
    unknown_virtual_alias_reject_code: int(p.get('unknown_virtual_alias_reject_code'), 550),
    unknown_virtual_mailbox_reject_code: int(p.get('unknown_virtual_mailbox_reject_code'), 550),
    unknown_relay_recipient_reject_code: int(p.get('unknown_relay_recipient_reject_code'), 550),
    relay_domains_reject_code: int(p.get('relay_domains_reject_code'), 554),
    warnings,
  };
}
