/**
 * resolve-client - the contract between trivial-rewrite(8) and the programs that ask it to
 * rewrite an address to canonical form or resolve it to (transport, nexthop, recipient): smtpd's
 * restrictions, cleanup's address mapping, qmgr (Postfix global/rewrite_clnt.c,
 * global/resolve_clnt.c and resolve_local.c).
 *
 * SUMMARY
 *   const tr = await openResolve(config);          // ResolveOpener, passed in by master/ or cli/
 *   tr.rewrite('joe')                      → 'joe@example.net'
 *   await tr.resolve('joe@example.net')    → { class, transport, nexthop, recipient, flags }
 *   await tr.checkRecipient(reply)         → { ok } | { ok: false, code, dsn, text, paramName }
 *   await tr.isLocalDomain('example.net')  → resolve_local()
 *   tr.isLocalAddress('192.0.2.1')         → one of inet_interfaces / proxy_interfaces?
 *
 * DESCRIPTION
 *   The implementation is trivial-rewrite/trivial-rewrite.ts (TrivialRewrite), built once per
 *   configuration and called in-process: a resolve is a method call (cached replies are copied,
 *   so a caller may change the reply it gets).
 */
import type { MainConfig } from './mail-conf.ts';

/** Postfix RESOLVE_CLASS_LOCAL / _ALIAS / _VIRTUAL / _RELAY / _DEFAULT. */
export type AddressClass = 'local' | 'alias' | 'virtual' | 'relay' | 'default';

export interface ResolveFlags {
  /** RESOLVE_FLAG_ROUTED: routing operators left in the local-part. */
  routed: boolean;
  /** RESOLVE_FLAG_ERROR: bad address syntax (bounce, 5.1.3). */
  error: boolean;
  /** RESOLVE_FLAG_FAIL: a table lookup failed or the configuration is broken (defer, 4.3.0). */
  fail: boolean;
}

export interface ResolveReply {
  class: AddressClass;
  /** master.cf service name, e.g. "local", "virtual", "smtp", "error". */
  transport: string;
  /** Transport-specific: a domain, `[host]:port`, `unix:/path`, or the error text. */
  nexthop: string;
  /** The final recipient in internal form (user@domain). */
  recipient: string;
  flags: ResolveFlags;
  /** relocated_maps: where the user has moved (the reply then bounces with 5.1.6). */
  relocated?: string;
  /** Postfix's helpful warnings ("do not list domain X in BOTH ..."), for the caller to log. */
  warnings: string[];
}

/** smtpd's check_rcpt_maps() answer for a resolved recipient. */
export type RecipientVerdict =
  | { ok: true }
  /** code/dsn/text: e.g. 550, "5.1.1", "User unknown in virtual mailbox table". */
  | { ok: false; code: number; dsn: string; text: string; paramName: string };

export interface ResolveClient {
  /** The "canonical" rewrite: user → user@$myorigin, user@host → user@host.$mydomain. */
  rewrite(address: string): string;
  /** Resolve one recipient (for a sender: sender-dependent relayhost and transport). */
  resolve(address: string, sender?: string): Promise<ResolveReply>;
  /** Is this resolved recipient a known user of its address class? Table errors throw. */
  checkRecipient(reply: ResolveReply): Promise<RecipientVerdict>;
  /** resolve_local(): is this domain (or [address literal]) the local machine? */
  isLocalDomain(domain: string): Promise<boolean>;
  /** Is this IP address one of the machine's own (inet_interfaces, proxy_interfaces)? */
  isLocalAddress(addr: string): boolean;
}

/** How a daemon gets its resolve client: one per configuration (reload opens a new one). */
export type ResolveOpener = (config: MainConfig) => Promise<ResolveClient>;
