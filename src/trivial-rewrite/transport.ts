/**
 * transport - the transport_maps lookup of trivial-rewrite(8) (Postfix
 * src/trivial-rewrite/transport.c, transport(5)): override the transport and/or nexthop that the
 * address class chose, per recipient or per domain.
 *
 * Search order (transport(5) "TABLE SEARCH ORDER"):
 *   1. `user+extension@domain` (the full recipient);
 *   2. `user@domain` (the extension stripped at recipient_delimiter);
 *   3. `domain`, then each parent: `.parent.domain`, `.domain` — or, when transport_maps is in
 *      parent_domain_matches_subdomains, `parent.domain`, `domain`;
 *   4. the wildcard `*`.
 * A value is `transport:nexthop`, split at the first ':' (transport(5) "RESULT FORMAT"):
 *   - `smtp:[mail.example.com]:587`  transport smtp, nexthop `[mail.example.com]:587`;
 *   - `lmtp:unix:/path`, `lmtp:inet:host:24`  the nexthop keeps its own colons;
 *   - `smtp` or `smtp:`  new transport, nexthop reset to the recipient domain;
 *   - `:[gw.example.com]`  keep the transport, new nexthop;  `:` changes nothing;
 *   - `error:5.1.1 text`  the error transport, the nexthop is the bounce text; a bare `error`
 *     gets "Address is undeliverable".
 * A lookup error is thrown; the resolver turns it into a deferral (RESOLVE_FLAG_FAIL).
 */
import type { KeyTable } from './domain-list.ts';
import { stripExtension } from '../global/address-syntax.ts';

export interface Route {
  transport: string;
  nexthop: string;
}

export interface TransportOptions {
  /** recipient_delimiter: the characters that start an address extension ('' = none). */
  recipientDelimiter: string;
  /** transport_maps is listed in parent_domain_matches_subdomains. */
  parentMatch: boolean;
}

/** update_entry(): apply one table value to the route chosen so far. */
export function applyTransportEntry(value: string, rcptDomain: string, route: Route): Route {
  const colon = value.indexOf(':');
  const channel = colon < 0 ? value : value.slice(0, colon);
  const host = colon < 0 ? '' : value.slice(colon + 1);
  if (channel === '') {
    // ":[nexthop]": keep the transport; change the nexthop only when one is given.
    return host === '' ? route : { transport: route.transport, nexthop: host };
  }
  if (host !== '') return { transport: channel, nexthop: host };
  return { transport: channel, nexthop: channel === 'error' ? 'Address is undeliverable' : rcptDomain };
}

/**
 * transport_lookup(): the new route, or undefined when no entry applies. `address` is the
 * resolved recipient (user@domain), `rcptDomain` its domain.
 */
export async function transportLookup(table: KeyTable, opts: TransportOptions, address: string,
                                      rcptDomain: string, route: Route): Promise<Route | undefined> {
  if (address === '') return undefined;
  const at = address.lastIndexOf('@');
  if (at < 0 || at === address.length - 1) return undefined;

  let value = await table.find(address);
  if (value !== undefined) return applyTransportEntry(value, rcptDomain, route);

  const stripped = stripExtension(address, opts.recipientDelimiter);
  if (stripped !== undefined) {
    value = await table.find(stripped, { fixedOnly: true });
    if (value !== undefined) return applyTransportEntry(value, rcptDomain, route);
  }

  // Domain keys are partial: regexp/pcre tables only ever see the full address (transport(5)).
  let name = address.slice(at + 1);
  for (;;) {
    value = await table.find(name, { fixedOnly: true });
    if (value !== undefined) return applyTransportEntry(value, rcptDomain, route);
    const next = name.indexOf('.', 1);
    if (next < 0) break;
    name = opts.parentMatch ? name.slice(next + 1) : name.slice(next);
    if (name === '' || name === '.') break;
  }

  value = await table.find('*');
  if (value !== undefined) return applyTransportEntry(value, rcptDomain, route);
  return undefined;
}
