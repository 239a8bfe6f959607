/**
 * quota-status-policy - the Postfix policy delegation protocol as Dovecot's quota-status reads
 * it (Postfix SMTPD_POLICY_README "Protocol description"; Dovecot plugins/quota/quota-status.c
 * client_input_line): a request is `name=value` lines ending with an empty line; the answer is
 * `action=VALUE` and an empty line. Several requests may follow on one connection.
 *
 * Of the attributes only the FIRST `recipient=` and the last `size=` count, as in Dovecot; a
 * size that is not a decimal number fitting in 64 bits is 0. Everything else (request=,
 * protocol_state=, client_address=, lines without '=') is ignored, as Dovecot ignores it.
 *
 * Bounds (Dovecot has none; these keep a hostile client from holding memory): a line longer
 * than MAX_LINE or a request of more than MAX_ATTRS lines ends the connection.
 */
export const MAX_LINE = 16 * 1024;
export const MAX_ATTRS = 1000;

export interface PolicyRequest {
  recipient?: string;
  size: number;
}

export class PolicyRequestReader {
  private buf = '';
  private cur: PolicyRequest = { size: 0 };
  private attrs = 0;

  /** Feed bytes; returns the requests completed; throws Error when a bound is exceeded. */
  push(chunk: string): PolicyRequest[] {
    this.buf += chunk;
    const out: PolicyRequest[] = [];
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) break;
      let line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line.length > MAX_LINE) throw new Error(`policy request line longer than ${MAX_LINE} bytes`);
      if (line === '') {
        out.push(this.cur);
        this.cur = { size: 0 };
        this.attrs = 0;
        continue;
      }
      if (++this.attrs > MAX_ATTRS) throw new Error(`policy request with more than ${MAX_ATTRS} attributes`);
      if (this.cur.recipient === undefined && line.startsWith('recipient=')) this.cur.recipient = line.slice(10);
      else if (line.startsWith('size=')) this.cur.size = parseSize(line.slice(5));
    }
    if (this.buf.length > MAX_LINE) throw new Error(`policy request line longer than ${MAX_LINE} bytes`);
    return out;
  }
}

/** Dovecot str_to_uoff: decimal digits only, within 64 bits; anything else is 0. */
export function parseSize(v: string): number {
  if (!/^\d{1,20}$/.test(v)) return 0;
  if (BigInt(v) > 0xffffffffffffffffn) return 0;
  return Number(v);
}

/**
 * The user a recipient names, as Dovecot's quota-status looks it up (smtp_address_parse_path
 * with optional brackets, then smtp_address_detail_parse with recipient_delimiter): `<a+x@d>`
 * → `a@d`. undefined when the recipient is empty.
 */
export function recipientUser(recipient: string, delimiters: string): string | undefined {
  let r = recipient.trim();
  if (r.startsWith('<') && r.endsWith('>')) r = r.slice(1, -1);
  if (r === '') return undefined;
  const at = r.lastIndexOf('@');
  let local = at < 0 ? r : r.slice(0, at);
  const domain = at < 0 ? '' : r.slice(at);
  if (delimiters) {
    let cut = -1;
    for (const ch of delimiters) { const i = local.indexOf(ch); if (i > 0 && (cut < 0 || i < cut)) cut = i; }
    if (cut > 0) local = local.slice(0, cut);
  }
  return local + domain;
}
