/**
 * sieve-compile - the one entry point that turns Sieve script text into a checked script
 * (RFC 5228), used by delivery (sieve-run.ts), ManageSieve's PUTSCRIPT/CHECKSCRIPT and
 * `postern sieve compile`. A stable API: its signature does not change.
 *
 * SUMMARY
 *   const r = compileSieve(text, { extensions, maxScriptSize });
 *   if (r.ok) run(r.script) else console.error(formatSieveErrors('name', r.errors));
 *
 *   SIEVE_CAPABILITY            the SIEVE capability string Pigeonhole (Dovecot 2.3) announces by
 *                               default: "fileinto reject envelope encoded-character vacation ..."
 *   SIEVE_DEFAULT_EXTENSIONS    the same names as a list, in that order
 *   SIEVE_SUPPORTED_EXTENSIONS  every extension this implementation knows (the defaults, then
 *                               the ones Pigeonhole also leaves off by default: vacation-seconds,
 *                               spamtest, spamtestplus, virustest, editheader, special-use, ereject)
 *   SIEVE_NOTIFY_METHODS        ["mailto"] (the NOTIFY capability)
 *   sieveExtensions(setting)    Pigeonhole's `sieve_extensions` syntax: "+editheader -regex" adds to
 *                               and removes from the defaults; names without +/- replace them
 *   formatSieveErrors(name, errors, warnings?)  the text sievec prints:
 *                               "NAME: line 4: error: unknown command 'foo' (...)."
 *
 * DESCRIPTION
 *   compileSieve() lexes, parses (sieve-parser.ts: the first syntax error ends the parse) and
 *   validates (sieve-validate.ts: every error is reported) the script. Errors carry 1-based line
 *   and column; the message has no trailing period and no "error:" prefix (formatSieveErrors
 *   adds both, as sievec prints them). Warnings (unknown date part, protected header) never make
 *   a script fail. A script larger than maxScriptSize bytes (sieve_max_script_size, default 1M)
 *   is refused before it is parsed.
 *
 *   include (RFC 6609) is not resolved here: script.includes lists the targets and the loader
 *   (sieve-script.ts) compiles them with the same options.
 */
import { SieveSyntaxError } from './sieve-lexer.ts';
import { parseSieve } from './sieve-parser.ts';
import { SieveValidator, type SieveCmd, type SieveDiagnostic } from './sieve-validate.ts';

export type { SieveCmd, SieveValue, SieveDiagnostic } from './sieve-validate.ts';

/** Pigeonhole's default SIEVE capability, in its order. */
export const SIEVE_CAPABILITY =
  'fileinto reject envelope encoded-character vacation subaddress comparator-i;ascii-numeric relational regex imap4flags copy include variables body enotify environment mailbox date index ihave duplicate mime foreverypart extracttext';

export const SIEVE_DEFAULT_EXTENSIONS: readonly string[] = SIEVE_CAPABILITY.split(' ');

export const SIEVE_SUPPORTED_EXTENSIONS: readonly string[] = [
  ...SIEVE_DEFAULT_EXTENSIONS,
  'vacation-seconds', 'spamtest', 'spamtestplus', 'virustest', 'editheader', 'special-use', 'ereject', 'vnd.dovecot.debug',
];

/** Always there, never announced (RFC 5228 §2.7.3; Pigeonhole's core comparators). */
const IMPLICIT = ['comparator-i;octet', 'comparator-i;ascii-casemap'];

export const SIEVE_NOTIFY_METHODS: readonly string[] = ['mailto'];

export const SIEVE_DEFAULT_MAX_SCRIPT_SIZE = 1024 * 1024;

export interface SieveCompileOptions {
  /** The extensions a script may require (default: SIEVE_DEFAULT_EXTENSIONS). */
  extensions?: ReadonlySet<string>;
  /** sieve_max_script_size in bytes (default 1M; 0: no limit). */
  maxScriptSize?: number;
}

export interface SieveCompileError { line: number; column: number; message: string }

export interface SieveInclude { location: 'personal' | 'global'; name: string; once: boolean; optional: boolean }

export interface CompiledScript {
  /** The checked commands, top level. */
  commands: SieveCmd[];
  /** The extensions the script requires (lower case). */
  required: ReadonlySet<string>;
  /** include targets, in script order. */
  includes: SieveInclude[];
  /** Script size in bytes. */
  size: number;
}

export type SieveCompileResult =
  | { ok: true; script: CompiledScript; warnings: SieveCompileError[] }
  | { ok: false; errors: SieveCompileError[]; warnings: SieveCompileError[] };

/** Pigeonhole's sieve_extensions: "+name" adds, "-name" removes, bare names replace the defaults. */
export function sieveExtensions(setting?: string, base: readonly string[] = SIEVE_DEFAULT_EXTENSIONS): Set<string> {
  if (setting === undefined || setting.trim() === '') return new Set(base);
  const words = setting.trim().split(/\s+/);
  const out = words.some((w) => !w.startsWith('+') && !w.startsWith('-')) ? new Set<string>() : new Set(base);
  for (const w of words) {
    const name = w.replace(/^[+-]/, '').toLowerCase();
    if (!SIEVE_SUPPORTED_EXTENSIONS.includes(name)) continue;
    if (w.startsWith('-')) out.delete(name); else out.add(name);
  }
  return out;
}

export function compileSieve(text: string, opts: SieveCompileOptions = {}): SieveCompileResult {
  const max = opts.maxScriptSize ?? SIEVE_DEFAULT_MAX_SCRIPT_SIZE;
  const size = Buffer.byteLength(text, 'utf8');
  if (max > 0 && size > max) {
    return { ok: false, errors: [{ line: 0, column: 0, message: `script is too large (max ${max} bytes)` }], warnings: [] };
  }
  if (text.includes('\0')) {
    const before = text.slice(0, text.indexOf('\0'));
    const line = before.split('\n').length;
    return { ok: false, errors: [{ line, column: before.length - before.lastIndexOf('\n'), message: 'NUL character in script' }], warnings: [] };
  }
  let ast;
  try {
    ast = parseSieve(text);
  } catch (e) {
    if (e instanceof SieveSyntaxError) return { ok: false, errors: [{ line: e.line, column: e.column, message: e.message }], warnings: [] };
    throw e;
  }
  const available = new Set([...(opts.extensions ?? SIEVE_DEFAULT_EXTENSIONS), ...IMPLICIT]);
  const v = new SieveValidator(available);
  const commands = v.validate(ast);
  const { errors, warnings, required, includes } = v.ctx;
  if (errors.length) return { ok: false, errors, warnings };
  return { ok: true, script: { commands, required, includes, size }, warnings };
}

/** sievec's output: "NAME: line L: error: MESSAGE." per diagnostic (line 0: no line part). */
export function formatSieveErrors(name: string, errors: readonly SieveDiagnostic[], warnings: readonly SieveDiagnostic[] = []): string {
  const fmt = (d: SieveDiagnostic, kind: string): string => `${name}: ${d.line > 0 ? `line ${d.line}: ` : ''}${kind}: ${d.message}.`;
  // By line; on one line the warnings first (they come from the earlier checks, as in sievec).
  const all = [...warnings.map((d) => ({ d, k: 'warning' })), ...errors.map((d) => ({ d, k: 'error' }))]
    .sort((a, b) => a.d.line - b.d.line);
  return all.map(({ d, k }) => fmt(d, k)).join('\n');
}
