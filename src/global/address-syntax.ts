/**
 * address-syntax - the small address and host syntax predicates that trivial-rewrite and smtpd's
 * restrictions share, each a copy of the Postfix routine named beside it: when a local-part must
 * be quoted (global/quote_822_local.c), whether a domain is a valid host name
 * (util/valid_hostname.c) or a valid [address literal] (util/valid_mailhost_addr.c), and how an
 * address extension is split off (global/split_addr.c, global/strip_addr.c).
 *
 * Addresses here are in Postfix's *internal* form: the local-part unquoted, so the internal
 * `user@host@example.com` is the external `"user@host"@example.com`. The last `@` always
 * separates the domain, because a domain can hold no `@`.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** RFC 822 specials other than '.', which is handled by the dot-atom rules. */
const SPECIALS = '()<>@,;:\\"[]';

/**
 * quote_822_local(): does this local-part need quoting to be an RFC 822 dot-atom?
 * (empty, leading/trailing/double dot, a special, white space or a control character).
 * '%' and '!' are not specials: in an unquoted local-part they are routing operators.
 */
export function needsQuote(local: string): boolean {
  if (local === '') return true;
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return true;
  for (let i = 0; i < local.length; i++) {
    const c = local.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return true;
    if (SPECIALS.includes(local[i]!)) return true;
  }
  return false;
}

/** RFC 1035 / Postfix VALID_HOSTNAME_LEN and VALID_LABEL_LEN. */
export const MAX_HOSTNAME_LENGTH = 255;
export const MAX_LABEL_LENGTH = 63;

/**
 * valid_hostname(): letters, digits, '_' (Postfix tolerates it) and '-', labels of 1-63
 * characters not starting or ending with '-', no empty label (so no leading, trailing or
 * double dot), at most 255 characters, and not all-numeric (that is an address, not a name).
 * Non-ASCII characters are accepted as parts of UTF-8 labels (Postfix with smtputf8_enable).
 */
export function validHostname(name: string): boolean {
  if (name === '' || name.length > MAX_HOSTNAME_LENGTH) return false;
  let labelLength = 0;
  let nonNumeric = false;
  for (let i = 0; i < name.length; i++) {
    const ch = name[i]!;
    const code = name.charCodeAt(i);
    if (/[A-Za-z0-9_]/.test(ch) || code >= 0x80) {
      labelLength++;
      if (labelLength > MAX_LABEL_LENGTH) return false;
      if (!(ch >= '0' && ch <= '9')) nonNumeric = true;
    } else if (ch === '.') {
      if (labelLength === 0 || i === name.length - 1) return false;
      labelLength = 0;
    } else if (ch === '-') {
      nonNumeric = true;
      labelLength++;
      if (labelLength === 1 || i === name.length - 1 || name[i + 1] === '.') return false;
    } else {
      return false;
    }
  }
  return nonNumeric;
}

/** valid_hostaddr(): a bare IPv4 or IPv6 address. */
export function validHostaddr(addr: string): boolean {
  return isIPv4(addr) || isIPv6(addr);
}

/**
 * valid_mailhost_addr(): the inside of an address literal, `1.2.3.4` or `IPv6:::1`
 * (RFC 5321 §4.1.3: IPv6 literals carry the "IPv6:" tag). Returns the bare address or undefined.
 */
export function validMailhostAddr(inner: string): string | undefined {
  if (inner.slice(0, 5).toLowerCase() === 'ipv6:') {
    const bare = inner.slice(5);
    return isIPv6(bare) ? bare : undefined;
  }
  return isIPv4(inner) ? inner : undefined;
}

/** valid_mailhost_literal(): `[1.2.3.4]` or `[IPv6:...]`; returns the bare address or undefined. */
export function validMailhostLiteral(literal: string): string | undefined {
  if (!literal.startsWith('[') || !literal.endsWith(']')) return undefined;
  return validMailhostAddr(literal.slice(1, -1));
}

/** One spelling per address, so `::1` and `0:0:0:0:0:0:0:1` compare equal. */
export function normalizeIp(addr: string): string | undefined {
  if (isIPv4(addr)) return addr;
  if (!isIPv6(addr)) return undefined;
  try {
    return new URL(`http://[${addr}]/`).hostname.slice(1, -1).toLowerCase();
  } catch {
    return undefined;
  }
}

/** The domain of an internal-form address (after the last '@'), or undefined without '@'. */
export function domainOf(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  return at < 0 ? undefined : address.slice(at + 1);
}

/**
 * split_addr(): the position where the address extension starts in a local-part, or -1.
 * The local-part is cut at the first character of recipient_delimiter (a set of characters
 * since Postfix 2.11), but never `postmaster`, `MAILER-DAEMON`, `owner-*` or `*-request`
 * (mailing-list conventions, when '-' is a delimiter), nor when the delimiter is the first character.
 */
export function extensionStart(local: string, delimiters: string): number {
  if (delimiters === '' || local === '') return -1;
  const lc = local.toLowerCase();
  if (lc === 'postmaster' || lc === 'mailer-daemon' || lc === 'double-bounce') return -1;
  if (delimiters.includes('-') && (lc.startsWith('owner-') || (lc.length > 8 && lc.endsWith('-request')))) return -1;
  let i = 0;
  while (i < local.length && !delimiters.includes(local[i]!)) i++;
  if (i === 0 || i >= local.length) return -1;
  return i;
}

/** strip_addr(): `user+ext@domain` → `user@domain`; undefined when there is no extension. */
export function stripExtension(address: string, delimiters: string): string | undefined {
  const at = address.lastIndexOf('@');
  const local = at < 0 ? address : address.slice(0, at);
  const i = extensionStart(local, delimiters);
  if (i < 0) return undefined;
  return local.slice(0, i) + (at < 0 ? '' : address.slice(at));
}
