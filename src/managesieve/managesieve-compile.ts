/**
 * managesieve-compile - the full compile check of PUTSCRIPT, CHECKSCRIPT and SETACTIVE
 * (RFC 5804 §2.6, §2.12) on lib-sieve's compiler, with the report Pigeonhole's managesieve
 * sends (its strbuf error handler): one line per diagnostic, the script name first for
 * PUTSCRIPT and none for CHECKSCRIPT, then the verdict, every line ended by CRLF:
 *
 *   NO {117}
 *   bad: line 1: error: unknown command 'foo' (only reported once at first occurrence).
 *   bad: error: validation failed.
 *
 *   OK (WARNINGS) {61}
 *   w: line 1: warning: specified date part `foo' is not known.
 *
 * "parse failed" when the script is not valid Sieve grammar, "validation failed" otherwise.
 * At most managesieve_max_compile_errors errors are listed (Pigeonhole: 5).
 */
import { compileSieve, type SieveCompileError } from '../lib-sieve/sieve-compile.ts';
import { parseSieve } from '../lib-sieve/sieve-parser.ts';
import { SieveSyntaxError } from '../lib-sieve/sieve-lexer.ts';

export { SIEVE_CAPABILITY, SIEVE_NOTIFY_METHODS, sieveExtensions } from '../lib-sieve/sieve-compile.ts';

export type ScriptCheck =
  | { ok: true; warnings?: string }
  | { ok: false; report: string };

function line(prefix: string, d: SieveCompileError, kind: 'error' | 'warning'): string {
  const msg = d.message.endsWith('.') ? d.message : `${d.message}.`;
  return `${prefix}${d.line > 0 ? `line ${d.line}: ` : ''}${kind}: ${msg}\r\n`;
}

/** Compile `text`; `name` ('' for CHECKSCRIPT) prefixes every line as Pigeonhole does. */
export function checkScript(text: string, name: string, o: { extensions: ReadonlySet<string>; maxScriptSize: number; maxErrors: number }): ScriptCheck {
  const prefix = name ? `${name}: ` : '';
  const r = compileSieve(text, { extensions: o.extensions, maxScriptSize: o.maxScriptSize });
  if (r.ok) {
    if (r.warnings.length === 0) return { ok: true };
    return { ok: true, warnings: r.warnings.map((w) => line(prefix, w, 'warning')).join('') };
  }
  let parseFailed = false;
  if (r.errors.length === 1) {
    try {
      parseSieve(text);
    } catch (e) {
      parseFailed = e instanceof SieveSyntaxError;
    }
  }
  const all = [...r.errors.slice(0, Math.max(1, o.maxErrors)).map((d) => ({ d, k: 'error' as const })), ...r.warnings.map((d) => ({ d, k: 'warning' as const }))]
    .sort((a, b) => a.d.line - b.d.line);
  const report = all.map(({ d, k }) => line(prefix, d, k)).join('') + `${prefix}error: ${parseFailed ? 'parse' : 'validation'} failed.\r\n`;
  return { ok: false, report };
}
