/**
 * maildir-sync-flags - this process's own changes to a Maildir's files (Dovecot
 * maildir-sync-index.c and maildir_file_do): STORE renames a message file to carry its new
 * flag and keyword letters (one at a time, or a whole set in synchronous time slices,
 * fs-batch.ts), EXPUNGE unlinks it. No lock is needed: renames are atomic, as in Dovecot. A
 * file another writer renamed or removed meanwhile (ENOENT) is found again by a rescan and the
 * change applied to the flags it has then. Our own changes to cur/ do not make the next scan
 * re-read it (ownCurChange, Dovecot's update_maildir_hdr_cur).
 */
import { promises as fsp, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { SystemFlag } from '../mail-storage.ts';
import { mailErrorFromErrno } from '../mail-error.ts';
import { mapSliced } from '../fs-batch.ts';
import { withInfo } from './maildir-filename.ts';
import { wallNs, type MsgRec } from './maildir-state.ts';
import { MaildirUidlistSync } from './maildir-uidlist-sync.ts';

export abstract class MaildirFlagSync extends MaildirUidlistSync {
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

  protected async renameFlagsManyLocked(jobs: ReadonlyArray<FlagJob>): Promise<Array<MsgRec | undefined>> {
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
  protected flagRenamed(cur: MsgRec, name: string, j: FlagJob): MsgRec {
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
