/**
 * mac-expand - expand `$name` forms in a text against a lookup (Postfix util/mac_parse.c and
 * util/mac_expand.c, 3.7): main.cf values (global/mail-conf.ts), postconf -x, local(8)'s
 * forward_path and command expansion, postscreen's DNSBL replies.
 *
 * Grammar: `$name`, `${name}`, `$(name)`, `$$` (a literal `$`), `${name?value}` (value when $name
 * is non-empty), `${name:value}` (value when $name is empty or undefined), `${name?{value}}`,
 * `${name:{value}}`, `${name?{v1}:{v2}}`, and logical expressions `${{text} op {text} ? {v1} :
 * {v2}}` with op `==`, `!=`, `<`, `<=`, `>`, `>=` (numbers) and `<level`, `<=level`, `>level`,
 * `>=level` (compatibility levels such as 3.6). Expansion is recursive unless asked otherwise
 * (MAC_EXP_FLAG_RECURSE); more than 100 nested macro calls is Postfix's "unreasonable macro call
 * nesting" (a definition loop such as `a = $b`, `b = $a`). Undefined names expand to nothing.
 * Errors are MacroError with Postfix's wording; the caller says where the text came from.
 */

/** At most this much of an offending text is quoted in an error message. */
const QUOTE_MAX = 100;
/** An offending text as configuration errors quote it: in double quotes, cut at QUOTE_MAX. */
export function quoteExcerpt(s: string): string {
  return `"${s.length > QUOTE_MAX ? s.slice(0, QUOTE_MAX) + '...' : s}"`;
}

/** A syntax or nesting error found while expanding (global/mail-conf.ts makes it a ConfigError). */
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
      if (level > 0) throw new MacroError(`truncated macro reference: ${quoteExcerpt(value)}`);
      expr = value.slice(i + 1, e);
      i = e + 1;
    } else {
      let e = i;
      while (e < value.length && /[A-Za-z0-9_]/.test(value[e]!)) e++;
      expr = value.slice(i, e);
      i = e;
    }
    if (expr === '') throw new MacroError(`empty macro name: ${quoteExcerpt(value)}`);
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
  if (level > 0) throw new MacroError(`unbalanced {} in attribute expression: ${quoteExcerpt(s.slice(i))}`);
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
  if (st.level++ > MAX_NESTING) throw new MacroError(`unreasonable macro call nesting: ${quoteExcerpt(expr)}`);
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
