/**
 * sieve-script - finds and compiles the scripts one delivery runs, in Pigeonhole's order and
 * file layout (so users' existing scripts keep working unchanged):
 *
 *   sieve_before, sieve_before2, ...   each a script file or a directory of *.sieve (name order)
 *   the user's active script           `sieve = file:~/sieve;active=~/.dovecot.sieve`: the
 *                                      `active` file (usually a symlink into ~/sieve/); a
 *                                      location that is a file is the script itself;
 *                                      none: sieve_default
 *   sieve_after, sieve_after2, ...
 *
 * include :personal "x" reads x.sieve from the user's script directory, :global from
 * sieve_global; targets are compiled here, recursively, with a loop check ("include loop").
 * Pigeonhole's compiled .svbin files are ignored. A user script that does not compile is not
 * run (delivery goes on with the others and the implicit keep), and its errors are written
 * where the user sees them: SCRIPT.log beside the active script, as Pigeonhole's
 * `.dovecot.sieve.log`. Compiled scripts are cached by path, size and mtime (least recently used
 * out first; at most 2,000 scripts and 32 MB of script text).
 */
import { readdirSync, readFileSync, statSync, writeFileSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { compileSieve, formatSieveErrors, type CompiledScript } from './sieve-compile.ts';
import { expandUserPath, type SieveSettings } from './sieve-settings.ts';
import { parseSieveLocation, SieveLocationError, type SieveLocation } from '../global/sieve-location.ts';

export interface RunnableScript {
  /** before | personal | default | after */
  phase: 'before' | 'personal' | 'default' | 'after';
  path: string;
  script: CompiledScript;
  /** Compiled include targets: "personal:name" / "global:name". */
  includes: Map<string, CompiledScript>;
  /** Where errors of this script are logged for the user (personal scripts only). */
  logPath?: string;
}

export interface ScriptProblem { path: string; phase: string; message: string }

const cache = new Map<string, { stamp: string; r: ReturnType<typeof compileSieve>; bytes: number }>();
const CACHE_MAX = 2000;
/** Script bytes the cache may hold (a compiled script takes several times its text). */
const CACHE_MAX_BYTES = 32 * 1024 * 1024;
let cacheBytes = 0;

function compileFile(path: string, s: SieveSettings): { r: ReturnType<typeof compileSieve> } | undefined {
  let st;
  try { st = statSync(path); } catch { return undefined; }
  if (!st.isFile()) return undefined;
  const stamp = `${st.size}:${st.mtimeMs}:${st.ino}:${[...s.extensions].join(',')}:${s.maxScriptSize}`;
  const hit = cache.get(path);
  if (hit && hit.stamp === stamp) {
    cache.delete(path);
    cache.set(path, hit); // most recently used last
    return { r: hit.r };
  }
  let r: ReturnType<typeof compileSieve>;
  if (s.maxScriptSize > 0 && st.size > s.maxScriptSize) {
    r = { ok: false, errors: [{ line: 0, column: 0, message: `script is too large (max ${s.maxScriptSize} bytes)` }], warnings: [] };
  } else {
    r = compileSieve(readFileSync(path, 'utf8'), { extensions: s.extensions, maxScriptSize: s.maxScriptSize });
  }
  const old = cache.get(path);
  if (old) { cacheBytes -= old.bytes; cache.delete(path); }
  while (cache.size > 0 && (cache.size >= CACHE_MAX || cacheBytes + st.size > CACHE_MAX_BYTES)) {
    const [k, v] = cache.entries().next().value!;
    cache.delete(k);
    cacheBytes -= v.bytes;
  }
  if (st.size <= CACHE_MAX_BYTES / 4) { cache.set(path, { stamp, r, bytes: st.size }); cacheBytes += st.size; }
  return { r };
}

function scriptName(path: string): string {
  return basename(path).replace(/\.sieve$/, '');
}

/** The *.sieve files of a directory in name order, or the file itself. */
function expandPath(p: string): string[] {
  try {
    if (statSync(p).isDirectory()) {
      return readdirSync(p).filter((f) => f.endsWith('.sieve')).sort().map((f) => join(p, f));
    }
    return [p];
  } catch {
    return [];
  }
}

export interface LoadedScripts { scripts: RunnableScript[]; problems: ScriptProblem[] }

/** Compiles include targets; an error names the including script. */
function loadIncludes(script: CompiledScript, personalDir: string | undefined, s: SieveSettings,
  out: Map<string, CompiledScript>, stack: string[]): string | undefined {
  for (const inc of script.includes) {
    const key = `${inc.location}:${inc.name}`;
    const dir = inc.location === 'global' ? s.global : personalDir;
    if (stack.includes(key)) return `include: include loop: ${[...stack, key].join(' -> ')}`;
    if (out.has(key)) continue;
    if (!dir) {
      if (inc.optional) continue;
      return `include: ${inc.location} location for included script \`${inc.name}' is unavailable (contact system administrator for more information)`;
    }
    const path = join(dir, `${inc.name}.sieve`);
    const c = compileFile(path, s);
    if (!c) {
      if (inc.optional) continue;
      return `include: included ${inc.location} script '${inc.name}' does not exist`;
    }
    if (!c.r.ok) return `include: failed to compile included script '${inc.name}':\n${formatSieveErrors(inc.name, c.r.errors)}`;
    out.set(key, c.r.script);
    if (out.size > 255) return 'include: too many included scripts (max 255)';
    const e = loadIncludes(c.r.script, personalDir, s, out, [...stack, key]);
    if (e) return e;
  }
  return undefined;
}

/** Pigeonhole's user log: "started log at", then the messages. */
export function writeUserLog(logPath: string, lines: string): void {
  try {
    const d = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' +0000');
    writeFileSync(logPath, `sieve: info: started log at ${d}.\n${lines}\n`, { mode: 0o600 });
  } catch { /* the user's directory may be read-only: the main log has it */ }
}

export function loadScripts(s: SieveSettings, user: string, home: string): LoadedScripts {
  const scripts: RunnableScript[] = [];
  const problems: ScriptProblem[] = [];
  const add = (phase: RunnableScript['phase'], path: string, personalDir: string | undefined, logPath?: string): void => {
    const c = compileFile(path, s);
    if (!c) {
      if (phase !== 'personal') problems.push({ path, phase, message: `sieve script ${path} not found` });
      return;
    }
    const includes = new Map<string, CompiledScript>();
    let err: string | undefined;
    if (!c.r.ok) err = formatSieveErrors(scriptName(path), c.r.errors, c.r.warnings) + `\n${scriptName(path)}: error: validation failed.`;
    else {
      const e = loadIncludes(c.r.script, personalDir, s, includes, [`personal:${scriptName(path)}`]);
      if (e) err = `${scriptName(path)}: error: ${e}.`;
    }
    if (err !== undefined || !c.r.ok) {
      problems.push({ path, phase, message: err ?? 'compile failed' });
      if (logPath) writeUserLog(logPath, err ?? '');
      return;
    }
    scripts.push({ phase, path, script: c.r.script, includes, ...(logPath ? { logPath } : {}) });
  };
  const x = (p: string): string => expandUserPath(p, user, home);
  for (const b of s.before) for (const f of expandPath(x(b))) add('before', f, undefined);
  let loc: SieveLocation = { path: '', options: {} };
  try {
    loc = parseSieveLocation(s.location, user, home);
  } catch (e) {
    if (!(e instanceof SieveLocationError)) throw e;
    problems.push({ path: s.location, phase: 'personal', message: e.message });
  }
  let personal: string | undefined;
  let personalDir: string | undefined;
  try {
    if (loc.path === '') throw new Error('no location');
    const st = statSync(loc.path);
    if (st.isDirectory()) {
      personalDir = loc.path;
      if (loc.active) { try { if (statSync(loc.active).isFile()) personal = loc.active; } catch { /* none active */ } }
    } else if (st.isFile()) { personal = loc.path; personalDir = dirname(loc.path); }
  } catch {
    if (loc.active) { try { if (statSync(loc.active).isFile()) personal = loc.active; } catch { /* none */ } }
  }
  if (s.sieveDir) personalDir = x(s.sieveDir);
  if (personal) {
    let real = personal;
    try { real = realpathSync(personal); } catch { /* keep */ }
    personalDir ??= dirname(real);
    add('personal', personal, personalDir, `${personal}.log`);
  } else if (s.defaultScript) {
    for (const f of expandPath(x(s.defaultScript))) add('default', f, personalDir);
  }
  for (const a of s.after) for (const f of expandPath(x(a))) add('after', f, undefined);
  return { scripts, problems };
}
