/**
 * imap-search-args — SEARCH program (RFC 3501 §6.4.4, RFC 9051 §6.4.4) into a typed tree:
 * every RFC 3501 key, plus MODSEQ (RFC 7162 §3.1.5), OLDER/YOUNGER (RFC 5032 WITHIN),
 * SAVEDBEFORE/SAVEDON/SAVEDSINCE/SAVEDATESUPPORTED (RFC 8514), EMAILID/THREADID (RFC 8474 §6),
 * `$` (RFC 5182 SEARCHRES),
 * ESEARCH `RETURN (...)` options (RFC 4731 / RFC 9051), and CHARSET (UTF-8 and US-ASCII only;
 * any other charset → `NO [BADCHARSET (UTF-8 US-ASCII)]`, RFC 3501 §6.4.4, as Dovecot answers).
 *
 * The parse is iterative (an explicit operator stack), so `NOT NOT NOT ...` or deep OR chains
 * cannot exhaust the call stack. Search strings come back as JS strings (UTF-8 decoded).
 */
import { ImapParseError, argBytes, argModSeq, type ImapArg } from './imap-parser.ts';
import { parseSeqSet, type SeqSet } from './imap-seqset.ts';
import { parseImapDate } from './imap-date.ts';
import { decodeCharset, isKnownCharset } from '../lib-mail/mail-decode.ts';

export type SearchKey =
  | { op: 'all' }
  | { op: 'flag'; flag: string; set: boolean } // \Seen, \Answered..., keywords; set=false for UN*
  | { op: 'recent'; set: boolean }
  | { op: 'new' } // RECENT UNSEEN
  /** FROM/TO/CC/BCC (`address`: matched as Dovecot normalises addresses), SUBJECT and HEADER */
  | { op: 'header'; field: string; value: string; address?: boolean; compressLwsp?: boolean }
  | { op: 'body'; value: string }
  | { op: 'text'; value: string }
  | { op: 'date'; field: 'internal' | 'sent' | 'saved'; cmp: 'before' | 'on' | 'since'; date: Date }
  | { op: 'size'; cmp: 'larger' | 'smaller'; size: number }
  | { op: 'seqset'; uid: boolean; set: SeqSet }
  | { op: 'modseq'; modseq: bigint; entry?: { name: string; type: 'priv' | 'shared' | 'all' } }
  | { op: 'age'; cmp: 'older' | 'younger'; seconds: number }
  | { op: 'savedatesupported' }
  /** RFC 8474 §6: EMAILID / THREADID objectid */
  | { op: 'objectid'; kind: 'email' | 'thread'; id: string }
  | { op: 'not'; key: SearchKey }
  | { op: 'or'; a: SearchKey; b: SearchKey }
  | { op: 'and'; keys: SearchKey[] };

export type SearchReturn = 'MIN' | 'MAX' | 'ALL' | 'COUNT' | 'SAVE';

export interface SearchProgram {
  /** The CHARSET given (upper-cased); strings below are already converted to UTF-8. */
  charset: string;
  /** undefined = plain SEARCH answer; [] = `RETURN ()` = ESEARCH with ALL (RFC 4731 §3.1). */
  returnOpts?: SearchReturn[];
  key: SearchKey;
}

export const SEARCH_CHARSETS = ['UTF-8', 'US-ASCII'];

const FLAG_KEYS: Record<string, [string, boolean]> = {
  ANSWERED: ['\\Answered', true], DELETED: ['\\Deleted', true], DRAFT: ['\\Draft', true],
  FLAGGED: ['\\Flagged', true], SEEN: ['\\Seen', true], UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false], UNDRAFT: ['\\Draft', false], UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
};
const ADDR_KEYS: Record<string, string> = { FROM: 'From', TO: 'To', CC: 'Cc', BCC: 'Bcc', SUBJECT: 'Subject' };
const DATE_KEYS: Record<string, ['internal' | 'sent' | 'saved', 'before' | 'on' | 'since']> = {
  BEFORE: ['internal', 'before'], ON: ['internal', 'on'], SINCE: ['internal', 'since'],
  SENTBEFORE: ['sent', 'before'], SENTON: ['sent', 'on'], SENTSINCE: ['sent', 'since'],
  SAVEDBEFORE: ['saved', 'before'], SAVEDON: ['saved', 'on'], SAVEDSINCE: ['saved', 'since'],
};

type Pending = { kind: 'not' } | { kind: 'or'; first?: SearchKey } | { kind: 'and'; keys: SearchKey[]; items: readonly ImapArg[]; i: number };

function atomText(a: ImapArg | undefined): string | undefined {
  return a?.type === 'atom' ? a.value : a?.type === 'number' || a?.type === 'nil' ? a.raw : undefined;
}

function stringArg(a: ImapArg | undefined, key: string, charset: string): string {
  // an astring: NIL there is the atom "NIL" (RFC 3501 §9), so SUBJECT NIL searches for "NIL"
  const bytes = argBytes(a);
  if (!bytes) throw new ImapParseError(`SEARCH ${key}: missing string argument`);
  if (charset === 'US-ASCII' && bytes.some((b) => b >= 0x80)) {
    throw new ImapParseError(`SEARCH ${key}: 8-bit string with CHARSET US-ASCII`);
  }
  const s = charset === 'UTF-8' || charset === 'US-ASCII' ? bytes.toString('utf8') : decodeCharset(bytes, charset);
  if (s.includes('\ufffd')) throw new ImapParseError(`SEARCH ${key}: string is not valid UTF-8`);
  return s;
}

/**
 * Parses SEARCH arguments (after the command name). `esearch` enables RETURN (...).
 */
/** `defaultCharset`: without CHARSET, strings are in it (UTF-8 after UTF8=ACCEPT, RFC 6855 §3); US-ASCII otherwise. */
export function parseSearchArgs(args: readonly ImapArg[], opts: { esearch?: boolean; defaultCharset?: 'UTF-8' } = {}): SearchProgram {
  let i = 0;
  let returnOpts: SearchReturn[] | undefined;
  let charset: string = opts.defaultCharset ?? 'US-ASCII';
  if (atomText(args[i])?.toUpperCase() === 'RETURN') {
    if (!opts.esearch) throw new ImapParseError('SEARCH RETURN needs ESEARCH');
    const l = args[i + 1];
    if (l?.type !== 'list') throw new ImapParseError('SEARCH RETURN: expected a list of options');
    returnOpts = [];
    for (const o of l.items) {
      const t = atomText(o)?.toUpperCase();
      if (t !== 'MIN' && t !== 'MAX' && t !== 'ALL' && t !== 'COUNT' && t !== 'SAVE') throw new ImapParseError(`SEARCH RETURN: unknown option "${String(t ?? '').slice(0, 30)}"`);
      returnOpts.push(t);
    }
    i += 2;
  }
  if (atomText(args[i])?.toUpperCase() === 'CHARSET') {
    const cs = args[i + 1];
    const name = argBytes(cs)?.toString('latin1');
    if (name === undefined) throw new ImapParseError('SEARCH CHARSET: missing charset name');
    const up = name.toUpperCase();
    if (up !== 'UTF-8' && up !== 'US-ASCII' && !isKnownCharset(up)) {
      throw new ImapParseError(`Unsupported search charset ${name.slice(0, 40)}`, { response: 'NO', code: 'BADCHARSET (UTF-8 US-ASCII)' });
    }
    charset = up;
    i += 2;
  }
  if (i >= args.length) throw new ImapParseError('SEARCH: missing search key');
  const top: Pending = { kind: 'and', keys: [], items: args, i };
  const stack: Pending[] = [top];
  const listFrames: number[] = [0]; // indexes of the 'and' frames in `stack`, innermost last

  const reduce = (key: SearchKey): void => {
    let k = key;
    for (;;) {
      const p = stack[stack.length - 1]!;
      if (p.kind === 'not') { stack.pop(); k = { op: 'not', key: k }; continue; }
      if (p.kind === 'or') {
        if (!p.first) { p.first = k; return; }
        stack.pop();
        k = { op: 'or', a: p.first, b: k };
        continue;
      }
      p.keys.push(k);
      return;
    }
  };

  for (let guard = 0; guard < 10_000_000; guard++) {
    const fi = listFrames[listFrames.length - 1]!;
    const frame = stack[fi] as Extract<Pending, { kind: 'and' }>;
    if (frame.i >= frame.items.length) {
      if (fi !== stack.length - 1) throw new ImapParseError('SEARCH: NOT/OR is missing its search key');
      if (frame.keys.length === 0) throw new ImapParseError('SEARCH: empty list');
      stack.pop();
      listFrames.pop();
      const k: SearchKey = frame.keys.length === 1 ? frame.keys[0]! : { op: 'and', keys: frame.keys };
      if (stack.length === 0) return { charset, ...(returnOpts ? { returnOpts } : {}), key: k };
      reduce(k);
      continue;
    }
    const a = frame.items[frame.i++]!;
    const next = (): ImapArg | undefined => frame.items[frame.i++];
    if (a.type === 'list') {
      listFrames.push(stack.length);
      stack.push({ kind: 'and', keys: [], items: a.items, i: 0 });
      continue;
    }
    const t = atomText(a);
    if (t === undefined) throw new ImapParseError('SEARCH: expected a search key');
    const up = t.toUpperCase();
    if (up === 'NOT') { stack.push({ kind: 'not' }); continue; }
    if (up === 'OR') { stack.push({ kind: 'or' }); continue; }
    if (up === 'ALL') { reduce({ op: 'all' }); continue; }
    if (FLAG_KEYS[up]) { const [flag, set] = FLAG_KEYS[up]; reduce({ op: 'flag', flag, set }); continue; }
    if (up === 'KEYWORD' || up === 'UNKEYWORD') {
      const kw = atomText(next());
      if (!kw) throw new ImapParseError(`SEARCH ${up}: missing keyword`);
      reduce({ op: 'flag', flag: kw, set: up === 'KEYWORD' });
      continue;
    }
    if (up === 'RECENT') { reduce({ op: 'recent', set: true }); continue; }
    if (up === 'OLD') { reduce({ op: 'recent', set: false }); continue; }
    if (up === 'NEW') { reduce({ op: 'new' }); continue; }
    if (ADDR_KEYS[up]) {
      const key: SearchKey = { op: 'header', field: ADDR_KEYS[up], value: stringArg(next(), up, charset) };
      if (up !== 'SUBJECT') key.address = true; // RFC 3501 §6.4.4: "in the envelope structure's FROM field"
      else key.compressLwsp = true; // Dovecot: white space runs in Subject count as one space
      reduce(key);
      continue;
    }
    if (up === 'HEADER') {
      const field = stringArg(next(), 'HEADER', charset);
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(field)) throw new ImapParseError(`SEARCH HEADER: invalid header name "${field.slice(0, 40)}"`);
      reduce({ op: 'header', field, value: stringArg(next(), 'HEADER', charset) });
      continue;
    }
    if (up === 'BODY' || up === 'TEXT') { reduce({ op: up === 'BODY' ? 'body' : 'text', value: stringArg(next(), up, charset) }); continue; }
    if (DATE_KEYS[up]) {
      const [field, cmp] = DATE_KEYS[up];
      const d = next();
      const ds = argBytes(d)?.toString('latin1');
      if (ds === undefined) throw new ImapParseError(`Missing parameter for search key (for search key: ${up})`); // Dovecot's text
      let date: Date;
      try { date = parseImapDate(ds); } catch { throw new ImapParseError('Invalid search date parameter'); } // Dovecot's text
      reduce({ op: 'date', field, cmp, date });
      continue;
    }
    if (up === 'LARGER' || up === 'SMALLER') {
      const n = next();
      if (n?.type !== 'number' || n.value > 0xffffffff) throw new ImapParseError(`SEARCH ${up}: expected a number`);
      reduce({ op: 'size', cmp: up === 'LARGER' ? 'larger' : 'smaller', size: n.value });
      continue;
    }
    if (up === 'OLDER' || up === 'YOUNGER') {
      const n = next();
      if (n?.type !== 'number' || n.value < 1 || n.value > 0xffffffff) throw new ImapParseError(`SEARCH ${up}: expected a positive number of seconds`);
      reduce({ op: 'age', cmp: up === 'OLDER' ? 'older' : 'younger', seconds: n.value });
      continue;
    }
    if (up === 'UID') {
      const s = atomText(next());
      if (!s) throw new ImapParseError('SEARCH UID: missing sequence set');
      reduce({ op: 'seqset', uid: true, set: parseSeqSet(s) });
      continue;
    }
    if (up === 'MODSEQ') {
      let n = next();
      let entry: { name: string; type: 'priv' | 'shared' | 'all' } | undefined;
      if (n && (n.type === 'string' || n.type === 'literal')) {
        const ty = atomText(next())?.toLowerCase();
        if (ty !== 'priv' && ty !== 'shared' && ty !== 'all') throw new ImapParseError('SEARCH MODSEQ: entry type must be priv, shared or all');
        entry = { name: n.value.toString('utf8'), type: ty };
        n = next();
      }
      reduce({ op: 'modseq', modseq: argModSeq(n, 'MODSEQ value', true), ...(entry ? { entry } : {}) });
      continue;
    }
    if (up === 'SAVEDATESUPPORTED') { reduce({ op: 'savedatesupported' }); continue; }
    if (up === 'EMAILID' || up === 'THREADID') {
      const id = argBytes(next())?.toString('latin1');
      if (id === undefined || !/^[A-Za-z0-9_-]{1,255}$/.test(id)) throw new ImapParseError(`SEARCH ${up}: expected an objectid`);
      reduce({ op: 'objectid', kind: up === 'EMAILID' ? 'email' : 'thread', id });
      continue;
    }
    if (/^[\d*$]/.test(t)) { reduce({ op: 'seqset', uid: false, set: parseSeqSet(t) }); continue; }
    throw new ImapParseError(`Unknown SEARCH key "${t.slice(0, 40)}"`);
  }
  throw new ImapParseError('SEARCH program too complex');
}
