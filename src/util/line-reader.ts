/**
 * line-reader - a socket's input as command lines (Dovecot lib/istream.c i_stream_read_next_line()
 * over a size-limited input buffer), used by pop3d and lmtpd: splits socket input at LF (CR
 * before it removed; a NUL is kept as data, so it can only make a command unknown or a name
 * invalid), with a hard limit on the length of one line and on what may be buffered, so a client
 * sending 1 MB without a line end costs at most `maxLine` bytes of memory.
 *
 * `next()` resolves with the next line, `{ tooLong: true }` once for a line that exceeds maxLine
 * (its bytes are discarded up to the next LF; pop3d answers and disconnects as Dovecot does, lmtpd
 * answers and goes on), or undefined at end of input.
 * `startRaw(sink)` hands the bytes buffered after the last returned line, and all later input,
 * to a DATA decoder (LMTP); `endRaw(rest)` gives back what follows the data.
 *
 * SMTP lines, which Postfix cuts at line_length_limit instead of refusing, are read by
 * lib-smtp/smtp-get.ts.
 */
import type { Socket } from 'node:net';

export type LineResult = string | { tooLong: true } | undefined;

/**
 * Follow a socket's input: `onData` for each chunk, `onEnd` once input is over however it ends
 * (end, close or error). Returns the function that stops following (a proxy takes the socket).
 */
export function followInput(sock: Socket, onData: (d: Buffer) => void, onEnd: () => void): () => void {
  sock.on('data', onData);
  sock.on('end', onEnd);
  sock.on('close', onEnd);
  sock.on('error', onEnd);
  return () => {
    sock.off('data', onData);
    sock.off('end', onEnd);
    sock.off('close', onEnd);
    sock.off('error', onEnd);
  };
}

export class LineReader {
  private readonly sock: Socket;
  private readonly maxLine: number;
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private tooLong = false;
  private waiter: (() => void) | undefined;
  /** When set, raw chunks go here instead of the line buffer (LMTP DATA). */
  private rawSink: ((chunk: Buffer) => void) | undefined;
  private readonly unfollow: () => void;

  constructor(sock: Socket, maxLine: number) {
    this.sock = sock;
    this.maxLine = maxLine;
    this.unfollow = followInput(sock, this.onData, this.onEnd);
  }

  private readonly onData = (d: Buffer): void => {
    if (this.rawSink) { this.rawSink(d); return; }
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    // Back-pressure: a client pipelining far ahead waits in the kernel, not in our memory.
    if (this.buf.length > this.maxLine * 4) this.sock.pause();
    this.wake();
  };
  private readonly onEnd = (): void => { this.ended = true; this.wake(); };

  /**
   * Stop reading the socket (a proxy takes it over): returns the bytes buffered after the last
   * line returned; the socket is left paused.
   */
  release(): Buffer {
    this.sock.pause();
    this.unfollow();
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    this.ended = true;
    this.wake();
    return b;
  }

  private wake(): void { const w = this.waiter; this.waiter = undefined; w?.(); }

  async next(): Promise<LineResult> {
    for (;;) {
      if (this.tooLong) {
        // Skipping the rest of an over-long line.
        const end = this.buf.indexOf(0x0a);
        if (end < 0) {
          this.buf = Buffer.alloc(0);
          if (this.sock.isPaused()) this.sock.resume();
          if (this.ended) return undefined;
          await new Promise<void>((r) => { this.waiter = r; });
          continue;
        }
        this.buf = this.buf.subarray(end + 1);
        this.tooLong = false;
      }
      const nl = this.buf.indexOf(0x0a);
      if (nl >= 0 && nl <= this.maxLine + 1) {
        let line = this.buf.subarray(0, nl);
        this.buf = this.buf.subarray(nl + 1);
        if (this.sock.isPaused() && this.buf.length <= this.maxLine) this.sock.resume();
        if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
        return line.toString('utf8');
      }
      if (nl > this.maxLine + 1) {
        // The over-long line ends in the buffer: drop it, the next line is readable.
        this.buf = this.buf.subarray(nl + 1);
        return { tooLong: true };
      }
      if (nl < 0 && this.buf.length > this.maxLine + 1) {
        // Drop what we have and skip input up to the next LF.
        this.tooLong = true;
        this.buf = Buffer.alloc(0);
        if (this.sock.isPaused()) this.sock.resume();
        return { tooLong: true };
      }
      if (this.ended) return undefined;
      // We need more input: make sure the socket flows (it may have been paused above).
      if (this.sock.isPaused()) this.sock.resume();
      await new Promise<void>((r) => { this.waiter = r; });
    }
  }

  /** Is a complete line already buffered (the client pipelined)? Replies may then wait. */
  hasLine(): boolean { return !this.tooLong && this.buf.indexOf(0x0a) >= 0; }

  /**
   * Switch to raw mode: `sink` gets what is buffered now and every later chunk, until
   * endRaw(rest) puts `rest` (input after the raw part) back in front of the line buffer.
   */
  startRaw(sink: (chunk: Buffer) => void): void {
    this.rawSink = sink;
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    if (this.sock.isPaused()) this.sock.resume();
    if (b.length > 0) sink(b);
  }

  endRaw(rest: Buffer): void {
    this.rawSink = undefined;
    if (rest.length > 0) this.buf = this.buf.length === 0 ? Buffer.from(rest) : Buffer.concat([rest, this.buf]);
    this.wake();
  }

  get isEnded(): boolean { return this.ended; }
}
