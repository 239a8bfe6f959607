/**
 * mail-mime — the MIME tree of a message (RFC 2045, RFC 2046 §5.1 multipart, §5.2.1
 * message/rfc822), built in one iterative pass over the bytes (no recursion, so a 10,000-deep
 * message costs no stack).
 *
 * Behaviour copied from Dovecot 2.3's lib-mail/message-parser.c:
 * - the message is first seen in CRLF form: a file with bare LF line ends (Maildir on disk) is
 *   converted, so every size and line count is the "virtual" CRLF size IMAP reports (RFC822.SIZE,
 *   Maildir `W=`);
 * - a boundary line is `--` + boundary at the start of a line (prefix match, like Dovecot); the
 *   CRLF before it belongs to the boundary, not to the part; `--boundary--` ends the multipart and
 *   what follows is epilogue; an outer boundary also ends every inner part still open;
 * - a missing final boundary simply ends the parts at the end of the message;
 * - a multipart with no boundary parameter gets one empty text/plain child (what Dovecot shows);
 * - a message/rfc822 part has one child: the encapsulated message (its own header and body);
 * - in multipart/digest the default child type is message/rfc822, elsewhere text/plain;
 * - a boundary only has to be a prefix of the line; the longest matching boundary wins and an
 *   exact match ends the search (Dovecot's boundary_find());
 * - nesting deeper than `maxDepth` (Dovecot's 100 nested MIME parts, the top level counting as
 *   the first) or more than `maxParts` (10,000) parts: the multipart or message/rfc822 part is
 *   kept as a leaf "application/octet-stream" (parameters kept) and not split further — the
 *   same BODYSTRUCTURE as Dovecot's at and past the limit (checked up to 105 levels).
 */
import { parseHeaderBlock, headerFirst, type HeaderField } from './mail-header.ts';
import { parseContentType, mimeParam, type ContentType } from './mail-content-type.ts';

export const MIME_MAX_DEPTH = 100;
export const MIME_MAX_PARTS = 10_000;

export interface MimePart {
  /** Offsets into MimeMessage.data (CRLF form). */
  headerStart: number;
  bodyStart: number;
  bodyEnd: number;
  headers: HeaderField[];
  /** True if the header block ended with an empty line. */
  hasSeparator: boolean;
  /** Parsed Content-Type; `explicit` false = the default applied (no Content-Type header). */
  contentType: ContentType;
  explicitType: boolean;
  isMultipart: boolean;
  /** The declared Content-Type when the depth/part limit turned the part into a leaf. */
  limitedFrom?: ContentType;
  /** The multipart's boundary parameter (undefined: none, Dovecot then shows one empty child). */
  boundary?: Buffer;
  /** Multipart children (RFC 2046 §5.1). */
  children: MimePart[];
  /** message/rfc822: the encapsulated message. */
  message?: MimePart;
  depth: number;
}

export interface MimeMessage {
  /** The message in CRLF form (the same Buffer as the input when it already was). */
  data: Buffer;
  root: MimePart;
  /** Number of parts created (for limits and statistics). */
  partCount: number;
}

/** Converts bare LF line ends to CRLF; returns the input itself if there is nothing to do. */
export function toCrlf(raw: Buffer): Buffer {
  let bare = 0;
  for (let i = raw.indexOf(10); i >= 0; i = raw.indexOf(10, i + 1)) {
    if (i === 0 || raw[i - 1] !== 13) bare++;
  }
  if (bare === 0) return raw;
  const out = Buffer.allocUnsafe(raw.length + bare);
  let o = 0;
  let s = 0;
  for (let i = raw.indexOf(10); i >= 0; i = raw.indexOf(10, i + 1)) {
    if (i === 0 || raw[i - 1] !== 13) {
      o += raw.copy(out, o, s, i);
      out[o++] = 13;
      s = i;
    }
  }
  o += raw.copy(out, o, s);
  return out.subarray(0, o);
}

/** The size a message has in CRLF form (Maildir W=, RFC822.SIZE), without copying it. */
export function crlfSize(raw: Buffer): number {
  let n = raw.length;
  for (let i = raw.indexOf(10); i >= 0; i = raw.indexOf(10, i + 1)) if (i === 0 || raw[i - 1] !== 13) n++;
  return n;
}

interface Open {
  part: MimePart;
  inHeader: boolean;
  /** Boundary of an open multipart, until its close-delimiter is seen. */
  boundary?: Buffer;
  /** Default Content-Type for this part's children (digest → message/rfc822). */
  childDefault: 'text' | 'message';
  /** This part is closed together with the part below it (message/rfc822 child). */
  tied: boolean;
  /** Offset just past this multipart's close-delimiter line, once seen. */
  closedAt?: number;
}

const TEXT_PLAIN: ContentType = { type: 'text', subtype: 'plain', params: [] };
const MESSAGE_RFC822: ContentType = { type: 'message', subtype: 'rfc822', params: [] };

function newPart(headerStart: number, depth: number): MimePart {
  return {
    headerStart, bodyStart: headerStart, bodyEnd: headerStart, headers: [], hasSeparator: false,
    contentType: TEXT_PLAIN, explicitType: false, isMultipart: false, children: [], depth,
  };
}

export interface MimeLimits {
  maxDepth?: number;
  maxParts?: number;
}

/** Parses a whole message (any line ends) into its MIME tree. */
export function parseMime(raw: Buffer, limits: MimeLimits = {}): MimeMessage {
  const maxDepth = limits.maxDepth ?? MIME_MAX_DEPTH;
  const maxParts = limits.maxParts ?? MIME_MAX_PARTS;
  const data = toCrlf(raw);
  const len = data.length;
  const root = newPart(0, 0);
  let partCount = 1;
  const stack: Open[] = [{ part: root, inHeader: true, childDefault: 'text', tied: false }];

  const defaultFor = (idx: number): 'text' | 'message' => {
    const o = stack[idx]!;
    return idx >= 1 && !o.tied ? stack[idx - 1]!.childDefault : 'text';
  };
  const finishHeader = (o: Open, headerEnd: number, bodyStart: number, defaultType: 'text' | 'message',
    allowNest = true): void => {
    const p = o.part;
    const hb = parseHeaderBlock(data, p.headerStart, headerEnd);
    p.headers = hb.fields;
    p.hasSeparator = hb.hasSeparator;
    p.bodyStart = bodyStart;
    o.inHeader = false;
    const ctField = headerFirst(p.headers, 'Content-Type');
    if (ctField) { p.contentType = parseContentType(ctField.value); p.explicitType = true; }
    else p.contentType = defaultType === 'message' ? MESSAGE_RFC822 : TEXT_PLAIN;
    const type = p.contentType.type.toLowerCase();
    const sub = p.contentType.subtype.toLowerCase();
    // Dovecot's max_nested_mime_parts counts the top level as the first of them.
    const tooDeep = p.depth + 1 >= maxDepth || partCount >= maxParts;
    if (type === 'multipart') {
      if (tooDeep) {
        // Dovecot: the part becomes an application/octet-stream leaf (parameters kept) that runs
        // to the next boundary of an enclosing multipart.
        p.limitedFrom = p.contentType;
        p.contentType = { type: 'application', subtype: 'octet-stream', params: p.contentType.params };
        return;
      }
      p.isMultipart = true;
      o.childDefault = sub === 'digest' ? 'message' : 'text';
      const b = mimeParam(p.contentType.params, 'boundary');
      if (b && b.length > 0) { o.boundary = b; p.boundary = b; return; }
      // Dovecot: a multipart without boundary shows one empty text/plain child.
      const child = newPart(bodyStart, p.depth + 1);
      partCount++;
      p.children.push(child);
      return;
    }
    if (type === 'message' && sub === 'rfc822' && tooDeep) {
      p.limitedFrom = p.contentType;
      p.contentType = { type: 'application', subtype: 'octet-stream', params: p.contentType.params };
      return;
    }
    if (type === 'message' && sub === 'rfc822' && allowNest) {
      const child = newPart(bodyStart, p.depth + 1);
      partCount++;
      p.message = child;
      stack.push({ part: child, inHeader: true, childDefault: 'text', tied: true });
    }
  };

  /** Closes stack entries above index `keep` at `end`. */
  const closeAbove = (keep: number, end: number, lineStart: number): void => {
    while (stack.length - 1 > keep) {
      const idx = stack.length - 1;
      const o = stack[idx]!;
      if (o.inHeader) finishHeader(o, lineStart, lineStart, defaultFor(idx), false);
      stack.pop();
      // Dovecot: when a boundary line directly follows a close-delimiter, the CRLF ending the
      // close-delimiter stays in the finished multipart (BINARY.SIZE shows it).
      o.part.bodyEnd = o.closedAt === lineStart ? lineStart : Math.max(o.part.bodyStart, end);
    }
  };

  let pos = 0;
  while (pos < len) {
    const nl = data.indexOf(10, pos);
    const lineEnd = nl < 0 ? len : nl + 1;
    const top = stack[stack.length - 1]!;
    if (top.inHeader) {
      const c = data[pos];
      if (c === 13 && data[pos + 1] === 10) {
        finishHeader(top, lineEnd, lineEnd, defaultFor(stack.length - 1));
        pos = lineEnd;
        continue;
      }
    }
    // boundary line?
    if (data[pos] === 0x2d && data[pos + 1] === 0x2d) {
      // Dovecot message-parser.c boundary_find(): innermost first, a boundary only has to be a
      // prefix of the line, the longest matching prefix wins, an exact match ends the search.
      let match = -1;
      let bestLen = -1;
      let lineLen = lineEnd - pos - 2;
      while (lineLen > 0 && (data[pos + 2 + lineLen - 1] === 10 || data[pos + 2 + lineLen - 1] === 13)) lineLen--;
      for (let i = stack.length - 1; i >= 0; i--) {
        const b = stack[i]!.boundary;
        if (!b || b.length > lineLen || b.length <= bestLen) continue;
        if (data.compare(b, 0, b.length, pos + 2, pos + 2 + b.length) !== 0) continue;
        match = i;
        bestLen = b.length;
        if (b.length === lineLen || (b.length === lineLen - 2 && data[pos + 2 + b.length] === 0x2d && data[pos + 3 + b.length] === 0x2d)) break;
      }
      if (match >= 0) {
        const m = stack[match]!;
        const end = pos >= 2 && data[pos - 2] === 13 && data[pos - 1] === 10 ? pos - 2 : pos;
        closeAbove(match, end, pos);
        const after = pos + 2 + m.boundary!.length;
        if (data[after] === 0x2d && data[after + 1] === 0x2d) {
          m.boundary = undefined; // close-delimiter: the rest is epilogue
          m.closedAt = lineEnd;
        } else if (partCount < maxParts) {
          const child = newPart(lineEnd, m.part.depth + 1);
          partCount++;
          m.part.children.push(child);
          stack.push({ part: child, inHeader: true, childDefault: 'text', tied: false });
        }
        pos = lineEnd;
        continue;
      }
    }
    pos = lineEnd;
  }
  // End of data: close everything still open (a header without its empty line ends here).
  closeAbove(-1, len, len);
  return { data, root, partCount };
}

/** Number of LF-terminated lines in [s, e) (IMAP body-fld-lines counts LFs, like Dovecot). */
export function countLines(data: Buffer, s: number, e: number): number {
  let n = 0;
  for (let i = data.indexOf(10, s); i >= 0 && i < e; i = data.indexOf(10, i + 1)) n++;
  return n;
}

export function partTypeIs(p: MimePart, type: string, subtype?: string): boolean {
  return p.contentType.type.toLowerCase() === type &&
    (subtype === undefined || p.contentType.subtype.toLowerCase() === subtype);
}
