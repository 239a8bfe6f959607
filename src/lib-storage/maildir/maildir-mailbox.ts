/**
 * maildir-mailbox - the Mailbox handle of mail-storage.ts on a Maildir: a per-session VIEW over
 * the shared MaildirState (maildir-sync.ts). The view changes only in sync() (Dovecot's
 * mailbox_sync / mox's change feed), which diffs the state against the view: new UIDs,
 * UIDs gone, and messages whose modseq rose since the view's last sync.
 * HIGHESTMODSEQ (RFC 7162 §3.1.1/§3.1.2.1, STATUS and SELECT) is the view's: what the last sync
 * saw, or the modseq of this handle's own STORE since, whichever is higher, so a STATUS right
 * after a STORE never reports less than the MODSEQ that STORE answered (as Dovecot).
 */
import { closeSync, createReadStream, openSync, promises as fsp, readFileSync, readSync, constants as fsConstants } from 'node:fs';
import type { Readable } from 'node:stream';
import { join } from 'node:path';
import type {
  CopyResult, DeliverOptions, DeliverResult, FlagMode, Mailbox, MailboxCacheFile, MailboxChanges, MailboxStatus, MessageInfo,
  MessageSource, StoreOptions, StoreResult, SyncOptions, SystemFlag,
} from '../mail-storage.ts';
import { SYSTEM_FLAGS } from '../mail-storage.ts';
import { MailError, mailErrorFromErrno } from '../mail-error.ts';
import { watchMailbox } from '../mail-notify.ts';
import { mapSliced } from '../fs-batch.ts';
import { parseSystemFlags } from './maildir-save.ts';
import { internFlags } from './maildir-filename.ts';
import { maildirCacheFile } from './maildir-cache-file.ts';
import { FTS_INDEX_NAME, ftsIndexAt, type FtsIndex } from '../../lib-fts/fts-index.ts';
import { readNoFollow, type MsgRec } from './maildir-state.ts';
import type { FlagJob } from './maildir-sync-flags.ts';
import type { MaildirState } from './maildir-sync.ts';

/** What a Mailbox needs from its user (deliver for APPEND/COPY, release of the shared state). */
export interface MailboxOwner {
  deliver(mailbox: string, content: MessageSource, o?: DeliverOptions): Promise<DeliverResult>;
  copyInto(dest: string, src: MaildirState, recs: MsgRec[], move: boolean): Promise<CopyResult>;
  releaseState(state: MaildirState): void;
  /** Messages of `bytes` in all were expunged (quota_warning's `-rule` "below" warnings). */
  expunged?(bytes: number, count: number): void;
}

const EXPUNGED_TEXT = 'Message was expunged.';
/** Largest message readMany() reads synchronously (about 0.3 ms of memcpy from the page cache). */
const SYNC_READ_MAX = 1024 * 1024;

export class MaildirMailbox implements Mailbox {
  readonly name: string;
  readonly readOnly: boolean;
  private readonly state: MaildirState;
  private readonly owner: MailboxOwner;
  /** The view, ascending UID; entries are the state's shared infos except where \Recent is ours. */
  private view: MessageInfo[] = [];
  private myRecent = new Set<number>();
  private lastModseq = 0;
  /** The highest modseq this handle's own setFlags() gave since the last sync (0: none). */
  private storedModseq = 0;
  private epoch: number;
  private seenVersion = -1;
  private _uidValidity: number;
  private _uidNext: number;
  private closed = false;
  /** Counted in state.writers (postern-index clean/dirty, maildir-index.ts). */
  private writer = false;
  private unwatch: Array<() => void> = [];
  /** The view still holds messages a keepExpunged sync kept (the next full sync must diff). */
  private heldExpunges = false;

  constructor(name: string, state: MaildirState, owner: MailboxOwner, readOnly: boolean) {
    this.name = name; this.state = state; this.owner = owner; this.readOnly = readOnly;
    this.epoch = state.epoch;
    this._uidValidity = state.uidValidity;
    this._uidNext = state.nextUid;
  }

  get uidValidity(): number { return this._uidValidity; }
  get uidNext(): number { return this._uidNext; }
  get highestModseq(): number { return Math.max(this.lastModseq, this.storedModseq); }
  private _cacheFile: MailboxCacheFile | undefined;
  get cacheFile(): MailboxCacheFile { return this._cacheFile ??= maildirCacheFile(this.state.ctlDir); }
  get ftsIndex(): FtsIndex { return ftsIndexAt(join(this.state.ctlDir, FTS_INDEX_NAME)); }
  expungedSince(modseq: number): number[] | undefined { return this.state.expungedSince(modseq); }
  reserveModseq(): number { const m = ++this.state.highestModseq; this.state.indexChanged(); return m; }

  messages(): readonly MessageInfo[] { return this.view; }
  byUid(uid: number): MessageInfo | undefined {
    const i = this.viewIndex(uid);
    return i >= 0 ? this.view[i] : undefined;
  }

  /** Position of `uid` in the view (binary search), or -1. */
  private viewIndex(uid: number): number {
    const v = this.view;
    let lo = 0, hi = v.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const u = v[mid]!.uid;
      if (u === uid) return mid;
      if (u < uid) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  }

  private inView(uid: number): boolean { return this.viewIndex(uid) >= 0; }

  private info(r: MsgRec): MessageInfo {
    const shared = this.state.infoOf(r);
    return this.myRecent.size > 0 && this.myRecent.has(r.uid) ? { ...shared, recent: true } : shared;
  }

  /** Build the first view (called by the owner right after open). */
  async init(): Promise<void> {
    await this.state.refresh();
    await this.state.keywords.refresh();
    this.claimRecent();
    this.view = this.state.recs.map((r) => this.info(r));
    this.lastModseq = this.state.highestModseq;
    this._uidValidity = this.state.uidValidity;
    this._uidNext = this.state.nextUid;
    this.epoch = this.state.epoch;
    this.seenVersion = this.state.version;
    // after the first load read postern-index as it was: from now on flags may change here
    if (!this.readOnly) { this.state.openWriter(); this.writer = true; }
  }

  /**
   * \Recent (RFC 3501 §2.3.2) as Dovecot keeps it: a read-write handle takes the messages nobody
   * has taken yet; a read-only one (EXAMINE) shows the untaken ones it learns about as \Recent
   * without taking them, so the next SELECT still gets them.
   */
  private claimRecent(): void {
    if (this.readOnly) {
      for (const u of this.state.unclaimedRecent) if (!this.inView(u)) this.myRecent.add(u);
      return;
    }
    for (const u of this.state.unclaimedRecent) this.myRecent.add(u);
    this.state.unclaimedRecent.clear();
  }

  private check(): void {
    if (this.closed) throw new MailError('PARAMS', 'Mailbox is closed.');
  }

  async sync(o?: SyncOptions): Promise<MailboxChanges> {
    this.check();
    const keep = o?.keepExpunged === true;
    await this.state.refresh();
    await this.state.keywords.refresh();
    const ch: MailboxChanges = { added: [], expunged: [], flagsChanged: [], uidValidityChanged: false };
    if (this.state.version === this.seenVersion && this.state.epoch === this.epoch && (this.readOnly || this.state.unclaimedRecent.size === 0) &&
      (keep || !this.heldExpunges)) {
      this._uidNext = this.state.nextUid;
      return ch;   // nothing happened since our last look: no diff over the whole view
    }
    if (this.state.epoch !== this.epoch) {
      ch.uidValidityChanged = true;
      ch.expunged = this.view.map((m) => m.uid);
      this.myRecent.clear();
    }
    this.claimRecent();
    // merge the state's records (ascending UID) with the old view (ascending UID)
    const next: MessageInfo[] = [];
    let held = false;
    const recs = this.state.recs;
    const old = ch.uidValidityChanged ? [] : this.view;
    let j = 0;
    for (const r of recs) {
      while (j < old.length && old[j]!.uid < r.uid) {
        const gone = old[j++]!;
        if (keep) { next.push(gone); held = true; continue; } // stays until a sync that may report it
        ch.expunged.push(gone.uid); this.myRecent.delete(gone.uid);
      }
      const prev = j < old.length && old[j]!.uid === r.uid ? old[j++] : undefined;
      if (!prev) { const m = this.info(r); next.push(m); ch.added.push(m); continue; }
      if (r.modseq > this.lastModseq || prev.modseq !== r.modseq) {
        const m = this.info(r); next.push(m);
        if (!sameFlags(prev, m)) ch.flagsChanged.push(m);
      } else next.push(prev);
    }
    while (j < old.length) {
      const gone = old[j++]!;
      if (keep) { next.push(gone); held = true; continue; }
      ch.expunged.push(gone.uid); this.myRecent.delete(gone.uid);
    }
    this.view = next;
    this.heldExpunges = held;
    this.lastModseq = this.state.highestModseq;
    this.storedModseq = 0;
    this._uidValidity = this.state.uidValidity;
    this._uidNext = this.state.nextUid;
    this.epoch = this.state.epoch;
    this.seenVersion = this.state.version;
    return ch;
  }

  watch(cb: () => void): () => void {
    const off = watchMailbox(this.state.dir, cb);
    this.unwatch.push(off);
    return off;
  }

  private async recOf(uid: number): Promise<MsgRec> {
    this.check();
    let r = this.state.byUid.get(uid);
    if (!r) {
      await this.state.refresh();
      r = this.state.byUid.get(uid);
    }
    if (!r) throw new MailError('EXPUNGED', EXPUNGED_TEXT);
    return r;
  }

  /** Run fn on the message file; on ENOENT (flags renamed by another writer) rescan and retry. */
  private async withFile<T>(uid: number, fn: (path: string) => Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const r = await this.recOf(uid);
      try { return await fn(this.state.pathOf(r)); } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw mailErrorFromErrno(e, `open(${this.state.pathOf(r)})`);
        await this.state.refresh(true);
      }
    }
    throw new MailError('EXPUNGED', EXPUNGED_TEXT);
  }

  openContent(uid: number): Promise<Readable> {
    return this.withFile(uid, async (p) => {
      const fh = await fsp.open(p, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);   // opened now: later renames or unlinks do not matter
      return createReadStream('', { fd: fh.fd, autoClose: true }).on('close', () => { void fh.close().catch(() => {}); });
    });
  }

  readContent(uid: number): Promise<Buffer> { return this.withFile(uid, (p) => readNoFollow(p)); }

  /**
   * SEARCH BODY over the mailbox: synchronous open/read/close in time slices (fs-batch.ts),
   * one read of the size the file name promises (,S=) plus one byte to notice a bigger file;
   * messages over SYNC_READ_MAX are read asynchronously after the others.
   * A file renamed by another writer meanwhile (ENOENT) is read again after a rescan, as
   * readContent() does; one expunged meanwhile is skipped.
   */
  async readMany(uids: readonly number[], each: (i: number, content: Buffer) => void): Promise<void> {
    this.check();
    const again: number[] = [];
    await mapSliced(uids, (uid, i) => {
      const r = this.state.byUid.get(uid);
      // big messages are read through the pool afterwards: no single call blocks for long
      if (!r || r.size > SYNC_READ_MAX) { again.push(i); return; }
      let content: Buffer;
      try { content = readSyncNoFollow(this.state.pathOf(r), r.size); } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw mailErrorFromErrno(e, `open(${this.state.pathOf(r)})`);
        again.push(i);
        return;
      }
      each(i, content);
    }, async (uid, i) => {
      let content: Buffer;
      try { content = await this.readContent(uid); } catch (e) { if (e instanceof MailError && e.code === 'EXPUNGED') return; throw e; }
      each(i, content);
    });
    for (const i of again) {
      let content: Buffer;
      try { content = await this.readContent(uids[i]!); } catch (e) { if (e instanceof MailError && e.code === 'EXPUNGED') continue; throw e; }
      each(i, content);
    }
  }

  /** INTERNALDATE = the file's mtime, cached per message (renames keep it). */
  async internalDate(uid: number): Promise<Date> {
    const r = this.state.byUid.get(uid);
    if (r?.mtimeMs !== undefined) return new Date(r.mtimeMs);
    return this.withFile(uid, async (p) => {
      const st = await fsp.lstat(p);
      const cur = this.state.byUid.get(uid);
      if (cur) cur.mtimeMs = st.mtimeMs;
      return st.mtime;
    });
  }
  saveDate(uid: number): Promise<Date> { return this.withFile(uid, async (p) => (await fsp.stat(p)).ctime); }

  async setFlags(uids: readonly number[], mode: FlagMode, flags: readonly string[], keywords: readonly string[] = [], o: StoreOptions = {}): Promise<StoreResult> {
    this.check();
    if (this.readOnly) throw new MailError('PERM', 'Mailbox is read-only.');
    const sys = parseSystemFlags(flags);
    const kwIdx = mode === 'remove'
      ? keywords.map((k) => this.state.keywords.indexOf(k)).filter((i) => i >= 0)
      : await this.state.keywords.indexesFor(keywords);
    const res: StoreResult = { changed: [], failed: [] };
    // each distinct old flag set is computed once (records share interned flag arrays)
    const newFlags = new Map<readonly SystemFlag[], SystemFlag[]>();
    /** The flags and keywords `r` gets from this STORE; undefined: nothing changes. */
    const target = (r: MsgRec): { flags: SystemFlag[]; kw: number[] } | undefined => {
      let nf = newFlags.get(r.flags);
      if (nf === undefined) {
        nf = internFlags(mode === 'replace' ? sys : mode === 'add'
          ? SYSTEM_FLAGS.filter((f) => r.flags.includes(f) || sys.includes(f))
          : r.flags.filter((f) => !sys.includes(f)));
        newFlags.set(r.flags, nf);
      }
      let nk: number[];
      if (mode === 'replace') nk = kwIdx;
      else if (mode === 'add') nk = kwIdx.length === 0 ? r.kw : [...new Set([...r.kw, ...kwIdx])];
      else nk = kwIdx.length === 0 ? r.kw : r.kw.filter((k) => !kwIdx.includes(k));
      if (nf.length === r.flags.length && nf.every((f, i) => f === r.flags[i]) && (nk === r.kw || (nk.length === r.kw.length && nk.every((k, i) => k === r.kw[i])))) return undefined;
      return { flags: nf, kw: nk === r.kw ? nk : [...nk].sort((x, y) => x - y) };
    };
    await this.state.mutex.run(async () => {
      const jobs: FlagJob[] = [];
      for (const uid of uids) {
        const r = this.state.byUid.get(uid);
        if (!r || !this.inView(uid)) continue;
        if (o.unchangedSince !== undefined && r.modseq > o.unchangedSince) { res.failed.push(uid); continue; }
        const t = target(r);
        if (t) jobs.push({ r, flags: t.flags, kw: t.kw, again: target });
      }
      // one batch of renames (maildir-sync.ts renameFlagsMany), not one pool round trip each
      for (const nr of await this.state.renameFlagsMany(jobs)) {
        if (!nr) continue;
        const m = this.info(nr);
        res.changed.push(m);
        if (m.modseq > this.storedModseq) this.storedModseq = m.modseq;
        // our view holds what we just stored: a later change by another session back to the
        // old flags is then a change the next sync() reports
        const i = this.viewIndex(nr.uid);
        if (i >= 0) this.view[i] = m;
      }
    });
    if (res.changed.length > 0) this.state.changed();
    return res;
  }

  async expunge(uids?: readonly number[]): Promise<number[]> {
    this.check();
    if (this.readOnly) throw new MailError('PERM', 'Mailbox is read-only.');
    const want = uids ? new Set(uids) : undefined;
    const removed: number[] = [];
    let bytes = 0;
    await this.state.mutex.run(() => this.state.ownCurChange(async () => {
      for (const r of [...this.state.recs]) {
        if (!this.inView(r.uid)) continue;
        if (want ? !want.has(r.uid) : !r.flags.includes('\\Deleted')) continue;
        if (await this.state.unlinkMessage(r)) { removed.push(r.uid); bytes += r.size; }
      }
    }));
    if (removed.length > 0) { this.state.changed(); this.owner.expunged?.(bytes, removed.length); }
    return removed;
  }

  private recsFor(uids: readonly number[]): MsgRec[] {
    const out: MsgRec[] = [];
    for (const u of [...new Set(uids)].sort((a, b) => a - b)) {
      const r = this.state.byUid.get(u);
      if (r && this.inView(u)) out.push(r);
    }
    return out;
  }

  copy(uids: readonly number[], dest: string): Promise<CopyResult> {
    this.check();
    return this.owner.copyInto(dest, this.state, this.recsFor(uids), false);
  }

  async move(uids: readonly number[], dest: string): Promise<CopyResult> {
    this.check();
    if (this.readOnly) throw new MailError('PERM', 'Mailbox is read-only.');
    const res = await this.owner.copyInto(dest, this.state, this.recsFor(uids), true);
    await this.expunge(res.map.map(([s]) => s));
    return res;
  }

  append(content: MessageSource, o?: DeliverOptions): Promise<DeliverResult> {
    this.check();
    return this.owner.deliver(this.name, content, o);
  }

  status(): MailboxStatus {
    let unseen = 0, size = 0, recent = 0;
    for (const m of this.view) { if (!m.flags.includes('\\Seen')) unseen++; size += m.vsize; if (m.recent) recent++; }
    return { messages: this.view.length, recent, uidNext: this._uidNext, uidValidity: this._uidValidity, unseen, size, highestModseq: this.highestModseq };
  }

  keywords(): readonly string[] { return this.state.keywords.names(); }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.unwatch) off();
    if (this.writer) { this.writer = false; this.state.closeWriter(); }
    // \Recent we held but did not show goes back to nobody (Dovecot: recent is per session)
    this.owner.releaseState(this.state);
  }
}

function sameFlags(a: MessageInfo, b: MessageInfo): boolean {
  return a.flags.length === b.flags.length && a.flags.every((f, i) => f === b.flags[i])
    && a.keywords.length === b.keywords.length && a.keywords.every((k, i) => k === b.keywords[i]);
}

/**
 * Read a whole message file synchronously without following a symlink (see readNoFollow).
 * `expect` is the size the name promises: one read of expect+1 bytes tells whether the file
 * is really that long; otherwise (no or wrong ,S=) the file is read by its fstat size.
 */
function readSyncNoFollow(path: string, expect: number): Buffer {
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    if (expect >= 0 && expect <= SYNC_READ_MAX) {
      const b = Buffer.allocUnsafe(expect + 1);
      const n = readSync(fd, b, 0, expect + 1, 0);
      if (n <= expect) return n === expect ? b.subarray(0, n) : Buffer.from(b.subarray(0, n));
    }
    return readFileSync(fd);
  } finally { closeSync(fd); }
}
