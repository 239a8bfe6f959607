/**
 * imap-compose — writing IMAP response data (RFC 3501 §4, §9 / RFC 9051 §4): the choice between
 * atom, quoted string and literal, astring/nstring, parenthesised lists, and `* N FETCH (...)`.
 *
 * The quoting rules copy Dovecot's lib-imap/imap-quote.c so our output is byte-identical:
 * - a string is quoted unless it holds CR, LF, 8-bit bytes or more than 4 quoted-specials
 *   (`"` `\`): then it is sent as a literal `{N}\r\n...`;
 * - "for humans" strings (ENVELOPE subject and address names) have tabs turned into spaces,
 *   runs of white space collapsed, leading/trailing white space cut, CR/LF dropped, NUL → 0x80.
 * Everything is built as Buffers (bytes), never JS strings, so 8-bit data survives untouched.
 */

/** Dovecot QUOTED_MAX_ESCAPE_CHARS: past 4 quoted-specials a literal is shorter. */
const QUOTED_MAX_ESCAPE_CHARS = 4;

export type Bytes = Buffer | string;

function toBuf(s: Bytes): Buffer {
  return typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
}

/** `{N}\r\n` + bytes. */
export function imapLiteral(src: Bytes): Buffer {
  const b = toBuf(src);
  return Buffer.concat([Buffer.from(`{${b.length}}\r\n`), b]);
}

/** literal8 `~{N}\r\n` + bytes (RFC 3516 §4.2, BINARY answers). */
export function imapLiteral8(src: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`~{${src.length}}\r\n`), src]);
}

/** `"..."` with `"` and `\` escaped; CR, LF and 8-bit bytes dropped (Dovecot imap_append_quoted). */
export function imapQuoted(src: Bytes): Buffer {
  const b = toBuf(src);
  const out: number[] = [0x22];
  for (const c of b) {
    if (c === 13 || c === 10 || c >= 0x80 || c === 0) continue;
    if (c === 0x22 || c === 0x5c) out.push(0x5c);
    out.push(c);
  }
  out.push(0x22);
  return Buffer.from(out);
}

/** RFC 3501 string: quoted when possible, else literal (Dovecot imap_append_nstring). */
export function imapString(src: Bytes): Buffer {
  const b = toBuf(src);
  let escapes = 0;
  for (const c of b) {
    if (c === 0x22 || c === 0x5c) {
      if (escapes++ < QUOTED_MAX_ESCAPE_CHARS) continue;
      return imapLiteral(b);
    }
    if (c === 13 || c === 10 || c >= 0x80 || c === 0) return imapLiteral(b);
  }
  return imapQuoted(b);
}

/** nstring: NIL for undefined/null. */
export function imapNstring(src: Bytes | undefined | null): Buffer {
  return src === undefined || src === null ? Buffer.from('NIL') : imapString(src);
}

/** RFC 3501 ATOM-CHAR / ASTRING-CHAR (atom-specials excluded, `]` allowed in astring). */
export function isAtomChar(c: number): boolean {
  return c > 0x20 && c < 0x7f && c !== 0x28 && c !== 0x29 && c !== 0x7b && c !== 0x25 &&
    c !== 0x2a && c !== 0x22 && c !== 0x5c && c !== 0x5d;
}
export function isAstringChar(c: number): boolean {
  return isAtomChar(c) || c === 0x5d;
}

/** astring: bare atom when possible, never an atom spelling NIL (Dovecot imap_append_astring). */
export function imapAstring(src: Bytes): Buffer {
  const b = toBuf(src);
  if (b.length === 0 || b.toString('latin1').toUpperCase() === 'NIL') return imapString(b);
  for (const c of b) if (!isAstringChar(c)) return imapString(b);
  return Buffer.from(b);
}

/**
 * Dovecot imap_append_string_for_humans: used for ENVELOPE subject and address display names.
 */
export function imapStringForHumans(src: Buffer): Buffer {
  let modify = false;
  let removeCount = 0;
  let lastLwsp = true;
  let wsPrefix = true;
  for (const c of src) {
    if (c === 0) { lastLwsp = false; modify = true; }
    else if (c === 9 || c === 32) {
      if (c === 9) modify = true;
      if (lastLwsp) { modify = true; removeCount++; }
      lastLwsp = true;
    } else if (c === 13 || c === 10) { removeCount++; modify = true; }
    else if (c === 0x22 || c === 0x5c) { modify = true; lastLwsp = false; }
    else { if (c & 0x80) modify = true; lastLwsp = false; }
    if (!lastLwsp) wsPrefix = false;
  }
  if (lastLwsp && src.length > 0 && !wsPrefix) { modify = true; removeCount++; }
  if (!modify) return Buffer.concat([Buffer.from('"'), src, Buffer.from('"')]);
  if (src.length === removeCount) return Buffer.from('""');
  const out: number[] = [];
  lastLwsp = true; wsPrefix = true;
  for (const c of src) {
    if (c === 0) { out.push(0x80); lastLwsp = false; }
    else if (c === 9 || c === 32) { if (!lastLwsp) out.push(32); lastLwsp = true; }
    else if (c === 13 || c === 10) { /* dropped */ }
    else { lastLwsp = false; out.push(c); }
    if (!lastLwsp) wsPrefix = false;
  }
  if (lastLwsp && src.length > 0 && !wsPrefix) out.pop();
  return imapLiteral(Buffer.from(out));
}

/** A composed value: raw bytes already in IMAP syntax, or a list of such values. */
export type ImapValue = Buffer | ImapValue[];

/** `(a b c)`; nested arrays become nested lists. Iterative, so depth costs no stack. */
export function imapList(items: ImapValue[]): Buffer {
  const out: Buffer[] = [];
  const stack: { items: ImapValue[]; i: number }[] = [{ items, i: 0 }];
  out.push(Buffer.from('('));
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.i >= top.items.length) {
      out.push(Buffer.from(')'));
      stack.pop();
      continue;
    }
    const v = top.items[top.i]!;
    if (top.i > 0) out.push(Buffer.from(' '));
    top.i++;
    if (Array.isArray(v)) { out.push(Buffer.from('(')); stack.push({ items: v, i: 0 }); }
    else out.push(v);
  }
  return Buffer.concat(out);
}

/** `* N FETCH (NAME value NAME value ...)\r\n`; values are already-composed IMAP data. */
export function imapFetchResponse(seq: number, items: [string, Buffer][]): Buffer {
  const parts: Buffer[] = [Buffer.from(`* ${seq} FETCH (`)];
  items.forEach(([name, value], i) => {
    if (i > 0) parts.push(Buffer.from(' '));
    parts.push(Buffer.from(name + ' '), value);
  });
  parts.push(Buffer.from(')\r\n'));
  return Buffer.concat(parts);
}
