/**
 * queue-file-reader - read queue files, for qmgr, the delivery agents and postcat (Postfix
 * qmgr/qmgr_message.c and the agents' deliver_request reading); what the file holds is
 * queue-file.ts and rec-type.ts, the writer queue-file-writer.ts.
 *
 * QueueFile.open() reads the envelope and extracted segments (not the content), giving the
 * sender, attributes and recipients with their offsets; markDone() rewrites one recipient's R to
 * D in place and fsyncs; contentStream() streams the message.
 */
import { closeSync, createReadStream, fstatSync, openSync, promises as fsp, readSync, constants as C } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ATTR, REC, ENVELOPE_TYPES, EXTRACT_TYPES } from './rec-type.ts';
import { writeFully } from '../util/fs-write.ts';
import { decodeRecords, RecordError } from './record.ts';
import { MESG_LEN_BYTES, type QueueEnvelope, type QueueRecipient } from './queue-file.ts';

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
  /** The content filter "transport:nexthop" (REC.FILT), the last one in the file. */
  filter: string | undefined;
  /** The redirect address (REC.RDR), the last one in the file. */
  redirect: string | undefined;

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
        case REC.FILT: this.filter = v || undefined; break;
        case REC.RDR: this.redirect = v || undefined; break;
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

  /** Header lines cleanup added after the content (ATTR.PREPEND_HEADERS), given before it. */
  get prependedHeaders(): Buffer | undefined {
    const h = this.attrs.get(ATTR.PREPEND_HEADERS);
    return h ? Buffer.from(h, 'utf8') : undefined;
  }

  /** The message (LF line endings): the prepended headers, then the content as stored. */
  contentStream(): Readable {
    const pre = this.prependedHeaders;
    if (this.contentLength === 0) return Readable.from(pre ? [pre] : []);
    const file = createReadStream(this.path, { start: this.contentOffset, end: this.contentOffset + this.contentLength - 1 });
    if (!pre) return file;
    return Readable.from((async function* () { yield pre; yield* file; })());
  }

  /** The message as contentStream() gives it; the first call after open({ keepContent }) needs no read. */
  async content(): Promise<Buffer> {
    const pre = this.prependedHeaders;
    const kept = this.kept;
    if (kept) { this.dropContent(); return pre ? Buffer.concat([pre, kept]) : kept; }
    const fh = await fsp.open(this.path, C.O_RDONLY);
    try {
      const b = Buffer.alloc(this.contentLength);
      await fh.read(b, 0, b.length, this.contentOffset);
      return pre ? Buffer.concat([pre, b]) : b;
    } finally { await fh.close(); }
  }

  get undone(): QueueRecipient[] { return this.recipients.filter((r) => !r.done); }
  attr(name: (typeof ATTR)[keyof typeof ATTR] | string): string | undefined { return this.attrs.get(name); }
}
