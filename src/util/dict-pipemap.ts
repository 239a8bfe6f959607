/**
 * dict-pipemap - `pipemap:{type:name, type:name, ...}` (Postfix util/dict_pipe.c, 3.0+): the
 * key goes to the first table, its result is the key for the second, and so on; the last
 * table's result is the answer. Not found as soon as one table has no entry.
 */
import type { Dict } from './dict.ts';
import type { DictOpenFlags } from './dict-source.ts';
import { openMembers, type DictOpener } from './dict-unionmap.ts';

export async function openPipeDict(name: string, flags: DictOpenFlags, open: DictOpener): Promise<Dict> {
  const dicts = await openMembers('pipemap', name, flags, open);
  return {
    type: 'pipemap',
    name,
    async lookup(key) {
      let v: string | undefined = key;
      for (const d of dicts) {
        v = await d.lookup(v);
        if (v === undefined) return undefined;
      }
      return v;
    },
    close: async () => { await Promise.all(dicts.map((d) => d.close())); },
  };
}
