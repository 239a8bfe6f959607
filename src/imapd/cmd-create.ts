/**
 * cmd-create - CREATE (RFC 3501 §6.3.3) with RFC 4466 create parameters:
 *   CREATE name                       `OK [MAILBOXID (guid)] Create completed` (RFC 8474 §4.1)
 *   CREATE name (USE (\Sent \Drafts)) RFC 6154 §3 CREATE-SPECIAL-USE: the mailbox is created
 *                                     with those special-use attributes, which LIST then shows
 *                                     (cmd-list.ts) beside the ones of dovecot.conf's `mailbox X
 *                                     { special_use }`.
 * Dovecot 2.3 has no CREATE-SPECIAL-USE (its special-use comes only from dovecot.conf, and its
 * `/private/specialuse` METADATA entry is read-only), so the attributes are kept in Postern's own
 * per-mailbox file (`postern-special-use`, lib-storage/mail-special-use.ts), which moves with a
 * RENAME and goes with a DELETE; Dovecot ignores it.
 * Errors, per RFC 6154 §3: an attribute Postern cannot give (\All and \Flagged, which are
 * virtual mailboxes, an unknown one, or a mailbox format without the file) → `NO [USEATTR] ...`
 * and the mailbox is NOT created; a malformed parameter, an unknown parameter, more than
 * MAX_USE_ATTRS attributes, or USE given twice → BAD. Existing name: `NO [ALREADYEXISTS]`.
 */
import { type ImapArg, ImapParseError } from '../lib-imap/imap-parser.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { mailboxArg } from './imapd-names.ts';
import { requireCreate } from './imapd-acl.ts';
import { stripSep } from './cmd-misc.ts';
import { mailboxId } from './imapd-objectid.ts';

/** RFC 6154 §2 use-attr, as written there. */
const USE_ATTRS = ['\\All', '\\Archive', '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash'];
/** Virtual mailboxes in Dovecot (the virtual plugin); a plain mailbox cannot be them. */
const VIRTUAL = new Set(['\\All', '\\Flagged']);
/** More than this many list items is hostile, not a mailbox's uses. */
export const MAX_USE_ATTRS = 16;

function atomOf(a: ImapArg | undefined): string | undefined {
  return a?.type === 'atom' ? a.value : undefined;
}

/** The USE attributes of `(USE (...))`, canonical case, duplicates dropped; BAD on bad syntax. */
export function parseCreateParams(a: ImapArg | undefined): { use?: string[]; bad?: string } {
  if (a === undefined) return {};
  if (a.type !== 'list') throw new ImapParseError('Invalid arguments');
  let use: string[] | undefined;
  let bad: string | undefined;
  for (let i = 0; i < a.items.length; i++) {
    const name = atomOf(a.items[i])?.toUpperCase();
    if (name !== 'USE') throw new ImapParseError(`Unknown CREATE parameter ${String(name ?? '').slice(0, 30)}`);
    if (use) throw new ImapParseError('CREATE: USE given twice');
    const l = a.items[++i];
    if (l?.type !== 'list') throw new ImapParseError('CREATE USE: expected a list of special-use attributes');
    if (l.items.length > MAX_USE_ATTRS) throw new ImapParseError('CREATE USE: too many attributes');
    use = [];
    for (const x of l.items) {
      const t = atomOf(x);
      if (t === undefined || !/^\\[A-Za-z0-9]{1,64}$/.test(t)) throw new ImapParseError('CREATE USE: expected special-use attributes like \\Sent');
      const known = USE_ATTRS.find((k) => k.toLowerCase() === t.toLowerCase());
      if (!known) { bad ??= `${t} not supported`; continue; }
      if (VIRTUAL.has(known)) { bad ??= `${known} not supported`; continue; }
      if (!use.includes(known)) use.push(known);
    }
  }
  return { ...(use ? { use } : {}), ...(bad ? { bad } : {}) };
}

export async function cmdCreate(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (c.args.length < 1 || c.args.length > 2) throw new ImapParseError('Invalid arguments');
  const name = stripSep(s, mailboxArg(s, c.args[0]));
  const params = parseCreateParams(c.args[1]);
  if (params.bad) return { status: 'NO', code: 'USEATTR', text: params.bad };
  const u = s.user!;
  if (params.use && params.use.length > 0 && !u.setSpecialUse) return { status: 'NO', code: 'USEATTR', text: 'Special-use attributes are not supported for this mailbox format' };
  await requireCreate(s, name); // ACL: k on the parent
  try { await u.create(name); } catch (e) {
    if (e instanceof MailError && e.code === 'EXISTS') return { status: 'NO', code: 'ALREADYEXISTS', text: 'Mailbox already exists' };
    throw e;
  }
  if (params.use && params.use.length > 0) {
    try { await u.setSpecialUse!(name, params.use); } catch (e) {
      // RFC 6154 §3: MUST NOT create the mailbox when the attribute cannot be given
      await u.delete(name).catch(() => undefined);
      if (e instanceof MailError) return { status: 'NO', code: 'USEATTR', text: e.message };
      throw e;
    }
  }
  const id = await mailboxId(s, name).catch(() => undefined); // RFC 8474 §4.1
  if (id) return { status: 'OK', code: `MAILBOXID (${id})`, text: 'Create completed' };
  return { status: 'OK', text: 'Create completed' };
}
