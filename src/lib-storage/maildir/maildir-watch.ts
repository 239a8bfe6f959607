/**
 * maildir-watch - MailUser.watchMailboxes on a Maildir (NOTIFY, RFC 5465): ONE watcher per
 * Maildir root per thread, shared by every NOTIFY session of that user, that turns signals into
 * mailbox names — Dovecot's mailbox_list_notify over its list index.
 *
 * What it hears:
 *   - every "mailbox in DIR changed" and "list under ROOT changed" signalled by this process and
 *     its threads (mail-notify.ts: IMAP sessions, lmtpd, virtual/local in the delivery thread),
 *     whatever mailbox it is;
 *   - writers in other processes (real Dovecot delivering into the same Maildir, doveadm, a mail
 *     client or shell on the files, another Postern process): inotify on the root directory
 *     (folders made, renamed, deleted; the `subscriptions` file, also in CONTROL= when set) and
 *     on new/ and cur/ of EVERY mailbox a subscriber asks about (`wants`; all when it gives
 *     none), held through mail-notify.ts's `holdMailboxWatch` — one kernel watch per directory per
 *     thread, bounded, with the periodic look beyond the bound (mail-notify-watch.ts); a root the
 *     kernel refuses to watch is looked at the same way (its mtime: folders made or removed).
 *     The set follows the list: a folder created later (by anyone) is watched from then on, one
 *     deleted is released; a folder another process made that already holds mail is looked at
 *     once when it is first watched.
 *
 * Memory: per root, one directory → name map and one release function per watched mailbox;
 * per subscriber, its callback and predicate. The map is rebuilt (one readdir of the root) when
 * the list changes or an unknown directory signals.
 * The LAYOUT=fs variant watches the root only for folders: a folder made inside another folder
 * by another process shows up at the next list change seen (Maildir++, Dovecot's default for
 * maildir, has every folder in the root).
 */
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import type { MailboxListEvent } from '../mail-storage.ts';
import { holdMailboxWatch, watchAnyMailbox, type ListChange } from '../mail-notify.ts';
import { mailboxDirHasFiles, pollDir } from '../mail-notify-watch.ts';
import type { MaildirList } from './maildir-list.ts';

interface Subscriber { cb: (ev: MailboxListEvent) => void; wants: ((name: string) => boolean) | undefined }

const COALESCE_MS = 25;
/** Watches added per event-loop turn when a big list is first watched (each is a syscall). */
const HOLD_SLICE = 512;

class RootWatch {
  readonly key: string;
  private readonly mlist: MaildirList;
  private readonly root: string;
  private readonly inboxDir: string;
  private readonly subs = new Set<Subscriber>();
  private byDir: Map<string, string> | undefined;
  private mapping: Promise<void> | undefined;
  /** Mailbox directory → release of its watch. */
  private readonly holds = new Map<string, () => void>();
  private offAny: (() => void) | undefined;
  private fsWatchers: FSWatcher[] = [];
  private polls: (() => void)[] = [];
  private listTimer: NodeJS.Timeout | undefined;
  private rewatchQueued = false;
  private built = false;
  private closed = false;

  constructor(key: string, mlist: MaildirList) {
    this.key = key;
    this.mlist = mlist;
    this.root = mlist.loc.root;
    this.inboxDir = mlist.dirOf('INBOX');
  }

  private mine(dir: string): boolean { return dir === this.inboxDir || dir === this.root || dir.startsWith(this.root + '/'); }

  start(): void {
    this.offAny = watchAnyMailbox((dir) => this.onChange(dir), (ch) => this.onList(ch));
    const fsLayout = this.mlist.loc.layout !== 'maildir++';
    const dirs = [this.root, ...(this.mlist.loc.control && this.mlist.loc.control !== this.root ? [this.mlist.loc.control] : [])];
    for (const d of dirs) {
      try {
        const w = fsWatch(d, { persistent: false }, (_ev, file) => {
          const f = typeof file === 'string' ? file : '';
          const relevant = f === '' || f === 'subscriptions' || (f.startsWith('.') && !f.startsWith('.DOVECOT-TRASHED')) ||
            (fsLayout && d === this.root && !['cur', 'new', 'tmp'].includes(f) && !f.startsWith('dovecot') && !f.startsWith('postern'));
          if (!relevant || this.listTimer) return;
          this.listTimer = setTimeout(() => { this.listTimer = undefined; this.onList({ root: this.root }); }, COALESCE_MS);
          this.listTimer.unref();
        });
        w.on('error', () => {});
        this.fsWatchers.push(w);
      } catch {
        // the kernel refused (or no root yet): its mtime is looked at with the polled mailboxes
        this.polls.push(pollDir(d, () => this.onList({ root: this.root })));
      }
    }
    void this.remap().then(() => this.rewatch());
  }

  subscribe(cb: (ev: MailboxListEvent) => void, wants: ((name: string) => boolean) | undefined): () => void {
    const sub: Subscriber = { cb, wants };
    this.subs.add(sub);
    if (this.built) this.queueRewatch();
    return () => {
      if (!this.subs.delete(sub)) return;
      if (this.subs.size === 0) this.close(); else this.queueRewatch();
    };
  }

  private remap(): Promise<void> {
    this.mapping ??= this.mlist.listNames().then((names) => {
      const m = new Map<string, string>([[this.inboxDir, 'INBOX']]);
      for (const n of names) { try { m.set(this.mlist.dirOf(n), n); } catch { /* invalid on disk */ } }
      this.byDir = m;
    }, () => {}).finally(() => { this.mapping = undefined; });
    return this.mapping;
  }

  private emit(ev: MailboxListEvent): void {
    for (const s of [...this.subs]) s.cb(ev);
  }

  private onChange(dir: string): void {
    if (this.closed || !this.mine(dir)) return;
    const known = this.byDir?.get(dir);
    if (known !== undefined) { this.emit({ kind: 'mailbox', name: known }); return; }
    void this.remap().then(() => { const n = this.byDir?.get(dir); if (n !== undefined && !this.closed) this.emit({ kind: 'mailbox', name: n }); });
  }

  private onList(ch: ListChange): void {
    if (this.closed || ch.root !== this.root) return;
    this.byDir = undefined;
    this.emit({ kind: 'list', renamed: ch.renamed });
    void this.remap().then(() => this.rewatch());
  }

  private queueRewatch(): void {
    if (this.rewatchQueued) return;
    this.rewatchQueued = true;
    setImmediate(() => { this.rewatchQueued = false; void this.rewatch(); });
  }

  /** Watch new/ and cur/ of every mailbox a subscriber wants, release the others. */
  private async rewatch(): Promise<void> {
    if (this.closed || !this.byDir) return;
    const first = !this.built;
    this.built = true;
    const preds = [...this.subs].map((s) => s.wants);
    const all = preds.some((p) => p === undefined);
    const want = new Set<string>();
    for (const [dir, name] of this.byDir) {
      if (all || preds.some((p) => p!(name))) want.add(dir);
    }
    for (const [dir, release] of this.holds) if (!want.has(dir)) { release(); this.holds.delete(dir); }
    let n = 0;
    for (const dir of want) {
      if (this.closed) return;
      if (this.holds.has(dir)) continue;
      this.holds.set(dir, holdMailboxWatch(dir));
      // a folder made since (by another process, maybe with mail already): look once
      if (!first && mailboxDirHasFiles(dir)) this.onChange(dir);
      if (++n % HOLD_SLICE === 0) await new Promise((r) => setImmediate(r));
    }
  }

  private close(): void {
    this.closed = true;
    roots.delete(this.key);
    this.offAny?.();
    for (const w of this.fsWatchers) w.close();
    for (const off of this.polls) off();
    if (this.listTimer) clearTimeout(this.listTimer);
    for (const release of this.holds.values()) release();
    this.holds.clear();
    this.byDir = undefined;
  }

  /** Watched mailboxes (tests). */
  get watched(): number { return this.holds.size; }
}

const roots = new Map<string, RootWatch>();

/**
 * Subscribe to the changes of the mailboxes of the Maildir `mlist` describes (see the header);
 * `wants(name)`: the mailboxes whose changes by other processes are to be watched (default all).
 */
export function watchMaildirMailboxes(mlist: MaildirList, cb: (ev: MailboxListEvent) => void, wants?: (name: string) => boolean): () => void {
  const loc = mlist.loc;
  const key = [loc.root, loc.inbox ?? '', loc.control ?? '', loc.layout, loc.utf8 ? 1 : 0, mlist.sep].join('\0');
  let r = roots.get(key);
  if (!r) {
    r = new RootWatch(key, mlist);
    roots.set(key, r);
    r.start();
  }
  return r.subscribe(cb, wants);
}

/** Maildir roots watched by this thread and their watched mailboxes (tests, diagnostics). */
export function maildirWatchStats(): { roots: number; mailboxes: number } {
  let mailboxes = 0;
  for (const r of roots.values()) mailboxes += r.watched;
  return { roots: roots.size, mailboxes };
}
