/**
 * dict-testkit - helpers for the lookup-table tests: temporary directories that clean up, and
 * running the same keys through real Postfix `postmap -q -` and through dictOpen(), so a test
 * can assert that Postern answers exactly as Postfix does.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dictOpen } from '../../src/util/dict-registry.ts';

export const POSTMAP = '/usr/sbin/postmap';
/** Probe without an error path: a postmap fatal error sleeps one second before exiting. */
export const HAVE_POSTMAP = existsSync(POSTMAP);

/** A temp dir holding an empty main.cf (real postmap needs one), removed after the test. */
export function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'postern-dict-'));
  writeFileSync(join(dir, 'main.cf'), '');
  // Postfix waits ~2 s when main.cf was modified a moment ago; a backdated file avoids that.
  const past = new Date(Date.now() - 3600_000);
  utimesSync(join(dir, 'main.cf'), past, past);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Real Postfix: `postmap -c DIR -q - SPEC` with keys on stdin → key → value. */
export function postfixQuery(dir: string, spec: string, keys: string[], extra: string[] = []): Map<string, string> {
  const r = spawnSync(POSTMAP, ['-c', dir, ...extra, '-q', '-', spec], { input: keys.join('\n') + '\n', encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 1) throw new Error(`postmap failed (${r.status}): ${r.stderr}`);
  const out = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) out.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return out;
}

/** Real Postfix build: `postmap -c DIR SPEC`; returns stderr. */
export function postfixBuild(dir: string, spec: string): string {
  const r = spawnSync(POSTMAP, ['-c', dir, spec], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`postmap ${spec} failed: ${r.stderr}`);
  return r.stderr;
}

/** Postern: the same keys through dictOpen(); warnings collected. */
export async function posternQuery(spec: string, keys: string[], foldCase = true): Promise<{ answers: Map<string, string>; warnings: string[] }> {
  const warnings: string[] = [];
  const d = await dictOpen(spec, { foldCase, warn: (m) => warnings.push(m) });
  const answers = new Map<string, string>();
  for (const k of keys) {
    const v = await d.lookup(k);
    if (v !== undefined) answers.set(k, v);
  }
  await d.close();
  return { answers, warnings };
}
