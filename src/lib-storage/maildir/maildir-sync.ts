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
 * The state is maildir-state.ts's; the uidlist steps are maildir-uidlist-sync.ts, this
 * process's own flag renames and unlinks maildir-sync-flags.ts.
 * Everything that changes the state runs under one in-process mutex; other processes are
 * excluded by the dotlock (UIDs) or need no lock (flag renames are atomic, as in Dovecot).
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { SystemFlag } from '../mail-storage.ts';
import { mailErrorFromErrno } from '../mail-error.ts';
import { logger } from '../../util/msg.ts';
import { loadIndex, type IndexData } from './maildir-index.ts';
import { isMessageName, maildirBase, parseInfo, sizeField, MAILDIR_FLAGS_FULL_SEP } from './maildir-filename.ts';
import { countBareLf, delayedRefresh, readNoFollow, SYNC_SECS_NS, wallNs, type MsgRec } from './maildir-state.ts';
import { MaildirFlagSync } from './maildir-sync-flags.ts';

const log = logger('lib-storage');

/** One Maildir's state, kept in step with the disk (see the header). */
export class MaildirState extends MaildirFlagSync {
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

  /** One pass; returns false if cur/ changed while it was read. */
  protected async scanOnce(force: boolean): Promise<boolean> {
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
  protected async readCur(): Promise<string[]> {
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

  /** Every name is the current file name of a live record in cur/ (one map lookup each). */
  protected allKnown(names: readonly string[]): boolean {
    this.fnameIndex();
    for (const n of names) {
      const r = this.byFname.get(n);
      if (r === undefined || r.sub !== 'cur') return false;
    }
    return true;
  }

  /** Recompute the message list from the files seen and the uidlist. */
  protected async rebuild(files: Map<string, { fname: string; sub: 'new' | 'cur' }>, recentBases: Set<string>,
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
}

function sameInfo(r: MsgRec, i: { flags: SystemFlag[]; keywordIdx: number[]; other: string }): boolean {
  return r.other === i.other && r.flags.length === i.flags.length && r.flags.every((f, k) => f === i.flags[k])
    && r.kw.length === i.keywordIdx.length && r.kw.every((k, n) => k === i.keywordIdx[n]);
}
