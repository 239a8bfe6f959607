/**
 * imap-seqset — sequence sets (RFC 3501 §9 sequence-set, RFC 9051 §9) and the SEARCHRES `$`
 * marker (RFC 5182). A set is kept as ranges, never expanded: `1:4294967295` costs one range.
 * `*` stays symbolic until resolveSeqSet() is given the largest number in use; a range is
 * unordered (`5:2` = `2:5`) as the RFC says.
 */
import { ImapParseError } from './imap-parser.ts';

export const SEQ_STAR = -1;
const MAX_NZ = 0xffffffff;

export type SeqSet =
  | { kind: 'ranges'; ranges: [from: number, to: number][] } // SEQ_STAR for "*"
  | { kind: 'searchres' };

/** Most ranges accepted in one set (each comma-separated item is one). */
export const SEQSET_MAX_RANGES = 100_000;

function parseSeqNumber(s: string, whole: string): number {
  if (s === '*') return SEQ_STAR;
  if (!/^[1-9]\d{0,9}$/.test(s)) throw new ImapParseError(`Invalid sequence set "${whole.slice(0, 64)}": "${s.slice(0, 16)}" is not a number 1..4294967295 or *`);
  const n = Number(s);
  if (n > MAX_NZ) throw new ImapParseError(`Invalid sequence set "${whole.slice(0, 64)}": ${s} is larger than 4294967295`);
  return n;
}

/** Parses `1:*`, `1,3:5,*`, and `$` (when allowSearchRes). */
export function parseSeqSet(s: string, opts: { allowSearchRes?: boolean } = {}): SeqSet {
  if (s === '$') {
    if (opts.allowSearchRes === false) throw new ImapParseError('Invalid sequence set: $ not allowed here');
    return { kind: 'searchres' };
  }
  if (s.length === 0) throw new ImapParseError('Invalid sequence set: empty');
  const items = s.split(',');
  if (items.length > SEQSET_MAX_RANGES) throw new ImapParseError('Invalid sequence set: too many ranges');
  const ranges: [number, number][] = [];
  for (const item of items) {
    const parts = item.split(':');
    if (parts.length > 2 || parts[0] === '') throw new ImapParseError(`Invalid sequence set "${s.slice(0, 64)}"`);
    const a = parseSeqNumber(parts[0]!, s);
    const b = parts.length === 2 ? parseSeqNumber(parts[1]!, s) : a;
    ranges.push([a, b]);
  }
  return { kind: 'ranges', ranges };
}

/**
 * Resolves `*` to `max` (the highest sequence number/UID; 0 for an empty mailbox) and returns
 * sorted, merged, inclusive ranges. Numbers above `max` are kept (UID sets may name UIDs that
 * do not exist; callers intersect with what exists).
 */
export function resolveSeqSet(set: SeqSet, max: number, searchRes: readonly number[] = []): [number, number][] {
  let ranges: [number, number][];
  if (set.kind === 'searchres') ranges = searchRes.map((n) => [n, n]);
  else {
    // An empty mailbox has no "*": ranges naming it select nothing.
    ranges = set.ranges.filter(([a, b]) => max > 0 || (a !== SEQ_STAR && b !== SEQ_STAR)).map(([a, b]) => {
      const x = a === SEQ_STAR ? max : a;
      const y = b === SEQ_STAR ? max : b;
      return x <= y ? [x, y] : [y, x];
    });
  }
  ranges = ranges.filter(([a, b]) => b >= 1 && a >= 0).map(([a, b]) => [Math.max(a, 1), b]);
  ranges.sort((p, q) => p[0] - q[0]);
  const out: [number, number][] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

/** Membership test on resolved ranges (binary search). */
export function seqSetHas(ranges: readonly [number, number][], n: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = ranges[mid]!;
    if (n < a) hi = mid - 1;
    else if (n > b) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Writes resolved ranges back in compact form: `1:5,7,9:12`. */
export function formatSeqSet(ranges: readonly [number, number][]): string {
  return ranges.map(([a, b]) => (a === b ? String(a) : `${a}:${b}`)).join(',');
}

/** Compacts a sorted or unsorted list of numbers into a set string (for ESEARCH ALL, COPYUID). */
export function numbersToSeqSet(nums: readonly number[]): string {
  const sorted = [...nums].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const n of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && n <= last[1] + 1) last[1] = Math.max(last[1], n);
    else ranges.push([n, n]);
  }
  return formatSeqSet(ranges);
}
