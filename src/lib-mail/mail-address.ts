/**
 * mail-address — RFC 5322 §3.4 address-list parsing for IMAP ENVELOPE, following Dovecot's
 * lib-mail/message-address.c step by step (so that broken input degrades the same way):
 * - groups become a start marker {mailbox: group name, domain: undefined} and an end marker
 *   (all fields undefined) — IMAP's `(NIL NIL "name" NIL)` ... `(NIL NIL NIL NIL)` (RFC 3501 §7.4.2);
 * - route-addrs `<@a,@b:user@host>` keep the route "@a,@b";
 * - a missing mailbox or domain is filled with "MISSING_MAILBOX" / "MISSING_DOMAIN", a broken
 *   angle-addr gets domain "SYNTAX_ERROR" (Dovecot's fill_missing);
 * - an addr-spec followed by a comment uses the comment as display name;
 * - display names stay raw: RFC 2047 encoded words are not decoded (Dovecot's ENVELOPE does not).
 * Parsing stops at the first error that cannot be recovered, as Dovecot's does.
 */
import { Rfc822Parser, isAtext } from './mail-rfc822-parser.ts';

export interface MailAddress {
  name?: Buffer;
  route?: string;
  mailbox?: Buffer;
  domain?: Buffer;
  invalidSyntax?: boolean;
}

/** Upper bound on addresses per header, so a hostile header cannot make a huge list. */
export const MAX_ADDRESSES = 10_000;

class AddressListParser {
  readonly p: Rfc822Parser;
  readonly list: MailAddress[] = [];
  addr: MailAddress = {};
  readonly fillMissing: boolean;

  constructor(p: Rfc822Parser, fillMissing: boolean) {
    this.p = p;
    this.fillMissing = fillMissing;
  }

  add(): void {
    this.list.push(this.addr);
    this.addr = {};
  }

  addFixed(): void {
    if (this.addr.mailbox === undefined) {
      this.addr.mailbox = Buffer.from(this.fillMissing ? 'MISSING_MAILBOX' : '');
      this.addr.invalidSyntax = true;
    }
    if (this.addr.domain === undefined) {
      this.addr.domain = Buffer.from(this.fillMissing ? 'MISSING_DOMAIN' : '');
      this.addr.invalidSyntax = true;
    }
    this.add();
  }

  localPart(): number {
    const out: number[] = [];
    const r = this.p.peek() === 0x22 ? this.p.parseQuotedString(out) : this.p.parseDotAtom(out);
    if (r < 0) return -1;
    this.addr.mailbox = Buffer.from(out);
    return r;
  }

  domain(): number {
    const out: number[] = [];
    const r = this.p.parseDomain(out);
    if (r < 0) return -1;
    this.addr.domain = Buffer.from(out);
    return r;
  }

  domainList(): number {
    const parts: string[] = [];
    for (;;) {
      if (this.p.pos >= this.p.end) return 0;
      if (this.p.peek() !== 0x40) break;
      const out: number[] = [];
      const r = this.p.parseDomain(out);
      parts.push('@' + Buffer.from(out).toString('latin1'));
      if (r <= 0) return r;
      while (this.p.skipLwsp() > 0 && this.p.peek() === 0x2c) this.p.pos++;
    }
    this.addr.route = parts.join(',');
    return 1;
  }

  /**
   * angle-addr as Dovecot 2.3.19 parses it (checked against its ENVELOPE output): the data
   * ending before '>' is a syntax error, `<>` is an empty address (MISSING_MAILBOX /
   * MISSING_DOMAIN), and a broken route gives "INVALID_ROUTE" but the address after it is kept.
   */
  angleAddr(): number {
    this.p.pos++; // '<'
    if (this.p.skipLwsp() <= 0) return -1;
    if (this.p.peek() === 0x3e) { this.p.pos++; return this.p.skipLwsp(); }
    if (this.p.peek() === 0x40) {
      if (this.domainList() <= 0 || this.p.peek() !== 0x3a) {
        this.addr.route = 'INVALID_ROUTE';
        if (this.p.pos >= this.p.end) return -1;
      } else {
        this.p.pos++;
      }
      if (this.p.skipLwsp() <= 0) return -1;
    }
    if (this.localPart() <= 0) return -1;
    if (this.p.peek() === 0x40) {
      if (this.domain() <= 0) return -1;
    }
    if (this.p.peek() !== 0x3e) return -1;
    this.p.pos++;
    return this.p.skipLwsp();
  }

  nameAddr(): number {
    const out: number[] = [];
    if (this.p.parsePhrase(out) <= 0 || this.p.peek() !== 0x3c) return -1;
    this.addr.name = out.length > 0 ? Buffer.from(out) : undefined;
    if (this.angleAddr() < 0) {
      this.addr.domain = Buffer.from('SYNTAX_ERROR');
      this.addr.invalidSyntax = true;
    }
    return this.p.pos < this.p.end ? 1 : 0;
  }

  addrSpec(): number {
    this.p.lastComment = [];
    let r = this.localPart();
    if (r !== 0 && this.p.peek() === 0x40) {
      const r2 = this.domain();
      if (r2 <= 0) r = r2;
    }
    const c = this.p.lastComment[0];
    if (c !== undefined && c.length > 0) this.addr.name = c;
    return r;
  }

  mailbox(): number {
    const start = this.p.pos;
    let r = this.nameAddr();
    if (r < 0) {
      this.p.pos = start;
      this.addr = {};
      r = this.addrSpec();
    }
    if (r < 0) this.addr.invalidSyntax = true;
    this.addFixed();
    return r;
  }

  group(): number {
    const out: number[] = [];
    if (this.p.parsePhrase(out) <= 0 || this.p.peek() !== 0x3a) return -1;
    this.p.pos++;
    let r = this.p.skipLwsp();
    if (r <= 0) this.addr.invalidSyntax = true;
    this.addr.mailbox = Buffer.from(out);
    this.add();
    if (r > 0 && this.p.peek() !== 0x3b) {
      for (let n = 0; n < MAX_ADDRESSES; n++) {
        if (this.mailbox() <= 0) { r = -1; break; }
        if (this.p.peek() !== 0x2c) break;
        this.p.pos++;
        if (this.p.skipLwsp() <= 0) { r = -1; break; }
      }
    }
    if (r >= 0) {
      if (this.p.peek() !== 0x3b) r = -1;
      else { this.p.pos++; r = this.p.skipLwsp(); }
    }
    if (r < 0) this.addr.invalidSyntax = true;
    this.add();
    return r === 0 ? 0 : 1;
  }

  address(): number {
    const start = this.p.pos;
    let r = this.group();
    if (r < 0) {
      this.p.pos = start;
      this.addr = {};
      r = this.mailbox();
    }
    return r;
  }

  addressList(): void {
    for (let n = 0; n < MAX_ADDRESSES && this.list.length < MAX_ADDRESSES; n++) {
      if (this.address() === 0) break;
      if (this.p.peek() !== 0x2c) break;
      this.p.pos++;
      const r = this.p.skipLwsp();
      if (r <= 0) {
        if (r < 0) this.addFixed();
        break;
      }
    }
  }
}

/**
 * Parses an (unfolded) address header value. Returns [] for an empty/blank value (ENVELOPE
 * writes NIL then). `fillMissing` = Dovecot's fill_missing (true for ENVELOPE).
 */
export function parseAddressList(value: Buffer, fillMissing = true): MailAddress[] {
  const p = new Rfc822Parser(value);
  if (p.skipLwsp() <= 0) return [];
  const ap = new AddressListParser(p, fillMissing);
  ap.addressList();
  return ap.list;
}

/** Plain "mailbox@domain" of an address (for SORT/SEARCH), undefined for group markers. */
export function addressToString(a: MailAddress): string | undefined {
  if (a.domain === undefined) return undefined;
  return `${a.mailbox?.toString('utf8') ?? ''}@${a.domain.toString('utf8')}`;
}

const ESCAPED = new Set([0x22, 0x5c, 0x27]); // Dovecot's IS_ESCAPED_CHAR: " \ '

/** Dovecot's str_append_maybe_escape: as is when all atext (dots too unless escapeDot), else quoted. */
function maybeEscape(out: number[], v: Buffer, escapeDot: boolean): void {
  if (v.every((c) => isAtext(c) || (!escapeDot && c === 0x2e))) { for (const c of v) out.push(c); return; }
  out.push(0x22);
  for (const c of v) { if (ESCAPED.has(c)) out.push(0x5c); out.push(c); }
  out.push(0x22);
}

function pushText(out: number[], s: string | Buffer): void {
  for (const c of typeof s === 'string' ? Buffer.from(s, 'latin1') : s) out.push(c);
}

/**
 * The normalised text of an address list, as Dovecot's message_address_write() writes it (what
 * its SEARCH FROM/TO/CC/BCC match against): `"Display Name" <mailbox@domain>`, `<@route:m@d>`,
 * `group: <a@b>, <c@d>;`. Names holding encoded words are written raw (decoded by the search),
 * other names and group names quoted when not all atext; a missing mailbox or domain shows as
 * filled by parseAddressList (MISSING_MAILBOX, MISSING_DOMAIN).
 */
export function writeAddressList(list: readonly MailAddress[]): Buffer {
  const out: number[] = [];
  let first = true;
  let inGroup = false;
  for (const a of list) {
    if (first) first = false; else pushText(out, ', ');
    if (a.domain === undefined) {
      if (!inGroup) {
        if (a.mailbox !== undefined && a.mailbox.length > 0) {
          if (a.mailbox.includes('=?')) pushText(out, a.mailbox); else maybeEscape(out, a.mailbox, true);
        } else pushText(out, '""');
        pushText(out, ': ');
        first = true;
      } else {
        // end of group: cut the ", " (or the space of ": ") before the ';'
        if (out.length >= 2 && out[out.length - 2] === 0x2c && out[out.length - 1] === 0x20) out.length -= 2;
        else if (out.length >= 2 && out[out.length - 2] === 0x3a && out[out.length - 1] === 0x20) out.length -= 1;
        out.push(0x3b);
      }
      inGroup = !inGroup;
      continue;
    }
    const mailbox = a.mailbox ?? Buffer.alloc(0);
    if (a.name !== undefined) {
      if (a.name.includes('=?')) pushText(out, a.name); else maybeEscape(out, a.name, true);
    }
    if (a.route !== undefined || mailbox.length > 0 || a.domain.length > 0) {
      if (a.name !== undefined && a.name.length > 0) out.push(0x20);
      out.push(0x3c);
      if (a.route !== undefined) { pushText(out, a.route); out.push(0x3a); }
      if (mailbox.length === 0) pushText(out, '""'); else maybeEscape(out, mailbox, false);
      if (a.domain.length > 0) { out.push(0x40); pushText(out, a.domain); }
      out.push(0x3e);
    }
  }
  return Buffer.from(out);
}
