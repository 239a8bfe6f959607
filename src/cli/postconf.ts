/**
 * NAME
 *   postern conf - Postfix configuration utility (postconf(1))
 *
 * SYNOPSIS
 *   postern [-c CONFIG_DIR] conf [-dfhHnx] [NAME...]
 *   postern conf -e NAME=VALUE...        edit main.cf in place
 *   postern conf -X NAME...              remove NAME from main.cf
 *   postern conf -# NAME...              comment NAME out in main.cf
 *   postern conf -M[f] [SERVICE[/TYPE]...]   print master.cf entries
 *
 * DESCRIPTION
 *   Prints main.cf parameters as Postfix 3.7's postconf does, byte for byte for the parameters
 *   Postern knows: `name = value` lines sorted by name, values unexpanded unless -x; the words
 *   of each value joined by one space (pcf_print_line), folded at 80 columns with -f.
 *   -n: only parameters set in main.cf (plus config_directory when -c or MAIL_CONFIG names the
 *   directory, as postconf does); -d: defaults; -h: values only; -H: names only.
 *
 *   Like postconf, it finds "user-defined" parameters (a main.cf name referenced as $name by a
 *   main.cf value or a master.cf -o value, or listed in smtpd_restriction_classes) and warns:
 *     postconf: warning: DIR/main.cf: undefined parameter: NAME      (a $NAME nobody defines)
 *     postconf: warning: DIR/main.cf: unused parameter: NAME=VALUE   (unknown and unreferenced)
 *     postconf: warning: NAME: unknown parameter                     (asked for on the command line)
 *   Each warning is printed once (postconf repeats some, once per pass over main.cf).
 *
 *   -e/-X/-# rewrite main.cf keeping every other line (comments, order, continuation lines of
 *   untouched entries): an edited entry's logical line, continuation lines included, is replaced
 *   by `name = value`; names not found are appended. The new file is written to a temporary file
 *   in the same directory and renamed over main.cf (atomic). No lock is taken (Postfix neither).
 *
 * DIAGNOSTICS
 *   Exit 0 on success, 1 on a fatal error (printed as `postconf: fatal: ...`).
 */
import { existsSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CliContext } from './cli-context.ts';
import { ConfigError } from '../global/config-error.ts';
import { macExpand, macScan, MacroError } from '../util/mac-expand.ts';
import { MainConfig, splitList, splitNameValue } from '../global/mail-conf.ts';
import { allParams, paramSpec, registerServices } from '../global/mail-params-service.ts';
import { RAW_PARAMS, READONLY_PARAMS } from '../global/mail-params.ts';
import { formatMasterEntry, loadMasterCf, type MasterEntry } from '../global/master-cf.ts';

const LINE_LIMIT = 80;
const INDENT = '    ';

class Fatal extends Error {}

interface Out { out: string[]; err: string[] }

/** pcf_print_line(): the words of `text` joined by one space; with fold, wrapped at 80 columns. */
export function printLine(text: string, fold: boolean): string {
  const words = text.split(/[ \t\r\n]+/).filter((w) => w !== '');
  let line = '';
  let len = 0;
  for (const w of words) {
    if (len > 0) {
      if (!fold || len + w.length < LINE_LIMIT) { line += ' '; len += 1; }
      else { line += '\n' + INDENT; len = INDENT.length; }
    }
    line += w;
    len += w.length;
  }
  return line + '\n';
}

interface Flags {
  d: boolean; e: boolean; f: boolean; h: boolean; H: boolean; n: boolean; x: boolean;
  X: boolean; hash: boolean; M: boolean;
}

function parseArgs(args: string[]): { flags: Flags; names: string[] } {
  const flags: Flags = { d: false, e: false, f: false, h: false, H: false, n: false, x: false, X: false, hash: false, M: false };
  const names: string[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') { i++; break; }
    if (!a.startsWith('-') || a === '-') break;
    for (const ch of a.slice(1)) {
      switch (ch) {
        case 'd': flags.d = true; break;
        case 'e': flags.e = true; break;
        case 'f': flags.f = true; break;
        case 'h': flags.h = true; break;
        case 'H': flags.H = true; break;
        case 'n': flags.n = true; break;
        case 'x': flags.x = true; break;
        case 'X': flags.X = true; break;
        case '#': flags.hash = true; break;
        case 'M': flags.M = true; break;
        default: throw new Fatal(`invalid option -- '${ch}'\nusage: postern conf [-dfhHnx] [-e|-X|-#] [-M] [name...]`);
      }
    }
  }
  names.push(...args.slice(i));
  const edits = [flags.e, flags.X, flags.hash, flags.M].filter(Boolean).length;
  if (edits > 1) throw new Fatal('specify only one of -e, -X, -#, -M');
  return { flags, names };
}

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const io: Out = { out: [], err: [] };
  let code = 0;
  try {
    code = run(args, ctx, io);
  } catch (err) {
    if (err instanceof Fatal || err instanceof ConfigError) {
      io.err.push(`postconf: fatal: ${err.message}\n`);
      code = 1;
    } else throw err;
  } finally {
    if (io.out.length) process.stdout.write(io.out.join(''));
    if (io.err.length) process.stderr.write(io.err.join(''));
  }
  return code;
}

/** The work of main(), writing into `io` (tests call it directly). */
export function run(args: string[], ctx: CliContext, io: Out): number {
  const { flags, names } = parseArgs(args);
  const mainCf = join(ctx.configDir, 'main.cf');
  if (flags.e || flags.X || flags.hash) {
    if (names.length === 0) throw new Fatal(`${flags.e ? '-e' : flags.X ? '-X' : '-#'} requires at least one parameter`);
    editMainCf(mainCf, names, flags.e ? 'edit' : flags.X ? 'remove' : 'comment', io);
    return 0;
  }
  if (flags.M) {
    showMaster(ctx.configDir, names, flags.f, io);
    return 0;
  }
  if (!existsSync(ctx.configDir) || !statSync(ctx.configDir).isDirectory()) {
    throw new Fatal(`open ${mainCf}: No such file or directory`);
  }
  const conf = MainConfig.load(ctx.configDir);
  for (const w of conf.warnings) io.err.push(`postconf: warning: ${w}\n`);
  const master = tryLoadMaster(ctx.configDir);
  registerServices(master);

  // User-defined parameters and undefined references (postconf_user.c).
  const builtin = (n: string): boolean => paramSpec(n) !== undefined;
  const explicit = conf.explicitNames();
  const userDefined = new Set<string>();
  const undefinedRefs: string[] = [];
  const onRef = (n: string): void => {
    if (builtin(n)) return;
    if (conf.isSet(n)) { userDefined.add(n); return; }
    undefinedRefs.push(n);
  };
  const scan = (v: string): void => {
    try { macScan(v, onRef); } catch (err) { if (!(err instanceof MacroError)) throw err; }
  };
  for (const n of explicit) scan(conf.raw(n)!);
  for (const e of master) for (const v of Object.values(e.overrides)) scan(v);
  if (conf.isSet('smtpd_restriction_classes')) {
    for (const cls of splitList(conf.get('smtpd_restriction_classes'))) onRef(cls);
  }
  // postconf -d reads main.cf only for nothing: no warnings then.
  const warn = (text: string): void => { if (!flags.d) io.err.push(`postconf: warning: ${mainCf}: ${text}\n`); };
  for (const n of undefinedRefs) warn(`undefined parameter: ${n}`);
  for (const n of explicit) if (READONLY_PARAMS.has(n)) warn(`read-only parameter assignment: ${n}=${conf.raw(n)}`);
  const known = (n: string): boolean => builtin(n) || userDefined.has(n);

  const defaults = flags.d ? MainConfig.parse('', mainCf, ctx.configDir) : undefined;
  const source = defaults ?? conf;
  const show = (name: string, value: string): void => {
    if (flags.H) io.out.push(name + '\n');
    else if (flags.h) io.out.push(printLine(value, flags.f));
    else io.out.push(printLine(`${name} = ${value}`, flags.f));
  };
  const valueOf = (name: string): string | undefined => {
    const raw = flags.d ? (builtin(name) ? source.defaultRaw(name) : undefined) : source.rawOrDefault(name);
    if (raw === undefined) return undefined;
    if (!flags.x || RAW_PARAMS.has(name)) return raw;
    try {
      return macExpand(raw, (n) => source.rawOrDefault(n));
    } catch (err) {
      if (err instanceof MacroError) throw new ConfigError(mainCf, conf.lineOf(name), `parameter ${name}: ${err.message}`);
      throw err;
    }
  };
  const explicitView = (): string[] => {
    const set = explicit.filter((n) => known(n) && !READONLY_PARAMS.has(n));
    if (ctx.configDirExplicit && !set.includes('config_directory')) set.push('config_directory');
    return set;
  };

  if (names.length > 0) {
    const allowed = flags.n ? new Set(explicitView()) : undefined;
    for (const name of names) {
      const ok = flags.d ? builtin(name) : known(name);
      if (!ok) { io.err.push(`postconf: warning: ${name}: unknown parameter\n`); continue; }
      if (allowed && !allowed.has(name)) continue;
      show(name, valueOf(name) ?? '');
    }
  } else {
    let list: string[];
    if (flags.n) list = explicitView();
    else if (flags.d) list = allParams().map((p) => p.name);
    else list = [...new Set([...allParams().map((p) => p.name), ...userDefined])];
    for (const name of [...new Set(list)].sort(byteOrder)) show(name, valueOf(name) ?? '');
  }

  for (const n of explicit) if (!known(n)) warn(`unused parameter: ${n}=${conf.raw(n)}`);
  return 0;
}

/** strcmp() order, as postconf sorts names. */
function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function tryLoadMaster(configDir: string): MasterEntry[] {
  try {
    return loadMasterCf(configDir);
  } catch {
    return []; // master.cf problems are `postern conf -M`'s and the master's to report
  }
}

function showMaster(configDir: string, filters: string[], fold: boolean, io: Out): void {
  const entries = loadMasterCf(configDir);
  const want = filters.map((f) => {
    const [service, type] = f.split('/');
    return { service: service!, type };
  });
  for (const e of entries) {
    if (want.length && !want.some((w) => w.service === e.service && (w.type === undefined || w.type === e.type))) continue;
    io.out.push(formatMasterEntry(e, { fold }) + '\n');
  }
}

type EditMode = 'edit' | 'remove' | 'comment';

/**
 * postconf -e / -X / -# (postconf_edit.c pcf_edit_main): copy main.cf line by line; comment and
 * blank lines are kept; the first line of a matching entry is replaced (-e), dropped (-X) or
 * prefixed with `#` (-#), and its continuation lines follow the same fate.
 */
export function editMainCf(file: string, specs: string[], mode: EditMode, io: Out): void {
  const table = new Map<string, { value: string; found: number }>();
  for (const spec of specs) {
    if (mode === 'edit') {
      const r = splitNameValue(spec);
      if ('error' in r) throw new Fatal(`${r.error}: "${spec}"`);
      if (r.value.includes('\n')) throw new Fatal(`value of ${r.name} must not contain a newline`);
      table.set(r.name, { value: r.value, found: 0 });
    } else {
      table.set(spec.trim(), { value: '', found: 0 });
    }
  }
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Fatal(`open ${file}: ${(err as Error).message}`);
    if (mode !== 'edit') return;
  }
  if (text.includes('\0')) throw new Fatal(`${file}: NUL character in file; not editing it`);
  const lines = text.split(/(?<=\n)/).filter((l) => l !== '');
  const out: string[] = [];
  let interesting = false;
  for (const line of lines) {
    const body = line.replace(/^[ \t\r\n\v\f]+/, '');
    if (body === '' || body.startsWith('#')) { out.push(line); continue; }
    if (body.length < line.length) { // continuation line
      if (!interesting) out.push(line);
      else if (mode === 'comment') out.push('#' + line);
      continue;
    }
    const key = /^[^ \t\r\n=]*/.exec(line)![0];
    const hit = table.get(key);
    interesting = hit !== undefined;
    if (!hit) { out.push(line); continue; }
    if (hit.found++ === 1) io.err.push(`postconf: warning: ${file}: multiple entries for "${key}"\n`);
    if (mode === 'edit') out.push(`${key} = ${hit.value}\n`);
    else if (mode === 'comment') out.push('#' + line);
  }
  if (mode === 'edit') {
    if (out.length && !out[out.length - 1]!.endsWith('\n')) out[out.length - 1] += '\n';
    for (const [key, v] of table) if (v.found === 0) out.push(`${key} = ${v.value}\n`);
  }
  const tmp = `${file}.postern-tmp.${process.pid}`;
  try {
    let mode0 = 0o644;
    try { mode0 = statSync(file).mode & 0o7777; } catch { /* new file */ }
    writeFileSync(tmp, out.join(''), { mode: mode0, flush: true });
    renameSync(tmp, file);
  } catch (err) {
    try { unlinkSync(tmp); } catch { /* not created */ }
    throw new Fatal(`cannot update ${file}: ${(err as Error).message}`);
  }
}
