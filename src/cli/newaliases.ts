/**
 * newaliases - `postern newaliases` (Postfix newaliases(1) = `postalias $alias_database`) and
 * `postern alias` (postalias(1)): build the index of aliases(5) files, query alias tables.
 *
 * SYNOPSIS
 *   postern newaliases                 build every hash:/btree:/lmdb: file of alias_database
 *   postern alias [type:]FILE...       build the index of these aliases(5) files (default hash:)
 *   postern alias -q NAME [table...]   print NAME's value from these tables, else alias_maps;
 *                                      exit 1 when not found (postalias -q)
 *
 * The source format is aliases(5): `name: value`, indented continuation lines, `#` comments
 * (local/local-token.ts parseAliasesSource). Names are folded to lower case. The index is Postern's
 * `FILE.pdb` (dict-hash.ts), the same one `postern map` builds, so `alias_maps = hash:/etc/aliases`
 * reads it. Errors name the file and line; a file with errors is still built from its good
 * lines (as postalias warns and goes on), but the exit status is 1.
 */
import { readFileSync } from 'node:fs';
import type { CliContext } from './cli-context.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { loadDovecotConf } from '../global/dovecot-conf.ts';
import { authDictTypesFor } from '../lib-auth/dict-auth.ts';
import { Maps } from '../global/maps.ts';
import { INDEX_SUFFIX, writeIndexFile } from '../util/dict-hash.ts';
import { INDEXED_TYPES } from '../util/dict-registry.ts';
import { splitBraceList } from '../util/dict-source.ts';
import { parseAliasesSource } from '../local/local-token.ts';

function say(s: string): void { process.stderr.write(`postern: ${s}\n`); }

/** Build one aliases(5) file's index; returns false on any error. */
export function buildAliases(spec: string, configDir?: string): boolean {
  const colon = spec.indexOf(':');
  const [type, name] = colon > 0 && !spec.startsWith('/') ? [spec.slice(0, colon), spec.slice(colon + 1)] : ['hash', spec];
  if (!INDEXED_TYPES.has(type)) { say(`warning: ${spec}: only hash:, btree: and lmdb: alias databases are built (nothing to do for ${type}:)`); return true; }
  const path = name.startsWith('/') || !configDir ? name : `${configDir}/${name}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    say(`fatal: open ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (e as Error).message}`);
    return false;
  }
  const { entries, errors } = parseAliasesSource(text, path);
  for (const e of errors) say(`warning: ${e}`);
  const seen = new Set<string>();
  const pairs: [string, string][] = [];
  for (const e of entries) {
    if (seen.has(e.name)) { say(`warning: ${path}:${e.line}: duplicate entry: "${e.name}"`); continue; }
    seen.add(e.name);
    pairs.push([e.name, e.value]);
  }
  try {
    writeIndexFile(path + INDEX_SUFFIX, pairs, true);
  } catch (e) {
    say(`fatal: ${(e as Error).message}`);
    return false;
  }
  return errors.length === 0;
}

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const config = MainConfig.load(ctx.configDir).withDictTypes(authDictTypesFor(() => loadDovecotConf(ctx.configDir)));
  if (ctx.command === 'newaliases') {
    if (args.length) { say('usage: postern newaliases (builds every alias_database table)'); return 64; }
    let ok = true;
    for (const spec of splitBraceList(config.get('alias_database')).items) ok = buildAliases(spec, ctx.configDir) && ok;
    return ok ? 0 : 1;
  }
  if (args[0] === '-q') {
    const key = args[1];
    if (key === undefined) { say('usage: postern alias -q NAME [type:table...]'); return 64; }
    const spec = args.length > 2 ? args.slice(2).join(', ') : config.get('alias_maps');
    const maps = await Maps.open(spec, { ...config.dictFlags, paramName: 'alias_maps' });
    const value = await maps.find(key.toLowerCase());
    if (value === undefined) return 1;
    process.stdout.write(value + '\n');
    return 0;
  }
  if (args.length === 0 || args[0]!.startsWith('-')) { say('usage: postern alias [type:]FILE... | postern alias -q NAME [type:table...]'); return 64; }
  let ok = true;
  for (const spec of args) ok = buildAliases(spec, ctx.configDir) && ok;
  return ok ? 0 : 1;
}
