/**
 * cmd-search - SEARCH and UID SEARCH (RFC 3501 §6.4.4): evaluates lib-imap's SearchKey tree
 * per message. Flags, sizes, sequence/UID sets, MODSEQ (RFC 7162 §3.1.5), INTERNALDATE /
 * SAVEDATE days and OLDER/YOUNGER (RFC 5032 WITHIN) come from the store; header, body and text
 * keys and the sent date from lib-mail (mail-search.ts: Dovecot's matching without FTS).
 * Message content is read only when the program has such a key, and only for messages the
 * cheap keys and the mailbox's full-text index (lib-fts, docs/fts.md: it only proves "cannot
 * match", so results are the scan's exactly) have not already decided. Sequence and UID sets are
 * resolved once per search (`*` = the last message), and a program that is a set, or ANDs one
 * at its top, looks only at the messages the set names (a binary search per range on the
 * view's ascending UIDs), so `UID SEARCH UID n` costs no more than `SEARCH ALL`.
 *
 * Answers: `* SEARCH 1 2 3` (+ ` (MODSEQ n)` when the program has MODSEQ, RFC 7162 §3.1.5);
 * with RETURN (ESEARCH, RFC 4731), or always after ENABLE IMAP4rev2: `* ESEARCH (TAG "t") UID
 * MIN a MAX b ALL set COUNT n` in Dovecot's order; SAVE keeps the result for `$` (RFC 5182
 * SEARCHRES) and, alone, sends no ESEARCH. RETURN parsing, PARTIAL and UPDATE (RFC 5267
 * CONTEXT=SEARCH): cmd-search-context.ts. Dates compare calendar days in the server's time
 * zone, as Dovecot.
 */
import { parseSearchArgs, type SearchKey, type SearchProgram } from '../lib-imap/imap-search-args.ts';
import { ImapParseError } from '../lib-imap/imap-parser.ts';
import { resolveSeqSet, seqSetHas } from '../lib-imap/imap-seqset.ts';
import { parseMime, type MimeMessage } from '../lib-mail/mail-mime.ts';
import { matchAddress, matchBody, matchHeader, matchText, messageSentDate } from '../lib-mail/mail-search.ts';
import { rawBodyCannotMatch, rawNeedle, type RawNeedle } from '../lib-imap/imap-search-raw.ts';
import { compileQuery, type FtsQuery } from '../lib-fts/fts-signature.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import type { Mailbox, MessageInfo } from '../lib-storage/mail-storage.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { emailId } from './imapd-objectid.ts';
import { utf8Names } from './imapd-names.ts';
import { checkUpdateTag, sendSearchAnswer, splitSearchReturn } from './cmd-search-context.ts';
import { compileIndexSearch } from './cmd-search-index.ts';

const DAY = 86_400_000;
const MAX_DEPTH = 1000;

/** Calendar day number of an instant in the server's local time zone. */
function localDay(d: Date): number {
  return Math.floor((d.getTime() - d.getTimezoneOffset() * 60_000) / DAY);
}

function cmpDay(day: number, key: Date, cmp: 'before' | 'on' | 'since'): boolean {
  const k = Math.floor(key.getTime() / DAY);
  return cmp === 'before' ? day < k : cmp === 'on' ? day === k : day >= k;
}

interface Needs { content: boolean; internal: boolean; saved: boolean; modseq: boolean; fts: boolean }

function analyse(key: SearchKey): Needs {
  const n: Needs = { content: false, internal: false, saved: false, modseq: false, fts: false };
  const stack: { k: SearchKey; d: number }[] = [{ k: key, d: 0 }];
  while (stack.length > 0) {
    const { k, d } = stack.pop()!;
    if (d > MAX_DEPTH) throw new ImapParseError('Search program too deep');
    switch (k.op) {
      case 'header': n.content = true; break;
      case 'body': case 'text': n.content = true; if (ftsQuery(k) !== null) n.fts = true; break;
      case 'date': if (k.field === 'sent') n.content = true; else if (k.field === 'internal') n.internal = true; else n.saved = true; break;
      case 'age': n.internal = true; break;
      case 'modseq': n.modseq = true; break;
      case 'not': stack.push({ k: k.key, d: d + 1 }); break;
      case 'or': stack.push({ k: k.a, d: d + 1 }, { k: k.b, d: d + 1 }); break;
      case 'and': for (const x of k.keys) stack.push({ k: x, d: d + 1 }); break;
      default: break;
    }
  }
  return n;
}

interface MsgCtx {
  m: MessageInfo;
  seq: number;
  internal?: Date;
  saved?: Date;
  msg?: MimeMessage;
  /** The raw message while phase 2 looks at it (imap-search-raw.ts decides BODY on it when exact). */
  raw?: Buffer;
}

const ftsQueries = new WeakMap<SearchKey, FtsQuery | null>();

/** The compiled index query of a BODY/TEXT key; null when the needle is too short to narrow. */
function ftsQuery(k: Extract<SearchKey, { op: 'body' | 'text' }>): FtsQuery | null {
  let q = ftsQueries.get(k);
  if (q === undefined) { q = compileQuery(k.value, k.op === 'body') ?? null; ftsQueries.set(k, q); }
  return q;
}

/**
 * The compiled queries of the program's BODY/TEXT keys: all of them, and those every match must
 * satisfy (the key itself or ANDed at its top).
 */
function programQueries(key: SearchKey): { all: FtsQuery[]; must: Set<FtsQuery> } {
  const all: FtsQuery[] = [];
  const must = new Set<FtsQuery>();
  const stack: { k: SearchKey; top: boolean }[] = [{ k: key, top: true }];
  while (stack.length > 0) {
    const { k, top } = stack.pop()!;
    if (k.op === 'and') for (const x of k.keys) stack.push({ k: x, top });
    else if (k.op === 'not') stack.push({ k: k.key, top: false });
    else if (k.op === 'or') stack.push({ k: k.a, top: false }, { k: k.b, top: false });
    else if (k.op === 'body' || k.op === 'text') {
      const q = ftsQuery(k);
      if (!q) continue;
      all.push(q);
      if (top) must.add(q);
    }
  }
  return { all, must };
}

/** What the full-text index says in one search: per query, the UIDs it does not rule out. */
interface FtsAnswer { lists: Map<FtsQuery, Uint32Array>; sets: Map<FtsQuery, Set<number>>; must: Set<FtsQuery> }

/** BODY/TEXT x that the full-text index proves absent (exact: fts-signature.ts). */
function ftsMiss(k: Extract<SearchKey, { op: 'body' | 'text' }>, uid: number, fts: FtsAnswer | undefined): boolean {
  if (!fts) return false;
  const q = ftsQuery(k);
  // a key every match must satisfy has already narrowed the messages looked at
  if (q === null || fts.must.has(q)) return false;
  const list = fts.lists.get(q);
  if (!list) return false;
  let set = fts.sets.get(q);
  if (!set) { set = new Set(list); fts.sets.set(q, set); }
  return !set.has(uid);
}

/** The view indexes of `uids` (ascending) in `view` (ascending UIDs). */
function viewIndexesOf(view: readonly MessageInfo[], uids: Uint32Array): number[] {
  const out: number[] = [];
  let lo = 0;
  for (let j = 0; j < uids.length && lo < view.length; j++) {
    const u = uids[j]!;
    let hi = view.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (view[mid]!.uid < u) lo = mid + 1; else hi = mid; }
    if (lo < view.length && view[lo]!.uid === u) out.push(lo++);
  }
  return out;
}

/** Sorted intersection of ascending lists. */
function intersect(a: Uint32Array, b: Uint32Array): Uint32Array {
  const out = new Uint32Array(Math.min(a.length, b.length));
  let i = 0, j = 0, n = 0;
  while (i < a.length && j < b.length) {
    if (a[i]! < b[j]!) i++;
    else if (a[i]! > b[j]!) j++;
    else { out[n++] = a[i]!; i++; j++; }
  }
  return out.subarray(0, n);
}

const rawNeedles = new WeakMap<SearchKey, RawNeedle | null>();

/** BODY x that the raw bytes prove absent (imap-search-raw.ts); false = don't know. */
function rawBodyMiss(k: Extract<SearchKey, { op: 'body' }>, raw: Buffer): boolean {
  let n = rawNeedles.get(k);
  if (n === undefined) { n = rawNeedle(k.value) ?? null; rawNeedles.set(k, n); }
  return n !== null && rawBodyCannotMatch(raw, n);
}

/** What one search run resolves once: each set key's ranges (`*` is the current last), `$`, the time. */
interface Env { sets: Map<SearchKey, [number, number][]>; searchRes: Set<number>; now: number; fts?: FtsAnswer }

/** Every sequence/UID set key of the program resolved against the view (once, not per message). */
function resolveSets(key: SearchKey, maxSeq: number, maxUid: number): Map<SearchKey, [number, number][]> {
  const out = new Map<SearchKey, [number, number][]>();
  const stack: SearchKey[] = [key];
  while (stack.length > 0) {
    const k = stack.pop()!;
    if (k.op === 'seqset' && k.set.kind === 'ranges') out.set(k, resolveSeqSet(k.set, k.uid ? maxUid : maxSeq));
    else if (k.op === 'not') stack.push(k.key);
    else if (k.op === 'or') stack.push(k.a, k.b);
    else if (k.op === 'and') stack.push(...k.keys);
  }
  return out;
}

/**
 * The view indexes a match can be at when the program is (or ANDs at its top) a sequence or UID
 * set: the set's ranges looked up on the view (UIDs ascend: a binary search per range), so
 * `UID 4711` looks at one message, not all. undefined = every message.
 */
function candidates(key: SearchKey, view: readonly MessageInfo[], sets: Env['sets']): number[] | undefined {
  const top = key.op === 'and' ? key.keys : [key];
  const k = top.find((x) => x.op === 'seqset' && x.set.kind === 'ranges');
  if (!k || k.op !== 'seqset') return undefined;
  const ranges = sets.get(k)!;
  const out: number[] = [];
  const firstAtLeast = (uid: number): number => {
    let lo = 0, hi = view.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (view[mid]!.uid < uid) lo = mid + 1; else hi = mid; }
    return lo;
  };
  for (const [a, b] of ranges) {
    const from = k.uid ? firstAtLeast(a) : a - 1;
    const to = k.uid ? firstAtLeast(b + 1) : Math.min(b, view.length);
    for (let i = from; i < to; i++) out.push(i);
  }
  return out;
}

/** undefined = cannot decide without content. */
function evalCheap(k: SearchKey, x: MsgCtx, env: Env): boolean | undefined {
  switch (k.op) {
    case 'all': return true;
    case 'flag': {
      const has = k.flag.startsWith('\\')
        ? (x.m.flags as readonly string[]).some((f) => f.toLowerCase() === k.flag.toLowerCase())
        : x.m.keywords.some((w) => w.toLowerCase() === k.flag.toLowerCase());
      return has === k.set;
    }
    case 'recent': return x.m.recent === k.set;
    case 'new': return x.m.recent && !x.m.flags.includes('\\Seen');
    case 'size': return k.cmp === 'larger' ? x.m.vsize > k.size : x.m.vsize < k.size;
    case 'seqset': {
      if (k.set.kind === 'searchres') return env.searchRes.has(x.m.uid);
      return seqSetHas(env.sets.get(k)!, k.uid ? x.m.uid : x.seq);
    }
    case 'modseq': return BigInt(x.m.modseq) >= k.modseq;
    case 'age': {
      const age = (env.now - x.internal!.getTime()) / 1000;
      return k.cmp === 'older' ? age >= k.seconds : age <= k.seconds;
    }
    case 'savedatesupported': return true;
    case 'objectid': return k.kind === 'email' && emailId(x.m) === k.id; // no THREADID (imapd-objectid.ts)
    case 'date': {
      if (k.field === 'internal') return cmpDay(localDay(x.internal!), k.date, k.cmp);
      if (k.field === 'saved') return cmpDay(localDay(x.saved!), k.date, k.cmp);
      if (!x.msg) return undefined;
      const sd = messageSentDate(x.msg);
      // no/unparsable Date: Dovecot treats it as 0, i.e. before every day
      const day = sd ? Math.floor(sd.day.getTime() / DAY) : -Infinity;
      const kd = Math.floor(k.date.getTime() / DAY);
      return k.cmp === 'before' ? day < kd : k.cmp === 'on' ? day === kd : day >= kd;
    }
    case 'header': return x.msg ? (k.address ? matchAddress(x.msg, k.field, k.value) : matchHeader(x.msg, k.field, k.value, k.compressLwsp)) : undefined;
    case 'body': return x.msg ? matchBody(x.msg, k.value) : ftsMiss(k, x.m.uid, env.fts) || (x.raw && rawBodyMiss(k, x.raw)) ? false : undefined;
    case 'text': return x.msg ? matchText(x.msg, k.value) : ftsMiss(k, x.m.uid, env.fts) ? false : undefined;
    case 'not': { const v = evalCheap(k.key, x, env); return v === undefined ? undefined : !v; }
    case 'or': {
      const a = evalCheap(k.a, x, env);
      if (a === true) return true;
      const b = evalCheap(k.b, x, env);
      if (b === true) return true;
      return a === false && b === false ? false : undefined;
    }
    case 'and': {
      let unknown = false;
      for (const sub of k.keys) {
        const v = evalCheap(sub, x, env);
        if (v === false) return false;
        if (v === undefined) unknown = true;
      }
      return unknown ? undefined : true;
    }
  }
}

/** Matching messages as view indexes. */
export async function searchMessages(s: ImapSession, box: Mailbox, key: SearchKey): Promise<number[]> {
  const needs = analyse(key);
  const view = box.messages();
  const maxSeq = view.length;
  const maxUid = maxSeq > 0 ? view[maxSeq - 1]!.uid : 0;
  const env: Env = { sets: resolveSets(key, maxSeq, maxUid), searchRes: new Set(s.searchRes), now: Date.now() };
  const out: number[] = [];
  // flags, sizes, sets, modseqs only: one compiled predicate over the view (cmd-search-index.ts)
  const fast = needs.content || needs.internal || needs.saved ? undefined : compileIndexSearch(key, env);
  if (fast) {
    const only = candidates(key, view, env.sets);
    const n = only ? only.length : view.length;
    for (let j = 0; j < n; j++) {
      const i = only ? only[j]! : j;
      if (fast(s.current(view[i]!), i + 1)) out.push(i);
    }
    return only ? out.sort((a, b) => a - b) : out;
  }
  // the full-text index (lib-fts): brought up to date first (messages it lacks are read and
  // indexed), then it names, per BODY/TEXT key, the messages it does not rule out; without one
  // every message is read
  const index = needs.fts && s.shared.settings.ftsIndex !== false ? box.ftsIndex : undefined;
  let only = candidates(key, view, env.sets);
  if (index) {
    const qs = programQueries(key);
    // (CONTEXT=SEARCH evaluates a few messages through a narrowed view of the selected mailbox:
    // the index must not be compacted down to them, hence the mailbox's own count then)
    const total = box === s.box ? view.length : () => box.status().messages;
    const lists = await index.update(box.uidValidity, view, (uids, each) => box.readMany(uids, each), total, qs.all);
    if (lists) env.fts = { lists: new Map(qs.all.map((q, i) => [q, lists[i]!])), sets: new Map(), must: qs.must };
    // BODY/TEXT keys every match must satisfy (the key, or ANDed at the top): only the messages
    // the index keeps for all of them are looked at
    let keep: Uint32Array | undefined;
    if (env.fts) for (const q of qs.must) { const l = env.fts.lists.get(q)!; keep = keep ? intersect(keep, l) : l; }
    if (keep) {
      const idx = viewIndexesOf(view, keep);
      if (only) { const ok = new Set(idx); only = only.filter((i) => ok.has(i)); } else only = idx;
    }
  }
  // phase 1: what flags, sizes, sets and dates decide; phase 2: read the rest, READ_AHEAD at a time
  const undecided: MsgCtx[] = [];
  const count = only ? only.length : view.length;
  for (let j = 0; j < count; j++) {
    const i = only ? only[j]! : j;
    const x: MsgCtx = { m: s.current(view[i]!), seq: i + 1 };
    try {
      if (needs.internal) x.internal = await box.internalDate(x.m.uid);
      if (needs.saved) x.saved = await box.saveDate(x.m.uid);
    } catch (e) {
      if (e instanceof MailError && e.code === 'EXPUNGED') continue;
      throw e;
    }
    const v = evalCheap(key, x, env);
    if (v === undefined) undecided.push(x);
    else if (v) out.push(i);
  }
  // Phase 2 reads in bulk (Mailbox.readMany: synchronous reads in time slices for maildir);
  // BODY is first tried on the raw bytes, the MIME parse only runs when that cannot decide.
  await box.readMany(undecided.map((x) => x.m.uid), (j, raw) => {
    const x = undecided[j]!;
    x.raw = raw;
    let v = evalCheap(key, x, env);
    if (v === undefined) {
      x.msg = parseMime(raw);
      v = evalCheap(key, x, env);
      x.msg = undefined;
    }
    x.raw = undefined;
    if (v) out.push(x.seq - 1);
  });
  return out.sort((a, b) => a - b);
}

export async function cmdSearch(s: ImapSession, c: CommandContext): Promise<Reply> {
  const box = s.box!;
  // RETURN (...) with RFC 5267's UPDATE / PARTIAL / CONTEXT: cmd-search-context.ts
  const split = splitSearchReturn(c.args);
  checkUpdateTag(s, c, split);
  let prog: SearchProgram;
  try {
    prog = parseSearchArgs(split.args, { esearch: true, ...(utf8Names(s) ? { defaultCharset: 'UTF-8' as const } : {}) }); // RFC 6855 §3
  } catch (e) {
    if (e instanceof ImapParseError && e.response === 'NO') return { status: 'NO', code: 'BADCHARSET', text: 'Unknown charset' };
    const unknown = e instanceof ImapParseError ? /^Unknown SEARCH key "(.*)"$/.exec(e.message) : null;
    if (unknown) throw new ImapParseError(`Unknown argument ${unknown[1]}`); // Dovecot's text
    throw e;
  }
  const needs = analyse(prog.key);
  if (needs.modseq) s.enabled.add('CONDSTORE');
  const hits = await searchMessages(s, box, prog.key);
  const view = box.messages();
  const nums = hits.map((i) => (c.uid ? view[i]!.uid : i + 1));
  const highest = needs.modseq && hits.length > 0 ? Math.max(...hits.map((i) => view[i]!.modseq)) : undefined;
  await sendSearchAnswer(s, c, split, { hits, nums, highest, key: prog.key });
  return { status: 'OK', text: 'Search completed' };
}
