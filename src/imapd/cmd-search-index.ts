/**
 * cmd-search-index - SEARCH programs answered from the selected mailbox's in-memory view alone
 * (RFC 3501 §6.4.4 keys ALL, ANSWERED/UNANSWERED, DELETED/UNDELETED, DRAFT/UNDRAFT,
 * FLAGGED/UNFLAGGED, SEEN/UNSEEN, KEYWORD/UNKEYWORD, RECENT, OLD, NEW, LARGER, SMALLER,
 * sequence and UID sets (also `$`, RFC 5182), MODSEQ (RFC 7162 §3.1.5), EMAILID (RFC 8474),
 * SAVEDATESUPPORTED (RFC 8514), and NOT / OR / AND of them), as Dovecot answers them from
 * dovecot.index without opening a message file.
 *
 * The program is compiled once into one predicate over a message's flags, size, modseq and
 * numbers, so a search over N messages is one loop with no per-message allocation. Programs
 * with any other key (header, body, text, dates, OLDER/YOUNGER) are not compiled (undefined):
 * cmd-search.ts evaluates them message by message. The answers are the same as cmd-search.ts's
 * general evaluation: system flags compared case-insensitively, keywords case-insensitively
 * (a `KEYWORD \Flag` is a system flag test, as there).
 */
import type { SearchKey } from '../lib-imap/imap-search-args.ts';
import { seqSetHas } from '../lib-imap/imap-seqset.ts';
import { SYSTEM_FLAGS, type MessageInfo } from '../lib-storage/mail-storage.ts';
import { emailId } from './imapd-objectid.ts';

/** A compiled program: does message `m`, at sequence number `seq`, match? */
export type IndexPredicate = (m: MessageInfo, seq: number) => boolean;

/** What a compiled program needs resolved once per search (cmd-search.ts's Env). */
export interface IndexEnv {
  /** Each sequence/UID set key's ranges, resolved against the view (`*` = the last). */
  sets: Map<SearchKey, [number, number][]>;
  /** The saved result (`$`), as UIDs. */
  searchRes: Set<number>;
}

const CANONICAL = new Map<string, string>(SYSTEM_FLAGS.map((f) => [f.toLowerCase(), f]));

/** The program as one predicate, or undefined when a key needs more than the view. */
export function compileIndexSearch(key: SearchKey, env: IndexEnv, depth = 0): IndexPredicate | undefined {
  if (depth > 1000) return undefined;   // cmd-search.ts's analyse() refuses such programs
  switch (key.op) {
    case 'all': case 'savedatesupported': return () => true;
    case 'flag': {
      const want = key.set;
      if (key.flag.startsWith('\\')) {
        const f = CANONICAL.get(key.flag.toLowerCase());
        if (f === undefined) return () => !want;   // \Foo: no message has it
        return (m) => (m.flags as readonly string[]).includes(f) === want;
      }
      const lc = key.flag.toLowerCase();
      return (m) => {
        const kw = m.keywords;
        let has = false;
        for (let i = 0; i < kw.length; i++) if (kw[i]!.toLowerCase() === lc) { has = true; break; }
        return has === want;
      };
    }
    case 'recent': { const want = key.set; return (m) => m.recent === want; }
    case 'new': return (m) => m.recent && !(m.flags as readonly string[]).includes('\\Seen');
    case 'size': { const n = key.size; return key.cmp === 'larger' ? (m) => m.vsize > n : (m) => m.vsize < n; }
    case 'modseq': { const n = key.modseq; return n > BigInt(Number.MAX_SAFE_INTEGER) ? () => false : ((x) => (m) => m.modseq >= x)(Number(n)); }
    case 'objectid': {
      if (key.kind !== 'email') return () => false;   // no THREADID (imapd-objectid.ts)
      const id = key.id;
      return (m) => emailId(m) === id;
    }
    case 'seqset': {
      if (key.set.kind === 'searchres') { const res = env.searchRes; return (m) => res.has(m.uid); }
      const ranges = env.sets.get(key);
      if (ranges === undefined) return undefined;
      return key.uid ? (m) => seqSetHas(ranges, m.uid) : (_m, seq) => seqSetHas(ranges, seq);
    }
    case 'not': { const p = compileIndexSearch(key.key, env, depth + 1); return p && ((m, seq) => !p(m, seq)); }
    case 'or': {
      const a = compileIndexSearch(key.a, env, depth + 1);
      const b = a && compileIndexSearch(key.b, env, depth + 1);
      return a && b && ((m, seq) => a(m, seq) || b(m, seq));
    }
    case 'and': {
      const ps: IndexPredicate[] = [];
      for (const k of key.keys) { const p = compileIndexSearch(k, env, depth + 1); if (!p) return undefined; ps.push(p); }
      if (ps.length === 1) return ps[0];
      if (ps.length === 2) { const [a, b] = ps as [IndexPredicate, IndexPredicate]; return (m, seq) => a(m, seq) && b(m, seq); }
      return (m, seq) => { for (const p of ps) if (!p(m, seq)) return false; return true; };
    }
    default: return undefined;
  }
}
