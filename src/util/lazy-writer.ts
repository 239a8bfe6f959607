/**
 * lazy-writer - the write policy of Postern's cache files (postern-index, postern-cache): a
 * change only marks the file dirty, and it is written at most `delayMs` later, one write at a
 * time (the latest snapshot last: `write` takes its snapshot when it starts), and synchronously
 * at process exit (no callback runs after 'exit'), so a crash loses at most `delayMs` of a
 * cache and the hot path pays one boolean test.
 *
 *   const w = new LazyWriter({ delayMs: 3000, write: async () => {...}, writeSync: () => {...} });
 *   w.mark();          // something changed
 *   await w.flush();   // write now if dirty (eviction, tests)
 *   w.cancel();        // the file's directory is gone: never write it again for this change
 *
 * `write` and `writeSync` must not throw for a cache file (log and go on).
 */

/** Every writer with an unwritten change, for flushLazyWriters() and the exit hook. */
const pending = new Set<LazyWriter>();
let exitHook = false;

/** Write every pending cache file now (process stop; tests). */
export async function flushLazyWriters(): Promise<void> {
  await Promise.all([...pending].map((w) => w.flush()));
}

export class LazyWriter {
  private readonly o: { delayMs: number; write: () => Promise<void>; writeSync: () => void };
  private isDirty = false;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;

  constructor(o: { delayMs: number; write: () => Promise<void>; writeSync: () => void }) { this.o = o; }

  get dirty(): boolean { return this.isDirty; }

  /** Something changed: write later (nothing more to do when a write is already due). */
  mark(): void {
    if (this.isDirty) return;
    this.isDirty = true;
    pending.add(this);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => { for (const w of pending) w.flushSync(); });
    }
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => { this.timer = undefined; void this.flush(); }, this.o.delayMs);
    this.timer.unref();
  }

  /** Write now if anything changed since the last write. */
  async flush(): Promise<void> {
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined; }
    while (this.writing) await this.writing;   // one write at a time, the latest snapshot last
    if (!this.isDirty) { pending.delete(this); return; }
    this.isDirty = false;
    pending.delete(this);
    this.writing = this.o.write().finally(() => { this.writing = undefined; });
    await this.writing;
  }

  /** Forget the pending change (the file's directory was deleted or renamed). */
  cancel(): void {
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined; }
    this.isDirty = false;
    pending.delete(this);
  }

  private flushSync(): void {
    if (!this.isDirty) return;
    this.isDirty = false;
    this.o.writeSync();
  }
}
