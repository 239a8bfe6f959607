/**
 * queue-content - the message content of a queue file as Postfix keeps it (cleanup_out.c,
 * rec_type.h REC_TYPE_CONTENT): one N record per line without its LF, a line longer than
 * TEXT_RECORD_MAX bytes cut into L pieces continued by the next record, w records as padding and
 * p records as pointers (reading goes on at the offset they hold, 0 = a placeholder), up to the
 * X record that starts the extracted segment.
 *
 * ContentEncoder turns LF text (in chunks cut anywhere) into those records; a last line without
 * LF ends as an L record, so the reader gives back exactly the bytes written. readContent()
 * and ContentReader turn records back into LF text, following pointers (at most
 * REVERSE_JUMP_LIMIT backward jumps, as Postfix's rec_goto()), and stop at X. A record of
 * another type in the content, a malformed length or a pointer outside the file is corrupt
 * (RecordError with Postfix's wording).
 */
import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { REC, TEXT_RECORD_MAX } from './rec-type.ts';
import { putRecordHeader, recordAt, RecordError } from './record.ts';

const N = REC.NORM.charCodeAt(0);
const L = REC.CONT.charCodeAt(0);
const W = REC.DTXT.charCodeAt(0);
const P = REC.PTR.charCodeAt(0);
const X = REC.XTRA.charCodeAt(0);
const LF = 0x0a;

/** Postfix rec_goto(): more backward jumps than this in one file is a pointer loop. */
const REVERSE_JUMP_LIMIT = 10000;

/** Width of a pointer record's payload ("%15ld"); a whole pointer record is 17 bytes. */
export const PTR_PAYLOAD = 15;
export const PTR_RECORD_LEN = 2 + PTR_PAYLOAD;

/** A pointer record to `offset` (0 = placeholder). */
export function pointerRecord(offset: number): Buffer {
  const b = Buffer.alloc(PTR_RECORD_LEN, 0x20);
  b[0] = P; b[1] = PTR_PAYLOAD;
  b.write(String(offset), PTR_RECORD_LEN - String(offset).length, 'latin1');
  return b;
}

/** Records for LF text given in chunks; a line cut between chunks is carried to the next one. */
export class ContentEncoder {
  private carry: Buffer | undefined;

  /** Records for the complete lines of `chunk` (with what was carried); keeps the rest. */
  encode(chunk: Buffer): Buffer {
    let text = chunk;
    if (this.carry) { text = Buffer.concat([this.carry, chunk]); this.carry = undefined; }
    const lastNl = text.lastIndexOf(LF);
    if (lastNl < 0) { this.carry = Buffer.from(text); return Buffer.alloc(0); }
    if (lastNl < text.length - 1) this.carry = Buffer.from(text.subarray(lastNl + 1));
    return encodeLines(text, lastNl + 1);
  }

  /** Records for what is left: a last line without LF, as an L record. */
  end(): Buffer {
    const c = this.carry;
    this.carry = undefined;
    if (!c || c.length === 0) return Buffer.alloc(0);
    return encodeLines(c, c.length);
  }
}

/**
 * Records for text[0, end): every LF-terminated line as L pieces and an N record; text after
 * the last LF (an unterminated last line) as L records only.
 */
function encodeLines(text: Buffer, end: number): Buffer {
  // Worst case: a header of up to 5 bytes per line or piece. Count lines first.
  let records = 0;
  for (let p = 0; p < end;) {
    let nl = text.indexOf(LF, p);
    if (nl < 0 || nl >= end) nl = end;
    records += 1 + Math.floor(Math.max(0, nl - p - 1) / TEXT_RECORD_MAX);
    p = nl + 1;
  }
  const out = Buffer.allocUnsafe(end + records * 4 + 8);
  let o = 0;
  let p = 0;
  while (p < end) {
    let nl = text.indexOf(LF, p);
    const terminated = nl >= 0 && nl < end;
    if (!terminated) nl = end;
    let len = nl - p;
    while (len > TEXT_RECORD_MAX || (!terminated && len > 0)) {
      const piece = Math.min(len, TEXT_RECORD_MAX);
      o = putRecordHeader(out, o, L, piece);
      o += text.copy(out, o, p, p + piece);
      p += piece; len -= piece;
    }
    if (terminated) {
      o = putRecordHeader(out, o, N, len);
      o += text.copy(out, o, p, nl);
    }
    p = nl + 1;
  }
  return out.subarray(0, o);
}

/**
 * Decode content records in buf[pos, end) into `out` (LF text). Returns where it stopped: at X
 * (`done`), at a pointer to follow (`jump`), or at a record that does not fit in `end` (`more`).
 */
function decodeSome(buf: Buffer, pos: number, end: number, out: Buffer[]):
    { pos: number; done: boolean; jump?: number; more: boolean } {
  while (pos < end) {
    let r;
    try {
      r = recordAt(buf, pos, end);
    } catch (e) {
      if (e instanceof RecordError && e.truncated) return { pos, done: false, more: true };
      throw e;
    }
    const next = r.dataOffset + r.data.length;
    const t = buf[pos]!;
    if (t === N) { out.push(r.data, NL_BUF); }
    else if (t === L) { out.push(r.data); }
    else if (t === W) { /* padding */ }
    else if (t === P) {
      const target = parsePointer(r.data);
      if (target !== 0) return { pos: next, done: false, jump: target, more: false };
    } else if (t === X) return { pos, done: true, more: false };
    else throw new RecordError(`unexpected record type '${String.fromCharCode(t)}' in message content`);
    pos = next;
  }
  return { pos, done: false, more: true };
}

const NL_BUF = Buffer.from('\n');

/** A pointer record's offset (rec_goto(): leading white space, then digits). */
export function parsePointer(data: Buffer): number {
  const s = data.toString('latin1').trim();
  if (!/^\d+$/.test(s)) throw new RecordError(`malformed pointer record value: ${s.slice(0, 100)}`);
  return Number(s);
}

/** Tracks pointer jumps in one file (rec_goto()'s loop guard). */
class JumpGuard {
  private last = 0;
  private reverse = 0;
  check(target: number, size: number): void {
    if (target >= size) throw new RecordError(`seek error after pointer record: offset ${target} past the end of the file`);
    if (target <= this.last && ++this.reverse > REVERSE_JUMP_LIMIT) throw new RecordError('too many reverse jump records');
    this.last = target;
  }
}

/**
 * The content of a file held whole in `file` (LF text), reading from `start` (the first record
 * after M) to the X record.
 */
export function readContent(file: Buffer, start: number): Buffer {
  const out: Buffer[] = [];
  const guard = new JumpGuard();
  let pos = start;
  for (;;) {
    const r = decodeSome(file, pos, file.length, out);
    if (r.done) break;
    if (r.jump !== undefined) { guard.check(r.jump, file.length); pos = r.jump; continue; }
    throw new RecordError('message rejected: missing end record');
  }
  return out.length === 1 ? out[0]! : Buffer.concat(out);
}

/**
 * Streams the content of an open file in pieces of about `window` bytes, following pointers.
 * `read` is a positioned read (a FileHandle's or a descriptor's).
 */
export class ContentReader {
  private buf: Buffer;
  private bufStart = 0;
  private bufLen = 0;
  private pos: number;
  private finished = false;
  private readonly guard = new JumpGuard();
  private readonly fh: FileHandle | number;
  private readonly size: number;

  constructor(fh: FileHandle | number, start: number, size: number, window = 65536) {
    this.fh = fh; this.pos = start; this.size = size;
    this.buf = Buffer.allocUnsafe(window);
  }

  private async fill(at: number, need: number): Promise<void> {
    if (this.buf.length < need) this.buf = Buffer.allocUnsafe(need);
    const want = Math.min(this.buf.length, this.size - at);
    let got = 0;
    while (got < want) {
      const n = typeof this.fh === 'number'
        ? readSync(this.fh, this.buf, got, want - got, at + got)
        : (await this.fh.read(this.buf, got, want - got, at + got)).bytesRead;
      if (n <= 0) break;
      got += n;
    }
    this.bufStart = at; this.bufLen = got;
  }

  /** The next piece of LF text, or undefined after the X record. */
  async next(): Promise<Buffer | undefined> {
    while (!this.finished) {
      if (!(this.pos >= this.bufStart && this.pos < this.bufStart + this.bufLen)) {
        if (this.pos >= this.size) throw new RecordError('message rejected: missing end record');
        await this.fill(this.pos, 0);
      }
      const out: Buffer[] = [];
      const r = decodeSome(this.buf, this.pos - this.bufStart, this.bufLen, out);
      const newPos = this.bufStart + r.pos;
      if (r.done) this.finished = true;
      else if (r.jump !== undefined) { this.guard.check(r.jump, this.size); this.pos = r.jump; }
      else if (newPos !== this.pos) this.pos = newPos;
      else if (this.bufStart !== this.pos) await this.fill(this.pos, 0);
      else {
        // The record at pos does not fit what was read: the file ends inside it (truncated:
        // recordAt() throws Postfix's text), or it is larger than the window (read it whole).
        if (this.bufStart + this.bufLen >= this.size) recordAt(this.buf, 0, this.bufLen);
        const need = this.recordLengthAt();
        if (this.pos + need > this.size) throw new RecordError(`unexpected EOF in data, record type ${this.buf[0]} length ${need}`);
        await this.fill(this.pos, need);
        if (this.bufLen < need) recordAt(this.buf, 0, this.bufLen);
      }
      // A copy: the window is reused by the next read.
      if (out.length) return Buffer.concat(out);
    }
    return undefined;
  }

  /** The whole length of the record at pos (header included), from its length bytes. */
  private recordLengthAt(): number {
    const b = this.buf;
    let i = this.pos - this.bufStart + 1;
    let len = 0;
    for (let shift = 0; shift < 32 && i < this.bufLen; shift += 7) {
      const x = b[i++]!;
      len |= (x & 0x7f) << shift;
      if ((x & 0x80) === 0) return (i - (this.pos - this.bufStart)) + len;
    }
    return this.bufLen + 1;
  }
}
