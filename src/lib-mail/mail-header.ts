/**
 * mail-header — RFC 5322 §2.2 header-field parsing over raw bytes.
 *
 * A header block is split into fields; each keeps its exact raw bytes (offsets into the message,
 * so folding, 8-bit bytes and odd spacing survive for BODY[HEADER.FIELDS]) and an unfolded value
 * computed like Dovecot's message-header-parser `full_value`: the white space right after the
 * colon on the first line is skipped, every CR/LF of a fold is removed and the white space that
 * starts a continuation line is kept ("a\r\n b" → "a b"). A line without a colon is kept as a
 * field with `noColon` (Dovecot does the same), so no byte of the header is lost.
 * The header ends at the first empty line (the empty line belongs to the header, RFC 5322 §2.1)
 * or at the end of the data (a message with no body and no separator line).
 */

export interface HeaderField {
  /** Field name as written (latin1 so 8-bit bytes map 1:1). */
  readonly name: string;
  /** Offset of the first byte of the field and just past its last line's LF. */
  readonly start: number;
  readonly end: number;
  /** Unfolded value, Dovecot full_value semantics. */
  readonly value: Buffer;
  readonly noColon: boolean;
}

export interface HeaderBlock {
  readonly fields: HeaderField[];
  /** Offset where the header starts and where the body starts (after the empty line, if any). */
  readonly start: number;
  readonly bodyStart: number;
  /** True if the header was ended by an empty line (false: it ran to `end`). */
  readonly hasSeparator: boolean;
}

function unfold(data: Buffer, s: number, e: number): Buffer {
  // Remove every CR and LF (Dovecot drops CRs and LFs of folded lines from full_value).
  const out = Buffer.allocUnsafe(e - s);
  let n = 0;
  for (let i = s; i < e; i++) {
    const c = data[i]!;
    if (c !== 13 && c !== 10) out[n++] = c;
  }
  return out.subarray(0, n);
}

/** Parses the header block at data[start..end). Iterative; cost is linear in the header size. */
export function parseHeaderBlock(data: Buffer, start: number, end: number): HeaderBlock {
  const fields: HeaderField[] = [];
  let pos = start;
  let cur: { start: number; colon: number } | undefined;
  let bodyStart = end;
  let hasSeparator = false;
  const flush = (fieldEnd: number): void => {
    if (!cur) return;
    let lineEnd = fieldEnd;
    if (cur.colon < 0) {
      const name = data.toString('latin1', cur.start, lineEnd).replace(/\r?\n$/, '');
      fields.push({ name, start: cur.start, end: fieldEnd, value: Buffer.alloc(0), noColon: true });
    } else {
      const name = data.toString('latin1', cur.start, cur.colon).replace(/[ \t]+$/, '');
      let v = cur.colon + 1;
      while (v < lineEnd && (data[v] === 32 || data[v] === 9)) v++;
      fields.push({ name, start: cur.start, end: fieldEnd, value: unfold(data, v, lineEnd), noColon: false });
    }
    cur = undefined;
  };
  while (pos < end) {
    const nl = data.indexOf(10, pos);
    const lineEnd = nl < 0 || nl >= end ? end : nl + 1;
    const c = data[pos]!;
    if (c === 10 || (c === 13 && data[pos + 1] === 10)) {
      flush(pos);
      bodyStart = lineEnd;
      hasSeparator = true;
      break;
    }
    if ((c === 32 || c === 9) && cur) {
      pos = lineEnd; // continuation line
      continue;
    }
    flush(pos);
    let colon = -1;
    for (let i = pos; i < lineEnd; i++) {
      const b = data[i]!;
      if (b === 58) { colon = i; break; }
      if (b === 13 || b === 10) break;
    }
    cur = { start: pos, colon };
    pos = lineEnd;
  }
  if (!hasSeparator) { flush(end); bodyStart = end; }
  return { fields, start, bodyStart, hasSeparator };
}

/** Last field with this name (case-insensitive), as Dovecot's envelope/bodystructure use it. */
export function headerLast(fields: readonly HeaderField[], name: string): HeaderField | undefined {
  const n = name.toLowerCase();
  for (let i = fields.length - 1; i >= 0; i--) {
    const f = fields[i]!;
    if (!f.noColon && f.name.toLowerCase() === n) return f;
  }
  return undefined;
}

/** First field with this name (case-insensitive). */
export function headerFirst(fields: readonly HeaderField[], name: string): HeaderField | undefined {
  const n = name.toLowerCase();
  return fields.find((f) => !f.noColon && f.name.toLowerCase() === n);
}
