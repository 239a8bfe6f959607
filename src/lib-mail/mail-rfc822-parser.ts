/**
 * mail-rfc822-parser — the RFC 5322 §3.2 lexical layer (CFWS, atoms, dot-atoms, quoted strings,
 * domains, phrases) over raw bytes, behaving like Dovecot's lib-mail/rfc822-parser.c so that
 * addresses and MIME parameters come out the same as Dovecot's.
 *
 * Return convention (Dovecot's): 1 = parsed and more data follows, 0 = parsed and at the end,
 * -1 = syntax error. 8-bit bytes count as atext (Dovecot accepts raw UTF-8 in headers).
 */

const ATEXT_SPECIALS = "!#$%&'*+-/=?^_`{|}~";
const ATEXT = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  ATEXT[c] = (c >= 0x80 || /[A-Za-z0-9]/.test(ch) || ATEXT_SPECIALS.includes(ch)) ? 1 : 0;
}
export function isAtext(c: number | undefined): boolean {
  return c !== undefined && ATEXT[c] === 1;
}

/** MIME token chars (RFC 2045 §5.1): CHAR except SPACE, CTLs and tspecials. */
const TSPECIALS = '()<>@,;:\\"/[]?=';
export function isTokenChar(c: number | undefined): boolean {
  if (c === undefined) return false;
  if (c <= 0x20 || c === 0x7f) return false;
  if (c >= 0x80) return true; // Dovecot is lenient with 8-bit here too
  return !TSPECIALS.includes(String.fromCharCode(c));
}

export class Rfc822Parser {
  readonly data: Buffer;
  pos: number;
  readonly end: number;
  /** Text of the last comment skipped (Dovecot's last_comment, used as an address name). */
  lastComment: Buffer[] = [];

  constructor(data: Buffer, start = 0, end = data.length) {
    this.data = data;
    this.pos = start;
    this.end = end;
  }

  peek(): number | undefined {
    return this.pos < this.end ? this.data[this.pos] : undefined;
  }

  /** Skips white space, folding and (nested) comments. */
  skipLwsp(): number {
    const d = this.data;
    while (this.pos < this.end) {
      const c = d[this.pos]!;
      if (c === 32 || c === 9 || c === 13 || c === 10) { this.pos++; continue; }
      if (c !== 0x28) break;
      // comment: iterative, nesting counted, quoted-pairs honoured
      let depth = 0;
      const parts: number[] = [];
      while (this.pos < this.end) {
        const b = d[this.pos]!;
        if (b === 0x5c && this.pos + 1 < this.end) { parts.push(d[this.pos + 1]!); this.pos += 2; continue; }
        this.pos++;
        if (b === 0x28) { if (depth++ > 0) parts.push(b); continue; }
        if (b === 0x29) { if (--depth === 0) break; parts.push(b); continue; }
        if (b !== 13 && b !== 10) parts.push(b);
      }
      if (depth > 0) return -1;
      this.lastComment = [Buffer.from(parts)];
    }
    return this.pos < this.end ? 1 : 0;
  }

  /** 1*atext (plus '.' when `dots`), then CFWS. */
  parseAtom(out: number[], dots: boolean): number {
    const d = this.data;
    const c = this.peek();
    if (!(isAtext(c) || (dots && c === 0x2e))) return -1;
    while (this.pos < this.end) {
      const b = d[this.pos]!;
      if (isAtext(b) || (dots && b === 0x2e)) { out.push(b); this.pos++; } else break;
    }
    return this.skipLwsp();
  }

  /**
   * dot-atom, allowing CFWS around dots (Dovecot rfc822_parse_dot_atom); a trailing dot is an
   * error, as in Dovecot 2.3.19 ("a@b." → MISSING_DOMAIN in ENVELOPE).
   */
  parseDotAtom(out: number[]): number {
    if (!isAtext(this.peek())) return -1;
    for (;;) {
      while (isAtext(this.peek())) out.push(this.data[this.pos++]!);
      const r = this.skipLwsp();
      if (r <= 0) return r;
      if (this.peek() !== 0x2e) return 1;
      this.pos++;
      out.push(0x2e);
      if (this.skipLwsp() <= 0 || !isAtext(this.peek())) return -1;
    }
  }

  /** quoted-string: content with quoted-pairs resolved and CR/LF dropped, then CFWS. */
  parseQuotedString(out: number[]): number {
    const d = this.data;
    this.pos++; // opening quote
    while (this.pos < this.end) {
      const b = d[this.pos]!;
      if (b === 0x22) { this.pos++; return this.skipLwsp(); }
      if (b === 0x5c && this.pos + 1 < this.end) { this.pos++; out.push(d[this.pos++]!); continue; }
      if (b !== 13 && b !== 10) out.push(b);
      this.pos++;
    }
    return -1;
  }

  /** phrase = 1*word (obs-phrase allows '.'), words joined by one space. */
  parsePhrase(out: number[]): number {
    if (this.peek() === 0x3c) return 1; // "<addr>" without display name
    let r = -1;
    for (;;) {
      if (this.peek() === 0x22) r = this.parseQuotedString(out);
      else r = this.parseAtom(out, true);
      if (r <= 0) return r;
      const c = this.peek();
      if (!isAtext(c) && c !== 0x22 && c !== 0x2e) return r;
      out.push(32);
    }
  }

  /** domain = dot-atom / domain-literal (after the '@'). */
  parseDomain(out: number[]): number {
    this.pos++; // '@'
    const r = this.skipLwsp();
    if (r <= 0) return -1;
    if (this.peek() === 0x5b) {
      const d = this.data;
      while (this.pos < this.end) {
        const b = d[this.pos++]!;
        if (b === 0x5c && this.pos < this.end) { out.push(b, d[this.pos++]!); continue; }
        if (b !== 13 && b !== 10) out.push(b);
        if (b === 0x5d) return this.skipLwsp();
      }
      return -1;
    }
    return this.parseDotAtom(out);
  }

  /** MIME token (RFC 2045), then CFWS. */
  parseToken(out: number[]): number {
    if (!isTokenChar(this.peek())) return -1;
    while (isTokenChar(this.peek())) out.push(this.data[this.pos++]!);
    return this.skipLwsp();
  }
}
