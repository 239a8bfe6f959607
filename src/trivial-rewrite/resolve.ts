/**
 * resolve - CONTRACT 3 of DESIGN.md: `resolve(address) → { class, transport, nexthop, recipient }`
 * (Postfix src/trivial-rewrite/resolve.c, resolve_addr(); ADDRESS_CLASS_README; transport(5);
 * relocated(5)).
 *
 * The input is one recipient in internal (unquoted) form, as cleanup and smtpd hold it. In order:
 *
 *  1. Strip every local domain. While the address ends in a domain of this machine
 *     (mydestination, or an [address literal] of inet_interfaces/proxy_interfaces), that domain
 *     is removed and what is left is looked at again: `user%remote@ours` becomes `user@remote`
 *     (allow_percent_hack), `remote!user@ours` becomes `user@remote` (swap_bangpath), and with
 *     resolve_dequoted_address a quoted local-part is cracked open too, so `"user@remote"@ours`
 *     can not relay through us. A trailing dot is dropped (`user@ours.` is local), an empty
 *     local-part becomes empty_address_recipient (MAILER-DAEMON), an address without domain gets
 *     @$myhostname, and `user@` is a syntax error unless resolve_null_domain = yes.
 *  2. Check the syntax of the final domain: a host name, or `[1.2.3.4]`/`[IPv6:...]`. A bad one
 *     gives flags.error; the reply then routes to the error transport with "5.1.3 bad address
 *     syntax", as Postfix's qmgr does with such a reply.
 *  3. Choose the address class, in Postfix's order:
 *       local   (the domain was local)           local_transport    nexthop = domain
 *       alias   (virtual_alias_domains)          error              "5.1.1 User unknown in virtual alias table"
 *       virtual (virtual_mailbox_domains)        virtual_transport  nexthop = domain
 *       relay   (relay_domains)                  relay_transport    nexthop = relayhost or domain
 *       default (anything else)                  default_transport  nexthop = relayhost or domain
 *     sender_dependent_default_transport_maps and sender_dependent_relayhost_maps (looked up by
 *     the sender, `<>` for the null sender) override default_transport and relayhost. A
 *     `transport:nexthop` value in a *_transport parameter sets the nexthop
 *     (local_transport = local:$myhostname). A domain in two lists gives Postfix's warning
 *     "do not list domain X in BOTH A and B" (helpful_warnings).
 *  4. transport_maps may override transport and/or nexthop (not for the alias class).
 *  5. relocated_maps: a recipient that has moved goes to the error transport with
 *     "5.1.6 User has moved to NEW" (relocated(5)).
 *  6. A recipient starting with '-' is an error unless allow_min_user = yes (it could be taken
 *     for a command option by a pipe(8) command).
 * Any table lookup error gives flags.fail (defer: transport `retry`, "4.3.0 address resolver
 * failure"), never a bounce.
 *
 * flags.routed is set when the local-part still holds '@', '!' or '%' after resolving: smtpd's
 * reject_unauth_destination refuses such addresses for relay domains (no relaying through a
 * backup MX).
 */
import { DictError } from '../util/dict.ts';
import { ConfigError } from '../global/config-error.ts';
import { needsQuote, normalizeIp, validHostaddr, validHostname, validMailhostAddr, validMailhostLiteral } from '../global/address-syntax.ts';
import { formatAddr, parseAddr, rewriteTree, stripSourceRoute, type Addr } from './rewrite.ts';
import { transportLookup } from './transport.ts';
import type { ResolveContext } from './resolve-context.ts';
import type { AddressClass, ResolveFlags, ResolveReply } from '../global/resolve-client.ts';

/**
 * An address longer than this is refused as bad syntax. RFC 5321 §4.5.3.1.3 allows 256 octets
 * in a path; this is generous for VERP/SRS and keeps the strip-and-retry loop cheap on hostile
 * input.
 */
export const MAX_ADDRESS_LENGTH = 4096;

const BAD_SYNTAX = '5.1.3 bad address syntax';
const RESOLVER_FAILURE = '4.3.0 address resolver failure';

function reply(cls: AddressClass, transport: string, nexthop: string, recipient: string,
               flags: Partial<ResolveFlags> = {}, warnings: string[] = []): ResolveReply {
  return { class: cls, transport, nexthop, recipient,
           flags: { routed: false, error: false, fail: false, ...flags }, warnings };
}

/**
 * resolve_local(): is this domain the local machine? One trailing dot is ignored; an
 * [address literal] is local when it is one of our interface addresses.
 */
export async function resolveLocal(ctx: ResolveContext, domain: string): Promise<boolean> {
  let d = domain;
  if (d.endsWith('.')) d = d.slice(0, -1);
  if (d === '' || d.endsWith('.')) return false;
  if (await ctx.mydestination.match(d)) return true;
  if (d.startsWith('[') && d.endsWith(']')) {
    const bare = validMailhostAddr(d.slice(1, -1));
    const norm = bare && normalizeIp(bare);
    if (norm && ctx.localAddresses.has(norm)) return true;
  }
  return false;
}

/** The address-class domain test alone (no rewriting): which class does this domain fall in? */
export async function domainClass(ctx: ResolveContext, domain: string): Promise<AddressClass> {
  if (await resolveLocal(ctx, domain)) return 'local';
  if (await ctx.virtual_alias_domains.match(domain)) return 'alias';
  if (await ctx.virtual_mailbox_domains.match(domain)) return 'virtual';
  if (await ctx.relay_domains.match(domain)) return 'relay';
  return 'default';
}

/** Step 1: strip local domains and crack open routing; returns the recipient, or an error reply. */
async function stripLocal(ctx: ResolveContext, address: string): Promise<{ recipient: string; remote: boolean } | 'loop'> {
  let a: Addr = parseAddr(stripSourceRoute(address));
  let saved: string | undefined;
  const loopMax = address.length + 100;
  for (let loop = 0; ; loop++) {
    if (loop > loopMax) return 'loop';

    // Strip a trailing dot at the end of the domain, but not dot-dot or @-dot.
    if (a.at && a.domain.length >= 2 && a.domain.endsWith('.') && !a.domain.endsWith('..')) {
      a = { ...a, domain: a.domain.slice(0, -1) };
    }
    // Strip a trailing @ (resolve_null_domain).
    if (ctx.resolve_null_domain && a.at && a.domain === '') a = { ...a, at: false };

    // Strip (and save) @domain if local; stop at the first remote domain.
    if (a.at) {
      if (a.domain !== '' && !(await resolveLocal(ctx, a.domain))) {
        return { recipient: formatAddr(a), remote: true };
      }
      saved = a.domain;
      a = { local: a.local, at: false, domain: '' };
    }

    // After stripping the local domain: user%host → user@host, host!user → user@host, retry.
    const quoted = needsQuote(a.local) && a.local !== '';
    if (!quoted && ((ctx.rewrite.swap_bangpath && a.local.includes('!'))
        || (ctx.rewrite.allow_percent_hack && a.local.includes('%')))) {
      a = rewriteTree(ctx.rewrite, a);
      continue;
    }

    // Crack open a quoted local-part and look for routing operators (technically incorrect,
    // but needed to stop "user@remote"@ours relaying through a Sendmail MX).
    if (quoted && ctx.resolve_dequoted_address) {
      const l = a.local;
      let oper = l.lastIndexOf('@');
      let kind = '@';
      if (oper < 0 && ctx.rewrite.allow_percent_hack && (oper = l.lastIndexOf('%')) >= 0) kind = '%';
      if (oper < 0 && ctx.rewrite.swap_bangpath && (oper = l.lastIndexOf('!')) >= 0) kind = '!';
      if (oper >= 0) {
        if (kind === '!') {
          a = rewriteTree(ctx.rewrite, { local: l, at: false, domain: '' }, true);
        } else {
          a = rewriteTree(ctx.rewrite, { local: l.slice(0, oper), at: true, domain: l.slice(oper + 1) });
        }
        continue;
      }
    }

    // An empty local-part becomes the local MAILER-DAEMON; re-resolve the surrogate.
    if (a.local === '') {
      a = parseAddr(ctx.empty_address_recipient);
      continue;
    }

    // No domain at all: re-resolve with @$myhostname.
    if (saved === undefined) {
      a = { local: a.local, at: true, domain: ctx.myhostname };
      continue;
    }
    return { recipient: `${a.local}@${saved}`, remote: false };
  }
}

function nullTransportWarning(ctx: ResolveContext, param: string): string {
  return `file ${ctx.configDir}/main.cf: parameter ${param}: null transport is not allowed`;
}

/** resolve_addr(): resolve one recipient. `sender` feeds the sender_dependent_* tables. */
export async function resolve(ctx: ResolveContext, address: string, sender = ''): Promise<ResolveReply> {
  if (address.length > MAX_ADDRESS_LENGTH || /[\0\r\n]/.test(address)) {
    return reply('default', 'error', BAD_SYNTAX, address.slice(0, 256), { error: true });
  }
  try {
    return await resolveChecked(ctx, address, sender);
  } catch (e) {
    if (e instanceof DictError || e instanceof ConfigError) {
      return reply('default', 'retry', RESOLVER_FAILURE, address, { fail: true },
        [`${e.message}: address resolver failure for <${address}>`]);
    }
    throw e;
  }
}

async function resolveChecked(ctx: ResolveContext, address: string, sender: string): Promise<ResolveReply> {
  const warnings: string[] = [];
  const stripped = await stripLocal(ctx, address);
  if (stripped === 'loop') {
    return reply('default', 'retry', RESOLVER_FAILURE, address, { fail: true },
      [`resolve_addr: <${address}>: giving up after ${address.length + 100} iterations`]);
  }
  let { recipient, remote } = stripped;

  // Check the domain syntax. A bare IP address is allowed only with resolve_numeric_domain.
  let rcptDomain = recipient.slice(recipient.lastIndexOf('@') + 1);
  let error = false;
  if (rcptDomain.startsWith('[')) {
    if (!validMailhostLiteral(rcptDomain)) error = true;
  } else if (!validHostname(rcptDomain)) {
    if (ctx.resolve_numeric_domain && validHostaddr(rcptDomain)) {
      recipient = `${recipient.slice(0, recipient.length - rcptDomain.length)}[${rcptDomain}]`;
      rcptDomain = `[${rcptDomain}]`;
      if (await resolveLocal(ctx, rcptDomain)) remote = false;
    } else {
      error = true;
    }
  }
  if (error) return reply('default', 'error', BAD_SYNTAX, recipient, { error: true });

  // Routing operators left in the local-part (whatever our own percent/bang settings).
  const op = recipient.search(/[@!%]/);
  const routed = recipient.slice(op + 1) !== rcptDomain;

  let cls: AddressClass;
  let channel: string;
  let nexthop: string;
  let blame: string;
  const both = (d: string, a: string, b: string) => warnings.push(`do not list domain ${d} in BOTH ${a} and ${b}`);
  if (remote) {
    if (await ctx.virtual_alias_domains.match(rcptDomain)) {
      if (ctx.helpful_warnings) {
        if (await ctx.virtual_mailbox_domains.match(rcptDomain)) both(rcptDomain, 'virtual_alias_domains', 'virtual_mailbox_domains');
        if (await ctx.relay_domains.match(rcptDomain)) both(rcptDomain, 'virtual_alias_domains', 'relay_domains');
      }
      cls = 'alias';
      channel = 'error';
      nexthop = `5.1.1 User unknown${ctx.show_user_unknown_table_name ? ' in virtual alias table' : ''}`;
      blame = 'virtual_alias_domains';
    } else if (await ctx.virtual_mailbox_domains.match(rcptDomain)) {
      if (ctx.helpful_warnings && await ctx.relay_domains.match(rcptDomain)) {
        both(rcptDomain, 'virtual_mailbox_domains', 'relay_domains');
      }
      cls = 'virtual';
      channel = ctx.virtual_transport;
      nexthop = rcptDomain;
      blame = 'virtual_transport';
    } else {
      const senderKey = sender || ctx.empty_address_default_transport_maps_lookup_key;
      if (await ctx.relay_domains.match(rcptDomain)) {
        cls = 'relay';
        channel = ctx.relay_transport;
        blame = 'relay_transport';
      } else {
        cls = 'default';
        channel = ctx.default_transport;
        blame = 'default_transport';
        const sd = ctx.sender_dependent_default_transport_maps;
        const xport = sd ? await sd.find(senderKey) : undefined;
        if (xport !== undefined) {
          if (xport === '') warnings.push(`${sd!.paramName}: ignoring null lookup result for ${senderKey}`);
          if (xport !== '' && xport.toUpperCase() !== 'DUNNO') { channel = xport; blame = sd!.paramName; }
        }
      }
      // With off-host delivery, the sender-dependent or global relayhost overrides the domain.
      const relayKey = sender || ctx.empty_address_relayhost_maps_lookup_key;
      const sr = ctx.sender_dependent_relayhost_maps;
      const relay = sr ? await sr.find(relayKey) : undefined;
      if (relay !== undefined) {
        if (relay === '') warnings.push(`${sr!.paramName}: ignoring null lookup result for ${relayKey}`);
        nexthop = relay === '' || relay.toUpperCase() === 'DUNNO' ? rcptDomain : relay;
      } else {
        nexthop = ctx.relayhost !== '' ? ctx.relayhost : rcptDomain;
      }
    }
  } else {
    if (ctx.helpful_warnings) {
      if (await ctx.virtual_alias_domains.match(rcptDomain)) both(rcptDomain, 'mydestination', 'virtual_alias_domains');
      if (await ctx.virtual_mailbox_domains.match(rcptDomain)) both(rcptDomain, 'mydestination', 'virtual_mailbox_domains');
    }
    cls = 'local';
    channel = ctx.local_transport;
    nexthop = rcptDomain;
    blame = 'local_transport';
  }

  // An explicit main.cf transport:nexthop setting overrides the nexthop.
  const colon = channel.indexOf(':');
  if (colon >= 0) {
    const dest = channel.slice(colon + 1);
    channel = channel.slice(0, colon);
    if (dest !== '') nexthop = dest;
  }
  if (channel === '') {
    return reply(cls, 'retry', RESOLVER_FAILURE, recipient, { routed, fail: true },
      [...warnings, nullTransportWarning(ctx, blame)]);
  }

  // transport_maps override, except for the virtual alias class (error:User unknown stays).
  if (ctx.transport_maps && cls !== 'alias') {
    const r = await transportLookup(ctx.transport_maps,
      { recipientDelimiter: ctx.recipient_delimiter, parentMatch: ctx.transportParentMatch },
      recipient, rcptDomain, { transport: channel, nexthop });
    if (r) { channel = r.transport; nexthop = r.nexthop; }
  }

  // Bounce recipients that have moved, regardless of class (relocated(5)).
  const result = reply(cls, channel, nexthop, recipient, { routed }, warnings);
  if (ctx.relocated_maps) {
    const local = cls === 'local';
    const moved = await ctx.relocated_maps.find(recipient,
      { isLocalDomain: (d) => local && d.toLowerCase() === rcptDomain.toLowerCase() });
    if (moved !== undefined) {
      result.transport = 'error';
      result.nexthop = `5.1.6 User has moved to ${moved}`;
      result.relocated = moved;
    }
  }

  // Recipients that start with '-' could be taken for command options (pipe(8)).
  if (!ctx.allow_min_user && recipient.startsWith('-')) {
    result.transport = 'error';
    result.nexthop = BAD_SYNTAX;
    result.flags.error = true;
  }
  return result;
}
