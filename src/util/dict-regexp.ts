/**
 * dict-regexp - the pattern tables `regexp:/path` (regexp_table(5), POSIX regular expressions)
 * and `pcre:/path` (pcre_table(5)), after Postfix util/dict_regexp.c and dict_pcre.c.
 *
 * File syntax (one rule per logical line, comments and continuation lines as postmap):
 *
 *   /pattern/flags result          first matching rule wins; any delimiter character may be
 *   !/pattern/flags result         used instead of `/`; `!` negates the match
 *   /pattern1/!/pattern2/ result   matches pattern1 and not pattern2 (old syntax)
 *   if /pattern/flags              the rules up to the matching `endif` are tried only when the
 *   endif                          pattern matches (`if !/pattern/` when it does not); nestable
 *
 * Flags: regexp: i (toggle case-insensitive, on by default), x (toggle extended syntax, on by
 * default), m (toggle multi-line). pcre: i, m, s, x, A (anchored), E, U (ungreedy), X.
 * The result may use `$1`..`$9`, `${n}`, `$(n)`; `$$` is a literal `$`.
 *
 * A rule that is wrong is skipped with a warning naming the file and line, exactly as Postfix
 * does (`regexp map FILE, line N: ...: skipping this rule`), and the other rules keep working.
 * The key is never case-folded: the `i` flag decides (Postfix: DICT_FLAG_FOLD_FIX does not
 * apply to pattern tables).
 */
import type { Dict } from './dict.ts';
import { isSpace, logicalLines, readSourceFile, tablePath, warnFn, type DictOpenFlags } from './dict-source.ts';
import { translatePcre, translatePosix } from './dict-regexp-syntax.ts';

type Part = string | number;   // literal text or a $number

interface MatchRule { op: 'match'; line: number; re: RegExp; match: boolean; re2?: RegExp; match2: boolean; parts: Part[]; literal?: string }
interface IfRule { op: 'if'; line: number; re: RegExp; match: boolean; endif: number }
interface EndifRule { op: 'endif'; line: number }
type Rule = MatchRule | IfRule | EndifRule;

interface Pattern { regexp: string; match: boolean; flags: string }

class RuleError extends Error {}

/**
 * Parse `$n`, `${n}`, `$(n)`, `$$` the way Postfix's mac_parse() does: a bare `$` name runs over
 * letters, digits and `_`, so `$1x` is the (non-numeric) name "1x", an error.
 */
export function parseReplacement(text: string, mapDesc: string): Part[] {
  const parts: Part[] = [];
  let lit = '';
  for (let i = 0; i < text.length;) {
    const c = text[i]!;
    if (c !== '$') { lit += c; i++; continue; }
    const n = text[i + 1];
    if (n === '$') { lit += '$'; i += 2; continue; }
    let name: string;
    if (n === '{' || n === '(') {
      const close = n === '{' ? '}' : ')';
      const end = text.indexOf(close, i + 2);
      if (end < 0) throw new RuleError(`${mapDesc}: unbalanced {} or () in replacement text`);
      name = text.slice(i + 2, end);
      i = end + 1;
    } else {
      let j = i + 1;
      while (j < text.length && /[A-Za-z0-9_]/.test(text[j]!)) j++;
      name = text.slice(i + 1, j);
      i = j;
    }
    if (name === '') throw new RuleError(`${mapDesc}: empty macro name in replacement text`);
    if (!/^\d+$/.test(name)) throw new RuleError(`${mapDesc}: non-numeric replacement index "${name}"`);
    const num = Number(name);
    if (num < 1) throw new RuleError(`${mapDesc}: out-of-range replacement index "${name}"`);
    if (lit) { parts.push(lit); lit = ''; }
    parts.push(num);
  }
  if (lit) parts.push(lit);
  return parts;
}

export async function openRegexpDict(type: 'regexp' | 'pcre', name: string, flags: DictOpenFlags = {}): Promise<Dict> {
  const path = tablePath(name, flags);
  const warn = warnFn(flags);
  const text = readSourceFile(path);
  const rules: Rule[] = [];
  const ifStack: number[] = [];
  const desc = (line: number) => `${type} map ${path}, line ${line}`;

  /** Postfix dict_regexp_get_pat: negations, delimiter, options. Advances st.p. */
  const getPat = (line: number, st: { s: string; p: number }): Pattern => {
    let match = true;
    while (st.p < st.s.length && (st.s[st.p] === '!' || isSpace(st.s[st.p]))) {
      if (st.s[st.p] === '!') match = !match;
      st.p++;
    }
    if (st.p >= st.s.length) throw new RuleError(`${desc(line)}: no regexp: skipping this rule`);
    const delim = st.s[st.p++]!;
    const start = st.p;
    while (st.p < st.s.length) {
      const ch = st.s[st.p]!;
      if (ch === '\\') { if (st.p + 1 < st.s.length) st.p++; else break; }
      else if (ch === delim) break;
      st.p++;
    }
    if (st.p >= st.s.length) {
      throw new RuleError(`${desc(line)}: no closing regexp delimiter "${delim}": skipping this rule`);
    }
    const regexp = st.s.slice(start, st.p);
    st.p++;
    let f = '';
    while (st.p < st.s.length && !isSpace(st.s[st.p]) && st.s[st.p] !== '!') {
      const o = st.s[st.p]!;
      if (!(type === 'regexp' ? 'imx' : 'imsxAEUX').includes(o)) {
        throw new RuleError(`${desc(line)}: unknown regexp option "${o}": skipping this rule`);
      }
      f += o;
      st.p++;
    }
    return { regexp, match, flags: f };
  };

  const compile = (line: number, pat: Pattern): RegExp => {
    const toggles = (ch: string) => (pat.flags.split(ch).length - 1) % 2 === 1;
    try {
      const t = type === 'regexp'
        ? translatePosix(pat.regexp, { icase: !toggles('i'), newline: toggles('m'), extended: !toggles('x') })
        : translatePcre(pat.regexp, {
          icase: !toggles('i'), multiline: toggles('m'), dotall: toggles('s'), extended: toggles('x'),
          anchored: toggles('A'), ungreedy: toggles('U'),
        });
      return new RegExp(t.source, t.flags);
    } catch (err) {
      const msg = err instanceof Error ? err.message.replace(/^Invalid regular expression: /, '') : String(err);
      const what = type === 'pcre' ? 'error in regex' : 'bad regular expression';
      throw new RuleError(`${desc(line)}: ${what} "${pat.regexp}": ${msg}: skipping this rule`);
    }
  };

  const parseLine = (line: number, s: string): Rule | undefined => {
    const st = { s, p: 0 };
    if (!/^[A-Za-z0-9]/.test(s)) {
      const first = getPat(line, st);
      let second: Pattern | undefined;
      if (s[st.p] === '!') second = getPat(line, st);
      while (st.p < s.length && isSpace(s[st.p])) st.p++;
      const repl = s.slice(st.p);
      if (repl === '') warn(`${desc(line)}: no replacement text: using empty string`);
      let parts: Part[];
      try {
        parts = parseReplacement(repl, desc(line));
      } catch (err) {
        warn((err as Error).message);
        throw new RuleError(`${desc(line)}: bad replacement syntax: skipping this rule`);
      }
      const maxSub = parts.reduce<number>((m, x) => (typeof x === 'number' && x > m ? x : m), 0);
      if (maxSub > 0 && !first.match) {
        throw new RuleError(`${desc(line)}: $number found in negative match replacement text: skipping this rule`);
      }
      const re = compile(line, first);
      const groups = new RegExp(`(?:${re.source})|`, re.flags.replace('y', '')).exec('')!.length - 1;
      if (maxSub > groups) {
        throw new RuleError(`${desc(line)}: out of range replacement index "${maxSub}": skipping this rule`);
      }
      const rule: MatchRule = { op: 'match', line, re, match: first.match, match2: second?.match ?? true, parts };
      if (second) rule.re2 = compile(line, second);
      if (maxSub === 0) rule.literal = parts.join('');
      return rule;
    }
    if (/^if(?![A-Za-z0-9])/i.test(s)) {
      st.p = 2;
      while (st.p < s.length && isSpace(s[st.p])) st.p++;
      const pat = getPat(line, st);
      while (st.p < s.length && isSpace(s[st.p])) st.p++;
      if (st.p < s.length) {
        warn(`${desc(line)}: ignoring extra text after IF statement: "${s.slice(st.p)}"`);
        warn(`${desc(line)}: do not prepend whitespace to statements between IF and ENDIF`);
      }
      return { op: 'if', line, re: compile(line, pat), match: pat.match, endif: -1 };
    }
    if (/^endif(?![A-Za-z0-9])/i.test(s)) {
      if (ifStack.length === 0) throw new RuleError(`${desc(line)}: ignoring ENDIF without matching IF`);
      if (s.slice(5).trim() !== '') warn(`${desc(line)}: ignoring extra text after ENDIF`);
      return { op: 'endif', line };
    }
    throw new RuleError(`${desc(line)}: ignoring unrecognized request`);
  };

  for (const l of logicalLines(text, path, warn)) {
    let rule: Rule | undefined;
    try {
      rule = parseLine(l.line, l.text);
    } catch (err) {
      if (!(err instanceof RuleError)) throw err;
      warn(err.message);
      continue;
    }
    if (!rule) continue;
    if (rule.op === 'if') ifStack.push(rules.length);
    else if (rule.op === 'endif') (rules[ifStack.pop()!] as IfRule).endif = rules.length;
    rules.push(rule);
  }
  for (const i of ifStack.reverse()) warn(`${desc(rules[i]!.line)}: IF has no matching ENDIF`);

  const test = (re: RegExp, key: string): boolean => { re.lastIndex = 0; return re.test(key); };
  const lookupSync = (key: string): string | undefined => {
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (r.op === 'match') {
        if (r.literal !== undefined) {
          if (test(r.re, key) !== r.match) continue;
          if (r.re2 && test(r.re2, key) !== r.match2) continue;
          return r.literal;
        }
        r.re.lastIndex = 0;
        const m = r.re.exec(key);
        if (!m) continue;
        if (r.re2 && test(r.re2, key) !== r.match2) continue;
        let out = '';
        for (const part of r.parts) out += typeof part === 'number' ? (m[part] ?? '') : part;
        return out;
      }
      if (r.op === 'if') {
        if (test(r.re, key) === r.match) continue;
        if (r.endif < 0) return undefined;   // IF without ENDIF: nothing after it can match
        i = r.endif;
      }
    }
    return undefined;
  };
  return {
    type,
    name,
    lookup: async (key) => lookupSync(key),
    close: async () => {},
  };
}
