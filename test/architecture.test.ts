/**
 * architecture - the dependency rules of ARCHITECTURE.md, read from the imports of src/ and
 * enforced: a change that breaks one fails `npm test`.
 *
 * Every folder directly under src/ is one of:
 *   util/      no mail knowledge (Postfix util/): imports only util/.
 *   global/    mail knowledge shared by daemons, and the contracts between them (Postfix global/):
 *              imports util/ and global/.
 *   lib-*      protocol, format and storage libraries (Dovecot's lib-*): util/, global/ and other
 *              lib-* folders; never a daemon.
 *   master/    assembles the services (registries, processes, threads): anything but cli/.
 *   cli/       assembles the commands: anything.
 *   any other  a daemon (smtpd/, qmgr/, imapd/, ...): util/, global/ and lib-* only. Daemons meet
 *              through the contracts in global/, wired together by master/ or cli/.
 * Over all of that: no cycle between folders (the layers leave room for one only among lib-*
 * folders; the other cycles show as the edges that break a layer), and no non-table
 * source file over MAX_LINES lines (TABLE_FILES lists the tables, each with its reason).
 *
 * Imports counted: static `import`/`export ... from` (type-only too: a type is a dependency of
 * the design even when erased) and dynamic `import('...')`, outside comments. Test files
 * (*.test.ts) and testdata/ folders are exempt: a test assembles what it tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');
const MAX_LINES = 800;

/** Source files allowed over MAX_LINES because they are tables, not logic. */
const TABLE_FILES: Record<string, string> = {
  'src/global/mail-params.ts': 'the table of every main.cf parameter Postern knows (name, default, type)',
};


type Kind = 'util' | 'global' | 'lib' | 'master' | 'cli' | 'daemon';
function kindOf(folder: string): Kind {
  if (folder === 'util' || folder === 'global' || folder === 'master' || folder === 'cli') return folder;
  return folder.startsWith('lib-') ? 'lib' : 'daemon';
}

/** Why `from` may not import `to` (folders), or undefined when it may. */
export function ruleBroken(from: string, to: string): string | undefined {
  if (from === to) return undefined;
  const a = kindOf(from);
  const b = kindOf(to);
  switch (a) {
    case 'util': return 'util/ knows no mail: it imports only util/';
    case 'global': return b === 'util' ? undefined : 'global/ imports only util/';
    case 'lib': return b === 'util' || b === 'global' || b === 'lib' ? undefined : 'a lib-* folder knows no daemon';
    case 'daemon': return b === 'util' || b === 'global' || b === 'lib' ? undefined : 'daemons meet only through global/ contracts (master/ or cli/ wires them)';
    case 'master': return b === 'cli' ? 'master/ does not import cli/ (cli/ assembles on top of master/)' : undefined;
    case 'cli': return undefined;
  }
}

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) { if (name !== 'testdata' && name !== 'node_modules') sources(p, out); }
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** The relative specifiers a file imports, comments removed first. */
export function importsOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  for (const m of code.matchAll(/^\s*(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
    const s = m[1] ?? m[2] ?? m[3]!;
    if (s.startsWith('.')) out.push(s);
  }
  return out;
}

interface Edge { from: string; to: string; fromFile: string; toFile: string }

function readGraph(): { edges: Edge[]; long: { file: string; lines: number }[] } {
  const edges: Edge[] = [];
  const long: { file: string; lines: number }[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const rel = relative(ROOT, file);
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > MAX_LINES && !(rel in TABLE_FILES)) long.push({ file: rel, lines });
    for (const spec of importsOf(text)) {
      const target = resolve(dirname(file), spec);
      const from = relative(SRC, file).split('/')[0]!;
      const to = target.startsWith(SRC + '/') ? relative(SRC, target).split('/')[0]! : '(outside src)';
      if (from !== to) edges.push({ from, to, fromFile: rel, toFile: relative(ROOT, target) });
    }
  }
  return { edges, long };
}

/** Folder cycles (strongly connected components of more than one folder), each sorted. */
export function folderCycles(edges: { from: string; to: string }[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const e of edges) { if (!next.has(e.from)) next.set(e.from, new Set()); next.get(e.from)!.add(e.to); }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let n = 0;
  const visit = (v: string): void => {
    index.set(v, n); low.set(v, n++); stack.push(v); onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); c.push(w); } while (w !== v);
      if (c.length > 1) out.push(c.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return out.sort((x, y) => x[0]!.localeCompare(y[0]!));
}

/** Every violation as one line: where, then which rule. */
function violations(): string[] {
  const { edges, long } = readGraph();
  const out = new Set<string>();
  for (const e of edges) {
    if (e.to === '(outside src)') { out.add(`import outside src/: ${e.fromFile} -> ${e.toFile}`); continue; }
    const why = ruleBroken(e.from, e.to);
    if (why) out.add(`${e.fromFile} -> ${e.toFile}: ${why}`);
  }
  // A cycle needs an edge against the layers above (listed already) or one among lib-* folders,
  // which the layers allow: look for cycles among the edges that break no rule.
  for (const c of folderCycles(edges.filter((e) => e.to !== '(outside src)' && !ruleBroken(e.from, e.to)))) out.add(`cycle between folders: ${c.join(' ')}`);
  for (const l of long) out.add(`${l.file}: ${l.lines} lines, over ${MAX_LINES} (split it by job, or list it in TABLE_FILES if it is a table)`);
  return [...out].sort();
}

test('the rules themselves: which folder may import which', () => {
  assert.equal(ruleBroken('util', 'global'), 'util/ knows no mail: it imports only util/');
  assert.equal(ruleBroken('global', 'util'), undefined);
  assert.ok(ruleBroken('global', 'lib-auth'));
  assert.equal(ruleBroken('lib-imap', 'lib-mail'), undefined);
  assert.ok(ruleBroken('lib-storage', 'virtual'));
  assert.equal(ruleBroken('smtpd', 'global'), undefined);
  assert.ok(ruleBroken('smtpd', 'cleanup'));
  assert.ok(ruleBroken('smtpd', 'master'));
  assert.equal(ruleBroken('master', 'smtpd'), undefined);
  assert.ok(ruleBroken('master', 'cli'));
  assert.equal(ruleBroken('cli', 'master'), undefined);
  assert.deepEqual(folderCycles([{ from: 'a', to: 'b' }, { from: 'b', to: 'c' }, { from: 'c', to: 'a' }, { from: 'c', to: 'd' }]), [['a', 'b', 'c']]);
  assert.deepEqual(folderCycles([{ from: 'a', to: 'b' }, { from: 'b', to: 'c' }]), []);
  assert.deepEqual(importsOf("import { a } from './a.ts';\nimport type {\n  B,\n} from '../b/b.ts';\n// import x from '../c.ts'\n/** import('../d/d.ts') */\nconst m = await import('../e/e.ts');\nexport { f } from './f.ts';\nimport 'node:fs';\n"),
    ['./a.ts', '../b/b.ts', '../e/e.ts', './f.ts']);
});

test('src/ keeps the dependency rules of ARCHITECTURE.md', () => {
  assert.deepEqual(violations(), [], 'the rules are in the header of test/architecture.test.ts and in ARCHITECTURE.md');
});
