/**
 * lmtpd-spool - where one LMTP DATA is kept until it is delivered to every recipient, with a
 * fixed memory window, as Dovecot 2.3's lmtp does (lmtp-commands.c cmd_data_begin():
 * iostream_temp_create_named(mail_temp_dir/dovecot.lmtp.*) - the message stays in memory up to
 * IOSTREAM_TEMP_MAX_BUF_SIZE_DEFAULT, 128 KiB, and goes to an unlinked temporary file past it).
 *
 *   push(bytes)      content from the DATA decoder (already unstuffed, LF line ends); copied
 *                    into 64 KiB blocks. Past the memory limit a file is created in `dir`
 *                    (dovecot.conf mail_temp_dir, default /tmp), O_EXCL, mode 0600, unlinked at
 *                    once (nothing is left behind by a crash), and the blocks are written to it
 *                    in order by one writer.
 *   backlog          bytes received but not yet written: the session stops reading the socket
 *                    while it is above WRITE_WINDOW and resumes on `onDrain`, so a fast client
 *                    waits in the kernel, not in our memory.
 *   finish()         waits for every block to be written; throws the first write error.
 *   inMemory()       the whole message as one Buffer while it never left memory (the fast path
 *                    for the usual small message; same bytes as the file path).
 *   chunks()         a new reader of the whole content from the file (positional reads, so every
 *                    recipient's delivery reads its own copy at its own pace).
 *   head             the first 64 KiB (for the Message-ID in the log).
 *   close()          closes the file.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, constants as C } from 'node:fs';
import { join } from 'node:path';

/** Dovecot's IOSTREAM_TEMP_MAX_BUF_SIZE_DEFAULT: larger messages go to mail_temp_dir. */
export const SPOOL_MEMORY_MAX = 128 * 1024;
/** Bytes received but not yet on disk before the socket is paused. */
export const WRITE_WINDOW = 1024 * 1024;
const BLOCK = 64 * 1024;
/** The first block starts this small and doubles up to BLOCK: a usual 2 KiB message holds 8 KiB, not 64. */
const FIRST_BLOCK = 8 * 1024;
const READ_BLOCK = 256 * 1024;
const EMPTY = Buffer.alloc(0);

export class LmtpSpool {
  private readonly dir: string;
  private blocks: Buffer[] = [];
  private cur: Buffer = Buffer.allocUnsafe(FIRST_BLOCK);
  private curLen = 0;
  /** Total content bytes pushed. */
  size = 0;
  /** Bytes in sealed blocks. */
  private sealed = 0;
  /** Bytes queued for the file, not yet written. */
  backlog = 0;
  private first: Buffer | undefined;
  private fh: fsp.FileHandle | undefined;
  private opening: Promise<void> | undefined;
  private written = 0;
  private writing: Promise<void> | undefined;
  private error: unknown;
  onDrain: (() => void) | undefined;

  constructor(dir: string) { this.dir = dir; }

  push(b: Buffer): void {
    this.size += b.length;
    let off = 0;
    while (off < b.length) {
      if (this.curLen === this.cur.length) {
        if (this.cur.length === 0) this.cur = Buffer.allocUnsafe(BLOCK);   // a block after the first
        else {
          // still the first block: grow it (a small message stays one small buffer)
          const grown = Buffer.allocUnsafe(Math.min(BLOCK, this.cur.length * 2));
          this.cur.copy(grown, 0, 0, this.curLen);
          this.cur = grown;
        }
      }
      const n = Math.min(this.cur.length - this.curLen, b.length - off);
      b.copy(this.cur, this.curLen, off, off + n);
      this.curLen += n;
      off += n;
      if (this.curLen === BLOCK) this.seal();
    }
  }

  private seal(): void {
    if (this.curLen === 0) return;
    const full = this.curLen === BLOCK ? this.cur : this.cur.subarray(0, this.curLen);
    this.blocks.push(full);
    this.sealed += full.length;
    this.first ??= full;
    this.cur = EMPTY;   // the next block is allocated when content comes (none after finish())
    this.curLen = 0;
    if (this.fh !== undefined || this.opening !== undefined) {
      this.backlog += full.length;
      this.kick();
    } else if (this.sealed > SPOOL_MEMORY_MAX) {
      for (const x of this.blocks) this.backlog += x.length;
      this.opening = this.open().catch((e) => { this.error ??= e; });
      this.kick();
    }
  }

  private async open(): Promise<void> {
    const path = join(this.dir, `dovecot.lmtp.${process.pid}.${randomBytes(8).toString('hex')}`);
    this.fh = await fsp.open(path, C.O_RDWR | C.O_CREAT | C.O_EXCL, 0o600);
    await fsp.unlink(path).catch(() => {});
  }

  private kick(): void {
    if (this.writing) return;
    this.writing = this.writeLoop().finally(() => { this.writing = undefined; });
  }

  private async writeLoop(): Promise<void> {
    await this.opening;
    while (this.blocks.length > 0) {
      const b = this.blocks.shift()!;
      if (this.error === undefined && this.fh) {
        try {
          let off = 0;
          while (off < b.length) {
            const { bytesWritten } = await this.fh.write(b, off, b.length - off, this.written + off);
            off += bytesWritten;
          }
        } catch (e) { this.error ??= e; }
      }
      this.written += b.length;
      this.backlog -= b.length;
      if (this.backlog <= WRITE_WINDOW / 2) this.onDrain?.();
    }
  }

  /** The first 64 KiB of the content. */
  get head(): Buffer { return this.first ?? this.cur.subarray(0, this.curLen); }

  /** Is the session to stop reading the socket? */
  get full(): boolean { return this.backlog > WRITE_WINDOW; }

  /** The end of the content: everything written (file) or kept (memory). */
  async finish(): Promise<void> {
    this.seal();
    while (this.writing) await this.writing;
    if (this.error !== undefined) throw this.error;
  }

  inMemory(): Buffer | undefined {
    if (this.fh !== undefined || this.opening !== undefined) return undefined;
    return this.blocks.length === 1 ? this.blocks[0]! : Buffer.concat(this.blocks);
  }

  async *chunks(): AsyncGenerator<Buffer> {
    const fh = this.fh!;
    let pos = 0;
    while (pos < this.written) {
      const buf = Buffer.allocUnsafe(Math.min(READ_BLOCK, this.written - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) throw new Error('temporary file shorter than written');
      pos += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  }

  async close(): Promise<void> {
    this.blocks = [];
    while (this.writing) await this.writing.catch(() => {});
    await this.opening;
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
  }
}
