/**
 * smtp-address - the MAIL FROM / RCPT TO argument grammar (RFC 5321 §4.1.2, §4.1.1.2-3) with
 * ESMTP parameters, SMTPUTF8 (RFC 6531 §3.3) and Postfix's leniency where Postfix is lenient.
 *
 *   Path       = "<" [ A-d-l ":" ] Mailbox ">"     (source routes are accepted and stripped,
 *                                                  RFC 5321 §4.1.1.3 / Appendix C)
 *   Mailbox    = Local-part "@" ( Domain / address-literal )
 *   Local-part = Dot-string / Quoted-string
 *
 * parsePathArg("FROM:<a@b> SIZE=10") → { address: 'a@b', params: Map { SIZE → '10' } }.
 * The address is returned in its external form with quotes removed ("a b"@c → a b@c, as Postfix
 * stores it internally); quoting for output is quoteLocalPart().
 */

export interface PathArg {
  /** '' for the null path <> (only valid in MAIL FROM). */
  address: string;
  /** ESMTP parameters, names upper-cased (RFC 5321 §4.1.2 esmtp-keyword is case-insensitive). */
  params: Map<string, string | true>;
  /** Address contains non-ASCII (needs SMTPUTF8). */
  utf8: boolean;
}

export class AddressSyntaxError extends Error {
  override name = 'AddressSyntaxError';
}

// RFC 5321 atext, plus UTF-8 (RFC 6531 §3.3 extends atext with UTF8-non-ascii).
const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\uffff]+$/u;

/**
 * An unquoted local part ends at the LAST "@". Outside strict_rfc821_envelopes Postfix's
 * tokenizer also takes an unquoted "@" inside it (RCPT TO:<user@remote@ours> is the address
 * "user@remote"@ours, which trivial-rewrite then sees as a routed address and refuses to relay:
 * 554 Relay access denied); strict mode answers 501 as RFC 5321's Dot-string demands.
 */
function parseLocalPart(s: string, strict = false): { local: string; rest: string } {
  if (s.startsWith('"')) {
    let i = 1;
    let out = '';
    while (i < s.length) {
      const c = s[i]!;
      if (c === '\\') {
        if (i + 1 >= s.length) throw new AddressSyntaxError('unterminated quoted local part');
        out += s[i + 1];
        i += 2;
        continue;
      }
      if (c === '"') return { local: out, rest: s.slice(i + 1) };
      if (c === '\r' || c === '\n') throw new AddressSyntaxError('line break in quoted local part');
      out += c;
      i++;
    }
    throw new AddressSyntaxError('unterminated quoted local part');
  }
  const at = s.lastIndexOf('@');
  const local = at < 0 ? s : s.slice(0, at);
  const rest = at < 0 ? '' : s.slice(at);
  for (const atom of local.split(strict ? '.' : /[.@]/)) {
    if (!ATEXT.test(atom)) throw new AddressSyntaxError('bad local part');
  }
  return { local, rest };
}

const DOMAIN_LABEL = /^[A-Za-z0-9\u0080-\uffff]([A-Za-z0-9\-\u0080-\uffff]*[A-Za-z0-9\u0080-\uffff])?$/u;

export function isValidDomain(d: string): boolean {
  if (d.startsWith('[') && d.endsWith(']')) return isValidAddressLiteral(d);
  if (d.length === 0 || d.length > 255) return false;
  const t = d.endsWith('.') ? d.slice(0, -1) : d;
  return t.split('.').every((l) => l.length > 0 && l.length <= 63 && DOMAIN_LABEL.test(l));
}

function isValidAddressLiteral(d: string): boolean {
  const inner = d.slice(1, -1);
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(inner)) return inner.split('.').every((n) => Number(n) <= 255);
  if (/^IPv6:[0-9A-Fa-f:.]+$/i.test(inner)) return true;
  return false;
}

/** Parse "FROM:<addr> params" (keyword already matched by the caller: pass what follows it). */
export function parsePathArg(arg: string, opts: { allowNull: boolean; strict?: boolean }): PathArg {
  let s = arg.trimStart();
  let pathStr: string;
  let paramStr: string;
  if (s.startsWith('<')) {
    // Find the closing '>' outside a quoted string.
    let i = 1;
    let inq = false;
    for (; i < s.length; i++) {
      const c = s[i];
      if (inq && c === '\\') { i++; continue; }
      if (c === '"') inq = !inq;
      else if (c === '>' && !inq) break;
    }
    if (i >= s.length) throw new AddressSyntaxError('missing ">"');
    pathStr = s.slice(1, i);
    paramStr = s.slice(i + 1);
  } else {
    // Postfix accepts a bare address unless strict_rfc821_envelopes (smtpd_check.c).
    if (opts.strict) throw new AddressSyntaxError('missing "<"');
    const sp = s.search(/\s/);
    pathStr = sp < 0 ? s : s.slice(0, sp);
    paramStr = sp < 0 ? '' : s.slice(sp);
  }
  if (paramStr.length > 0 && !/^\s/.test(paramStr)) throw new AddressSyntaxError('garbage after address');
  // Source route @a,@b:user@c (RFC 5321 §4.1.1.3: MUST accept, SHOULD ignore).
  if (pathStr.startsWith('@')) {
    const colon = pathStr.indexOf(':');
    if (colon < 0) throw new AddressSyntaxError('bad source route');
    pathStr = pathStr.slice(colon + 1);
  }
  let address = '';
  if (pathStr.length > 0) {
    const { local, rest } = parseLocalPart(pathStr, opts.strict);
    if (rest === '') {
      // A bare local part (no domain): Postfix accepts it; trivial-rewrite qualifies it.
      address = local;
    } else {
      if (!rest.startsWith('@')) throw new AddressSyntaxError('bad address');
      const domain = rest.slice(1);
      if (!isValidDomain(domain)) throw new AddressSyntaxError('bad domain');
      address = `${local}@${domain}`;
    }
    if (local_length(address) > 64 * 4) throw new AddressSyntaxError('local part too long');
  } else if (!opts.allowNull) {
    throw new AddressSyntaxError('null address');
  }
  const params = new Map<string, string | true>();
  for (const p of paramStr.trim().split(/\s+/)) {
    if (!p) continue;
    const eq = p.indexOf('=');
    const name = (eq < 0 ? p : p.slice(0, eq)).toUpperCase();
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(name)) throw new AddressSyntaxError(`bad parameter ${name}`);
    params.set(name, eq < 0 ? true : p.slice(eq + 1));
  }
  // eslint-disable-next-line no-control-regex
  return { address, params, utf8: /[^\x00-\x7f]/.test(address) };
}

function local_length(a: string): number {
  const at = a.lastIndexOf('@');
  return at < 0 ? a.length : at;
}

/** Quote a local part for the wire when it is not a dot-atom (RFC 5321 §4.1.2). */
export function quoteAddress(address: string): string {
  const at = address.lastIndexOf('@');
  const local = at < 0 ? address : address.slice(0, at);
  const dom = at < 0 ? '' : address.slice(at);
  const dotAtom = local.length > 0 && local.split('.').every((a) => ATEXT.test(a));
  return (dotAtom ? local : `"${local.replace(/(["\\])/g, '\\$1')}"`) + dom;
}

/** RFC 3461 §4 xtext decoding ("+2B" → "+"); undefined for malformed xtext. */
export function decodeXtext(s: string): string | undefined {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b) {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      out += String.fromCharCode(parseInt(hex, 16));
      i += 2;
    } else if (c < 33 || c > 126 || c === 0x3d) {
      return undefined;
    } else {
      out += s[i];
    }
  }
  return out;
}
