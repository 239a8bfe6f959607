/**
 * maildir-storage - MailStore and MailUser of mail-storage.ts for `mail_location = maildir:...`.
 *
 * One MaildirState per mailbox directory is shared by every user object and handle in the
 * process (so two sessions of one user see each other's changes at once, and UIDs are
 * assigned by one mutex + the dotlock). INBOX is created on first use, as Dovecot does.
 * Every path comes from MaildirList.dirOf(), which only accepts validated names: nothing
 * outside the user's mail root is ever touched.
 */
import { copyFile, promises as fsp } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { UserRecord } from '../../lib-auth/user-directory.ts';
import type {
  CopyResult, DeliverOptions, DeliverResult, MailboxInfo, MailboxListEvent, MailboxStatus, MailStore, MailUser, MessageSource, QuotaUsage,
} from '../mail-storage.ts';
import { FileDictAttributes, attributeDictPath, type MailAttributes } from '../mail-attribute.ts';
import { VfileAcl } from '../mail-acl.ts';
import { readSpecialUse, writeSpecialUse } from '../mail-special-use.ts';
import { MailError, mailErrorFromErrno } from '../mail-error.ts';
import { MailLocationError, parseMailLocation, type MailLocation } from '../../global/mail-location.ts';
import { MaildirList, MAILDIRFOLDER_NAME } from './maildir-list.ts';
import { MaildirMailbox, type MailboxOwner } from './maildir-mailbox.ts';
import { commitSave, parseSystemFlags, writeTmp, type TmpFile } from './maildir-save.ts';
import { MaildirState } from './maildir-sync.ts';
import type { MsgRec } from './maildir-state.ts';
import { isMessageName, newUniqueName, sizeField } from './maildir-filename.ts';
import { inheritOwner } from './maildir-owner.ts';
import { MboxUser } from '../mbox/mbox-storage.ts';
import { quotaGrace, quotaTestAlloc, quotaWarningToRun, runQuotaWarning } from '../mail-quota.ts';
import { logger } from '../../util/msg.ts';
import { notifyMailboxListChanged } from '../mail-notify.ts';
import { watchMaildirMailboxes } from './maildir-watch.ts';
import { FTS_INDEX_NAME, ftsNoteCopied, ftsNoteSaved } from '../../lib-fts/fts-index.ts';
import { readFileSync, constants as fsConstants } from 'node:fs';

const log = logger('lib-storage');

const copyFileP = promisify(copyFile);

/** Maildir spec / Dovecot maildir_tmp_cleanup: tmp/ files untouched for 36 h are leftovers of crashes. */
const TMP_MAX_AGE_MS = 36 * 3600 * 1000;
const TMP_SCAN_INTERVAL_MS = 8 * 3600 * 1000;
const tmpScanned = new Map<string, number>();

/** Remove stale tmp/ files at most once per 8 hours per mailbox (in the background). */
export async function cleanTmp(dir: string, now = Date.now()): Promise<number> {
  const last = tmpScanned.get(dir);
  if (last !== undefined && now - last < TMP_SCAN_INTERVAL_MS) return 0;
  tmpScanned.set(dir, now);
  let n = 0;
  const tmp = join(dir, 'tmp');
  for (const f of await fsp.readdir(tmp).catch(() => [] as string[])) {
    const p = join(tmp, f);
    const st = await fsp.lstat(p).catch(() => undefined);
    if (st?.isFile() && now - st.mtimeMs > TMP_MAX_AGE_MS && now - st.ctimeMs > TMP_MAX_AGE_MS) {
      if (await fsp.unlink(p).then(() => true, () => false)) n++;
    }
  }
  return n;
}

/** Shared per process: directory → state. */
const states = new Map<string, MaildirState>();
/**
 * States nobody holds are kept (most recently released last) so STATUS on many mailboxes and
 * re-SELECT cost 3 stat() calls instead of a rescan; they are always refreshed before use.
 */
const idle = new Map<string, MaildirState>();
const IDLE_STATES_MAX = 64;

export interface MaildirStoreOptions {
  /** Namespace separator shown to users: '.' (Dovecot's Maildir++ default) or '/'. */
  separator?: string;
}

/** Forget every state no handle holds (tests; a reload may call it to free memory). */
export function dropIdleStates(): void {
  for (const [dir, s] of idle) if (s.refs <= 0) { states.delete(dir); void s.writeIndexNow(); }
  idle.clear();
}

export class MaildirStore implements MailStore {
  private readonly sep: string;
  constructor(o: MaildirStoreOptions = {}) { this.sep = o.separator ?? '.'; }

  async forUser(u: UserRecord): Promise<MailUser> {
    let loc: MailLocation;
    try {
      loc = parseMailLocation(u.mail, { user: u.user, home: u.home || undefined });
    } catch (e) {
      if (e instanceof MailLocationError) throw new MailError('PARAMS', e.message);
      throw e;
    }
    if (loc.format === 'mbox') return new MboxUser(u, loc, this.sep);
    return new MaildirUser(u, loc, this.sep);
  }
}

/**
 * One message into the INBOX of the Maildir at `dir` with a UID at once (the save of
 * MailUser.deliver(), under the uidlist lock), quota not checked: local(8) delivery to a
 * Maildir named by an alias, .forward or home_mailbox. `user` names the owner in the log.
 * `mailbox` another folder (Junk for DMARC quarantine), created when missing.
 */
/** The folder `mailbox` of the Maildir at `dir`, created and subscribed when missing (DMARC's Junk). */
export async function maildirEnsureMailbox(dir: string, user: string, mailbox: string): Promise<void> {
  const u = await new MaildirStore().forUser({ user, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, home: dir, mail: `maildir:${dir}` } as never);
  try {
    if (await u.exists(mailbox).catch(() => false)) return;
    await u.create(mailbox).catch((e: unknown) => { if (!(e instanceof MailError) || e.code !== 'EXISTS') throw e; });
    await u.setSubscribed(mailbox, true).catch(() => { /* a subscription is a convenience */ });
  } finally { await u.close(); }
}

export async function maildirDeliver(dir: string, content: Buffer, user: string, mailbox = 'INBOX'): Promise<void> {
  const uid = process.getuid?.() ?? 0;
  const u = await new MaildirStore().forUser({ user, uid, gid: process.getgid?.() ?? 0, home: dir, mail: `maildir:${dir}` } as never);
  try {
    try {
      await u.deliver(mailbox, content, { ignoreQuota: true });
    } catch (e) {
      // Another folder than INBOX (the DMARC quarantine's Junk): created, and subscribed, when
      // missing, as Dovecot's lmtp_save_to_detail_mailbox / sieve fileinto :create do.
      if (mailbox === 'INBOX' || !(e instanceof MailError) || e.code !== 'NOTFOUND') throw e;
      await u.create(mailbox).catch((e2: unknown) => { if (!(e2 instanceof MailError) || e2.code !== 'EXISTS') throw e2; });
      await u.setSubscribed(mailbox, true).catch(() => { /* a subscription is a convenience */ });
      await u.deliver(mailbox, content, { ignoreQuota: true });
    }
  } finally { await u.close(); }
}

async function isDir(p: string): Promise<boolean> {
  try { return (await fsp.lstat(p)).isDirectory(); } catch { return false; }
}

export class MaildirUser implements MailUser, MailboxOwner {
  readonly user: string;
  readonly separator: string;
  readonly mlist: MaildirList;
  private readonly rec: UserRecord;

  constructor(u: UserRecord, loc: MailLocation, sep: string) {
    this.rec = u;
    this.user = u.user;
    this.separator = sep;
    this.mlist = new MaildirList(loc, sep);
  }

  private get root(): string { return this.mlist.loc.root; }

  /** METADATA attributes in Dovecot's mail_attribute_dict (mail-attribute.ts); `%h` is the home. */
  attributes(dictUri: string): MailAttributes {
    return new FileDictAttributes(attributeDictPath(dictUri, this.rec.home || this.root), (name) => this.mailboxGuid(name));
  }

  /** The dovecot-acl files of this user's mailboxes (mail-acl.ts). */
  acl(): VfileAcl {
    return new VfileAcl((name) => this.mlist.controlDirOf(name), this.mlist.loc.control ?? this.root);
  }

  /** The mailbox GUID of the dovecot-uidlist header, written there first if the mailbox has none yet. */
  async mailboxGuid(name: string): Promise<string> {
    const n = await this.mustExist(name);
    return this.withState(n, async (s) => {
      await s.refresh();
      if (s.guid === '' || s.uidValidity === 0) await s.assignUids([]);
      return s.guid;
    });
  }

  /** RFC 6154 attributes given at CREATE, in the mailbox's control directory (mail-special-use.ts). */
  async specialUse(name: string): Promise<string[]> {
    return readSpecialUse(this.mlist.controlDirOf(this.mlist.normalize(name)));
  }

  async setSpecialUse(name: string, uses: readonly string[]): Promise<void> {
    const n = await this.mustExist(name);
    await writeSpecialUse(this.mlist.controlDirOf(n), uses);
  }

  /** cur/ new/ tmp/ (and maildirfolder for Maildir++ subfolders). */
  private async makeMaildir(name: string): Promise<void> {
    const dir = this.mlist.dirOf(name);
    try {
      // mkdir -p, each new level owned like its parent (maildir-owner.ts)
      const created: string[] = [];
      for (let d = dir; !(await isDir(d)); d = join(d, '..')) { created.unshift(d); if (d === '/' || created.length > 64) break; }
      for (const d of created) { await fsp.mkdir(d, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; }); await inheritOwner(d); }
      // cur/ last: its existence is what mustExist()/exists() test, so a concurrent delivery that
      // sees cur/ always finds tmp/ and new/ too.
      for (const sub of ['tmp', 'new', 'cur']) {
        const p = join(dir, sub);
        // Concurrent first deliveries race here: EEXIST means another one made it.
        if (!(await isDir(p))) {
          const made = await fsp.mkdir(p, { mode: 0o700 }).then(() => true, (e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; return false; });
          if (made) await inheritOwner(p);
        }
      }
      if (this.mlist.loc.layout === 'maildir++' && dir !== this.root) {
        await fsp.writeFile(join(dir, MAILDIRFOLDER_NAME), '', { flag: 'a', mode: 0o600 });
        await inheritOwner(join(dir, MAILDIRFOLDER_NAME));
      }
    } catch (e) { throw mailErrorFromErrno(e, `mkdir(${dir})`); }
  }

  async exists(name: string): Promise<boolean> {
    const n = this.mlist.normalize(name);
    if (n === 'INBOX') return true;
    return isDir(join(this.mlist.dirOf(n), 'cur'));
  }

  private async mustExist(name: string): Promise<string> {
    const n = this.mlist.normalize(name);
    if (n === 'INBOX') {
      if (!(await isDir(join(this.mlist.dirOf(n), 'cur')))) await this.makeMaildir('INBOX');
      return n;
    }
    if (!(await this.exists(n))) throw new MailError('NOTFOUND', `Mailbox doesn't exist: ${n}`);
    return n;
  }

  private acquire(name: string): MaildirState {
    const dir = this.mlist.dirOf(name);
    let s = states.get(dir);
    idle.delete(dir);
    if (!s) {
      s = new MaildirState(dir, this.mlist.controlDirOf(name), this.mlist.loc.index ?? dir, () => this.mlist.nextUidValidity());
      states.set(dir, s);
    }
    s.refs++;
    return s;
  }

  releaseState(s: MaildirState): void {
    if (--s.refs > 0 || states.get(s.dir) !== s) return;
    idle.set(s.dir, s);
    if (idle.size > IDLE_STATES_MAX) {
      const [oldest, os] = idle.entries().next().value as [string, MaildirState];
      idle.delete(oldest);
      if (os.refs <= 0) { states.delete(oldest); void os.writeIndexNow(); }
    }
  }

  private async withState<T>(name: string, fn: (s: MaildirState) => Promise<T>): Promise<T> {
    const s = this.acquire(name);
    try { return await fn(s); } finally { this.releaseState(s); }
  }

  async open(name: string, o: { readOnly?: boolean } = {}): Promise<MaildirMailbox> {
    const n = await this.mustExist(name);
    const s = this.acquire(n);
    const mb = new MaildirMailbox(n, s, this, o.readOnly ?? false);
    if (!o.readOnly) void cleanTmp(s.dir).catch(() => {});
    try { await mb.init(); } catch (e) { this.releaseState(s); throw e; }
    return mb;
  }

  async status(name: string): Promise<MailboxStatus> {
    const n = await this.mustExist(name);
    return this.withState(n, async (s) => {
      await s.refresh();
      let unseen = 0, size = 0;
      for (const r of s.recs) { if (!r.flags.includes('\\Seen')) unseen++; size += r.vsize; }
      return { messages: s.recs.length, recent: s.unclaimedRecent.size, uidNext: s.nextUid, uidValidity: s.uidValidity, unseen, size, highestModseq: s.highestModseq };
    });
  }

  async deliver(mailbox: string, content: MessageSource, o: DeliverOptions = {}): Promise<DeliverResult> {
    const n = await this.mustExist(mailbox);
    const flags = parseSystemFlags(o.flags);
    return this.withState(n, async (s) => {
      const kw = o.keywords && o.keywords.length > 0 ? await s.keywords.indexesFor(o.keywords) : [];
      const tmp = await writeTmp(s.dir, content, o);
      let before: QuotaUsage | undefined;
      if (!o.ignoreQuota && (this.rec.quotaBytes !== undefined || this.rec.quotaMessages !== undefined)) {
        before = await this.quota();
        if (quotaTestAlloc(before, tmp.size, o.postSession ? quotaGrace(this.rec) : 0) !== 'ok') {
          await fsp.unlink(tmp.path).catch(() => {});
          throw new MailError('NOQUOTA', 'Quota exceeded (mailbox for user is full)');
        }
      }
      const uid = await commitSave(s, tmp, flags, kw);
      // the full-text index, when the mailbox has one (else the first SEARCH BODY/TEXT makes it)
      ftsNoteSaved(join(s.ctlDir, FTS_INDEX_NAME), s.uidValidity, uid, () => {
        const r = s.byUid.get(uid);
        return r && r.size <= 1024 * 1024 ? readFileSync(s.pathOf(r), { flag: fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW }) : undefined;
      });
      if (before && this.rec.quotaWarnings) {
        const hit = quotaWarningToRun(this.rec.quotaWarnings, before, { bytes: before.bytes + tmp.size, messages: before.messages + 1 }, before);
        if (hit) void runQuotaWarning(hit.warning, this.rec, hit.reason, log);
      }
      return { uidValidity: s.uidValidity, uid, size: tmp.size };
    });
  }

  /** After an expunge: the first `-rule` (below) quota warning the drop crossed, run in the background. */
  expunged(bytes: number, count: number): void {
    const warnings = this.rec.quotaWarnings?.filter((w) => w.reverse);
    if (!warnings?.length) return;
    void this.quota().then((after) => {
      const hit = quotaWarningToRun(warnings, { bytes: after.bytes + bytes, messages: after.messages + count }, after, after);
      if (hit) void runQuotaWarning(hit.warning, this.rec, hit.reason, log);
    }, () => { /* the expunge is done; a failed scan only skips the warning */ });
  }

  async copyInto(dest: string, src: MaildirState, recs: MsgRec[], move: boolean): Promise<CopyResult> {
    const n = await this.mustExist(dest);
    // Dovecot's quota plugin checks a COPY (not a MOVE inside the same quota root, which does not
    // change usage) like an APPEND of the same messages, without grace, and runs quota_warning.
    let before: QuotaUsage | undefined;
    const bytes = recs.reduce((a, r) => a + r.size, 0);
    if (!move && recs.length > 0 && (this.rec.quotaBytes !== undefined || this.rec.quotaMessages !== undefined)) {
      before = await this.quota();
      if (quotaTestAlloc({ ...before, messages: before.messages + recs.length - 1 }, bytes, 0) !== 'ok') {
        throw new MailError('NOQUOTA', 'Quota exceeded (mailbox for user is full)');
      }
    }
    const res = await this.copyFiles(n, src, recs);
    if (before && this.rec.quotaWarnings && res.map.length > 0) {
      const hit = quotaWarningToRun(this.rec.quotaWarnings, before, { bytes: before.bytes + bytes, messages: before.messages + res.map.length }, before);
      if (hit) void runQuotaWarning(hit.warning, this.rec, hit.reason, log);
    }
    return res;
  }

  /**
   * The files are linked (or copied) into tmp/ in parallel, then committed in one group in
   * source order, so the destination UIDs follow the source UIDs (RFC 4315 §3, as Dovecot:
   * COPYUID v 1:10 5:14). If any file cannot be placed in tmp/, nothing is copied.
   */
  private copyFiles(n: string, src: MaildirState, recs: MsgRec[]): Promise<CopyResult> {
    return this.withState(n, async (d) => {
      await src.keywords.refresh();
      // the unique names first, in source order: the uidlist numbers a commit group by name time
      const uniques = recs.map(() => newUniqueName());
      const prepared = await Promise.allSettled(recs.map(async (r, i): Promise<{ r: MsgRec; tmp: TmpFile; kw: number[] } | undefined> => {
        const unique = uniques[i]!;
        const kwNames = r.kw.map((k) => src.keywords.nameOf(k)).filter((k): k is string => k !== undefined);
        const kw = kwNames.length > 0 ? await d.keywords.indexesFor(kwNames) : [];
        const tmpPath = join(d.dir, 'tmp', unique);
        for (let attempt = 0; ; attempt++) {
          const cur = src.byUid.get(r.uid);
          if (!cur) return undefined;   // expunged meanwhile: nothing to copy (as Dovecot)
          try {
            // Dovecot maildir_copy_with_hardlinks: same inode, INTERNALDATE (mtime) preserved
            if ((await fsp.lstat(src.pathOf(cur))).isSymbolicLink()) throw new MailError('PERM', 'Message file is a symbolic link.', src.pathOf(cur));
            await fsp.link(src.pathOf(cur), tmpPath).catch(async (e: NodeJS.ErrnoException) => {
              if (e.code === 'ENOENT') throw e;
              await copyFileP(src.pathOf(cur), tmpPath);
              const st = await fsp.stat(src.pathOf(cur));
              await fsp.utimes(tmpPath, st.atime, st.mtime);
            });
            break;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 2) {
              await fsp.unlink(tmpPath).catch(() => {});
              throw e instanceof MailError ? e : mailErrorFromErrno(e, `link(${src.pathOf(cur)})`);
            }
            await src.refresh(true);
          }
        }
        return { r, tmp: { path: tmpPath, unique, size: r.size, vsize: r.vsize }, kw };
      }));
      const ready = prepared.flatMap((p) => (p.status === 'fulfilled' && p.value ? [p.value] : []));
      const failed = prepared.find((p): p is PromiseRejectedResult => p.status === 'rejected');
      if (failed) {
        // all or nothing, as Dovecot's copy transaction: drop what was already placed in tmp/
        await Promise.all(ready.map((x) => fsp.unlink(x.tmp.path).catch(() => {})));
        throw failed.reason;
      }
      // queued in one synchronous pass: one group commit, UIDs assigned in this (source) order
      const commits = ready.map((x) => commitSave(d, x.tmp, x.r.flags, x.kw));
      const uids = await Promise.allSettled(commits);
      const map: Array<[number, number]> = [];
      let err: unknown;
      uids.forEach((u, i) => {
        if (u.status === 'rejected') { err ??= u.reason; return; }
        const r = ready[i]!.r;
        ftsNoteCopied(join(src.ctlDir, FTS_INDEX_NAME), src.uidValidity, r.uid, join(d.ctlDir, FTS_INDEX_NAME), d.uidValidity, u.value);
        map.push([r.uid, u.value]);
      });
      if (err !== undefined) throw err;   // as before: the command fails (a MOVE then expunges nothing)
      return { uidValidity: d.uidValidity, map };
    });
  }

  async create(name: string): Promise<void> {
    const n = this.mlist.normalize(name);
    if (n === 'INBOX' || (await this.exists(n))) throw new MailError('EXISTS', 'Mailbox already exists');
    await this.makeMaildir(n);
    // give it its uidlist (and UIDVALIDITY) now, as Dovecot does
    await this.withState(n, (s) => s.refresh());
    notifyMailboxListChanged(this.root);
  }

  async delete(name: string): Promise<void> {
    const n = this.mlist.normalize(name);
    if (n === 'INBOX') throw new MailError('PERM', "INBOX can't be deleted.");
    const dir = this.mlist.dirOf(n);
    if (!(await isDir(dir))) throw new MailError('NOTFOUND', `Mailbox doesn't exist: ${n}`);
    try {
      if (this.mlist.loc.layout === 'maildir++') {
        // Dovecot renames to .DOVECOT-TRASHED first so a half-deleted folder never shows up
        const trash = join(this.root, '.DOVECOT-TRASHED');
        await fsp.rm(trash, { recursive: true, force: true });
        await fsp.rename(dir, trash);
        await fsp.rm(trash, { recursive: true, force: true });
      } else {
        const ents = await fsp.readdir(dir, { withFileTypes: true });
        const children = ents.some((e) => e.isDirectory() && !['cur', 'new', 'tmp'].includes(e.name));
        if (children) {
          for (const e of ents) if (!e.isDirectory() || ['cur', 'new', 'tmp'].includes(e.name)) await fsp.rm(join(dir, e.name), { recursive: true, force: true });
        } else await fsp.rm(dir, { recursive: true, force: true });
      }
    } catch (e) { throw mailErrorFromErrno(e, `delete(${dir})`); }
    states.get(dir)?.changed();
    states.get(dir)?.cancelIndexWrite();
    if ((states.get(dir)?.refs ?? 0) <= 0) { states.delete(dir); idle.delete(dir); }
    notifyMailboxListChanged(this.root);
  }

  async rename(from: string, to: string): Promise<void> {
    const f = this.mlist.normalize(from);
    const t = this.mlist.normalize(to);
    if (t === 'INBOX' || (await this.exists(t))) throw new MailError('EXISTS', 'Target mailbox already exists');
    if (t.startsWith(f + this.separator)) throw new MailError('PARAMS', "Can't rename mailbox under itself.");
    if (f === 'INBOX') {
      // RFC 3501 §6.3.5: messages move to the new mailbox, INBOX stays (empty)
      await this.create(t);
      const box = await this.open('INBOX');
      try { await box.move(box.messages().map((m) => m.uid), t); } finally { await box.close(); }
      return;
    }
    const fd = this.mlist.dirOf(f);
    if (!(await isDir(fd))) throw new MailError('NOTFOUND', `Mailbox doesn't exist: ${f}`);
    const td = this.mlist.dirOf(t);
    // the postern-index moves with the directory; a pending write must not recreate the old one
    for (const [d, st] of states) if (d === fd || d.startsWith(fd + '.') || d.startsWith(fd + '/')) st.cancelIndexWrite();
    try {
      if (this.mlist.loc.layout === 'maildir++') {
        const prefix = fd.slice(this.root.length + 1) + '.';
        const children = (await fsp.readdir(this.root)).filter((e) => e.startsWith(prefix));
        await fsp.rename(fd, td);
        for (const c of children) await fsp.rename(join(this.root, c), td + '.' + c.slice(prefix.length));
      } else {
        await fsp.mkdir(join(td, '..'), { recursive: true });
        await fsp.rename(fd, td);
      }
    } catch (e) { throw mailErrorFromErrno(e, `rename(${fd})`); }
    notifyMailboxListChanged(this.root, [f, t]);
  }

  async setSubscribed(name: string, on: boolean, o?: { foreign?: boolean }): Promise<void> {
    await this.mlist.setSubscribed(name, on, o?.foreign === true);
    notifyMailboxListChanged(this.root);
  }

  /** NOTIFY's source (MailUser.watchMailboxes): one watcher per Maildir root, maildir-watch.ts. */
  watchMailboxes(cb: (ev: MailboxListEvent) => void, o: { wants?: (name: string) => boolean } = {}): () => void {
    return watchMaildirMailboxes(this.mlist, cb, o.wants);
  }
  subscriptions(): Promise<string[]> { return this.mlist.readSubscriptions(); }

  list(): Promise<MailboxInfo[]> { return this.listAll(); }

  private async listAll(): Promise<MailboxInfo[]> {
    const names = new Set(await this.mlist.listNames());
    const subs = new Set(await this.mlist.readSubscriptions());
    const all = new Map<string, MailboxInfo>();
    for (const n of names) all.set(n, { name: n, attributes: [], subscribed: subs.has(n), nonExistent: false });
    // parents that do not exist themselves (Maildir++ ".Archive.2024" without ".Archive")
    for (const n of names) {
      const parts = n.split(this.separator);
      for (let i = 1; i < parts.length; i++) {
        const p = parts.slice(0, i).join(this.separator);
        if (!all.has(p)) all.set(p, { name: p, attributes: ['\\Noselect'], subscribed: subs.has(p), nonExistent: true });
      }
    }
    for (const s of subs) if (!all.has(s)) all.set(s, { name: s, attributes: ['\\NonExistent'], subscribed: true, nonExistent: true });
    // every ancestor of a name that is not \NonExistent has children (one pass, not a scan per name)
    const parents = new Set<string>();
    for (const info of all.values()) {
      if (info.attributes.includes('\\NonExistent')) continue;
      for (let i = info.name.lastIndexOf(this.separator); i > 0; i = info.name.lastIndexOf(this.separator, i - 1)) {
        const p = info.name.slice(0, i);
        if (parents.has(p)) break;
        parents.add(p);
      }
    }
    for (const info of all.values()) {
      if (!info.attributes.includes('\\NonExistent')) info.attributes.push(parents.has(info.name) ? '\\HasChildren' : '\\HasNoChildren');
      if (info.subscribed) info.attributes.push('\\Subscribed');
    }
    return [...all.values()].sort((a, b) => (a.name === 'INBOX' ? -1 : b.name === 'INBOX' ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Quota from the file names' ,S= sizes (stat only for names without it). */
  async quota(): Promise<QuotaUsage> {
    let bytes = 0, messages = 0;
    for (const n of await this.mlist.listNames()) {
      const dir = this.mlist.dirOf(n);
      for (const sub of ['cur', 'new']) {
        let names: string[] = [];
        try { names = await fsp.readdir(join(dir, sub)); } catch { continue; }
        for (const f of names) {
          if (!isMessageName(f)) continue;
          let s = sizeField(f, 'S');
          if (s === undefined) s = await fsp.stat(join(dir, sub, f)).then((st) => st.size, () => undefined);
          if (s === undefined) continue;
          bytes += s; messages++;
        }
      }
    }
    const q: QuotaUsage = { bytes, messages };
    if (this.rec.quotaBytes !== undefined) q.limitBytes = this.rec.quotaBytes;
    if (this.rec.quotaMessages !== undefined) q.limitMessages = this.rec.quotaMessages;
    return q;
  }

  async close(): Promise<void> { /* states are released by their mailboxes */ }
}

