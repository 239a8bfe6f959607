/**
 * mail-notify - "this mailbox may have changed" signals for IDLE (RFC 2177) and NOTIFY.
 *
 * Two sources, one callback: an in-process EventEmitter keyed by mailbox directory (deliveries
 * and flag changes made by this process signal at once), and inotify on the mailbox's new/ and
 * cur/ for writers in other processes — Postern or real Dovecot (mail-notify-watch.ts: one watch
 * per directory per thread however many listen, within a bound of the kernel's watches, and a
 * look at the directories' mtimes every mailbox_idle_check_interval beyond it). A watch exists
 * only while someone listens, and inotify costs nothing while idle. A callback only means "call
 * sync()"; it carries no data. An outside change signals 25 ms after its burst and once more
 * 1.1 s later: a change made in the same clock tick as our last look leaves the directory mtime
 * unchanged, and the sync store only re-reads such a directory a second later (maildir-sync.ts,
 * Dovecot's delayed refresh), so an IDLE session still gets it pushed.
 *
 * Threads: a delivery agent in the master's delivery thread (virtual, local) or any other
 * worker thread of this process reaches the sessions of the main thread through a
 * BroadcastChannel at once; other processes only through inotify (or the periodic look).
 *
 * NOTIFY (RFC 5465) listens to every mailbox of a user without a listener per mailbox:
 * `watchAnyMailbox` hears every "mailbox in `dir` changed" of this process (and its threads) and
 * every "the mailbox list under `root` changed" (create, delete, rename, subscribe; a rename
 * carries its old and new name) — Dovecot's mailbox_list_notify. maildir/maildir-watch.ts turns
 * directories into mailbox names for MailUser.watchMailboxes and holds the watches of the
 * mailboxes NOTIFY sessions ask about (`holdMailboxWatch`).
 */
import { EventEmitter } from 'node:events';
import { BroadcastChannel } from 'node:worker_threads';
import { holdMailboxDir } from './mail-notify-watch.ts';

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
 * threads; returns the unsubscribe function. No inotify: callers hold holdMailboxWatch() for
 * the directories other processes may write.
 */
export function watchAnyMailbox(onChange: (dir: string) => void, onList: (ch: ListChange) => void): () => void {
  chan();
  anyBus.on('change', onChange);
  anyBus.on('list', onList);
  return () => { anyBus.off('change', onChange); anyBus.off('list', onList); };
}

/** Listen for changes of the mailbox in `dir`; returns the unsubscribe function. */
export function watchMailbox(dir: string, cb: () => void): () => void {
  dir = canonical(dir);
  chan();
  bus.on(dir, cb);
  const release = holdMailboxDir(dir, emitLocal);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    bus.off(dir, cb);
    release();
  };
}

/** Hold inotify (or the periodic look) on the mailbox in `dir` for other processes' writes, without a listener. */
export function holdMailboxWatch(dir: string): () => void {
  chan();
  return holdMailboxDir(canonical(dir), emitLocal);
}
