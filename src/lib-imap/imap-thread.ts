/**
 * imap-thread — THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §2.2, §4) over the plain
 * SortRecords of imap-sort.ts, reproducing Dovecot 2.3's answers byte for byte (checked against
 * real Dovecot in imap-sort-golden.test.ts). Dovecot's behaviour is copied where it differs from
 * the letter of the RFC (docs/imap-sort-thread.md lists the differences):
 *
 * ORDEREDSUBJECT (Dovecot imap/imap-thread.c): messages sorted by (base subject, sent date, seq);
 * each run of equal base subjects is a thread whose first message is the parent of all others;
 * threads are ordered by the sent date (INTERNALDATE if none) of their first message.
 *
 * REFERENCES (Dovecot lib-storage/index/index-thread*.c):
 * - message ids are extracted like Dovecot's message_id_get_next(): the first "<...>" holding an
 *   "@" (white space inside removed); Message-ID, then References; In-Reply-To only when
 *   References holds no valid id;
 * - messages are linked in UID order; a second message with an already used Message-ID gets a
 *   fresh id of its own (the first keeps the id); links that would make a loop are ignored, an
 *   existing parent is never replaced by a later References chain (RFC 5256 (1)(B)), but a
 *   message's own last reference (or none at all) overrides the parent that other messages'
 *   References gave it (RFC (1)(C));
 * - dummies are removed: a message is attached to its nearest real ancestor, or to the topmost
 *   dummy; a root dummy with one child is replaced by that child;
 * - roots with the same base subject are merged (RFC (5)), children and roots are ordered by
 *   sent date (INTERNALDATE when missing), then UID.
 *
 * API:
 *   interface Thread { seq: number | null; uid: number | null; children: Thread[] }  (null = dummy)
 *   threadOrderedSubject(records): Thread[]
 *   threadReferences(records): Thread[]
 *   formatThreads(threads, useUid): string   — the text after "* THREAD " ("(1 2)(3 (4)(5))")
 *   messageIdNext(value: string, pos): { id, next } | undefined — Dovecot message_id_get_next()
 *
 * Hostile input: no recursion anywhere (explicit stacks), so a 100,000-message chain is fine;
 * the loop check walks up the tree with cached root hints (amortised near O(1) per link).
 */
import type { SortRecord } from './imap-sort.ts';
import { sortDate, sortMessages } from './imap-sort.ts';
import { baseSubject } from './imap-base-subject.ts';

export interface Thread {
  /** Sequence number and UID of the message; both null for a dummy parent. */
  seq: number | null;
  uid: number | null;
  children: Thread[];
}

// ---------------------------------------------------------------- message ids

function isLwsp(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

const ATEXT = /[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\uffff]/;

/**
 * Dovecot message_id_get_next() over one header value (latin1 text), made linear-time for
 * hostile values: the fast scan's stopping point and the next "@" are cached (both only move
 * forward), and every comment's end is computed once (`commentEnd`), so "<(<(<(..." or
 * "<a<a<a...(" cost O(n) instead of Dovecot's O(n²). The ids found are the same.
 */
class MessageIdScanner {
  readonly s: string;
  /**
   * '(' position → position after its matching ')' (0: not known yet, -1: never closed).
   * Allocated on the first comment only.
   */
  private commentEnd: Int32Array | undefined;
  private stop = -1;
  private nextAt = -2;

  constructor(s: string) {
    this.s = s;
  }

  /** End of the comment opening at `a` (nested comments, backslash escapes), -1 if unclosed. */
  private skipComment(a: number): number {
    const s = this.s;
    const memo = (this.commentEnd ??= new Int32Array(s.length + 1));
    if (memo[a] !== 0) return memo[a]!;
    const open: number[] = [a];
    let q = a + 1;
    while (q < s.length && open.length > 0) {
      const c = s.charCodeAt(q);
      if (c === 0x5c) { q += 2; continue; }
      if (c === 0x28) {
        const k = memo[q]!;
        if (k === 0) { open.push(q); q++; continue; }
        if (k < 0) break;
        q = k;
        continue;
      }
      if (c === 0x29) memo[open.pop()!] = q + 1;
      q++;
    }
    for (const o of open) memo[o] = -1;
    return memo[a]!;
  }

  /** rfc822_skip_lwsp: white space and comments; s.length if a comment never closes. */
  private skipCfws(p: number): number {
    const s = this.s;
    for (;;) {
      while (p < s.length && isLwsp(s.charCodeAt(p))) p++;
      if (p >= s.length || s.charCodeAt(p) !== 0x28) return p;
      const e = this.skipComment(p);
      if (e < 0) return s.length;
      p = e;
    }
  }

  /** rfc822_parse_dot_atom: atoms separated by "." (CFWS allowed around the dots). */
  private dotAtom(p: number): { text: string; end: number } | undefined {
    const s = this.s;
    let text = '';
    let q = p;
    for (;;) {
      const st = q;
      while (q < s.length && ATEXT.test(s[q]!)) q++;
      if (q === st) return undefined;
      text += s.slice(st, q);
      q = this.skipCfws(q);
      if (s[q] !== '.') return { text, end: q };
      text += '.';
      q = this.skipCfws(q + 1);
    }
  }

  /** rfc822_parse_quoted_string: the content, unescaped. */
  private quoted(p: number): { text: string; end: number } | undefined {
    const s = this.s;
    let text = '';
    let q = p + 1;
    while (q < s.length) {
      const c = s[q]!;
      if (c === '"') return { text, end: this.skipCfws(q + 1) };
      if (c === '\\' && q + 1 < s.length) { text += s[q + 1]; q += 2; continue; }
      if (c !== '\r' && c !== '\n') text += c;
      q++;
    }
    return undefined;
  }

  /** get_untokenized_msgid: the slow path for ids with quotes or comments. */
  private untokenized(p: number): { id: string; next: number } | undefined {
    let q = this.skipCfws(p);
    const left = this.s[q] === '"' ? this.quoted(q) : this.dotAtom(q);
    if (!left) return undefined;
    q = left.end;
    if (this.s[q] !== '@') return undefined;
    q = this.skipCfws(q + 1);
    const right = this.dotAtom(q);
    if (!right) return undefined;
    if (this.s[right.end] !== '>') return undefined;
    return { id: `${left.text}@${right.text}`, next: right.end + 1 };
  }

  /** The next valid id at or after `pos`, and where to continue. */
  next(pos: number): { id: string; next: number } | undefined {
    const s = this.s;
    let p = pos;
    for (;;) {
      p = s.indexOf('<', p);
      if (p < 0) return undefined;
      const start = p + 1;
      // Fast scan: stop at '>', '"' or '(' (Dovecot skips every byte >= 'A', so '[' never stops).
      if (this.stop < start) {
        let q = start;
        for (; q < s.length; q++) {
          const c = s.charCodeAt(q);
          if (c < 0x41 && (c === 0x3e || c === 0x22 || c === 0x28)) break;
        }
        this.stop = q;
      }
      if (this.stop >= s.length) return undefined;
      if (this.nextAt < start) {
        const a = s.indexOf('@', start);
        this.nextAt = a < 0 ? s.length : a;
      }
      const foundAt = this.nextAt < this.stop;
      if (s.charCodeAt(this.stop) === 0x3e) {
        if (foundAt) return { id: s.slice(start, this.stop).replace(/[ \t\r\n]/g, ''), next: this.stop + 1 };
        p = this.stop + 1;
      } else {
        const r = this.untokenized(start);
        if (r) return r;
        p = start;
      }
    }
  }
}

/**
 * Dovecot message_id_get_next(): the next valid "<id@host>" of header value `s` (latin1 text) at
 * or after `pos`: the id without brackets and white space, and where to continue.
 */
export function messageIdNext(s: string, pos: number): { id: string; next: number } | undefined {
  return new MessageIdScanner(s).next(pos);
}

/**
 * Upper bound on the ids used from one References header: the LAST 10,000 (like lib-mail's
 * MAX_ADDRESSES), so the parent (the last id) is still right. Dovecot has no limit.
 */
export const MAX_REFERENCES = 10_000;

/** The valid ids of a header value, in order: the first `first` ones, or the last MAX_REFERENCES. */
export function messageIds(v: Buffer | undefined, first = Infinity): string[] {
  if (!v) return [];
  const sc = new MessageIdScanner(v.toString('latin1'));
  let out: string[] = [];
  let pos = 0;
  while (out.length < first) {
    const r = sc.next(pos);
    if (!r) break;
    out.push(r.id);
    if (out.length >= 2 * MAX_REFERENCES) out = out.slice(-MAX_REFERENCES);
    pos = r.next;
  }
  return out.length > MAX_REFERENCES ? out.slice(-MAX_REFERENCES) : out;
}

// ---------------------------------------------------------------- ORDEREDSUBJECT

/** THREAD=ORDEREDSUBJECT (RFC 5256 §2.2, Dovecot imap_thread_orderedsubject()). */
export function threadOrderedSubject(records: readonly SortRecord[]): Thread[] {
  const sorted = sortMessages(records, [{ key: 'SUBJECT', reverse: false }, { key: 'DATE', reverse: false }]);
  const threads: { ts: number; first: SortRecord; node: Thread }[] = [];
  let prev: string | undefined;
  let cur: Thread | undefined;
  for (const r of sorted) {
    const subj = r.subject === undefined ? '' : baseSubject(r.subject).subject;
    if (cur === undefined || subj !== prev) {
      cur = { seq: r.seq, uid: r.uid, children: [] };
      threads.push({ ts: sortDate(r), first: r, node: cur });
    } else {
      cur.children.push({ seq: r.seq, uid: r.uid, children: [] });
    }
    prev = subj;
  }
  threads.sort((a, b) => (a.ts - b.ts) || (a.first.uid - b.first.uid));
  return threads.map((t) => t.node);
}

// ---------------------------------------------------------------- REFERENCES

/** Growable node table indexed like Dovecot's thread_nodes (1-based; 0 = none). */
class NodeTable {
  /** Record index of the message at this node, -1 for a dummy (id only referenced). */
  rec: number[] = [-1];
  parent: number[] = [0];
  /** Number of nodes whose parent is this one (a childless node is nobody's ancestor). */
  nChildren: number[] = [0];
  /** Cached ancestor (valid while hintVer === version). */
  hint: number[] = [0];
  hintVer: number[] = [0];
  version = 1;

  add(): number {
    this.rec.push(-1);
    this.parent.push(0);
    this.nChildren.push(0);
    this.hint.push(0);
    this.hintVer.push(0);
    return this.rec.length - 1;
  }

  setParent(child: number, parent: number): void {
    const old = this.parent[child]!;
    if (old !== 0) {
      this.nChildren[old]!--;
      this.version++; // a cut: cached ancestors may be wrong now
    }
    this.parent[child] = parent;
    if (parent !== 0) this.nChildren[parent]!++;
  }

  /** The root of x's tree, with path compression on the hint cache. */
  root(x: number): number {
    const path: number[] = [];
    let cur = x;
    for (;;) {
      const up = this.hintVer[cur] === this.version && this.hint[cur] !== 0 ? this.hint[cur]! : this.parent[cur]!;
      if (up === 0) break;
      path.push(cur);
      cur = up;
    }
    for (const p of path) { this.hint[p] = cur; this.hintVer[p] = this.version; }
    return cur;
  }

  /**
   * thread_link_reference(parent, child). Only a child without a parent can get one: for any
   * other child Dovecot's outcome is a no-op (loop ignored, same link, or "keep the original
   * parent"). For a parentless child, "child is an ancestor of parent" (the loop check) is
   * "child is the root of parent's tree".
   */
  link(parentIdx: number, childIdx: number): void {
    if (this.parent[childIdx] !== 0) return;
    if (parentIdx === childIdx) return;
    if (this.nChildren[childIdx] !== 0 && this.root(parentIdx) === childIdx) return;
    this.setParent(childIdx, parentIdx);
  }
}

interface Root {
  idx: number;
  dummy: boolean;
  ignore: boolean;
  /** Sort date and UID (of the first child for a dummy). */
  date: number;
  uid: number;
  rootIdx1: number;
  parentRootIdx1: number;
  replyOrForward: boolean;
}

/** THREAD=REFERENCES (RFC 5256 §2.2 with Dovecot's choices, see the header). */
export function threadReferences(records: readonly SortRecord[]): Thread[] {
  const recs = [...records].sort((a, b) => a.uid - b.uid);
  const t = new NodeTable();
  const byId = new Map<string, number>();
  const getIdx = (id: string): number => {
    let i = byId.get(id);
    if (i === undefined) { i = t.add(); byId.set(id, i); }
    return i;
  };

  // Pass 1 (Dovecot's strmap): index every id in order of first appearance.
  const msgIdx: number[] = [];
  const refIdx: number[][] = [];
  for (const r of recs) {
    const id = messageIds(r.messageId, 1)[0];
    msgIdx.push(id === undefined ? t.add() : getIdx(id));
    let refs = messageIds(r.references);
    if (refs.length === 0) refs = messageIds(r.inReplyTo, 1);
    refIdx.push(refs.map(getIdx));
  }

  // Pass 2 (mail_thread_add): link in UID order. Duplicate Message-IDs get fresh nodes placed
  // after all valid ones (Dovecot's "invalid" string indexes).
  for (let i = 0; i < recs.length; i++) {
    let idx = msgIdx[i]!;
    if (t.rec[idx] !== -1) {
      idx = t.add();
    }
    t.rec[idx] = i;
    const refs = refIdx[i]!;
    let parentIdx = 0;
    if (refs.length > 0) {
      parentIdx = refs[0]!;
      for (let k = 1; k < refs.length; k++) {
        t.link(parentIdx, refs[k]!);
        parentIdx = refs[k]!;
      }
    }
    if (t.parent[idx] !== parentIdx && t.parent[idx] !== 0) t.setParent(idx, 0);
    if (parentIdx !== 0) t.link(parentIdx, idx);
  }

  // (2)+(3) mail_thread_create_shadows: roots, and every message attached to its first real
  // ancestor (or the topmost dummy). Children lists are prepended like Dovecot's.
  const n = t.rec.length;
  const firstChild: number[] = new Array(n).fill(0);
  const nextSibling: number[] = new Array(n).fill(0);
  const addChild = (p: number, c: number): void => {
    while (firstChild.length <= Math.max(p, c)) { firstChild.push(0); nextSibling.push(0); }
    nextSibling[c] = firstChild[p]!;
    firstChild[p] = c;
  };
  const roots: Root[] = [];
  const exists = (i: number): boolean => t.rec[i]! >= 0;
  for (let idx = 1; idx < n; idx++) {
    if (t.parent[idx] === 0) {
      roots.push({ idx, dummy: !exists(idx), ignore: false, date: 0, uid: 0, rootIdx1: 0, parentRootIdx1: 0, replyOrForward: false });
      continue;
    }
    if (!exists(idx)) continue;
    let p = t.parent[idx]!;
    while (!exists(p) && t.parent[p] !== 0) p = t.parent[p]!;
    addChild(p, idx);
  }

  const dateOf = (idx: number): number => sortDate(recs[t.rec[idx]!]!);
  const uidOf = (idx: number): number => recs[t.rec[idx]!]!.uid;
  const sortedChildren = (p: number): number[] => {
    const out: number[] = [];
    for (let c = firstChild[p]!; c !== 0; c = nextSibling[c]!) out.push(c);
    if (out.length > 1) {
      const keyed = out.map((c) => ({ c, d: dateOf(c), u: uidOf(c) }));
      keyed.sort((a, b) => (a.d - b.d) || (a.u - b.u));
      return keyed.map((k) => k.c);
    }
    return out;
  };

  // (4) sort_root_nodes
  const sortRoots = (): void => {
    for (const r of roots) {
      if (r.ignore) continue;
      if (r.dummy) {
        if ((firstChild[r.idx] ?? 0) === 0) { r.ignore = true; continue; }
        const ch = sortedChildren(r.idx);
        if (ch.length === 1) {
          r.idx = ch[0]!;
          r.dummy = false;
          r.date = dateOf(r.idx);
          r.uid = uidOf(r.idx);
        } else {
          r.uid = uidOf(ch[0]!);
          r.date = dateOf(ch[0]!);
        }
      } else {
        r.date = dateOf(r.idx);
        r.uid = uidOf(r.idx);
      }
    }
    roots.sort((a, b) => (a.date - b.date) || (a.uid - b.uid));
  };
  sortRoots();

  // (5)(A)(B) gather_base_subjects
  const table = new Map<string, Root>();
  for (let i = 0; i < roots.length; i++) {
    const r = roots[i]!;
    r.rootIdx1 = i + 1;
    let idx: number;
    if (!r.dummy) idx = r.idx;
    else if (!r.ignore) idx = sortedChildren(r.idx)[0]!;
    else continue;
    const subj = recs[t.rec[idx]!]!.subject;
    if (subj === undefined) continue;
    const b = baseSubject(subj);
    if (b.subject === '') continue;
    const h = table.get(b.subject);
    if (!h) table.set(b.subject, r);
    else if (!h.dummy && (r.dummy || (h.replyOrForward && !b.isReplyOrForward))) {
      h.parentRootIdx1 = r.rootIdx1;
      table.set(b.subject, r);
    } else {
      r.parentRootIdx1 = h.rootIdx1;
    }
    r.replyOrForward = b.isReplyOrForward;
  }

  // (5)(C) merge_subject_threads
  let nextNewIdx = n + 1;
  let changed = false;
  const count = roots.length;
  for (let i = 0; i < count; i++) {
    const cur = roots[i]!;
    if (cur.parentRootIdx1 === 0 || cur.ignore) continue;
    changed = true;
    let root = cur;
    do root = roots[root.parentRootIdx1 - 1]!; while (root.parentRootIdx1 !== 0);
    if (cur.dummy) {
      // Both dummies: the current one's children become the table dummy's children.
      let c = firstChild[cur.idx]!;
      while (c !== 0) {
        const next = nextSibling[c]!;
        addChild(root.idx, c);
        c = next;
      }
      firstChild[cur.idx] = 0;
      cur.ignore = true;
    } else if (root.dummy || (cur.replyOrForward && !root.replyOrForward)) {
      addChild(root.idx, cur.idx);
      cur.ignore = true;
    } else {
      const nr: Root = {
        idx: nextNewIdx++, dummy: true, ignore: false, date: 0, uid: 0,
        rootIdx1: roots.length + 1, parentRootIdx1: 0, replyOrForward: false,
      };
      addChild(nr.idx, root.idx);
      addChild(nr.idx, cur.idx);
      root.parentRootIdx1 = nr.rootIdx1;
      root.ignore = true;
      cur.ignore = true;
      roots.push(nr);
    }
  }
  if (changed) sortRoots();

  // Build the output tree iteratively (mail_thread_iterate_*).
  const mk = (idx: number | null): Thread => {
    if (idx === null) return { seq: null, uid: null, children: [] };
    const r = recs[t.rec[idx]!]!;
    return { seq: r.seq, uid: r.uid, children: [] };
  };
  const out: Thread[] = [];
  const stack: [number, Thread][] = [];
  for (const r of roots) {
    if (r.ignore) continue;
    if ((firstChild[r.idx] ?? 0) === 0 && r.dummy) continue;
    const node = mk(r.dummy ? null : r.idx);
    out.push(node);
    stack.push([r.idx, node]);
  }
  while (stack.length > 0) {
    const [idx, node] = stack.pop()!;
    if ((firstChild[idx] ?? 0) === 0) continue;
    for (const c of sortedChildren(idx)) {
      const child = mk(c);
      node.children.push(child);
      stack.push([c, child]);
    }
  }
  return out;
}

// ---------------------------------------------------------------- output

/**
 * The THREAD response data (RFC 5256 §4), written like Dovecot's imap_thread_write(): a thread
 * whose members each have one child is a flat list "(1 2 3)"; several children are nested
 * "(3 (4)(5))"; a dummy parent is not shown: "((4)(5))". Iterative.
 */
export function formatThreads(threads: readonly Thread[], useUid: boolean): string {
  const num = (t: Thread): string => String(useUid ? t.uid : t.seq);
  const parts: string[] = [];
  type Item = string | { list: readonly Thread[]; root: boolean };
  const stack: Item[] = [{ list: threads, root: true }];
  while (stack.length > 0) {
    const it = stack.pop()!;
    if (typeof it === 'string') { parts.push(it); continue; }
    const list = it.list;
    if (list.length === 0) continue;
    if (list.length === 1 && !it.root) {
      const only = list[0]!;
      parts.push(num(only));
      if (only.children.length > 0) {
        stack.push({ list: only.children, root: false });
        stack.push(' ');
      }
      continue;
    }
    for (let i = list.length - 1; i >= 0; i--) {
      const c = list[i]!;
      if (c.children.length === 0) {
        if (c.seq !== null) stack.push(`(${num(c)})`);
        continue;
      }
      stack.push(')');
      stack.push({ list: c.children, root: false });
      stack.push(c.seq === null ? '(' : `(${num(c)} `);
    }
  }
  return parts.join('');
}
