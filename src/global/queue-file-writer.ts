/**
 * queue-file-writer - write queue files (Postfix global/mail_stream.c and cleanup/cleanup_out.c),
 * for cleanup and postdrop; what the file holds is queue-file.ts and rec-type.ts.
 *
 * QueueFileWriter.create() creates the file in `incoming/` under its final name at once
 * (Postfix mail_stream.c: mode 0600 = "being written"; qmgr admits only 0700 files). The
 * envelope is added, then the content is streamed as Postfix's N/L records (queue-content.ts),
 * and commit() finishes the file in this order: X, extracted records and E written, C record
 * rewritten in place, fsync (issued at once beside concurrent commits' and flushed with them:
 * util/file-sync.ts), the fsync of its directory (grouped with concurrent ones,
 * util/dir-sync.ts; started right after the create, while the client sends, and not needed on
 * file systems where the file's fsync already makes a new name durable: util/fs-durability.ts),
 * and only then mode 0700, the "ready" mark qmgr admits. Postfix's mail_stream_finish() sets
 * 0700 before its fsync (qmgr is triggered only after it, but a periodic scan could meet the
 * file in between); here the mark never precedes the flush, so qmgr never delivers a message
 * whose client may still get a 4xx and send it again.
 * Only after commit() resolves may smtpd answer 250: nothing acknowledged is lost
 * (DESIGN.md §5). A file committed into another queue (maildrop, hold) is written under a
 * temporary name and renamed after its fsync, then the directory is fsync'd (grouped).
 * abort() removes the file; called while a write or the fsync is in flight (the client left
 * during commit), it closes the descriptor only when that operation ends and the commit then
 * fails: a descriptor number is never used after its close (it may belong to another file).
 */
import { closeSync, fchmodSync, fstatSync, open, promises as fsp, constants as C } from 'node:fs';
import { dirname, join } from 'node:path';
import { ATTR, attrToFile, FILE_ATTR, QF, REC, SIZE_FIELD_WIDTH, SIZE_FIELDS, SMTPUTF8_FLAG_REQUESTED } from './rec-type.ts';
import { writeFullyFd, writeFullySync } from '../util/fs-write.ts';
import { syncFile } from '../util/file-sync.ts';
import { encodeRecord } from './record.ts';
import { ContentEncoder, pointerRecord, PTR_RECORD_LEN } from './queue-content.ts';
import type { MailQueue, QueueName } from './mail-queue.ts';
import { COMMITTED_MODE, newQueueId, type QueueRecipient } from './queue-file.ts';

const SIZE_RECORD_LEN = SIZE_FIELD_WIDTH * SIZE_FIELDS + (SIZE_FIELDS - 1);

function sizeRecordPayload(fields: number[]): string {
  return fields.map((n) => String(n).padStart(SIZE_FIELD_WIDTH, ' ')).join(' ');
}

/** One recipient as Postfix's cleanup writes it (cleanup_out_recipient.c): DSN attributes, O, R. */
function recipientRecords(r: QueueRecipient, maildrop: boolean): Buffer[] {
  const out: Buffer[] = [];
  if (r.notify) out.push(encodeRecord(REC.ATTR, `${FILE_ATTR.DSN_NOTIFY}=${r.notify}`));
  if (r.orcpt) out.push(encodeRecord(REC.ATTR, `${FILE_ATTR.DSN_ORCPT}=${r.orcpt}`));
  // Cleanup writes O for every recipient; a maildrop file is what Postfix's postdrop writes,
  // without O unless the caller gave one (pickup refuses it).
  if (!maildrop || (r.orig !== undefined && r.orig !== r.address)) out.push(encodeRecord(REC.ORCP, r.orig ?? r.address));
  out.push(encodeRecord(r.done ? REC.DONE : REC.RCPT, r.address));
  return out;
}

function attrRecord(name: string, value: string): Buffer {
  const [n, v] = attrToFile(name, value);
  return encodeRecord(REC.ATTR, `${n}=${v}`);
}

let tempSeq = 0;

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
  /** Attributes for the extracted segment (known once the content is written). */
  private readonly trailingAttrs: [string, string][] = [];
  private readonly recipients: QueueRecipient[] = [];
  /** The content filter (REC.FILT) and redirect address (REC.RDR), in the extracted segment. */
  private filter: string | undefined;
  private redirect: string | undefined;
  private readonly extracted: QueueRecipient[] = [];
  private pos = 0;
  /** Offset of the first content record (after M): Postfix's data_offset. */
  private contentStart = -1;
  /** LF text → N/L records (queue-content.ts). */
  private readonly encoder = new ContentEncoder();
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
      w.maildrop = into === 'maildrop';
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
  /** Written for pickup (postdrop): the records Postfix's postdrop writes, nothing of cleanup's. */
  private maildrop = false;
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
  /** An attribute written after the content, in the extracted segment (rec-type.ts ATTR.PREPEND_HEADERS). */
  addTrailingAttr(name: string, value: string): void {
    if (/[\n\0=]/.test(name) || value.includes('\0')) throw new Error(`bad queue file attribute name ${JSON.stringify(name)}`);
    this.trailingAttrs.push([name, value]);
  }
  /** The content filter "transport:nexthop" qmgr sends the message to (Postfix REC_TYPE_FILT). */
  setFilter(filter: string | undefined): void {
    if (filter !== undefined && /[\n\0]/.test(filter)) throw new Error(`bad content filter ${JSON.stringify(filter)}`);
    this.filter = filter || undefined;
  }
  /** A REDIRECT action's address: qmgr delivers there instead (Postfix REC_TYPE_RDR). */
  setRedirect(addr: string | undefined): void {
    if (addr !== undefined && /[\n\0]/.test(addr)) throw new Error(`bad redirect address ${JSON.stringify(addr)}`);
    this.redirect = addr || undefined;
  }
  addRecipient(r: QueueRecipient): void {
    if (this.contentStart >= 0) this.extracted.push(r); else this.recipients.push(r);
  }
  /** Replace (or add) an attribute before the content starts (cleanup: a milter's new DSN RET/ENVID). */
  setAttr(name: string, value: string): void {
    if (this.contentStart >= 0) throw new Error(`${this.queueId}: attributes can no longer be changed`);
    const i = this.attrs.findIndex(([n]) => n === name);
    if (i >= 0) this.attrs.splice(i, 1);
    this.addAttr(name, value);
  }
  /** Drop envelope recipients before the content starts (cleanup: a milter's delete request). */
  removeRecipients(match: (r: QueueRecipient) => boolean): number {
    if (this.contentStart >= 0) throw new Error(`${this.queueId}: recipients can no longer be removed`);
    let n = 0;
    for (let i = this.recipients.length - 1; i >= 0; i--) if (match(this.recipients[i]!)) { this.recipients.splice(i, 1); n++; }
    return n;
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

  /**
   * Write the envelope, the M record and the pointer placeholder (rec-type.ts); after this only
   * content, extracted recipients and trailing attributes.
   */
  beginContent(): void {
    if (this.contentStart >= 0) return;
    this.push(encodeRecord(REC.SIZE, sizeRecordPayload([0, 0, 0, 0, 0, 0])));
    const sec = Math.floor(this.arrival / 1000);
    this.push(encodeRecord(REC.TIME, `${sec} ${(this.arrival % 1000) * 1000}`));
    if (!this.maildrop) this.push(encodeRecord(REC.ATTR, `${FILE_ATTR.CREATE_TIME}=${sec}`));
    this.push(encodeRecord(REC.FROM, this.sender));
    let encoding = false;
    for (const [n, v] of this.attrs) { this.push(attrRecord(n, v)); if (n === ATTR.ENCODING) encoding = true; }
    if (!encoding && this.flags & QF.EIGHTBIT) this.push(attrRecord(ATTR.ENCODING, '8BITMIME'));
    for (const r of this.recipients) for (const b of recipientRecords(r, this.maildrop)) this.push(b);
    this.push(encodeRecord(REC.MESG, ''));
    this.contentStart = this.pos + this.pendingBytes;
    if (!this.maildrop) this.push(pointerRecord(0));
  }

  /** Append message content (LF line endings). Buffers up to 64 KiB between writes. */
  async writeContent(chunk: Buffer): Promise<void> {
    if (this.contentStart < 0) this.beginContent();
    const recs = this.encoder.encode(chunk);
    if (recs.length) this.push(recs);
    if (this.pendingBytes >= 65536) await this.flush();
  }

  /** Finish the file durably and move it into its queue; returns the queue ID. */
  async commit(): Promise<string> {
    this.usable();
    if (this.contentStart < 0) this.beginContent();
    if (this.recipientCount === 0) throw new Error('queue file has no recipients');
    const last = this.encoder.end();
    if (last.length) this.push(last);
    const xtraOffset = this.pos + this.pendingBytes;
    this.push(encodeRecord(REC.XTRA, ''));
    let prepend: string | undefined;
    for (const [n, v] of this.trailingAttrs) {
      if (n === ATTR.PREPEND_HEADERS) prepend = (prepend ?? '') + v;
      else this.push(attrRecord(n, v));
    }
    if (this.filter) this.push(encodeRecord(REC.FILT, this.filter));
    if (this.redirect) this.push(encodeRecord(REC.RDR, this.redirect));
    for (const r of this.extracted) for (const b of recipientRecords(r, this.maildrop)) this.push(b);
    this.push(encodeRecord(REC.END, ''));
    // Header lines known only now go after E, reached through the placeholder after M, and
    // are followed by a pointer back to the content (rec-type.ts).
    let placeholder: Buffer | undefined;
    if (prepend && !this.maildrop) {
      const at = this.pos + this.pendingBytes;
      const enc = new ContentEncoder();
      this.push(enc.encode(Buffer.from(prepend.endsWith('\n') ? prepend : prepend + '\n', 'utf8')));
      this.push(pointerRecord(this.contentStart + PTR_RECORD_LEN));
      placeholder = pointerRecord(at);
    }
    const dataSize = xtraOffset - this.contentStart;
    const qmgrFlags = this.recipients.concat(this.extracted).reduce((f, r) => f | ((r.notify ?? 0) << 1), 0);
    const utf8 = this.flags & QF.SMTPUTF8 ? SMTPUTF8_FLAG_REQUESTED : 0;
    // C is the first record: type byte, one length byte (SIZE_RECORD_LEN < 128), payload.
    const size = Buffer.from(sizeRecordPayload([dataSize, this.contentStart, this.recipientCount, qmgrFlags, dataSize, utf8]));
    if (this.pos === 0) {
      // The whole file is still in memory (a message under 64 KiB): fill in the sizes and
      // write it with one write.
      const all = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = []; this.pendingBytes = 0;
      size.copy(all, 2);
      placeholder?.copy(all, this.contentStart);
      writeFullySync(this.fd, all, 0);
      this.pos = all.length;
    } else {
      await this.flush();
      this.usable();
      // Patch the C record (and the placeholder) now that the sizes are known.
      if (placeholder) writeFullySync(this.fd, placeholder, this.contentStart);
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
    if (this.inPlace && this.target === 'incoming' && this.entrySynced) this.queue.syncDirNow(dir);
    // Issued at once, in flight beside concurrent sessions' commits: one disk commit for all
    // of them (group commit, util/file-sync.ts).
    await this.io((fd) => syncFile(fd, this.queueId));
    this.usable(); // aborted meanwhile: the file is gone, nothing was acknowledged
    // The directory entry too (grouped with concurrent commits: util/dir-sync.ts): without a
    // journal that orders it, a power failure could lose an acknowledged file's name. A file
    // created in place started that fsync at create(), so it is usually done by now.
    if (this.inPlace && this.target === 'incoming') await this.entrySynced;
    if (this.inPlace) {
      // Only now, with the data and the name on stable storage, the "ready" mark qmgr admits
      // (mode 0700; the chmod also wakes qmgr's watch of incoming): qmgr never takes a file
      // whose flush has not returned, so it never delivers a message whose client could still
      // be told anything but 250. Removed by someone else while it was 0600 (a qmgr restarting
      // in another process takes 0600 files older than itself for a dead writer's): the data
      // went nowhere, so no 250. A crash after the 250 and before the mode reaches the disk
      // leaves a complete 0600 file, which qmgr's start-up commits and delivers
      // (qmgr-active.ts removeUncommitted()).
      this.usable();
      if (fstatSync(this.fd).nlink === 0) throw new Error(`${this.queueId}: queue file was removed while being written`);
      fchmodSync(this.fd, COMMITTED_MODE);
    }
    this.closeFd();
    if (this.inPlace && this.target === 'incoming') return this.queueId;
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
