/**
 * maildir-dotlock - Dovecot's dotlocks (src/lib/file-dotlock.c) for dovecot-uidlist and
 * dovecot-keywords, so Postern and Dovecot exclude each other.
 *
 * Creation: open("<file>.lock", O_CREAT|O_EXCL|O_RDWR) and write "<pid>:<hostname>" into it
 * (dotlock_use_excl=yes, Dovecot 2.3's default). Release: unlink. Replace: write the new
 * content into the lock file and rename() it over the file (file_dotlock_replace).
 *
 * Waiting for someone else's lock follows check_lock():
 *  - a lock younger than 2 s is not examined (STALE_PID_CHECK_SECS);
 *  - if it names a pid on THIS host, it is overridden only when that process no longer exists
 *    (kill(pid, 0) → ESRCH), and never while it lives, however old the lock is;
 *  - one async task of THIS process at a time tries for a given lock; the others wait in-process
 *    until it has released it (a Dovecot process never waits for a lock it holds itself;
 *    Postern's tasks do). So a lock of ours is never examined, however old it looks (a file
 *    system whose clock is behind ours, npm run test:clock) or while replace() rewrites it.
 *    A lock naming our pid that this thread does not hold is another worker thread's, or an
 *    earlier process's leftover: stale only after `staleSecs` unchanged under our eyes;
 *  - otherwise it is stale when neither the lock nor the protected file changed for
 *    `staleSecs` (MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT = 120 s) — then it is unlinked.
 * We give up after `timeoutSecs` (Dovecot: stale timeout + 2 = 122 s) with MailError TEMP.
 */
import { linkSync, promises as fsp, unlinkSync, writeSync, constants as C } from 'node:fs';
import { dirname, join } from 'node:path';
import { hostname } from 'node:os';
import { MailError } from '../mail-error.ts';
import { inheritOwner } from './maildir-owner.ts';

export const UIDLIST_LOCK_STALE_TIMEOUT = 120;
const STALE_PID_CHECK_SECS = 2;

export interface DotlockOptions {
  /** Seconds without change after which a lock is stale (Dovecot: 120). */
  staleSecs?: number;
  /** Seconds to wait in total (Dovecot: stale + 2). */
  timeoutSecs?: number;
  /** Clock for tests (milliseconds). */
  now?: () => number;
}

export class Dotlock {
  readonly path: string;
  readonly lockPath: string;
  private fd: fsp.FileHandle | undefined;
  constructor(path: string, lockPath: string, fd: fsp.FileHandle) {
    this.path = path; this.lockPath = lockPath; this.fd = fd;
  }
  get held(): boolean { return this.fd !== undefined; }

  /** Remove the lock (file_dotlock_delete). */
  async release(): Promise<void> {
    const fd = this.fd;
    if (!fd) return;
    this.fd = undefined;
    await fd.close().catch(() => {});
    try { unlinkSync(this.lockPath); } catch { /* gone already */ }
    releasedHere(this.lockPath);   // only now: a task of ours waiting must not take it before
  }

  /** Write `content` as the new file atomically via the lock file, releasing the lock (file_dotlock_replace). */
  async replace(content: string | Buffer): Promise<void> {
    const fd = this.fd;
    if (!fd) throw new MailError('TEMP', 'Internal error: dotlock not held', this.lockPath);
    await fd.truncate(0);
    await fd.write(typeof content === 'string' ? Buffer.from(content) : content, 0, undefined, 0);
    await fd.datasync();
    await fd.close();
    this.fd = undefined;
    await fsp.rename(this.lockPath, this.path);
    releasedHere(this.lockPath);
  }
}

/**
 * Lock files this process holds now, each with the tasks of ours waiting for it: they are woken
 * the moment it is released instead of polling (several sessions delivering to one user at once
 * would otherwise each sleep up to 250 ms between tries).
 */
const heldHere = new Map<string, (() => void)[]>();

function releasedHere(lockPath: string): void {
  const waiters = heldHere.get(lockPath);
  heldHere.delete(lockPath);
  for (const w of waiters ?? []) w();
}

/** Wait until our own holder releases `lockPath`, or `ms` pass (a fallback; never longer). */
function releaseOrTimeout(lockPath: string, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void { clearTimeout(t); resolve(); }
    heldHere.get(lockPath)?.push(done);
  });
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code !== 'ESRCH'; }
}

/** "pid:host" of a lock file if it names a process of this host (read_local_pid). */
async function readLocalPid(lockPath: string): Promise<number | undefined> {
  let text: string;
  try { text = (await fsp.readFile(lockPath, 'latin1')).slice(0, 511); } catch { return undefined; }
  text = text.replace(/\n$/, '');
  const i = text.indexOf(':');
  if (i < 0) return undefined;
  if (text.slice(i + 1) !== lockHost()) return undefined;
  const pid = Number(text.slice(0, i));
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** hostname(), asked of the kernel once a minute instead of twice per lock. */
let host: { name: string; at: number } | undefined;
function lockHost(): string {
  const now = Date.now();
  if (!host || now - host.at >= 60_000 || now < host.at) host = { name: hostname(), at: now };
  return host.name;
}

let defaultNow: () => number = Date.now;
/** Tests only: a clock for the stale-lock rules (so "120 s later" needs no waiting). Returns the old one. */
export function setDotlockClock(now: () => number): () => number { const o = defaultNow; defaultNow = now; return o; }

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Create `<path>.lock`, waiting for (or overriding a stale) lock held by anyone else. */
let tmpSeq = 0;

export async function dotlockCreate(path: string, o: DotlockOptions = {}): Promise<Dotlock> {
  const lockPath = path + '.lock';
  const staleSecs = o.staleSecs ?? UIDLIST_LOCK_STALE_TIMEOUT;
  const now = (): number => (o.now ?? defaultNow)();
  const deadline = now() + (o.timeoutSecs ?? staleSecs + 2) * 1000;
  let lastChange = 0;            // seconds, like Dovecot's lock_info.last_change
  let seenLock = '';             // ino/size/mtime of the lock last seen
  let seenFile = '';
  let watchedSince = 0;          // seconds: when we first saw the lock as it is now
  let wait = 5;
  // One task of this process at a time tries for a given lock; the others wait for it in
  // heldHere (woken at its release). So no task of ours ever examines a lock another task of
  // ours is making or holds, whatever the clocks say, and the stale rules below apply only to
  // other processes' locks.
  let mine = false;
  try {
  for (;;) {
    if (!mine) {
      if (heldHere.has(lockPath)) {
        if (now() >= deadline) break;
        await releaseOrTimeout(lockPath, 250);
        continue;
      }
      heldHere.set(lockPath, []);
      mine = true;
    }
    try {
      // As Dovecot's file_dotlock: write "pid:host" to a temporary file first, then link() it to
      // the lock name. The lock never exists empty, so a crash cannot leave a lock nobody can
      // attribute (which would block deliveries until the 120 s stale timeout).
      const tmp = join(dirname(lockPath), `.temp.${lockHost()}.${process.pid}.${++tmpSeq}`); // Dovecot's temp name
      // The create (an inode allocation) in the thread pool; the write, link and unlink are
      // page-cache calls of microseconds, made synchronously (a pool round trip each before).
      const fd = await fsp.open(tmp, C.O_RDWR | C.O_CREAT | C.O_EXCL, 0o600);
      try {
        writeSync(fd.fd, `${process.pid}:${lockHost()}`);
        linkSync(tmp, lockPath);
      } catch (e) {
        await fd.close().catch(() => {});
        try { unlinkSync(tmp); } catch { /* not there */ }
        throw e;
      }
      try { unlinkSync(tmp); } catch { /* not there */ }
      await inheritOwner(lockPath);
      mine = false;   // handed to the Dotlock: its release() wakes the waiters
      return new Dotlock(path, lockPath, fd);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new MailError('NOTFOUND', 'Mailbox does not exist.', `open(${lockPath}): ${(e as Error).message}`);
      if (code !== 'EEXIST') throw new MailError('TEMP', 'Internal error occurred. Refer to server log for more information.', `open(${lockPath}): ${(e as Error).message}`);
    }
    // someone holds it: check_lock()
    const nowS = Math.floor(now() / 1000);
    let st;
    try { st = await fsp.lstat(lockPath); } catch { continue; }   // vanished: retry at once
    const key = `${st.ino}/${st.size}/${st.mtimeMs}`;
    if (key !== seenLock) {
      const first = seenLock === '';
      seenLock = key;
      watchedSince = nowS;
      const t = first ? Math.floor(Math.min(st.mtimeMs <= now() ? Math.max(st.mtimeMs, st.ctimeMs) : st.ctimeMs, now()) / 1000) : nowS;
      if (lastChange < t) lastChange = t;
      wait = 5;
    }
    let override = false;
    if (st.mtimeMs / 1000 < nowS - STALE_PID_CHECK_SECS) {
      const pid = await readLocalPid(lockPath);
      if (pid !== undefined) {
        if (pid === process.pid) {
          // Not held by this thread (we are the one task of ours trying): a worker thread of this
          // process (threads share the pid, not heldHere) or an earlier process's leftover with a
          // reused pid. Its times say nothing when the clocks disagree, so it is stale only after
          // staleSecs unchanged under our own eyes.
          if (nowS > watchedSince + staleSecs) override = true;
          else if (now() >= deadline) break;
          else { await sleep(wait); wait = Math.min(wait * 2, 250); continue; }
        } else if (!pidAlive(pid)) override = true;   // a live pid is never overridden
        else if (now() >= deadline) break;
        else { await sleep(wait); wait = Math.min(wait * 2, 250); continue; }
      } else if (st.size === 0 && st.ctimeMs / 1000 < nowS - STALE_PID_CHECK_SECS) {
        // Still empty seconds after it was made: its creator died between create and write
        // (a writer that uses O_EXCL then writes, as Dovecot's dotlock_use_excl does). Nobody
        // can own it: override rather than stall deliveries for the whole stale timeout.
        override = true;
      }
    }
    if (!override && nowS > lastChange + staleSecs) {
      // possibly stale: a change of the protected file also counts (Dovecot checks it too)
      try {
        const fs2 = await fsp.stat(path);
        const fkey = `${fs2.ino}/${fs2.size}/${fs2.mtimeMs}`;
        if (fkey !== seenFile) {
          const t = seenFile === '' ? Math.floor(Math.min(fs2.mtimeMs, now()) / 1000) : nowS;
          seenFile = fkey;
          if (lastChange < t) lastChange = t;
        }
      } catch { /* missing file: unchanged */ }
      if (nowS > lastChange + staleSecs) override = true;
    }
    if (override) {
      await fsp.unlink(lockPath).catch(() => {});
      seenLock = '';
      await sleep(1 + Math.random() * 2);   // Dovecot sleeps 0.1-0.2 ms after overriding
      continue;
    }
    if (now() >= deadline) break;
    await sleep(wait);
    wait = Math.min(wait * 2, 250);
  }
  } finally {
    if (mine) releasedHere(lockPath);   // gave up (timeout, error): the next task of ours tries
  }
  throw new MailError('TEMP', 'Timeout while waiting for lock.', `dotlock ${lockPath} held by another process`);
}
