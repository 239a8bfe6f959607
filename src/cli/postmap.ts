/**
 * postmap - `postern map`: build, query, change and dump lookup tables, like Postfix postmap(1).
 *
 * SYNOPSIS
 *   postern map [-firw] [type:]file...          build the index of each source file
 *   postern map [-f] -q KEY type:name...        print the value of KEY (first table that has it)
 *   postern map [-f] -q - type:name...          keys on stdin, "key<TAB>value" for each found
 *   postern map -s type:name...                 print every "key<TAB>value"
 *   postern map [-f] -i type:file               add "key value" lines from stdin to the index
 *   postern map [-f] -d KEY|- type:file         delete a key (or the keys on stdin)
 *
 * DESCRIPTION
 *   A file without a type is `hash:` (Postfix's default_database_type on Debian). The index of
 *   `hash:/path` is `/path.pdb` (see src/util/dict-hash.ts; never Postfix's `/path.db`).
 *   -f: do not fold keys to lower case. -r: on a duplicate key the last entry wins (default:
 *   the first, with a warning). -w: no duplicate-key warnings. -N, -n, -o, -p, -u, -U, -v: accepted
 *   for compatibility and ignored. -b, -h (body/header checks) and -F are not supported.
 *
 * DIAGNOSTICS
 *   Postfix's messages on stderr: `postmap: warning: ...`, `postmap: fatal: ...`.
 *   Exit status (as postmap): 0 = success / key found; 1 = key not found, or a fatal error.
 *
 * SECURITY
 *   Run by the administrator; reads the table files named on the command line. When run as
 *   root, the index is given the owner of its source file (as postmap drops to that user).
 */
import { chownSync, statSync } from 'node:fs';
import type { Dict } from '../util/dict.ts';
import { DictError } from '../util/dict.ts';
import { dictOpen, INDEXED_TYPES, splitSpec } from '../util/dict-registry.ts';
import { HashIndex, INDEX_SUFFIX, writeIndexFile, type HashDict } from '../util/dict-hash.ts';
import { errnoText, parseKeyValueSource, readSourceFile } from '../util/dict-source.ts';
import type { CliContext } from './cli-context.ts';

const USAGE = 'usage: postmap [-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...';

class Fatal extends Error {}

interface Opts {
  fold: boolean; dup: 'warn' | 'replace' | 'ignore';
  query?: string; deletes: string[]; seq: boolean; incremental: boolean; maps: string[];
}

function parseArgs(args: string[]): Opts {
  const o: Opts = { fold: true, dup: 'warn', deletes: [], seq: false, incremental: false, maps: [] };
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') { i++; break; }
    if (!a.startsWith('-') || a === '-') break;
    for (let j = 1; j < a.length; j++) {
      const c = a[j]!;
      const takeArg = (): string => {
        const rest = a.slice(j + 1);
        j = a.length;
        if (rest) return rest;
        const next = args[++i];
        if (next === undefined) throw new Fatal(USAGE);
        return next;
      };
      switch (c) {
        case 'c': takeArg(); break;                 // handled by the postern dispatcher
        case 'd': o.deletes.push(takeArg()); break;
        case 'q': o.query = takeArg(); break;
        case 's': o.seq = true; break;
        case 'i': o.incremental = true; break;
        case 'f': o.fold = false; break;
        case 'r': o.dup = 'replace'; break;
        case 'w': o.dup = 'ignore'; break;
        case 'N': case 'n': case 'o': case 'p': case 'u': case 'U': case 'v': case 'm': break;
        case 'b': case 'h': case 'F':
          throw new Fatal(`option -${c} is not supported by postern map`);
        default: throw new Fatal(USAGE);
      }
    }
  }
  o.maps = args.slice(i);
  const modes = (o.query !== undefined ? 1 : 0) + (o.seq ? 1 : 0) + (o.deletes.length ? 1 : 0);
  if (modes > 1) throw new Fatal('specify only one of -s or -q or -d');
  if (o.maps.length === 0) throw new Fatal(USAGE);
  return o;
}

/** "file" alone means hash:file (postmap's default_database_type). */
function withType(spec: string): string {
  return /^[A-Za-z0-9_-]+:/.test(spec) ? spec : `hash:${spec}`;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Buffered stdout: one write per 64 KiB, waiting on back-pressure. */
class Out {
  private buf: string[] = [];
  private size = 0;
  async add(s: string): Promise<void> {
    this.buf.push(s);
    this.size += s.length;
    if (this.size >= 65536) await this.flush();
  }
  addSync(s: string): boolean {
    this.buf.push(s);
    this.size += s.length;
    return this.size >= 65536;
  }
  async flush(): Promise<void> {
    if (this.size === 0) return;
    const data = this.buf.join('');
    this.buf = [];
    this.size = 0;
    if (!process.stdout.write(data)) await new Promise<void>((r) => process.stdout.once('drain', r));
  }
}

export async function main(args: string[], _ctx: CliContext): Promise<number> {
  const warn = (m: string) => { process.stderr.write(`postmap: warning: ${m}\n`); };
  try {
    const o = parseArgs(args);
    const flags = { foldCase: o.fold, warn };
    if (o.query !== undefined) return await query(o, flags);
    if (o.seq) return await sequence(o, flags);
    if (o.deletes.length) return await remove(o, warn);
    for (const m of o.maps) await build(withType(m), o, warn);
    return 0;
  } catch (err) {
    if (err instanceof Fatal || err instanceof DictError) {
      process.stderr.write(`postmap: fatal: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function openAll(o: Opts, flags: { foldCase: boolean; warn: (m: string) => void }): Promise<Dict[]> {
  const dicts: Dict[] = [];
  for (const m of o.maps) dicts.push(await dictOpen(withType(m), flags));
  return dicts;
}

async function query(o: Opts, flags: { foldCase: boolean; warn: (m: string) => void }): Promise<number> {
  const dicts = await openAll(o, flags);
  try {
    if (o.query !== '-') {
      for (const d of dicts) {
        const v = await d.lookup(o.query!);
        if (v !== undefined) { process.stdout.write(v + '\n'); return 0; }
      }
      return 1;
    }
    // Batch mode: every key on stdin, "key\tvalue" for the found ones.
    const text = await readStdin();
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    const out = new Out();
    let found = 0;
    const sync = dicts.every((d) => typeof (d as Partial<HashDict>).lookupSync === 'function')
      ? dicts.map((d) => (d as HashDict).lookupSync) : undefined;
    for (const key of lines) {
      let v: string | undefined;
      if (sync) {
        for (const f of sync) { v = f(key); if (v !== undefined) break; }
      } else {
        for (const d of dicts) { v = await d.lookup(key); if (v !== undefined) break; }
      }
      if (v === undefined) continue;
      found++;
      if (out.addSync(`${key}\t${v}\n`)) await out.flush();
    }
    await out.flush();
    return found ? 0 : 1;
  } finally {
    await Promise.all(dicts.map((d) => d.close()));
  }
}

async function sequence(o: Opts, flags: { foldCase: boolean; warn: (m: string) => void }): Promise<number> {
  const dicts = await openAll(o, flags);
  const out = new Out();
  for (let i = 0; i < dicts.length; i++) {
    const d = dicts[i]!;
    if (!d.entries) throw new Fatal(`table ${withType(o.maps[i]!)}: sequence operation is not supported`);
    for await (const [k, v] of d.entries()) await out.add(`${k}\t${v}\n`);
  }
  await out.flush();
  return 0;
}

function indexedPath(spec: string, what: string): string {
  const { type, name } = splitSpec(spec);
  if (!INDEXED_TYPES.has(type)) {
    throw new Fatal(`unsupported dictionary type: ${type} does not support ${what}.`);
  }
  return name;
}

/** Merge entries into a map, honouring -r / -w and Postfix's duplicate warning. */
function addEntries(table: Map<string, string>, entries: { key: string; value: string }[], o: Opts,
  indexPath: string, warn: (m: string) => void): void {
  for (const e of entries) {
    const key = o.fold ? e.key.toLowerCase() : e.key;
    if (table.has(key)) {
      if (o.dup === 'replace') table.set(key, e.value);
      else if (o.dup === 'warn') warn(`${indexPath}: duplicate entry: "${key}"`);
      continue;
    }
    table.set(key, e.value);
  }
}

function loadExisting(indexPath: string): Map<string, string> {
  try {
    statSync(indexPath);
  } catch {
    return new Map();   // -i on a missing index creates it, as postmap -i does
  }
  return new Map(HashIndex.load(indexPath).entries());
}

function giveToSourceOwner(source: string, indexPath: string): void {
  if (process.getuid?.() !== 0) return;
  try {
    const st = statSync(source);
    if (st.uid !== 0) chownSync(indexPath, st.uid, st.gid);
  } catch { /* no source file: keep root's */ }
}

async function build(spec: string, o: Opts, warn: (m: string) => void): Promise<void> {
  const source = indexedPath(spec, 'bulk-mode creation');
  const indexPath = source + INDEX_SUFFIX;
  let table: Map<string, string>;
  let text: string;
  if (o.incremental) {
    table = loadExisting(indexPath);
    text = await readStdin();
    addEntries(table, parseKeyValueSource(text, '-', warn), o, indexPath, warn);
  } else {
    table = new Map();
    text = readSourceFile(source);
    addEntries(table, parseKeyValueSource(text, source, warn), o, indexPath, warn);
  }
  writeIndexFile(indexPath, table, o.fold);
  if (!o.incremental) giveToSourceOwner(source, indexPath);
}

async function remove(o: Opts, warn: (m: string) => void): Promise<number> {
  let keys = o.deletes;
  if (keys.includes('-')) {
    keys = keys.filter((k) => k !== '-');
    keys.push(...(await readStdin()).split('\n').filter((k) => k !== ''));
  }
  let removed = 0;
  for (const m of o.maps) {
    const source = indexedPath(withType(m), 'delete');
    const indexPath = source + INDEX_SUFFIX;
    let table: Map<string, string>;
    try {
      table = new Map(HashIndex.load(indexPath).entries());
    } catch (err) {
      throw err instanceof DictError ? err : new Fatal(`open database ${indexPath}: ${errnoText(err)}`);
    }
    let changed = false;
    for (const k of keys) {
      if (table.delete(o.fold ? k.toLowerCase() : k)) { removed++; changed = true; }
    }
    if (changed) writeIndexFile(indexPath, table, o.fold);
  }
  void warn;
  return removed ? 0 : 1;
}
