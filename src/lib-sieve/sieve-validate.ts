/**
 * sieve-validate - checks a parsed Sieve script against the command table (sieve-commands.ts)
 * and the extensions it requires, and produces the checked tree the interpreter runs
 * (SieveCmd): tags collected by name, positional arguments typed, encoded-character sequences
 * decoded (RFC 5228 §2.4.2.4). Reports every error it finds (Pigeonhole goes on after the first
 * validation error too), with the wording of Pigeonhole's validator so `sievec` users
 * recognise it: "unknown command 'foo' (only reported once at first occurrence)".
 *
 * Per-extension checks that need argument values live in sieve-validate-ext.ts.
 */
import { type SieveArg, type SieveAstNode } from './sieve-parser.ts';
import { SIEVE_COMMANDS, SIEVE_TESTS, type CmdSpec, type PosSpec, type SieveArgType } from './sieve-commands.ts';
import { checkCommand } from './sieve-validate-ext.ts';

export type SieveValue = string | string[] | number;

/** A checked command or test. */
export interface SieveCmd {
  /** Lower-cased name. */
  name: string;
  line: number;
  column: number;
  /** Tagged arguments by name (without ':'): the parameter, or true for a flag tag. */
  tags: Map<string, SieveValue | true>;
  /** Which tag of each group was given (MATCH-TYPE -> 'contains', COMPARATOR -> 'comparator'). */
  groups: Map<string, string>;
  /** Positional arguments by spec name (a string-list position always holds string[]). */
  args: Map<string, SieveValue>;
  tests: SieveCmd[];
  block: SieveCmd[] | null;
}

export interface SieveDiagnostic { line: number; column: number; message: string }

export interface ValidateContext {
  /** Extensions the administrator allows (sieve_extensions). */
  readonly available: ReadonlySet<string>;
  /** Extensions the script required so far. */
  readonly required: Set<string>;
  errors: SieveDiagnostic[];
  warnings: SieveDiagnostic[];
  error(at: { line: number; column: number }, msg: string): void;
  warning(at: { line: number; column: number }, msg: string): void;
  /** include targets found ({ location, name, once, optional }). */
  includes: { location: 'personal' | 'global'; name: string; once: boolean; optional: boolean }[];
  /** Names of the foreverypart loops enclosing the current command (innermost last). */
  loops: (string | null)[];
}

const typeName = (t: SieveArgType): string => t === 'string' ? 'a string' : t === 'stringlist' ? 'a string list' : 'a number';
const argTypeName = (a: SieveArg): string =>
  a.type === 'string' ? 'a string' : a.type === 'stringlist' ? 'a string list' : a.type === 'number' ? 'a number' : 'a tag';

/** ${hex:41 42} and ${unicode:263a}; an invalid sequence is left as it is (RFC 5228 §2.4.2.4). */
export function decodeEncodedCharacters(s: string): string {
  if (!s.includes('${')) return s;
  return s.replace(/\$\{(hex|unicode):([\s0-9a-fA-F]*)\}/gi, (all, kind: string, body: string) => {
    const parts = body.trim().split(/\s+/).filter((x) => x !== '');
    if (parts.length === 0) return '';
    if (kind.toLowerCase() === 'hex') {
      const bytes = parts.map((p) => p.length <= 2 ? parseInt(p, 16) : NaN);
      if (bytes.some((b) => Number.isNaN(b))) return all;
      return Buffer.from(bytes).toString('utf8');
    }
    let out = '';
    for (const p of parts) {
      const cp = parseInt(p, 16);
      if (p.length > 6 || Number.isNaN(cp) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return all;
      out += String.fromCodePoint(cp);
    }
    return out;
  });
}

export class SieveValidator {
  readonly ctx: ValidateContext;
  private readonly reported = new Set<string>();

  constructor(available: ReadonlySet<string>) {
    const errors: SieveDiagnostic[] = [];
    const warnings: SieveDiagnostic[] = [];
    this.ctx = {
      available, required: new Set(), errors, warnings, includes: [], loops: [],
      error: (at, message) => { errors.push({ line: at.line, column: at.column, message }); },
      warning: (at, message) => { warnings.push({ line: at.line, column: at.column, message }); },
    };
  }

  validate(ast: SieveAstNode[]): SieveCmd[] {
    const out = this.block(ast, true);
    this.checkRequired({ line: 1, column: 1 });
    return out;
  }

  private block(nodes: SieveAstNode[], top: boolean): SieveCmd[] {
    const out: SieveCmd[] = [];
    let requireAllowed = top;
    let prev: string | null = null;
    for (const n of nodes) {
      const name = n.name.toLowerCase();
      if (name === 'require') {
        if (!requireAllowed) {
          this.ctx.error(n, 'require commands can only be placed at top level at the beginning of the file');
          continue;
        }
        this.require(n);
        prev = name;
        continue;
      }
      if (requireAllowed && top) this.checkRequired(n);
      requireAllowed = false;
      if ((name === 'elsif' || name === 'else') && prev !== 'if' && prev !== 'elsif') {
        this.ctx.error(n, `the ${name} command must follow an if or elseif command`);
      }
      const c = this.node(n, 'command');
      if (c) out.push(c);
      prev = name;
    }
    return out;
  }

  private requiresChecked = false;
  private extracttextAt: { line: number; column: number } | undefined;

  /** Dependencies between required extensions, once every require is read (Pigeonhole's order). */
  checkRequired(at: { line: number; column: number }): void {
    if (this.requiresChecked) return;
    this.requiresChecked = true;
    const r = this.ctx.required;
    const where = this.extracttextAt ?? at;
    if (r.has('extracttext') && !r.has('variables')) this.ctx.error(where, 'extracttext extension cannot be used without variables extension');
    else if (r.has('extracttext') && !r.has('foreverypart')) this.ctx.error(where, 'extracttext extension cannot be used without foreverypart extension');
  }

  private require(n: SieveAstNode): void {
    const arg = n.args[0];
    if (n.args.length !== 1 || n.tests.length || n.block || !arg || (arg.type !== 'string' && arg.type !== 'stringlist')) {
      this.ctx.error(n, n.args.length !== 1
        ? `the require command requires 1 positional argument(s), but ${n.args.length} is/are specified`
        : 'the require command expects a string list as argument 1 (capabilities), but a number was found');
      return;
    }
    const names = arg.type === 'string' ? [arg.value] : arg.values;
    for (const raw of names) {
      const ext = raw.toLowerCase();
      if (!this.ctx.available.has(ext)) {
        const core = (Object.hasOwn(SIEVE_COMMANDS, ext) && !SIEVE_COMMANDS[ext]!.ext) ? 'command' : (Object.hasOwn(SIEVE_TESTS, ext) && !SIEVE_TESTS[ext]!.ext) ? 'test' : undefined;
        this.ctx.error(n, core
          ? `require command: \`${raw}' is not known as a Sieve capability, but it is known as a Sieve ${core} that is always available`
          : `require command: unknown Sieve capability \`${raw}'`);
        continue;
      }
      this.ctx.required.add(ext);
      if (ext === 'extracttext') this.extracttextAt ??= n;
      // Pigeonhole: these imply the extension they extend.
      if (ext === 'spamtestplus') this.ctx.required.add('spamtest');
      if (ext === 'vacation-seconds') this.ctx.required.add('vacation');
    }
  }

  private has(ext: string | undefined): boolean {
    if (!ext) return true;
    if (ext.startsWith('comparator-')) return this.ctx.required.has(ext);
    return this.ctx.required.has(ext);
  }

  private unknownOnce(key: string, at: SieveAstNode | SieveArg, msg: string): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.ctx.error(at, msg);
  }

  node(n: SieveAstNode, kind: 'command' | 'test'): SieveCmd | null {
    const name = n.name.toLowerCase();
    const table = kind === 'command' ? SIEVE_COMMANDS : SIEVE_TESTS;
    const spec: CmdSpec | undefined = Object.hasOwn(table, name) ? table[name] : undefined;
    if (!spec || !this.has(spec.ext) || (name === 'require' && kind === 'command')) {
      const other = kind === 'command' ? SIEVE_TESTS : SIEVE_COMMANDS;
      const o = Object.hasOwn(other, name) ? other[name] : undefined;
      if (o && this.has(o.ext)) {
        this.ctx.error(n, `attempted to use ${kind === 'command' ? 'test' : 'command'} '${name}' as ${kind}`);
        return null;
      }
      this.unknownOnce(`${kind}:${name}`, n, `unknown ${kind} '${n.name}' (only reported once at first occurrence)`);
      return null;
    }
    const what = `the ${name} ${kind}`;
    const c: SieveCmd = { name, line: n.line, column: n.column, tags: new Map(), groups: new Map(), args: new Map(), tests: [], block: null };
    const positional: SieveArg[] = [];
    const seenIds = new Set<string>();
    const args = n.args;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a.type !== 'tag') { positional.push(a); continue; }
      const ts = Object.hasOwn(spec.tags, a.name) ? spec.tags[a.name] : undefined;
      if (!ts || !this.has(ts.ext)) {
        this.unknownOnce(`tag:${name}:${a.name}`, a, `unknown tagged argument ':${a.name}' for ${what} (reported only once at first occurrence)`);
        if (ts?.param) i++;
        continue;
      }
      const id = ts.id ?? a.name;
      if (ts.group && c.groups.has(ts.group)) {
        this.ctx.error(a, ts.group.startsWith('MOD')
          ? `modifiers :${c.groups.get(ts.group)} and :${a.name} specified for the ${name} command conflict having equal precedence`
          : ts.group === 'LOCATION'
            ? `include: cannot use location tags ':personal' and ':global' multiple times`
            : `encountered duplicate ${ts.group} argument (:${a.name}) for ${what}`);
        if (ts.param) i++;
        continue;
      }
      if (seenIds.has(id)) {
        this.ctx.error(a, `encountered duplicate :${a.name} argument for ${what}`);
        if (ts.param) i++;
        continue;
      }
      seenIds.add(id);
      if (ts.group) c.groups.set(ts.group, a.name);
      if (!ts.param) { c.tags.set(a.name, true); continue; }
      const p = args[i + 1];
      i++;
      const v = p ? this.value(p, ts.param) : undefined;
      if (v === undefined) {
        this.ctx.error(p ?? a, `the :${a.name} tag for ${what} requires ${typeName(ts.param)} as parameter, but ${p ? argTypeName(p) + ' was found' : 'no parameters were found'}`);
        continue;
      }
      c.tags.set(a.name, v);
    }
    this.positional(c, spec.pos, positional, what, n);
    // tests
    if (spec.tests === 'none' && n.tests.length) {
      // "keep\nfileinto ..." parses as keep with a test: Pigeonhole's wording for the typo.
      this.ctx.error(n, n.testList ? `${what} accepts no tests` : `missing semicolon ';' after ${name} ${kind}`);
      return null;
    } else if (spec.tests === 'one') {
      if (n.tests.length !== 1 || n.testList) {
        this.ctx.error(n, n.tests.length === 0 ? `${what} requires one sub-test, but none is specified` : `${what} requires one sub-test, but a list of tests is specified`);
      }
    } else if (spec.tests === 'list' && (!n.testList || n.tests.length === 0)) {
      this.ctx.error(n, `${what} requires a list of tests`);
    }
    // block (before the tests: Pigeonhole reports a missing block first and stops there)
    if (kind === 'command') {
      if (spec.block && !n.block) { this.ctx.error(n, `the ${name} command requires a command block, but it is missing`); return null; }
      if (!spec.block && n.block) this.ctx.error(n, `the ${name} command does not accept a command block`);
    }
    for (const t of n.tests) {
      const v = this.node(t, 'test');
      if (v) c.tests.push(v);
    }
    // if ihave "unknown": the block is never run and not checked (RFC 5463 §4).
    const t0 = c.tests[0];
    if ((name === 'if' || name === 'elsif') && t0?.name === 'ihave' && n.block) {
      const caps = (t0.args.get('capabilities') as string[] | undefined) ?? [];
      if (!caps.every((e) => this.ctx.available.has(e.toLowerCase()))) {
        checkCommand(c, this.ctx);
        c.block = [];
        return c;
      }
    }
    checkCommand(c, this.ctx);
    if (n.block) {
      const isLoop = name === 'foreverypart';
      if (isLoop) this.ctx.loops.push(typeof c.tags.get('name') === 'string' ? c.tags.get('name') as string : null);
      c.block = this.block(n.block, false);
      if (isLoop) this.ctx.loops.pop();
    }
    return c;
  }

  private positional(c: SieveCmd, specs: PosSpec[], given: SieveArg[], what: string, n: SieveAstNode): void {
    let use = specs;
    const optional = specs.filter((s) => s.optional);
    if (given.length < specs.length && given.length >= specs.length - optional.length) {
      use = specs.filter((s) => !s.optional || given.length === specs.length);
    }
    if (given.length === 0 && c.name === 'specialuse_exists') {
      this.ctx.error(n, 'the specialuse_exists test expects at least one argument, but none was found');
      return;
    }
    if (given.length !== use.length) {
      const req = specs.length - optional.length;
      this.ctx.error(given[use.length] ?? n, `${what} requires ${req} positional argument(s), but ${given.length} is/are specified`);
      return;
    }
    for (let i = 0; i < use.length; i++) {
      const s = use[i]!;
      const a = given[i]!;
      const v = this.value(a, s.type);
      if (v === undefined) {
        this.ctx.error(a, `${what} expects ${typeName(s.type)} as argument ${i + 1} (${s.name}), but ${argTypeName(a)} was found`);
        continue;
      }
      c.args.set(s.name, v);
    }
  }

  private value(a: SieveArg, want: SieveArgType): SieveValue | undefined {
    const dec = this.ctx.required.has('encoded-character') ? (s: string): string => {
      for (const m of s.matchAll(/\$\{unicode:([\s0-9a-fA-F]*)\}/gi)) {
        for (const p of m[1]!.trim().split(/\s+/).filter((x) => x !== '')) {
          const cp = parseInt(p, 16);
          if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            this.ctx.error(a, `invalid unicode character 0x${cp.toString(16).toUpperCase().padStart(8, '0')} in encoded character substitution`);
          }
        }
      }
      return decodeEncodedCharacters(s);
    } : (s: string) => s;
    if (want === 'number') return a.type === 'number' ? a.value : undefined;
    if (want === 'string') return a.type === 'string' ? dec(a.value) : undefined;
    if (a.type === 'string') return [dec(a.value)];
    if (a.type === 'stringlist') return a.values.map(dec);
    return undefined;
  }
}
