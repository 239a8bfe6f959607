/**
 * mail-notify-watch - the kernel side of mail-notify.ts: which mailbox directories this process
 * watches with inotify for writers in OTHER processes (real Dovecot delivering into the same
 * Maildir, doveadm, a mail client or a shell touching files, another Postern process), within
 * bounds, and the periodic look that takes over where the kernel refuses more watches.
 *
 * One entry per mailbox directory per thread, shared by everyone who holds it (IDLE on the
 * selected mailbox, the NOTIFY sessions of every user whose Maildir root it is under): two
 * watches, on `new/` (deliveries: tmp/ → new/) and `cur/` (flag changes are renames there,
 * expunges unlinks). A message change never touches only the mailbox directory itself: its
 * `dovecot-uidlist` is rewritten after a change of new/ or cur/, and watching it as well would
 * wake every session for the index files each reader writes there. Node's fs.watch uses one
 * inotify instance per thread (libuv's), so the instances a process takes do not grow with the
 * number of sessions or users, and the kernel counts one watch per directory however many hold it.
 *
 * BOUNDS. At most `inotifyBudget()` watches per thread: three quarters of the kernel's
 * fs.inotify.max_user_watches (shared by every process of the same uid, Dovecot's included),
 * at most NOTIFY_WATCH_MAX (65,536: about 100 MB). A directory beyond the budget, or refused by the kernel (ENOSPC:
 * fs.inotify.max_user_watches reached; EMFILE: no inotify instance, fs.inotify.max_user_instances),
 * is LOOKED AT every mailbox_idle_check_interval (Dovecot's setting and default, 30 s): the
 * modification times of its new/ and cur/ (a stat each, in time slices: lib-storage/fs-batch.ts),
 * which change with every file added, removed or renamed there. Logged once per cause, naming
 * the sysctl to raise. Every poll also tries to move polled directories back to inotify while
 * the budget allows.
 *
 * A watched directory deleted (or renamed away) and re-created under the same name is noticed
 * by the watch's own event (IN_DELETE_SELF / IN_MOVE_SELF, reported by Node as a 'rename' of the
 * directory's own name): the entry watches what is there now (the inode number may be the same,
 * reused); one that does not exist (yet: a folder being made) is tried again at 0.1, 0.4, 1.6
 * and 6.4 s, then polled.
 *
 * A change calls `fire(dir)` (mail-notify's in-process signal) 25 ms after a burst and once
 * more SETTLE_MS later: a change made in the same clock tick as a reader's last look leaves the
 * directory mtime unchanged, and the sync store re-reads such a directory only a second later
 * (maildir-sync.ts, Dovecot's delayed refresh).
 */
import { opendirSync, promises as fsp, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { logger } from '../util/msg.ts';
import { mapSliced } from './fs-batch.ts';

const log = logger('lib-storage');

/**
 * Upper bound of inotify watches one thread takes, whatever the kernel allows: each costs
 * about 1.5 KB of this process's memory (Node's FSWatcher and libuv's handle) and about 1 KB
 * of the kernel's, so at most ~100 MB here (a user with 10,000 mailboxes takes 20,000).
 */
export const NOTIFY_WATCH_MAX = 65_536;
/** The second signal after an outside change: past Dovecot's MAILDIR_SYNC_SECS. */
export const SETTLE_MS = 1100;
const COALESCE_MS = 25;
const RETRY_MS = [100, 400, 1600, 6400];
const SUBS = ['new', 'cur'] as const;

interface Held {
  dir: string;
  refs: number;
  fire: (dir: string) => void;
  watchers: FSWatcher[];
  /** In the poll set; `marks` is what the last look saw of new/ and cur/ (mtime and inode; '' missing). */
  polled: boolean;
  marks: string;
  tries: number;
  retry: NodeJS.Timeout | undefined;
  timer: NodeJS.Timeout | undefined;
  settle: NodeJS.Timeout | undefined;
}

const held = new Map<string, Held>();
const polled = new Set<Held>();
let watchCount = 0;
let budgetCache: number | undefined;
let budgetOverride: number | undefined;
let pollMs = 30_000;
let pollTimer: NodeJS.Timeout | undefined;
let polling = false;
/** The kernel refused (ENOSPC/EMFILE): no new watch is tried before this time. */
let kernelFullUntil = 0;
const logged = new Set<string>();

/** Watches this thread may take: ¾ of fs.inotify.max_user_watches, at most NOTIFY_WATCH_MAX. */
export function inotifyBudget(): number {
  if (budgetOverride !== undefined) return budgetOverride;
  if (budgetCache === undefined) {
    let max = 8192; // the kernel's old default, when /proc does not say
    try { max = Number(readFileSync('/proc/sys/fs/inotify/max_user_watches', 'latin1').trim()) || max; } catch { /* not Linux */ }
    budgetCache = Math.min(NOTIFY_WATCH_MAX, Math.floor(max * 0.75));
  }
  return budgetCache;
}

/** mailbox_idle_check_interval: how often directories without inotify are looked at (0 = never). */
export function setMailboxIdleCheckInterval(ms: number): void {
  pollMs = ms > 0 ? Math.max(1000, ms) : 0;
  if (pollTimer) { clearInterval(pollTimer); pollTimer = undefined; }
  if (polled.size > 0 || plainPolled.size > 0) startPolling();
}

/** Tests: a budget of `n` watches (undefined: the kernel's again); the poll interval in ms. */
export function setInotifyBudgetForTest(n: number | undefined, pollIntervalMs?: number): void {
  budgetOverride = n;
  kernelFullUntil = 0;
  if (pollIntervalMs !== undefined) { pollMs = pollIntervalMs; if (pollTimer) { clearInterval(pollTimer); pollTimer = undefined; } if (polled.size > 0) startPolling(); }
}

/** What this thread holds now: directories, kernel watches, directories polled instead. */
export function mailNotifyWatchStats(): { dirs: number; watches: number; polled: number; budget: number } {
  return { dirs: held.size, watches: watchCount, polled: polled.size + plainPolled.size, budget: inotifyBudget() };
}

function logOnce(key: string, text: string): void {
  if (logged.has(key)) return;
  logged.add(key);
  log.warn(text);
}

function limitText(why: string): string {
  const every = pollMs > 0 ? `every ${Math.round(pollMs / 1000)} s (mailbox_idle_check_interval)` : 'never (mailbox_idle_check_interval = 0)';
  return `${why}: changes other processes make to further mailboxes are now looked for ${every} instead of at once`;
}

/**
 * Hold the watch of the mailbox in `dir` (its new/ and cur/); `fire(dir)` is called after a
 * change by anyone. Returns the release function. Never throws.
 */
export function holdMailboxDir(dir: string, fire: (dir: string) => void): () => void {
  let h = held.get(dir);
  if (!h) {
    h = { dir, refs: 0, fire, watchers: [], polled: false, marks: '', tries: 0, retry: undefined, timer: undefined, settle: undefined };
    held.set(dir, h);
    arm(h);
  }
  h.refs++;
  const entry = h;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--entry.refs > 0) return;
    unwatch(entry);
    polled.delete(entry);
    for (const t of [entry.retry, entry.timer, entry.settle]) if (t) clearTimeout(t);
    if (held.get(dir) === entry) held.delete(dir);
  };
}

/**
 * A directory that could not be watched (a Maildir root whose inotify watch the kernel refused):
 * `fire(dir)` when its mtime changes, looked at with the polled mailboxes. Returns the release.
 */
const plainPolled = new Map<string, { mark: string; fire: (dir: string) => void; refs: number }>();
export function pollDir(dir: string, fire: (dir: string) => void): () => void {
  let e = plainPolled.get(dir);
  if (!e) {
    let mark = '';
    try { mark = markOf(statSync(dir)); } catch { /* missing: '' */ }
    e = { mark, fire, refs: 0 };
    plainPolled.set(dir, e);
    startPolling();
  }
  e.refs++;
  const entry = e;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--entry.refs === 0 && plainPolled.get(dir) === entry) plainPolled.delete(dir);
  };
}

/** Whether `dir/new` or `dir/cur` holds an entry (a folder made by another process may already have mail). */
export function mailboxDirHasFiles(dir: string): boolean {
  for (const sub of SUBS) {
    try {
      const d = opendirSync(join(dir, sub));
      try { if (d.readSync() !== null) return true; } finally { d.closeSync(); }
    } catch { /* missing */ }
  }
  return false;
}

function fireSoon(h: Held): void {
  if (h.timer || h.refs === 0) return;
  h.timer = setTimeout(() => {
    h.timer = undefined;
    h.fire(h.dir);
    if (h.settle) clearTimeout(h.settle);
    h.settle = setTimeout(() => { h.settle = undefined; if (h.refs > 0) h.fire(h.dir); }, SETTLE_MS);
    h.settle.unref();
  }, COALESCE_MS);
  h.timer.unref();
}

function unwatch(h: Held): void {
  for (const fw of h.watchers) fw.close();
  watchCount -= h.watchers.length;
  h.watchers = [];
}

/** inotify if the budget and the kernel allow, else the poll set; a missing directory is retried. */
function arm(h: Held): void {
  const r = tryWatch(h);
  if (r === 'ok') { polled.delete(h); h.polled = false; h.tries = 0; return; }
  if (r === 'missing' && h.tries < RETRY_MS.length) {
    const ms = RETRY_MS[h.tries++]!;
    h.retry = setTimeout(() => { h.retry = undefined; if (held.get(h.dir) === h) { arm(h); if (h.watchers.length > 0) fireSoon(h); } }, ms);
    h.retry.unref();
    return;
  }
  if (!h.polled) {
    h.polled = true;
    h.marks = marksOf(h.dir);
    polled.add(h);
    startPolling();
  }
}

function tryWatch(h: Held): 'ok' | 'missing' | 'limit' {
  if (Date.now() < kernelFullUntil) return 'limit';
  if (watchCount + SUBS.length > inotifyBudget()) {
    logOnce('budget', limitText(`inotify: this process's bound of ${inotifyBudget()} watches (3/4 of fs.inotify.max_user_watches) is reached; raise fs.inotify.max_user_watches (sysctl)`));
    return 'limit';
  }
  const ws: FSWatcher[] = [];
  const fail = (): void => { for (const fw of ws) fw.close(); };
  for (const sub of SUBS) {
    const p = join(h.dir, sub);
    try { if (!statSync(p).isDirectory()) { fail(); return 'missing'; } } catch { fail(); return 'missing'; }
    try {
      const fw = watch(p, { persistent: false }, (ev, file) => {
        if (typeof file === 'string' && file === sub) { if (ev === 'rename') recheck(h); return; } // the directory itself went (or its attributes changed)
        fireSoon(h);
      });
      fw.on('error', () => { recheck(h); });
      ws.push(fw);
    } catch (e) {
      fail();
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
      kernelFullUntil = Date.now() + 60_000;
      if (code === 'ENOSPC') logOnce('ENOSPC', limitText(`inotify: the kernel's fs.inotify.max_user_watches is reached (${watchCount} watches held here); raise it (sysctl fs.inotify.max_user_watches)`));
      else if (code === 'EMFILE') logOnce('EMFILE', limitText('inotify: no inotify instance (fs.inotify.max_user_instances, or the open files limit) - raise it (sysctl fs.inotify.max_user_instances)'));
      else logOnce(code ?? 'other', limitText(`inotify: watching ${p}: ${(e as Error).message}`));
      return 'limit';
    }
  }
  h.watchers = ws;
  watchCount += ws.length;
  return 'ok';
}

/** The watched new/ or cur/ went away (deleted, renamed away): watch what is there now. */
function recheck(h: Held): void {
  if (h.retry || h.watchers.length === 0) return;
  h.retry = setTimeout(() => {
    h.retry = undefined;
    if (held.get(h.dir) !== h) return;
    // the kernel dropped that watch (IN_DELETE_SELF, IN_MOVE_SELF): watch anew whatever is there
    // now, even with the same inode number (a directory made at once may reuse the freed one)
    unwatch(h);
    h.tries = 0;
    arm(h);
    fireSoon(h); // whatever happened, the sessions look
  }, COALESCE_MS);
  h.retry.unref();
}

function markOf(st: { mtimeMs: number; ino: number } | undefined): string {
  return st ? `${st.mtimeMs}/${st.ino}` : '';
}

function marksOf(dir: string): string {
  return SUBS.map((s) => { try { return markOf(statSync(join(dir, s))); } catch { return ''; } }).join(' ');
}

function startPolling(): void {
  if (pollTimer || pollMs <= 0) return;
  pollTimer = setInterval(() => { void pollOnce(); }, pollMs);
  pollTimer.unref();
}

/** One look at every polled directory (and a try to move them back to inotify). */
export async function pollOnce(): Promise<void> {
  if (polling) return;
  polling = true;
  try {
    const items = [...polled];
    const now = await mapSliced(items, (h) => marksOf(h.dir), async (h) => (await Promise.all(SUBS.map(async (s) => {
      try { return markOf(await fsp.stat(join(h.dir, s))); } catch { return ''; }
    }))).join(' '));
    items.forEach((h, i) => {
      if (!h.polled || now[i] === h.marks) return;
      h.marks = now[i]!;
      fireSoon(h);
    });
    // budget freed, or the kernel's limit raised: back to inotify (a bounded number per look)
    let moved = 0;
    for (const h of items) {
      if (moved >= 4096 || Date.now() < kernelFullUntil || watchCount + SUBS.length > inotifyBudget()) break;
      if (!h.polled || held.get(h.dir) !== h) continue;
      if (tryWatch(h) === 'ok') { polled.delete(h); h.polled = false; moved++; }
    }
    for (const [dir, e] of plainPolled) {
      let mark = '';
      try { mark = markOf(await fsp.stat(dir)); } catch { /* missing */ }
      if (mark !== e.mark) { e.mark = mark; e.fire(dir); }
    }
    if (polled.size === 0 && plainPolled.size === 0 && pollTimer) { clearInterval(pollTimer); pollTimer = undefined; }
  } finally { polling = false; }
}
