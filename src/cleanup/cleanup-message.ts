/**
 * cleanup-message - the content pass of cleanup(8) (Postfix cleanup/cleanup_message.c): the
 * message streams through once, as LF-terminated lines.
 *
 *   primary header   logical headers (continuation lines joined) are checked with header_checks
 *                    (MIME headers — Content-*, MIME-Version — with mime_header_checks), their
 *                    addresses rewritten (cleanup-header-addr.ts), and the names seen recorded;
 *                    at the end of the block the missing headers are appended (From:, Date:,
 *                    Message-Id:, and undisclosed_recipients_header when set, by the caller's onHeadersEnd).
 *   body             each line up to body_checks_size_limit bytes is checked with body_checks;
 *                    in multipart messages the part headers go to mime_header_checks and the
 *                    headers of an attached message/rfc822 to nested_header_checks, as Postfix's
 *                    MIME parser classifies them (MIME_HDR_MULTIPART, MIME_HDR_NESTED).
 *
 * Without checks the body is copied chunk by chunk, untouched. Everything not rewritten stays
 * byte for byte (8-bit, NUL, long lines).
 *
 * header_size_limit: a logical header longer than this keeps its first header_size_limit bytes
 * (whole lines) and the excess is discarded, as Postfix ("If a header is larger, the excess is
 * discarded"), with a warning naming the header.
 *
 * Bounded memory (issue 13): a body line is held whole only up to BODY_PIECE bytes; a longer one
 * goes through body_checks and out in pieces, as Postfix's cleanup gets a long line as several
 * records of at most line_length_limit (REC_TYPE_CONT) and body_checks sees each.
 */
import { logger } from '../util/msg.ts';

const log = logger('cleanup');

export type HeaderClass = 'primary' | 'multipart' | 'nested';

export interface HeaderScanResult {
  /** Lower-cased names of the headers seen in the primary header block. */
  seen: Set<string>;
  messageId?: string;
}

/** What the message pass asks of the session (cleanup.ts). */
export interface MessageHandler {
  emit(b: Buffer): Promise<void>;
  /** The headers to append at the end of the primary header block. */
  onHeadersEnd(): Buffer;
  /**
   * One logical header (lines with their LF, joined), with its class. Returns the bytes to
   * write instead (the same buffer to keep it, an empty one to drop it).
   */
  header?(h: Buffer, name: string, cls: HeaderClass): Promise<Buffer>;
  /** One body line with its LF; returns the bytes to write instead (the same buffer to keep it). */
  bodyLine?(line: Buffer): Promise<Buffer>;
  queueId: string;
}

const HDR_NAME = /^([!-9;-~]+)[ \t]*:/;
/** The longest piece of a body line held before it is passed on (see the top). */
const BODY_PIECE = 65536;
const LF = 0x0a;

type State = 'headers' | 'body';

export class CleanupMessage {
  readonly result: HeaderScanResult = { seen: new Set() };
  private readonly h: MessageHandler;
  private readonly limit: number;
  private readonly bodyLimit: number;
  private readonly inspectBody: boolean;
  private state: State = 'headers';
  private hdrClass: HeaderClass = 'primary';
  /** The partial line carried between chunks. */
  private partial: Buffer[] = [];
  private partialLen = 0;
  private partialOverflow = false;
  /** The partial body line continues a line whose first pieces were passed on. */
  private midLine = false;
  /** The logical header being collected. */
  private cur: Buffer[] = [];
  private curLen = 0;
  private curName = '';
  private curTruncated = false;
  private bodyBytes = 0;
  /** MIME: boundaries of the enclosing multiparts, and what the current header block says. */
  private boundaries: string[] = [];
  private blockType = '';
  private blockBoundary: string | undefined;
  private afterHeaders: 'body' | 'nested' = 'body';

  /**
   * @param bodyLimit body_checks_size_limit
   * @param inspectBody false: the body streams through untouched (no body/MIME checks)
   */
  constructor(h: MessageHandler, headerSizeLimit: number, bodyLimit: number, inspectBody: boolean) {
    this.h = h;
    this.limit = headerSizeLimit;
    this.bodyLimit = bodyLimit;
    this.inspectBody = inspectBody;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.state === 'body' && !this.inspectBody && this.partialLen === 0) return this.h.emit(chunk);
    let pos = 0;
    while (pos < chunk.length) {
      if (this.state === 'body' && !this.inspectBody && this.partialLen === 0) return this.h.emit(chunk.subarray(pos));
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) {
        if (this.state === 'body' && this.partialLen + chunk.length - pos > BODY_PIECE) {
          const piece = Buffer.concat([...this.partial, chunk.subarray(pos)]);
          this.partial = []; this.partialLen = 0;
          await this.bodyText(piece);
          this.midLine = true;
          return;
        }
        this.addPartial(chunk.subarray(pos));
        return;
      }
      const piece = chunk.subarray(pos, nl + 1);
      pos = nl + 1;
      let line: Buffer;
      if (this.partialLen) {
        // After an overflow only the line end is kept of the rest of the line.
        const tail = this.partialOverflow ? Buffer.from('\n') : piece;
        this.partial.push(tail);
        line = Buffer.concat(this.partial, this.partialLen + tail.length);
        this.partial = []; this.partialLen = 0;
      } else {
        line = piece;
      }
      const overflow = this.partialOverflow;
      this.partialOverflow = false;
      if (this.midLine) {
        // The end of a long body line: neither a MIME boundary nor the start of anything.
        this.midLine = false;
        if (this.state === 'body') { await this.bodyText(line); continue; }
      }
      await this.line(line, overflow);
    }
  }

  /** End of content: an unterminated last line gets its LF; a message that is all headers still gets its missing headers. */
  async end(): Promise<void> {
    if (this.partialLen || this.midLine) {
      const line = Buffer.concat([...this.partial, Buffer.from('\n')]);
      this.partial = []; this.partialLen = 0;
      if (this.midLine && this.state === 'body') { this.midLine = false; await this.bodyText(line); } else await this.line(line, this.partialOverflow);
    }
    if (this.state === 'headers') await this.endHeaders();
  }

  private addPartial(b: Buffer): void {
    // In a header, a line longer than header_size_limit cannot be kept whole: its excess is dropped.
    if (this.state === 'headers' && this.partialLen + b.length > this.limit) {
      const room = Math.max(0, this.limit - this.partialLen);
      if (room) { this.partial.push(Buffer.from(b.subarray(0, room))); this.partialLen += room; }
      this.partialOverflow = true;
      return;
    }
    this.partial.push(Buffer.from(b));
    this.partialLen += b.length;
  }

  private async line(line: Buffer, overflow: boolean): Promise<void> {
    if (this.state === 'body') return this.body(line);
    const first = line[0];
    const isCont = (first === 0x20 || first === 0x09) && this.curLen > 0;
    if (isCont) {
      if (this.curLen + line.length > this.limit || overflow) {
        if (!this.curTruncated && this.curLen + line.length > this.limit) {
          log.warn(`${this.h.queueId}: header ${this.curName}: header is longer than header_size_limit = ${this.limit}: excess discarded`);
        }
        this.curTruncated = true;
        if (this.curLen + line.length <= this.limit) { this.cur.push(line); this.curLen += line.length; }
        return;
      }
      this.cur.push(line); this.curLen += line.length;
      return;
    }
    await this.flushHeader();
    const text = line.toString('latin1');
    const m = HDR_NAME.exec(text);
    if (m) {
      this.cur = [line]; this.curLen = line.length; this.curName = m[1]!; this.curTruncated = false;
      if (overflow) log.warn(`${this.h.queueId}: header ${this.curName}: header is longer than header_size_limit = ${this.limit}: excess discarded`);
      return;
    }
    // The empty line, or a line that is not a header, ends the header block.
    await this.endHeaders();
    const blank = line[0] === LF || (line[0] === 0x0d && line[1] === LF);
    // The empty separator line itself is body text, but cannot start an attached message.
    await this.body(line, !blank);
  }

  private async flushHeader(): Promise<void> {
    if (this.curLen === 0) return;
    const h = this.cur.length === 1 ? this.cur[0]! : Buffer.concat(this.cur, this.curLen);
    const name = this.curName.toLowerCase();
    this.cur = []; this.curLen = 0;
    if (this.hdrClass === 'primary') {
      this.result.seen.add(name);
      if (name === 'message-id') {
        const t = h.toString('latin1');
        const id = /<[^>]*>/.exec(t);
        this.result.messageId = id ? id[0] : t.slice(t.indexOf(':') + 1).trim();
      }
    }
    if (name === 'content-type') this.noteContentType(h.toString('latin1'));
    const out = this.h.header ? await this.h.header(h, this.curName, this.hdrClass) : h;
    if (out.length) await this.h.emit(out);
  }

  private noteContentType(h: string): void {
    const v = h.slice(h.indexOf(':') + 1);
    this.blockType = (/^\s*([^;\s]+)/.exec(v)?.[1] ?? '').toLowerCase();
    const b = /;\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(v);
    this.blockBoundary = b ? (b[1] ?? b[2]) : undefined;
  }

  private async endHeaders(): Promise<void> {
    await this.flushHeader();
    if (this.hdrClass === 'primary' && this.state === 'headers') {
      const add = this.h.onHeadersEnd();
      if (add.length) await this.h.emit(add);
    }
    this.state = 'body';
    // MIME (RFC 2046 §5.1): a multipart pushes its boundary; message/rfc822 makes the next block nested headers.
    if (this.blockType.startsWith('multipart/') && this.blockBoundary) this.boundaries.push(this.blockBoundary);
    this.afterHeaders = this.blockType === 'message/rfc822' ? 'nested' : 'body';
    this.blockType = ''; this.blockBoundary = undefined;
  }

  private async body(line: Buffer, mayStartNested = true): Promise<void> {
    if (!this.inspectBody) return this.h.emit(line);
    if (this.afterHeaders === 'nested' && mayStartNested) {
      // The attached message's own header block (Postfix MIME_HDR_NESTED) starts right here.
      this.afterHeaders = 'body';
      const first = line[0];
      if (first !== LF && !(first === 0x0d && line[1] === LF)) {
        this.state = 'headers'; this.hdrClass = 'nested';
        return this.line(line, false);
      }
    }
    // A boundary line opens a part's header block (MIME_HDR_MULTIPART).
    if (this.boundaries.length && line[0] === 0x2d && line[1] === 0x2d) {
      const t = line.toString('latin1').replace(/\r?\n$/, '').replace(/[ \t]+$/, '');
      for (let i = this.boundaries.length - 1; i >= 0; i--) {
        const b = this.boundaries[i]!;
        if (t === `--${b}`) {
          this.boundaries.length = i + 1;
          await this.h.emit(line);
          this.state = 'headers'; this.hdrClass = 'multipart';
          return;
        }
        if (t === `--${b}--`) {
          this.boundaries.length = i;
          return this.h.emit(line);
        }
      }
    }
    await this.bodyText(line);
  }

  /** Body text (a line, or a piece of a long one) through body_checks and out. */
  private async bodyText(line: Buffer): Promise<void> {
    if (this.h.bodyLine && this.bodyBytes < this.bodyLimit) {
      this.bodyBytes += line.length;
      const out = await this.h.bodyLine(line);
      if (out.length) await this.h.emit(out);
      return;
    }
    await this.h.emit(line);
  }
}

/** A header name is a MIME header (Postfix HDR_OPT_MIME): Content-* and MIME-Version. */
export function isMimeHeader(name: string): boolean {
  const n = name.toLowerCase();
  return n.startsWith('content-') || n === 'mime-version';
}
