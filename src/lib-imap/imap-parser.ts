/**
 * imap-parser — incremental IMAP command parser (RFC 3501 §9 / RFC 9051 §9 grammar) for a
 * server reading a socket: tag, command name and the arguments as a typed token tree.
 *
 * Feed bytes with push(); pull events with next() until it returns undefined (needs more data).
 * Events:
 *   command       a complete command: tag, command ("UID FETCH" for UID commands), args
 *   literal       a literal {N} / {N+} / ~{N} was announced; the parser pauses until the server
 *                 calls acceptLiteral() (then, for a synchronising literal, it sends "+ OK") or
 *                 rejectLiteral() (then it answers the tag with NO/BAD itself). The announced size
 *                 is known before a single literal byte is read, so APPEND can check quota first.
 *   literal-chunk literal data, when acceptLiteral({ stream: true }) (APPEND without buffering)
 *   line          a raw line, after expectRawLine() (AUTHENTICATE responses, IDLE's DONE); a line
 *                 longer than maxLineLength comes as `tooLong` with no data (the rest of it is
 *                 skipped without being buffered), so the waiting command can answer
 *   error         a protocol error, with the tag when it was read; the server answers
 *                 `TAG BAD message` (or `* BAD` without tag). When `fatal`, the connection cannot
 *                 be resynchronised (e.g. a too large non-synchronising literal): send BYE and close.
 *
 * Limits (Dovecot's defaults): the bytes of a command ≤ maxLineLength (imap_max_line_length =
 * 64k) — literals accepted with acceptLiteral() count too, as in Dovecot's imap-parser, except
 * those accepted `uncounted` (APPEND's message data, which the server bounds itself); the server
 * checks `commandBytes + size` when a literal is announced. Each literal ≤ maxLiteralSize
 * (announced larger → error before a byte is read), non-synchronising literals ≤ maxNonSyncLiteral (LITERAL- of RFC 7888: 4096),
 * list nesting ≤ maxListDepth, NUL bytes in a command line → error. While a literal waits for
 * the server's decision at most maxLineLength bytes (plus a non-synchronising literal's data)
 * are buffered; a client that sends more is cut off (fatal). Parsing is iterative: a
 * 100,000-deep list costs no call stack. After a non-fatal error the rest of the command line is
 * skipped without being buffered (including the data of non-synchronising literals).
 *
 * Tokens: atoms (after BODY, BODY.PEEK, BINARY, BINARY.PEEK or BINARY.SIZE a `[...]` runs to
 * the matching `]` with spaces and lists, so `BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>` is one
 * atom, as FETCH needs; anywhere else `[` and `]` are plain ASTRING-CHARs), numbers (atoms of
 * digits ≤ 2^53), quoted strings (only `\"` and `\\` escapes; 8-bit allowed for UTF8=ACCEPT),
 * literals, literal8 (RFC 3516), NIL, and parenthesised lists.
 */

export type ImapArg =
  | { type: 'atom'; value: string }
  | { type: 'number'; value: number; raw: string }
  | { type: 'string'; value: Buffer }
  | { type: 'literal'; value: Buffer; literal8: boolean; size: number; streamed: boolean }
  /** NIL; `raw` is the atom as sent, for the places where an astring is expected (RFC 3501 §9). */
  | { type: 'nil'; raw: string }
  | { type: 'list'; items: ImapArg[] };

export type ImapParserEvent =
  | { type: 'command'; tag: string; command: string; args: ImapArg[] }
  | { type: 'literal'; tag: string; command: string; size: number; sync: boolean; literal8: boolean }
  | { type: 'literal-chunk'; data: Buffer; last: boolean }
  | { type: 'line'; data: Buffer; tooLong?: boolean }
  | { type: 'error'; tag?: string; command?: string; message: string; code?: string; fatal: boolean };

/** The error message of a command line over maxLineLength (Dovecot: "Too long argument"). */
export const TOO_LONG_ARGUMENT = 'Too long argument';

export interface ImapParserOptions {
  /** Dovecot imap_max_line_length: non-literal bytes of one command. */
  maxLineLength?: number;
  /** Largest literal accepted at all. */
  maxLiteralSize?: number;
  /** Largest non-synchronising literal (RFC 7888 LITERAL-: 4096; LITERAL+: maxLiteralSize). */
  maxNonSyncLiteral?: number;
  maxListDepth?: number;
  /** Most arguments (all list levels) in one command. */
  maxArgs?: number;
}

/** The typed error the helpers throw; the server turns it into `TAG BAD text` (or NO + code). */
export class ImapParseError extends Error {
  readonly tag: string | undefined;
  readonly code: string | undefined;
  /** 'BAD' for syntax, 'NO' for semantic refusals like BADCHARSET. */
  readonly response: 'BAD' | 'NO';
  constructor(message: string, opts: { tag?: string; code?: string; response?: 'BAD' | 'NO' } = {}) {
    super(message);
    this.name = 'ImapParseError';
    this.tag = opts.tag;
    this.code = opts.code;
    this.response = opts.response ?? 'BAD';
  }
}

export const IMAP_MAX_LINE_LENGTH = 65536;
export const IMAP_LITERAL_MINUS_MAX = 4096;

/** The atoms after which `[` starts a FETCH section that may hold spaces and lists. */
const SECTION_ATOM = /^(?:BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)$/i;

const CR = 13;
const LF = 10;

type State = 'line' | 'literal-wait' | 'literal-data' | 'skip-line' | 'skip-literal' | 'raw-line';

interface Frame {
  items: ImapArg[];
}

function isTagChar(c: number): boolean {
  // tag = 1*<any ASTRING-CHAR except "+">
  return c > 0x20 && c < 0x7f && c !== 0x28 && c !== 0x29 && c !== 0x7b && c !== 0x25 &&
    c !== 0x2a && c !== 0x22 && c !== 0x5c && c !== 0x2b;
}

export class ImapParser {
  private maxLine: number;
  private readonly maxLiteral: number;
  private readonly maxNonSync: number;
  private readonly maxDepth: number;
  private readonly maxArgs: number;

  private buf: Buffer = Buffer.alloc(0);
  private state: State = 'line';
  private rawLineWanted = false;

  // the command being parsed
  private tag: string | undefined;
  private command = '';
  private stack: Frame[] = [];
  private lineBytes = 0;
  private argCount = 0;
  private pendingLiteral: { size: number; sync: boolean; literal8: boolean } | undefined;
  private literalLeft = 0;
  private literalChunks: Buffer[] = [];
  private literalStream = false;
  private skipAfterLiteral = false;

  constructor(opts: ImapParserOptions = {}) {
    this.maxLine = opts.maxLineLength ?? IMAP_MAX_LINE_LENGTH;
    this.maxLiteral = opts.maxLiteralSize ?? 64 * 1024 * 1024;
    this.maxNonSync = opts.maxNonSyncLiteral ?? IMAP_LITERAL_MINUS_MAX;
    this.maxDepth = opts.maxListDepth ?? 100;
    this.maxArgs = opts.maxArgs ?? 100_000;
    this.reset();
  }

  /** Bytes of the current command so far: its line fragments and the literals counted. */
  get commandBytes(): number { return this.lineBytes; }

  /** imap_max_line_length changes with the session's state (imap-login's limit is lower). */
  setMaxLineLength(n: number): void { this.maxLine = n; }

  /** Bytes held in memory right now (for tests and accounting). */
  get bufferedBytes(): number {
    return this.buf.length + this.literalChunks.reduce((n, c) => n + c.length, 0);
  }

  /** Input received but not parsed yet (what follows the last command), handed to a proxy. */
  takeBuffered(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    return b;
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** The next line is returned raw (event 'line'), not parsed as a command. */
  expectRawLine(): void {
    if (this.state === 'line' && this.stack.length === 1 && this.tag === undefined) this.state = 'raw-line';
    else this.rawLineWanted = true;
  }

  /** Continue after a 'literal' event. For a synchronising literal the server now sends "+ OK". */
  acceptLiteral(opts: { stream?: boolean; uncounted?: boolean } = {}): void {
    if (this.state !== 'literal-wait' || !this.pendingLiteral) throw new Error('no literal is waiting');
    this.literalLeft = this.pendingLiteral.size;
    // a streamed literal is never held, so it does not count either
    if (opts.uncounted !== true && opts.stream !== true) this.lineBytes += this.pendingLiteral.size;
    this.literalStream = opts.stream === true;
    this.literalChunks = [];
    this.state = 'literal-data';
  }

  /**
   * Refuse the announced literal; the server answers the tag itself. A synchronising literal is
   * never sent by the client, so parsing restarts at the next line; the data of a
   * non-synchronising one is skipped without buffering.
   */
  rejectLiteral(): void {
    if (this.state !== 'literal-wait' || !this.pendingLiteral) throw new Error('no literal is waiting');
    const lit = this.pendingLiteral;
    this.pendingLiteral = undefined;
    this.reset(); // the command is over: what follows its skipped data belongs to the next one
    if (lit.sync) this.state = 'line';
    else { this.literalLeft = lit.size; this.state = 'skip-literal'; this.skipAfterLiteral = true; }
  }

  private reset(): void {
    this.tag = undefined;
    this.command = '';
    this.stack = [{ items: [] }];
    this.lineBytes = 0;
    this.argCount = 0;
    this.pendingLiteral = undefined;
    this.literalChunks = [];
    this.literalStream = false;
  }

  private error(message: string, opts: { code?: string; fatal?: boolean; skip?: boolean } = {}): ImapParserEvent {
    const ev: ImapParserEvent = { type: 'error', message, fatal: opts.fatal === true };
    if (this.tag !== undefined) ev.tag = this.tag;
    if (this.command !== '') ev.command = this.command;
    if (opts.code !== undefined) ev.code = opts.code;
    this.reset();
    this.state = opts.fatal ? 'skip-line' : (opts.skip === false ? 'line' : 'skip-line');
    return ev;
  }

  next(): ImapParserEvent | undefined {
    for (let guard = 0; guard < 1_000_000; guard++) {
      switch (this.state) {
        case 'literal-wait': {
          // A client must wait for "+" before sending a synchronising literal; data of a
          // non-synchronising one may already arrive. Anything beyond that is not buffered.
          const lit = this.pendingLiteral!;
          const allowed = (lit.sync ? 0 : lit.size) + this.maxLine;
          if (this.buf.length > allowed) {
            this.buf = Buffer.alloc(0);
            this.state = 'skip-line';
            return this.error('Client sent data before the literal was accepted', { fatal: true });
          }
          return undefined;
        }
        case 'raw-line': {
          const nl = this.buf.indexOf(LF);
          if (nl < 0 ? this.buf.length > this.maxLine : nl > this.maxLine) {
            // the waiting command answers; the rest of the line is skipped, not buffered
            if (nl < 0) { this.buf = Buffer.alloc(0); this.state = 'skip-line'; } else { this.buf = this.buf.subarray(nl + 1); this.state = 'line'; }
            this.rawLineWanted = false;
            this.reset();
            return { type: 'line', data: Buffer.alloc(0), tooLong: true };
          }
          if (nl < 0) return undefined;
          let end = nl;
          if (end > 0 && this.buf[end - 1] === CR) end--;
          const data = Buffer.from(this.buf.subarray(0, end));
          this.buf = this.buf.subarray(nl + 1);
          this.state = 'line';
          return { type: 'line', data };
        }
        case 'skip-line': {
          // Discard up to the end of the line; a trailing {N+} means N more bytes to discard.
          const nl = this.buf.indexOf(LF);
          if (nl < 0) {
            // keep only a short tail: enough to recognise a literal announcement at the line end
            if (this.buf.length > 32) this.buf = this.buf.subarray(this.buf.length - 32);
            return undefined;
          }
          const head = this.buf.subarray(Math.max(0, nl - 32), nl).toString('latin1');
          this.buf = this.buf.subarray(nl + 1);
          const m = /~?\{(\d{1,20})\+\}\r?$/.exec(head);
          if (m) {
            const n = Number(m[1]);
            if (n > this.maxLiteral) { this.state = 'skip-line'; this.buf = Buffer.alloc(0); return this.error('Literal too large to skip', { fatal: true, code: 'TOOBIG' }); }
            this.literalLeft = n;
            this.state = 'skip-literal';
            this.skipAfterLiteral = true;
            continue;
          }
          this.state = this.rawLineWanted ? 'raw-line' : 'line';
          this.rawLineWanted = false;
          continue;
        }
        case 'skip-literal': {
          const n = Math.min(this.literalLeft, this.buf.length);
          this.buf = this.buf.subarray(n);
          this.literalLeft -= n;
          if (this.literalLeft > 0) return undefined;
          this.state = this.skipAfterLiteral ? 'skip-line' : 'line';
          continue;
        }
        case 'literal-data': {
          const lit = this.pendingLiteral!;
          const n = Math.min(this.literalLeft, this.buf.length);
          if (n === 0 && this.literalLeft > 0) return undefined;
          const data = this.buf.subarray(0, n);
          this.buf = this.buf.subarray(n);
          this.literalLeft -= n;
          if (this.literalStream) {
            const last = this.literalLeft === 0;
            if (last) this.finishLiteral(lit, Buffer.alloc(0), true);
            if (n > 0 || last) return { type: 'literal-chunk', data: Buffer.from(data), last };
            continue;
          }
          this.literalChunks.push(Buffer.from(data));
          if (this.literalLeft > 0) return undefined;
          this.finishLiteral(lit, Buffer.concat(this.literalChunks), false);
          continue;
        }
        case 'line': {
          const ev = this.parseLine();
          if (ev === null) continue;
          return ev;
        }
      }
    }
    return this.error('Parser loop limit', { fatal: true });
  }

  private finishLiteral(lit: { size: number; literal8: boolean }, value: Buffer, streamed: boolean): void {
    this.stack[this.stack.length - 1]!.items.push({
      type: 'literal', value, literal8: lit.literal8, size: lit.size, streamed,
    });
    this.argCount++;
    this.literalChunks = [];
    this.pendingLiteral = undefined;
    this.state = 'line';
  }

  /**
   * Parses the next line fragment (up to LF) of the current command. Returns an event, undefined
   * when more data is needed, or null to loop again (state changed).
   */
  private parseLine(): ImapParserEvent | undefined | null {
    const nl = this.buf.indexOf(LF);
    if (nl < 0) {
      if (this.lineBytes + this.buf.length > this.maxLine) {
        this.peekTag();
        this.buf = Buffer.alloc(0);
        return this.error(TOO_LONG_ARGUMENT, { code: 'TOOBIG' });
      }
      return undefined;
    }
    this.lineBytes += nl + 1;
    if (this.lineBytes > this.maxLine) {
      this.peekTag();
      this.buf = this.buf.subarray(nl + 1);
      return this.error(TOO_LONG_ARGUMENT, { code: 'TOOBIG', skip: false });
    }
    let end = nl;
    if (end > 0 && this.buf[end - 1] === CR) end--;
    const line = this.buf.subarray(0, end);
    this.buf = this.buf.subarray(nl + 1);
    const r = this.tokenize(line);
    if (r.kind === 'error') { const ev = this.error(r.message, { skip: false }); return this.skipLiteralAtEnd(ev, line); }
    if (r.kind === 'literal') {
      const lit = r.literal;
      if (lit.size > this.maxLiteral) {
        return this.skipLiteralAtEnd(this.error(`Literal size ${lit.size} too large (max ${this.maxLiteral})`,
          { code: 'TOOBIG', skip: false, fatal: !lit.sync && lit.size > this.maxLiteral * 2 }), line);
      }
      if (!lit.sync && lit.size > this.maxNonSync) {
        // RFC 7888 §4: a LITERAL- server must reject; the client sends the data anyway.
        const ev = this.error(`Non-synchronizing literal of ${lit.size} bytes too large (LITERAL- max ${this.maxNonSync})`,
          { code: 'TOOBIG', skip: false });
        this.literalLeft = lit.size;
        this.skipAfterLiteral = true;
        this.state = 'skip-literal';
        return ev;
      }
      this.pendingLiteral = lit;
      this.state = 'literal-wait';
      // "UID REPLACE": a UID command is named by its sub-command here too (as in 'command' events)
      const first = this.stack[0]!.items[0];
      const command = this.command === 'UID' && first?.type === 'atom' ? `UID ${first.value.toUpperCase()}` : this.command;
      return {
        type: 'literal', tag: this.tag ?? '', command, size: lit.size, sync: lit.sync,
        literal8: lit.literal8,
      };
    }
    // end of command
    if (this.stack.length !== 1) return this.error('Missing \')\'', { skip: false });
    const args = this.stack[0]!.items;
    const tag = this.tag;
    let command = this.command;
    if (tag === undefined) {
      this.reset();
      return null; // empty line: ignored, like Dovecot
    }
    if (command === '') return this.error('Missing command name', { skip: false });
    if (command === 'UID') {
      const a = args[0];
      if (a && a.type === 'atom') { command = 'UID ' + a.value.toUpperCase(); args.shift(); }
    }
    this.reset();
    if (this.rawLineWanted) { this.rawLineWanted = false; this.state = 'raw-line'; }
    return { type: 'command', tag, command, args };
  }

  /** After an error on a fragment that ends in {N+}, the client still sends N bytes: skip them. */
  private skipLiteralAtEnd(ev: ImapParserEvent, line: Buffer): ImapParserEvent {
    const m = /~?\{(\d{1,20})\+\}$/.exec(line.subarray(Math.max(0, line.length - 32)).toString('latin1'));
    if (m) {
      const n = Number(m[1]);
      if (n > this.maxLiteral) {
        if (ev.type === 'error') ev.fatal = true;
        this.state = 'skip-line';
        this.buf = Buffer.alloc(0);
        return ev;
      }
      this.literalLeft = n;
      this.skipAfterLiteral = true;
      this.state = 'skip-literal';
    }
    return ev;
  }

  /** Best effort tag extraction from buffered bytes, so an early error can name the tag. */
  private peekTag(): void {
    if (this.tag !== undefined) return;
    let i = 0;
    while (i < this.buf.length && i < 256 && isTagChar(this.buf[i]!)) i++;
    if (i > 0 && this.buf[i] === 0x20) {
      this.tag = this.buf.toString('latin1', 0, i);
      // and the command name, so that the error can name it as Dovecot does
      const m = /^(?:UID )?[A-Za-z][A-Za-z0-9.-]{0,63}(?= )/i.exec(this.buf.toString('latin1', i + 1, i + 80));
      if (m) this.command = m[0].toUpperCase();
    }
  }

  private tokenize(line: Buffer):
    | { kind: 'done' }
    | { kind: 'error'; message: string }
    | { kind: 'literal'; literal: { size: number; sync: boolean; literal8: boolean } } {
    let i = 0;
    const n = line.length;
    const nul = line.indexOf(0);
    if (nul >= 0) {
      this.peekTagFrom(line);
      // Dovecot's texts: a NUL in a quoted string, or anywhere else (an atom)
      let quoted = false;
      for (let q = 0; q < nul; q++) { if (line[q] === 0x5c && quoted) q++; else if (line[q] === 0x22) quoted = !quoted; }
      return { kind: 'error', message: quoted ? 'NULs not allowed in strings' : 'Invalid characters in atom' };
    }
    if (this.tag === undefined) {
      if (n === 0) return { kind: 'done' };
      while (i < n && isTagChar(line[i]!)) i++;
      if (i === 0) return { kind: 'error', message: 'Invalid tag' };
      this.tag = line.toString('latin1', 0, i);
      if (i >= n) return { kind: 'error', message: 'Missing command name' };
      if (line[i] !== 0x20) return { kind: 'error', message: 'Invalid characters in tag' };
      i++;
      const s = i;
      while (i < n && line[i] !== 0x20) i++;
      const name = line.toString('latin1', s, i);
      if (!/^[A-Za-z][A-Za-z0-9.-]*$/.test(name)) return { kind: 'error', message: 'Invalid command name' };
      this.command = name.toUpperCase();
    }
    for (;;) {
      while (i < n && line[i] === 0x20) i++;
      if (i >= n) return { kind: 'done' };
      const c = line[i]!;
      const frame = this.stack[this.stack.length - 1]!;
      if (++this.argCount > this.maxArgs) return { kind: 'error', message: 'Too many arguments' };
      if (c === 0x28) { // (
        if (this.stack.length > this.maxDepth) return { kind: 'error', message: `Lists nested deeper than ${this.maxDepth}` };
        const list: ImapArg = { type: 'list', items: [] };
        frame.items.push(list);
        this.stack.push({ items: list.items });
        i++;
        continue;
      }
      if (c === 0x29) { // )
        if (this.stack.length === 1) return { kind: 'error', message: 'Unexpected \')\'' };
        this.stack.pop();
        this.argCount--;
        i++;
        continue;
      }
      if (c === 0x22) { // quoted
        const out: number[] = [];
        i++;
        let closed = false;
        while (i < n) {
          const b = line[i]!;
          if (b === 0x22) { closed = true; i++; break; }
          if (b === 0x5c) {
            const e = line[i + 1];
            if (e !== 0x22 && e !== 0x5c) return { kind: 'error', message: 'Invalid escape in quoted string' };
            out.push(e);
            i += 2;
            continue;
          }
          out.push(b);
          i++;
        }
        if (!closed) return { kind: 'error', message: 'Missing \'"\' at end of quoted string' };
        frame.items.push({ type: 'string', value: Buffer.from(out) });
        if (i < n && line[i] !== 0x20 && line[i] !== 0x29) return { kind: 'error', message: 'Missing space after quoted string' };
        continue;
      }
      if (c === 0x7b || (c === 0x7e && line[i + 1] === 0x7b)) { // { or ~{
        const literal8 = c === 0x7e;
        const m = /^~?\{(\d{1,20})(\+?)\}$/.exec(line.toString('latin1', i));
        if (!m) return { kind: 'error', message: 'Invalid literal announcement (expected {N} at the end of the line)' };
        const size = Number(m[1]);
        if (!Number.isSafeInteger(size)) return { kind: 'error', message: 'Literal size too large' };
        this.argCount--;
        return { kind: 'literal', literal: { size, sync: m[2] !== '+', literal8 } };
      }
      // atom (with bracketed section kept whole)
      const s = i;
      let depth = 0;
      while (i < n) {
        const b = line[i]!;
        // `[` opens a section only after a FETCH attribute name (BODY[...], BINARY.PEEK[...]);
        // elsewhere it is an ATOM-CHAR like any other (mailbox `a[b`, RFC 3501 §9)
        if (b === 0x5b && (depth > 0 || SECTION_ATOM.test(line.toString('latin1', s, i)))) { depth++; i++; continue; }
        if (b === 0x5d && depth > 0) { depth--; i++; continue; }
        if (depth > 0) {
          if (b === 0x22) { // quoted inside brackets
            i++;
            while (i < n && line[i] !== 0x22) i += line[i] === 0x5c ? 2 : 1;
            i++;
            continue;
          }
          i++;
          continue;
        }
        if (b === 0x28 && i > s) return { kind: 'error', message: 'Invalid characters in atom' }; // Dovecot: `a(b`
        if (b === 0x20 || b === 0x28 || b === 0x29 || b === 0x22 || b < 0x20 || b === 0x7f) break;
        if (b === 0x7b) return { kind: 'error', message: 'Invalid characters in atom' }; // `{` is an atom-special (RFC 3501 §9)
        i++;
      }
      if (depth > 0) {
        // an unclosed section: the atom ends at the first space, and FETCH says what is missing
        i = s;
        while (i < n && line[i] !== 0x20 && line[i] !== 0x28 && line[i] !== 0x29 && line[i] !== 0x22 && line[i]! >= 0x20 && line[i] !== 0x7f) i++;
        if (line[i] === 0x28) return { kind: 'error', message: 'Invalid characters in atom' }; // `BODY[(`
      }
      const text = line.toString('latin1', s, i);
      if (text.length === 0) return { kind: 'error', message: 'Invalid characters in atom' };
      if (i < n && line[i] === 0x22) return { kind: 'error', message: 'Invalid characters in atom' };
      if (/^\d+$/.test(text) && text.length <= 16 && Number.isSafeInteger(Number(text))) {
        frame.items.push({ type: 'number', value: Number(text), raw: text });
      } else if (text.toUpperCase() === 'NIL') {
        frame.items.push({ type: 'nil', raw: text });
      } else {
        frame.items.push({ type: 'atom', value: text });
      }
    }
  }

  private peekTagFrom(line: Buffer): void {
    if (this.tag !== undefined) return;
    let i = 0;
    while (i < line.length && i < 256 && isTagChar(line[i]!)) i++;
    if (i > 0 && line[i] === 0x20) {
      this.tag = line.toString('latin1', 0, i);
      const m = /^(?:UID )?[A-Za-z][A-Za-z0-9.-]{0,63}(?= )/i.exec(line.toString('latin1', i + 1, i + 80));
      if (m) this.command = m[0].toUpperCase();
    }
  }
}

// ---- argument access helpers ----

/**
 * Text of an astring (RFC 3501 §9: atom, number, string or literal — NIL included, which is an
 * atom there: `SELECT NIL` opens the mailbox "NIL"); undefined for lists.
 */
export function argString(a: ImapArg | undefined): string | undefined {
  if (!a) return undefined;
  switch (a.type) {
    case 'atom': return a.value;
    case 'nil': return a.raw;
    case 'number': return a.raw;
    case 'string': case 'literal': return a.value.toString('utf8');
    default: return undefined;
  }
}

/** astring (RFC 3501): atom, number, quoted or literal. */
export function argAstring(a: ImapArg | undefined, what: string): string {
  const s = argString(a);
  if (s === undefined) throw new ImapParseError(`Expected ${what}`);
  return s;
}

/** Raw bytes of an astring (mailbox names, search strings may be 8-bit); NIL is "NIL". */
export function argBytes(a: ImapArg | undefined): Buffer | undefined {
  if (!a) return undefined;
  if (a.type === 'nil') return Buffer.from(a.raw, 'latin1');
  if (a.type === 'string' || a.type === 'literal') return a.value;
  if (a.type === 'atom') return Buffer.from(a.value, 'latin1');
  if (a.type === 'number') return Buffer.from(a.raw);
  return undefined;
}

export function argAtom(a: ImapArg | undefined): string | undefined {
  return a?.type === 'atom' ? a.value : a?.type === 'number' ? a.raw : undefined;
}

export function argNumber(a: ImapArg | undefined, what: string, max = 0xffffffff): number {
  if (a?.type !== 'number' || a.value > max) throw new ImapParseError(`Invalid ${what}: expected a number ≤ ${max}`);
  return a.value;
}

/** mod-sequence-value (RFC 7162 §7): 1..2^63-1, returned as bigint. */
export function argModSeq(a: ImapArg | undefined, what: string, allowZero = false): bigint {
  const raw = a?.type === 'number' ? a.raw : a?.type === 'atom' ? a.value : undefined;
  if (raw === undefined || !/^\d{1,19}$/.test(raw)) throw new ImapParseError(`Invalid ${what}: expected a mod-sequence number`);
  const v = BigInt(raw);
  if (v > 0x7fffffffffffffffn || (!allowZero && v === 0n)) throw new ImapParseError(`Invalid ${what}: out of range`);
  return v;
}
