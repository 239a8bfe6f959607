/**
 * rewrite - the "canonical" address rewriting of trivial-rewrite(8) (Postfix
 * src/trivial-rewrite/rewrite.c, rewrite_tree()): complete an address to the standard form
 * `user@fully.qualified.domain` (ADDRESS_REWRITING_README, "Rewrite addresses to standard form").
 *
 * In order, as Postfix does them:
 *   1. a source route is dropped: `@a,@b:user@c` → `user@c` (RFC 5321 §C / §4.1.1.3: servers
 *      SHOULD ignore routes);
 *   2. an address without '@' is completed: `host!user` → `user@host` (swap_bangpath), else
 *      `user%host` → `user@host` (allow_percent_hack, the last '%'), else `user` →
 *      `user@$myorigin` (append_at_myorigin);
 *   3. `user@host` → `user@host.$mydomain` when the domain has no dot and is not an
 *      [address literal] (append_dot_mydomain);
 *   4. one trailing dot of the domain is dropped (`user@example.com.` → `user@example.com`), but
 *      not in forms that are broken anyway (`user@example..`, `user@.`).
 * The operators '!' and '%' count only in an unquoted local-part (one that is an RFC 822
 * dot-atom); in `"a!b"` they are plain characters. The empty address stays empty, and a lone
 * `@` becomes the empty address.
 *
 * The module is pure: the parameters come in a RewriteParams, built once from main.cf.
 */
import { needsQuote } from '../global/address-syntax.ts';

export interface RewriteParams {
  myorigin: string;
  mydomain: string;
  append_at_myorigin: boolean;
  append_dot_mydomain: boolean;
  swap_bangpath: boolean;
  allow_percent_hack: boolean;
}

/**
 * An address split at its last '@' (Postfix's token tree, reduced to what rewriting needs).
 * `at` is false for a bare local-part; `domain` is '' both then and for `user@`.
 */
export interface Addr {
  local: string;
  at: boolean;
  domain: string;
}

export function parseAddr(address: string): Addr {
  const i = address.lastIndexOf('@');
  if (i < 0) return { local: address, at: false, domain: '' };
  return { local: address.slice(0, i), at: true, domain: address.slice(i + 1) };
}

export function formatAddr(a: Addr): string {
  return a.at ? `${a.local}@${a.domain}` : a.local;
}

/**
 * Drop an RFC 5321 source route `@a,@b:` in front of a mailbox (Postfix rewrite_tree: "Strip
 * source route"). A colon at the very end is no route, and neither is a local-part that merely
 * starts with '@' and holds no colon.
 */
export function stripSourceRoute(address: string): string {
  if (!address.startsWith('@')) return address;
  const colon = address.indexOf(':');
  if (colon < 0 || colon === address.length - 1) return address;
  return address.slice(colon + 1);
}

/**
 * rewrite_tree(): steps 2-4 above on an already route-less address. `unquoted` forces the
 * local-part to be read as unquoted (the resolver uses it after cracking open a quoted
 * local-part, as Postfix re-scans the dequoted text).
 */
export function rewriteTree(p: RewriteParams, a: Addr, unquoted = false): Addr {
  let { local, at, domain } = a;
  if (!at && local === '') return a; // the empty address is a special case
  if (at && local === '' && domain === '') return { local: '', at: false, domain: '' }; // lone @

  if (!at) {
    const operators = unquoted || !needsQuote(local);
    const bang = operators ? local.indexOf('!') : -1;
    const pct = operators ? local.lastIndexOf('%') : -1;
    if (p.swap_bangpath && bang >= 0) {
      // Swap domain!user to user@domain; only the first '!' (site!rest → rest@site).
      domain = local.slice(0, bang);
      local = local.slice(bang + 1);
      at = true;
    } else if (p.allow_percent_hack && pct >= 0) {
      // Promote user%domain to user@domain; the last '%' wins.
      domain = local.slice(pct + 1);
      local = local.slice(0, pct);
      at = true;
    } else if (p.append_at_myorigin && p.myorigin !== '') {
      domain = p.myorigin;
      at = true;
    }
  }

  // Append missing .$mydomain, but leave broken forms ending in @ and [literals] alone.
  if (p.append_dot_mydomain && p.mydomain !== '' && at && domain !== ''
      && !domain.includes('[') && !domain.includes('.')) {
    domain = `${domain}.${p.mydomain}`;
  }

  // Strip one trailing dot, but not dot-dot or @-dot (diagnostics stay accurate for junk).
  if (at) {
    if (domain.length >= 2 && domain.endsWith('.') && domain[domain.length - 2] !== '.') domain = domain.slice(0, -1);
  } else if (local.length >= 2 && local.endsWith('.') && local[local.length - 2] !== '.' && !needsQuote(local.slice(0, -1))) {
    local = local.slice(0, -1);
  }
  return { local, at, domain };
}

/**
 * The "canonical" rewrite of one internal-form address, as cleanup(8) and smtpd(8) ask the
 * rewrite service for it: `user` → `user@$myorigin`, `user@host` → `user@host.$mydomain`.
 */
export function rewriteAddress(p: RewriteParams, address: string): string {
  return formatAddr(rewriteTree(p, parseAddr(stripSourceRoute(address))));
}
