/**
 * queue-file - write and read queue files (the format is CONTRACT 1, documented in rec-type.ts).
 *
 * Writing (cleanup): QueueFileWriter.create() creates the file in `incoming/` under its final
 * name at once (Postfix mail_stream.c: mode 0600 = "being written"; qmgr admits only 0700 files
 * and removes 0600 leftovers of a crash at its start). The envelope is added, then the content
 * is streamed, and commit() finishes the file: E record, C record rewritten in place, mode 0700,
 * fsync; the fsync of its directory (grouped with concurrent ones, util/dir-sync.ts) starts
 * right after the create, while the client sends, and commit() waits for it too — except on
 * file systems where the file's fsync already makes a new name durable (util/fs-durability.ts).
 * Only after commit() resolves may smtpd answer 250: nothing acknowledged is lost
 * (DESIGN.md §5). A file committed into another queue (maildrop, hold) is written under a
 * temporary name and renamed after its fsync, then the directory is fsync'd (grouped).
 * abort() removes the file; called while a write or the fsync is in flight (the client left
 * during commit), it closes the descriptor only when that operation ends and the commit then
 * fails: a descriptor number is never used after its close (it may belong to another file).
 *
 * Queue IDs (newQueueId): not derived from the inode (that needed a temporary name, an fstat
 * and a rename before the first byte), but from the creation time, like Postfix's long queue
 * IDs, in the short form's upper-case hex: 5 digits of microseconds, 8 digits of seconds, then
 * the process ID. A process's IDs strictly increase (a monotonic clock, bumped by one
 * microsecond when two fall in the same one), and the process ID separates processes, so an ID
 * is unique among live queue files; O_EXCL on the final name (retried with the next ID) covers
 * the rest (a pid reused after the clock went backwards).
 *
 * Reading (qmgr, agents, postcat): QueueFile.open() reads the envelope and extracted segments
 * (not the content), giving the sender, attributes and recipients with their offsets;
 * markDone() rewrites one recipient's R to D in place and fsyncs; contentStream() streams the
 * message.
 */
import { closeSync, createReadStream, fchmodSync, fstatSync, open, openSync, promises as fsp, readSync, constants as C } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { ATTR, REC, SIZE_FIELD_WIDTH, SIZE_FIELDS, ENVELOPE_TYPES, EXTRACT_TYPES } from './rec-type.ts';
import { fsyncFd, writeFully, writeFullyFd, writeFullySync } from '../util/fs-write.ts';
import { decodeRecords, encodeRecord, RecordError } from './record.ts';
import type { MailQueue, QueueName } from './mail-queue.ts';

export interface QueueRecipient {
  /** The recipient address after rewriting ('' never occurs: the null address is sender-only). */
  address: string;
  /** The address as the client gave it (RFC 3461 Original-Recipient when no ORCPT). */
  orig?: string;
  /** DSN NOTIFY bits (DSN_NOTIFY), 0 = unspecified. */
  notify?: number;
  /** DSN ORCPT "type;address" (RFC 3461 §4.2). */
  orcpt?: string;
  /** Offset of the R/D record's type byte (reading only). */
  offset?: number;
  /** Already delivered (D record). */
  done?: boolean;
}

export interface QueueEnvelope {
  queueId: string;
  /** Arrival time, ms since the epoch. */
  arrival: number;
  sender: string;
  attrs: Map<string, string>;
  recipients: QueueRecipient[];
  contentOffset: number;
  contentLength: number;
  flags: number;
}

const SIZE_RECORD_LEN = SIZE_FIELD_WIDTH * SIZE_FIELDS + (SIZE_FIELDS - 1);
/** The M record's length is written as a 6-byte varint so it can be patched after streaming. */
const MESG_LEN_BYTES = 6;

function sizeRecordPayload(fields: number[]): string {
  return fields.map((n) => String(n).padStart(SIZE_FIELD_WIDTH, ' ')).join(' ');
}

function paddedVarint(n: number, width: number): Buffer {
  const b = Buffer.alloc(width);
  for (let i = 0; i < width; i++) {
    b[i] = (n % 128) | (i < width - 1 ? 0x80 : 0);
    n = Math.floor(n / 128);
  }
  if (n > 0) throw new RangeError('message too large for queue file');
  return b;
}

function recipientRecords(r: QueueRecipient): Buffer[] {
  const out: Buffer[] = [];
  if (r.orig !== undefined && r.orig !== r.address) out.push(encodeRecord(REC.ORCP, r.orig));
  if (r.notify) out.push(encodeRecord(REC.DSN_NOTIFY, String(r.notify)));
  if (r.orcpt) out.push(encodeRecord(REC.DSN_ORCPT, r.orcpt));
  out.push(encodeRecord(r.done ? REC.DONE : REC.RCPT, r.address));
  return out;
}

let tempSeq = 0;

/** The last queue ID time of this process, µs since the epoch: IDs strictly increase. */
let lastIdMicros = 0;

/**
 * A new queue ID (see the header): µs (5 hex digits) + seconds (8) + process ID, upper-case hex,
 * so it passes isQueueId() and the first character still spreads hashed queue directories.
 */
export function newQueueId(): string {
  // timeOrigin + now(): wall-clock time that never goes backwards within the process.
  let us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  if (us <= lastIdMicros) us = lastIdMicros + 1;
  lastIdMicros = us;
  const secs = Math.floor(us / 1_000_000);
  const usec = us - secs * 1_000_000;
  return (usec.toString(16).padStart(5, '0') + secs.toString(16).padStart(8, '0') + process.pid.toString(16)).toUpperCase();
}

/**
 * The process ID inside a queue ID made by newQueueId() (what follows the 13 digits of time),
 * or undefined for another form (a Postfix queue ID, a migrated queue).
 */
export function queueIdWriterPid(queueId: string): number | undefined {
  if (!/^[0-9A-F]{14,21}$/.test(queueId)) return undefined;
  const pid = parseInt(queueId.slice(13), 16);
  return pid > 0 && pid <= 4_194_304 ? pid : undefined;  // Linux pid_max is at most 2^22
}

/** open(2) in the thread pool, for a plain descriptor. */
function openFd(path: string, flags: number, mode: number): Promise<number> {
  return new Promise((res, rej) => open(path, flags, mode, (e, fd) => (e ? rej(e) : res(fd))));
}

/**
 * O_EXCL create, mode 0600; a hashed directory (hash_queue_names with incoming) is made on demand.
 * In the thread pool, unlike commit()'s write/chmod/close: allocating an inode can be slow (ext4
 * without a journal scans recently freed inodes, 15% of smtpd's thread in a profile), and in
 * the pool it runs beside the event loop (measured 7-10% more e2e throughput than a
 * synchronous open; `node bench/e2e-bench.ts --postern-only`).
 */
async function openNew(path: string, hashed: boolean): Promise<number> {
  try {
    return await openFd(path, C.O_CREAT | C.O_EXCL | C.O_RDWR, 0o600);
  } catch (e) {
    if (!hashed || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await fsp.mkdir(dirname(path), { recursive: true, mode: 0o700 });
    return await openFd(path, C.O_CREAT | C.O_EXCL | C.O_RDWR, 0o600);
  }
}

/**
 * How long the fsync of incoming/ after a create waits for other creates to share it, unless a
 * commit needs it first (util/dir-sync.ts). Measured (bench/e2e-bench.ts, 20 sessions): one
 * fsync per create cost 12% of the rate on an ext4 without journal; 20 ms gathering, none.
 */
const ENTRY_SYNC_GATHER_MS = 20;

/** Mode of a finished queue file in incoming; a file being written is 0600 (Postfix). */
export const COMMITTED_MODE = 0o700;

export class QueueFileWriter {
  readonly queueId: string;
  private readonly queue: MailQueue;
  /**
   * The open file, a plain descriptor: commit() writes a small file, changes its mode and closes
   * it synchronously (page-cache and inode updates, cheaper on the event loop than thread-pool
   * round trips); create()'s open, large writes and the fsync run in the thread pool.
   */
  private readonly fd: number;
  private readonly arrival: number;
  private sender = '';
  private readonly attrs: [string, string][] = [];
  private readonly recipients: QueueRecipient[] = [];
  private readonly extracted: QueueRecipient[] = [];
  private pos = 0;
  private contentStart = -1;
  private contentLength = 0;
  private mesgLenOffset = -1;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flags = 0;
  /** The descriptor is closed (after commit or abort): it must never be used again. */
  private closed = false;
  /** Thread-pool operations in flight on the descriptor; abort() closes it only when none is. */
  private busy = 0;
  /** abort() was called while an operation was in flight: close when it ends. */
  private closeWhenIdle = false;

  private constructor(queue: MailQueue, fd: number, path: string, queueId: string, arrival: number) {
    this.queue = queue; this.fd = fd; this.queueId = queueId; this.arrival = arrival;
    this.path = path;
  }

  /** Open a new queue file in `incoming` (or `maildrop` for postdrop). */
  static async create(queue: MailQueue, into: QueueName = 'incoming'): Promise<QueueFileWriter> {
    const now = Date.now();
    if (into !== 'incoming') {
      const qid = newQueueId();
      const tempPath = join(queue.dirOf(into, ''), `t${process.pid}.${++tempSeq}.${now.toString(36)}`);
      const fd = await openFd(tempPath, C.O_CREAT | C.O_EXCL | C.O_RDWR, 0o600);
      const w = new QueueFileWriter(queue, fd, tempPath, qid, now);
      w.target = into;
      return w;
    }
    for (let attempt = 0; ; attempt++) {
      const qid = newQueueId();
      const dir = queue.dirOf('incoming', qid);
      const path = join(dir, qid);
      let fd: number;
      try {
        fd = await openNew(path, dir !== queue.dirOf('incoming', ''));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 8) continue;
        throw e;
      }
      const w = new QueueFileWriter(queue, fd, path, qid, now);
      w.inPlace = true;
      // The new name reaches the disk while the client is still sending (commit() waits for it).
      // Alone, at once; among other files being written, one fsync of incoming/ for the files
      // created within ENTRY_SYNC_GATHER_MS, issued at the latest when the first of them commits.
      // Not needed where the file's own fsync makes its name durable (ext3/4, XFS, btrfs).
      const gather = ++QueueFileWriter.openInIncoming > 1 ? ENTRY_SYNC_GATHER_MS : 0;
      if (!queue.newNamesDurable(dir)) {
        w.entrySynced = queue.syncDir(dir, gather);
        w.entrySynced.catch(() => { /* commit() reports it */ });
      }
      return w;
    }
  }
  private target: QueueName = 'incoming';
  /** Where the file is (its temporary name, or its final name in incoming). */
  private path: string;
  /** The file already has its final name in `incoming` (mode 0600 until commit). */
  private inPlace = false;
  /** Files of this process being written in incoming/ (created in place, not closed yet). */
  private static openInIncoming = 0;
  /** The fsync of incoming/ started right after the create (in-place files only). */
  private entrySynced: Promise<void> | undefined;
  /** Commit into another queue than the one given to create() (cleanup: a HOLD action → 'hold'). */
  setTarget(into: QueueName): void { this.target = into; }

  setSender(sender: string): void { this.sender = sender; }
  addAttr(name: string, value: string): void {
    if (/[\n\0=]/.test(name) || value.includes('\0')) throw new Error(`bad queue file attribute name ${JSON.stringify(name)}`);
    this.attrs.push([name, value]);
  }
  addRecipient(r: QueueRecipient): void {
    if (this.contentStart >= 0) this.extracted.push(r); else this.recipients.push(r);
  }
  setFlags(flags: number): void { this.flags |= flags; }
  get recipientCount(): number { return this.recipients.length + this.extracted.length; }

  private push(b: Buffer): void { this.pending.push(b); this.pendingBytes += b.length; }
  /**
   * The descriptor may be used: not closed and not being aborted. A plain descriptor's number is
   * reused by the next open(): using it after close() would write into another file.
   */
  private usable(): void {
    if (this.closed || this.closeWhenIdle) throw new Error(`${this.queueId}: queue file was aborted`);
  }

  /** Run a thread-pool operation on the descriptor (abort() waits for it before closing). */
  private async io<T>(op: (fd: number) => Promise<T>): Promise<T> {
    this.usable();
    this.busy++;
    try {
      return await op(this.fd);
    } finally {
      if (--this.busy === 0 && this.closeWhenIdle) this.closeFd();
    }
  }

  private closeFd(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.inPlace) QueueFileWriter.openInIncoming--;
    try { closeSync(this.fd); } catch { /* nothing more to do with it */ }
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = []; this.pendingBytes = 0;
    const at = this.pos;
    await this.io((fd) => writeFullyFd(fd, buf, at));
    this.pos += buf.length;
  }

  /** Write the envelope and the M record header; after this only content and extracted recipients. */
  beginContent(): void {
    if (this.contentStart >= 0) return;
    this.push(encodeRecord(REC.SIZE, sizeRecordPayload([0, 0, 0, 0, 0])));
    this.push(encodeRecord(REC.TIME, `${Math.floor(this.arrival / 1000)} ${(this.arrival % 1000) * 1000}`));
    this.push(encodeRecord(REC.FROM, this.sender));
    for (const [n, v] of this.attrs) this.push(encodeRecord(REC.ATTR, `${n}=${v}`));
    for (const r of this.recipients) for (const b of recipientRecords(r)) this.push(b);
    const head = Buffer.from([REC.MESG.charCodeAt(0)]);
    this.push(head);
    this.mesgLenOffset = this.pos + this.pendingBytes;
    this.push(paddedVarint(0, MESG_LEN_BYTES));
    this.contentStart = this.pos + this.pendingBytes;
  }

  /** Append message content (LF line endings). Buffers up to 64 KiB between writes. */
  async writeContent(chunk: Buffer): Promise<void> {
    if (this.contentStart < 0) this.beginContent();
    this.push(chunk);
    this.contentLength += chunk.length;
    if (this.pendingBytes >= 65536) await this.flush();
  }

  /** Finish the file durably and move it into its queue; returns the queue ID. */
  async commit(): Promise<string> {
    this.usable();
    if (this.contentStart < 0) this.beginContent();
    if (this.recipientCount === 0) throw new Error('queue file has no recipients');
    if (this.extracted.length) {
      this.push(encodeRecord(REC.XTRA, ''));
      for (const r of this.extracted) for (const b of recipientRecords(r)) this.push(b);
    }
    this.push(encodeRecord(REC.END, ''));
    const mesgLen = paddedVarint(this.contentLength, MESG_LEN_BYTES);
    // C is the first record: type byte, one length byte (SIZE_RECORD_LEN < 128), payload.
    const size = Buffer.from(sizeRecordPayload([this.contentStart, this.contentLength, this.recipientCount, this.flags, 0]));
    if (this.pos === 0) {
      // The whole file is still in memory (a message under 64 KiB): fill in the sizes and
      // write it with one write.
      const all = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = []; this.pendingBytes = 0;
      mesgLen.copy(all, this.mesgLenOffset);
      size.copy(all, 2);
      writeFullySync(this.fd, all, 0);
      this.pos = all.length;
    } else {
      await this.flush();
      this.usable();
      // Patch the M length and the C record now that the sizes are known.
      writeFullySync(this.fd, mesgLen, this.mesgLenOffset);
      writeFullySync(this.fd, size, 2);
    }
    const dir = this.queue.dirOf(this.target, this.queueId);
    let moved = false;
    if (this.inPlace && this.target !== 'incoming') {
      // Diverted (a HOLD action): leave incoming while still 0600 ("being written"), so qmgr,
      // which admits 0700 files and is woken by the chmod, never takes it on its way to hold.
      await this.moveInto(dir);
      this.usable();
      moved = true;
    }
    if (this.inPlace) {
      // Removed by someone else while it was 0600 (a qmgr restarting in another process takes
      // 0600 files older than itself for a dead writer's): the data went nowhere, so no 250.
      // Checked before the chmod: from 0700 on, qmgr may take, deliver and remove the file
      // before our fsync returns, which is fine.
      if (fstatSync(this.fd).nlink === 0) throw new Error(`${this.queueId}: queue file was removed while being written`);
      fchmodSync(this.fd, COMMITTED_MODE);
    }
    if (this.inPlace && this.target === 'incoming' && this.entrySynced) this.queue.syncDirNow(dir);
    await this.io((fd) => fsyncFd(fd));
    this.usable(); // aborted meanwhile: the file is gone, nothing was acknowledged
    this.closeFd();
    // The directory entry too (grouped with concurrent commits: util/dir-sync.ts): without a
    // journal that orders it, a power failure could lose an acknowledged file's name. A file
    // created in place started that fsync at create(), so it is usually done by now.
    if (this.inPlace && this.target === 'incoming') {
      await this.entrySynced;
      return this.queueId;
    }
    if (!moved) await this.moveInto(dir);
    await this.queue.syncDir(dir);
    return this.queueId;
  }

  /** Rename the file into `dir` under its queue ID (creating a missing hashed subdirectory). */
  private async moveInto(dir: string): Promise<void> {
    const to = join(dir, this.queueId);
    await fsp.rename(this.path, to).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
      await fsp.rename(this.path, to);
    });
    this.path = to;
  }

  async abort(): Promise<void> {
    if (this.busy > 0) this.closeWhenIdle = true; else this.closeFd();
    await fsp.unlink(this.path).catch(() => {});
  }
}

if (SIZE_RECORD_LEN >= 128) throw new Error('size record must fit a one-byte length');

/** The most content bytes QueueFile.open({ keepContent }) keeps in memory at once, per process. */
export const KEPT_CONTENT_MAX = 8 * 1024 * 1024;
/** A QueueFile collected with its content still kept gives the bytes back to the budget. */
const keptRegistry = new FinalizationRegistry<number>((bytes) => QueueFile.releaseKept(bytes));

/** read(2) until `buf` is full, from `position`; a file shorter than expected is corrupt. */
function readFullySync(fd: number, buf: Buffer, position: number): void {
  let off = 0;
  while (off < buf.length) {
    const n = readSync(fd, buf, off, buf.length - off, position + off);
    if (n <= 0) throw new QueueFileError(`short read at offset ${position + off}: file truncated`);
    off += n;
  }
}

export class QueueFileError extends Error {
  override name = 'QueueFileError';
}

/** A queue file opened for delivery or inspection. */
export class QueueFile implements QueueEnvelope {
  readonly path: string;
  queueId: string;
  arrival = 0;
  sender = '';
  attrs = new Map<string, string>();
  recipients: QueueRecipient[] = [];
  contentOffset = 0;
  contentLength = 0;
  flags = 0;

  private constructor(path: string, queueId: string) { this.path = path; this.queueId = queueId; }

  /**
   * Read the envelope and extracted segments. Throws QueueFileError for a corrupt/incomplete
   * file. With keepContent, a file read whole (up to 64 KiB) also keeps its content for the first
   * content() call (qmgr: the delivery agent then writes it without reading the file again),
   * within a process-wide budget of KEPT_CONTENT_MAX bytes.
   *
   * The reads are synchronous system calls, as in Postfix's qmgr: a queue file was written
   * moments ago and is in the page cache, where a read takes microseconds and a thread-pool
   * round trip costs two context switches.
   */
  static async open(path: string, queueId: string, opts: { keepContent?: boolean } = {}): Promise<QueueFile> {
    const qf = new QueueFile(path, queueId);
    const fd = openSync(path, C.O_RDONLY);
    try {
      const st = fstatSync(fd);
      const head = Buffer.allocUnsafe(Math.min(st.size, 65536));
      readFullySync(fd, head, 0);
      const first = decodeRecords(head).next();
      if (first.done || first.value.type !== REC.SIZE) throw new QueueFileError(`${queueId}: no size record: not a queue file`);
      const nums = first.value.data.toString('latin1').trim().split(/\s+/).map(Number);
      const [contentOffset = NaN, contentLength = NaN, , flags = 0] = nums;
      if (!Number.isSafeInteger(contentOffset) || !Number.isSafeInteger(contentLength) || contentOffset <= 0 || contentLength < 0 || contentOffset + contentLength > st.size) {
        throw new QueueFileError(`${queueId}: bad size record (incomplete file?)`);
      }
      qf.contentOffset = contentOffset; qf.contentLength = contentLength; qf.flags = flags;
      const whole = head.length === st.size;
      let env = head;
      if (contentOffset > head.length) {
        env = Buffer.allocUnsafe(contentOffset);
        readFullySync(fd, env, 0);
      }
      const tailStart = contentOffset + contentLength;
      let tail: Buffer;
      if (whole) tail = head.subarray(tailStart);
      else {
        tail = Buffer.allocUnsafe(st.size - tailStart);
        readFullySync(fd, tail, tailStart);
      }
      // The M record header (type byte + padded length) ends the envelope.
      qf.parseSegment(env.subarray(0, contentOffset - 1 - MESG_LEN_BYTES), 0, ENVELOPE_TYPES, true);
      const sawEnd = qf.parseSegment(tail, tailStart, EXTRACT_TYPES, false);
      if (!sawEnd) throw new QueueFileError(`${queueId}: no end record: incomplete queue file`);
      if (opts.keepContent && whole && QueueFile.keptBytes + contentLength <= KEPT_CONTENT_MAX) {
        // A copy: a subarray would pin the whole head buffer, envelope included.
        qf.kept = Buffer.from(head.subarray(contentOffset, tailStart));
        QueueFile.keptBytes += contentLength;
        keptRegistry.register(qf, contentLength, qf);
      }
    } catch (e) {
      if (e instanceof RecordError) throw new QueueFileError(`${queueId}: ${e.message}`);
      throw e;
    } finally {
      closeSync(fd);
    }
    return qf;
  }

  /** Content kept by open({ keepContent }) and not yet taken; bytes kept by all queue files. */
  private kept: Buffer | undefined;
  private static keptBytes = 0;
  /** @internal for keptRegistry */
  static releaseKept(bytes: number): void { QueueFile.keptBytes -= bytes; }

  /** Give up the kept content (the message left the active queue without using it). */
  dropContent(): void {
    if (!this.kept) return;
    QueueFile.keptBytes -= this.kept.length;
    keptRegistry.unregister(this);
    this.kept = undefined;
  }

  /** Returns true when the E record was seen. Offsets in `buf` are relative to `base`. */
  private parseSegment(buf: Buffer, base: number, allowed: ReadonlySet<string>, envelope: boolean): boolean {
    let cur: QueueRecipient = { address: '' };
    const fresh = () => { cur = { address: '' }; };
    fresh();
    for (const rec of decodeRecords(buf)) {
      const t = rec.type;
      if (envelope && t === REC.MESG) return false;
      if (!envelope && (t === REC.XTRA)) continue;
      if (!envelope && t === REC.MESG) continue;
      if (t === REC.END) return true;
      if (!allowed.has(t)) throw new QueueFileError(`${this.queueId}: unexpected record type '${t}' at offset ${base + rec.offset}`);
      const v = rec.data.toString('utf8');
      switch (t) {
        case REC.SIZE: break;
        case REC.TIME: this.arrival = Math.round(Number(v.split(' ')[0]) * 1000 + Number(v.split(' ')[1] ?? 0) / 1000); break;
        case REC.FROM: this.sender = v; break;
        case REC.ATTR: { const i = v.indexOf('='); if (i > 0) this.attrs.set(v.slice(0, i), v.slice(i + 1)); break; }
        case REC.ORCP: cur.orig = v; break;
        case REC.DSN_NOTIFY: cur.notify = Number(v) | 0; break;
        case REC.DSN_ORCPT: cur.orcpt = v; break;
        case REC.RCPT: case REC.DONE:
          cur.address = v; cur.offset = base + rec.offset; cur.done = t === REC.DONE;
          if (cur.orig === undefined) cur.orig = v;
          this.recipients.push(cur); fresh();
          break;
        case REC.WARN: break;
      }
    }
    return false;
  }

  /** Mark one recipient delivered: R → D in place, then fsync (Postfix deliver_completed()). */
  async markDone(r: QueueRecipient, fh?: FileHandle): Promise<void> {
    if (r.offset === undefined) throw new Error('recipient without offset');
    const own = fh ?? await fsp.open(this.path, C.O_RDWR);
    try {
      await writeFully(own, Buffer.from(REC.DONE), r.offset);
      await own.datasync();
      r.done = true;
    } finally {
      if (!fh) await own.close();
    }
  }

  /** The message as stored (LF line endings). */
  contentStream(): Readable {
    if (this.contentLength === 0) return Readable.from([]);
    return createReadStream(this.path, { start: this.contentOffset, end: this.contentOffset + this.contentLength - 1 });
  }

  /** The message as stored; the first call after open({ keepContent }) needs no read. */
  async content(): Promise<Buffer> {
    const kept = this.kept;
    if (kept) { this.dropContent(); return kept; }
    const fh = await fsp.open(this.path, C.O_RDONLY);
    try {
      const b = Buffer.alloc(this.contentLength);
      await fh.read(b, 0, b.length, this.contentOffset);
      return b;
    } finally { await fh.close(); }
  }

  get undone(): QueueRecipient[] { return this.recipients.filter((r) => !r.done); }
  attr(name: (typeof ATTR)[keyof typeof ATTR] | string): string | undefined { return this.attrs.get(name); }
}
