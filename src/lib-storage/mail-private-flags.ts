/**
 * mail-private-flags - Dovecot's INDEXPVT for shared namespaces (doc/wiki SharedMailboxes.Shared,
 * `location = maildir:%%h/Maildir:INDEXPVT=~/Maildir/shared/%%u`): \Seen is private to each user
 * who reads another user's shared mailbox. The owner's \Seen (in the Maildir file names) is what
 * the owner and users without INDEXPVT see; a reader with INDEXPVT sees and changes only their
 * own \Seen. Dovecot keeps it in its private index (dovecot.index.pvt), which Postern never reads,
 * so Postern keeps it in its own file under the same INDEXPVT directory of the READER:
 *     INDEXPVT-dir (the reader's ~ and the owner for %u) / postern-pvt-seen.<mailbox, %-encoded>
 * one line `UIDVALIDITY` then one line of the UID set (`1:3,7`). A mailbox whose UIDVALIDITY
 * changed starts with nothing seen. Only \Seen is private (Dovecot's default
 * `mail_index_private_flags`... is \Seen alone); the other flags stay shared.
 *
 * `privateSeenMailbox(box, file)` wraps a Mailbox handle: messages(), byUid(), sync() and status()
 * show the reader's \Seen; setFlags() and append() keep \Seen in the file and the rest in the
 * mailbox. Limits (not Dovecot's): a private change does not raise the mailbox's MODSEQ, and other
 * sessions of the same reader see it at their next SELECT, not at once.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DeliverOptions, DeliverResult, FlagMode, Mailbox, MailboxChanges, MailboxStatus, MessageInfo, MessageSource, StoreOptions, StoreResult, SyncOptions, SystemFlag } from './mail-storage.ts';
import { SYSTEM_FLAGS } from './mail-storage.ts';

const SEEN = '\\Seen';

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

function load(file: string, uidValidity: number): Set<number> {
  try {
    const [v, set] = readFileSync(file, 'latin1').split('\n');
    return Number(v) === uidValidity ? parseSet(set ?? '') : new Set();
  } catch { return new Set(); }
}

async function save(file: string, uidValidity: number, seen: ReadonlySet<number>): Promise<void> {
  await fsp.mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, `${uidValidity}\n${formatSet(seen)}\n`, { mode: 0o600 });
  await fsp.rename(tmp, file);
}

/** The \Seen of a status without opening a view: messages minus those this reader has seen. */
export function privateUnseen(file: string, st: MailboxStatus, uids: readonly number[]): number {
  const seen = load(file, st.uidValidity);
  let n = 0;
  for (const u of uids) if (!seen.has(u)) n++;
  return n;
}

export function privateSeenMailbox(box: Mailbox, file: string): Mailbox {
  let seen = load(file, box.uidValidity);
  let seenValidity = box.uidValidity;
  const mapped = new WeakMap<MessageInfo, MessageInfo>();
  const show = (m: MessageInfo): MessageInfo => {
    const has = seen.has(m.uid);
    if (m.flags.includes(SEEN as SystemFlag) === has) return m;
    const key = mapped.get(m);
    if (key && key.flags.includes(SEEN as SystemFlag) === has) return key;
    const flags = SYSTEM_FLAGS.filter((f) => (f === SEEN ? has : m.flags.includes(f)));
    const v: MessageInfo = { ...m, flags };
    mapped.set(m, v);
    return v;
  };
  let lastView: readonly MessageInfo[] | undefined;
  let lastMapped: MessageInfo[] = [];
  let lastSeenSize = -1;
  const messages = (): readonly MessageInfo[] => {
    const v = box.messages();
    if (v !== lastView || lastSeenSize !== seen.size) { lastView = v; lastSeenSize = seen.size; lastMapped = v.map(show); }
    return lastMapped;
  };
  const checkValidity = (): void => { if (box.uidValidity !== seenValidity) { seen = new Set(); seenValidity = box.uidValidity; } };
  const persist = (): Promise<void> => save(file, box.uidValidity, seen);

  const setFlags = async (uids: readonly number[], mode: FlagMode, flags: readonly string[], keywords?: readonly string[], o?: StoreOptions): Promise<StoreResult> => {
    checkValidity();
    // what the reader saw before: only messages whose flags they see change are reported
    const state = (m: MessageInfo | undefined): string => (m ? `${show(m).flags.join(' ')}|${m.keywords.join(' ')}` : '');
    const before = new Map<number, string>();
    for (const u of uids) before.set(u, state(box.byUid(u)));
    const wantSeen = flags.some((f) => f.toLowerCase() === '\\seen');
    const rest = flags.filter((f) => f.toLowerCase() !== '\\seen');
    let failed: number[] = [];
    if (mode === 'replace') {
      // the owner's \Seen is not this reader's to change: replace the other flags only
      const drop = SYSTEM_FLAGS.filter((f) => f !== SEEN && !rest.some((r) => r.toLowerCase() === f.toLowerCase()));
      const dropKw = box.keywords().filter((k) => !(keywords ?? []).some((w) => w.toLowerCase() === k.toLowerCase()));
      const r1 = await box.setFlags(uids, 'remove', drop, dropKw, o);
      failed = r1.failed;
      const ok = uids.filter((u) => !failed.includes(u));
      if (rest.length > 0 || (keywords?.length ?? 0) > 0) await box.setFlags(ok, 'add', rest, keywords ?? []);
    } else if (rest.length > 0 || (keywords?.length ?? 0) > 0) {
      failed = (await box.setFlags(uids, mode, rest, keywords, o)).failed;
    } else if (o?.unchangedSince !== undefined) {
      failed = uids.filter((u) => { const m = box.byUid(u); return m !== undefined && m.modseq > o.unchangedSince!; });
    }
    let seenChanged = false;
    for (const u of uids) {
      if (failed.includes(u) || !box.byUid(u)) continue;
      const on = mode === 'add' ? (wantSeen ? true : seen.has(u)) : mode === 'remove' ? (wantSeen ? false : seen.has(u)) : wantSeen;
      if (on !== seen.has(u)) { seenChanged = true; if (on) seen.add(u); else seen.delete(u); }
    }
    if (seenChanged) await persist();
    const changed: MessageInfo[] = [];
    for (const u of uids) {
      if (failed.includes(u)) continue;
      const m = box.byUid(u);
      if (m && state(m) !== before.get(u)) changed.push(show(m));
    }
    return { changed, failed };
  };

  const sync = async (o?: SyncOptions): Promise<MailboxChanges> => {
    const ch = await box.sync(o);
    checkValidity();
    return { ...ch, added: ch.added.map(show), flagsChanged: ch.flagsChanged.map(show) };
  };

  const status = (): MailboxStatus => {
    const st = box.status();
    const v = messages();
    return { ...st, unseen: v.filter((m) => !m.flags.includes(SEEN as SystemFlag)).length };
  };

  const append = async (content: MessageSource, o?: DeliverOptions): Promise<DeliverResult> => {
    const flags = o?.flags ?? [];
    const wantSeen = flags.some((f) => f.toLowerCase() === '\\seen');
    const r = await box.append(content, { ...o, flags: flags.filter((f) => f.toLowerCase() !== '\\seen') });
    if (wantSeen) { checkValidity(); seen.add(r.uid); await persist(); }
    return r;
  };

  return new Proxy(box, {
    get(t, p) {
      if (p === 'messages') return messages;
      if (p === 'byUid') return (uid: number) => { const m = t.byUid(uid); return m ? show(m) : undefined; };
      if (p === 'setFlags') return setFlags;
      if (p === 'sync') return sync;
      if (p === 'status') return status;
      if (p === 'append') return append;
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}
