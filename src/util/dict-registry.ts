/**
 * dict-registry - `dictOpen("type:name")`: the one place that knows every lookup-table type
 * of util/ (Postfix util/dict_open.c). A literal table of explicit lazy imports, no
 * self-registration: a type's module is loaded the first time a table of that type is opened,
 * so a missing or broken module only fails when it is used. Types that need more than util/
 * knows (`auth:`, answered by the user directory) come in the open flags (`flags.types`,
 * dict-source.ts) from whoever assembled the caller; they never override a type of this table.
 *
 * Errors are DictError('config') with Postfix's wording:
 *   `unsupported dictionary type: foo`
 *   `open dictionary: expecting "type:name" form instead of "x"`
 *
 * Case folding: fixed-string tables (everything but regexp/pcre) lower-case the key unless
 * flags.foldCase is false (Postfix DICT_FLAG_FOLD_FIX); pattern tables see the key as given.
 */
import { DictError, type Dict, type DictFlags } from './dict.ts';
import type { DictOpenFlags, DictTypeOpener } from './dict-source.ts';

export type { DictOpenFlags, DictTypeOpener } from './dict-source.ts';

type Opener = DictTypeOpener;

const TYPES: Record<string, () => Promise<Opener>> = {
  static: async () => (await import('./dict-static.ts')).openStaticDict,
  inline: async () => (await import('./dict-inline.ts')).openInlineDict,
  texthash: async () => (await import('./dict-texthash.ts')).openTexthashDict,
  hash: async () => { const m = await import('./dict-hash.ts'); return (n, f) => m.openHashDict('hash', n, f); },
  btree: async () => { const m = await import('./dict-hash.ts'); return (n, f) => m.openHashDict('btree', n, f); },
  lmdb: async () => { const m = await import('./dict-hash.ts'); return (n, f) => m.openHashDict('lmdb', n, f); },
  regexp: async () => { const m = await import('./dict-regexp.ts'); return (n, f) => m.openRegexpDict('regexp', n, f); },
  pcre: async () => { const m = await import('./dict-regexp.ts'); return (n, f) => m.openRegexpDict('pcre', n, f); },
  cidr: async () => (await import('./dict-cidr.ts')).openCidrDict,
  unionmap: async () => { const m = await import('./dict-unionmap.ts'); return (n, f) => m.openUnionDict(n, f, dictOpen); },
  pipemap: async () => { const m = await import('./dict-pipemap.ts'); return (n, f) => m.openPipeDict(n, f, dictOpen); },
  sqlite: async () => (await import('./dict-sqlite.ts')).openSqliteDict,
  pgsql: async () => (await import('./dict-pgsql.ts')).openPgsqlDict,
  mysql: async () => (await import('./dict-mysql.ts')).openMysqlDict,
  ldap: async () => (await import('./dict-ldap.ts')).openLdapDict,
  unix: async () => (await import('./dict-unix.ts')).openUnixDict,
  proxy: async () => { const m = await import('./dict-proxy.ts'); return (n, f) => m.openProxyDict(n, f, dictOpen); },
  proxywrite: async () => { const m = await import('./dict-proxy.ts'); return (n, f) => m.openProxyDict(n, f, dictOpen); },
};

/** The table types dictOpen() knows by itself (postconf -m; `auth` comes in the flags). */
export function dictTypes(): string[] {
  return Object.keys(TYPES).sort();
}

/** Types whose files postmap can build (an index next to the source). */
export const INDEXED_TYPES: ReadonlySet<string> = new Set(['hash', 'btree', 'lmdb']);

/** Split "type:name"; a name without a type is an error (Postfix dict_open). */
export function splitSpec(spec: string): { type: string; name: string } {
  const colon = spec.indexOf(':');
  if (colon <= 0 || colon === spec.length - 1) {
    throw new DictError('config', `open dictionary: expecting "type:name" form instead of "${spec}"`);
  }
  return { type: spec.slice(0, colon), name: spec.slice(colon + 1) };
}

/** Open a table. Unknown type → DictError('config', 'unsupported dictionary type: TYPE'). */
export async function dictOpen(spec: string, flags: DictFlags & DictOpenFlags = {}): Promise<Dict> {
  const { type, name } = splitSpec(spec);
  const load = Object.hasOwn(TYPES, type) ? TYPES[type] : undefined;
  if (!load) {
    const extra = flags.types && Object.hasOwn(flags.types, type) ? flags.types[type] : undefined;
    if (extra) return extra(name, flags);
    throw new DictError('config', `unsupported dictionary type: ${type}`);
  }
  let open: Opener;
  try {
    open = await load();
  } catch (err) {
    throw new DictError('config', `dictionary type ${type} is not available: ${(err as Error).message}`);
  }
  return open(name, flags);
}
