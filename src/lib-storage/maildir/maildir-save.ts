/**
 * maildir-save - delivering one message into a Maildir (Dovecot maildir-save.c, Maildir spec):
 *
 *  1. write the content to tmp/<unique> (O_EXCL), counting the bytes and the bare LFs
 *     (for ,S= and ,W=), fsync the file; set its mtime to the INTERNALDATE;
 *  2. under the in-process mutex and the `dovecot-uidlist.lock` dotlock: rename it to
 *     new/<unique>,S=..,W=.. (no flags) or cur/<unique>,S=..,W=..:2,<flags> (flags or
 *     keywords), fsync the directory, append "<uid> :<base>" to dovecot-uidlist;
 *  3. release; the UID is the one written.
 * Saves that arrive while another holds the lock are committed together in one lock
 * acquisition (group commit), so 50 concurrent deliveries cost a handful of lock cycles.
 * Nothing is visible to readers before step 2, and a crash leaves at most a file in tmp/
 * (Dovecot and Postern clean tmp/ files older than 36 hours, as the Maildir spec suggests).
 *
 * deliverToNew() is the delivery agents' path (virtual(8), Postfix maildir.c; Dovecot's LDA
 * writes the same files): tmp/<unique> (O_EXCL) ← content, fsync (beside concurrent deliveries'
 * fsyncs, committed with them: util/file-sync.ts), rename to
 * new/<unique>,S=..,W=.., fsync new/ (grouped with other deliveries' and awaited by the caller
 * through `durable`, util/dir-sync.ts). It takes no lock and writes no dovecot-uidlist: a message
 * in new/ has no UID until a reader syncs the mailbox (maildir-sync.ts or Dovecot moves it to
 * cur/ as \Recent and appends its UID under the uidlist lock), so UIDs are still assigned once,
 * in delivery order (by the time in the unique name), and never change afterwards.
 */
import { closeSync, fchownSync, futimesSync, open as openCb, openSync, promises as fsp, renameSync, unlinkSync, constants as C } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { DeliverOptions, MessageSource, SystemFlag } from '../mail-storage.ts';
import { SYSTEM_FLAGS } from '../mail-storage.ts';
import { writeFully, writeFullySync, writevFullySync } from '../../util/fs-write.ts';
import { syncFile } from '../../util/file-sync.ts';
import { MailError, mailErrorFromErrno } from '../mail-error.ts';
import { newUniqueName, withInfo, withSizes } from './maildir-filename.ts';
import { notifyMailboxChanged } from '../mail-notify.ts';
import { inheritOwner } from './maildir-owner.ts';
import { syncDirGrouped } from '../../util/dir-sync.ts';
import { countBareLf, type MsgRec } from './maildir-state.ts';
import type { MaildirState } from './maildir-sync.ts';

export interface TmpFile { path: string; unique: string; size: number; vsize: number }

function toIterable(src: MessageSource): AsyncIterable<Uint8Array> | Uint8Array[] {
  if (typeof src === 'string') return [Buffer.from(src)];
  if (src instanceof Uint8Array) return [src];
  return src as AsyncIterable<Uint8Array>;
}

/** Step 1: the content into tmp/, fsynced. */
export async function writeTmp(dir: string, src: MessageSource, o: DeliverOptions = {}): Promise<TmpFile> {
  const unique = newUniqueName();
  const path = join(dir, 'tmp', unique);
  if (typeof src === 'string' || src instanceof Uint8Array) return writeTmpBuffer(dir, path, unique, typeof src === 'string' ? Buffer.from(src) : src, o);
  let fh: fsp.FileHandle;
  try { fh = await fsp.open(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600); } catch (e) {
    throw mailErrorFromErrno(e, `create maildir file ${path}`);
  }
  await inheritOwner(path);
  let size = 0, bare = 0, prevCr = false;
  try {
    for await (const chunk0 of toIterable(src) as AsyncIterable<Uint8Array>) {
      const chunk = typeof chunk0 === 'string' ? Buffer.from(chunk0) : chunk0;
      size += chunk.length;
      if (o.maxSize !== undefined && size > o.maxSize) throw new MailError('TOOBIG', 'Message is too large.');
      bare += countBareLf(chunk, prevCr);
      if (chunk.length > 0) prevCr = chunk[chunk.length - 1] === 13;
      await writeFully(fh, chunk);
    }
    await syncFile(fh.fd, path);
    await fh.close();
    const t = o.internalDate ?? new Date();
    await fsp.utimes(path, t, t);
  } catch (e) {
    await fh.close().catch(() => {});
    await fsp.unlink(path).catch(() => {});
    if (src instanceof Readable) src.destroy();
    throw mailErrorFromErrno(e, `write(${path})`);
  }
  return { path, unique, size, vsize: size + bare };
}

/** open(2) in the thread pool (allocating an inode can take a while), for a plain descriptor. */
function openFd(path: string, flags: number, mode: number): Promise<number> {
  return new Promise((res, rej) => openCb(path, flags, mode, (e, fd) => (e ? rej(e) : res(fd))));
}

/**
 * writeTmp() of a message already in memory (lmtpd, Sieve fileinto, small APPENDs): the write,
 * owner, times and close are synchronous page-cache calls, and the create and the fsync go to
 * the thread pool (before: six round trips through the pool per message, each two context
 * switches). The times are set before the fsync, which then covers them.
 */
async function writeTmpBuffer(dir: string, path: string, unique: string, buf: Uint8Array, o: DeliverOptions): Promise<TmpFile> {
  if (o.maxSize !== undefined && buf.length > o.maxSize) throw new MailError('TOOBIG', 'Message is too large.');
  let fd: number | undefined;
  try { fd = await openFd(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600); } catch (e) {
    throw mailErrorFromErrno(e, `create maildir file ${path}`);
  }
  try {
    if (isRoot) {
      // The file belongs to the owner of tmp/ (maildir-owner.ts), read once a minute.
      const own = await ownerOf(join(dir, 'tmp'), Date.now()).catch(() => undefined);
      if (own && (own.uid !== 0 || own.gid !== 0)) { try { fchownSync(fd, own.uid, own.gid); } catch { /* best effort, as inheritOwner() */ } }
    }
    writeFullySync(fd, buf, 0);
    const t = o.internalDate ?? new Date();
    futimesSync(fd, t, t);
    await syncFile(fd, path);
    closeSync(fd);
    fd = undefined;
  } catch (e) {
    if (fd !== undefined) { try { closeSync(fd); } catch { /* already failing */ } }
    try { unlinkSync(path); } catch { /* not there */ }
    throw mailErrorFromErrno(e, `write(${path})`);
  }
  return { path, unique, size: buf.length, vsize: buf.length + countBareLf(buf, false) };
}

/** Check and order system flags (PARAMS for unknown ones, e.g. \Recent cannot be stored). */
export function parseSystemFlags(flags: readonly string[] | undefined): SystemFlag[] {
  const set = new Set<SystemFlag>();
  for (const f of flags ?? []) {
    const m = SYSTEM_FLAGS.find((s) => s.toLowerCase() === f.toLowerCase());
    if (!m) {
      if (f.toLowerCase() === '\\recent') continue;   // RFC 3501: \Recent cannot be set; ignored
      throw new MailError('PARAMS', `Invalid system flag ${f.slice(0, 40)}`);
    }
    set.add(m);
  }
  return SYSTEM_FLAGS.filter((f) => set.has(f));
}

interface Pending { tmp: TmpFile; flags: SystemFlag[]; kw: number[]; resolve: (uid: number) => void; reject: (e: unknown) => void }

const queues = new WeakMap<MaildirState, Pending[]>();

/** Steps 2-3 with group commit. Resolves to the UID. */
export function commitSave(state: MaildirState, tmp: TmpFile, flags: SystemFlag[], kw: number[]): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let q = queues.get(state);
    const first = !q || q.length === 0;
    if (!q) { q = []; queues.set(state, q); }
    q.push({ tmp, flags, kw, resolve, reject });
    if (first) void state.mutex.run(() => flush(state));
  });
}

async function flush(state: MaildirState): Promise<void> {
  const batch = queues.get(state)?.splice(0) ?? [];
  if (batch.length === 0) return;
  const placed: Array<{ p: Pending; base: string; fname: string; sub: 'new' | 'cur' }> = [];
  try {
    await state.assignUids([], async () => {
      // under the lock: put the files in place, then let assignUids number them
      const subs = new Set<string>();
      for (const p of batch) {
        const base = withSizes(p.tmp.unique, p.tmp.size, p.tmp.vsize);
        const hasInfo = p.flags.length > 0 || p.kw.length > 0;
        const sub = hasInfo ? 'cur' : 'new';
        const fname = hasInfo ? withInfo(base, p.flags, p.kw) : base;
        try {
          // A rename within the file system: microseconds in the page cache, not worth a
          // thread-pool round trip per message (the directory fsync below is one per batch).
          renameSync(p.tmp.path, join(state.dir, sub, fname));
          placed.push({ p, base, fname, sub });
          subs.add(sub);
        } catch (e) {
          await fsp.unlink(p.tmp.path).catch(() => {});
          p.reject(mailErrorFromErrno(e, `rename(${p.tmp.path})`));
        }
      }
      for (const sub of subs) await syncDirGrouped(join(state.dir, sub));
    }, () => placed.map((x) => x.base));
  } catch (e) {
    for (const x of placed) await fsp.unlink(join(state.dir, x.sub, x.fname)).catch(() => {});
    for (const p of batch) p.reject(e);
    return;
  }
  for (const x of placed) {
    const uid = state.uidOfBase(x.base);
    if (uid === undefined) { x.p.reject(new MailError('TEMP', 'Internal error occurred. Refer to server log for more information.', `no UID for ${x.base}`)); continue; }
    const rec: MsgRec = { uid, base: x.base, fname: x.fname, sub: x.sub, flags: x.p.flags, kw: x.p.kw, other: '', size: x.p.tmp.size, vsize: x.p.tmp.vsize, modseq: 0 };
    state.addSaved(rec);
    x.p.resolve(uid);
  }
  state.changed();
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
/** Owner of each Maildir directory delivered to (when root), re-read after OWNER_TTL_MS. */
const owners = new Map<string, { uid: number; gid: number; at: number }>();
const OWNER_TTL_MS = 60_000;
const OWNERS_MAX = 4096;

async function ownerOf(dir: string, now: number): Promise<{ uid: number; gid: number }> {
  const o = owners.get(dir);
  if (o && now - o.at < OWNER_TTL_MS) return o;
  const st = await fsp.stat(dir);
  if (owners.size >= OWNERS_MAX) owners.clear();
  const n = { uid: st.uid, gid: st.gid, at: now };
  owners.set(dir, n);
  return n;
}

/** mkdir -p dir, then tmp/ new/ cur/ (cur/ last, as maildir-storage.ts), each owned like its parent. */
async function makeMaildirDirs(dir: string): Promise<void> {
  const made = await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  if (made) {
    // inherit the owner level by level, from the first directory created down to dir
    const levels: string[] = [];
    for (let d = dir; d.length >= made.length; d = join(d, '..')) { levels.unshift(d); if (d === made) break; }
    for (const d of levels) await inheritOwner(d);
  }
  for (const sub of ['tmp', 'new', 'cur']) {
    const p = join(dir, sub);
    const ok = await fsp.mkdir(p, { mode: 0o700 }).then(() => true, (e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; return false; });
    if (ok) await inheritOwner(p);
  }
  owners.delete(dir);
}

export interface DeliveredFile {
  fname: string;
  size: number;
  vsize: number;
  /** Resolves when the rename into new/ is on disk (new/ fsync'd); rejects with a MailError. */
  durable: Promise<void>;
}

/**
 * Deliver `parts` (concatenated) into the Maildir `dir` as one new message (see the file
 * comment). The directories are created when missing (Postfix maildir.c make_dirs()). Throws
 * MailError (errno set) on failure; nothing is left behind in tmp/ then.
 */
export async function deliverToNew(dir: string, parts: readonly Uint8Array[]): Promise<DeliveredFile> {
  let size = 0, bare = 0, prevCr = false;
  for (const c of parts) {
    size += c.length;
    bare += countBareLf(c, prevCr);
    if (c.length > 0) prevCr = c[c.length - 1] === 13;
  }
  // open/write/close/rename are synchronous system calls, as in Postfix's maildir.c: each takes
  // microseconds on a page-cache write, while a thread-pool round trip costs two context
  // switches. Only the fsync()s, which wait for the disk, go to the pool. (The caller,
  // virtual(8), runs in qmgr's thread, not in the thread that answers clients.)
  let unique = newUniqueName();
  let path = join(dir, 'tmp', unique);
  let fd: number | undefined;
  for (let attempt = 0; fd === undefined; attempt++) {
    try {
      fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (attempt >= 2 || (code !== 'ENOENT' && code !== 'EEXIST')) throw mailErrorFromErrno(e, `create maildir file ${path}`);
      if (code === 'ENOENT') await makeMaildirDirs(dir).catch((e2: unknown) => { throw mailErrorFromErrno(e2, `mkdir(${dir})`); });
      else { unique = newUniqueName(); path = join(dir, 'tmp', unique); }
    }
  }
  const fname = withSizes(unique, size, size + bare);
  try {
    if (isRoot) {
      // Dovecot runs as the mailbox owner: the file must be that user's (maildir-owner.ts).
      const o = await ownerOf(dir, Date.now());
      if (o.uid !== 0 || o.gid !== 0) fchownSync(fd, o.uid, o.gid);
    }
    writevFullySync(fd, parts, 0);
    await syncFile(fd, path);
    closeSync(fd);
    fd = undefined;
    try {
      renameSync(path, join(dir, 'new', fname));
    } catch (e) {
      // new/ missing: removed by hand, or a concurrent first delivery is still making the
      // directories (Postfix maildir.c: make_dirs() and rename again)
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await makeMaildirDirs(dir);
      renameSync(path, join(dir, 'new', fname));
    }
  } catch (e) {
    if (fd !== undefined) { try { closeSync(fd); } catch { /* already failing */ } }
    try { unlinkSync(path); } catch { /* not there */ }
    throw mailErrorFromErrno(e, `write(${path})`);
  }
  // The rename must survive a crash before the queue forgets the recipient (Dovecot fsyncs the
  // directory too; Postfix relies on the journal ordering the rename before the queue unlink):
  // the caller waits for `durable` before it does; the fsync is grouped (util/dir-sync.ts).
  const newDir = join(dir, 'new');
  const durable = syncDirGrouped(newDir).catch((e: unknown) => { throw mailErrorFromErrno(e, `fsync(${newDir})`); });
  durable.catch(() => { /* the caller's to handle; never an unhandled rejection */ });
  notifyMailboxChanged(dir);
  return { fname, size, vsize: size + bare, durable };
}
