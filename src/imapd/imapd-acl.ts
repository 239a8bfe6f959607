/**
 * imapd-acl - the rights check every mailbox command makes when Dovecot's acl plugin is on
 * (`mail_plugins = $mail_plugins acl`, `plugin { acl = vfile }`; docs/imapd.md "ACL"), as
 * Dovecot 2.3's acl-mailbox.c enforces them on the user's own (private) mailboxes:
 *   no `l` (lookup)         the mailbox is hidden: LIST leaves it out, the rest answer
 *                           `NO Mailbox doesn't exist: X`
 *   SELECT/EXAMINE, STATUS  need `r`, else `NO [NOPERM] Permission denied`; SELECT is
 *                           READ-ONLY without any of i e w s t
 *   STORE                   \Seen needs `s`, \Deleted `t`, other flags and keywords `w`;
 *                           changes without the right are left out silently
 *   APPEND, COPY/MOVE into  need `i` (flags the right does not cover are dropped)
 *   EXPUNGE                 needs `e`, else `OK Expunge ignored: Permission denied`; MOVE
 *                           out needs `e` (NOPERM)
 *   CREATE                  `k` on the parent (a top-level name: allowed)
 *   DELETE                  `x`; RENAME `x` on the source and `k` on the new parent
 * Groups are the userdb's `acl_groups` field (comma-separated), as Dovecot's.
 * Rights come from the mailbox's dovecot-acl and the global ACL file of `acl = vfile:FILE`
 * (lib-storage/mail-acl.ts), read again each time
 * (another session or Dovecot may have changed it).
 */
import { effectiveRights, readGlobalAcl, type AclEntry } from '../lib-storage/mail-acl.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import type { ImapSession } from './imapd-session.ts';
import { mailboxText } from './imapd-names.ts';

export function aclOn(s: ImapSession): boolean {
  return s.shared.settings.acl && typeof s.user?.acl === 'function';
}

/** The mailbox's ACL entries (undefined: no file) — only with aclOn(). */
export async function aclEntries(s: ImapSession, name: string): Promise<AclEntry[] | undefined> {
  const local = await s.user!.acl!().read(name);
  const g = s.shared.settings.aclGlobalFile;
  const global = g ? await readGlobalAcl(g, name) : [];
  return global.length > 0 ? [...(local ?? []), ...global] : local;
}

/** The session user's rights on their own mailbox (letters l r w s t i p e k x a); all without ACL. */
export async function myRights(s: ImapSession, name: string): Promise<string> {
  if (!aclOn(s)) return 'lrwstipekxa';
  const owner = s.user!.mailboxOwner?.(name) ?? s.user!.user;
  // userdb `acl_groups=a,b` (Dovecot): the groups `group=` / `$group` entries name
  const groups = (s.userRecord?.extra?.['acl_groups'] ?? '').split(',').map((g) => g.trim()).filter((g) => g !== '');
  return effectiveRights(await aclEntries(s, name), { user: s.user!.user, owner: owner === s.user!.user, groups });
}

/** The NO for a missing right: hidden (no `l`) or NOPERM. */
export function deny(name: string, rights: string): MailError {
  return rights.includes('l')
    ? new MailError('PERM', 'Permission denied')
    : new MailError('NOTFOUND', `Mailbox doesn't exist: ${mailboxText(name)}`);
}

/** Throws unless the user has every right of `need` on `name` (a no-op without ACL). */
export async function requireRights(s: ImapSession, name: string, need: string): Promise<string> {
  const r = await myRights(s, name);
  for (const c of need) if (!r.includes(c)) throw deny(name, r);
  return r;
}

/** Whether a SELECT of a mailbox with these rights is read-only (Dovecot acl_is_readonly). */
export function aclReadOnly(rights: string): boolean {
  return !/[iewst]/.test(rights);
}

/** The flags of a STORE/APPEND/COPY the rights allow: \Seen with s, \Deleted with t, the rest with w. */
export function allowedFlags(rights: string, flags: readonly string[]): string[] {
  return flags.filter((f) => {
    const u = f.toLowerCase();
    if (u === '\\seen') return rights.includes('s');
    if (u === '\\deleted') return rights.includes('t');
    return rights.includes('w');
  });
}

/** The parent of a name ('' for a top-level one). */
export function parentOf(s: ImapSession, name: string): string {
  const i = name.lastIndexOf(s.shared.settings.separator);
  return i > 0 ? name.slice(0, i) : '';
}

/** CREATE (and RENAME's destination): `k` on the parent when the parent exists. */
export async function requireCreate(s: ImapSession, name: string): Promise<void> {
  if (!aclOn(s)) return;
  const parent = parentOf(s, name);
  const mine = (s.user!.mailboxOwner?.(name) ?? s.user!.user) === s.user!.user;
  if (parent === '' || !(await s.user!.exists(parent))) {
    if (mine) return;
    throw new MailError('PERM', 'Permission denied'); // another user's mailboxes (shared namespace)
  }
  const r = await myRights(s, parent);
  if (!r.includes('k')) throw new MailError('PERM', 'Permission denied');
}
