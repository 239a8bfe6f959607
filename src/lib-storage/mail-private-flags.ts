/**
 * mail-private-flags - Dovecot's INDEXPVT for shared namespaces (doc/wiki SharedMailboxes.Shared,
 * `location = maildir:%%h/Maildir:INDEXPVT=~/Maildir/shared/%%u`): \Seen is private to each user
 * who reads another user's shared mailbox. The owner's \Seen (in the Maildir file names) is what
 * the owner and users without INDEXPVT see; a reader with INDEXPVT sees and changes only their
 * own \Seen. Only \Seen: Dovecot 2.3's private flags mask is MAIL_SEEN whenever the mailbox list
 * has an INDEXPVT directory (lib-storage mailbox_get_private_flags_mask, "FIXME" there), so
 * \Answered, \Flagged, \Deleted, \Draft and keywords stay shared, as here.
 *
 * Dovecot keeps private flags in its private index (dovecot.index.pvt), which Postern never
 * reads, so Postern keeps them in its own file under the same INDEXPVT directory of the READER:
 *     INDEXPVT-dir (the reader's ~ and the owner for %u) / postern-pvt-seen.<mailbox, %-encoded>
 *     line 1  UIDVALIDITY (a mailbox whose UIDVALIDITY changed starts with nothing seen)
 *     line 2  the UID set of the messages this reader has seen (`1:3,7`)
 *     line 3  the highest private mod-sequence, then `uid=modseq` pairs separated by commas
 *             (absent in files written before: no private modseqs)
 *
 * CONDSTORE (RFC 7162 §3.1): a private change is a change of the message as this reader sees it,
 * so, as Dovecot does, it gets a new mod-sequence: taken from the mailbox's own counter
 * (`Mailbox.reserveModseq`, so later shared changes still get higher ones), recorded for the UID.
 * The reader sees a message's MODSEQ as the higher of the shared and the private one, and
 * HIGHESTMODSEQ as the higher of the mailbox's and the private highest; FETCH CHANGEDSINCE,
 * SEARCH MODSEQ and STORE UNCHANGEDSINCE all use that.
 *
 * Other sessions of the same reader see a private change without a new SELECT: every handle of
 * one file in this process shares one state (its IDLE is woken at once); a change written by
 * another process is noticed at the next sync() (the file's stat changed) - the mailbox's own
 * watch does not see it, so an IDLE in another process hears it at its next wake-up.
 *
 * `privateSeenMailbox(box, file)` wraps a Mailbox handle: messages(), byUid(), sync(), status(),
 * highestModseq and watch() show the reader's \Seen and mod-sequences; setFlags() and append()
 * keep \Seen in the file and the rest in the mailbox. `privateStatus` is STATUS without a view.
 */
import { promises as fsp, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DeliverOptions, DeliverResult, FlagMode, Mailbox, MailboxChanges, MailboxStatus, MessageInfo, MessageSource, StoreOptions, StoreResult, SyncOptions, SystemFlag } from './mail-storage.ts';
import { SYSTEM_FLAGS } from './mail-storage.ts';

const SEEN = '\\Seen';
/** Mod-sequences are JS numbers (maildir-index.ts MODSEQ_MAX): anything above is damage. */
const MODSEQ_MAX = 2 ** 52;

/** The file for one mailbox of one owner, under the reader's INDEXPVT directory. */
export function privateSeenFile(indexPvtDir: string, mailbox: string): string {
  return join(indexPvtDir, `postern-pvt-seen.${encodeURIComponent(mailbox)}`);
}

function parseSet(text: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\d+)(?::(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const a = Number(m[1]);
    const b = m[2] ? Number(m[2]) : a;
    if (b - a > 10_000_000) continue; // a damaged file cannot make us allocate without bound
    for (let u = Math.min(a, b); u <= Math.max(a, b); u++) out.add(u);
  }
  return out;
}

function formatSet(uids: Iterable<number>): string {
  const s = [...uids].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length;) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    out.push(j > i ? `${s[i]}:${s[j]}` : String(s[i]));
    i = j + 1;
  }
  return out.join(',');
}

/** One reader's private state of one mailbox, shared by every handle of this process. */
interface PvtState {
  file: string;
  uidValidity: number;
  seen: Set<number>;
  /** Private mod-sequence of each UID whose \Seen this reader changed. */
  modseq: Map<number, number>;
  highest: number;
  /** Bumped on every change (this process's or one read from the file). */
  version: number;
  /** The file's stat when last read or written: another process's write changes it. */
  stamp: string;
  listeners: Set<() => void>;
  refs: number;
}

const states = new Map<string, PvtState>();

function stampOf(file: string): string {
  try {
    const st = statSync(file, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch { return ''; }
}

/** Read the file into `st` (damaged parts are ignored: nothing seen, no private modseqs). */
function load(st: PvtState, uidValidity: number): void {
  st.uidValidity = uidValidity;
  st.seen = new Set();
  st.modseq = new Map();
  st.highest = 0;
  st.stamp = stampOf(st.file);
  let text: string;
  try { text = readFileSync(st.file, 'latin1'); } catch { return; }
  const [v, set, ms] = text.split('\n');
  if (Number(v) !== uidValidity) return;
  st.seen = parseSet(set ?? '');
  const m = /^(\d+) ?(.*)$/.exec(ms ?? '');
  if (!m || Number(m[1]) > MODSEQ_MAX) return;
  st.highest = Number(m[1]);
  for (const pair of m[2]!.split(',')) {
    const p = /^(\d+)=(\d+)$/.exec(pair);
    if (!p) continue;
    const n = Number(p[2]);
    if (n > 0 && n <= st.highest) st.modseq.set(Number(p[1]), n);
  }
}

async function save(st: PvtState): Promise<void> {
  await fsp.mkdir(dirname(st.file), { recursive: true, mode: 0o700 });
  const tmp = `${st.file}.${process.pid}.tmp`;
  const pairs = [...st.modseq].map(([u, n]) => `${u}=${n}`).join(',');
  await fsp.writeFile(tmp, `${st.uidValidity}\n${formatSet(st.seen)}\n${st.highest} ${pairs}\n`, { mode: 0o600 });
  await fsp.rename(tmp, st.file);
  st.stamp = stampOf(st.file);
}

function acquire(file: string, uidValidity: number): PvtState {
  let st = states.get(file);
  if (!st) {
    st = { file, uidValidity, seen: new Set(), modseq: new Map(), highest: 0, version: 0, stamp: '', listeners: new Set(), refs: 0 };
    load(st, uidValidity);
    states.set(file, st);
  }
  st.refs++;
  return st;
}

/** Bring `st` up to date: the mailbox's UIDVALIDITY changed, or another process wrote the file. */
function refresh(st: PvtState, uidValidity: number): void {
  if (st.uidValidity !== uidValidity || stampOf(st.file) !== st.stamp) {
    load(st, uidValidity);
    st.version++;
  }
}

/** STATUS without opening a view: UNSEEN and HIGHESTMODSEQ as this reader sees them. */
export function privateStatus(file: string, status: MailboxStatus, uids: readonly number[]): MailboxStatus {
  const st = states.get(file);
  const s: PvtState = st ?? { file, uidValidity: 0, seen: new Set(), modseq: new Map(), highest: 0, version: 0, stamp: '', listeners: new Set(), refs: 0 };
  if (st) refresh(s, status.uidValidity); else load(s, status.uidValidity);
  let unseen = 0;
  for (const u of uids) if (!s.seen.has(u)) unseen++;
  return { ...status, unseen, highestModseq: Math.max(status.highestModseq, s.highest) };
}

export function privateSeenMailbox(box: Mailbox, file: string): Mailbox {
  const st = acquire(file, box.uidValidity);
  let released = false;
  /** Private changes up to this mod-sequence have been reported by this handle's sync(). */
  let reportedHighest = st.highest;
  const mapped = new WeakMap<MessageInfo, MessageInfo>();
  const show = (m: MessageInfo): MessageInfo => {
    const has = st.seen.has(m.uid);
    const modseq = Math.max(m.modseq, st.modseq.get(m.uid) ?? 0);
    if (m.flags.includes(SEEN as SystemFlag) === has && modseq === m.modseq) return m;
    const key = mapped.get(m);
    if (key && key.flags.includes(SEEN as SystemFlag) === has && key.modseq === modseq) return key;
    const flags = SYSTEM_FLAGS.filter((f) => (f === SEEN ? has : m.flags.includes(f)));
    const v: MessageInfo = { ...m, flags, modseq };
    mapped.set(m, v);
    return v;
  };
  let lastView: readonly MessageInfo[] | undefined;
  let lastMapped: MessageInfo[] = [];
  let lastVersion = -1;
  const messages = (): readonly MessageInfo[] => {
    const v = box.messages();
    if (v !== lastView || lastVersion !== st.version) { lastView = v; lastVersion = st.version; lastMapped = v.map(show); }
    return lastMapped;
  };
  const highestModseq = (): number => Math.max(box.highestModseq, st.highest);
  /** A mod-sequence for a private change: from the mailbox's counter when it has one. */
  const nextModseq = (): number => Math.max(box.reserveModseq?.() ?? 0, highestModseq() + 1);
  const changed = (): void => {
    st.version++;
    for (const cb of [...st.listeners]) { try { cb(); } catch { /* a listener's problem */ } }
  };

  const setFlags = async (uids: readonly number[], mode: FlagMode, flags: readonly string[], keywords?: readonly string[], o?: StoreOptions): Promise<StoreResult> => {
    refresh(st, box.uidValidity);
    // RFC 7162 §3.1.3 UNCHANGEDSINCE against the mod-sequence this reader sees
    let failed: number[] = [];
    let todo = uids;
    if (o?.unchangedSince !== undefined) {
      failed = uids.filter((u) => { const m = box.byUid(u); return m !== undefined && show(m).modseq > o.unchangedSince!; });
      if (failed.length > 0) todo = uids.filter((u) => !failed.includes(u));
    }
    // what the reader saw before: only messages whose flags they see change are reported
    const state = (m: MessageInfo | undefined): string => (m ? `${show(m).flags.join(' ')}|${m.keywords.join(' ')}` : '');
    const before = new Map<number, string>();
    for (const u of todo) before.set(u, state(box.byUid(u)));
    const wantSeen = flags.some((f) => f.toLowerCase() === '\\seen');
    const rest = flags.filter((f) => f.toLowerCase() !== '\\seen');
    if (mode === 'replace') {
      // the owner's \Seen is not this reader's to change: replace the other flags only
      const drop = SYSTEM_FLAGS.filter((f) => f !== SEEN && !rest.some((r) => r.toLowerCase() === f.toLowerCase()));
      const dropKw = box.keywords().filter((k) => !(keywords ?? []).some((w) => w.toLowerCase() === k.toLowerCase()));
      const r1 = await box.setFlags(todo, 'remove', drop, dropKw, o);
      failed.push(...r1.failed);
      const ok = todo.filter((u) => !r1.failed.includes(u));
      if (rest.length > 0 || (keywords?.length ?? 0) > 0) await box.setFlags(ok, 'add', rest, keywords ?? []);
    } else if (rest.length > 0 || (keywords?.length ?? 0) > 0) {
      failed.push(...(await box.setFlags(todo, mode, rest, keywords, o)).failed);
    }
    let seenChanged = false;
    for (const u of todo) {
      if (failed.includes(u) || !box.byUid(u)) continue;
      const on = mode === 'add' ? (wantSeen ? true : st.seen.has(u)) : mode === 'remove' ? (wantSeen ? false : st.seen.has(u)) : wantSeen;
      if (on === st.seen.has(u)) continue;
      seenChanged = true;
      if (on) st.seen.add(u); else st.seen.delete(u);
      const n = nextModseq();
      st.modseq.set(u, n);
      st.highest = Math.max(st.highest, n);
    }
    if (seenChanged) {
      await save(st);
      changed();
    }
    const out: MessageInfo[] = [];
    for (const u of todo) {
      if (failed.includes(u)) continue;
      const m = box.byUid(u);
      if (m && state(m) !== before.get(u)) out.push(show(m));
    }
    return { changed: out, failed };
  };

  const sync = async (o?: SyncOptions): Promise<MailboxChanges> => {
    const ch = await box.sync(o);
    refresh(st, box.uidValidity);
    const flagsChanged = ch.flagsChanged.map(show);
    if (st.highest > reportedHighest) {
      // private changes since this handle last looked (by another session of this reader)
      const have = new Set(flagsChanged.map((m) => m.uid));
      const more: MessageInfo[] = [];
      for (const [u, n] of st.modseq) {
        if (n <= reportedHighest || have.has(u)) continue;
        const m = box.byUid(u);
        if (m) more.push(show(m));
      }
      if (more.length > 0) flagsChanged.push(...more.sort((a, b) => a.uid - b.uid));
    }
    reportedHighest = st.highest;
    return { ...ch, added: ch.added.map(show), flagsChanged };
  };

  const status = (): MailboxStatus => {
    const s = box.status();
    const v = messages();
    return { ...s, unseen: v.filter((m) => !m.flags.includes(SEEN as SystemFlag)).length, highestModseq: highestModseq() };
  };

  const append = async (content: MessageSource, o?: DeliverOptions): Promise<DeliverResult> => {
    const flags = o?.flags ?? [];
    const wantSeen = flags.some((f) => f.toLowerCase() === '\\seen');
    const r = await box.append(content, { ...o, flags: flags.filter((f) => f.toLowerCase() !== '\\seen') });
    if (wantSeen) { refresh(st, box.uidValidity); st.seen.add(r.uid); await save(st); changed(); }
    return r;
  };

  const watch = (cb: () => void): (() => void) => {
    const off = box.watch(cb);
    st.listeners.add(cb);
    return () => { off(); st.listeners.delete(cb); };
  };

  const close = async (): Promise<void> => {
    if (!released) {
      released = true;
      if (--st.refs === 0 && states.get(file) === st) states.delete(file);
    }
    await box.close();
  };

  return new Proxy(box, {
    get(t, p) {
      if (p === 'messages') return messages;
      if (p === 'byUid') return (uid: number) => { const m = t.byUid(uid); return m ? show(m) : undefined; };
      if (p === 'setFlags') return setFlags;
      if (p === 'sync') return sync;
      if (p === 'status') return status;
      if (p === 'append') return append;
      if (p === 'watch') return watch;
      if (p === 'close') return close;
      if (p === 'highestModseq') return highestModseq();
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}
