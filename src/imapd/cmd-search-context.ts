/**
 * cmd-search-context - the ESEARCH answer of SEARCH / UID SEARCH (RFC 4731, RFC 9051 §7.3.4)
 * and CONTEXT=SEARCH (RFC 5267 §4), with Dovecot 2.3's texts and order (imap-search.c):
 *
 *  - RETURN options: MIN MAX ALL COUNT SAVE (RFC 4731 / RFC 5182) plus RFC 5267's CONTEXT (a
 *    hint; accepted and ignored, as Dovecot), UPDATE and PARTIAL low:high (the low-th to
 *    high-th results, 1-based, in mailbox order; `PARTIAL (low:high set)`, NIL when none).
 *    No option at all (`RETURN ()`, or only CONTEXT) means ALL. Line order as Dovecot:
 *    `* ESEARCH (TAG "t") [UID] MIN a MAX b ALL set PARTIAL (l:h set) COUNT n MODSEQ m`, where m
 *    is the highest mod-sequence of the messages returned (only MIN/MAX: of those messages).
 *  - IMAP4rev2 (RFC 9051 §6.4.4): after ENABLE IMAP4rev2 a SEARCH without RETURN is answered
 *    with ESEARCH ... ALL, never `* SEARCH`.
 *  - UPDATE: the result (as UIDs) is kept for the selected mailbox; each sync then sends
 *    `* ESEARCH (TAG "t") [UID] REMOVEFROM (0 set)` for matching messages expunged (before the
 *    EXPUNGE / VANISHED lines, numbered as the client still knows them), and REMOVEFROM /
 *    `ADDTO (0 set)` for new messages and flag changes entering or leaving the result (after
 *    EXISTS and FETCH, in the new numbering). Position 0: a SEARCH result has no order (RFC 5267 §4;
 *    Dovecot sends 0 too). Only new and changed messages are re-evaluated: sequence sets
 *    and `$` in the program are frozen into UID sets when the search runs (as Dovecot's
 *    mail_search_args_seq2uid), so renumbering after an expunge changes nothing. At most
 *    MAX_UPDATES per session (Dovecot CLIENT_MAX_SEARCH_UPDATES); beyond that the search is
 *    answered and `* NO [NOUPDATE "t"]` says it will not be kept current. An update ends with
 *    CANCELUPDATE or when its mailbox is no longer the selected one.
 *  - CANCELUPDATE "t" ["t2" ...]: `OK Updates cancelled`; a tag that is not updating:
 *    `NO Unknown tag.` (Dovecot's answer); arguments other than quoted strings: BAD.
 *  - BAD (as Dovecot): UPDATE twice, UPDATE with a tag that is already updating, PARTIAL twice,
 *    PARTIAL without a range or with one that is not nz-number:nz-number, PARTIAL with ALL.
 *    A reversed range (10:1) is swapped, as Dovecot does.
 *
 * CONTEXT=SORT (RFC 5267 §4 for SORT; cmd-sort.ts parses RETURN): PARTIAL in sort order, and
 * UPDATE keeps the sorted result (sort records of its members) so changes are sent as
 * `ADDTO (pos n ...)` / `REMOVEFROM (pos n ...)` with real 1-based positions: removals highest
 * position first, additions lowest first, each pair valid when applied in the order sent.
 * Dovecot 2.3 offers neither CONTEXT=SORT nor SEARCH updates on SORT.
 */
import { argAtom, ImapParseError, type ImapArg } from '../lib-imap/imap-parser.ts';
import type { SearchKey } from '../lib-imap/imap-search-args.ts';
import { numbersToSeqSet, resolveSeqSet } from '../lib-imap/imap-seqset.ts';
import type { Mailbox, MessageInfo } from '../lib-storage/mail-storage.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { searchMessages } from './cmd-search.ts';
import { indexOfUid } from './imapd-sync.ts';
import { sortMessages, type SortCriterion, type SortRecord } from '../lib-imap/imap-sort.ts';

/** Dovecot CLIENT_MAX_SEARCH_UPDATES. */
export const MAX_UPDATES = 10;
/** A PARTIAL bound is a 32-bit nz-number (RFC 5267 partial-range). */
const MAX_PARTIAL = 0xffffffff;

export interface SearchReturn {
  min: boolean; max: boolean; all: boolean; count: boolean; save: boolean;
  update: boolean;
  partial?: [number, number];
}

export interface SplitSearchArgs {
  /** undefined: no RETURN (a plain `* SEARCH` answer in IMAP4rev1). */
  ret?: SearchReturn;
  /** What follows RETURN (...): CHARSET and the search keys, for parseSearchArgs(). */
  args: ImapArg[];
}

/** Takes `RETURN (options)` off the front of SEARCH's arguments. */
export function splitSearchReturn(args: ImapArg[]): SplitSearchArgs {
  const l = args[1];
  if (argAtom(args[0])?.toUpperCase() !== 'RETURN' || l?.type !== 'list') return { args };
  const r: SearchReturn = { min: false, max: false, all: false, count: false, save: false, update: false };
  let any = false;
  for (let i = 0; i < l.items.length; i++) {
    const name = argAtom(l.items[i])?.toUpperCase();
    switch (name) {
      case 'MIN': r.min = any = true; break;
      case 'MAX': r.max = any = true; break;
      case 'ALL': r.all = any = true; break;
      case 'COUNT': r.count = any = true; break;
      case 'SAVE': r.save = any = true; break;
      case 'CONTEXT': break; // RFC 5267 §4: a hint only
      case 'UPDATE':
        if (r.update) throw new ImapParseError('SEARCH return options have duplicate UPDATE.');
        r.update = any = true;
        break;
      case 'PARTIAL': {
        if (r.partial) throw new ImapParseError('PARTIAL can be used only once.');
        const range = l.items[++i];
        const text = range?.type === 'atom' ? range.value : range?.type === 'number' ? range.raw : undefined;
        if (text === undefined) throw new ImapParseError('PARTIAL range missing.');
        r.partial = parsePartialRange(text);
        any = true;
        break;
      }
      default:
        throw new ImapParseError(`SEARCH RETURN: unknown option "${String(name ?? '').slice(0, 30)}"`);
    }
  }
  if (r.partial && r.all) throw new ImapParseError('PARTIAL conflicts with ALL');
  if (!any) r.all = true; // RFC 4731 §3.1: RETURN () means ALL
  return { ret: r, args: args.slice(2) };
}

/** RFC 5267 partial-range = nz-number ":" nz-number; swapped when reversed (Dovecot). */
export function parsePartialRange(text: string): [number, number] {
  const m = /^([0-9]{1,10}):([0-9]{1,10})$/.exec(text);
  const a = m ? Number(m[1]) : 0;
  const b = m ? Number(m[2]) : 0;
  if (a < 1 || b < 1 || a > MAX_PARTIAL || b > MAX_PARTIAL) throw new ImapParseError('PARTIAL range broken.');
  return a <= b ? [a, b] : [b, a];
}

// ---- the answer ----

export interface SearchAnswer {
  /** Matching messages as indexes of the view, ascending. */
  hits: number[];
  /** The numbers to report (sequence numbers or UIDs), ascending. */
  nums: number[];
  /** Highest modseq of the matches when the program has MODSEQ (RFC 7162 §3.1.5). */
  highest?: number | undefined;
  key: SearchKey;
}

/** Sends the untagged answer of SEARCH / UID SEARCH and keeps an UPDATE result. */
export async function sendSearchAnswer(s: ImapSession, c: CommandContext, split: SplitSearchArgs, a: SearchAnswer): Promise<void> {
  const box = s.box!;
  const view = box.messages();
  const { nums, highest } = a;
  let r = split.ret;
  if (!r) {
    if (!s.rev2) {
      await s.send(`* SEARCH${nums.length ? ' ' + nums.join(' ') : ''}${highest !== undefined ? ` (MODSEQ ${highest})` : ''}\r\n`);
      return;
    }
    r = { min: false, max: false, all: true, count: false, save: false, update: false }; // RFC 9051 §6.4.4
  }
  if (r.save) s.searchRes = a.hits.map((i) => view[i]!.uid);
  let noUpdate = false;
  if (r.update) noUpdate = !keepUpdate(s, c, a.key, a.hits);
  if (r.min || r.max || r.all || r.count || r.partial || r.update) {
    let line = `* ESEARCH (TAG "${c.tag}")${c.uid ? ' UID' : ''}`;
    if (nums.length > 0) {
      if (r.min) line += ` MIN ${nums[0]}`;
      if (r.max) line += ` MAX ${nums[nums.length - 1]}`;
      if (r.all) line += ` ALL ${numbersToSeqSet(nums)}`;
    }
    if (r.partial) {
      const [lo, hi] = r.partial;
      const part = nums.slice(lo - 1, hi);
      line += ` PARTIAL (${lo}:${hi} ${part.length > 0 ? numbersToSeqSet(part) : 'NIL'})`;
    }
    if (r.count) line += ` COUNT ${nums.length}`;
    if (highest !== undefined) {
      // RFC 7162 §3.1.5 with RFC 4731: the highest mod-sequence of the messages returned, so
      // with only MIN and/or MAX that of those one or two messages (as Dovecot)
      let m = highest;
      if ((r.min || r.max) && !r.all && !r.count && !r.partial && a.hits.length > 0) {
        const first = view[a.hits[0]!]!.modseq;
        const last = view[a.hits[a.hits.length - 1]!]!.modseq;
        m = r.min && r.max ? Math.max(first, last) : r.min ? first : last;
      }
      line += ` MODSEQ ${m}`;
    }
    await s.send(line + '\r\n');
  }
  if (noUpdate) await s.send(`* NO [NOUPDATE "${c.tag}"] Too many search updates\r\n`);
}

// ---- UPDATE: results kept current ----

interface Update {
  tag: string;
  uid: boolean;
  box: Mailbox;
  /** The program with sequence sets and `$` frozen into UID sets. */
  key: SearchKey;
  /** UIDs currently in the result. */
  result: Set<number>;
  /** CONTEXT=SORT (RFC 5267 §4): the result in sort order, kept with each member's sort record. */
  sort?: SortContext;
}

/** What a SORT ... RETURN (UPDATE) keeps: its criteria, the order, and how to read new records. */
export interface SortContext {
  criteria: readonly SortCriterion[];
  /** The result in sort order; each record's seq is its UID (the tie-break of RFC 5256 §3 keeps). */
  order: SortRecord[];
  /** Sort records of these UIDs (those since expunged left out), seq set to the UID. */
  records(uids: readonly number[]): Promise<SortRecord[]>;
}

const updates = new WeakMap<ImapSession, Update[]>();

/** The session's updates for its selected mailbox (those of a mailbox no longer selected are dropped). */
function liveUpdates(s: ImapSession): Update[] | undefined {
  const list = updates.get(s);
  if (!list) return undefined;
  if (list.every((u) => u.box === s.box)) return list;
  const live = list.filter((u) => u.box === s.box);
  if (live.length === 0) { updates.delete(s); return undefined; }
  updates.set(s, live);
  return live;
}

/** Throws BAD before the search runs when the tag is already updating (Dovecot). */
export function checkUpdateTag(s: ImapSession, c: CommandContext, split: SplitSearchArgs): void {
  if (split.ret?.update && liveUpdates(s)?.some((u) => u.tag === c.tag)) throw new ImapParseError('Duplicate search update tag');
}

function keepUpdate(s: ImapSession, c: CommandContext, key: SearchKey, hits: number[], sort?: SortContext): boolean {
  const list = liveUpdates(s) ?? [];
  if (list.length >= MAX_UPDATES) return false;
  const view = s.box!.messages();
  list.push({ tag: c.tag, uid: c.uid, box: s.box!, key: freezeKey(s, key, view), result: new Set(hits.map((i) => view[i]!.uid)), ...(sort ? { sort } : {}) });
  updates.set(s, list);
  return true;
}

/**
 * SORT ... RETURN (UPDATE) (CONTEXT=SORT, RFC 5267 §4): keeps the sorted result current; false
 * when MAX_UPDATES are already kept (the caller sends NOUPDATE). `hits`: view indexes.
 */
export function keepSortUpdate(s: ImapSession, c: CommandContext, key: SearchKey, hits: number[], sort: SortContext): boolean {
  return keepUpdate(s, c, key, hits, sort);
}

/** Ranges of UIDs (ascending) from view indexes. */
function uidRanges(view: readonly MessageInfo[], idx: Iterable<number>): [number, number][] {
  const out: [number, number][] = [];
  for (const i of idx) {
    const u = view[i]!.uid;
    const last = out[out.length - 1];
    if (last && last[1] === u - 1) last[1] = u; else out.push([u, u]);
  }
  return out;
}

/**
 * Copy of the program where every set is a concrete UID set: sequence numbers and `*` resolved
 * against the view of the moment, `$` against the saved result.
 */
function freezeKey(s: ImapSession, k: SearchKey, view: readonly MessageInfo[]): SearchKey {
  switch (k.op) {
    case 'seqset': {
      const maxUid = view.length > 0 ? view[view.length - 1]!.uid : 0;
      let ranges: [number, number][];
      if (k.set.kind === 'searchres') {
        ranges = [...s.searchRes].sort((a, b) => a - b).map((u) => [u, u] as [number, number]);
      } else if (k.uid) {
        ranges = resolveSeqSet(k.set, maxUid);
      } else {
        const idx: number[] = [];
        for (const [a, b] of resolveSeqSet(k.set, view.length)) {
          for (let q = Math.max(1, a); q <= Math.min(b, view.length); q++) idx.push(q - 1);
        }
        ranges = uidRanges(view, idx.sort((x, y) => x - y));
      }
      // an empty set matches nothing: a range no UID can have
      return { op: 'seqset', uid: true, set: { kind: 'ranges', ranges: ranges.length > 0 ? ranges : [[0, 0]] } };
    }
    case 'not': return { op: 'not', key: freezeKey(s, k.key, view) };
    case 'or': return { op: 'or', a: freezeKey(s, k.a, view), b: freezeKey(s, k.b, view) };
    case 'and': return { op: 'and', keys: k.keys.map((x) => freezeKey(s, x, view)) };
    default: return k;
  }
}

function esearchHead(u: Update): string {
  return `* ESEARCH (TAG "${u.tag}")${u.uid ? ' UID' : ''}`;
}

/**
 * Sync hook, before the EXPUNGE / VANISHED lines: matching messages that were expunged, as
 * REMOVEFROM, numbered in `before` (the view the client knows).
 */
export function searchUpdateExpunged(s: ImapSession, before: readonly MessageInfo[], expunged: readonly number[]): string {
  const list = liveUpdates(s);
  if (!list || expunged.length === 0) return '';
  let out = '';
  for (const u of list) {
    if (u.sort) { out += sortRemoved(u, before, new Set(expunged.filter((uid) => u.result.delete(uid)))); continue; }
    const gone: number[] = [];
    for (const uid of expunged) {
      if (!u.result.delete(uid)) continue;
      if (u.uid) gone.push(uid);
      else { const i = indexOfUid(before, uid); if (i >= 0) gone.push(i + 1); }
    }
    if (gone.length > 0) out += `${esearchHead(u)} REMOVEFROM (0 ${numbersToSeqSet(gone.sort((a, b) => a - b))})\r\n`;
  }
  return out;
}

/**
 * Sync hook, after EXISTS and FETCH: new and changed messages re-evaluated against each kept
 * program; those leaving the result as REMOVEFROM, those entering it as ADDTO.
 */
export async function searchUpdateChanges(s: ImapSession, added: readonly MessageInfo[], changed: readonly MessageInfo[]): Promise<string> {
  const list = liveUpdates(s);
  if (!list || (added.length === 0 && changed.length === 0)) return '';
  const box = s.box!;
  const view = box.messages();
  const want = new Set<number>();
  for (const m of added) want.add(m.uid);
  for (const m of changed) want.add(m.uid);
  const subset: MessageInfo[] = [];
  for (const uid of [...want].sort((a, b) => a - b)) {
    const i = indexOfUid(view, uid);
    if (i >= 0) subset.push(view[i]!);
  }
  if (subset.length === 0) return '';
  // The same evaluation as SEARCH, over just these messages: every set in the frozen program
  // is a UID set, so positions in this small view do not matter.
  const part = new Proxy(box, {
    get(t, p) {
      if (p === 'messages') return () => subset;
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(t) : v;
    },
  });
  let out = '';
  for (const u of list) {
    const match = new Set((await searchMessages(s, part, u.key)).map((i) => subset[i]!.uid));
    if (s.box !== box) return '';
    const adds: number[] = [];
    const removes: number[] = [];
    if (u.sort) {
      const gone = new Set<number>();
      const come: number[] = [];
      for (const m of subset) {
        const had = u.result.has(m.uid);
        const has = match.has(m.uid);
        if (had === has) continue;
        if (has) { u.result.add(m.uid); come.push(m.uid); } else { u.result.delete(m.uid); gone.add(m.uid); }
      }
      out += sortRemoved(u, view, gone);
      if (come.length > 0) out += await sortAdded(u, view, come);
      if (s.box !== box) return '';
      continue;
    }
    for (const m of subset) {
      const had = u.result.has(m.uid);
      const has = match.has(m.uid);
      if (had === has) continue;
      if (has) u.result.add(m.uid); else u.result.delete(m.uid);
      const n = u.uid ? m.uid : indexOfUid(view, m.uid) + 1;
      (has ? adds : removes).push(n);
    }
    if (adds.length === 0 && removes.length === 0) continue;
    let line = esearchHead(u);
    if (removes.length > 0) line += ` REMOVEFROM (0 ${numbersToSeqSet(removes)})`;
    if (adds.length > 0) line += ` ADDTO (0 ${numbersToSeqSet(adds)})`;
    out += line + '\r\n';
  }
  return out;
}

/**
 * CONTEXT=SORT removals: `REMOVEFROM (pos n pos n ...)`, each pair a message and its 1-based
 * position in the sorted result, highest position first, so removing them one after another as
 * listed keeps every later position right (RFC 5267 §4.3). `view` numbers the messages.
 */
function sortRemoved(u: Update, view: readonly MessageInfo[], gone: ReadonlySet<number>): string {
  const sc = u.sort!;
  if (gone.size === 0) return '';
  const pairs: string[] = [];
  for (let i = sc.order.length - 1; i >= 0; i--) {
    const uid = sc.order[i]!.uid;
    if (!gone.has(uid)) continue;
    const n = u.uid ? uid : indexOfUid(view, uid) + 1;
    if (n > 0) pairs.push(`${i + 1} ${n}`);
  }
  sc.order = sc.order.filter((r) => !gone.has(r.uid));
  return pairs.length > 0 ? `${esearchHead(u)} REMOVEFROM (${pairs.join(' ')})\r\n` : '';
}

/**
 * CONTEXT=SORT additions: the new members sorted in with the others, then `ADDTO (pos n ...)`
 * in ascending final position, so inserting them one after another as listed gives the sorted
 * result (RFC 5267 §4.3).
 */
async function sortAdded(u: Update, view: readonly MessageInfo[], uids: readonly number[]): Promise<string> {
  const sc = u.sort!;
  const fresh = await sc.records(uids);
  if (fresh.length === 0) return '';
  const isNew = new Set(fresh.map((r) => r.uid));
  sc.order = sortMessages([...sc.order, ...fresh], sc.criteria);
  const pairs: string[] = [];
  sc.order.forEach((r, i) => {
    if (!isNew.has(r.uid)) return;
    const n = u.uid ? r.uid : indexOfUid(view, r.uid) + 1;
    if (n > 0) pairs.push(`${i + 1} ${n}`);
  });
  return pairs.length > 0 ? `${esearchHead(u)} ADDTO (${pairs.join(' ')})\r\n` : '';
}

/** CANCELUPDATE "tag" ... (RFC 5267 §4). */
export async function cmdCancelUpdate(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (c.args.length === 0 || c.args.some((a) => a.type !== 'string')) throw new ImapParseError('Invalid parameters.');
  for (const a of c.args) {
    const tag = (a as { value: Buffer }).value.toString('latin1');
    const list = liveUpdates(s);
    const i = list ? list.findIndex((u) => u.tag === tag) : -1;
    if (i < 0) return { status: 'NO', text: 'Unknown tag.' };
    list!.splice(i, 1);
  }
  return { status: 'OK', text: 'Updates cancelled' };
}
