/**
 * address-class - the valid-recipient table of each address class (the seed's Table 1, USERS
 * row; ADDRESS_CLASS_README), and the recipient check smtpd(8) makes with them (Postfix
 * smtpd/smtpd_check.c, check_rcpt_maps()), with Postfix's exact reply texts:
 *
 *   class    table (USERS)           reply when the recipient is not in it
 *   local    local_recipient_maps    550 5.1.1 <rcpt>: Recipient address rejected: User unknown in local recipient table
 *   virtual  virtual_mailbox_maps    550 5.1.1 ... User unknown in virtual mailbox table
 *   alias    virtual_alias_maps      550 5.1.1 ... User unknown in virtual alias table
 *   relay    relay_recipient_maps    550 5.1.1 ... User unknown in relay recipient table
 *   default  (none)                  554 5.7.1 ... Relay access denied (reject_unauth_destination)
 *
 * An empty table parameter means "any user" (the seed: USERS = {} disables the check). A
 * recipient found in recipient_canonical_maps, canonical_maps or virtual_alias_maps is accepted
 * in every class, because cleanup rewrites it before delivery. postmaster@, MAILER-DAEMON@ and
 * the double-bounce sender are always accepted in the local class.
 */
import type { AddressTable, ResolveContext } from './resolve-context.ts';
import type { AddressClass, RecipientVerdict, ResolveReply } from '../global/resolve-client.ts';

export interface RecipientTable {
  /** The Postfix parameter naming the table ('' for the default class, which has none). */
  paramName: string;
  /** The parameter holding the reply code. */
  codeParam: string;
  code: number;
  /** "User unknown in local recipient table", ..., or "Relay access denied". */
  replyText: string;
  /** undefined: the check is off (empty parameter) or the class has no table. */
  maps: AddressTable | undefined;
}

const TABLES: Record<AddressClass, { param: string; codeParam: string; text: string }> = {
  local: { param: 'local_recipient_maps', codeParam: 'unknown_local_recipient_reject_code', text: 'local recipient table' },
  virtual: { param: 'virtual_mailbox_maps', codeParam: 'unknown_virtual_mailbox_reject_code', text: 'virtual mailbox table' },
  alias: { param: 'virtual_alias_maps', codeParam: 'unknown_virtual_alias_reject_code', text: 'virtual alias table' },
  relay: { param: 'relay_recipient_maps', codeParam: 'unknown_relay_recipient_reject_code', text: 'relay recipient table' },
  default: { param: '', codeParam: 'relay_domains_reject_code', text: '' },
};

/** The recipient table of one class, with its reply. */
export function recipientTableFor(ctx: ResolveContext, cls: AddressClass): RecipientTable {
  const t = TABLES[cls];
  const unknown = (table: string) => `User unknown${ctx.show_user_unknown_table_name ? ` in ${table}` : ''}`;
  switch (cls) {
    case 'local':
      return { paramName: t.param, codeParam: t.codeParam, code: ctx.unknown_local_recipient_reject_code, replyText: unknown(t.text), maps: ctx.local_recipient_maps };
    case 'virtual':
      return { paramName: t.param, codeParam: t.codeParam, code: ctx.unknown_virtual_mailbox_reject_code, replyText: unknown(t.text), maps: ctx.virtual_mailbox_maps };
    case 'alias':
      return { paramName: t.param, codeParam: t.codeParam, code: ctx.unknown_virtual_alias_reject_code, replyText: unknown(t.text), maps: ctx.virtual_alias_maps };
    case 'relay':
      return { paramName: t.param, codeParam: t.codeParam, code: ctx.unknown_relay_recipient_reject_code, replyText: unknown(t.text), maps: ctx.relay_recipient_maps };
    case 'default':
      return { paramName: '', codeParam: t.codeParam, code: ctx.relay_domains_reject_code, replyText: 'Relay access denied', maps: undefined };
  }
}

/** The enhanced status code smtpd pairs with a reply code (Postfix smtpd_check_reject()). */
function dsnFor(code: number, detail: string): string {
  return `${String(code).charAt(0)}.${detail}`;
}

/**
 * check_rcpt_maps(): is this resolved recipient a known user of its class? The default class is
 * not checked here (that is reject_unauth_destination's job). Table lookup errors are thrown;
 * smtpd answers 451 4.3.0 then.
 */
export async function checkRecipient(ctx: ResolveContext, r: ResolveReply): Promise<RecipientVerdict> {
  if (r.flags.error || r.flags.fail) return { ok: true }; // reported by the caller from the flags
  const rcpt = r.recipient;
  const local = r.class === 'local';
  const domain = rcpt.slice(rcpt.lastIndexOf('@') + 1).toLowerCase();
  const isLocalDomain = (d: string) => local && d.toLowerCase() === domain;
  const found = async (t: AddressTable | undefined) => t !== undefined && (await t.find(rcpt, { isLocalDomain })) !== undefined;

  // Addresses that cleanup will rewrite are accepted in every class.
  if (await found(ctx.recipient_canonical_maps) || await found(ctx.canonical_maps) || await found(ctx.virtual_alias_maps)) {
    return { ok: true };
  }
  // Anything that resolves to the error mailer is known to be undeliverable.
  if (r.transport === 'error') {
    const code = r.class === 'alias' ? ctx.unknown_virtual_alias_reject_code : 550;
    const m = /^(\d\.\d{1,3}\.\d{1,3}) (.*)$/.exec(r.nexthop);
    return { ok: false, code, dsn: m ? m[1]! : dsnFor(code, '1.1'), text: m ? m[2]! : r.nexthop,
             paramName: r.class === 'alias' ? 'virtual_alias_maps' : 'transport_maps' };
  }
  if (r.class === 'default') return { ok: true };
  const t = recipientTableFor(ctx, r.class);
  if (!t.maps) return { ok: true };
  if (local) {
    const lp = rcpt.slice(0, rcpt.lastIndexOf('@')).toLowerCase();
    if (lp === ctx.double_bounce_sender.toLowerCase() || lp === 'postmaster' || lp === 'mailer-daemon') return { ok: true };
  }
  if (await found(t.maps)) return { ok: true };
  return { ok: false, code: t.code, dsn: dsnFor(t.code, '1.1'), text: t.replyText, paramName: t.paramName };
}
