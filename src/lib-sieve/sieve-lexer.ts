/**
 * sieve-lexer - the tokens of a Sieve script (RFC 5228 §2 and §8.1): identifiers, tags
 * (":name"), numbers with the K/M/G quantifiers, quoted strings (escapes "\\" and "\"", any
 * other "\c" is c), multi-line strings ("text:" ... "." with dot-stuffing), punctuation, and
 * the two comment forms ("#" to end of line, bracketed "/* ... *\/"). Both CRLF and LF end a
 * line, as Pigeonhole's lexer accepts.
 *
 * Errors carry the line and column where the offending token starts and use the wording of
 * Pigeonhole's sieve-lexer.c (what `sievec` prints after "line N: error: ").
 */

export type TokenType = 'identifier' | 'tag' | 'number' | 'string' | 'punct' | 'eof';

export interface Token {
  type: TokenType;
  /** identifier / tag name (without ':'), punctuation character, or string value. */
  text: string;
  /** number value (type 'number'). */
  num: number;
  /** true for a multi-line (text:) string. */
  multiline: boolean;
  line: number;
  column: number;
}

export class SieveSyntaxError extends Error {
  readonly line: number;
  readonly column: number;
  constructor(message: string, line: number, column: number) {
    super(message);
    this.line = line;
    this.column = column;
  }
}

/** Pigeonhole's number limit (sieve_number_t is 64-bit unsigned). */
export const SIEVE_MAX_NUMBER = 18446744073709551615n;

const isAlpha = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
const isDigit = (c: string): boolean => c >= '0' && c <= '9';

export class SieveLexer {
  private readonly src: string;
  private pos = 0;
  private line = 1;
  private lineStart = 0;

  constructor(src: string) {
    this.src = src;
  }

  private col(): number {
    return this.pos - this.lineStart + 1;
  }

  private newline(): void {
    this.line++;
    this.lineStart = this.pos;
  }

  private err(msg: string, line = this.line, column = this.col()): never {
    throw new SieveSyntaxError(msg, line, column);
  }

  /** Skips whitespace and comments. */
  private skip(): void {
    const s = this.src;
    for (;;) {
      const c = s[this.pos];
      if (c === ' ' || c === '\t' || c === '\r') { this.pos++; continue; }
      if (c === '\n') { this.pos++; this.newline(); continue; }
      if (c === '#') {
        while (this.pos < s.length && s[this.pos] !== '\n') this.pos++;
        continue;
      }
      if (c === '/' && s[this.pos + 1] === '*') {
        const startLine = this.line;
        this.pos += 2;
        for (;;) {
          if (this.pos >= s.length) this.err(`end of file before end of bracket comment ('/* ... */') started at line ${startLine}`);
          if (s[this.pos] === '*' && s[this.pos + 1] === '/') { this.pos += 2; break; }
          if (s[this.pos] === '\n') { this.pos++; this.newline(); } else this.pos++;
        }
        continue;
      }
      return;
    }
  }

  next(): Token {
    this.skip();
    const s = this.src;
    const line = this.line;
    const column = this.col();
    const tok = (type: TokenType, text: string, num = 0, multiline = false): Token => ({ type, text, num, multiline, line, column });
    if (this.pos >= s.length) return tok('eof', '');
    const c = s[this.pos]!;
    if (c === '"') return tok('string', this.quoted(line));
    if (isDigit(c)) {
      let end = this.pos;
      while (end < s.length && isDigit(s[end]!)) end++;
      let v = BigInt(s.slice(this.pos, end));
      this.pos = end;
      const q = s[this.pos];
      if (q === 'K' || q === 'k') { v *= 1024n; this.pos++; }
      else if (q === 'M' || q === 'm') { v *= 1024n * 1024n; this.pos++; }
      else if (q === 'G' || q === 'g') { v *= 1024n * 1024n * 1024n; this.pos++; }
      if (v > SIEVE_MAX_NUMBER) this.err(`number exceeds integer limits (max ${SIEVE_MAX_NUMBER})`, line, column);
      return tok('number', '', Number(v));
    }
    if (c === ':') {
      this.pos++;
      const start = this.pos;
      if (!isAlpha(s[this.pos] ?? '')) this.err("unexpected character(s) starting with ':'", line, column);
      while (this.pos < s.length && (isAlpha(s[this.pos]!) || isDigit(s[this.pos]!))) this.pos++;
      return tok('tag', s.slice(start, this.pos));
    }
    if (isAlpha(c)) {
      const start = this.pos;
      while (this.pos < s.length && (isAlpha(s[this.pos]!) || isDigit(s[this.pos]!))) this.pos++;
      const id = s.slice(start, this.pos);
      if (id.toLowerCase() === 'text' && s[this.pos] === ':') {
        this.pos++;
        return tok('string', this.multiline(line), 0, true);
      }
      return tok('identifier', id);
    }
    if ('[](){},;'.includes(c)) {
      this.pos++;
      return tok('punct', c);
    }
    this.err(`unexpected character(s) starting with '${c === '\0' ? '\\0' : c}'`, line, column);
  }

  private quoted(startLine: number): string {
    const s = this.src;
    this.pos++;
    let out = '';
    let from = this.pos;
    for (;;) {
      if (this.pos >= s.length) this.err(`end of file before end of quoted string started at line ${startLine}`);
      const c = s[this.pos]!;
      if (c === '"') { out += s.slice(from, this.pos); this.pos++; return out; }
      if (c === '\\') {
        out += s.slice(from, this.pos);
        this.pos++;
        if (this.pos >= s.length) continue;
        const e = s[this.pos]!;
        out += e;
        if (e === '\n') { this.pos++; this.newline(); } else this.pos++;
        from = this.pos;
        continue;
      }
      if (c === '\n') { this.pos++; this.newline(); continue; }
      this.pos++;
    }
  }

  /** After "text:": optional white space or a hash comment, a line end, then lines up to ".". */
  private multiline(startLine: number): string {
    const s = this.src;
    while (s[this.pos] === ' ' || s[this.pos] === '\t') this.pos++;
    if (s[this.pos] === '#') while (this.pos < s.length && s[this.pos] !== '\n') this.pos++;
    if (s[this.pos] === '\r') this.pos++;
    if (s[this.pos] !== '\n') {
      if (this.pos >= s.length) this.err(`end of file before end of multi-line string`);
      this.err(`invalid character '${s[this.pos]}' after 'text:' in multiline string`);
    }
    this.pos++;
    this.newline();
    let out = '';
    for (;;) {
      if (this.pos >= s.length) this.err(`end of file before end of multi-line string started at line ${startLine}`);
      let end = s.indexOf('\n', this.pos);
      if (end < 0) end = s.length;
      let ln = s.slice(this.pos, end);
      if (ln.endsWith('\r')) ln = ln.slice(0, -1);
      this.pos = Math.min(end + 1, s.length);
      if (end < s.length) this.newline();
      if (ln === '.') return out;
      if (ln.startsWith('..')) ln = ln.slice(1);
      out += ln + '\r\n';
    }
  }
}
