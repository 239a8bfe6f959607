/**
 * mail-addr-find - the Postfix address search order for lookup tables (global/mail_addr_find.c,
 * split_addr.c), done once here above all table types (CONTRACT 2):
 *
 *   1. user+ext@domain   the full address (every table, also regexp/pcre)
 *   2. user@domain       without the extension (fixed-string tables only)
 *   3. user+ext, user    ONLY when the domain is local (isLocalDomain), fixed tables only
 *   4. @domain           the catch-all (fixed tables only)
 *
 * An address without a domain is looked up as user+ext, then user. The address is lower-cased
 * first. `recipientDelimiter` may hold several characters (Postfix 2.11+): the local part is
 * split at the first of any of them, but never when that leaves an empty user, and — when `-`
 * is a delimiter — never for `owner-foo` and `foo-request` (split_addr.c).
 *
 * A table error (DictError) stops the search and is rethrown by Maps.find.
 */
import type { Maps } from './maps.ts';

export interface AddrFindOptions {
  recipientDelimiter?: string;
  isLocalDomain?: (domain: string) => boolean;
}

/** Postfix split_addr(): the position of the extension delimiter in a local part, or -1. */
export function extensionIndex(localpart: string, delimiters: string): number {
  if (!delimiters || !localpart) return -1;
  if (delimiters.includes('-')) {
    const lp = localpart.toLowerCase();
    if (lp.startsWith('owner-') || (lp.length > 8 && lp.endsWith('-request'))) return -1;
  }
  for (let i = 0; i < localpart.length; i++) {
    if (delimiters.includes(localpart[i]!)) return i === 0 ? -1 : i;
  }
  return -1;
}

export async function mailAddrFind(maps: Maps, address: string, opts: AddrFindOptions = {}):
Promise<{ value: string; key: string } | undefined> {
  if (address === '') return undefined;
  const full = address.toLowerCase();
  const at = full.lastIndexOf('@');
  const user = at < 0 ? full : full.slice(0, at);
  const domain = at < 0 ? undefined : full.slice(at + 1);
  const ext = extensionIndex(user, opts.recipientDelimiter ?? '');
  const bareUser = ext < 0 ? undefined : user.slice(0, ext);

  const tries: { key: string; fixedOnly: boolean }[] = [{ key: full, fixedOnly: false }];
  if (domain !== undefined) {
    if (bareUser !== undefined) tries.push({ key: `${bareUser}@${domain}`, fixedOnly: true });
    if (opts.isLocalDomain?.(domain)) {
      tries.push({ key: user, fixedOnly: true });
      if (bareUser !== undefined) tries.push({ key: bareUser, fixedOnly: true });
    }
    tries.push({ key: `@${domain}`, fixedOnly: true });
  } else if (bareUser !== undefined) {
    tries.push({ key: bareUser, fixedOnly: true });
  }
  for (const t of tries) {
    const value = await maps.find(t.key, { fixedOnly: t.fixedOnly });
    if (value !== undefined) return { value, key: t.key };
  }
  return undefined;
}
