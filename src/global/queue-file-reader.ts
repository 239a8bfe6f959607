/**
 * queue-file-reader - read queue files, for qmgr, the delivery agents and postcat (Postfix
 * qmgr/qmgr_message.c and the agents' deliver_request reading); what the file holds is
 * queue-file.ts and rec-type.ts, the writer queue-file-writer.ts.
 *
 * QueueFile.open() reads the envelope and extracted segments as Postfix's qmgr does: records
 * from the start of the file, following pointer records, skipping the content by the C record's
 * size when reading reaches its offset, then the X record, then up to E. It gives the sender,
 * attributes and recipients with their offsets. A file of up to 64 KiB is read whole and its
 * content checked too. markDone() rewrites one recipient's R to D in place and fsyncs;
 * content() and contentStream() give the message as LF text.
 *
 * A malformed file throws QueueFileError with Postfix's warning text (qmgr moves the file to
 * corrupt/): "too many length bits, record type 77", "unexpected EOF in data, record type 78
 * length 100", "Unexpected record type 'Z' at offset 123", "message rejected: missing end
 * record", "invalid size record: ...". A NUL byte in an envelope record (sender, recipient,
 * attribute) is refused too: Postfix would silently cut the address there.
 *
 * Files written by older Postern versions (the content as one M record with a 6-byte padded
 * length, a five-field C record pointing at it) are recognised by that exact structure and read
 * as before, so a queue left by an upgrade is still delivered.
 */
import { closeSync, fstatSync, openSync, promises as fsp, readSync, constants as C } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { basename, dirname } from 'node:path';
import { ATTR, attrFromFile, ENVELOPE_TYPES, FILE_ATTR, QF, REC, SMTPUTF8_FLAG_REQUESTED } from './rec-type.ts';
import { writeFully } from '../util/fs-write.ts';
import { recordAt, RecordError, type Rec } from './record.ts';
import { ContentReader, parsePointer, readContent } from './queue-content.ts';
import type { QueueEnvelope, QueueRecipient } from './queue-file.ts';

/** Older Postern files: the M record's padded length (see the header). */
const LEGACY_MESG_LEN_BYTES = 6;

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

interface Region { base: number; buf: Buffer }

function readRegion(fd: number, at: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  readFullySync(fd, b, at);
  return b;
}

/**
 * An older Postern file: a five-field C record whose content offset is right after an M record
 * with a 6-byte length equal to the C record's content length (a structure Postfix never writes:
 * its M record is empty and its length takes one byte).
 */
function isLegacy(head: Buffer, nums: number[]): boolean {
  if (nums.length !== 5) return false;
  const [off = 0, len = -1] = nums;
  const m = off - 1 - LEGACY_MESG_LEN_BYTES;
  if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || m <= 0 || off > head.length || head[m] !== REC.MESG.charCodeAt(0)) return false;
  let n = 0;
  for (let i = LEGACY_MESG_LEN_BYTES - 1; i >= 0; i--) {
    const b = head[m + 1 + i]!;
    if (((b & 0x80) !== 0) !== (i < LEGACY_MESG_LEN_BYTES - 1)) return false;
    n = n * 128 + (b & 0x7f);
  }
  return n === len;
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
    // Postfix names the file by its queue directory in warnings: "active/4F1C52A0A1E".
    const where = `${basename(dirname(path))}/${basename(path)}`;
    const fd = openSync(path, C.O_RDONLY);
    try {
      const st = fstatSync(fd);
      const head = Buffer.allocUnsafe(Math.min(st.size, 65536));
      readFullySync(fd, head, 0);
      const whole = head.length === st.size;
      const first = head.length ? recordAt(head, 0) : undefined;
      if (!first || first.type !== REC.SIZE) throw new QueueFileError(`${where}: message rejected: missing size record`);
      const nums = first.data.toString('latin1').trim().split(/\s+/).map(Number);
      if (isLegacy(head, nums)) {
        qf.legacy = true;
        qf.readLegacy(fd, st.size, head, nums, opts.keepContent === true);
        return qf;
      }
      const [dataSize = NaN, dataOffset = NaN, , , , utf8 = 0] = nums;
      if (nums.length < 3 || !Number.isSafeInteger(dataSize) || !Number.isSafeInteger(dataOffset) || dataOffset <= 0 || dataSize <= 0) {
        throw new QueueFileError(`${queueId}: invalid size record: ${first.data.toString('latin1').slice(0, 100)}`);
      }
      // Postfix's qmgr seeks past the content and meets the end of the file.
      if (dataOffset + dataSize >= st.size) throw new QueueFileError(`${queueId}: message rejected: missing end record`);
      qf.contentOffset = dataOffset; qf.contentLength = dataSize;
      if (utf8 & SMTPUTF8_FLAG_REQUESTED) qf.flags |= QF.SMTPUTF8;
      // What open() reads: the envelope [0, dataOffset) and what follows the content.
      const regions: Region[] = [];
      if (whole) regions.push({ base: 0, buf: head });
      else {
        regions.push({ base: 0, buf: dataOffset <= head.length ? head.subarray(0, dataOffset) : readRegion(fd, 0, dataOffset) });
        regions.push({ base: dataOffset + dataSize, buf: readRegion(fd, dataOffset + dataSize, st.size - dataOffset - dataSize) });
      }
      qf.readRecords(regions, dataOffset, dataSize, where);
      if (qf.attrs.get(ATTR.ENCODING) === '8BITMIME') qf.flags |= QF.EIGHTBIT;
      if (whole) {
        // Checked now, so that a damaged content goes to corrupt/ before any delivery.
        const content = readContent(head, dataOffset);
        if (opts.keepContent && QueueFile.keptBytes + content.length <= KEPT_CONTENT_MAX) {
          qf.kept = content;
          QueueFile.keptBytes += content.length;
          keptRegistry.register(qf, content.length, qf);
        }
      }
    } catch (e) {
      if (e instanceof RecordError) throw new QueueFileError(/^[A-Z]/.test(e.message) || e.message.startsWith('message rejected') ? `${queueId}: ${e.message}` : `${where}: ${e.message}`);
      throw e;
    } finally {
      closeSync(fd);
    }
    return qf;
  }

  /** A file of an older Postern version (see the header). */
  legacy = false;

  /** The envelope and extracted records, as Postfix's qmgr_message_read() walks them. */
  private readRecords(regions: Region[], dataOffset: number, dataSize: number, where: string): void {
    const at = (off: number): Rec => {
      for (const r of regions) {
        if (off >= r.base && off < r.base + r.buf.length) {
          const rec = recordAt(r.buf, off - r.base);
          return { ...rec, offset: off, dataOffset: r.base + rec.dataOffset };
        }
      }
      throw new RecordError('message rejected: missing end record');
    };
    let cur: QueueRecipient = { address: '' };
    let pos = 0;
    let lastJump = 0;
    let reverse = 0;
    for (;;) {
      let expectXtra = false;
      if (pos === dataOffset) { pos = dataOffset + dataSize; expectXtra = true; }
      const rec = at(pos);
      const t = rec.type;
      const next = rec.dataOffset + rec.data.length;
      if (expectXtra) {
        if (t !== REC.XTRA) throw new RecordError(`Unexpected record type '${t}' at offset ${pos}`);
        pos = next; continue;
      }
      if (t === REC.PTR) {
        const target = parsePointer(rec.data);
        if (target === 0) { pos = next; continue; }
        if (target <= lastJump && ++reverse > 10000) throw new RecordError('too many reverse jump records');
        lastJump = target; pos = target; continue;
      }
      if (!ENVELOPE_TYPES.has(t)) throw new RecordError(`Unexpected record type '${t}' at offset ${pos}`);
      if (t === REC.END) return;
      if (rec.data.includes(0) && t !== REC.SIZE) {
        throw new QueueFileError(`${where}: message rejected: null byte in record type ${t.charCodeAt(0)} at offset ${pos}`);
      }
      const v = rec.data.toString('utf8');
      switch (t) {
        case REC.TIME: {
          const [sec = '0', usec = '0'] = v.trim().split(/\s+/);
          this.arrival = Math.round(Number(sec) * 1000 + Number(usec) / 1000);
          break;
        }
        case REC.FROM: this.sender = v; break;
        case REC.ATTR: {
          const i = v.indexOf('=');
          if (i <= 0) throw new RecordError(`bad attribute record: missing '=' or attribute name: ${v.slice(0, 200)}`);
          const name = v.slice(0, i);
          const value = v.slice(i + 1);
          if (name === FILE_ATTR.DSN_NOTIFY) cur.notify = Number(value) | 0;
          else if (name === FILE_ATTR.DSN_ORCPT) cur.orcpt = value;
          else if (name !== FILE_ATTR.CREATE_TIME) { const [n, x] = attrFromFile(name, value); this.attrs.set(n, x); }
          break;
        }
        case 'i': this.attrs.set(ATTR.DSN_ENVID, v); break;
        case '<': this.attrs.set(...attrFromFile(FILE_ATTR.DSN_RET, v)); break;
        case REC.ORCP: cur.orig = v; break;
        case REC.DSN_NOTIFY: cur.notify = Number(v) | 0; break;
        case REC.DSN_ORCPT: cur.orcpt = v; break;
        case REC.RCPT: case REC.DONE:
          cur.address = v; cur.offset = rec.offset; cur.done = t === REC.DONE;
          if (cur.orig === undefined) cur.orig = v;
          this.recipients.push(cur); cur = { address: '' };
          break;
        case '/': cur = { address: '' }; break; // a recipient cancelled by cleanup
        case REC.FILT: this.filter = v || undefined; break;
        case REC.RDR: this.redirect = v || undefined; break;
        default: break; // C T c F I W V K P r e M: nothing a delivery needs
      }
      pos = next;
    }
  }

  /** An older Postern file: the content is one M record (see the header). */
  private readLegacy(fd: number, size: number, head: Buffer, nums: number[], keepContent: boolean): void {
    const [contentOffset = 0, contentLength = 0, , flags = 0] = nums;
    if (contentLength < 0 || contentOffset + contentLength > size) throw new RecordError('message rejected: missing end record');
    this.contentOffset = contentOffset; this.contentLength = contentLength; this.flags = flags & (QF.SMTPUTF8 | QF.EIGHTBIT);
    const whole = head.length === size;
    const env = contentOffset > head.length ? readRegion(fd, 0, contentOffset) : head;
    const tailStart = contentOffset + contentLength;
    const tail = whole ? head.subarray(tailStart) : readRegion(fd, tailStart, size - tailStart);
    const recs: Region[] = [{ base: 0, buf: env.subarray(0, contentOffset - 1 - LEGACY_MESG_LEN_BYTES) }];
    let sawEnd = false;
    const walk = (buf: Buffer, base: number): void => {
      let cur: QueueRecipient = { address: '' };
      for (let pos = 0; pos < buf.length && !sawEnd;) {
        const rec = recordAt(buf, pos);
        const t = rec.type;
        const v = rec.data.toString('utf8');
        pos = rec.dataOffset + rec.data.length;
        switch (t) {
          case REC.END: sawEnd = true; break;
          case REC.TIME: this.arrival = Math.round(Number(v.split(' ')[0]) * 1000 + Number(v.split(' ')[1] ?? 0) / 1000); break;
          case REC.FROM: this.sender = v; break;
          case REC.ATTR: { const i = v.indexOf('='); if (i > 0) this.attrs.set(v.slice(0, i), v.slice(i + 1)); break; }
          case REC.ORCP: cur.orig = v; break;
          case REC.DSN_NOTIFY: cur.notify = Number(v) | 0; break;
          case REC.DSN_ORCPT: cur.orcpt = v; break;
          case REC.RCPT: case REC.DONE:
            cur.address = v; cur.offset = base + rec.offset; cur.done = t === REC.DONE;
            if (cur.orig === undefined) cur.orig = v;
            this.recipients.push(cur); cur = { address: '' };
            break;
          case REC.FILT: this.filter = v || undefined; break;
          case REC.RDR: this.redirect = v || undefined; break;
          case REC.SIZE: case REC.WARN: case REC.XTRA: break;
          default: throw new RecordError(`Unexpected record type '${t}' at offset ${base + rec.offset}`);
        }
      }
    };
    walk(recs[0]!.buf, 0);
    walk(tail, tailStart);
    if (!sawEnd) throw new RecordError('message rejected: missing end record');
    if (keepContent && whole && QueueFile.keptBytes + contentLength <= KEPT_CONTENT_MAX) {
      // What content() gives: the prepended headers, then the content.
      const pre = this.prependedHeaders;
      const body = head.subarray(contentOffset, tailStart);
      this.kept = pre ? Buffer.concat([pre, body]) : Buffer.from(body);
      QueueFile.keptBytes += this.kept.length;
      keptRegistry.register(this, this.kept.length, this);
    }
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

  /** Header lines an older Postern kept in an attribute (ATTR.PREPEND_HEADERS), given first. */
  get prependedHeaders(): Buffer | undefined {
    if (!this.legacy) return undefined;
    const h = this.attrs.get(ATTR.PREPEND_HEADERS);
    return h ? Buffer.from(h, 'utf8') : undefined;
  }

  /** The message (LF line endings), streamed: records decoded as they are read. */
  contentStream(): Readable {
    const kept = this.kept;
    if (kept) { this.dropContent(); return Readable.from([kept]); }
    const pre = this.prependedHeaders;
    const { path, contentOffset, contentLength, legacy } = this;
    const where = `${basename(dirname(path))}/${basename(path)}`;
    return Readable.from((async function* () {
      if (pre) yield pre;
      const fh = await fsp.open(path, C.O_RDONLY);
      try {
        if (legacy) {
          for (let pos = contentOffset, end = contentOffset + contentLength; pos < end;) {
            const b = Buffer.allocUnsafe(Math.min(65536, end - pos));
            const { bytesRead } = await fh.read(b, 0, b.length, pos);
            if (bytesRead <= 0) throw new QueueFileError(`${where}: short read at offset ${pos}: file truncated`);
            yield b.subarray(0, bytesRead); pos += bytesRead;
          }
          return;
        }
        const st = await fh.stat();
        const r = new ContentReader(fh, contentOffset, st.size);
        for (let b = await r.next(); b; b = await r.next()) yield b;
      } catch (e) {
        if (e instanceof RecordError) throw new QueueFileError(`${where}: ${e.message}`);
        throw e;
      } finally { await fh.close(); }
    })());
  }

  /** The message as contentStream() gives it; the first call after open({ keepContent }) needs no read. */
  async content(): Promise<Buffer> {
    const kept = this.kept;
    if (kept) { this.dropContent(); return kept; }
    const chunks: Buffer[] = [];
    for await (const c of this.contentStream()) chunks.push(c as Buffer);
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  get undone(): QueueRecipient[] { return this.recipients.filter((r) => !r.done); }
  attr(name: (typeof ATTR)[keyof typeof ATTR] | string): string | undefined { return this.attrs.get(name); }
}
