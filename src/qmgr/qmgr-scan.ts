/**
 * qmgr-scan - walk one queue directory incrementally (Postfix qmgr_scan.c + scan_dir.c).
 *
 * A scan is started, then asked for one queue ID at a time. Directories are read with
 * opendir() in small batches, never with one readdir() of every name, so memory stays flat
 * however many files `incoming` or `deferred` hold. Hashed subdirectories (hash_queue_names)
 * are descended depth-first. A scan request made while a scan is running sets a flag: the scan
 * starts over when it reaches the end (QMGR_SCAN_START), so no new file is missed.
 */
import { promises as fsp, type Dir } from 'node:fs';
import { join } from 'node:path';
import { isQueueId, type MailQueue, type QueueName } from '../global/mail-queue.ts';

export class QmgrScan {
  readonly queueName: QueueName;
  private readonly root: string;
  private readonly depth: number;
  /** Open directories, outermost first. */
  private stack: { dir: Dir; depth: number }[] = [];
  private running = false;
  private restart = false;
  /** Flags of the current scan (e.g. ignore retry times). */
  flags = { all: false };
  private nextFlags = { all: false };

  constructor(queue: MailQueue, queueName: QueueName) {
    this.queueName = queueName;
    this.root = join(queue.dir, queueName);
    this.depth = queue.hashNames.has(queueName) ? queue.hashDepth : 0;
  }

  get isRunning(): boolean { return this.running || this.restart; }

  /** Ask for a scan (now, or right after the one in progress). */
  request(all = false): void {
    if (this.running) {
      this.restart = true;
      this.nextFlags.all ||= all;
    } else {
      this.running = true;
      this.flags = { all };
    }
  }

  /** The next queue ID, or undefined when no scan is running / the scan is complete. */
  async next(): Promise<string | undefined> {
    for (;;) {
      if (!this.running) return undefined;
      if (this.stack.length === 0) {
        const dir = await fsp.opendir(this.root, { bufferSize: 64 }).catch((e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT') return undefined;
          throw e;
        });
        if (!dir) { this.finish(); continue; }
        this.stack.push({ dir, depth: this.depth });
      }
      const top = this.stack[this.stack.length - 1]!;
      const ent = await top.dir.read();
      if (ent === null) {
        await top.dir.close().catch(() => {});
        this.stack.pop();
        if (this.stack.length === 0) this.finish();
        continue;
      }
      if (isQueueId(ent.name)) return ent.name;
      if (top.depth > 0 && /^[0-9A-F]$/.test(ent.name)) {
        const sub = await fsp.opendir(join(top.dir.path, ent.name), { bufferSize: 64 }).catch(() => undefined);
        if (sub) this.stack.push({ dir: sub, depth: top.depth - 1 });
      }
    }
  }

  private finish(): void {
    this.running = false;
    if (this.restart) {
      this.restart = false;
      this.running = true;
      this.flags = this.nextFlags;
      this.nextFlags = { all: false };
    }
  }

  async close(): Promise<void> {
    for (const s of this.stack) await s.dir.close().catch(() => {});
    this.stack = [];
    this.running = false;
    this.restart = false;
  }
}
