/**
 * dict-static - the `static:` table (Postfix util/dict_static.c): every lookup returns the
 * table's name, e.g. `virtual_uid_maps = static:5000`. Since Postfix 3.3 the value may contain
 * white space when written in braces: `static:{text with spaces}`.
 */
import { DictError, type Dict } from './dict.ts';

export async function openStaticDict(name: string): Promise<Dict> {
  let value = name;
  if (name.startsWith('{')) {
    if (!name.endsWith('}')) {
      throw new DictError('config', `bad static:name syntax: missing '}' in "${name}"`);
    }
    value = name.slice(1, -1).trim();
  }
  const dict: Dict = {
    type: 'static',
    name,
    lookup: async () => value,
    close: async () => {},
  };
  return dict;
}
