/**
 * mail-conf - main.cf: the parser, `$name` expansion, and typed access to parameter values.
 *
 * Syntax, as Postfix 3.7 reads it (postconf(5); util/readlline.c, util/split_nameval.c,
 * util/dict.c dict_load_fp):
 *  - Empty lines, white-space-only lines and lines whose first non-white-space character is `#`
 *    are ignored, also in the middle of a continued entry. A `#` anywhere else is part of the value
 *    (`myorigin = q # x` has the value `q # x`).
 *  - A line that starts with white space continues the previous logical line; the pieces are
 *    joined as they are (no separator added: the continuation's own leading white space remains).
 *    A logical line that starts with white space (nothing to continue) is ignored with Postfix's
 *    warning "logical line must not start with whitespace".
 *  - `name = value`, white space around `=` optional, value trimmed; later entries override earlier
 *    ones. Errors: "missing attribute name", "missing '=' after attribute name".
 *  - CR is white space, so CRLF files read like LF files.
 *
 * Expansion (util/mac_parse.c, util/mac_expand.c, Postfix 3.7): `$name`, `${name}`, `$(name)`,
 * `$$` (a literal `$`), `${name?value}` (value when $name is non-empty), `${name:value}` (value when
 * $name is empty or undefined), `${name?{value}}`, `${name:{value}}`, `${name?{v1}:{v2}}`, and
 * logical expressions `${{text} op {text} ? {v1} : {v2}}` with op `==`, `!=`, `<`, `<=`, `>`, `>=`
 * (numbers) and `<level`, `<=level`, `>level`, `>=level` (compatibility levels such as 3.6).
 * Expansion is recursive; more than 100 nested macro calls is Postfix's "unreasonable macro call
 * nesting" (a definition loop such as `a = $b`, `b = $a`). Undefined names expand to nothing.
 *
 * Deviations (stricter, see docs/main-cf.md): a NUL byte is a ConfigError naming the line (Postfix
 * silently truncates the value there); a macro syntax error is a ConfigError naming the parameter
 * and its line rather than Postfix's "fatal: macro processing error".
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './config-error.ts';
import { COMPUTED, paramSpec, RAW_PARAMS, transportParamDefault, type DefaultContext } from './mail-params.ts';

export interface MainCfEntry { name: string; value: string; line: number }
export interface MainCfParse { entries: MainCfEntry[]; warnings: string[] }

const SPACE = new Set([' ', '\t', '\n', '\r', '\v', '\f']);
const isSpace = (c: string | undefined): boolean => c !== undefined && SPACE.has(c);

/** At most this much of an offending line is quoted in an error message. */
const QUOTE_MAX = 100;
function quote(s: string): string {
  return `"${s.length > QUOTE_MAX ? s.slice(0, QUOTE_MAX) + '...' : s}"`;
}

/**
 * Split one logical line into name and value like Postfix's split_nameval(); returns an error
 * text (Postfix's wording) or the pair.
 */
export function splitNameValue(line: string): { name: string; value: string } | { error: string } {
  let i = 0;
  while (isSpace(line[i])) i++;
  if (i >= line.length || line[i] === '=') return { error: 'missing attribute name' };
  const start = i;
  while (i < line.length && !isSpace(line[i]) && line[i] !== '=') i++;
  const name = line.slice(start, i);
  while (isSpace(line[i])) i++;
  if (line[i] !== '=') return { error: "missing '=' after attribute name" };
  i++;
  while (isSpace(line[i])) i++;
  let end = line.length;
  while (end > i && isSpace(line[end - 1])) end--;
  return { name, value: line.slice(i, end) };
}

/** Parse main.cf text into entries in file order (duplicates kept; the last one wins). */
export function parseMainCf(text: string, file = 'main.cf'): MainCfParse {
  const entries: MainCfEntry[] = [];
  const warnings: string[] = [];
  let pieces: string[] = [];
  let first = 0;
  const flush = (): void => {
    if (pieces.length === 0) return;
    const logical = pieces.join('');
    pieces = [];
    if (isSpace(logical[0])) {
      warnings.push(`${file}: logical line must not start with whitespace: "${logical.slice(0, 30)}${logical.length > 30 ? '...' : ''}"`);
      return;
    }
    const r = splitNameValue(logical);
    if ('error' in r) throw new ConfigError(file, first, `${r.error}: ${quote(logical)}`);
    entries.push({ name: r.name, value: r.value, line: first });
  };
  let pos = 0;
  let lineno = 0;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    const line = text.slice(pos, nl);
    pos = nl + 1;
    lineno++;
    if (line.includes('\0')) throw new ConfigError(file, lineno, 'NUL character in line (main.cf is a text file)');
    let j = 0;
    while (j < line.length && isSpace(line[j])) j++;
    if (j === line.length || line[j] === '#') continue; // blank or comment: ignored anywhere
    if (j === 0) { flush(); first = lineno; }
    else if (pieces.length === 0) first = lineno;
    pieces.push(line);
  }
  flush();
  return { entries, warnings };
}

// ---------------------------------------------------------------------------------------------
// Macro expansion.

/** A syntax or nesting error found while expanding; MainConfig turns it into a ConfigError. */
export class MacroError extends Error {
  override name = 'MacroError';
}

export type MacroLookup = (name: string) => string | undefined;

export interface ExpandOptions {
  /** Expand looked-up values again (Postfix MAC_EXP_FLAG_RECURSE); default true. */
  recurse?: boolean;
  /** Called with each name referenced, including in branches not taken (MAC_EXP_FLAG_SCAN). */
  onReference?: (name: string) => void;
}

const MAX_NESTING = 100;
const WS = ' \t\r\n';

interface ExpState { lookup: MacroLookup; recurse: boolean; scan: boolean; onRef?: (n: string) => void; level: number; out: string[] }

/** Expand `$name` forms in `pattern` against `lookup` (see the header for the grammar). */
export function macExpand(pattern: string, lookup: MacroLookup, opts: ExpandOptions = {}): string {
  const st: ExpState = { lookup, recurse: opts.recurse ?? true, scan: false, onRef: opts.onReference, level: 0, out: [] };
  macParse(pattern, st);
  return st.out.join('');
}

/** Visit every `$name` reference in `pattern` (both branches of conditionals), without expanding. */
export function macScan(pattern: string, onReference: (name: string) => void): void {
  const st: ExpState = { lookup: () => undefined, recurse: false, scan: true, onRef: onReference, level: 0, out: [] };
  macParse(pattern, st);
}

/** mac_parse(): split into literal text and macro expressions. */
function macParse(value: string, st: ExpState): void {
  let lit = '';
  let i = 0;
  while (i < value.length) {
    const dollar = value.indexOf('$', i);
    if (dollar < 0) { lit += value.slice(i); break; }
    lit += value.slice(i, dollar);
    i = dollar;
    if (value[i + 1] === '$') { lit += '$'; i += 2; continue; }
    if (lit) { if (!st.scan) st.out.push(lit); lit = ''; }
    i++;
    let expr: string;
    const open = value[i];
    if (open === '{' || open === '(') {
      const close = open === '{' ? '}' : ')';
      let level = 1;
      let e = i + 1;
      for (; e < value.length; e++) {
        if (value[e] === open) level++;
        else if (value[e] === close && --level === 0) break;
      }
      if (level > 0) throw new MacroError(`truncated macro reference: ${quote(value)}`);
      expr = value.slice(i + 1, e);
      i = e + 1;
    } else {
      let e = i;
      while (e < value.length && /[A-Za-z0-9_]/.test(value[e]!)) e++;
      expr = value.slice(i, e);
      i = e;
    }
    if (expr === '') throw new MacroError(`empty macro name: ${quote(value)}`);
    expandExpr(expr, st);
  }
  if (lit && !st.scan) st.out.push(lit);
}

function skipWs(s: string, i: number): number {
  while (i < s.length && WS.includes(s[i]!)) i++;
  return i;
}

/** Extract a balanced `{...}` payload starting at s[i] === '{'; returns payload and index after trailing white space. */
function curly(s: string, i: number): { payload: string; next: number } {
  let level = 1;
  let e = i + 1;
  for (; e < s.length; e++) {
    if (s[e] === '{') level++;
    else if (s[e] === '}' && --level === 0) break;
  }
  if (level > 0) throw new MacroError(`unbalanced {} in attribute expression: ${quote(s.slice(i))}`);
  return { payload: s.slice(i + 1, e), next: skipWs(s, e + 1) };
}

/** Compatibility level "3.6.1" → comparable triple (Postfix compat_level_from_string). */
function compatLevel(text: string): number[] {
  if (!/^\d+(\.\d+){0,2}$/.test(text)) throw new MacroError(`invalid compatibility level: "${text}"`);
  const p = text.split('.').map(Number);
  return [p[0]!, p[1] ?? 0, p[2] ?? 0];
}

function cmpTriple(a: number[], b: number[]): number {
  for (let k = 0; k < 3; k++) if (a[k] !== b[k]) return a[k]! - b[k]!;
  return 0;
}

function number(text: string): number {
  if (!/^-?\d+$/.test(text.trim())) throw new MacroError(`"${text}" is not a number`);
  return Number(text);
}

const OPS = ['<=level', '>=level', '<level', '>level', '==', '!=', '<=', '>=', '<', '>'];

function evalLogical(s: string, i: number, st: ExpState): { value: string; next: number } {
  const left = curly(s, i);
  let j = left.next;
  const op = OPS.find((o) => s.startsWith(o, j));
  if (!op) throw new MacroError(`"==" or "!=" expected at: "...${left.payload}}>>>${s.slice(j, j + 20)}"`);
  j = skipWs(s, j + op.length);
  if (s[j] !== '{') throw new MacroError(`"{expression}" expected at: "...{${left.payload}} ${op}>>>${s.slice(j, j + 20)}"`);
  const right = curly(s, j);
  const sub = (t: string): string => {
    const inner: ExpState = { ...st, out: [] };
    macParse(t, inner);
    return inner.out.join('');
  };
  const l = sub(left.payload);
  const r = sub(right.payload);
  let result = false;
  if (!st.scan) {
    switch (op) {
      case '==': result = l === r; break;
      case '!=': result = l !== r; break;
      case '<': result = number(l) < number(r); break;
      case '<=': result = number(l) <= number(r); break;
      case '>': result = number(l) > number(r); break;
      case '>=': result = number(l) >= number(r); break;
      case '<level': result = cmpTriple(compatLevel(l), compatLevel(r)) < 0; break;
      case '<=level': result = cmpTriple(compatLevel(l), compatLevel(r)) <= 0; break;
      case '>level': result = cmpTriple(compatLevel(l), compatLevel(r)) > 0; break;
      case '>=level': result = cmpTriple(compatLevel(l), compatLevel(r)) >= 0; break;
    }
  }
  return { value: result ? 'true' : '', next: right.next };
}

/** mac_expand_callback() for one `${...}` / `$name` expression. */
function expandExpr(expr: string, st: ExpState): void {
  if (st.level++ > MAX_NESTING) throw new MacroError(`unreasonable macro call nesting: ${quote(expr)}`);
  let lookup: string | undefined;
  let cp: number;
  let ch: string | undefined;
  const k = skipWs(expr, 0);
  if (expr[k] === '{') {
    const r = evalLogical(expr, k, st);
    lookup = r.value;
    cp = r.next;
    ch = expr[cp];
    if (ch !== undefined) {
      if (ch !== '?' && ch !== ':') throw new MacroError(`"?" or ":" expected at: "...}>>>${expr.slice(cp, cp + 20)}"`);
      cp++;
    }
  } else {
    let e = 0;
    while (e < expr.length && expr[e] !== '?' && expr[e] !== ':') {
      if (!/[A-Za-z0-9_]/.test(expr[e]!)) {
        throw new MacroError(`attribute name syntax error at: "...${expr.slice(0, e)}>>>${expr.slice(e, e + 20)}"`);
      }
      e++;
    }
    const name = expr.slice(0, e);
    ch = expr[e];
    cp = e + 1;
    st.onRef?.(name);
    lookup = st.scan ? undefined : st.lookup(name);
  }
  const truthy = lookup !== undefined && lookup !== '';
  const operand = (): string => {
    const j = skipWs(expr, cp);
    if (expr[j] === '{') { const c = curly(expr, j); cp = c.next; return c.payload; }
    const rest = expr.slice(cp);
    cp = expr.length;
    return rest;
  };
  if (ch === '?') {
    const t = operand();
    if (truthy || st.scan) macParse(t, st);
    if (cp < expr.length) {
      if (expr[cp] !== ':') throw new MacroError(`":" expected at: "...${t}}>>>${expr.slice(cp, cp + 20)}"`);
      cp++;
      ch = ':';
      const f = operand();
      if (!truthy || st.scan) macParse(f, st);
      if (cp < expr.length) throw new MacroError(`unexpected input at: "...${f}}>>>${expr.slice(cp, cp + 20)}"`);
    }
  } else if (ch === ':') {
    const f = operand();
    if (!truthy || st.scan) macParse(f, st);
    if (cp < expr.length) throw new MacroError(`unexpected input at: "...${f}}>>>${expr.slice(cp, cp + 20)}"`);
  } else if (!st.scan && lookup) {
    if (st.recurse) macParse(lookup, st);
    else st.out.push(lookup);
  }
  st.level--;
}

// ---------------------------------------------------------------------------------------------
// Postfix list and value syntax.

/**
 * Split a list value on commas and white space (Postfix mystrtokq with CHARS_COMMA_SP);
 * a `{...}` group (with nested braces) stays inside one item, braces included.
 */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  for (const c of value) {
    if (depth === 0 && (c === ',' || isSpace(c))) {
      if (cur) out.push(cur);
      cur = '';
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}' && depth > 0) depth--;
    cur += c;
  }
  if (cur) out.push(cur);
  return out;
}

const TIME_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

// ---------------------------------------------------------------------------------------------

interface Setting { value: string; line: number }

/** A loaded main.cf plus Postfix's defaults; immutable (withOverrides() makes a new one). */
export class MainConfig {
  readonly configDir: string;
  /** Path of the main.cf these settings came from (for error messages). */
  readonly file: string;
  /** Parser warnings (e.g. "logical line must not start with whitespace"). */
  readonly warnings: readonly string[];
  private readonly settings: ReadonlyMap<string, Setting>;
  private readonly order: readonly string[];
  private readonly overrides: ReadonlyMap<string, string>;
  private readonly cache = new Map<string, string>();
  private readonly inProgress = new Set<string>();

  private constructor(file: string, configDir: string, entries: readonly MainCfEntry[], warnings: readonly string[], overrides: ReadonlyMap<string, string>) {
    this.file = file;
    this.configDir = configDir;
    this.warnings = warnings;
    const settings = new Map<string, Setting>();
    const order: string[] = [];
    for (const e of entries) {
      if (!settings.has(e.name)) order.push(e.name);
      settings.set(e.name, { value: e.value, line: e.line });
    }
    this.settings = settings;
    this.order = order;
    this.overrides = overrides;
  }

  /** Read CONFIG_DIR/main.cf; a missing file means all defaults. Throws ConfigError. */
  static load(configDir: string): MainConfig {
    const file = join(configDir, 'main.cf');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return MainConfig.parse('', file, configDir);
      throw new ConfigError(file, 0, `cannot read: ${(err as Error).message}`);
    }
    return MainConfig.parse(text, file, configDir);
  }

  /** Parse main.cf text; `configDir` defaults to the directory of `file`. */
  static parse(text: string, file = 'main.cf', configDir?: string): MainConfig {
    const { entries, warnings } = parseMainCf(text, file);
    const dir = configDir ?? (file.includes('/') ? file.slice(0, file.lastIndexOf('/')) || '/' : '.');
    return new MainConfig(file, dir, entries, warnings, new Map());
  }

  /** master.cf `-o name=value` settings on top of this configuration (values may use $name). */
  withOverrides(o: Record<string, string>): MainConfig {
    const merged = new Map(this.overrides);
    for (const [k, v] of Object.entries(o)) merged.set(k, v);
    const entries = [...this.settings].map(([name, s]) => ({ name, value: s.value, line: s.line }));
    const byName = new Map(entries.map((e) => [e.name, e]));
    const ordered = this.order.map((n) => byName.get(n)!);
    return new MainConfig(this.file, this.configDir, ordered, this.warnings, merged);
  }

  /** The value as written (override, else main.cf), unexpanded; undefined when not set. */
  raw(name: string): string | undefined {
    return this.overrides.get(name) ?? this.settings.get(name)?.value;
  }

  isSet(name: string): boolean {
    return this.overrides.has(name) || this.settings.has(name);
  }

  /** main.cf line of a setting, 0 when it is not set there. */
  lineOf(name: string): number {
    return this.settings.get(name)?.line ?? 0;
  }

  /** Names set in main.cf, in file order (postconf -n). */
  explicitNames(): string[] {
    return [...this.order];
  }

  /**
   * The unexpanded default (postconf -d); undefined for names Postfix does not know. Any
   * `<transport>_destination_concurrency_limit`-style name gets its `$default_...` default.
   */
  defaultRaw(name: string): string | undefined {
    const fn = COMPUTED[name];
    if (fn) return fn(this.defaultContext());
    return paramSpec(name)?.default ?? transportParamDefault(name);
  }

  /** The unexpanded effective value: setting, else default; undefined for unknown, unset names. */
  rawOrDefault(name: string): string | undefined {
    return this.raw(name) ?? this.defaultRaw(name);
  }

  /**
   * Fully expanded value; the default when unset; '' for unknown names. Raw parameters
   * (RAW_PARAMS: forward_path, mailbox_command, ...) come back unexpanded, as Postfix keeps them.
   */
  get(name: string): string {
    const hit = this.cache.get(name);
    if (hit !== undefined) return hit;
    // A computed default may ask for another parameter that refers back (mydomain = $myhostname
    // with myhostname's default built from mydomain): Postfix's nesting error, not a stack overflow.
    if (this.inProgress.has(name)) {
      throw new ConfigError(this.file, this.lineOf(name), `parameter ${name}: unreasonable macro call nesting: "${name}"`);
    }
    this.inProgress.add(name);
    try {
      const v = this.rawOrDefault(name);
      const out = v === undefined ? '' : RAW_PARAMS.has(name) ? v : this.expandFor(name, v);
      this.cache.set(name, out);
      return out;
    } finally {
      this.inProgress.delete(name);
    }
  }

  /** Expand `$name` forms in arbitrary text against this configuration. */
  expand(text: string): string {
    return this.expandFor(undefined, text);
  }

  private expandFor(name: string | undefined, text: string): string {
    if (!text.includes('$')) return text;
    try {
      return macExpand(text, (n) => this.rawOrDefault(n));
    } catch (err) {
      if (!(err instanceof MacroError)) throw err;
      const where = name === undefined ? '' : `parameter ${name}: `;
      throw new ConfigError(this.file, name === undefined ? 0 : this.lineOf(name), `${where}${err.message}`);
    }
  }

  private defaultContext(): DefaultContext {
    return {
      configDir: this.configDir,
      get: (n) => this.get(n),
      setting: (n) => (this.isSet(n) ? this.get(n) : undefined),
    };
  }

  /** get() split into items as Postfix splits lists (commas and/or white space, `{...}` kept whole). */
  list(name: string): string[] {
    return splitList(this.get(name));
  }

  private bad(name: string, what: string): never {
    throw new ConfigError(this.file, this.lineOf(name), `bad ${what} configuration: ${name} = ${this.get(name)}`);
  }

  /** yes/no (case-insensitive, as Postfix's get_mail_conf_bool). */
  bool(name: string): boolean {
    const v = this.get(name).trim().toLowerCase();
    if (v === 'yes') return true;
    if (v === 'no') return false;
    return this.bad(name, 'boolean');
  }

  int(name: string): number {
    const v = this.get(name).trim();
    if (!/^-?\d+$/.test(v)) this.bad(name, 'numerical');
    return Number(v);
  }

  /** Seconds; a bare number uses the parameter's default unit (Postfix conv_time). */
  time(name: string): number {
    const v = this.get(name).trim();
    const m = /^(\d+)([smhdw]?)$/i.exec(v);
    if (!m) this.bad(name, 'time');
    const unit = (m[2] || paramSpec(name)?.unit || 's').toLowerCase();
    return Number(m[1]) * TIME_UNITS[unit]!;
  }

  /** Bytes. */
  size(name: string): number {
    const v = this.get(name).trim();
    if (!/^\d+$/.test(v)) this.bad(name, 'numerical');
    return Number(v);
  }
}
