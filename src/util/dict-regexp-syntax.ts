/**
 * dict-regexp-syntax - translate the pattern languages of regexp_table(5) (POSIX extended or
 * basic regular expressions, regcomp(3)) and pcre_table(5) (PCRE) into JavaScript RegExp.
 *
 * Most syntax is shared and passes through. What differs, and what we do:
 *
 *  POSIX (regexp:)
 *   - bracket expressions: `[[:alpha:]]` classes are expanded, a backslash is literal, a leading
 *     `]` is literal;
 *   - `.` and `[^x]` match a newline unless the `m` flag (REG_NEWLINE) is given → JS flag `s`;
 *   - basic syntax (the `x` flag toggles REG_EXTENDED off): `\( \) \{ \} \|` are operators and
 *     `( ) { } | + ?` are literals;
 *   - GNU `\<` and `\>` become `\b`;
 *   - POSIX picks the leftmost-longest match, JS the leftmost-first: with alternations the
 *     captured `$n` text can differ (documented in docs/lookup-tables.md).
 *  PCRE (pcre:)
 *   - `(?P<n>` → `(?<n>`, `(?P=n)` → `\k<n>`, `\g{1}`/`\g1` → `\1`, `\A` `\z` `\Z` anchors,
 *     `\Q...\E` quoting, `\h`, `\e`, `\x{HH}`, `(?#comment)`;
 *   - inline options `(?i)` / `(?-i)` in the middle of a pattern become a JS modifier group
 *     `(?i:...)` up to the end of the enclosing group; `x` (extended) is done here by removing
 *     white space and `#` comments;
 *   - the `U` (ungreedy) table flag swaps greedy and lazy quantifiers;
 *   - features JS lacks are reported as errors: atomic groups `(?>`, possessive quantifiers
 *     `*+`, recursion `(?R)`, conditionals `(?(`, branch reset `(?|`, `\K`, `\G`, `\p{..}`.
 *
 * Errors are thrown as SyntaxError with a message saying what to change; the table loader adds
 * the file name and line number.
 */

const POSIX_CLASSES: Record<string, string> = {
  alpha: 'A-Za-z', digit: '0-9', alnum: '0-9A-Za-z', upper: 'A-Z', lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v', blank: ' \\t', punct: '!-\\/:-@\\[-`{-~', print: ' -~',
  graph: '!-~', cntrl: '\\x00-\\x1f\\x7f', xdigit: '0-9A-Fa-f', word: '0-9A-Za-z_',
};

/**
 * Translate a bracket expression starting at p[i] === '['. Returns the JS class and the index
 * after the closing ']'. `posix` = backslash is literal (regcomp); otherwise PCRE escapes.
 */
function bracket(p: string, i: number, posix: boolean): { out: string; next: number } {
  let j = i + 1;
  let out = '[';
  if (p[j] === '^') { out += '^'; j++; }
  if (p[j] === ']') { out += '\\]'; j++; }
  for (;;) {
    if (j >= p.length) throw new SyntaxError('unmatched [ in bracket expression');
    const c = p[j]!;
    if (c === ']') return { out: out + ']', next: j + 1 };
    if (c === '[' && (p[j + 1] === ':' || p[j + 1] === '=' || p[j + 1] === '.')) {
      const kind = p[j + 1]!;
      const end = p.indexOf(kind + ']', j + 2);
      if (end < 0) throw new SyntaxError(`unmatched [${kind} in bracket expression`);
      const name = p.slice(j + 2, end);
      if (kind === ':') {
        const cls = POSIX_CLASSES[name];
        if (cls === undefined) throw new SyntaxError(`unknown character class [:${name}:]`);
        out += cls;
      } else {
        out += escapeClassChars(name);
      }
      j = end + 2;
      continue;
    }
    if (c === '\\') {
      if (posix) { out += '\\\\'; j++; continue; }
      const e = p[j + 1];
      if (e === undefined) throw new SyntaxError('trailing backslash in bracket expression');
      if (e === 'h') { out += ' \\t'; j += 2; continue; }
      if (e === 'e') { out += '\\x1b'; j += 2; continue; }
      if (e === 'p' || e === 'P') throw new SyntaxError('\\p{...} Unicode properties are not supported');
      if (e === 'x' && p[j + 2] === '{') { const r = hexBrace(p, j); out += r.out; j = r.next; continue; }
      out += '\\' + e;
      j += 2;
      continue;
    }
    if (c === '[') { out += '\\['; j++; continue; }
    out += c;
    j++;
  }
}

function escapeClassChars(s: string): string {
  return s.replace(/[\\\]\[^-]/g, (m) => '\\' + m);
}

function hexBrace(p: string, j: number): { out: string; next: number } {
  const end = p.indexOf('}', j + 3);
  if (end < 0) throw new SyntaxError('missing } in \\x{...}');
  const cp = parseInt(p.slice(j + 3, end), 16);
  if (!Number.isFinite(cp) || cp > 0xffff) throw new SyntaxError(`\\x{${p.slice(j + 3, end)}} is out of range (only up to FFFF)`);
  return { out: '\\u' + cp.toString(16).padStart(4, '0'), next: end + 1 };
}

export interface Translated { source: string; flags: string }

/** regexp_table(5): options start as REG_EXTENDED|REG_ICASE; flags i, m, x toggle. */
export function translatePosix(pattern: string, opts: { icase: boolean; newline: boolean; extended: boolean }): Translated {
  let out = '';
  const p = pattern;
  for (let i = 0; i < p.length;) {
    const c = p[i]!;
    if (c === '[') { const b = bracket(p, i, true); out += b.out; i = b.next; continue; }
    if (c === '\\') {
      const e = p[i + 1];
      if (e === undefined) throw new SyntaxError('trailing backslash (\\)');
      if (e === '<' || e === '>') { out += '\\b'; i += 2; continue; }
      if (!opts.extended && '(){}|+?'.includes(e)) { out += e; i += 2; continue; }
      out += '\\' + e;
      i += 2;
      continue;
    }
    if (!opts.extended && '(){}|+?'.includes(c)) { out += '\\' + c; i++; continue; }
    if (c === '/') { out += '\\/'; i++; continue; }
    out += c;
    i++;
  }
  const flags = (opts.icase ? 'i' : '') + (opts.newline ? 'm' : 's');
  return { source: out, flags };
}

export interface PcreOptions {
  icase: boolean; multiline: boolean; dotall: boolean; extended: boolean;
  anchored: boolean; ungreedy: boolean;
}

/** pcre_table(5) pattern → JS. */
export function translatePcre(pattern: string, opts: PcreOptions): Translated {
  const p = pattern;
  let out = '';
  // Per open group: whether x is on inside it, and how many modifier groups we opened in it.
  const stack: { x: boolean; extra: number }[] = [{ x: opts.extended, extra: 0 }];
  const top = () => stack[stack.length - 1]!;
  const quantifierFollows = (i: number) => {
    // Possessive (x*+) is unsupported; ungreedy swaps lazy/greedy.
    if (p[i] === '+') throw new SyntaxError('possessive quantifiers (*+, ++, ?+) are not supported');
    if (opts.ungreedy) {
      if (p[i] === '?') return { add: '', skip: 1 };
      return { add: '?', skip: 0 };
    }
    if (p[i] === '?') return { add: '?', skip: 1 };
    return { add: '', skip: 0 };
  };
  for (let i = 0; i < p.length;) {
    const c = p[i]!;
    if (top().x) {
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') { i++; continue; }
      if (c === '#') { while (i < p.length && p[i] !== '\n') i++; continue; }
    }
    if (c === '[') { const b = bracket(p, i, false); out += b.out; i = b.next; continue; }
    if (c === '\\') {
      const e = p[i + 1];
      if (e === undefined) throw new SyntaxError('\\ at end of pattern');
      i += 2;
      switch (e) {
        case 'A': out += '(?<![\\s\\S])'; continue;
        case 'z': out += '(?![\\s\\S])'; continue;
        case 'Z': out += '(?=\\n?(?![\\s\\S]))'; continue;
        case 'h': out += '[ \\t]'; continue;
        case 'H': out += '[^ \\t]'; continue;
        case 'e': out += '\\x1b'; continue;
        case 'R': out += '(?:\\r\\n|\\n|\\r)'; continue;
        case 'K': case 'G': case 'C': case 'X':
          throw new SyntaxError(`\\${e} is not supported`);
        case 'p': case 'P': throw new SyntaxError('\\p{...} Unicode properties are not supported');
        case 'Q': {
          const end = p.indexOf('\\E', i);
          const lit = end < 0 ? p.slice(i) : p.slice(i, end);
          out += lit.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
          i = end < 0 ? p.length : end + 2;
          continue;
        }
        case 'E': continue;
        case 'g': {
          const m = /^\{?(-?\d+)\}?/.exec(p.slice(i));
          if (!m || m[1]!.startsWith('-')) throw new SyntaxError('\\g must be followed by a group number');
          out += '\\' + m[1];
          i += m[0].length;
          continue;
        }
        case 'x':
          if (p[i] === '{') { const r = hexBrace(p, i - 2); out += r.out; i = r.next; continue; }
          out += '\\x';
          continue;
        default:
          out += '\\' + e;
          continue;
      }
    }
    if (c === '(') {
      if (p[i + 1] === '?') {
        const rest = p.slice(i + 2);
        if (rest.startsWith('#')) {
          const end = p.indexOf(')', i);
          if (end < 0) throw new SyntaxError('missing ) after (?# comment');
          i = end + 1;
          continue;
        }
        if (rest.startsWith('P<')) { out += '(?<'; i += 4; stack.push({ x: top().x, extra: 0 }); continue; }
        if (rest.startsWith('P=')) {
          const end = p.indexOf(')', i);
          if (end < 0) throw new SyntaxError('missing ) after (?P=name');
          out += `\\k<${p.slice(i + 4, end)}>`;
          i = end + 1;
          continue;
        }
        if (rest.startsWith('>')) throw new SyntaxError('atomic groups (?>...) are not supported');
        if (rest.startsWith('|')) throw new SyntaxError('branch reset groups (?|...) are not supported');
        if (rest.startsWith('(')) throw new SyntaxError('conditional groups (?(...)...) are not supported');
        if (/^(R|[+-]?\d|&|P>)/.test(rest)) throw new SyntaxError('recursion (?R), (?1), (?&name) is not supported');
        const m = /^([imsxJUX]*)(?:-([imsxJUX]*))?([:)])/.exec(rest);
        if (m && (m[1] || m[2] !== undefined)) {
          const on = m[1]!, off = m[2] ?? '';
          const jsOn = on.replace(/[^ims]/g, ''), jsOff = off.replace(/[^ims]/g, '');
          const mod = jsOn || jsOff ? `(?${jsOn}${jsOff ? '-' + jsOff : ''}:` : '(?:';
          let x = top().x;
          if (on.includes('x')) x = true;
          if (off.includes('x')) x = false;
          i += 2 + m[0].length;
          if (m[3] === ':') { out += mod; stack.push({ x, extra: 0 }); }
          else { out += mod; top().extra++; top().x = x; }   // "(?i)": applies to the end of this group
          continue;
        }
      }
      out += '(';
      i++;
      stack.push({ x: top().x, extra: 0 });
      continue;
    }
    if (c === ')') {
      if (stack.length === 1) throw new SyntaxError('unmatched closing parenthesis');
      const g = stack.pop()!;
      out += ')'.repeat(g.extra) + ')';
      i++;
      if ('*+?{'.includes(p[i] ?? '')) { /* a quantifier follows: handled below on the next turn */ }
      continue;
    }
    if (c === '*' || c === '+' || c === '?') {
      out += c;
      i++;
      const q = quantifierFollows(i);
      out += q.add;
      i += q.skip;
      continue;
    }
    if (c === '{') {
      const m = /^\{\d+(,\d*)?\}/.exec(p.slice(i));
      if (m) {
        out += m[0];
        i += m[0].length;
        const q = quantifierFollows(i);
        out += q.add;
        i += q.skip;
        continue;
      }
      out += '\\{';
      i++;
      continue;
    }
    if (c === '/') { out += '\\/'; i++; continue; }
    out += c;
    i++;
  }
  if (stack.length > 1) throw new SyntaxError('missing closing parenthesis');
  out += ')'.repeat(stack[0]!.extra);
  const flags = (opts.icase ? 'i' : '') + (opts.multiline ? 'm' : '') + (opts.dotall ? 's' : '') + (opts.anchored ? 'y' : '');
  return { source: out, flags };
}
