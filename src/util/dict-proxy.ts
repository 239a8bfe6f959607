/**
 * dict-proxy - `proxy:type:name` and `proxywrite:type:name` (Postfix proxymap(8) clients,
 * util/dict_proxy.c). Postfix sends the lookup to the proxymap daemon so that chrooted or
 * unprivileged processes can read tables they could not open themselves; Postern's agents run
 * with the privileges to open their tables, so the wrapper is transparent: it opens `type:name`
 * directly and reports itself as that table. Postfix's default
 * `local_recipient_maps = proxy:unix:passwd.byname $alias_maps` works through it.
 *
 * As proxymap's proxy_read_maps check, a proxied table must itself be a valid `type:name`
 * (a nested `proxy:` is refused: Postfix "proxy:proxy:..." is a configuration error).
 */
import { DictError, type Dict, type DictFlags } from './dict.ts';
import type { DictOpenFlags } from './dict-source.ts';

type Opener = (spec: string, flags: DictFlags & DictOpenFlags) => Promise<Dict>;

export async function openProxyDict(name: string, flags: DictFlags & DictOpenFlags, open: Opener): Promise<Dict> {
  if (name.startsWith('proxy:') || name.startsWith('proxywrite:')) {
    throw new DictError('config', `proxy:${name}: a proxied table cannot itself be proxy: (remove one "proxy:")`);
  }
  return open(name, flags);
}
