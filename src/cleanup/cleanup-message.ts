/**
 * cleanup-message - the header pass of cleanup(8) (Postfix cleanup/cleanup_message.c): finds the
 * end of the primary header block in the streamed content, remembers which headers were seen,
 * and appends the missing ones (From:, Date:, Message-Id:, To: → "undisclosed-recipients:;")
 * at the end of the header block, as Postfix does for local submissions and for clients in
 * local_header_rewrite_clients (or always, with always_add_missing_headers = yes).
 *
 * The body streams through untouched (8-bit, NUL and long lines preserved byte for byte).
 * Header lines beyond header_size_limit are kept in the message but no longer inspected
 * (Postfix: "header_size_limit ... excess headers are treated as body"... see docs/cleanup.md).
 */

export interface HeaderScanResult {
  /** Lower-cased names of the headers seen in the primary header block. */
  seen: Set<string>;
  messageId?: string;
}

const HDR_NAME = /^([!-9;-~]+)[ \t]*:/;

export class HeaderScanner {
  private buf: Buffer[] = [];
  private bufLen = 0;
  private done = false;
  private readonly limit: number;
  readonly result: HeaderScanResult = { seen: new Set() };
  private readonly emit: (b: Buffer) => Promise<void>;
  private readonly onHeadersEnd: () => Buffer;

  /**
   * @param emit where processed content goes
   * @param onHeadersEnd returns the headers to append at the end of the header block
   */
  constructor(limit: number, emit: (b: Buffer) => Promise<void>, onHeadersEnd: () => Buffer) {
    this.limit = limit; this.emit = emit; this.onHeadersEnd = onHeadersEnd;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.done) return this.emit(chunk);
    this.buf.push(chunk);
    this.bufLen += chunk.length;
    const all = Buffer.concat(this.buf, this.bufLen);
    const end = findHeaderEnd(all);
    if (end >= 0) {
      this.buf = []; this.bufLen = 0;
      await this.finishHeaders(all.subarray(0, end), all.subarray(end));
    } else if (this.bufLen > this.limit) {
      this.buf = []; this.bufLen = 0;
      await this.finishHeaders(all, Buffer.alloc(0), true);
    } else {
      this.buf = [all];
    }
  }

  /** End of content: a message that is all headers still gets its missing headers. */
  async end(): Promise<void> {
    if (this.done) return;
    const all = Buffer.concat(this.buf, this.bufLen);
    this.buf = []; this.bufLen = 0;
    let headers = all;
    if (headers.length > 0 && headers[headers.length - 1] !== 0x0a) headers = Buffer.concat([headers, Buffer.from('\n')]);
    await this.finishHeaders(headers, Buffer.alloc(0));
  }

  private async finishHeaders(headers: Buffer, rest: Buffer, truncated = false): Promise<void> {
    this.done = true;
    const text = headers.toString('latin1');
    let current = '';
    for (const line of text.split('\n')) {
      if (line.startsWith(' ') || line.startsWith('\t')) { continue; }
      const m = HDR_NAME.exec(line);
      if (m) {
        current = m[1]!.toLowerCase();
        this.result.seen.add(current);
        if (current === 'message-id') {
          const id = /<[^>]*>/.exec(line);
          this.result.messageId = id ? id[0] : line.slice(line.indexOf(':') + 1).trim();
        }
      }
    }
    if (truncated) {
      await this.emit(headers);
      await this.emit(rest);
      return;
    }
    const add = this.onHeadersEnd();
    if (add.length) await this.emit(Buffer.concat([headers, add]));
    else await this.emit(headers);
    if (rest.length) await this.emit(rest);
  }
}

/**
 * Offset where the primary header block ends (the start of the empty line or of the first
 * line that is not a header), or -1 when more data is needed.
 */
export function findHeaderEnd(b: Buffer): number {
  let pos = 0;
  let first = true;
  while (pos < b.length) {
    const nl = b.indexOf(0x0a, pos);
    if (nl < 0) {
      // Incomplete line: decide only if it cannot be a header line.
      const partial = b.subarray(pos).toString('latin1');
      if (!first && (partial.startsWith(' ') || partial.startsWith('\t'))) return -1;
      if (/^[!-9;-~]*$/.test(partial)) return -1;
      if (HDR_NAME.test(partial)) return -1;
      return pos;
    }
    const line = b.subarray(pos, nl).toString('latin1').replace(/\r$/, '');
    if (line === '') return pos;
    const cont = line.startsWith(' ') || line.startsWith('\t');
    if (!(cont && !first) && !HDR_NAME.test(line)) return pos;
    first = false;
    pos = nl + 1;
  }
  return -1;
}
