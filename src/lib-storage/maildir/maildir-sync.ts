/**
 * maildir-sync - one Maildir's state in this process, kept in step with the disk
 * (Dovecot maildir-sync.c + maildir-uidlist.c sync), shared by every handle on the mailbox.
 *
 * refresh():
 *  1. stat new/ and cur/ (and dovecot-uidlist). Unchanged mtimes, uidlist unchanged, nothing
 *     dirty → done: no readdir, no per-message stat (Dovecot's trick). A directory whose last
 *     look came less than a second after its mtime is "dirty": two changes inside one clock
 *     tick can leave the same mtime, so it is read again once, by the first refresh more than
 *     a second after that look (Dovecot maildir_sync_quick_check, DIR_DELAYED_REFRESH).
 *     This process's own renames and unlinks in cur/ (STORE, EXPUNGE) do not make cur/ look
 *     changed: when cur/ was as we last saw it before them, its new mtime is adopted after
 *     them and the look dated from before them (Dovecot's update_maildir_hdr_cur), so a
 *     writer that changed cur/ meanwhile is still caught by the delayed re-read.
 *  2. readdir new/; move each file to cur/ appending ":2," when it has no info (Dovecot does
 *     so on every sync unless read-only); those messages are \Recent.
 *  3. readdir cur/ (only if its mtime changed). If cur/ changed while we read it (a rename
 *     by another writer can hide a file from one readdir), read it again.
 *  4. Files whose base name has no UID: take `dovecot-uidlist.lock`, re-read the uidlist
 *     (someone may have numbered them meanwhile), append "<uid> :<base>" records in delivery
 *     order, release. UIDs are assigned only under the lock, so Postern and Dovecot never give
 *     one UID twice.
 *  5. Messages whose file is gone are expunged; changed info letters are flag changes.
 *     Each change raises the message's modseq.
 *  6. Modseqs: the first load takes them from `postern-index` (maildir-index.ts: when it is
 *     trusted, and why HIGHESTMODSEQ never goes backwards); every change marks the index
 *     dirty and it is rewritten at most every INDEX_WRITE_DELAY_MS, off the command path.
 * Everything that changes the state runs under one in-process mutex; other processes are
 * excluded by the dotlock (UIDs) or need no lock (flag renames are atomic, as in Dovecot).
 */
import { promises as fsp, renameSync, statSync, constants as fsConstants, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { MessageInfo, SystemFlag } from '../mail-storage.ts';
import { MailError, mailErrorFromErrno } from '../mail-error.ts';
import { logger } from '../../util/msg.ts';
import { notifyMailboxChanged } from '../mail-notify.ts';
import { mapSliced } from '../fs-batch.ts';
import { flushLazyWriters, LazyWriter } from '../../util/lazy-writer.ts';
import { dotlockCreate } from './maildir-dotlock.ts';
import { MaildirKeywords } from './maildir-keywords.ts';
import { inheritOwner } from './maildir-owner.ts';
import { EXPUNGES_MAX, formatIndex, loadIndex, markIndexDirty, writeIndex, writeIndexSync, type IndexData, type IndexExpunge } from './maildir-index.ts';
import { isMessageName, maildirBase, nameTime, parseInfo, sizeField, withInfo, MAILDIR_FLAGS_FULL_SEP } from './maildir-filename.ts';
import {
  formatRecord, formatUidlist, newMailboxGuid, parseUidlist, UIDLIST_NAME, type UidlistRecord,
} from './maildir-uidlist.ts';

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

/** Read Dovecot's dovecot.index header for UIDVALIDITY/next UID (mail-index.h, offsets 24/28). */
async function readIndexHeader(path: string): Promise<{ uidValidity: number; nextUid: number } | undefined> {
  try {
    const fh = await fsp.open(path, 'r');
    try {
      const b = Buffer.alloc(32);
      const { bytesRead } = await fh.read(b, 0, 32, 0);
      if (bytesRead < 32 || b[0] !== 7) return undefined;
      const uv = b.readUInt32LE(24), nu = b.readUInt32LE(28);
      return uv > 0 && nu > 0 ? { uidValidity: uv, nextUid: nu } : undefined;
    } finally { await fh.close(); }
  } catch { return undefined; }
}

/** Debounce of postern-index writes (it is a cache: a crash loses at most this much). */
export const INDEX_WRITE_DELAY_MS = 3000;
/** Write every pending postern-index (and other cache file) now (process stop; also tests). */
export const flushMailboxIndexes = flushLazyWriters;

/** Dovecot's MAILDIR_SYNC_SECS: how close to a directory's mtime a look is not trusted. */
const SYNC_SECS_NS = 1_000_000_000n;

function wallNs(): bigint { return BigInt(Date.now()) * 1_000_000n; }

/** Dovecot's DIR_DELAYED_REFRESH: the last look was too close to the mtime, and is old enough now. */
function delayedRefresh(checkNs: bigint, mtimeNs: bigint, nowNs: bigint): boolean {
  return checkNs <= mtimeNs + SYNC_SECS_NS && checkNs < nowNs - SYNC_SECS_NS;
}

export class MaildirState {
  readonly dir: string;
  readonly ctlDir: string;
  readonly uidlistPath: string;
  readonly keywords: MaildirKeywords;
  readonly mutex = new Mutex();
  /** Creates a fresh UIDVALIDITY (dovecot-uidvalidity of the mail root). */
  private readonly newUidValidity: () => Promise<number>;
  private readonly indexDir: string;

  uidValidity = 0;
  nextUid = 1;
  guid = '';
  private hdrExt: string[] = [];
  /** Every uidlist record, by base name (also those whose file is gone). */
  private ulByBase = new Map<string, UidlistRecord>();
  private ulMaxUid = 0;
  private ulKey = '';
  private ulNeedsRewrite = false;
  private expungedBases = new Set<string>();

  /** Live messages, ascending UID. */
  recs: MsgRec[] = [];
  byUid = new Map<number, MsgRec>();
  byBase = new Map<string, MsgRec>();
  /** Live records by current file name: lets a rescan recognise unchanged names without parsing.
   * Rebuilt lazily (a STORE on 10,000 messages would otherwise update it 10,000 times). */
  private byFname = new Map<string, MsgRec>();
  private byFnameStale = true;
  highestModseq: number;
  /** Bumped whenever UIDVALIDITY changes under us; handles compare it. */
  epoch = 0;
  /** Bumped on every change of `recs`; a handle whose view saw this version has nothing to diff. */
  version = 0;
  /** New UIDs nobody has claimed \Recent for yet. */
  unclaimedRecent = new Set<number>();

  private curNames: string[] = [];
  /** mtimes of new/ and cur/ as last seen, when we looked (ns), and "read it next time". */
  private stampNew = -1n;
  private stampCur = -1n;
  private checkNew = 0n;
  private checkCur = 0n;
  private forceNew = true;
  private forceCur = true;
  /** curNames misses this process's own renames/unlinks since cur/ was last read. */
  private curNamesStale = false;
  /** >0 while ownCurChange() runs: replace()/drop() then need no forced rescan. */
  private ownChanges = 0;
  private loaded = false;
  refs = 0;
  /** Writable handles open on this state (postern-index is "clean" only without any). */
  writers = 0;
  /** Recent expunges (ascending modseq, at most EXPUNGES_MAX) for QRESYNC: all those above expungesFrom. */
  expunges: IndexExpunge[] = [];
  expungesFrom = 0;
  /** postern-index is written lazily (util/lazy-writer.ts). */
  private readonly indexWriter = new LazyWriter({
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

  /** Bring the state up to date with the disk (see the file comment). */
  refresh(force = false): Promise<void> {
    return this.mutex.run(() => this.refreshLocked(force));
  }

  async refreshLocked(force = false): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const stable = await this.scanOnce(force || attempt > 0);
      if (stable || attempt >= 3) break;
    }
  }

  /**
   * The stat() calls of a sync are made synchronously (statSync): one cheap metadata syscall
   * each, as Dovecot makes them, where a thread-pool round trip costs several times more and
   * adds its queueing delay to every command's sync (fs-batch.ts has the figures).
   */
  private statDir(sub: string): BigIntStats {
    try { return statSync(join(this.dir, sub), { bigint: true }); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new MailError('NOTFOUND', 'Mailbox does not exist.', `stat(${join(this.dir, sub)}) failed`);
      throw mailErrorFromErrno(e, `stat(${join(this.dir, sub)})`);
    }
  }

  /** One pass; returns false if cur/ changed while it was read. */
  private async scanOnce(force: boolean): Promise<boolean> {
    const nowNs = wallNs();
    const stNew = this.statDir('new');
    const stCur = this.statDir('cur');
    const ulChanged = this.uidlistChanged();
    const newChanged = force || this.forceNew || stNew.mtimeNs !== this.stampNew || delayedRefresh(this.checkNew, this.stampNew, nowNs);
    let curChanged = force || this.forceCur || stCur.mtimeNs !== this.stampCur || delayedRefresh(this.checkCur, this.stampCur, nowNs);
    if (!newChanged && !curChanged && !ulChanged && this.loaded) return true;

    const recentBases = new Set<string>();
    const stayInNew = new Map<string, string>();
    if (newChanged) {
      this.stampNew = stNew.mtimeNs;
      this.checkNew = nowNs;
      this.forceNew = false;
      const ents = await fsp.readdir(join(this.dir, 'new'), { withFileTypes: true }).catch((e) => { throw mailErrorFromErrno(e, `readdir(${this.dir}/new)`); });
      for (const e of ents) {
        const n = e.name;
        if (!isMessageName(n) || e.isDirectory() || e.isSymbolicLink()) continue;   // never a message: left alone
        const to = n.includes(':') ? n : n + MAILDIR_FLAGS_FULL_SEP;
        try {
          await fsp.rename(join(this.dir, 'new', n), join(this.dir, 'cur', to));
          recentBases.add(maildirBase(n));
          curChanged = true;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') { curChanged = true; continue; }   // moved by someone else meanwhile
          stayInNew.set(maildirBase(n), n);                          // read-only: serve it from new/
        }
      }
    }
    if (!curChanged && this.curNamesStale) {
      // cur/ is as our own renames left it; only new/ was looked at
      if (recentBases.size === 0 && stayInNew.size === 0 && !ulChanged && !this.ulNeedsRewrite && this.loaded) return true;
      curChanged = true;   // the list below must be the real one
    }
    let stable = true;
    if (curChanged) {
      const before = this.statDir('cur');
      const names = await this.readCur();
      const after = this.statDir('cur');
      stable = before.mtimeNs === after.mtimeNs;
      this.curNames = names;
      this.stampCur = before.mtimeNs;
      this.checkCur = nowNs;
      this.forceCur = !stable;
      this.curNamesStale = false;
    }
    if (this.loaded && recentBases.size === 0 && stayInNew.size === 0 && !ulChanged && !this.ulNeedsRewrite
      && this.uidValidity !== 0 && this.curNames.length === this.recs.length && this.allKnown(this.curNames)) {
      return stable;   // cur/ was rewritten only into the names we know (e.g. our own STORE): nothing to rebuild
    }
    const files = new Map<string, { fname: string; sub: 'new' | 'cur' }>();
    for (const n of this.curNames) files.set(maildirBase(n), { fname: n, sub: 'cur' });
    for (const [b, n] of stayInNew) if (!files.has(b)) files.set(b, { fname: n, sub: 'new' });

    await this.readUidlist();
    const unknown = [...files.keys()].filter((b) => !this.ulByBase.has(b));
    if (unknown.length > 0 || this.uidValidity === 0 || this.ulNeedsRewrite) await this.assignUids(unknown);
    const idx = this.loaded || this.uidValidity === 0 ? undefined
      : await loadIndex(this.ctlDir, this.uidValidity, (w) => log.warn(w));
    await this.rebuild(files, recentBases, idx, stCur.mtimeNs);
    this.loaded = true;
    return stable;
  }

  /**
   * The message file names in cur/. Directories and symlinks are never messages; telling them
   * apart needs the entry types, which cost a Dirent object per entry. Once loaded, names
   * already known as live records are files we have seen (content is opened O_NOFOLLOW
   * anyway), so a plain name list is read and only the few unknown names are lstat()ed.
   */
  private async readCur(): Promise<string[]> {
    const path = join(this.dir, 'cur');
    const fail = (e: unknown): never => { throw mailErrorFromErrno(e, `readdir(${path})`); };
    if (this.loaded) {
      const names = await fsp.readdir(path).catch(fail);
      const known = this.fnameIndex();
      const unknown: string[] = [];
      for (const n of names) if (!known.has(n) && isMessageName(n)) unknown.push(n);
      if (unknown.length <= 256) {
        const skip = new Set<string>();
        for (const n of unknown) {
          const st = await fsp.lstat(join(path, n)).catch(() => undefined);
          if (!st || st.isDirectory() || st.isSymbolicLink()) skip.add(n);
        }
        return names.filter((n) => isMessageName(n) && !skip.has(n));
      }
    }
    const ents = await fsp.readdir(path, { withFileTypes: true }).catch(fail);
    const out: string[] = [];
    for (const e of ents) if (isMessageName(e.name) && !e.isDirectory() && !e.isSymbolicLink()) out.push(e.name);
    return out;
  }

  private fnameIndex(): Map<string, MsgRec> {
    if (this.byFnameStale) {
      this.byFname = new Map();
      for (const r of this.recs) this.byFname.set(r.fname, r);
      this.byFnameStale = false;
    }
    return this.byFname;
  }

  /** Every name is the current file name of a live record in cur/ (one map lookup each). */
  private allKnown(names: readonly string[]): boolean {
    this.fnameIndex();
    for (const n of names) {
      const r = this.byFname.get(n);
      if (r === undefined || r.sub !== 'cur') return false;
    }
    return true;
  }

  private uidlistChanged(): boolean {
    let st: BigIntStats | undefined;
    try { st = statSync(this.uidlistPath, { bigint: true, throwIfNoEntry: false }); } catch { st = undefined; }
    if (!st) return this.ulKey !== 'none';
    return `${st.ino}/${st.size}/${st.mtimeNs}` !== this.ulKey;
  }

  /** (Re-)read dovecot-uidlist if it changed. */
  private async readUidlist(force = false): Promise<void> {
    let st: BigIntStats | undefined;
    try { st = statSync(this.uidlistPath, { bigint: true, throwIfNoEntry: false }); } catch { st = undefined; }
    if (!st) {
      if (this.ulKey !== 'none' && this.ulKey !== '' && this.uidValidity !== 0) {
        log.warn(`${this.uidlistPath}: file disappeared; recreating it with the UIDs known to this process`);
        this.ulNeedsRewrite = true;
      }
      this.ulKey = 'none';
      return;
    }
    const key = `${st.ino}/${st.size}/${st.mtimeNs}`;
    if (key === this.ulKey && !force) return;
    const text = await fsp.readFile(this.uidlistPath, 'latin1').catch((e) => { throw mailErrorFromErrno(e, `read(${this.uidlistPath})`); });
    this.ulKey = key;
    const p = parseUidlist(text, this.uidlistPath);
    for (const w of p.problems) log.warn(w);
    if (p.needsRewrite) this.ulNeedsRewrite = true;
    let d = p.data;
    if (!d) {
      // header unusable: try Dovecot's index before giving up UIDVALIDITY (as Dovecot does)
      const idx = await readIndexHeader(join(this.indexDir, 'dovecot.index'));
      const uv = idx?.uidValidity ?? (this.uidValidity || undefined);
      if (uv !== undefined) {
        log.warn(`${this.uidlistPath}: broken header; keeping UIDVALIDITY ${uv}`);
        d = { version: 3, uidValidity: uv, nextUid: Math.max(idx?.nextUid ?? 1, this.nextUid), guid: '', hdrExt: [], records: [] };
      } else if (text.length > 0) {
        log.warn(`${this.uidlistPath}: broken header and no index; mailbox gets a new UIDVALIDITY`);
      }
      // with the UIDVALIDITY known, the records that parse keep their UIDs
      if (d) {
        const again = parseUidlist(`3 V${d.uidValidity} N${d.nextUid}\n` + text.slice(text.indexOf('\n') + 1), this.uidlistPath);
        if (again.data) d.records = again.data.records;
      }
    }
    if (!d) {
      if (this.uidValidity !== 0) this.epoch++;
      this.uidValidity = 0; this.nextUid = 1; this.guid = ''; this.hdrExt = [];
      this.ulByBase.clear(); this.ulMaxUid = 0;
      this.ulNeedsRewrite = true;
      return;
    }
    if (this.uidValidity !== 0 && d.uidValidity !== this.uidValidity) {
      log.warn(`${this.uidlistPath}: UIDVALIDITY changed ${this.uidValidity} -> ${d.uidValidity}`);
      this.epoch++;
      this.expunges = []; this.expungesFrom = this.highestModseq;
      this.byBase.clear(); this.byUid.clear(); this.byFnameStale = true; this.recs = [];
    }
    const next = Math.max(d.nextUid, this.uidValidity === d.uidValidity ? this.nextUid : 0);
    if (this.uidValidity === d.uidValidity && d.nextUid < this.nextUid && this.ulMaxUid >= d.nextUid) {
      log.warn(`${this.uidlistPath}: next_uid was lowered (${this.nextUid} -> ${d.nextUid}); keeping ${this.nextUid}`);
      this.ulNeedsRewrite = true;
    }
    this.uidValidity = d.uidValidity;
    this.nextUid = next;
    this.guid = d.guid || this.guid || newMailboxGuid();
    this.hdrExt = d.hdrExt;
    this.ulByBase.clear();
    this.ulMaxUid = 0;
    for (const r of d.records) { this.ulByBase.set(r.base, r); this.ulMaxUid = Math.max(this.ulMaxUid, r.uid); }
    if (this.nextUid <= this.ulMaxUid) this.nextUid = this.ulMaxUid + 1;
    if (p.problems.length > 0) {
      // records may be lost: never hand out a UID Dovecot's index already knows
      const idx = await readIndexHeader(join(this.indexDir, 'dovecot.index'));
      if (idx && idx.uidValidity === this.uidValidity && idx.nextUid > this.nextUid) this.nextUid = idx.nextUid;
    }
  }

  /** Under the uidlist dotlock: number `bases` (if still unnumbered) and write the uidlist. */
  async assignUids(bases: string[], extra?: () => Promise<void>, lateBases?: () => string[]): Promise<void> {
    await fsp.mkdir(this.ctlDir, { recursive: true }).catch(() => {});
    const lock = await dotlockCreate(this.uidlistPath);
    try {
      await this.readUidlist();
      if (extra) await extra();
      let recreate = this.ulNeedsRewrite || this.ulKey === 'none';
      if (this.uidValidity === 0) {
        this.uidValidity = await this.newUidValidity();
        this.nextUid = 1;
        this.guid = newMailboxGuid();
        recreate = true;
      }
      const todo = [...new Set([...bases, ...(lateBases ? lateBases() : [])])].filter((b) => !this.ulByBase.has(b));
      todo.sort((a, b) => nameTime(a) - nameTime(b) || (a < b ? -1 : a > b ? 1 : 0));
      const added: UidlistRecord[] = [];
      for (const b of todo) {
        const r: UidlistRecord = { uid: this.nextUid++, base: b, ext: [] };
        this.ulByBase.set(b, r); this.ulMaxUid = r.uid; added.push(r);
      }
      const stale = this.expungedBases.size;
      if (stale > 100 && stale > this.ulByBase.size / 2) recreate = true;
      if (recreate) {
        for (const b of this.expungedBases) this.ulByBase.delete(b);
        this.expungedBases.clear();
        await this.writeUidlist();
      } else if (added.length > 0) {
        const fh = await fsp.open(this.uidlistPath, 'a');
        try {
          await fh.write(added.map(formatRecord).join(''));
          await fh.datasync();
        } finally { await fh.close(); }
        await this.rememberUidlistKey();
      }
    } finally { await lock.release(); }
  }

  /** Recreate the whole uidlist via dovecot-uidlist.tmp + rename (caller holds the lock). */
  private async writeUidlist(): Promise<void> {
    const records = [...this.ulByBase.values()].sort((a, b) => a.uid - b.uid);
    const text = formatUidlist({ version: 3, uidValidity: this.uidValidity, nextUid: this.nextUid, guid: this.guid || newMailboxGuid(), hdrExt: this.hdrExt, records });
    const tmp = this.uidlistPath + '.tmp';
    const fh = await fsp.open(tmp, 'w', 0o600);
    try { await fh.write(text, 0, 'latin1'); await fh.datasync(); } finally { await fh.close(); }
    await inheritOwner(tmp);
    await fsp.rename(tmp, this.uidlistPath);
    this.ulNeedsRewrite = false;
    await this.rememberUidlistKey();
  }

  private async rememberUidlistKey(): Promise<void> {
    const st = await fsp.stat(this.uidlistPath, { bigint: true });
    this.ulKey = `${st.ino}/${st.size}/${st.mtimeNs}`;
  }

  /** Recompute the message list from the files seen and the uidlist. */
  private async rebuild(files: Map<string, { fname: string; sub: 'new' | 'cur' }>, recentBases: Set<string>,
    idx?: IndexData, curMtimeNs?: bigint): Promise<void> {
    const recs: MsgRec[] = [];
    const byUid = new Map<number, MsgRec>();
    const byBase = new Map<string, MsgRec>();
    const firstLoad = !this.loaded;
    // postern-index (maildir-index.ts): never below the persisted HIGHESTMODSEQ + 1
    if (idx) this.highestModseq = Math.max(this.highestModseq, idx.highestModseq + 1);
    const initialModseq = this.highestModseq;
    const trusted = idx && (idx.clean || (idx.curMtimeNs === curMtimeNs && idx.curCheckNs > idx.curMtimeNs + SYNC_SECS_NS)) ? idx.msgs : undefined;
    for (const [base, f] of files) {
      const ul = this.ulByBase.get(base);
      if (!ul) continue;   // could not be numbered (read-only): invisible until it is
      const old = this.byBase.get(base);
      if (old && old.uid === ul.uid && old.fname === f.fname && old.sub === f.sub) {
        recs.push(old); byUid.set(old.uid, old); byBase.set(base, old);   // unchanged file: no parsing
        continue;
      }
      const info = parseInfo(f.fname);
      let size = sizeField(base, 'S') ?? old?.size ?? -1;
      let vsize = sizeField(base, 'W') ?? old?.vsize ?? -1;
      if (size < 0 || vsize < 0) {
        // no ,S=/,W= in the name (e.g. Postfix virtual(8) names): measure once, then cached
        try {
          const buf = await readNoFollow(join(this.dir, f.sub, f.fname));
          size = buf.length;
          vsize = buf.length + countBareLf(buf);
        } catch { continue; }   // vanished meanwhile: expunged
      }
      let rec: MsgRec;
      const same = old && old.uid === ul.uid && sameInfo(old, info);
      if (same) {
        rec = old.fname === f.fname && old.sub === f.sub ? old : { ...old, fname: f.fname, sub: f.sub };
      } else {
        const kept = firstLoad ? trusted?.get(ul.uid) : undefined;
        rec = { uid: ul.uid, base, fname: f.fname, sub: f.sub, flags: info.flags, kw: info.keywordIdx, other: info.other, size, vsize,
          modseq: kept !== undefined && kept.suffix === f.fname.slice(base.length) ? kept.modseq : firstLoad ? initialModseq : ++this.highestModseq };
        if (!old && (!firstLoad || recentBases.has(base))) this.unclaimedRecent.add(ul.uid);
      }
      recs.push(rec); byUid.set(rec.uid, rec); byBase.set(base, rec);
    }
    recs.sort((a, b) => a.uid - b.uid);
    if (firstLoad) this.expungesFrom = initialModseq - 1;   // earlier expunges are unknown
    if (idx) {
      // expunged while nobody here was looking: one modseq above everything persisted
      this.expunges = idx.expunges.slice();
      this.expungesFrom = idx.expungesFrom;
      for (const uid of idx.msgs.keys()) if (!byUid.has(uid)) this.expunges.push({ uid, modseq: initialModseq });
      this.trimExpunges();
      if (this.expunges.length !== idx.expunges.length || recs.some((r) => r.modseq === initialModseq)) this.indexChanged();
    } else if (firstLoad) this.indexChanged();
    if (recs.length === this.recs.length && recs.every((r, i) => r === this.recs[i])) {
      if (this.nextUid <= this.ulMaxUid) { this.nextUid = this.ulMaxUid + 1; this.version++; }
      return;   // nothing changed: keep the arrays (and the handles' fast path)
    }
    this.version++;
    if (this.recs.length !== recs.length || this.recs.some((r) => !byUid.has(r.uid))) {
      // expunged by someone else
      let m = 0;
      for (const r of this.recs) {
        if (byUid.has(r.uid)) continue;
        this.unclaimedRecent.delete(r.uid);
        this.expunges.push({ uid: r.uid, modseq: m ||= ++this.highestModseq });
      }
      this.trimExpunges();
    }
    if (!firstLoad) this.indexChanged();   // the first load decided above
    this.recs = recs; this.byUid = byUid; this.byBase = byBase;
    this.byFnameStale = true;
    if (this.nextUid <= this.ulMaxUid) this.nextUid = this.ulMaxUid + 1;
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

  /** UID the uidlist gives a base name. */
  uidOfBase(base: string): number | undefined { return this.ulByBase.get(base)?.uid; }

  /** Path of a message file. */
  pathOf(r: MsgRec): string { return `${this.dir}/${r.sub}/${r.fname}`; }

  /**
   * Rename a message's file to carry new flags/keywords (caller holds the mutex).
   * Returns the new record, or undefined if the message was expunged meanwhile.
   */
  async renameFlags(r: MsgRec, flags: SystemFlag[], kw: number[]): Promise<MsgRec | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const cur = this.byUid.get(r.uid);
      if (!cur) return undefined;
      const to = withInfo(cur.base, flags, kw, cur.other);
      try {
        await fsp.rename(this.pathOf(cur), join(this.dir, 'cur', to));
        const nr: MsgRec = { ...cur, fname: to, sub: 'cur', flags, kw, modseq: ++this.highestModseq, info: undefined };
        this.replace(nr);
        this.indexChanged();
        return nr;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw mailErrorFromErrno(e, `rename(${this.pathOf(cur)})`);
        await this.refreshLocked(true);   // renamed by someone else: find its new name
      }
    }
    return undefined;
  }

  /**
   * STORE on a set (caller holds the mutex): every file renamed in one batch of synchronous
   * renames in time slices (fs-batch.ts) instead of one thread-pool round trip each; the
   * uidlist is not touched (flags live in the names). A file another writer renamed or
   * expunged meanwhile (ENOENT) is retried alone after a rescan, as renameFlags() does.
   * Returns the new records in job order (undefined: the message is gone).
   */
  async renameFlagsMany(jobs: ReadonlyArray<FlagJob>): Promise<Array<MsgRec | undefined>> {
    if (jobs.length === 0) return [];
    return this.ownCurChange(() => this.renameFlagsManyLocked(jobs));
  }

  /**
   * Run `fn`, which renames/unlinks message files in cur/ through this state (caller holds the
   * mutex), without making the next refresh re-read cur/ for it: if cur/ was unchanged since
   * we last read it, its mtime after `fn` is adopted, dated from before `fn` — a change by
   * another writer during `fn` is then caught by the delayed re-read a second later, exactly
   * as Dovecot (maildir_sync_index_update_ext_header). Otherwise cur/ is read next time.
   */
  async ownCurChange<T>(fn: () => Promise<T>): Promise<T> {
    const startNs = wallNs();
    const clean = this.loaded && !this.forceCur && this.statDir('cur').mtimeNs === this.stampCur;
    this.ownChanges++;
    let ok = false;
    try {
      const r = await fn();
      ok = true;
      return r;
    } finally {
      this.ownChanges--;
      if (ok && clean && !this.forceCur) {
        try {
          this.stampCur = this.statDir('cur').mtimeNs;
          this.checkCur = startNs;
          this.curNamesStale = true;
        } catch { this.forceCur = true; }
      } else this.forceCur = true;
    }
  }

  private async renameFlagsManyLocked(jobs: ReadonlyArray<FlagJob>): Promise<Array<MsgRec | undefined>> {
    type Res = MsgRec | undefined | typeof RETRY;
    const curDir = `${this.dir}/cur/`;
    const res = await mapSliced<FlagJob, Res>(jobs,
      (j) => {
        const cur = this.byUid.get(j.r.uid);
        if (!cur) return undefined;
        const name = withInfo(cur.base, j.flags, j.kw, cur.other);
        const from = `${this.dir}/${cur.sub}/${cur.fname}`;
        try { renameSync(from, curDir + name); } catch (e) { return retryOnEnoent(e, from); }
        return this.flagRenamed(cur, name, j);
      },
      async (j) => {
        const cur = this.byUid.get(j.r.uid);
        if (!cur) return undefined;
        const name = withInfo(cur.base, j.flags, j.kw, cur.other);
        const from = `${this.dir}/${cur.sub}/${cur.fname}`;
        try { await fsp.rename(from, curDir + name); } catch (e) { return retryOnEnoent(e, from); }
        return this.flagRenamed(cur, name, j);
      });
    // renamed by another writer meanwhile (e.g. Dovecot's own STORE): one rescan for all of
    // them, then each is retried under its new name (renameFlags rescans again if need be)
    this.indexChanged();
    if (res.includes(RETRY)) await this.refreshLocked(true);
    const out: Array<MsgRec | undefined> = [];
    for (let i = 0; i < jobs.length; i++) {
      const r = res[i];
      if (r !== RETRY) { out.push(r); continue; }
      const j = jobs[i]!;
      const cur = this.byUid.get(j.r.uid);
      const t = cur && j.again ? j.again(cur) : cur ? { flags: j.flags, kw: j.kw } : undefined;
      out.push(cur && t ? await this.renameFlags(cur, t.flags, t.kw) : undefined);
    }
    return out;
  }

  /**
   * The record after its file was renamed by renameFlagsMany: changed IN PLACE (recs, byUid
   * and byBase keep pointing at it; a STORE on 10,000 messages then allocates no records and
   * touches no index). Handles never see MsgRec: their MessageInfo objects are separate and
   * replaced (infoOf), so the "replaced, not mutated" promise of mail-storage.ts holds.
   */
  private flagRenamed(cur: MsgRec, name: string, j: FlagJob): MsgRec {
    cur.fname = name;
    cur.sub = 'cur';
    cur.flags = j.flags;
    cur.kw = j.kw;
    cur.modseq = ++this.highestModseq;
    cur.info = undefined;
    this.byFnameStale = true;
    this.version++;
    if (this.ownChanges === 0) this.forceCur = true;
    return cur;
  }

  /** Unlink a message (caller holds the mutex). True if this call removed it. */
  async unlinkMessage(r: MsgRec): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const cur = this.byUid.get(r.uid);
      if (!cur) return false;
      try {
        await fsp.unlink(this.pathOf(cur));
        this.drop(cur);
        this.expungedBases.add(cur.base);
        // RFC 7162 §3.2.10: an expunge has a modseq too (QRESYNC VANISHED)
        this.expunges.push({ uid: cur.uid, modseq: ++this.highestModseq });
        this.trimExpunges();
        this.indexChanged();
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw mailErrorFromErrno(e, `unlink(${this.pathOf(cur)})`);
        await this.refreshLocked(true);
      }
    }
    return false;
  }

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

  private replace(nr: MsgRec): void {
    const i = this.indexOf(nr.uid);
    if (i >= 0) this.recs[i] = nr;
    this.byUid.set(nr.uid, nr); this.byBase.set(nr.base, nr);
    this.byFnameStale = true;
    if (this.ownChanges === 0) this.forceCur = true;
    this.version++;
  }

  private drop(r: MsgRec): void {
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

  private trimExpunges(): void {
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

  private indexText(): string | undefined {
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

/**
 * One message of a STORE: the new flags and keyword indexes (sorted), and how to compute them
 * again from the record as another writer left it (undefined: then nothing to change), as
 * Dovecot applies a STORE's change to the flags of the file it finds.
 */
export interface FlagJob {
  r: MsgRec; flags: SystemFlag[]; kw: number[];
  again?: (r: MsgRec) => { flags: SystemFlag[]; kw: number[] } | undefined;
}

const RETRY = Symbol('retry');
const NO_KEYWORDS: readonly string[] = Object.freeze([]);

function retryOnEnoent(e: unknown, path: string): typeof RETRY {
  if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw mailErrorFromErrno(e, `rename(${path})`);
  return RETRY;
}

function sameInfo(r: MsgRec, i: { flags: SystemFlag[]; keywordIdx: number[]; other: string }): boolean {
  return r.other === i.other && r.flags.length === i.flags.length && r.flags.every((f, k) => f === i.flags[k])
    && r.kw.length === i.keywordIdx.length && r.kw.every((k, n) => k === i.keywordIdx[n]);
}

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
