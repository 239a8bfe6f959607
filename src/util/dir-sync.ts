/**
 * dir-sync - group commit of directory fsyncs (issue 3: "batch fsyncs across concurrent
 * sessions (group commit) rather than giving up durability").
 *
 *   await syncDirGrouped('/var/spool/postern/incoming')   // every entry created, renamed or
 *                                                         // removed there before the call is
 *                                                         // on disk when this resolves
 *
 * A new directory entry (a queue file in incoming/, a rename into a Maildir's new/) survives a
 * power failure only once its directory is fsync'd: a journaled file system orders it before
 * later changes, but ext2 and ext4 without a journal (this project's own test machine) do not,
 * and the rule is "nothing acknowledged is lost". Callers that commit at the same time share
 * one fsync per directory while it has not been issued yet (a gathering sync: `gatherMs`); a
 * request made while that directory's fsync is already running cannot count on it (it may have
 * started before the caller's change): it gets its own fsync at once, beside the running one
 * (measured faster than waiting for a following shared one: docs/durability.md), unless it
 * is gathering too, in which case it waits for the next shared one. Different
 * directories sync independently. The open and close are synchronous calls (microseconds);
 * only the fsync goes to the thread pool. The table of directories keeps only those with a
 * sync running or waiting, so it stays small however many Maildirs are delivered to.
 */
import { closeSync, openSync, constants as C } from 'node:fs';
import { fsyncFd } from './fs-write.ts';

class DirSync {
  private readonly dir: string;
  private running: Promise<void> | undefined;
  /** The running sync's fsync has been issued (until then, new callers can join it). */
  private started = false;
  /** Ends the gathering wait of a sync not issued yet. */
  private wake: (() => void) | undefined;
  /** now() came while an fsync was in flight: the following sync does not gather. */
  private urgent = false;
  private next: Promise<void> | undefined;
  constructor(dir: string) { this.dir = dir; }

  get idle(): boolean { return !this.running && !this.next; }

  /** Resolves once a directory fsync that started after this call has completed. */
  sync(delayMs: number): Promise<void> {
    if (!this.running) {
      this.started = false;
      if (this.urgent) { delayMs = 0; this.urgent = false; }
      const run = async () => {
        if (delayMs > 0) {
          await new Promise<void>((r) => {
            const t = setTimeout(r, delayMs);
            this.wake = () => { clearTimeout(t); r(); };
          });
          this.wake = undefined;
        }
        this.started = true;
        await this.doSync();
      };
      this.running = run().finally(() => { this.running = undefined; });
      return this.running;
    }
    // Not issued yet: this caller's change is covered by it.
    if (!this.started) return this.running;
    // A sync is in flight and may have started before our change. A caller in a hurry gets its
    // own fsync at once, beside it: waiting for the running one and then a following one cost
    // 1.1-1.7x the rate of 4-20 deliveries into one Maildir (bench/fsync-options.ts
    // --mailboxes 1, docs/durability.md); the kernel merges the concurrent flushes anyway.
    if (delayMs <= 0) return this.doSync();
    // A gathering caller waits for the following one (shared with the others gathering).
    if (!this.next) {
      const after = () => { this.next = undefined; return this.sync(delayMs); };
      this.next = this.running.then(after, after);
    }
    return this.next;
  }

  /** Issue a gathering sync now (a caller needs the answer), or the next one without a wait. */
  now(): void {
    if (this.wake) this.wake();
    else if (this.running && this.started) this.urgent = true;
  }

  private async doSync(): Promise<void> {
    const fd = openSync(this.dir, C.O_RDONLY | C.O_DIRECTORY);
    try { await fsyncFd(fd); } finally { closeSync(fd); }
  }
}

const syncers = new Map<string, DirSync>();

/**
 * fsync `dir`, shared with concurrent callers (see the file comment); rejects with the error.
 * With `gatherMs`, a sync that would start now waits that long first (or until syncDirNow()),
 * and every caller in the meantime joins it: fewer fsyncs for callers that ask well before
 * they need the answer (smtpd asks at MAIL, and needs it at the end of DATA).
 */
export function syncDirGrouped(dir: string, gatherMs = 0): Promise<void> {
  let s = syncers.get(dir);
  if (!s) { s = new DirSync(dir); syncers.set(dir, s); }
  const p = s.sync(gatherMs);
  const drop = () => { if (s.idle && syncers.get(dir) === s) syncers.delete(dir); };
  p.then(drop, drop);
  return p;
}

/** A sync of `dir` still gathering callers (syncDirGrouped's gatherMs) is issued now. */
export function syncDirNow(dir: string): void {
  syncers.get(dir)?.now();
}

/** Directories with a sync running or waiting (for tests: the table does not grow). */
export function dirSyncsInFlight(): number { return syncers.size; }
