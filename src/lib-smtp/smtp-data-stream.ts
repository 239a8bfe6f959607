/**
 * smtp-data-stream - the DATA phase decoder (RFC 5321 §4.1.1.4, §4.5.2): dot-unstuffing, the end
 * of data "CRLF.CRLF", and line endings normalised to LF for the queue file.
 *
 * SMTP smuggling (CVE-2023-51764 class): the end of data is recognised ONLY as ".<CR><LF>" at the
 * start of a line that followed <CR><LF>. A bare <LF> (not preceded by <CR>) is handled per
 * Postfix's smtpd_forbid_bare_newline: 'normal'/'strict' → the session is told (onBareLf) so
 * smtpd answers "521 5.5.2 <host> Error: bare <LF> received" and disconnects, as Postfix 3.9
 * does; 'no' → the bare LF is taken as a line end for the content (but never as part of the
 * end-of-data sequence). A bare <CR> is ordinary data.
 *
 * The decoder is push-based: feed() takes socket chunks and returns how many bytes of the chunk
 * belonged to the message (the rest is the next pipelined command); content comes out through
 * the `out` callback in LF form. Memory is bounded: a line without LF is passed on in pieces.
 * Once `discard` is set (smtpd: past message_size_limit) nothing more comes out and a long line
 * is dropped as it arrives: the decoder only looks for the end of data.
 */

export interface DataDecoderOptions {
  /** Called with message content (LF line endings). */
  out: (chunk: Buffer) => void;
  /** Called once on the first bare LF when forbidBareLf is set. */
  onBareLf?: () => void;
  forbidBareLf: boolean;
}

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const MAX_HOLD = 65536;

export class DataDecoder {
  private readonly opts: DataDecoderOptions;
  /** Bytes of the current, not yet terminated line. */
  private hold: Buffer[] = [];
  private holdLen = 0;
  /** The current line started after CRLF (or at the start of DATA): eligible for "." end. */
  private lineAfterCrlf = true;
  /** A piece of the current line was already emitted (so it cannot be "." nor dot-stuffed). */
  private lineEmitted = false;
  done = false;
  /** Bytes of message content produced (after unstuffing, LF endings). */
  size = 0;
  sawBareLf = false;
  /** Keep looking for the end of data, but pass nothing on. */
  discard = false;

  constructor(opts: DataDecoderOptions) { this.opts = opts; }

  /** Returns the number of bytes of `chunk` consumed; when `done`, the rest is the next command. */
  feed(chunk: Buffer): number {
    let pos = 0;
    while (pos < chunk.length && !this.done) {
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) {
        this.holdBytes(chunk.subarray(pos));
        return chunk.length;
      }
      this.holdBytes(chunk.subarray(pos, nl));
      pos = nl + 1;
      this.endLine();
    }
    return pos;
  }

  private holdBytes(b: Buffer): void {
    if (b.length === 0) return;
    this.hold.push(b);
    this.holdLen += b.length;
    if (this.holdLen > MAX_HOLD) {
      if (this.discard) {
        // Only whether the line ends in CRLF still matters: keep its last byte.
        this.hold = [Buffer.from(b.subarray(b.length - 1))];
        this.holdLen = 1;
        this.lineEmitted = true;
        return;
      }
      // A very long line: pass on all but the last byte (it may be the CR of CRLF).
      const line = Buffer.concat(this.hold, this.holdLen);
      const keep = line.subarray(line.length - 1);
      let emit = line.subarray(0, line.length - 1);
      if (!this.lineEmitted && emit[0] === DOT) emit = emit.subarray(1);
      this.emit(emit);
      this.lineEmitted = true;
      this.hold = [Buffer.from(keep)];
      this.holdLen = 1;
    }
  }

  private endLine(): void {
    let line = this.holdLen === 0 ? Buffer.alloc(0) : (this.hold.length === 1 ? this.hold[0]! : Buffer.concat(this.hold, this.holdLen));
    this.hold = [];
    this.holdLen = 0;
    const crlf = line.length > 0 && line[line.length - 1] === CR;
    if (crlf) line = line.subarray(0, line.length - 1);
    else {
      if (!this.sawBareLf) {
        this.sawBareLf = true;
        if (this.opts.forbidBareLf) this.opts.onBareLf?.();
      }
    }
    if (!this.lineEmitted) {
      if (crlf && this.lineAfterCrlf && line.length === 1 && line[0] === DOT) {
        this.done = true;
        return;
      }
      if (line.length > 0 && line[0] === DOT) line = line.subarray(1); // RFC 5321 §4.5.2
    }
    this.emit(line);
    this.emit(LF_BUF);
    this.lineEmitted = false;
    this.lineAfterCrlf = crlf;
  }

  private emit(b: Buffer): void {
    if (b.length === 0 || this.discard) return;
    this.size += b.length;
    this.opts.out(b);
  }
}

const LF_BUF = Buffer.from('\n');

/**
 * Encode content for the wire as SMTP DATA / a POP3 multi-line answer: each line goes out with
 * CRLF, a line that starts with "." gets one more "." (RFC 5321 §4.5.2, RFC 1939 §3), ".<CRLF>"
 * ends it, and a last line without LF is ended with CRLF, as Postfix does.
 *
 * `keepCr` is for queue content (the smtp/lmtp client, Postfix smtp_proto.c smtp_text_out()):
 * smtpd turned every CRLF into LF, so a CR left right before an LF is part of the message (a
 * client sent CR CR LF) and goes out as it is: "x\r\n" → "x\r\r\n". Without it (pop3d), a
 * line's CR before the LF is dropped: Maildir files may already have CRLF line endings.
 */
export function dotStuff(content: Buffer, o: { keepCr?: boolean } = {}): Buffer {
  const keepCr = o.keepCr === true;
  const parts: Buffer[] = [];
  let pos = 0;
  let lineStart = true;
  while (pos < content.length) {
    const nl = content.indexOf(LF, pos);
    const end = nl < 0 ? content.length : nl;
    if (lineStart && content[pos] === DOT) parts.push(DOT_BUF);
    let line = content.subarray(pos, end);
    if (!keepCr && line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    parts.push(line);
    if (nl >= 0) parts.push(CRLF_BUF);
    pos = nl < 0 ? content.length : nl + 1;
    lineStart = nl >= 0;
  }
  if (!lineStart) parts.push(CRLF_BUF);
  parts.push(END_BUF);
  return Buffer.concat(parts);
}
const DOT_BUF = Buffer.from('.');
const CRLF_BUF = Buffer.from('\r\n');
const END_BUF = Buffer.from('.\r\n');
