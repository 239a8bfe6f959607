/**
 * record - framing of queue-file records, byte for byte as Postfix global/record.c (rec_put(),
 * rec_get_raw()): a type byte, the payload length in 7-bit groups, low-order group first, the
 * high bit set when another group follows (as many groups as the length needs, and no more),
 * then the payload. A reader accepts at most 5 length bytes (Postfix: the length must fit an
 * int; a sixth byte is "too many length bits") and a length below 2^31. See rec-type.ts for what
 * the records mean.
 *
 * The errors carry Postfix's warning texts (rec_get_raw()), prefixed by the caller with the
 * file's queue name, e.g. "active/4F1C52A0A1E: too many length bits, record type 77".
 */

export interface Rec {
  type: string;
  /** Byte offset of the record's type byte (R → D rewrites happen here). */
  offset: number;
  /** Offset of the payload. */
  dataOffset: number;
  data: Buffer;
}

/** Length bytes a reader accepts: 7 bits each, and the length must fit a 32-bit int (record.c). */
export const MAX_LEN_BYTES = 5;

/** The type byte and length of a record of `len` payload bytes (rec_put()). */
export function recordHeader(type: string | number, len: number): Buffer {
  const lenBytes: number[] = [];
  let n = len;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    lenBytes.push(b);
  } while (n > 0);
  const head = Buffer.allocUnsafe(1 + lenBytes.length);
  head[0] = typeof type === 'number' ? type : type.charCodeAt(0);
  for (let i = 0; i < lenBytes.length; i++) head[1 + i] = lenBytes[i]!;
  return head;
}

/** Write a record's type and length at `at` in `out`; returns the offset after them. */
export function putRecordHeader(out: Buffer, at: number, type: number, len: number): number {
  out[at++] = type;
  let n = len;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n > 0) b |= 0x80;
    out[at++] = b;
  } while (n > 0);
  return at;
}

/** Bytes of a record header for `len` payload bytes. */
export function recordHeaderLength(len: number): number {
  let n = 1;
  while (len >= 128) { len = Math.floor(len / 128); n++; }
  return 1 + n;
}

export function encodeRecord(type: string, payload: Buffer | string): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([recordHeader(type, data.length), data]);
}

export class RecordError extends Error {
  override name = 'RecordError';
  /** The record was cut short by the end of the data (more bytes may complete it). */
  readonly truncated: boolean;
  constructor(message: string, truncated = false) { super(message); this.truncated = truncated; }
}

/**
 * The record at `pos` in `buf`, or a RecordError with Postfix's text. `truncated` errors mean the
 * buffer ends inside the record (a streaming reader reads more and tries again).
 */
export function recordAt(buf: Buffer, pos: number, end = buf.length): Rec {
  const offset = pos;
  if (pos >= end) throw new RecordError('unexpected end of data', true);
  const code = buf[pos++]!;
  let len = 0;
  for (let shift = 0; ; shift += 7) {
    if (shift >= 32) throw new RecordError(`too many length bits, record type ${code}`);
    if (pos >= end) throw new RecordError(`unexpected EOF reading length, record type ${code}`, true);
    const b = buf[pos++]!;
    len |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) break;
  }
  if (len < 0) throw new RecordError(`illegal length ${len}, record type ${code}`);
  if (pos + len > end) throw new RecordError(`unexpected EOF in data, record type ${code} length ${len}`, true);
  return { type: String.fromCharCode(code), offset, dataOffset: pos, data: buf.subarray(pos, pos + len) };
}

/**
 * Parse records from a buffer holding a whole segment. Stops at the end of the buffer; a record
 * cut short throws RecordError. Offsets are relative to the buffer.
 */
export function* decodeRecords(buf: Buffer, start = 0): Generator<Rec> {
  let pos = start;
  while (pos < buf.length) {
    const r = recordAt(buf, pos);
    yield r;
    pos = r.dataOffset + r.data.length;
  }
}
