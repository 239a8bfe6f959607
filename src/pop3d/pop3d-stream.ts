/**
 * pop3d-stream - RETR and TOP of a large message without holding it (issue 13: a session holds
 * a fixed window of a message, never all of it): the message file is read in chunks and each
 * chunk is encoded for the wire as it comes, with the same bytes as lib-smtp's dotStuff() of the
 * whole message (RFC 1939 §3: CRLF line ends, a line starting with "." gets one more, a last
 * line without LF is ended; a line's CR before its LF is dropped, Maildir files may have CRLF).
 *
 *   new DotStuffer()          push(chunk) → wire bytes; end() → the rest and ".\r\n"
 *   new TopCutter(lines)      cut(chunk) → the part of the chunk within the header and the first
 *                             `lines` body lines (RFC 1939 §7 TOP), as pop3d-commands topOf();
 *                             `done` once the rest of the message is not wanted
 */

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CR_BUF = Buffer.from('\r');
const DOT_BUF = Buffer.from('.');
const CRLF_BUF = Buffer.from('\r\n');
const END_BUF = Buffer.from('.\r\n');

export class DotStuffer {
  private lineStart = true;
  /** A CR at the end of the last chunk: dropped if an LF follows, kept otherwise. */
  private heldCr = false;

  push(chunk0: Buffer): Buffer {
    if (chunk0.length === 0) return chunk0;
    const chunk = this.heldCr ? Buffer.concat([CR_BUF, chunk0]) : chunk0;
    this.heldCr = false;
    const parts: Buffer[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(LF, pos);
      if (this.lineStart && chunk[pos] === DOT) parts.push(DOT_BUF);
      if (nl < 0) {
        // A line continued in the next chunk; a CR at the very end waits for what follows.
        let end = chunk.length;
        if (chunk[end - 1] === CR) { this.heldCr = true; end--; }
        parts.push(chunk.subarray(pos, end));
        this.lineStart = false;
        break;
      }
      parts.push(chunk.subarray(pos, nl > pos && chunk[nl - 1] === CR ? nl - 1 : nl), CRLF_BUF);
      pos = nl + 1;
      this.lineStart = true;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** The end of the message: a held CR is dropped (as dotStuff() does), an open line ended. */
  end(): Buffer {
    this.heldCr = false;
    return this.lineStart ? END_BUF : Buffer.concat([CRLF_BUF, END_BUF]);
  }
}

export class TopCutter {
  private inHeader = true;
  /** Bytes of the current header line seen so far, and whether the first was a CR. */
  private lineBytes = 0;
  private firstCr = false;
  private left: number;
  done = false;

  constructor(lines: number) { this.left = lines; }

  private seen(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    if (this.lineBytes === 0) this.firstCr = chunk[from] === CR;
    this.lineBytes += to - from;
  }

  cut(chunk: Buffer): Buffer {
    if (this.done) return chunk.subarray(0, 0);
    let pos = 0;
    while (pos < chunk.length) {
      if (this.inHeader) {
        const nl = chunk.indexOf(LF, pos);
        if (nl < 0) { this.seen(chunk, pos, chunk.length); return chunk; }
        this.seen(chunk, pos, nl);
        // The end of the header: the first empty line (a lone CR counts as empty).
        if (this.lineBytes === 0 || (this.lineBytes === 1 && this.firstCr)) this.inHeader = false;
        this.lineBytes = 0;
        pos = nl + 1;
        continue;
      }
      if (this.left === 0) { this.done = true; return chunk.subarray(0, pos); }
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) return chunk;
      this.left--;
      pos = nl + 1;
    }
    if (!this.inHeader && this.left === 0) this.done = true;
    return chunk;
  }
}
