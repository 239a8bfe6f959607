/**
 * mail-mime-downgrade - 8BITMIME → 7BIT conversion for a server that does not announce
 * 8BITMIME (used by smtp(8), and by cleanup(8) before it DKIM-signs a message with 8-bit body
 * content, so that smtp(8) finds nothing left to convert and the signature survives;
 * RFC 6152 §3 "the client MUST NOT send 8-bit data"; RFC 1652 §5 allows converting it), as
 * Postfix's smtp(8) does through mime_state with MIME_OPT_DOWNGRADE (global/mime_state.c,
 * smtp/smtp_proto.c smtp_text_out()).
 *
 * What changes, and nothing else:
 *  - a leaf body part (text/*, application/*, ... or a message without MIME headers) whose
 *    body holds 8-bit bytes is re-encoded as quoted-printable (RFC 2045 §6.7: =XX for 8-bit,
 *    "=", control characters and trailing white space; soft line breaks so no encoded line
 *    exceeds 76 characters), and its Content-Transfer-Encoding header is replaced by
 *    (or, when absent, completed with) `Content-Transfer-Encoding: quoted-printable`;
 *  - multipart/* parts are converted one by one (RFC 2046 §5.1.1 boundaries), message/rfc822
 *    bodies are converted as whole messages, and their own "8bit"/"binary" encoding label
 *    becomes "7bit" (RFC 2045 §6.4: composite types never carry an encoded body);
 *  - when the top-level entity is converted and has no MIME-Version header,
 *    `MIME-Version: 1.0` is added so that readers decode the quoted-printable (Postfix leaves
 *    this out; without it RFC 2045 §4 says the body is not MIME at all).
 * 8-bit bytes in headers are left alone (they cannot be encoded without RFC 2047 knowledge of
 * the header's syntax; Postfix does the same). Line endings: LF in, LF out (queue file form).
 */

const LF = 0x0a;

/** Does the content hold any byte ≥ 0x80? */
export function hasEightBit(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) return true;
  return false;
}

interface Entity { headers: Buffer[]; body: Buffer }

/** Split at the first empty line; header lines keep their LF. A message with no body: body = ''. */
function splitEntity(b: Buffer): Entity {
  const headers: Buffer[] = [];
  let pos = 0;
  while (pos < b.length) {
    const nl = b.indexOf(LF, pos);
    const end = nl < 0 ? b.length : nl + 1;
    const line = b.subarray(pos, end);
    if (line.length === 1 || (line.length === 2 && line[0] === 0x0d)) return { headers, body: b.subarray(pos) };
    // A line that is not a header and not a continuation starts the body (RFC 5322 §2.1).
    if (!/^[\x21-\x39\x3b-\x7e]+:|^[ \t]/.test(line.toString('latin1'))) return { headers, body: b.subarray(pos) };
    headers.push(line);
    pos = end;
  }
  return { headers, body: Buffer.alloc(0) };
}

/** Group header lines into fields (a field with its continuation lines). */
function fields(headers: Buffer[]): Buffer[][] {
  const out: Buffer[][] = [];
  for (const h of headers) {
    if ((h[0] === 0x20 || h[0] === 0x09) && out.length) out[out.length - 1]!.push(h);
    else out.push([h]);
  }
  return out;
}

function fieldName(f: Buffer[]): string {
  const s = f[0]!.toString('latin1');
  return s.slice(0, s.indexOf(':')).trim().toLowerCase();
}

function fieldValue(f: Buffer[]): string {
  const s = Buffer.concat(f).toString('latin1').replace(/\r?\n/g, '');
  return s.slice(s.indexOf(':') + 1).trim();
}

/** Content-Type value → lower-case "type/subtype" and the boundary parameter. */
function parseContentType(v: string | undefined, dflt: string): { type: string; boundary?: string } {
  if (!v) return { type: dflt };
  const clean = v.replace(/\([^)]*\)/g, '');
  const m = /^\s*([^\s;\/]+)\s*\/\s*([^\s;]+)/.exec(clean);
  const type = m ? `${m[1]}/${m[2]}`.toLowerCase() : dflt;
  const b = /;\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;"]+))/i.exec(clean);
  const boundary = b ? (b[1] !== undefined ? b[1].replace(/\\(.)/g, '$1') : b[2]) : undefined;
  return { type, boundary };
}

const HEX = '0123456789ABCDEF';

/** RFC 2045 §6.7 quoted-printable for one line without its line break. */
function qpLine(line: Buffer): string {
  let out = '';
  let col = 0;
  const put = (tok: string) => {
    if (col + tok.length > 75) { out += '=\n'; col = 0; } // soft break: "=" ends a line of ≤ 76
    out += tok; col += tok.length;
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    const last = i === line.length - 1;
    const literal = (c >= 33 && c <= 126 && c !== 61) || ((c === 32 || c === 9) && !last);
    put(literal ? String.fromCharCode(c) : `=${HEX[c >> 4]}${HEX[c & 15]}`);
  }
  return out;
}

function encodeQp(body: Buffer): Buffer {
  const parts: string[] = [];
  let pos = 0;
  while (pos < body.length) {
    const nl = body.indexOf(LF, pos);
    let end = nl < 0 ? body.length : nl;
    // A CR before LF is part of the line break, not data.
    if (nl >= 0 && end > pos && body[end - 1] === 0x0d) end--;
    parts.push(qpLine(body.subarray(pos, end)) + (nl >= 0 ? '\n' : ''));
    pos = nl < 0 ? body.length : nl + 1;
  }
  return Buffer.from(parts.join(''), 'latin1');
}

function setEncoding(flds: Buffer[][], value: string, addMimeVersion: boolean): Buffer[] {
  const out: Buffer[] = [];
  let replaced = false;
  for (const f of flds) {
    if (fieldName(f) === 'content-transfer-encoding') {
      if (!replaced) out.push(Buffer.from(`Content-Transfer-Encoding: ${value}\n`));
      replaced = true;
      continue;
    }
    out.push(...f);
  }
  if (!replaced) out.push(Buffer.from(`Content-Transfer-Encoding: ${value}\n`));
  if (addMimeVersion && !flds.some((f) => fieldName(f) === 'mime-version')) out.push(Buffer.from('MIME-Version: 1.0\n'));
  return out;
}

function lines(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < b.length) {
    const nl = b.indexOf(LF, pos);
    const end = nl < 0 ? b.length : nl + 1;
    out.push(b.subarray(pos, end));
    pos = end;
  }
  return out;
}

/** Convert one entity (header + body); `depth` bounds hostile nesting. */
function downgradeEntity(b: Buffer, defaultType: string, top: boolean, depth: number): Buffer {
  if (!hasEightBit(b)) return b;
  const { headers, body } = splitEntity(b);
  const flds = fields(headers);
  const get = (n: string) => { const f = flds.find((x) => fieldName(x) === n); return f ? fieldValue(f) : undefined; };
  const ct = parseContentType(get('content-type'), defaultType);
  const cte = (get('content-transfer-encoding') ?? '').toLowerCase();
  if (depth < 20 && ct.type.startsWith('multipart/') && ct.boundary) {
    const dash = `--${ct.boundary}`;
    const childType = ct.type === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
    const out: Buffer[] = [];
    let part: Buffer[] | undefined;
    let done = false;
    const flush = () => { if (part) out.push(downgradeEntity(Buffer.concat(part), childType, false, depth + 1)); part = undefined; };
    for (const l of lines(body)) {
      const s = done ? '' : l.toString('latin1').replace(/[ \t\r\n]+$/, '');
      if (!done && (s === dash || s === `${dash}--`)) {
        flush();
        out.push(l);
        if (s === `${dash}--`) done = true; else part = [];
        continue;
      }
      if (part) part.push(l); else out.push(l);
    }
    flush();
    const hdr = cte === '8bit' || cte === 'binary' ? setEncoding(flds, '7bit', false) : headers;
    return Buffer.concat([...hdr, ...out]);
  }
  if (depth < 20 && ct.type === 'message/rfc822') {
    const split = bodyStart(b, headers);
    const inner = downgradeEntity(b.subarray(split), 'text/plain', false, depth + 1);
    const hdr = cte === '8bit' || cte === 'binary' ? setEncoding(flds, '7bit', false) : headers;
    return Buffer.concat([...hdr, b.subarray(headersLength(headers), split), inner]);
  }
  if (cte === 'base64' || cte === 'quoted-printable' || !hasEightBit(body)) return b;
  const split = bodyStart(b, headers);
  return Buffer.concat([...setEncoding(flds, 'quoted-printable', top), b.subarray(headersLength(headers), split), encodeQp(b.subarray(split))]);
}

function headersLength(headers: Buffer[]): number { return headers.reduce((n, h) => n + h.length, 0); }

/** Offset where the body proper starts (after the empty separator line, if any). */
function bodyStart(b: Buffer, headers: Buffer[]): number {
  const h = headersLength(headers);
  if (b[h] === LF) return h + 1;
  if (b[h] === 0x0d && b[h + 1] === LF) return h + 2;
  return h;
}

/** Convert a whole message (LF line endings) for a server without 8BITMIME. */
export function downgradeTo7bit(message: Buffer): Buffer {
  return downgradeEntity(message, 'text/plain', true, 0);
}
