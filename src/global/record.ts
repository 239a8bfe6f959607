/**
 * record - framing of queue-file records (Postfix global/record.c): a type byte, the payload
 * length as a varint (7 bits a byte, low-order group first, high bit set when more follow), then
 * the payload. See rec-type.ts for what the records mean.
 */

export interface Rec {
  type: string;
  /** Byte offset of the record's type byte in the file (R → D rewrites happen here). */
  offset: number;
  /** Offset of the payload. */
  dataOffset: number;
  data: Buffer;
}

/** Largest payload accepted; a bigger length means a corrupt file (Postfix: "record too long"). */
export const MAX_RECORD = 2 ** 40;

export function encodeRecord(type: string, payload: Buffer | string): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const lenBytes: number[] = [];
  let n = data.length;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    lenBytes.push(b);
  } while (n > 0);
  const head = Buffer.alloc(1 + lenBytes.length);
  head[0] = type.charCodeAt(0);
  for (let i = 0; i < lenBytes.length; i++) head[1 + i] = lenBytes[i]!;
  return Buffer.concat([head, data]);
}

export class RecordError extends Error {
  override name = 'RecordError';
}

/**
 * Parse records from a buffer holding the whole file (or its envelope). Stops at the end of the
 * buffer; a truncated record throws RecordError (the caller moves the file to `corrupt`).
 */
export function* decodeRecords(buf: Buffer, start = 0): Generator<Rec> {
  let pos = start;
  while (pos < buf.length) {
    const offset = pos;
    const type = String.fromCharCode(buf[pos++]!);
    let len = 0;
    let mul = 1;
    for (let i = 0; ; i++) {
      if (pos >= buf.length) throw new RecordError(`truncated record length at offset ${offset}`);
      if (i > 6) throw new RecordError(`bad record length at offset ${offset}`);
      const b = buf[pos++]!;
      len += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) break;
    }
    if (len > MAX_RECORD || pos + len > buf.length) {
      throw new RecordError(`record of type '${type}' at offset ${offset} runs past end of file (${len} bytes)`);
    }
    const dataOffset = pos;
    yield { type, offset, dataOffset, data: buf.subarray(pos, pos + len) };
    pos += len;
  }
}
