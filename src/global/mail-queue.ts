/**
 * mail-queue - queue names, queue IDs and paths; moving files between queues (Postfix
 * global/mail_queue.c, util/dir_forest.c).
 *
 * Queues are directories under `queue_directory`: maildrop incoming active deferred hold corrupt
 * bounce defer trace (DESIGN.md §3.1). Queues named in `hash_queue_names` are split into
 * `hash_queue_depth` levels of one-character subdirectories taken from the queue ID, as Postfix
 * does, so that a queue of 100,000 files does not make one huge directory.
 *
 * Queue IDs are upper-case hex, first the five hex digits of the microseconds of the creation
 * time (they spread the hashed subdirectories). New files get time-based IDs (microseconds,
 * seconds, process ID: newQueueId() in queue-file.ts, which documents why they are unique);
 * files written before that carry Postfix's short form (microseconds, then the inode number).
 * A queue ID stays with its file when it moves between queues.
 *
 * Durability: a new file is fsync'd before it is renamed into its queue, and the directory is
 * fsync'd after the rename (DirSync groups the directory fsyncs of concurrent commits, so many
 * sessions share one — group commit, never skipped).
 */
import { mkdirSync, promises as fsp, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { MainConfig } from './mail-conf.ts';
import { syncDirGrouped, syncDirNow } from '../util/dir-sync.ts';
import { newNamesDurableWithFileFsync } from '../util/fs-durability.ts';

export const QUEUE_NAMES = ['maildrop', 'incoming', 'active', 'deferred', 'hold', 'corrupt', 'bounce', 'defer', 'trace', 'saved', 'flush'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

const QID_RE = /^[0-9A-F]{6,}$/;

/** Is this a well-formed (short) Postfix queue ID? */
export function isQueueId(s: string): boolean {
  return QID_RE.test(s) && s.length <= 32;
}

export interface MailQueueOptions {
  /** hash_queue_depth (default 1) */
  hashDepth?: number;
  /** hash_queue_names (default deferred, defer) */
  hashNames?: readonly string[];
}

export class MailQueue {
  readonly dir: string;
  readonly hashDepth: number;
  readonly hashNames: ReadonlySet<string>;

  constructor(queueDirectory: string, opts: MailQueueOptions = {}) {
    this.dir = queueDirectory;
    this.hashDepth = opts.hashDepth ?? 1;
    this.hashNames = new Set(opts.hashNames ?? ['deferred', 'defer']);
  }

  /** The queue main.cf describes: queue_directory, hash_queue_depth, hash_queue_names. */
  static fromConfig(config: Pick<MainConfig, 'get' | 'int' | 'list'>): MailQueue {
    return new MailQueue(config.get('queue_directory'), {
      hashDepth: config.int('hash_queue_depth'),
      hashNames: config.list('hash_queue_names'),
    });
  }

  /** Create the queue directories (mode 0700, like Postfix's private queue). */
  ensureDirs(): void {
    for (const q of QUEUE_NAMES) mkdirSync(join(this.dir, q), { recursive: true, mode: 0o700 });
    mkdirSync(join(this.dir, 'pid'), { recursive: true, mode: 0o755 });
    mkdirSync(join(this.dir, 'private'), { recursive: true, mode: 0o700 });
    mkdirSync(join(this.dir, 'public'), { recursive: true, mode: 0o710 });
  }

  /** The directory a queue file of this queue and ID lives in (with hashed subdirectories). */
  dirOf(queue: QueueName, qid: string): string {
    if (!this.hashNames.has(queue) || this.hashDepth <= 0) return join(this.dir, queue);
    const parts = [this.dir, queue];
    for (let i = 0; i < this.hashDepth && i < qid.length; i++) parts.push(qid[i]!);
    return join(...parts);
  }

  path(queue: QueueName, qid: string): string {
    return join(this.dirOf(queue, qid), qid);
  }

  /** fsync the directory that holds (or held) this entry, shared with concurrent callers. */
  syncDir(dir: string, gatherMs = 0): Promise<void> {
    return syncDirGrouped(dir, gatherMs);
  }

  /** Issue now a syncDir(dir, gatherMs) that is still gathering callers. */
  syncDirNow(dir: string): void { syncDirNow(dir); }

  private readonly namesDurable = new Map<string, boolean>();
  /**
   * A file created in `dir` has a durable name once the file itself is fsync'd (ext3/ext4/XFS/
   * btrfs, util/fs-durability.ts): its directory needs no fsync of its own. Asked once per
   * directory.
   */
  newNamesDurable(dir: string): boolean {
    let v = this.namesDurable.get(dir);
    if (v === undefined) { v = newNamesDurableWithFileFsync(dir); this.namesDurable.set(dir, v); }
    return v;
  }

  /**
   * Move a queue file from one queue to another (rename; the queue ID stays). With durable=true
   * the destination directory is fsync'd before returning.
   */
  async move(qid: string, from: QueueName, to: QueueName, durable = true): Promise<void> {
    const dst = this.dirOf(to, qid);
    try {
      await fsp.rename(this.path(from, qid), join(dst, qid));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || dst === join(this.dir, to)) throw e;
      await fsp.mkdir(dst, { recursive: true, mode: 0o700 });
      await fsp.rename(this.path(from, qid), join(dst, qid));
    }
    if (durable) await this.syncDir(dst);
  }

  /**
   * move() as one synchronous rename(2), without the directory fsync (qmgr's incoming/deferred →
   * active: a crash that loses it leaves the file where it was, which is as good). qmgr runs in a
   * thread of its own, where this costs microseconds instead of a thread-pool round trip.
   */
  moveNow(qid: string, from: QueueName, to: QueueName): void {
    const dst = this.dirOf(to, qid);
    try {
      renameSync(this.path(from, qid), join(dst, qid));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || dst === join(this.dir, to)) throw e;
      mkdirSync(dst, { recursive: true, mode: 0o700 });
      renameSync(this.path(from, qid), join(dst, qid));
    }
  }

  /** Every queue ID in a queue (walking hashed subdirectories); temp files are skipped. */
  async *list(queue: QueueName): AsyncIterable<string> {
    yield* this.walk(join(this.dir, queue), this.hashNames.has(queue) ? this.hashDepth : 0);
  }

  private async *walk(dir: string, depth: number): AsyncIterable<string> {
    let names: string[];
    try { names = await fsp.readdir(dir); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const n of names) {
      if (isQueueId(n)) yield n;
      else if (depth > 0 && /^[0-9A-F]$/.test(n)) yield* this.walk(join(dir, n), depth - 1);
    }
  }
}
