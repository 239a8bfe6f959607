/**
 * mail-notify - "this mailbox may have changed" signals for IDLE (RFC 2177) and NOTIFY.
 *
 * Two sources, one callback: an in-process EventEmitter keyed by mailbox directory (deliveries
 * and flag changes made by this process signal at once), and fs.watch (inotify) on the
 * mailbox's new/ and cur/ for writers in other processes — Postern or real Dovecot. A watch
 * exists only while someone listens, and inotify costs nothing while idle: no polling.
 * Events are coalesced (25 ms) so a burst of renames wakes a session once. A callback only
 * means "call sync()"; it carries no data. An outside change also signals once more 1.1 s
 * after its burst: a change made in the same clock tick as our last look leaves the directory
 * mtime unchanged, and the sync store only re-reads such a directory a second later
 * (maildir-sync.ts, Dovecot's delayed refresh), so an IDLE session still gets it pushed.
 */
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';

const bus = new EventEmitter();
bus.setMaxListeners(0);

interface DirWatch { watchers: FSWatcher[]; count: number; timer: NodeJS.Timeout | undefined; settle: NodeJS.Timeout | undefined }

/** The second signal after an outside change: past Dovecot's MAILDIR_SYNC_SECS. */
const SETTLE_MS = 1100;
const dirWatches = new Map<string, DirWatch>();

/** Signal in-process listeners of `dir` now. */
export function notifyMailboxChanged(dir: string): void {
  bus.emit(dir);
}

function fireSoon(dir: string, w: DirWatch): void {
  if (w.timer) return;
  w.timer = setTimeout(() => {
    w.timer = undefined;
    bus.emit(dir);
    if (w.settle) clearTimeout(w.settle);
    w.settle = setTimeout(() => { w.settle = undefined; bus.emit(dir); }, SETTLE_MS);
    w.settle.unref();
  }, 25);
  w.timer.unref();
}

/** Listen for changes of the mailbox in `dir`; returns the unsubscribe function. */
export function watchMailbox(dir: string, cb: () => void): () => void {
  bus.on(dir, cb);
  let w = dirWatches.get(dir);
  if (!w) {
    const nw: DirWatch = { watchers: [], count: 0, timer: undefined, settle: undefined };
    w = nw;
    for (const sub of ['new', 'cur']) {
      try {
        const fw = watch(join(dir, sub), { persistent: false }, () => fireSoon(dir, nw));
        fw.on('error', () => { /* directory removed: the next sync() reports it */ });
        nw.watchers.push(fw);
      } catch { /* no such dir yet: in-process signals still work */ }
    }
    dirWatches.set(dir, nw);
  }
  w.count++;
  let done = false;
  return () => {
    if (done) return;
    done = true;
    bus.off(dir, cb);
    const cur = dirWatches.get(dir);
    if (cur && --cur.count === 0) {
      for (const fw of cur.watchers) fw.close();
      if (cur.timer) clearTimeout(cur.timer);
      if (cur.settle) clearTimeout(cur.settle);
      dirWatches.delete(dir);
    }
  };
}
