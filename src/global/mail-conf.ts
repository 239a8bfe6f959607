/**
 * mail-conf - main.cf: the parser and typed access to parameter values; `$name` expansion is
 * util/mac-expand.ts, the parameters and their defaults global/mail-params.ts.
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
 * Expansion: values are expanded by util/mac-expand.ts (Postfix util/mac_expand.c) against this
 * configuration, settings first, then defaults; raw parameters (RAW_PARAMS) are not expanded.
 *
 * Deviations (stricter, see docs/main-cf.md): a NUL byte is a ConfigError naming the line (Postfix
 * silently truncates the value there); a macro syntax error is a ConfigError naming the parameter
 * and its line rather than Postfix's "fatal: macro processing error".
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './config-error.ts';
import { macExpand, MacroError, quoteExcerpt } from '../util/mac-expand.ts';
import type { DictOpenFlags } from '../util/dict-source.ts';
import { COMPUTED, type DefaultContext } from './mail-params-computed.ts';
import { paramSpec, transportParamDefault } from './mail-params-service.ts';
import { RAW_PARAMS } from './mail-params.ts';

export interface MainCfEntry { name: string; value: string; line: number }
export interface MainCfParse { entries: MainCfEntry[]; warnings: string[] }

const SPACE = new Set([' ', '\t', '\n', '\r', '\v', '\f']);
const isSpace = (c: string | undefined): boolean => c !== undefined && SPACE.has(c);

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
    if ('error' in r) throw new ConfigError(file, first, `${r.error}: ${quoteExcerpt(logical)}`);
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

/** Makes the extra table types of a configuration (see MainConfig.withDictTypes). */
export type DictTypesFactory = (config: MainConfig) => NonNullable<DictOpenFlags['types']>;

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
  /** Table types beyond util/'s for this configuration's tables (withDictTypes). */
  private readonly typesFor: DictTypesFactory | undefined;
  private types: DictOpenFlags['types'];

  private constructor(file: string, configDir: string, entries: readonly MainCfEntry[], warnings: readonly string[], overrides: ReadonlyMap<string, string>, typesFor?: DictTypesFactory) {
    this.typesFor = typesFor;
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
    return new MainConfig(this.file, this.configDir, ordered, this.warnings, merged, this.typesFor);
  }

  /**
   * The same settings, whose tables may also use the table types `f` makes (DictOpenFlags.types:
   * `auth:` from lib-auth). `f` is called once per configuration, withOverrides() included, so
   * the types see the service's own settings. master/ and cli/ call this; daemons never do.
   */
  withDictTypes(f: DictTypesFactory): MainConfig {
    const entries = [...this.settings].map(([name, s]) => ({ name, value: s.value, line: s.line }));
    const byName = new Map(entries.map((e) => [e.name, e]));
    const ordered = this.order.map((n) => byName.get(n)!);
    return new MainConfig(this.file, this.configDir, ordered, this.warnings, this.overrides, f);
  }

  /** The flags this configuration's tables are opened with (Maps.open, dictOpen): configDir and the table types. */
  get dictFlags(): { configDir: string; types?: DictOpenFlags['types'] } {
    if (this.typesFor && !this.types) this.types = this.typesFor(this);
    return this.types ? { configDir: this.configDir, types: this.types } : { configDir: this.configDir };
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
