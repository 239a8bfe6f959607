/**
 * cleanup-addr - one table lookup of one address, as Postfix global/mail_addr_map.c and
 * mail_addr_crunch.c do it for cleanup's canonical, virtual alias and BCC tables:
 *
 *   - the key search order of mail_addr_find() (user+ext@domain, user@domain, user+ext and user
 *     for local domains only, @domain), done by src/global/mail-addr-find.ts;
 *   - a result is a list of addresses separated by commas and/or white space; each is made
 *     canonical by trivial-rewrite (`joe` → `joe@$myorigin`);
 *   - an unmatched address extension (the key matched only without `+ext`) is copied to each
 *     result when propagate_unmatched_extensions names this table's class;
 *   - a result `@otherdomain` keeps the original local part: user@example.com → user@otherdomain
 *     (without the extension when the match was on user@domain without it).
 *
 * A table error (DictError) is rethrown: the caller defers the message, never "not found".
 */
import { extensionIndex } from '../global/mail-addr-find.ts';
import type { Maps } from '../global/maps.ts';
import type { CleanupTables } from './cleanup-tables.ts';

/** Split a table result into addresses: commas and white space separate, quotes and <> group. */
export function splitAddressList(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let angle = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted) {
      cur += c;
      if (c === '\\' && i + 1 < value.length) cur += value[++i];
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') { quoted = true; cur += c; continue; }
    if (c === '<') angle++;
    if (c === '>' && angle > 0) angle--;
    if (angle === 0 && (c === ',' || c === ' ' || c === '\t' || c === '\n' || c === '\r')) {
      if (cur) out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  if (cur) out.push(cur);
  // <addr> → addr (mail_addr_crunch parses the result as an RFC 822 address list).
  return out.map((a) => (a.startsWith('<') && a.endsWith('>') ? a.slice(1, -1) : a)).filter((a) => a !== '');
}

/** Insert an extension before the last '@' (or at the end). */
export function addExtension(address: string, ext: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? address + ext : address.slice(0, at) + ext + address.slice(at);
}

/**
 * mail_addr_map(): undefined when no table has the address, else the (non-empty) list of
 * canonical result addresses.
 */
export async function mailAddrMap(t: CleanupTables, maps: Maps, address: string, propagate: boolean): Promise<string[] | undefined> {
  const hit = await t.find(maps, address);
  if (!hit) return undefined;
  const at = address.lastIndexOf('@');
  const user = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? undefined : address.slice(at + 1).toLowerCase();
  const xi = extensionIndex(user, t.recipientDelimiter);
  // The extension was "unmatched" when the key that hit is the address without it.
  let extension: string | undefined;
  if (xi >= 0) {
    const bare = user.slice(0, xi).toLowerCase();
    if (hit.key === (domain === undefined ? bare : `${bare}@${domain}`) || hit.key === bare) extension = user.slice(xi);
  }
  let value = hit.value.trim();
  if (value.startsWith('@')) {
    // "Prepend the original user to @otherdomain, but do not propagate the unmatched extension."
    const base = extension ? user.slice(0, user.length - extension.length) : user;
    value = base + value;
  }
  const list = splitAddressList(value).map((a) => {
    const canon = t.rewrite.rewrite(a);
    return propagate && extension ? addExtension(canon, extension) : canon;
  });
  if (list.length === 0) {
    throw new MapResultError(`${maps.paramName ?? maps.spec} lookup of ${address} returns non-address result "${hit.value}"`);
  }
  return list;
}

/** A table answered with something that is not an address (Postfix: DICT_ERR_RETRY). */
export class MapResultError extends Error {
  override name = 'MapResultError';
}
