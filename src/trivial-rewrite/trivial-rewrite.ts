/**
 * trivial-rewrite - the address rewriting and resolving service (Postfix trivial-rewrite(8)),
 * as one object that cleanup, smtpd, qmgr and the delivery agents call in-process: the
 * ResolveClient of global/resolve-client.ts (the contract they know; master/ and cli/ pass
 * TrivialRewrite.open in as their ResolveOpener).
 *
 * SUMMARY
 *   const tr = await TrivialRewrite.open(mainConfig);
 *   tr.rewrite('joe')                       → 'joe@example.net'           (rewrite.ts)
 *   await tr.resolve('joe@example.net')     → { class, transport, nexthop, recipient, flags }
 *   await tr.checkRecipient(reply)          → { ok } | { ok: false, code, dsn, text }
 *
 * DESCRIPTION
 *   Built once from main.cf (resolve-context.ts); reload builds a new one. Resolve replies are
 *   cached per (sender, address) for a short time, as smtpd's ctable cache of resolve replies,
 *   so that one message with many recipients in one domain does not repeat table lookups. Replies
 *   with flags.fail are never cached (a retry must ask the tables again).
 *
 * SECURITY
 *   No privileges, no network. Addresses are hostile input: resolve() bounds their length and
 *   refuses NUL/CR/LF (see resolve.ts).
 *
 * PARAMETERS
 *   myorigin, mydomain, myhostname, append_at_myorigin, append_dot_mydomain, swap_bangpath,
 *   allow_percent_hack, resolve_dequoted_address, resolve_null_domain, resolve_numeric_domain,
 *   allow_min_user, empty_address_recipient, recipient_delimiter, mydestination,
 *   inet_interfaces, proxy_interfaces, virtual_alias_domains, virtual_mailbox_domains,
 *   relay_domains, parent_domain_matches_subdomains, local_transport, virtual_transport,
 *   relay_transport, default_transport, relayhost, transport_maps, relocated_maps,
 *   sender_dependent_relayhost_maps, sender_dependent_default_transport_maps,
 *   empty_address_relayhost_maps_lookup_key, empty_address_default_transport_maps_lookup_key,
 *   show_user_unknown_table_name, helpful_warnings, local_recipient_maps, virtual_alias_maps,
 *   virtual_mailbox_maps, relay_recipient_maps, canonical_maps, recipient_canonical_maps,
 *   unknown_local_recipient_reject_code, unknown_virtual_alias_reject_code,
 *   unknown_virtual_mailbox_reject_code, unknown_relay_recipient_reject_code,
 *   relay_domains_reject_code, double_bounce_sender.
 */
import type { MainConfig } from '../global/mail-conf.ts';
import { logger } from '../util/msg.ts';
import { checkRecipient, recipientTableFor, type RecipientTable } from './address-class.ts';
import { resolve, resolveLocal } from './resolve.ts';
import type { AddressClass, RecipientVerdict, ResolveClient, ResolveReply } from '../global/resolve-client.ts';
import type { ResolveContext } from './resolve-context.ts';
import { openResolveContext } from './resolve-context-open.ts';
import { rewriteAddress } from './rewrite.ts';

/** How long a cached reply stays valid, and how many are kept. */
const CACHE_TTL_MS = 30_000;
const CACHE_MAX = 1000;

export class TrivialRewrite implements ResolveClient {
  readonly ctx: ResolveContext;
  private readonly cache = new Map<string, { at: number; reply: ResolveReply }>();
  private readonly now: () => number;

  constructor(ctx: ResolveContext, now: () => number = Date.now) {
    this.ctx = ctx;
    this.now = now;
  }

  static async open(config: MainConfig): Promise<TrivialRewrite> {
    const log = logger('trivial-rewrite');
    const ctx = await openResolveContext(config, (m) => log.warn(m));
    for (const w of ctx.warnings) log.warn(w);
    return new TrivialRewrite(ctx);
  }

  /** The "canonical" rewrite: user → user@$myorigin, user@host → user@host.$mydomain. */
  rewrite(address: string): string {
    return rewriteAddress(this.ctx.rewrite, address);
  }

  /** Resolve one recipient (cached); Postfix's helpful warnings are logged once per lookup. */
  async resolve(address: string, sender = ''): Promise<ResolveReply> {
    const key = `${sender}\n${address}`;
    const hit = this.cache.get(key);
    const t = this.now();
    if (hit && t - hit.at < CACHE_TTL_MS) return copyReply(hit.reply);
    const reply = await resolve(this.ctx, address, sender);
    for (const w of reply.warnings) logger('trivial-rewrite').warn(w);
    if (!reply.flags.fail) {
      if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, { at: t, reply: copyReply(reply) });
    }
    return reply;
  }

  /** smtpd's recipient-table check for a resolved recipient (address-class.ts). */
  checkRecipient(reply: ResolveReply): Promise<RecipientVerdict> {
    return checkRecipient(this.ctx, reply);
  }

  /** resolve_local() (resolve.ts). */
  isLocalDomain(domain: string): Promise<boolean> {
    return resolveLocal(this.ctx, domain);
  }

  /** inet_interfaces / proxy_interfaces (permit_inet_interfaces). */
  isLocalAddress(addr: string): boolean {
    return this.ctx.localAddresses.has(addr);
  }

  recipientTableFor(cls: AddressClass): RecipientTable {
    return recipientTableFor(this.ctx, cls);
  }
}

/**
 * A private copy of a reply, so that a caller changing its reply cannot change the cache
 * (the reply is flat apart from flags and warnings; structuredClone cost ~2% of smtpd's CPU).
 */
function copyReply(r: ResolveReply): ResolveReply {
  return { ...r, flags: { ...r.flags }, warnings: [...r.warnings] };
}
