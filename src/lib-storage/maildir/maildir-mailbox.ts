/**
 * maildir-mailbox - the Mailbox handle of mail-storage.ts on a Maildir: a per-session VIEW over
 * the shared MaildirState (maildir-sync.ts). The view changes only in sync() (Dovecot's
 * mailbox_sync / mox's change feed), which diffs the state against the view: new UIDs,
 * UIDs gone, and messages whose modseq rose since the view's last sync.
 */
import { createReadStream, promises as fsp, constants as fsConstants } from 'node:fs';
import type { Readable } from 'node:stream';
import type {
  CopyResult, DeliverOptions, DeliverResult, FlagMode, Mailbox, MailboxChanges, MailboxStatus, MessageInfo,
  MessageSource, StoreOptions, StoreResult, SystemFlag,
} from '../mail-storage.ts';
import { SYSTEM_FLAGS } from '../mail-storage.ts';
import { MailError, mailErrorFromErrno } from '../mail-error.ts';
import { watchMailbox } from '../mail-notify.ts';
import { parseSystemFlags } from './maildir-save.ts';
import { readNoFollow, type MaildirState, type MsgRec } from './maildir-sync.ts';

/** What a Mailbox needs from its user (deliver for APPEND/COPY, release of the shared state). */
export interface MailboxOwner {
  deliver(mailbox: string, content: MessageSource, o?: DeliverOptions): Promise<DeliverResult>;
  copyInto(dest: string, src: MaildirState, recs: MsgRec[], move: boolean): Promise<CopyResult>;
  releaseState(state: MaildirState): void;
}

const EXPUNGED_TEXT = 'Message was expunged.';

export class MaildirMailbox implements Mailbox {
  readonly name: string;
  readonly readOnly: boolean;
  private readonly state: MaildirState;
  private readonly owner: MailboxOwner;
  private view: MessageInfo[] = [];
  private viewByUid = new Map<number, MessageInfo>();
  private myRecent = new Set<number>();
  private lastModseq = 0;
  private epoch: number;
  private seenVersion = -1;
  private _uidValidity: number;
  private _uidNext: number;
  private closed = false;
  private unwatch: Array<() => void> = [];

  constructor(name: string, state: MaildirState, owner: MailboxOwner, readOnly: boolean) {
    this.name = name; this.state = state; this.owner = owner; this.readOnly = readOnly;
    this.epoch = state.epoch;
    this._uidValidity = state.uidValidity;
    this._uidNext = state.nextUid;
  }

  get uidValidity(): number { return this._uidValidity; }
  get uidNext(): number { return this._uidNext; }
  get highestModseq(): number { return this.lastModseq; }

  messages(): readonly MessageInfo[] { return this.view; }
  byUid(uid: number): MessageInfo | undefined { return this.viewByUid.get(uid); }

  private info(r: MsgRec): MessageInfo {
    const names = this.state.keywords;
    const keywords: string[] = [];
    for (const k of r.kw) { const n = names.nameOf(k); if (n !== undefined) keywords.push(n); }
    return { uid: r.uid, flags: r.flags, keywords, size: r.size, vsize: r.vsize, modseq: r.modseq, recent: this.myRecent.has(r.uid), guid: r.base };
  }

  /** Build the first view (called by the owner right after open). */
  async init(): Promise<void> {
    await this.state.refresh();
    await this.state.keywords.refresh();
    this.claimRecent();
    this.view = this.state.recs.map((r) => this.info(r));
    this.viewByUid = new Map(this.view.map((m) => [m.uid, m]));
    this.lastModseq = this.state.highestModseq;
    this._uidValidity = this.state.uidValidity;
    this._uidNext = this.state.nextUid;
    this.epoch = this.state.epoch;
    this.seenVersion = this.state.version;
  }

  private claimRecent(): void {
    if (this.readOnly) return;
    for (const u of this.state.unclaimedRecent) this.myRecent.add(u);
    this.state.unclaimedRecent.clear();
  }

  private check(): void {
    if (this.closed) throw new MailError('PARAMS', 'Mailbox is closed.');
  }

  async sync(): Promise<MailboxChanges> {
    this.check();
    await this.state.refresh();
    await this.state.keywords.refresh();
    const ch: MailboxChanges = { added: [], expunged: [], flagsChanged: [], uidValidityChanged: false };
    if (this.state.version === this.seenVersion && this.state.epoch === this.epoch && (this.readOnly || this.state.unclaimedRecent.size === 0)) {
      this._uidNext = this.state.nextUid;
      return ch;   // nothing happened since our last look: no diff over the whole view
    }
    if (this.state.epoch !== this.epoch) {
      ch.uidValidityChanged = true;
      ch.expunged = this.view.map((m) => m.uid);
      this.myRecent.clear();
    }
    this.claimRecent();
    const next: MessageInfo[] = [];
    const recs = this.state.recs;
    const old = ch.uidValidityChanged ? new Map<number, MessageInfo>() : this.viewByUid;
    for (const r of recs) {
      const prev = old.get(r.uid);
      if (!prev) { const m = this.info(r); next.push(m); ch.added.push(m); continue; }
      if (r.modseq > this.lastModseq || prev.modseq !== r.modseq) {
        const m = this.info(r); next.push(m);
        if (!sameFlags(prev, m)) ch.flagsChanged.push(m);
      } else next.push(prev);
    }
    if (!ch.uidValidityChanged && next.length - ch.added.length !== this.view.length) {
      const still = new Set(recs.map((r) => r.uid));
      for (const m of this.view) if (!still.has(m.uid)) { ch.expunged.push(m.uid); this.myRecent.delete(m.uid); }
    }
    this.view = next;
    this.viewByUid = new Map(next.map((m) => [m.uid, m]));
    this.lastModseq = this.state.highestModseq;
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
    await this.state.mutex.run(async () => {
      for (const uid of uids) {
        const r = this.state.byUid.get(uid);
        if (!r || !this.viewByUid.has(uid)) continue;
        if (o.unchangedSince !== undefined && r.modseq > o.unchangedSince) { res.failed.push(uid); continue; }
        let nf: SystemFlag[], nk: number[];
        if (mode === 'replace') { nf = sys; nk = kwIdx; }
        else if (mode === 'add') { nf = SYSTEM_FLAGS.filter((f) => r.flags.includes(f) || sys.includes(f)); nk = [...new Set([...r.kw, ...kwIdx])].sort((a, b) => a - b); }
        else { nf = r.flags.filter((f) => !sys.includes(f)); nk = r.kw.filter((k) => !kwIdx.includes(k)); }
        if (nf.length === r.flags.length && nf.every((f, i) => f === r.flags[i]) && nk.length === r.kw.length && nk.every((k, i) => k === r.kw[i])) continue;
        const nr = await this.state.renameFlags(r, nf, [...nk].sort((a, b) => a - b));
        if (nr) res.changed.push(this.info(nr));
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
    await this.state.mutex.run(async () => {
      for (const r of [...this.state.recs]) {
        if (!this.viewByUid.has(r.uid)) continue;
        if (want ? !want.has(r.uid) : !r.flags.includes('\\Deleted')) continue;
        if (await this.state.unlinkMessage(r)) removed.push(r.uid);
      }
    });
    if (removed.length > 0) this.state.changed();
    return removed;
  }

  private recsFor(uids: readonly number[]): MsgRec[] {
    const out: MsgRec[] = [];
    for (const u of [...new Set(uids)].sort((a, b) => a - b)) {
      const r = this.state.byUid.get(u);
      if (r && this.viewByUid.has(u)) out.push(r);
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
    return { messages: this.view.length, recent, uidNext: this._uidNext, uidValidity: this._uidValidity, unseen, size, highestModseq: this.lastModseq };
  }

  keywords(): readonly string[] { return this.state.keywords.names(); }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.unwatch) off();
    // \Recent we held but did not show goes back to nobody (Dovecot: recent is per session)
    this.owner.releaseState(this.state);
  }
}

function sameFlags(a: MessageInfo, b: MessageInfo): boolean {
  return a.flags.length === b.flags.length && a.flags.every((f, i) => f === b.flags[i])
    && a.keywords.length === b.keywords.length && a.keywords.every((k, i) => k === b.keywords[i]);
}
