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
 *
 * Threads: a delivery agent in the master's delivery thread (virtual, local) or any other
 * worker thread of this process reaches the sessions of the main thread through a
 * BroadcastChannel at once (inotify would find it 25 ms later too); other processes only
 * through inotify.
 *
 * NOTIFY (RFC 5465) listens to every mailbox of a user without a listener per mailbox:
 * `watchAnyMailbox` hears every "mailbox in `dir` changed" of this process (and its threads) and
 * every "the mailbox list under `root` changed" (create, delete, rename, subscribe; a rename
 * carries its old and new name) — Dovecot's mailbox_list_notify. MailUser.watchMailboxes
 * (maildir-storage.ts) turns directories into mailbox names.
 */
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { BroadcastChannel } from 'node:worker_threads';

const bus = new EventEmitter();
bus.setMaxListeners(0);
/** 'change' (dir) and 'list' (ListChange) for watchAnyMailbox. */
const anyBus = new EventEmitter();
anyBus.setMaxListeners(0);

/** The mailbox list under `root` changed; `renamed` [old, new] names when it was a rename. */
export interface ListChange { root: string; renamed?: [string, string] | undefined }

type Wire = { dir: string } | { list: string; renamed?: [string, string] | undefined };
let channel: BroadcastChannel | undefined;
function chan(): BroadcastChannel {
  if (!channel) {
    channel = new BroadcastChannel('postern-mail-notify');
    channel.onmessage = (ev: unknown) => {
      const m = (ev as { data?: Wire }).data;
      if (!m || typeof m !== 'object') return;
      if ('dir' in m && typeof m.dir === 'string') emitLocal(m.dir);
      else if ('list' in m && typeof m.list === 'string') anyBus.emit('list', { root: m.list, renamed: m.renamed });
    };
    (channel as unknown as { unref?: () => void }).unref?.(); // never keeps a thread alive
  }
  return channel;
}

/** One key per directory: Postfix's `user/` maildir paths end in a slash. */
function canonical(dir: string): string {
  return dir.length > 1 && dir.endsWith('/') ? dir.replace(/\/+$/, '') || '/' : dir;
}

function emitLocal(dir: string): void {
  bus.emit(dir);
  anyBus.emit('change', dir);
}

interface DirWatch { watchers: FSWatcher[]; count: number; timer: NodeJS.Timeout | undefined; settle: NodeJS.Timeout | undefined }

/** The second signal after an outside change: past Dovecot's MAILDIR_SYNC_SECS. */
const SETTLE_MS = 1100;
const dirWatches = new Map<string, DirWatch>();

/** Signal in-process listeners of `dir` now. */
export function notifyMailboxChanged(dir: string): void {
  dir = canonical(dir);
  emitLocal(dir);
  try { chan().postMessage({ dir }); } catch { /* closed at exit */ }
}

/** Signal that the mailbox list (or the subscriptions) under `root` changed. */
export function notifyMailboxListChanged(root: string, renamed?: [string, string]): void {
  const ch: ListChange = { root, renamed };
  anyBus.emit('list', ch);
  try { chan().postMessage({ list: root, renamed }); } catch { /* closed at exit */ }
}

/**
 * Hear every mailbox change (`onChange(dir)`) and list change (`onList`) of this process and its
 * threads; returns the unsubscribe function. No inotify: callers add watchMailbox() for the
 * few directories other processes may write.
 */
export function watchAnyMailbox(onChange: (dir: string) => void, onList: (ch: ListChange) => void): () => void {
  chan();
  anyBus.on('change', onChange);
  anyBus.on('list', onList);
  return () => { anyBus.off('change', onChange); anyBus.off('list', onList); };
}

function fireSoon(dir: string, w: DirWatch): void {
  if (w.timer) return;
  w.timer = setTimeout(() => {
    w.timer = undefined;
    emitLocal(dir);
    if (w.settle) clearTimeout(w.settle);
    w.settle = setTimeout(() => { w.settle = undefined; emitLocal(dir); }, SETTLE_MS);
    w.settle.unref();
  }, 25);
  w.timer.unref();
}

/** Listen for changes of the mailbox in `dir`; returns the unsubscribe function. */
export function watchMailbox(dir: string, cb: () => void): () => void {
  dir = canonical(dir);
  chan();
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
