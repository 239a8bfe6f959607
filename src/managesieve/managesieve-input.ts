/**
 * managesieve-input - a ManageSieve client's input as commands (RFC 5804 §4 formal syntax,
 * Pigeonhole's lib-managesieve/managesieve-parser.c): an atom (the command), then arguments —
 * quoted strings ("..." with \" and \\ escapes), literals ({N+} CRLF N bytes, and the
 * synchronizing {N} Pigeonhole also takes), atoms and numbers — up to CRLF.
 *
 *   const input = new ManageSieveInput(sock, { pauseAbove: 65536 });
 *   const r = await readCommand(input, limits, onLiteral);
 *
 * Every size is bounded before it is read:
 *  - one command line (without its literals) is at most `maxLine` bytes: past that the rest of
 *    the line is discarded and the command is `{ error: 'tooLong' }`;
 *  - a literal's size is announced first: `onLiteral(verb, index, size)` decides, before one byte
 *    of it is read, whether it is read (`'read'`, at most `maxLiteral` bytes unless the hook
 *    allows more), skipped (`'skip'`: its bytes are read and dropped, never held — Pigeonhole
 *    answers an oversized PUTSCRIPT at once and skips the script it announced) or the
 *    connection must end (`'close'`);
 *  - the socket is paused while more than `pauseAbove` bytes wait unread, so a client writing
 *    far ahead waits in the kernel, not in our memory.
 */
import type { Socket } from 'node:net';
import { followInput } from '../util/line-reader.ts';

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;

export class ManageSieveInput {
  private sock: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private ended = false;
  private waiter: (() => void) | undefined;
  private unfollow: () => void = () => {};
  private readonly pauseAbove: number;
  private readonly onData = (d: Buffer): void => {
    this.buf = this.pos >= this.buf.length ? d : Buffer.concat([this.buf.subarray(this.pos), d]);
    this.pos = 0;
    if (this.buf.length > this.pauseAbove) this.sock.pause();
    this.wake();
  };
  private readonly onEnd = (): void => { this.ended = true; this.wake(); };

  constructor(sock: Socket, o: { pauseAbove?: number } = {}) {
    this.sock = sock;
    this.pauseAbove = o.pauseAbove ?? 65536;
    this.unfollow = followInput(this.sock, this.onData, this.onEnd);
  }

  /** Read from another socket (after STARTTLS); input buffered in clear text is dropped (RFC 5804 §2.2). */
  switchTo(sock: Socket): void {
    this.unfollow();
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    this.ended = false;
    this.unfollow = followInput(this.sock, this.onData, this.onEnd);
  }

  /** Stop reading (a proxy takes the socket over): the bytes buffered and not yet read. */
  release(): Buffer {
    this.sock.pause();
    this.unfollow();
    const rest = this.buf.subarray(this.pos);
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    this.ended = true;
    this.wake();
    return rest;
  }

  private wake(): void { const w = this.waiter; this.waiter = undefined; w?.(); }

  get available(): number { return this.buf.length - this.pos; }
  get isEnded(): boolean { return this.ended && this.available === 0; }

  /** Wait until at least one byte is buffered; false at end of input. */
  async fill(): Promise<boolean> {
    while (this.available === 0) {
      if (this.ended) return false;
      if (this.sock.isPaused()) this.sock.resume();
      await new Promise<void>((r) => { this.waiter = r; });
    }
    return true;
  }

  /** The next byte without consuming it (call fill() first). */
  peek(): number { return this.buf[this.pos]!; }
  take(): number { return this.buf[this.pos++]!; }

  /** Up to `max` buffered bytes, consumed. */
  chunk(max: number): Buffer {
    const n = Math.min(max, this.available);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    if (this.pos === this.buf.length) { this.buf = Buffer.alloc(0); this.pos = 0; }
    return out;
  }

  /** Drop input up to and including the next LF; false at end of input. */
  async skipLine(): Promise<boolean> {
    for (;;) {
      if (!(await this.fill())) return false;
      const i = this.buf.indexOf(LF, this.pos);
      if (i >= 0) { this.pos = i + 1; return true; }
      this.pos = this.buf.length;
    }
  }

  /** Read exactly n bytes (n is bounded by the caller); undefined at end of input. */
  async exactly(n: number): Promise<Buffer | undefined> {
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) return undefined;
      const c = this.chunk(left);
      parts.push(Buffer.from(c));
      left -= c.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Read and drop n bytes (n may be huge: nothing is kept); false at end of input. */
  async discard(n: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) return false;
      left -= this.chunk(Math.min(left, 1 << 20)).length;
    }
    return true;
  }
}

export interface MsArg {
  kind: 'string' | 'atom';
  value: Buffer;
  /** A literal (as opposed to a quoted string or an atom). */
  literal?: boolean;
}

export type LiteralDecision = 'read' | 'skip' | 'close';

export interface CommandLimits {
  /** Longest command line, literals not counted (Pigeonhole managesieve_max_line_length 65536). */
  maxLine: number;
  /** Largest literal read unless onLiteral says otherwise. */
  maxLiteral: number;
}

export type CommandResult =
  | { verb: string; args: MsArg[] }
  /** syntax: Pigeonhole's parser message; tooLong: a line or argument over maxLine. */
  | { verb: string; error: 'syntax' | 'tooLong'; message: string }
  /** A literal the hook refused: its bytes were skipped ('skip') or the connection must end ('close'). */
  | { verb: string; literalRefused: 'skip' | 'close'; size: number; index: number }
  | { eof: true };

/**
 * onLiteral(verb, argument index, size, arguments read so far) → what to do with the literal,
 * before it is read (the hook may answer the command itself before a 'skip').
 */
export type LiteralHook = (verb: string, index: number, size: number, args: readonly MsArg[]) =>
  LiteralDecision | { read: number } | Promise<LiteralDecision | { read: number }>;

function isAtomChar(c: number): boolean {
  // RFC 5804 ATOM-CHAR: any CHAR except atom-specials ( ) { SP CTL % * " \ ] and 8-bit.
  return c > 0x20 && c < 0x7f && c !== 0x28 && c !== 0x29 && c !== LBRACE && c !== 0x25 && c !== 0x2a && c !== DQUOTE && c !== BACKSLASH;
}

/**
 * Read one command. Arguments after a failed one are not read: the rest of the line is skipped
 * (a literal announced on that line is not honoured, as in Pigeonhole).
 */
export async function readCommand(input: ManageSieveInput, limits: CommandLimits, onLiteral: LiteralHook, o: { noVerb?: boolean } = {}): Promise<CommandResult> {
  let lineBytes = 0;
  const tooLong = async (verb: string): Promise<CommandResult> => {
    await input.skipLine();
    return { verb, error: 'tooLong', message: 'Too long argument.' };
  };
  const syntax = async (verb: string, message: string, atLf = false): Promise<CommandResult> => {
    if (!atLf) await input.skipLine();
    return { verb, error: 'syntax', message };
  };
  // The command name: an atom (empty when the line is empty or starts with something else).
  const verbBytes: number[] = [];
  for (;;) {
    if (o.noVerb) break;
    if (!(await input.fill())) return { eof: true };
    const c = input.peek();
    if (c === SP || c === CR || c === LF || !isAtomChar(c)) break;
    input.take();
    if (++lineBytes > limits.maxLine) return tooLong(Buffer.from(verbBytes).toString('latin1').toUpperCase());
    verbBytes.push(c);
  }
  let verb = Buffer.from(verbBytes).toString('latin1').toUpperCase();
  if (verbBytes.length === 0 && !o.noVerb) {
    // Pigeonhole reports what stands there as the command: `"x"` → `"X"`, an empty line → ``.
    const rest: number[] = [];
    for (;;) {
      if (!(await input.fill())) return { eof: true };
      const c = input.take();
      if (c === LF) break;
      if (rest.length < 64 && c !== CR) rest.push(c);
    }
    const shown = Buffer.from(rest).toString('latin1').split(' ')[0]!.toUpperCase();
    return { verb: shown, args: [] };
  }
  const args: MsArg[] = [];
  let first = o.noVerb === true;
  for (;;) {
    if (!(await input.fill())) return { eof: true };
    let c: number;
    if (first) {
      // A lone argument (a SASL response): no command name, no space before it.
      first = false;
      c = input.peek();
      if (c === DQUOTE || c === LBRACE) c = SP;
      else { input.take(); lineBytes++; }
    } else {
      c = input.take();
      lineBytes++;
    }
    if (c === CR) {
      if (!(await input.fill())) return { eof: true };
      c = input.take();
      if (c !== LF) return syntax(verb, 'CR sent without LF');
      return { verb, args };
    }
    if (c === LF) return { verb, args };
    if (c !== SP) return syntax(verb, 'Missing space between arguments', false);
    // One argument.
    if (!(await input.fill())) return { eof: true };
    c = input.peek();
    if (c === DQUOTE) {
      input.take();
      const out: number[] = [];
      for (;;) {
        if (!(await input.fill())) return { eof: true };
        const b = input.take();
        if (++lineBytes > limits.maxLine) return tooLong(verb);
        if (b === DQUOTE) break;
        if (b === CR || b === LF) return syntax(verb, 'String contains CR or LF', b === LF);
        if (b === 0) return syntax(verb, 'String contains NUL');
        if (b === BACKSLASH) {
          if (!(await input.fill())) return { eof: true };
          const e = input.take();
          lineBytes++;
          if (e !== DQUOTE && e !== BACKSLASH) return syntax(verb, 'Escaped quoted-string character is not a QUOTED-SPECIAL', e === LF);
          out.push(e);
          continue;
        }
        out.push(b);
      }
      args.push({ kind: 'string', value: Buffer.from(out) });
      continue;
    }
    if (c === LBRACE) {
      input.take();
      let digits = '';
      let plus = false;
      for (;;) {
        if (!(await input.fill())) return { eof: true };
        const b = input.take();
        lineBytes++;
        if (b >= 0x30 && b <= 0x39 && !plus) { digits += String.fromCharCode(b); if (digits.length > 20) return syntax(verb, 'Literal size too large'); continue; }
        if (b === 0x2b && !plus && digits) { plus = true; continue; }
        if (b === 0x7d && digits) break;
        return syntax(verb, 'Invalid characters in literal size', b === LF);
      }
      // CRLF after the size.
      if (!(await input.fill())) return { eof: true };
      let b = input.take();
      if (b === CR) { if (!(await input.fill())) return { eof: true }; b = input.take(); }
      if (b !== LF) return syntax(verb, 'Missing CRLF after literal size');
      const size = Number(digits);
      const index = args.length;
      let d = await onLiteral(verb, index, size, args);
      let max = limits.maxLiteral;
      if (typeof d === 'object') { max = d.read; d = 'read'; }
      if (d === 'read' && size > max) d = 'close';
      if (d === 'close') return { verb, literalRefused: 'close', size, index };
      if (d === 'skip') {
        if (!(await input.discard(size))) return { eof: true };
        await input.skipLine();
        return { verb, literalRefused: 'skip', size, index };
      }
      const data = await input.exactly(size);
      if (!data) return { eof: true };
      args.push({ kind: 'string', value: data, literal: true });
      continue;
    }
    const atom: number[] = [];
    for (;;) {
      if (!(await input.fill())) return { eof: true };
      const b = input.peek();
      if (b === SP || b === CR || b === LF) break;
      input.take();
      if (++lineBytes > limits.maxLine) return tooLong(verb);
      if (!isAtomChar(b)) return syntax(verb, 'Invalid characters in atom');
      atom.push(b);
    }
    if (atom.length === 0) return syntax(verb, 'Missing argument');
    args.push({ kind: 'atom', value: Buffer.from(atom) });
  }
}

/** Pigeonhole's managesieve_quote_append(): a quoted string, or a literal when the text has CR/LF. */
export function msQuote(text: string | Buffer): string {
  const s = typeof text === 'string' ? text : text.toString('utf8');
  if (/[\r\n]/.test(s)) return `{${Buffer.byteLength(s)}}\r\n${s}`;
  return `"${s.replace(/[\\"]/g, (m) => '\\' + m)}"`;
}

/**
 * A SASL client response (RFC 5804 §2.1): one string — quoted, or a literal of at most `max`
 * bytes — then CRLF. 'tooLarge' when a literal announces more (nothing of it is read: the caller
 * ends the connection, as Pigeonhole's "Authentication response too large"); 'bad' for
 * anything else.
 */
export async function readSaslResponse(input: ManageSieveInput, max: number): Promise<string | 'tooLarge' | 'bad' | undefined> {
  const r = await readCommand(input, { maxLine: max, maxLiteral: max }, (_v, _i, size) => (size > max ? 'close' : 'read'), { noVerb: true });
  if ('eof' in r) return undefined;
  if ('literalRefused' in r) return 'tooLarge';
  if ('error' in r) return r.error === 'tooLong' ? 'tooLarge' : 'bad';
  if (r.args.length !== 1 || r.args[0]!.kind !== 'string') return 'bad';
  return r.args[0]!.value.toString('latin1');
}
