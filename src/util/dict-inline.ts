/**
 * dict-inline - the `inline:{ key=value, { key = value with spaces } }` table (Postfix
 * util/dict_inline.c, 3.0+): a small table written directly in main.cf. Keys are folded to lower
 * case like every fixed-string table. Errors use Postfix's wording:
 * `missing '=' after attribute name: "inline:{a=b,c}"; need "inline:{name=value...}"`.
 */
import { DictError, type Dict } from './dict.ts';
import { splitBraceList, type DictOpenFlags } from './dict-source.ts';

export async function openInlineDict(name: string, flags: DictOpenFlags = {}): Promise<Dict> {
  const spec = `inline:${name}`;
  const need = `; need "inline:{name=value...}"`;
  if (!name.startsWith('{') || !name.endsWith('}')) {
    throw new DictError('config', `bad syntax: "${spec}"${need}`);
  }
  const { items, error } = splitBraceList(name.slice(1, -1));
  if (error) throw new DictError('config', `${error}${need}`);
  if (items.length === 0) throw new DictError('config', `empty table: "${spec}"${need}`);
  const fold = flags.foldCase !== false;
  const table = new Map<string, string>();
  for (let item of items) {
    if (item.startsWith('{')) {
      if (!item.endsWith('}')) throw new DictError('config', `missing '}' in "${spec}"${need}`);
      item = item.slice(1, -1);
    }
    const eq = item.indexOf('=');
    if (eq < 0) throw new DictError('config', `missing '=' after attribute name: "${spec}"${need}`);
    const key = item.slice(0, eq).trim();
    if (key === '') throw new DictError('config', `missing attribute name: "${spec}"${need}`);
    const k = fold ? key.toLowerCase() : key;
    if (!table.has(k)) table.set(k, item.slice(eq + 1).trim());
  }
  const dict: Dict = {
    type: 'inline',
    name,
    lookup: async (key) => table.get(fold ? key.toLowerCase() : key),
    entries: async function* () { yield* table.entries(); },
    close: async () => {},
  };
  return dict;
}
