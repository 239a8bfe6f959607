/**
 * dict-unionmap - `unionmap:{type:name, type:name, ...}` (Postfix util/dict_union.c, 3.0+):
 * every table is queried with the same key and all results are joined with commas, in table
 * order. Not found only when no table has the key; an error in any table is the table's error
 * (the lookup does not silently drop a part of the answer).
 */
import { DictError, type Dict } from './dict.ts';
import { splitBraceList, type DictOpenFlags } from './dict-source.ts';

export type DictOpener = (spec: string, flags: DictOpenFlags) => Promise<Dict>;

/** Open the member tables of unionmap:{...} / pipemap:{...}. */
export async function openMembers(type: string, name: string, flags: DictOpenFlags, open: DictOpener): Promise<Dict[]> {
  const need = `; need "${type}:{type:name...}"`;
  if (!name.startsWith('{') || !name.endsWith('}')) throw new DictError('config', `bad syntax: "${type}:${name}"${need}`);
  const { items, error } = splitBraceList(name.slice(1, -1));
  if (error) throw new DictError('config', `${error}${need}`);
  if (items.length === 0) throw new DictError('config', `bad syntax: "${type}:${name}"${need}`);
  const dicts: Dict[] = [];
  try {
    for (const item of items) dicts.push(await open(item, flags));
  } catch (err) {
    await Promise.all(dicts.map((d) => d.close()));
    throw err;
  }
  return dicts;
}

export async function openUnionDict(name: string, flags: DictOpenFlags, open: DictOpener): Promise<Dict> {
  const dicts = await openMembers('unionmap', name, flags, open);
  return {
    type: 'unionmap',
    name,
    async lookup(key) {
      const found: string[] = [];
      for (const d of dicts) {
        const v = await d.lookup(key);
        if (v !== undefined) found.push(v);
      }
      return found.length ? found.join(',') : undefined;
    },
    close: async () => { await Promise.all(dicts.map((d) => d.close())); },
  };
}
