/**
 * maildrop - what may be in a file of the `maildrop` queue besides the queue file records of
 * rec-type.ts: the attributes a local user may submit (Postfix postdrop.c's allowlist and
 * REC_TYPE_POST_*, MAIL_ATTR_RWR_CONTEXT of mail_proto.h). postdrop(1) writes only these;
 * pickup(8) keeps only these, since the maildrop directory is where untrusted files come from.
 */
import { ATTR } from './rec-type.ts';

/** The full name of the sender (sendmail -F); Postfix keeps it in an F record, Postern in this attribute. */
export const ATTR_FULL_NAME = 'full_name';
/** Postfix MAIL_ATTR_RWR_CONTEXT: "local" (append $myorigin) or "remote" ($remote_header_rewrite_domain). */
export const ATTR_RWR_CONTEXT = 'rewrite_context';

/**
 * Attributes a local user may put into a maildrop file (Postfix postdrop.c and
 * REC_TYPE_POST_*): name → allowed values (undefined = any value without control characters).
 */
export const POST_ATTRS: ReadonlyMap<string, ReadonlySet<string> | undefined> = new Map<string, ReadonlySet<string> | undefined>([
  [ATTR.ENCODING, new Set(['7bit', '8bit', 'none', '7BIT', '8BITMIME'])],
  [ATTR.DSN_ENVID, undefined],
  [ATTR.DSN_RET, new Set(['1', '2', 'FULL', 'HDRS'])],
  [ATTR_RWR_CONTEXT, new Set(['local', 'remote'])],
  [ATTR_FULL_NAME, undefined],
  // Postfix postdrop.c: a user may ask for `sendmail -bv` (512, DEL_REQ_FLAG_USR_VRFY) only —
  // never for an MTA probe (256), whose results would go into the verify cache.
  ['trace_flags', new Set(['512'])],
]);

/** Is `name=value` an attribute a local user may submit? (Postfix postdrop.c allowlist) */
export function postAttrAllowed(name: string, value: string): boolean {
  if (!POST_ATTRS.has(name)) return false;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(value) || value.length > 1000) return false;
  const allowed = POST_ATTRS.get(name);
  return allowed === undefined || allowed.has(value);
}
