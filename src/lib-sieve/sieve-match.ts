/**
 * sieve-match - comparators (RFC 4790: i;octet, i;ascii-casemap, i;ascii-numeric) and match
 * types (RFC 5228 §2.7.1 :is :contains :matches; RFC 5231 :value :count; the regex draft's
 * :regex), with the match variables ${0}..${9} of RFC 5229 §3.2 for :matches and :regex.
 *
 *   const m = new SieveMatcher({ comparator, matchType, relation }, regexCache);
 *   m.match(values, keys) -> { matched, captures? }
 *
 * i;ascii-numeric: a string's value is its leading digits; a string that does not start with
 * a digit is "positive infinity", equal only to another such string (RFC 4790 §9.1.1).
 */
import { compileSieveRegex, type SieveRegex, type SieveWorkBudget } from './sieve-regex.ts';

export interface MatchSpec {
  comparator: string;
  /** 'is' | 'contains' | 'matches' | 'regex' | 'value' | 'count' */
  matchType: string;
  /** :value / :count relation: gt ge lt le eq ne */
  relation?: string;
}

export interface MatchResult { matched: boolean; captures?: string[] }

export class SieveRuntimeError extends Error {}

const lowerAscii = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

function numericValue(s: string): bigint | null {
  const m = /^[0-9]+/.exec(s);
  return m ? BigInt(m[0]) : null;
}

/** -1, 0, 1 under the comparator's ordering. */
export function compareValues(a: string, b: string, comparator: string): number {
  if (comparator === 'i;ascii-numeric') {
    const x = numericValue(a);
    const y = numericValue(b);
    if (x === null && y === null) return 0;
    if (x === null) return 1;
    if (y === null) return -1;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (comparator === 'i;ascii-casemap') { a = lowerAscii(a); b = lowerAscii(b); }
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  return Buffer.compare(ba, bb);
}

function relationHolds(rel: string, c: number): boolean {
  switch (rel) {
    case 'gt': return c > 0;
    case 'ge': return c >= 0;
    case 'lt': return c < 0;
    case 'le': return c <= 0;
    case 'eq': return c === 0;
    case 'ne': return c !== 0;
  }
  return false;
}

/** RFC 5228 :matches with "*" and "?" (and "\" quoting), returning the wildcard captures. */
export function globMatch(value: string, pattern: string, icase: boolean): string[] | null {
  const v = icase ? lowerAscii(value) : value;
  const p = icase ? lowerAscii(pattern) : pattern;
  // tokens
  const toks: ({ t: 'lit'; c: string } | { t: 'any' } | { t: 'one' })[] = [];
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '\\' && i + 1 < p.length) { toks.push({ t: 'lit', c: p[++i]! }); continue; }
    if (c === '*') { toks.push({ t: 'any' }); continue; }
    toks.push(c === '?' ? { t: 'one' } : { t: 'lit', c });
  }
  const chars = [...v];
  const orig = [...value];
  const n = toks.length;
  const m = chars.length;
  // Classic iterative wildcard match: each '*' as short as possible, widened on failure by
  // going back to the last '*' only (linear backtracking, O(n x m) at worst).
  const start = new Array<number>(n).fill(-1);
  const end = new Array<number>(n).fill(-1);
  let ti = 0;
  let vi = 0;
  let starTi = -1;
  let starVi = 0;
  let steps = 0;
  while (vi < m || ti < n) {
    if (++steps > 50_000_000) throw new SieveRuntimeError(':matches pattern too complex for the value');
    const t = toks[ti];
    if (t && t.t === 'any') {
      starTi = ti; starVi = vi; start[ti] = vi; end[ti] = vi; ti++;
      continue;
    }
    if (t && vi < m && (t.t === 'one' || chars[vi] === t.c)) {
      start[ti] = vi; end[ti] = vi + 1; ti++; vi++;
      continue;
    }
    if (starTi >= 0 && starVi < m) {
      starVi++;
      end[starTi] = starVi;
      ti = starTi + 1;
      vi = starVi;
      continue;
    }
    return null;
  }
  const caps: string[] = [value];
  toks.forEach((t, i) => { if (t.t !== 'lit') caps.push(orig.slice(start[i], end[i]).join('')); });
  return caps;
}

export class SieveMatcher {
  private readonly spec: MatchSpec;
  private readonly regexCache: Map<string, SieveRegex>;
  private readonly budget: SieveWorkBudget | undefined;

  constructor(spec: MatchSpec, regexCache: Map<string, SieveRegex>, budget?: SieveWorkBudget) {
    this.spec = spec;
    this.regexCache = regexCache;
    this.budget = budget;
  }

  /** Charges one comparison to the run's budget (the bytes it looks at). */
  private charge(n: number): void {
    if (!this.budget) return;
    this.budget.remaining -= n;
    if (this.budget.remaining < 0) throw new SieveRuntimeError('the script exceeded its matching budget');
  }

  private regex(key: string): SieveRegex {
    const icase = this.spec.comparator === 'i;ascii-casemap';
    const ck = (icase ? 'i:' : 'o:') + key;
    let r = this.regexCache.get(ck);
    if (!r) {
      const c = compileSieveRegex(key, icase);
      if ('error' in c) throw new SieveRuntimeError(`invalid regular expression '${key}' for regex match: ${c.error}`);
      r = c;
      if (this.regexCache.size < 1000) this.regexCache.set(ck, r);
    }
    return r;
  }

  /** Does any value match any key? */
  match(values: readonly string[], keys: readonly string[]): MatchResult {
    const { comparator, matchType, relation } = this.spec;
    if (matchType === 'count') {
      const n = String(values.length);
      return { matched: keys.some((k) => relationHolds(relation!, compareValues(n, k, comparator))) };
    }
    for (const v of values) {
      for (const k of keys) {
        this.charge(v.length + k.length + 1);
        switch (matchType) {
          case 'is':
            if (compareValues(v, k, comparator) === 0) return { matched: true };
            break;
          case 'contains': {
            if (comparator === 'i;ascii-numeric') throw new SieveRuntimeError('comparator i;ascii-numeric does not support substring matching');
            const hay = comparator === 'i;ascii-casemap' ? lowerAscii(v) : v;
            if (hay.includes(comparator === 'i;ascii-casemap' ? lowerAscii(k) : k)) return { matched: true };
            break;
          }
          case 'matches': {
            this.charge(Math.min(v.length * k.length, 50_000_000));
            const caps = globMatch(v, k, comparator === 'i;ascii-casemap');
            if (caps) return { matched: true, captures: caps };
            break;
          }
          case 'regex': {
            const r = this.regex(k).exec(v, this.budget);
            if (r) return { matched: true, captures: r.map((x) => x ?? '') };
            break;
          }
          case 'value':
            if (relationHolds(relation!, compareValues(v, k, comparator))) return { matched: true };
            break;
        }
      }
    }
    return { matched: false };
  }
}
