/**
 * cleanup-tables - everything cleanup(8) reads from main.cf, opened once per configuration
 * (Postfix cleanup_init.c): the address mapping tables and their classes, the virtual alias
 * limits, masquerading, the BCC settings, the content inspection tables and limits, and
 * receive_override_options. Shared by all sessions of one configuration (cached per MainConfig),
 * so a reload (a new MainConfig) opens new tables.
 *
 * A table that cannot be opened does not stop cleanup: Maps keeps a surrogate that throws on
 * lookup, so mail that reaches it is deferred ("map lookup problem"), as Postfix does.
 *
 * PARAMETERS
 *   canonical_maps, sender_canonical_maps, recipient_canonical_maps, canonical_classes,
 *   sender_canonical_classes, recipient_canonical_classes, virtual_alias_maps,
 *   virtual_alias_expansion_limit, virtual_alias_recursion_limit, virtual_alias_address_length_limit,
 *   propagate_unmatched_extensions, recipient_delimiter, masquerade_domains,
 *   masquerade_exceptions, masquerade_classes, always_bcc, sender_bcc_maps, recipient_bcc_maps,
 *   header_checks, mime_header_checks, nested_header_checks, body_checks, body_checks_size_limit,
 *   header_size_limit, receive_override_options
 */
import type { MainConfig } from '../global/mail-conf.ts';
import { Maps } from '../global/maps.ts';
import { mailAddrFind } from '../global/mail-addr-find.ts';
import type { ResolveClient, ResolveOpener } from '../global/resolve-client.ts';
import { logger } from '../util/msg.ts';

const log = logger('cleanup');

/** Which address kinds a *_classes parameter covers (Postfix CLEANUP_CANON_FLAG_*). */
export interface AddressClasses {
  envelopeSender: boolean;
  envelopeRecipient: boolean;
  headerSender: boolean;
  headerRecipient: boolean;
}

/** receive_override_options (Postfix CLEANUP_FLAG_* it turns off). */
export interface ReceiveOverrides {
  noAddressMappings: boolean;
  noHeaderBodyChecks: boolean;
  noUnknownRecipientChecks: boolean;
  noMilters: boolean;
}

export interface CleanupTables {
  canonicalMaps?: Maps;
  senderCanonicalMaps?: Maps;
  recipientCanonicalMaps?: Maps;
  canonicalClasses: AddressClasses;
  senderCanonicalClasses: AddressClasses;
  recipientCanonicalClasses: AddressClasses;
  virtualAliasMaps?: Maps;
  virtualAliasExpansionLimit: number;
  virtualAliasRecursionLimit: number;
  virtualAliasAddressLengthLimit: number;
  /** propagate_unmatched_extensions */
  propagateCanonical: boolean;
  propagateVirtual: boolean;
  recipientDelimiter: string;
  masqueradeDomains: string[];
  masqueradeExceptions: Set<string>;
  masqueradeClasses: AddressClasses;
  alwaysBcc: string;
  senderBccMaps?: Maps;
  recipientBccMaps?: Maps;
  headerChecks?: Maps;
  mimeHeaderChecks?: Maps;
  nestedHeaderChecks?: Maps;
  bodyChecks?: Maps;
  bodyChecksSizeLimit: number;
  overrides: ReceiveOverrides;
  /** trivial-rewrite: the "canonical" rewrite of table results and resolve_local(). */
  rewrite: ResolveClient;
  /** Postfix mail_addr_find(): the search order with local-domain user lookups. */
  find(maps: Maps, address: string): Promise<{ value: string; key: string } | undefined>;
}

const cache = new WeakMap<MainConfig, Promise<CleanupTables>>();

/**
 * The tables the envelope addresses of one message are mapped with, or undefined: none
 * configured, receive_override_options = no_address_mappings, or a submitter that asks for
 * none (`mapAddresses: false`). cleanup.ts and `postern explain` decide it here.
 */
export function addressMappingTables(t: CleanupTables | undefined, mapAddresses?: boolean): CleanupTables | undefined {
  return t && !t.overrides.noAddressMappings && mapAddresses !== false ? t : undefined;
}

/** The tables for this configuration, opened on first use and shared; `openRewrite` is trivial-rewrite. */
export function cleanupTables(config: MainConfig, openRewrite: ResolveOpener): Promise<CleanupTables> {
  let p = cache.get(config);
  if (!p) {
    p = openCleanupTables(config, openRewrite);
    cache.set(config, p);
    p.catch(() => cache.delete(config));
  }
  return p;
}

/** Parse a *_classes value; unknown names are logged as Postfix does ("unknown ... class"). */
export function parseClasses(param: string, items: string[]): AddressClasses {
  const c: AddressClasses = { envelopeSender: false, envelopeRecipient: false, headerSender: false, headerRecipient: false };
  for (const raw of items) {
    switch (raw.toLowerCase()) {
      case 'envelope_sender': c.envelopeSender = true; break;
      case 'envelope_recipient': c.envelopeRecipient = true; break;
      case 'header_sender': c.headerSender = true; break;
      case 'header_recipient': c.headerRecipient = true; break;
      default: log.warn(`unknown ${param} value "${raw}" -- ignored`);
    }
  }
  return c;
}

export function parseOverrides(items: string[]): ReceiveOverrides {
  const o: ReceiveOverrides = { noAddressMappings: false, noHeaderBodyChecks: false, noUnknownRecipientChecks: false, noMilters: false };
  for (const raw of items) {
    switch (raw.toLowerCase()) {
      case 'no_address_mappings': o.noAddressMappings = true; break;
      case 'no_header_body_checks': o.noHeaderBodyChecks = true; break;
      case 'no_unknown_recipient_checks': o.noUnknownRecipientChecks = true; break;
      case 'no_milters': o.noMilters = true; break;
      case 'no_address_mapping': o.noAddressMappings = true; break;
      default: log.warn(`unknown receive_override_options value "${raw}" -- ignored`);
    }
  }
  return o;
}

async function openCleanupTables(config: MainConfig, openRewrite: ResolveOpener): Promise<CleanupTables> {
  const open = async (param: string): Promise<Maps | undefined> => {
    const spec = config.get(param).trim();
    if (!spec) return undefined;
    return Maps.open(spec, { paramName: param, ...config.dictFlags });
  };
  const [canonicalMaps, senderCanonicalMaps, recipientCanonicalMaps, virtualAliasMaps, senderBccMaps, recipientBccMaps,
    headerChecks, mimeHeaderChecks, nestedHeaderChecks, bodyChecks, rewrite] = await Promise.all([
    open('canonical_maps'), open('sender_canonical_maps'), open('recipient_canonical_maps'), open('virtual_alias_maps'),
    open('sender_bcc_maps'), open('recipient_bcc_maps'),
    open('header_checks'), open('mime_header_checks'), open('nested_header_checks'), open('body_checks'),
    openRewrite(config),
  ]);
  const prop = config.list('propagate_unmatched_extensions').map((s) => s.toLowerCase());
  // A bad number must not stop mail: Postfix would refuse to start; we warn (file:line) and use the default.
  const int = (n: string, d: number, get = (x: string) => config.int(x)) => {
    try {
      const v = get(n);
      return Number.isFinite(v) && v > 0 ? v : d;
    } catch (e) {
      log.warn(`${(e as Error).message}; using the default ${d}`);
      return d;
    }
  };
  const recipientDelimiter = config.get('recipient_delimiter');
  return {
    canonicalMaps, senderCanonicalMaps, recipientCanonicalMaps,
    canonicalClasses: parseClasses('canonical_classes', config.list('canonical_classes')),
    senderCanonicalClasses: parseClasses('sender_canonical_classes', config.list('sender_canonical_classes')),
    recipientCanonicalClasses: parseClasses('recipient_canonical_classes', config.list('recipient_canonical_classes')),
    virtualAliasMaps,
    virtualAliasExpansionLimit: int('virtual_alias_expansion_limit', 1000),
    virtualAliasRecursionLimit: int('virtual_alias_recursion_limit', 1000),
    virtualAliasAddressLengthLimit: int('virtual_alias_address_length_limit', 1000),
    propagateCanonical: prop.includes('canonical'),
    propagateVirtual: prop.includes('virtual'),
    recipientDelimiter,
    masqueradeDomains: config.list('masquerade_domains'),
    masqueradeExceptions: new Set(config.list('masquerade_exceptions').map((s) => s.toLowerCase())),
    masqueradeClasses: parseClasses('masquerade_classes', config.list('masquerade_classes')),
    alwaysBcc: config.get('always_bcc').trim(),
    senderBccMaps, recipientBccMaps,
    headerChecks, mimeHeaderChecks, nestedHeaderChecks, bodyChecks,
    bodyChecksSizeLimit: int('body_checks_size_limit', 51200, (x) => config.size(x)),
    overrides: parseOverrides(config.list('receive_override_options')),
    rewrite,
    async find(maps: Maps, address: string) {
      const at = address.lastIndexOf('@');
      const local = at >= 0 ? await rewrite.isLocalDomain(address.slice(at + 1).toLowerCase()) : true;
      return mailAddrFind(maps, address, { recipientDelimiter, isLocalDomain: () => local });
    },
  };
}
