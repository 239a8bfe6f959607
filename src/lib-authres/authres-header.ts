/**
 * authres-header - the Authentication-Results header field (RFC 8601) as Postern writes and
 * reads it.
 *
 * DESCRIPTION
 *   formatAuthres()     the header cleanup adds: `Authentication-Results: <authserv-id>;` then
 *                       one resinfo per line (LF line endings, as the queue file holds them),
 *                       folded with a TAB (RFC 5322 §2.2.3).
 *   authservIdOf()      the authserv-id of a header's value (RFC 8601 §2.2: the first token,
 *                       after CFWS), for the removal RFC 8601 §5 asks of a border MTA: an incoming
 *                       Authentication-Results that claims our authserv-id is a forgery
 *                       (cleanup drops it before adding ours).
 *   quarantineOf()      what delivery (virtual, local, lmtpd) honours: the message's primary
 *                       header block holds an Authentication-Results with our authserv-id whose
 *                       dmarc resinfo carries `policy.dmarc=quarantine` → deliver to the Junk
 *                       folder. Only cleanup writes such a header for mail from outside (it
 *                       removes any that arrive), so the mark cannot come from a sender.
 *
 * STANDARDS
 *   RFC 8601 §2.2 (syntax), §5 (removal of forged headers); RFC 5322 §2.2.3 (folding)
 */

/** The Authentication-Results header with LF line endings (ends with LF). */
export function formatAuthres(authservId: string, resinfo: string[]): string {
  const id = /^[!#-'*+\-.0-9=?A-Z^-~]+$/.test(authservId) ? authservId : `"${authservId.replace(/(["\\])/g, '\\$1')}"`;
  const parts = resinfo.length ? resinfo : ['none'];
  return `Authentication-Results: ${id};\n\t${parts.map((p) => p.replace(/\r?\n[ \t]*/g, ' ')).join(';\n\t')}\n`;
}

/** Skip RFC 5322 CFWS (comments nest) from `i`. */
function skipCfws(s: string, i: number): number {
  for (;;) {
    while (i < s.length && /[ \t\r\n]/.test(s[i]!)) i++;
    if (s[i] !== '(') return i;
    let depth = 0;
    for (; i < s.length; i++) {
      const c = s[i];
      if (c === '\\') { i++; continue; }
      if (c === '(') depth++;
      else if (c === ')' && --depth === 0) { i++; break; }
    }
  }
}

/** The authserv-id of an Authentication-Results value (the text after the colon), lower case. */
export function authservIdOf(value: string): string {
  let i = skipCfws(value, 0);
  if (value[i] === '"') {
    let out = '';
    for (i++; i < value.length && value[i] !== '"'; i++) {
      if (value[i] === '\\') i++;
      out += value[i] ?? '';
    }
    return out.toLowerCase();
  }
  const m = /^[^\s;()"]+/.exec(value.slice(i));
  return (m?.[0] ?? '').toLowerCase();
}

/** Does this header (name and value, possibly folded) claim the authserv-id `id`? */
export function claimsAuthservId(header: string, id: string): boolean {
  const colon = header.indexOf(':');
  if (colon < 0 || header.slice(0, colon).trim().toLowerCase() !== 'authentication-results') return false;
  return authservIdOf(header.slice(colon + 1)) === id.toLowerCase();
}

/** How much of a message quarantineOf() reads: the header block it looks at, at most. */
export const QUARANTINE_SCAN_MAX = 256 * 1024;

/**
 * Does the message carry our DMARC quarantine mark (see the top)? Reads the primary header
 * block of `content` (LF or CRLF), at most QUARANTINE_SCAN_MAX bytes.
 */
export function quarantineOf(content: Buffer, authservId: string): boolean {
  const head = content.subarray(0, QUARANTINE_SCAN_MAX);
  const ends = [head.indexOf('\n\n'), head.indexOf('\n\r\n')].filter((x) => x >= 0);
  const hdr = ends.length ? head.subarray(0, Math.min(...ends)) : head;
  if (hdr.indexOf('policy.dmarc') < 0) return false; // the usual case, without decoding anything
  const unfolded = hdr.toString('latin1').replace(/\r?\n(?=[ \t])/g, '');
  for (const line of unfolded.split(/\r?\n/)) {
    if (!/^authentication-results[ \t]*:/i.test(line)) continue;
    if (!claimsAuthservId(line, authservId)) continue;
    if (/(^|[;\s])policy\.dmarc[ \t]*=[ \t]*quarantine\b/i.test(line.slice(line.indexOf(':') + 1))) return true;
  }
  return false;
}
