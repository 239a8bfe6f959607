/**
 * imapd-sync - turns Mailbox.sync() changes into untagged responses (RFC 3501 §7.3.1, §7.4.1,
 * RFC 7162 §3.2.10 VANISHED): new messages → `* N EXISTS` (+ `* R RECENT`), expunges →
 * `* n EXPUNGE` highest sequence number first (so each number is still valid when the client
 * reads it) or `* VANISHED uids` with QRESYNC, flag changes by anyone → `* n FETCH (FLAGS (...))`
 * (+ `MODSEQ (m)` with CONDSTORE). UIDVALIDITY changed under us → BYE (RFC 3501 §2.3.1.1).
 * IMAP4rev2 sessions get no RECENT (RFC 9051). Searches kept with RETURN (UPDATE) get their
 * ESEARCH REMOVEFROM / ADDTO lines here (RFC 5267 §4, cmd-search-context.ts).
 *
 * Also the helpers every command uses to find messages: sequence-set / UID-set resolution and
 * the FLAGS list in Dovecot's order.
 */
import type { Mailbox, MessageInfo } from '../lib-storage/mail-storage.ts';
import { ImapParseError } from '../lib-imap/imap-parser.ts';
import { parseSeqSet, resolveSeqSet, type SeqSet } from '../lib-imap/imap-seqset.ts';
import { numbersToSeqSet } from '../lib-imap/imap-seqset.ts';
import type { ImapSession } from './imapd-session.ts';
import { searchUpdateChanges, searchUpdateExpunged } from './cmd-search-context.ts';

/** Dovecot's flag order: \Answered \Flagged \Deleted \Seen \Draft, then \Recent, then keywords. */
const FLAG_ORDER = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

export function flagList(m: MessageInfo, rev2 = false): string {
  const out: string[] = [];
  for (const f of FLAG_ORDER) if ((m.flags as readonly string[]).includes(f)) out.push(f);
  if (m.recent && !rev2) out.push('\\Recent'); // IMAP4rev2 has no \Recent (RFC 9051 §2.3.2)
  out.push(...m.keywords);
  return `(${out.join(' ')})`;
}

/** Position (0-based) of `uid` in a UID-ordered view, or -1. */
export function indexOfUid(view: readonly MessageInfo[], uid: number): number {
  let lo = 0;
  let hi = view.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const u = view[mid]!.uid;
    if (u === uid) return mid;
    if (u < uid) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}

/**
 * VANISHED (EARLIER) of QRESYNC SELECT and UID FETCH (CHANGEDSINCE m VANISHED) (RFC 7162
 * §3.2.5.2, §3.2.6): the UIDs of `ranges` that are gone and were expunged after modseq `since`,
 * from the store's expunge history (lib-storage postern-index) when it reaches back that far;
 * otherwise every UID of `ranges` that is gone (a superset, which the RFC allows).
 */
export function vanishedEarlier(box: Mailbox, since: bigint, ranges: readonly (readonly [number, number])[]): number[] {
  const top = box.uidNext - 1;
  const view = box.messages();
  const history = since <= BigInt(Number.MAX_SAFE_INTEGER) ? box.expungedSince?.(Number(since)) : undefined;
  const gone: number[] = [];
  if (history) {
    for (const u of history) {
      if (u <= top && ranges.some(([a, b]) => u >= a && u <= b) && indexOfUid(view, u) < 0) gone.push(u);
    }
    return gone;
  }
  for (const [a, b] of ranges) {
    for (let u = a; u <= Math.min(b, top) && gone.length < 1_000_000; u++) if (indexOfUid(view, u) < 0) gone.push(u);
  }
  return gone;
}

/** First index with uid ≥ `uid`. */
function lowerBound(view: readonly MessageInfo[], uid: number): number {
  let lo = 0;
  let hi = view.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (view[mid]!.uid < uid) lo = mid + 1; else hi = mid;
  }
  return lo;
}

export function parseSetArg(text: string | undefined): SeqSet {
  if (text === undefined) throw new ImapParseError('Invalid arguments');
  return parseSeqSet(text);
}

/**
 * The messages a set names, as 0-based view indexes in ascending order. Sequence numbers beyond
 * the mailbox are an error (Dovecot: "Invalid messageset"); UIDs that do not exist are skipped.
 */
export function resolveMessages(s: ImapSession, set: SeqSet, uid: boolean): number[] {
  const view = s.box!.messages();
  const out: number[] = [];
  if (set.kind === 'searchres') {
    for (const u of s.searchRes) { const i = indexOfUid(view, u); if (i >= 0) out.push(i); }
    return out.sort((a, b) => a - b);
  }
  if (uid) {
    const maxUid = view.length > 0 ? view[view.length - 1]!.uid : 0;
    for (const [a, b] of resolveSeqSet(set, maxUid)) {
      for (let i = lowerBound(view, a); i < view.length && view[i]!.uid <= b; i++) out.push(i);
    }
    // "*" names the highest UID even when the set's numbers are all above it (RFC 3501 §6.4.8)
    if (out.length === 0 && view.length > 0 && set.ranges.some(([x, y]) => x === -1 || y === -1)) out.push(view.length - 1);
    return out;
  }
  const ranges = resolveSeqSet(set, view.length);
  for (const [a, b] of ranges) {
    if (b > view.length || a < 1) throw new ImapParseError('Invalid messageset');
    for (let i = a; i <= b; i++) out.push(i - 1);
  }
  if (ranges.length === 0 && set.ranges.length > 0) throw new ImapParseError('Invalid messageset');
  return out;
}

/**
 * `* FLAGS` and `* OK [PERMANENTFLAGS]` again when the mailbox gained keywords (RFC 3501
 * §7.2.6), as Dovecot sends them before the FETCH that shows the new keyword.
 */
export function keywordUpdate(s: ImapSession): string {
  const box = s.box;
  if (!box) return '';
  const kws = box.keywords();
  const key = kws.join(' ');
  if (key === s.keywordsSent) return '';
  s.keywordsSent = key;
  const flags = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft', ...kws].join(' ');
  return `* FLAGS (${flags})\r\n` + permanentFlagsLine(s, kws);
}

/**
 * `* OK [PERMANENTFLAGS (...)]`: every flag, or with ACL (imapd-acl.ts) only those the rights
 * let the user change (\Seen s, \Deleted t, the rest and `\*` w); `()` Read-only mailbox when
 * the mailbox was EXAMINEd or the rights allow no change at all.
 */
export function permanentFlagsLine(s: ImapSession, kws: readonly string[]): string {
  if (s.box?.readOnly || s.boxReadOnly) return '* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n';
  const r = s.boxRights ?? 'wst';
  const perm = [...(r.includes('w') ? ['\\Answered', '\\Flagged'] : []), ...(r.includes('t') ? ['\\Deleted'] : []),
    ...(r.includes('s') ? ['\\Seen'] : []), ...(r.includes('w') ? ['\\Draft', ...kws, '\\*'] : [])].join(' ');
  return `* OK [PERMANENTFLAGS (${perm})] Flags permitted.\r\n`;
}

/**
 * The view's \\Recent count, counted again only when the view changed: a mailbox store hands
 * back the same array while nothing happened (Mailbox.messages()), so a command on an unchanged
 * mailbox costs no walk over all its messages.
 */
const recentCounted = new WeakMap<ImapSession, { view: readonly MessageInfo[]; n: number }>();
function recentCount(s: ImapSession, view: readonly MessageInfo[]): number {
  const c = recentCounted.get(s);
  if (c !== undefined && c.view === view) return c.n;
  let n = 0;
  for (const m of view) if (m.recent) n++;
  recentCounted.set(s, { view, n });
  return n;
}

/**
 * Send what changed in the selected mailbox since the client last heard. `holdExpunges`: new
 * messages and flag changes only; expunged messages stay in the view until a sync that may send
 * EXPUNGE (NOTIFY SELECTED-DELAYED between commands, RFC 5465 §5.2).
 */
export async function syncToClient(s: ImapSession, allowExpunge: boolean, o?: { holdExpunges?: boolean }): Promise<void> {
  const box = s.box;
  if (!box || !allowExpunge) return;
  const before = box.messages();
  const ch = await box.sync(o?.holdExpunges ? { keepExpunged: true } : undefined);
  if (s.box !== box) return;
  if (ch.uidValidityChanged) {
    s.send('* BYE Mailbox UIDVALIDITY changed\r\n');
    s.close();
    return;
  }
  const out: string[] = [keywordUpdate(s)];
  if (ch.expunged.length > 0) {
    out.push(searchUpdateExpunged(s, before, ch.expunged)); // RFC 5267 §4: before the EXPUNGEs
    if (s.qresync) {
      out.push(`* VANISHED ${numbersToSeqSet(ch.expunged)}\r\n`);
    } else {
      const seqs: number[] = [];
      for (const u of ch.expunged) { const i = indexOfUid(before, u); if (i >= 0) seqs.push(i + 1); }
      seqs.sort((a, b) => b - a);
      for (const n of seqs) out.push(`* ${n} EXPUNGE\r\n`);
    }
    s.exists = Math.max(0, s.exists - ch.expunged.length);
    for (const u of ch.expunged) s.reported.delete(u);
  }
  const view = box.messages();
  // after NOTIFY without SELECTED MessageNew / FlagChange the counts / flags are not sent (Dovecot)
  if (ch.added.length > 0 || view.length !== s.exists) {
    if (s.notifyCounts) out.push(`* ${view.length} EXISTS\r\n`);
    s.exists = view.length;
  }
  const recent = recentCount(s, view);
  if (recent !== s.recent && !s.rev2) { // Dovecot: only when the count changed (an EXAMINE session sees others take them)
    if (s.notifyCounts) out.push(`* ${recent} RECENT\r\n`);
    s.recent = recent;
  }
  for (const m of s.notifyFlags ? ch.flagsChanged : []) {
    if (s.reported.get(m.uid)?.modseq === m.modseq) continue;
    const i = indexOfUid(view, m.uid);
    if (i < 0) continue;
    out.push(`* ${i + 1} FETCH (${s.condstore ? `MODSEQ (${m.modseq}) ` : ''}FLAGS ${flagList(m, s.rev2)})\r\n`);
  }
  out.push(await searchUpdateChanges(s, ch.added, ch.flagsChanged)); // CONTEXT=SEARCH ADDTO/REMOVEFROM
  if (s.box !== box) return;
  s.reported.clear();
  const text = out.join('');
  if (text.length > 0) await s.send(text);
}
