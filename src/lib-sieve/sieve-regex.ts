/**
 * sieve-regex - the :regex match type (draft-ietf-sieve-regex-01): POSIX extended regular
 * expressions as Pigeonhole compiles them with regcomp(REG_EXTENDED [| REG_ICASE]), matched by
 * a Pike virtual machine instead of a backtracking engine, so matching time is linear in
 * (input length x pattern size) whatever the pattern: "(a+)+$" against "aaaa...b" cannot take
 * exponential time. Hard bounds on top: a pattern compiles to at most REGEX_MAX_PROGRAM
 * instructions ("regular expression too big", as glibc says for huge {n,m} repeats), and one
 * match may take at most REGEX_MAX_STEPS steps (throws SieveRegexLimit, which the interpreter
 * turns into a runtime error: the script fails and the message is kept).
 *
 * Syntax: | * + ? {n} {n,} {n,m} ( ) ^ $ . [...] with ranges, negation and [:class:], "\c"
 * quoting c, and glibc's \w \W \s \S \b \B \< \>. Without REG_NEWLINE, "." matches a newline
 * and ^ $ anchor at the ends of the string only. Match: leftmost, then longest (POSIX); the
 * groups of that match are those of the highest-priority thread (greedy), which gives POSIX's
 * answer for the patterns scripts use. Errors use glibc's regerror() text, lower-cased first
 * letter, as Pigeonhole prints them.
 */

export const REGEX_MAX_PROGRAM = 20_000;
export const REGEX_MAX_STEPS = 20_000_000;
const RE_DUP_MAX = 255;
const MAX_DEPTH = 200;

export class SieveRegexLimit extends Error {}

/** Work left for one script run (steps of matching); at zero the run fails (SieveRegexLimit). */
export interface SieveWorkBudget { remaining: number }

type Node =
  | { t: 'char'; c: number }
  | { t: 'any' }
  | { t: 'set'; neg: boolean; test: (c: number) => boolean }
  | { t: 'assert'; k: 'bol' | 'eol' | 'wb' | 'nwb' | 'wbeg' | 'wend' }
  | { t: 'group'; n: number; e: Node }
  | { t: 'cat'; e: Node[] }
  | { t: 'alt'; e: Node[] }
  | { t: 'rep'; e: Node; min: number; max: number };

const Op = { Char: 0, Any: 1, Set: 2, Assert: 3, Split: 4, Jmp: 5, Save: 6, Match: 7 } as const;
type Op = (typeof Op)[keyof typeof Op];
interface Inst { op: Op; c?: number; test?: (c: number) => boolean; neg?: boolean; k?: string; x?: number; y?: number; n?: number }

export interface SieveRegex {
  /** Number of capture groups (not counting group 0). */
  groups: number;
  /**
   * The leftmost-longest match: [whole, group1, ...] (undefined for groups that did not take
   * part), or null. `budget` (shared by every match of one script run) is charged each step.
   */
  exec(s: string, budget?: SieveWorkBudget): (string | undefined)[] | null;
}

const isWord = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const CLASSES: Record<string, (c: number) => boolean> = {
  alpha: (c) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122),
  digit: (c) => c >= 48 && c <= 57,
  alnum: (c) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57),
  upper: (c) => c >= 65 && c <= 90,
  lower: (c) => c >= 97 && c <= 122,
  space: (c) => c === 32 || (c >= 9 && c <= 13),
  blank: (c) => c === 32 || c === 9,
  punct: (c) => (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126),
  print: (c) => c >= 32 && c <= 126,
  graph: (c) => c >= 33 && c <= 126,
  cntrl: (c) => c < 32 || c === 127,
  xdigit: (c) => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102),
};

class RegexSyntax extends Error {}

class Parser {
  private i = 0;
  groups = 0;
  private readonly s: string;
  private readonly icase: boolean;
  constructor(s: string, icase: boolean) { this.s = s; this.icase = icase; }

  parse(): Node {
    const n = this.alt(0);
    if (this.i < this.s.length) throw new RegexSyntax('unmatched ) or \\)');
    return n;
  }

  private alt(depth: number): Node {
    if (depth > MAX_DEPTH) throw new RegexSyntax('regular expression too big');
    const alts: Node[] = [this.cat(depth)];
    while (this.s[this.i] === '|') { this.i++; alts.push(this.cat(depth)); }
    return alts.length === 1 ? alts[0]! : { t: 'alt', e: alts };
  }

  private cat(depth: number): Node {
    const items: Node[] = [];
    while (this.i < this.s.length && this.s[this.i] !== '|' && this.s[this.i] !== ')') {
      let atom = this.atom(depth);
      for (;;) {
        const q = this.s[this.i];
        if (q === '*' || q === '+' || q === '?') {
          this.i++;
          atom = { t: 'rep', e: atom, min: q === '+' ? 1 : 0, max: q === '?' ? 1 : Infinity };
        } else if (q === '{' && /^\{\d/.test(this.s.slice(this.i, this.i + 2))) {
          const m = /^\{(\d+)(,(\d*))?\}/.exec(this.s.slice(this.i));
          if (!m) throw new RegexSyntax(this.s.indexOf('}', this.i) < 0 ? 'unmatched \\{' : 'invalid content of \\{\\}');
          const min = Number(m[1]);
          const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
          if (min > RE_DUP_MAX || (max !== Infinity && max > RE_DUP_MAX)) throw new RegexSyntax('regular expression too big');
          if (max < min) throw new RegexSyntax('invalid content of \\{\\}');
          this.i += m[0].length;
          atom = { t: 'rep', e: atom, min, max };
        } else break;
      }
      items.push(atom);
    }
    return items.length === 1 ? items[0]! : { t: 'cat', e: items };
  }

  private atom(depth: number): Node {
    const s = this.s;
    const ch = s[this.i]!;
    this.i++;
    switch (ch) {
      case '(': {
        const n = ++this.groups;
        const e = this.alt(depth + 1);
        if (s[this.i] !== ')') throw new RegexSyntax('unmatched ( or \\(');
        this.i++;
        return { t: 'group', n, e };
      }
      case '*': case '+': case '?':
        throw new RegexSyntax('invalid preceding regular expression');
      case '.': return { t: 'any' };
      case '^': return { t: 'assert', k: 'bol' };
      case '$': return { t: 'assert', k: 'eol' };
      case '[': return this.bracket();
      case '\\': {
        if (this.i >= s.length) throw new RegexSyntax('trailing backslash');
        const e = s[this.i++]!;
        switch (e) {
          case 'w': return { t: 'set', neg: false, test: isWord };
          case 'W': return { t: 'set', neg: true, test: isWord };
          case 's': return { t: 'set', neg: false, test: CLASSES.space! };
          case 'S': return { t: 'set', neg: true, test: CLASSES.space! };
          case 'b': return { t: 'assert', k: 'wb' };
          case 'B': return { t: 'assert', k: 'nwb' };
          case '<': return { t: 'assert', k: 'wbeg' };
          case '>': return { t: 'assert', k: 'wend' };
          default: return this.char(e.charCodeAt(0));
        }
      }
      default: return this.char(ch.charCodeAt(0));
    }
  }

  private char(c: number): Node {
    if (this.icase && ((c >= 65 && c <= 90) || (c >= 97 && c <= 122))) {
      const lc = c | 0x20;
      return { t: 'set', neg: false, test: (x) => (x | 0x20) === lc && ((x >= 65 && x <= 90) || (x >= 97 && x <= 122)) };
    }
    return { t: 'char', c };
  }

  private bracket(): Node {
    const s = this.s;
    let neg = false;
    if (s[this.i] === '^') { neg = true; this.i++; }
    const ranges: [number, number][] = [];
    const classes: ((c: number) => boolean)[] = [];
    let first = true;
    for (;;) {
      if (this.i >= s.length) throw new RegexSyntax('unmatched [, [^, [:, [., or [=');
      const ch = s[this.i]!;
      if (ch === ']' && !first) { this.i++; break; }
      first = false;
      if (ch === '[' && s[this.i + 1] === ':') {
        const end = s.indexOf(':]', this.i + 2);
        if (end < 0) throw new RegexSyntax('unmatched [, [^, [:, [., or [=');
        const name = s.slice(this.i + 2, end);
        const f = CLASSES[name];
        if (!f) throw new RegexSyntax('invalid character class name');
        classes.push(f);
        this.i = end + 2;
        continue;
      }
      if (ch === '[' && (s[this.i + 1] === '.' || s[this.i + 1] === '=')) {
        const close = s[this.i + 1] + ']';
        const end = s.indexOf(close, this.i + 2);
        if (end < 0) throw new RegexSyntax('unmatched [, [^, [:, [., or [=');
        const v = s.slice(this.i + 2, end);
        if (v.length !== 1) throw new RegexSyntax('invalid collation character');
        ranges.push([v.charCodeAt(0), v.charCodeAt(0)]);
        this.i = end + 2;
        continue;
      }
      this.i++;
      const lo = ch.charCodeAt(0);
      let hi = lo;
      if (s[this.i] === '-' && s[this.i + 1] !== undefined && s[this.i + 1] !== ']') {
        hi = s.charCodeAt(this.i + 1);
        this.i += 2;
        if (hi < lo) throw new RegexSyntax('invalid range end');
      }
      ranges.push([lo, hi]);
    }
    const icase = this.icase;
    const inSet = (c: number): boolean => ranges.some(([a, b]) => c >= a && c <= b) || classes.some((f) => f(c));
    const test = icase
      ? (c: number): boolean => inSet(c) || ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) ? inSet(c ^ 0x20) : false)
      : inSet;
    return { t: 'set', neg, test };
  }
}

function compileNode(n: Node, prog: Inst[]): void {
  if (prog.length > REGEX_MAX_PROGRAM) throw new RegexSyntax('regular expression too big');
  switch (n.t) {
    case 'char': prog.push({ op: Op.Char, c: n.c }); return;
    case 'any': prog.push({ op: Op.Any }); return;
    case 'set': prog.push({ op: Op.Set, test: n.test, neg: n.neg }); return;
    case 'assert': prog.push({ op: Op.Assert, k: n.k }); return;
    case 'group':
      prog.push({ op: Op.Save, n: n.n * 2 });
      compileNode(n.e, prog);
      prog.push({ op: Op.Save, n: n.n * 2 + 1 });
      return;
    case 'cat': for (const e of n.e) compileNode(e, prog); return;
    case 'alt': {
      const jumps: Inst[] = [];
      for (let k = 0; k < n.e.length; k++) {
        if (k < n.e.length - 1) {
          const split: Inst = { op: Op.Split, x: prog.length + 1, y: 0 };
          prog.push(split);
          compileNode(n.e[k]!, prog);
          const j: Inst = { op: Op.Jmp, x: 0 };
          prog.push(j);
          jumps.push(j);
          split.y = prog.length;
        } else compileNode(n.e[k]!, prog);
      }
      for (const j of jumps) j.x = prog.length;
      return;
    }
    case 'rep': {
      for (let k = 0; k < n.min; k++) compileNode(n.e, prog);
      if (n.max === Infinity) {
        const split: Inst = { op: Op.Split, x: prog.length + 1, y: 0 };
        const at = prog.length;
        prog.push(split);
        compileNode(n.e, prog);
        prog.push({ op: Op.Jmp, x: at });
        split.y = prog.length;
      } else {
        const splits: Inst[] = [];
        for (let k = n.min; k < n.max; k++) {
          const split: Inst = { op: Op.Split, x: prog.length + 1, y: 0 };
          prog.push(split);
          splits.push(split);
          compileNode(n.e, prog);
        }
        for (const sp of splits) sp.y = prog.length;
      }
      return;
    }
  }
}

interface Thread { pc: number; caps: number[] }

export function compileSieveRegex(pattern: string, icase: boolean): SieveRegex | { error: string } {
  let prog: Inst[];
  let groups: number;
  try {
    const p = new Parser(pattern, icase);
    const ast = p.parse();
    groups = p.groups;
    prog = [{ op: Op.Save, n: 0 }];
    compileNode(ast, prog);
    prog.push({ op: Op.Save, n: 1 }, { op: Op.Match });
  } catch (e) {
    if (e instanceof RegexSyntax) return { error: e.message };
    if (e instanceof RangeError) return { error: 'regular expression too big' };
    throw e;
  }
  const ncap = (groups + 1) * 2;
  return {
    groups,
    exec(s: string, budget?: SieveWorkBudget) {
      return run(prog, ncap, s, budget);
    },
  };
}

function assertOk(k: string, s: string, i: number): boolean {
  const before = i > 0 && isWord(s.charCodeAt(i - 1));
  const after = i < s.length && isWord(s.charCodeAt(i));
  switch (k) {
    case 'bol': return i === 0;
    case 'eol': return i === s.length;
    case 'wb': return before !== after;
    case 'nwb': return before === after;
    case 'wbeg': return !before && after;
    case 'wend': return before && !after;
  }
  return false;
}

function run(prog: Inst[], ncap: number, s: string, budget?: SieveWorkBudget): (string | undefined)[] | null {
  let steps = 0;
  const limit = Math.min(REGEX_MAX_STEPS, budget ? budget.remaining : REGEX_MAX_STEPS);
  try {
    return runInner();
  } finally {
    if (budget) budget.remaining -= steps;
  }
  function runInner(): (string | undefined)[] | null {
    let clist: Thread[] = [];
    let nlist: Thread[] = [];
    const mark = new Int32Array(prog.length).fill(-1);
    let best: number[] | null = null;
    let gen = 0;
    const add = (list: Thread[], pc: number, caps: number[], i: number): void => {
      // iterative closure over Jmp/Split/Save/Assert, preserving priority order
      const stack: Thread[] = [{ pc, caps }];
      while (stack.length) {
        const t = stack.pop()!;
        if (mark[t.pc] === gen) continue;
        mark[t.pc] = gen;
        if (++steps > limit) throw new SieveRegexLimit(limit < REGEX_MAX_STEPS ? 'the script exceeded its matching budget' : `regular expression match exceeded ${REGEX_MAX_STEPS} steps`);
        const ins = prog[t.pc]!;
        switch (ins.op) {
          case Op.Jmp: stack.push({ pc: ins.x!, caps: t.caps }); break;
          case Op.Split: stack.push({ pc: ins.y!, caps: t.caps }, { pc: ins.x!, caps: t.caps }); break;
          case Op.Save: {
            const c = t.caps.slice();
            c[ins.n!] = i;
            stack.push({ pc: t.pc + 1, caps: c });
            break;
          }
          case Op.Assert:
            if (assertOk(ins.k!, s, i)) stack.push({ pc: t.pc + 1, caps: t.caps });
            break;
          default: list.push(t);
        }
      }
    };
    const empty = new Array<number>(ncap).fill(-1);
    for (let i = 0; i <= s.length; i++) {
      gen++;
      // seed a new thread at i (lowest priority) while no match has been found
      const seeded = clist;
      clist = [];
      for (const t of seeded) add(clist, t.pc, t.caps, i);
      if (best === null) add(clist, 0, empty, i);
      if (clist.length === 0 && best !== null) break;
      gen++;
      nlist = [];
      const c = i < s.length ? s.charCodeAt(i) : -1;
      for (const t of clist) {
        const ins = prog[t.pc]!;
        if (++steps > limit) throw new SieveRegexLimit(limit < REGEX_MAX_STEPS ? 'the script exceeded its matching budget' : `regular expression match exceeded ${REGEX_MAX_STEPS} steps`);
        switch (ins.op) {
          case Op.Match:
            if (best === null || t.caps[0]! < best[0]! || (t.caps[0] === best[0] && t.caps[1]! > best[1]!)) best = t.caps;
            break;
          case Op.Char: if (c === ins.c) nlist.push({ pc: t.pc + 1, caps: t.caps }); break;
          case Op.Any: if (c >= 0) nlist.push({ pc: t.pc + 1, caps: t.caps }); break;
          case Op.Set: if (c >= 0 && ins.test!(c) !== ins.neg) nlist.push({ pc: t.pc + 1, caps: t.caps }); break;
        }
      }
      // threads that began after the best match's start can no longer win
      clist = best ? nlist.filter((t) => t.caps[0]! <= best![0]!) : nlist;
    }
    if (!best) return null;
    const out: (string | undefined)[] = [];
    for (let g = 0; g < ncap; g += 2) out.push(best[g]! >= 0 && best[g + 1]! >= 0 ? s.slice(best[g], best[g + 1]) : undefined);
    return out;
  }
}
