/**
 * cmd-sort - SORT / UID SORT (RFC 5256 §3, SORT=DISPLAY RFC 5957, ESORT RFC 5267 §3) and
 * THREAD / UID THREAD (RFC 5256 §4: REFERENCES, ORDEREDSUBJECT), wired to the pure algorithms
 * of lib-imap/imap-sort.ts and imap-thread.ts (Dovecot 2.3's orderings). The search program
 * after the charset is evaluated by cmd-search.ts. Answers:
 *   * SORT 3 1 2            * THREAD (1 2)(3 (4)(5))
 *   * ESEARCH (TAG "t") UID MIN a MAX b ALL 5,3,1:2 COUNT n     (ESORT; ALL in sorted order)
 */
import { argAtom, argString, ImapParseError, type ImapArg } from '../lib-imap/imap-parser.ts';
import { parseSearchArgs } from '../lib-imap/imap-search-args.ts';
import { parseSortCriteria, sortMessages, sortRecordFromMessage, SortCriteriaError, type SortRecord } from '../lib-imap/imap-sort.ts';
import { formatThreads, threadOrderedSubject, threadReferences } from '../lib-imap/imap-thread.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { searchMessages } from './cmd-search.ts';

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

async function searchPart(s: ImapSession, c: CommandContext, args: ImapArg[]): Promise<number[] | Reply> {
  if (args.length < 2) throw new ImapParseError('Invalid arguments');
  const charset = argString(args[0]);
  if (!charset) throw new ImapParseError('Invalid charset');
  try {
    const prog = parseSearchArgs([{ type: 'atom', value: 'CHARSET' }, args[0]!, ...args.slice(1)]);
    return await searchMessages(s, s.box!, prog.key);
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

export async function cmdSort(s: ImapSession, c: CommandContext): Promise<Reply> {
  let args = c.args;
  let ret: string[] | undefined;
  if (argAtom(args[0])?.toUpperCase() === 'RETURN') {
    const l = args[1];
    if (l?.type !== 'list') throw new ImapParseError('Invalid RETURN options');
    ret = l.items.map((x) => argAtom(x)?.toUpperCase() ?? '');
    for (const r of ret) if (!['MIN', 'MAX', 'ALL', 'COUNT'].includes(r)) throw new ImapParseError(`Unknown RETURN option ${r.slice(0, 20)}`);
    if (ret.length === 0) ret = ['ALL'];
    args = args.slice(2);
  }
  const crit = args[0];
  if (crit?.type !== 'list') throw new ImapParseError('Invalid sort criteria');
  let criteria;
  try { criteria = parseSortCriteria(crit.items.map((x) => argAtom(x) ?? '')); } catch (e) {
    if (e instanceof SortCriteriaError) throw new ImapParseError(e.message);
    throw e;
  }
  const hits = await searchPart(s, c, args.slice(1));
  if (!Array.isArray(hits)) return hits;
  const sorted = sortMessages(await records(s, hits), criteria);
  const nums = sorted.map((r) => (c.uid ? r.uid : r.seq));
  if (!ret) {
    await s.send(`* SORT${nums.length ? ' ' + nums.join(' ') : ''}\r\n`);
  } else {
    let line = `* ESEARCH (TAG "${c.tag}")${c.uid ? ' UID' : ''}`;
    if (nums.length > 0) {
      if (ret.includes('MIN')) line += ` MIN ${Math.min(...nums)}`;
      if (ret.includes('MAX')) line += ` MAX ${Math.max(...nums)}`;
      if (ret.includes('ALL')) line += ` ALL ${sortedSet(nums)}`;
    }
    if (ret.includes('COUNT')) line += ` COUNT ${nums.length}`;
    await s.send(line + '\r\n');
  }
  return { status: 'OK', text: 'Sort completed' };
}

export async function cmdThread(s: ImapSession, c: CommandContext): Promise<Reply> {
  const alg = argAtom(c.args[0])?.toUpperCase();
  if (alg !== 'REFERENCES' && alg !== 'ORDEREDSUBJECT') throw new ImapParseError(`Unknown thread algorithm ${String(alg ?? '').slice(0, 30)}`);
  const hits = await searchPart(s, c, c.args.slice(1));
  if (!Array.isArray(hits)) return hits;
  const recs = await records(s, hits);
  const threads = alg === 'REFERENCES' ? threadReferences(recs) : threadOrderedSubject(recs);
  const text = formatThreads(threads, c.uid);
  await s.send(`* THREAD${text ? ' ' + text : ''}\r\n`);
  return { status: 'OK', text: 'Thread completed' };
}
