/**
 * fuzz-seeds - seed corpora for the fuzz targets, taken from the project's own test inputs and
 * testdata: whole files (read from disk) and string literals lifted out of test sources.
 */

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root (test/fuzz/../..). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Every regular file under DIR (relative to ROOT), recursively, as seeds. */
export function filesUnder(dir: string, match: RegExp = /./, maxSize = 256 * 1024): Buffer[] {
  const out: Buffer[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try { names = readdirSync(d).sort(); } catch { return; }
    for (const n of names) {
      const p = join(d, n);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && match.test(p) && st.size <= maxSize) out.push(readFileSync(p));
    }
  };
  walk(join(ROOT, dir));
  return out;
}

/** Single-quoted and backquoted string literals (unescaped \r \n \t) in test sources matching `keep`. */
export function literalsFrom(files: string[], keep: RegExp): Buffer[] {
  const out = new Set<string>();
  for (const f of files) {
    let text: string;
    try { text = readFileSync(join(ROOT, f), 'utf8'); } catch { continue; }
    for (const m of text.matchAll(/'((?:[^'\\\n]|\\.){1,400})'|`((?:[^`\\$]|\\.){1,2000})`/g)) {
      const s = (m[1] ?? m[2] ?? '').replace(/\\r/g, '\r').replace(/\\n/g, '\n').replace(/\\t/g, '\t')
        .replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))).replace(/\\(.)/g, '$1');
      if (keep.test(s)) out.add(s);
    }
  }
  return [...out].sort().map((s) => Buffer.from(s, 'latin1'));
}

export function texts(...s: string[]): Buffer[] {
  return s.map((x) => Buffer.from(x, 'latin1'));
}
