/**
 * cmd-sort - SORT / UID SORT (RFC 5256 §3, SORT=DISPLAY RFC 5957, ESORT RFC 5267 §3) and
 * THREAD / UID THREAD (RFC 5256 §4: REFERENCES, ORDEREDSUBJECT), wired to the pure algorithms
 * of lib-imap/imap-sort.ts and imap-thread.ts (Dovecot 2.3's orderings). The search program
 * after the charset is evaluated by cmd-search.ts. Answers:
 *   * SORT 3 1 2            * THREAD (1 2)(3 (4)(5))
 *   * ESEARCH (TAG "t") UID MIN a MAX b ALL 5,3,1:2 COUNT n     (ESORT; ALL in sorted order)
 * CONTEXT=SORT (RFC 5267 §4): RETURN (PARTIAL lo:hi) is the lo-th to hi-th message in sort order,
 * `PARTIAL (lo:hi set)`; RETURN (UPDATE) keeps the sorted result current (cmd-search-context.ts:
 * ADDTO / REMOVEFROM with positions); CONTEXT is a hint; CANCELUPDATE ends it.
 */
import { argAtom, argString, ImapParseError, type ImapArg } from '../lib-imap/imap-parser.ts';
import { parseSearchArgs, type SearchKey } from '../lib-imap/imap-search-args.ts';
import { parseSortCriteria, sortMessages, sortRecordFromMessage, SortCriteriaError, type SortRecord } from '../lib-imap/imap-sort.ts';
import { formatThreads, threadOrderedSubject, threadReferences } from '../lib-imap/imap-thread.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { searchMessages } from './cmd-search.ts';
import { checkUpdateTag, keepSortUpdate, parsePartialRange } from './cmd-search-context.ts';
import { indexOfUid } from './imapd-sync.ts';

/** SORT and THREAD are wired and tested (imapd.test.ts): announce them. */
export function sortAvailable(): boolean { return true; }

async function records(s: ImapSession, idx: number[]): Promise<SortRecord[]> {
  const box = s.box!;
  const view = box.messages();
  const out: SortRecord[] = [];
  for (const i of idx) {
    const m = view[i]!;
    try {
      const raw = await box.readContent(m.uid);
      out.push(sortRecordFromMessage(raw, { seq: i + 1, uid: m.uid, internalDate: await box.internalDate(m.uid), size: m.vsize }));
    } catch (e) {
      if (e instanceof MailError && e.code === 'EXPUNGED') continue;
      throw e;
    }
  }
  return out;
}

async function searchPart(s: ImapSession, c: CommandContext, args: ImapArg[]): Promise<{ hits: number[]; key: SearchKey } | Reply> {
  if (args.length < 2) throw new ImapParseError('Invalid arguments');
  const charset = argString(args[0]);
  if (!charset) throw new ImapParseError('Invalid charset');
  try {
    const prog = parseSearchArgs([{ type: 'atom', value: 'CHARSET' }, args[0]!, ...args.slice(1)]);
    return { hits: await searchMessages(s, s.box!, prog.key), key: prog.key };
  } catch (e) {
    if (e instanceof ImapParseError && e.response === 'NO') return { status: 'NO', code: 'BADCHARSET', text: 'Unknown charset' };
    throw e;
  }
}

function sortedSet(nums: number[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < nums.length) {
    let j = i;
    while (j + 1 < nums.length && nums[j + 1] === nums[j]! + 1) j++;
    out.push(j > i ? `${nums[i]}:${nums[j]}` : String(nums[i]));
    i = j + 1;
  }
  return out.join(',');
}

/** RETURN options of SORT: ESORT's MIN MAX ALL COUNT (RFC 5267 §3), CONTEXT=SORT's PARTIAL, UPDATE, CONTEXT (§4). */
interface SortReturn { min: boolean; max: boolean; all: boolean; count: boolean; update: boolean; partial?: [number, number] }

function parseSortReturn(l: ImapArg | undefined): SortReturn {
  if (l?.type !== 'list') throw new ImapParseError('Invalid RETURN options');
  const r: SortReturn = { min: false, max: false, all: false, count: false, update: false };
  let any = false;
  for (let i = 0; i < l.items.length; i++) {
    const w = argAtom(l.items[i])?.toUpperCase() ?? '';
    if (w === 'MIN' || w === 'MAX' || w === 'ALL' || w === 'COUNT') { r[w.toLowerCase() as 'min' | 'max' | 'all' | 'count'] = any = true; continue; }
    if (w === 'CONTEXT') continue; // a hint only
    if (w === 'UPDATE') {
      if (r.update) throw new ImapParseError('SORT return options have duplicate UPDATE.');
      r.update = any = true;
      continue;
    }
    if (w === 'PARTIAL') {
      if (r.partial) throw new ImapParseError('PARTIAL can be used only once.');
      const range = l.items[++i];
      const text = range?.type === 'atom' ? range.value : range?.type === 'number' ? range.raw : undefined;
      if (text === undefined) throw new ImapParseError('PARTIAL range missing.');
      r.partial = parsePartialRange(text);
      any = true;
      continue;
    }
    throw new ImapParseError(`Unknown RETURN option ${w.slice(0, 20)}`);
  }
  if (r.partial && r.all) throw new ImapParseError('PARTIAL conflicts with ALL');
  if (!any) r.all = true;
  return r;
}

export async function cmdSort(s: ImapSession, c: CommandContext): Promise<Reply> {
  let args = c.args;
  let ret: SortReturn | undefined;
  if (argAtom(args[0])?.toUpperCase() === 'RETURN') {
    ret = parseSortReturn(args[1]);
    args = args.slice(2);
  }
  const crit = args[0];
  if (crit?.type !== 'list') throw new ImapParseError('Invalid sort criteria');
  let criteria;
  try { criteria = parseSortCriteria(crit.items.map((x) => argAtom(x) ?? '')); } catch (e) {
    if (e instanceof SortCriteriaError) throw new ImapParseError(e.message);
    throw e;
  }
  if (ret?.update) checkUpdateTag(s, c, { ret: { min: false, max: false, all: false, count: false, save: false, update: true }, args: [] });
  const found = await searchPart(s, c, args.slice(1));
  if (!('hits' in found)) return found;
  const { hits, key } = found;
  const sorted = sortMessages(await records(s, hits), criteria);
  const nums = sorted.map((r) => (c.uid ? r.uid : r.seq));
  if (!ret) {
    await s.send(`* SORT${nums.length ? ' ' + nums.join(' ') : ''}\r\n`);
    return { status: 'OK', text: 'Sort completed' };
  }
  let noUpdate = false;
  if (ret.update) {
    // CONTEXT=SORT (RFC 5267 §4): the sorted result kept current by the sync (cmd-search-context.ts)
    const box = s.box!;
    const records1 = async (uids: readonly number[]): Promise<SortRecord[]> => {
      if (s.box !== box) return [];
      const view = box.messages();
      const idx = uids.map((u) => indexOfUid(view, u)).filter((i) => i >= 0).sort((a, b) => a - b);
      return (await records(s, idx)).map((r) => ({ ...r, seq: r.uid }));
    };
    noUpdate = !keepSortUpdate(s, c, key, hits, { criteria, order: sorted.map((r) => ({ ...r, seq: r.uid })), records: records1 });
  }
  let line = `* ESEARCH (TAG "${c.tag}")${c.uid ? ' UID' : ''}`;
  if (nums.length > 0) {
    if (ret.min) line += ` MIN ${Math.min(...nums)}`;
    if (ret.max) line += ` MAX ${Math.max(...nums)}`;
    if (ret.all) line += ` ALL ${sortedSet(nums)}`;
  }
  if (ret.partial) {
    // RFC 5267 §4.4: the lo-th to hi-th messages of the SORTED result, in sort order
    const [lo, hi] = ret.partial;
    const part = nums.slice(lo - 1, hi);
    line += ` PARTIAL (${lo}:${hi} ${part.length > 0 ? sortedSet(part) : 'NIL'})`;
  }
  if (ret.count) line += ` COUNT ${nums.length}`;
  await s.send(line + '\r\n');
  if (noUpdate) await s.send(`* NO [NOUPDATE "${c.tag}"] Too many search updates\r\n`);
  return { status: 'OK', text: 'Sort completed' };
}

export async function cmdThread(s: ImapSession, c: CommandContext): Promise<Reply> {
  const alg = argAtom(c.args[0])?.toUpperCase();
  if (alg !== 'REFERENCES' && alg !== 'ORDEREDSUBJECT') throw new ImapParseError(`Unknown thread algorithm ${String(alg ?? '').slice(0, 30)}`);
  const found = await searchPart(s, c, c.args.slice(1));
  if (!('hits' in found)) return found;
  const recs = await records(s, found.hits);
  const threads = alg === 'REFERENCES' ? threadReferences(recs) : threadOrderedSubject(recs);
  const text = formatThreads(threads, c.uid);
  await s.send(`* THREAD${text ? ' ' + text : ''}\r\n`);
  return { status: 'OK', text: 'Thread completed' };
}
