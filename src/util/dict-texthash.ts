/**
 * dict-texthash - the `texthash:/path` table (Postfix util/dict_thash.c): the postmap(1) source
 * file itself, read into memory when the table is opened; no index file is needed.
 *
 * Same input syntax as postmap (see dict-source.ts). As in Postfix: keys are folded to lower
 * case (unless foldCase is false), a line without a value is skipped with
 * `FILE, line N: expected format: key whitespace value -- ignoring this line`, and for a duplicate
 * key the first entry wins with `FILE, line N: duplicate entry: "key"`.
 */
import { DictError, type Dict } from './dict.ts';
import { parseKeyValueSource, readSourceFile, tablePath, warnFn, type DictOpenFlags } from './dict-source.ts';

export async function openTexthashDict(name: string, flags: DictOpenFlags = {}): Promise<Dict> {
  const path = tablePath(name, flags);
  const warn = warnFn(flags);
  const fold = flags.foldCase !== false;
  const table = new Map<string, string>();
  let text: string;
  try {
    text = readSourceFile(path);
  } catch (err) {
    // Postfix dict_thash.c says "open database" here too.
    throw new DictError('config', (err as Error).message.replace(/^open /, 'open database '));
  }
  for (const e of parseKeyValueSource(text, path, warn, ' -- ignoring this line')) {
    const key = fold ? e.key.toLowerCase() : e.key;
    if (table.has(key)) warn(`${path}, line ${e.line}: duplicate entry: "${key}"`);
    else table.set(key, e.value);
  }
  return {
    type: 'texthash',
    name,
    lookup: async (key) => table.get(fold ? key.toLowerCase() : key),
    entries: async function* () { yield* table.entries(); },
    close: async () => {},
  };
}
