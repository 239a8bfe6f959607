/**
 * maildir-state - the in-memory state of one Maildir that every handle on it shares in this
 * process: its message records (by UID, base name and file name), UIDVALIDITY and next UID as
 * last read, modseqs and the expunge history (RFC 7162), what new/ and cur/ looked like at the
 * last scan, and the postern-index cache file (maildir-index.ts) written from them on a timer
 * (at most every INDEX_WRITE_DELAY_MS, off the command path; a cache, so a crash loses at most
 * that much). The layers above it, one file each, keep it in step with the disk:
 *   maildir-uidlist-sync.ts  dovecot-uidlist: read, number new files under its dotlock, rewrite
 *   maildir-sync-flags.ts    this process's own flag renames and unlinks
 *   maildir-sync.ts          the scan of new/ and cur/ (MaildirState, the class handles use)
 */
import { promises as fsp, statSync, constants as fsConstants, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { MessageInfo, SystemFlag } from '../mail-storage.ts';
import { MailError, mailErrorFromErrno } from '../mail-error.ts';
import { logger } from '../../util/msg.ts';
import { notifyMailboxChanged } from '../mail-notify.ts';
import { flushLazyWriters, LazyWriter } from '../../util/lazy-writer.ts';
import { MaildirKeywords } from './maildir-keywords.ts';
import { EXPUNGES_MAX, formatIndex, markIndexDirty, writeIndex, writeIndexSync, type IndexExpunge } from './maildir-index.ts';
import { UIDLIST_NAME } from './maildir-uidlist.ts';

const log = logger('lib-storage');

export interface MsgRec {
  uid: number;
  base: string;
  fname: string;
  sub: 'new' | 'cur';
  flags: SystemFlag[];
  kw: number[];
  other: string;
  size: number;
  vsize: number;
  modseq: number;
  /** INTERNALDATE cache (file mtime), filled on first use. */
  mtimeMs?: number;
  /** The MessageInfo every handle shares for this record (MaildirState.infoOf), and the
   * keyword-table generation it was built with. Cleared whenever flags change. */
  info?: MessageInfo;
  infoGen?: number;
}

/** A FIFO mutex for async sections. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn);
    this.tail = p.then(() => {}, () => {});
    return p;
  }
}

/** Debounce of postern-index writes (it is a cache: a crash loses at most this much). */
export const INDEX_WRITE_DELAY_MS = 3000;
/** Write every pending postern-index (and other cache file) now (process stop; also tests). */
export const flushMailboxIndexes = flushLazyWriters;

/** Dovecot's MAILDIR_SYNC_SECS: how close to a directory's mtime a look is not trusted. */
export const SYNC_SECS_NS = 1_000_000_000n;

export function wallNs(): bigint { return BigInt(Date.now()) * 1_000_000n; }

/** Dovecot's DIR_DELAYED_REFRESH: the last look was too close to the mtime, and is old enough now. */
export function delayedRefresh(checkNs: bigint, mtimeNs: bigint, nowNs: bigint): boolean {
  return checkNs <= mtimeNs + SYNC_SECS_NS && checkNs < nowNs - SYNC_SECS_NS;
}

/** The shared state; maildir-sync.ts's MaildirState is the concrete class (see the header). */
export abstract class MaildirRecords {
  readonly dir: string;
  readonly ctlDir: string;
  readonly uidlistPath: string;
  readonly keywords: MaildirKeywords;
  readonly mutex = new Mutex();
  /** Creates a fresh UIDVALIDITY (dovecot-uidvalidity of the mail root). */
  protected readonly newUidValidity: () => Promise<number>;
  protected readonly indexDir: string;

  uidValidity = 0;
  nextUid = 1;
  guid = '';
  /** Live messages, ascending UID. */
  recs: MsgRec[] = [];
  byUid = new Map<number, MsgRec>();
  byBase = new Map<string, MsgRec>();
  /** Live records by current file name: lets a rescan recognise unchanged names without parsing.
   * Rebuilt lazily (a STORE on 10,000 messages would otherwise update it 10,000 times). */
  protected byFname = new Map<string, MsgRec>();
  protected byFnameStale = true;
  highestModseq: number;
  /** Bumped whenever UIDVALIDITY changes under us; handles compare it. */
  epoch = 0;
  /** Bumped on every change of `recs`; a handle whose view saw this version has nothing to diff. */
  version = 0;
  /** New UIDs nobody has claimed \Recent for yet. */
  unclaimedRecent = new Set<number>();

  protected curNames: string[] = [];
  /** mtimes of new/ and cur/ as last seen, when we looked (ns), and "read it next time". */
  protected stampNew = -1n;
  protected stampCur = -1n;
  protected checkNew = 0n;
  protected checkCur = 0n;
  protected forceNew = true;
  protected forceCur = true;
  /** curNames misses this process's own renames/unlinks since cur/ was last read. */
  protected curNamesStale = false;
  /** >0 while ownCurChange() runs: replace()/drop() then need no forced rescan. */
  protected ownChanges = 0;
  protected loaded = false;
  refs = 0;
  /** Writable handles open on this state (postern-index is "clean" only without any). */
  writers = 0;
  /** Recent expunges (ascending modseq, at most EXPUNGES_MAX) for QRESYNC: all those above expungesFrom. */
  expunges: IndexExpunge[] = [];
  expungesFrom = 0;
  /** postern-index is written lazily (util/lazy-writer.ts). */
  protected readonly indexWriter = new LazyWriter({
    delayMs: INDEX_WRITE_DELAY_MS,
    write: async () => {
      const text = this.indexText();   // a synchronous snapshot: consistent without the mutex
      if (text === undefined) return;
      await writeIndex(this.ctlDir, text).catch((e) => {
        log.warn(`${this.ctlDir}: cannot write postern-index (a cache; modseqs restart from a new base): ${(e as Error).message}`);
      });
    },
    writeSync: () => {
      const text = this.indexText();
      if (text === undefined) return;
      try { writeIndexSync(this.ctlDir, text); } catch { /* a cache; exiting anyway */ }
    },
  });

  constructor(dir: string, ctlDir: string, indexDir: string, newUidValidity: () => Promise<number>) {
    this.dir = dir;
    this.ctlDir = ctlDir;
    this.indexDir = indexDir;
    this.uidlistPath = join(ctlDir, UIDLIST_NAME);
    this.keywords = new MaildirKeywords(ctlDir);
    this.newUidValidity = newUidValidity;
    // the time-derived base keeps HIGHESTMODSEQ growing across restarts; postern-index
    // (maildir-index.ts) raises it to its persisted value + 1 and keeps unchanged modseqs
    this.highestModseq = Date.now() * 1000;
  }

  /** Bring the state up to date with the disk (caller holds the mutex): the scan, maildir-sync.ts. */
  abstract refreshLocked(force?: boolean): Promise<void>;

  /**
   * The stat() calls of a sync are made synchronously (statSync): one cheap metadata syscall
   * each, as Dovecot makes them, where a thread-pool round trip costs several times more and
   * adds its queueing delay to every command's sync (fs-batch.ts has the figures).
   */
  protected statDir(sub: string): BigIntStats {
    try { return statSync(join(this.dir, sub), { bigint: true }); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new MailError('NOTFOUND', 'Mailbox does not exist.', `stat(${join(this.dir, sub)}) failed`);
      throw mailErrorFromErrno(e, `stat(${join(this.dir, sub)})`);
    }
  }

  protected fnameIndex(): Map<string, MsgRec> {
    if (this.byFnameStale) {
      this.byFname = new Map();
      for (const r of this.recs) this.byFname.set(r.fname, r);
      this.byFnameStale = false;
    }
    return this.byFname;
  }

  /**
   * The MessageInfo of a record as every handle that does not hold \Recent for it sees it:
   * built once and shared (a SELECT of 10,000 messages copies pointers instead of building
   * 10,000 objects per session). Whatever changes a record's flags drops its cached info
   * (a new MessageInfo object is built, the old one is never mutated); the keyword
   * generation catches a changed dovecot-keywords.
   */
  infoOf(r: MsgRec): MessageInfo {
    const gen = this.keywords.generation;
    if (r.info !== undefined && r.infoGen === gen) return r.info;
    let keywords: readonly string[] = NO_KEYWORDS;
    if (r.kw.length > 0) {
      const names: string[] = [];
      for (const k of r.kw) { const n = this.keywords.nameOf(k); if (n !== undefined) names.push(n); }
      keywords = names;
    }
    const info: MessageInfo = { uid: r.uid, flags: r.flags, keywords, size: r.size, vsize: r.vsize, modseq: r.modseq, recent: false, guid: r.base };
    r.info = info;
    r.infoGen = gen;
    return info;
  }

  /** Path of a message file. */
  pathOf(r: MsgRec): string { return `${this.dir}/${r.sub}/${r.fname}`; }

  /** Add records for files this process just saved (caller holds mutex, UIDs in uidlist). */
  addSaved(rec: MsgRec): void {
    rec.modseq = ++this.highestModseq;
    this.unclaimedRecent.add(rec.uid);
    this.recs.push(rec);
    if (this.recs.length > 1 && this.recs[this.recs.length - 2]!.uid > rec.uid) this.recs.sort((a, b) => a.uid - b.uid);
    this.byUid.set(rec.uid, rec); this.byBase.set(rec.base, rec);
    this.byFnameStale = true;
    this.forceNew = true; this.forceCur = true;
    this.version++;
    this.indexChanged();
  }

  protected replace(nr: MsgRec): void {
    const i = this.indexOf(nr.uid);
    if (i >= 0) this.recs[i] = nr;
    this.byUid.set(nr.uid, nr); this.byBase.set(nr.base, nr);
    this.byFnameStale = true;
    if (this.ownChanges === 0) this.forceCur = true;
    this.version++;
  }

  protected drop(r: MsgRec): void {
    const i = this.indexOf(r.uid);
    if (i >= 0) this.recs.splice(i, 1);
    this.byUid.delete(r.uid); this.byBase.delete(r.base);
    this.byFnameStale = true;
    this.unclaimedRecent.delete(r.uid);
    if (this.ownChanges === 0) this.forceCur = true;
    this.version++;
  }

  indexOf(uid: number): number {
    let lo = 0, hi = this.recs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const u = this.recs[mid]!.uid;
      if (u === uid) return mid;
      if (u < uid) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  }

  protected trimExpunges(): void {
    if (this.expunges.length <= EXPUNGES_MAX) return;
    const dropped = this.expunges.splice(0, this.expunges.length - EXPUNGES_MAX);
    this.expungesFrom = Math.max(this.expungesFrom, dropped[dropped.length - 1]!.modseq);
  }

  /**
   * UIDs expunged after `modseq` (QRESYNC VANISHED), or undefined when the kept history does not
   * reach back that far (the caller then answers a superset, RFC 7162 §3.2.5.2).
   */
  expungedSince(modseq: number): number[] | undefined {
    if (modseq < this.expungesFrom) return undefined;
    const out: number[] = [];
    for (const e of this.expunges) if (e.modseq > modseq) out.push(e.uid);
    return out.sort((a, b) => a - b);
  }

  /** Something persisted changed: write postern-index later (one boolean test when already due). */
  indexChanged(): void { this.indexWriter.mark(); }

  /** A writable handle opens: a clean index becomes dirty before it can change anything. */
  openWriter(): void {
    if (this.writers++ === 0) markIndexDirty(this.ctlDir);
  }

  /** A writable handle closes: the next write may be clean again. */
  closeWriter(): void {
    if (--this.writers === 0) this.indexWriter.mark();
  }

  protected indexText(): string | undefined {
    if (!this.loaded || this.uidValidity === 0) return undefined;
    return formatIndex({
      uidValidity: this.uidValidity, highestModseq: this.highestModseq, clean: this.writers === 0,
      curMtimeNs: this.stampCur < 0n ? 0n : this.stampCur, curCheckNs: this.checkCur,
      expungesFrom: this.expungesFrom, expunges: this.expunges, recs: this.recs,
    });
  }

  /** Write postern-index now if anything changed since the last write. Never throws. */
  writeIndexNow(): Promise<void> { return this.indexWriter.flush(); }

  /** The mailbox was deleted or renamed: a pending write must not recreate its old directory. */
  cancelIndexWrite(): void { this.indexWriter.cancel(); }

  /** Tell every listener (in-process now; other processes see the directory change). */
  changed(): void { notifyMailboxChanged(this.dir); }
}

const NO_KEYWORDS: readonly string[] = Object.freeze([]);

/**
 * Read a message file without following a symlink (O_NOFOLLOW): a link planted in a Maildir
 * must never make Postern serve a file from outside the mail root.
 */
export async function readNoFollow(path: string): Promise<Buffer> {
  const fh = await fsp.open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try { return await fh.readFile(); } finally { await fh.close(); }
}

/** Number of LF not preceded by CR: the vsize difference (RFC822.SIZE counts CRLF). */
export function countBareLf(buf: Uint8Array, prevCr = false): number {
  let n = 0;
  let prev = prevCr ? 13 : 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === 10 && prev !== 13) n++;
    prev = c;
  }
  return n;
}
