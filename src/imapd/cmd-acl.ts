/**
 * cmd-acl - the RFC 4314 ACL commands, offered as Dovecot 2.3's imap_acl plugin offers them
 * (capability `ACL RIGHTS=texk`, with `mail_plugins = $mail_plugins imap_acl` in protocol imap
 * and the acl plugin with `acl = vfile`), on the user's own mailboxes; the files are
 * Dovecot's (lib-storage/mail-acl.ts), so either server reads what the other wrote.
 *   MYRIGHTS box            `* MYRIGHTS box lrwstipekxacd` (letters, then c if k or x, d if e or t)
 *   GETACL box              `* ACL box id rights ...`: entries in file order, `$g` for groups,
 *                           `-id` negative, the owner entry shown as the user's name (as `owner`
 *                           when a `user=` entry names them too), the default owner entry last
 *   LISTRIGHTS box id       `* LISTRIGHTS box id "" l r w s t p i e k x a c d`
 *   SETACL box id [+|-]rights   c means k x, d means e t; anything else BAD `Invalid ACL right: X`
 *   DELETEACL box id
 * GETACL, SETACL, DELETEACL and LISTRIGHTS need the `a` right (`NO [NOPERM] You lack
 * administrator privileges on this mailbox`). Identifiers `anyone` and `authenticated` are
 * refused (BAD, Dovecot's default imap_acl_allow_anyone = no); an identifier naming the user
 * (`owner` or their name) always keeps `a`, so nobody locks themselves out, as Dovecot. Other
 * identifiers are user names stored as `user=NAME`; `$NAME` is `group=NAME`. Bounds:
 * identifiers up to mail-acl.ts ACL_ID_MAX bytes without control characters, at most
 * ACL_MAX_ENTRIES entries per mailbox.
 */
import { argBytes, argString, ImapParseError, type ImapArg } from '../lib-imap/imap-parser.ts';
import { imapAstring } from '../lib-imap/imap-compose.ts';
import { ACL_ID_MAX, ACL_LETTERS, ACL_MAX_ENTRIES, ownerEntry, sortRights, type AclEntry } from '../lib-storage/mail-acl.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { mailboxArg, mailboxOut, mailboxText } from './imapd-names.ts';
import { aclEntries, aclOn, myRights } from './imapd-acl.ts';

const NOT_ADMIN: Reply = { status: 'NO', code: 'NOPERM', text: 'You lack administrator privileges on this mailbox' };

/** Rights as IMAP shows them: the letters, then c (k or x) and d (e or t), RFC 4314 §2.1.1. */
function shown(letters: string): string {
  return letters + (/[kx]/.test(letters) ? 'c' : '') + (/[et]/.test(letters) ? 'd' : '');
}

function line(...parts: (Buffer | string)[]): Buffer {
  return Buffer.concat([...parts.flatMap((p, i) => [Buffer.from(i === 0 ? '' : ' '), typeof p === 'string' ? Buffer.from(p) : p]), Buffer.from('\r\n')]);
}

function astr(t: string): Buffer { return imapAstring(Buffer.from(t, 'utf8')); }

async function mustExist(s: ImapSession, name: string): Promise<void> {
  if (!(await s.user!.exists(name))) throw new MailError('NOTFOUND', `Mailbox doesn't exist: ${mailboxText(name)}`);
}

/** Reply when the user lacks `a` (undefined: they have it). */
async function adminCheck(s: ImapSession, name: string): Promise<Reply | undefined> {
  const r = await myRights(s, name);
  if (r.includes('a')) return undefined;
  if (r.includes('l')) return NOT_ADMIN;
  return { status: 'NO', code: 'NONEXISTENT', text: `Mailbox doesn't exist: ${mailboxText(name)}` };
}

interface Ident { type: AclEntry['type']; name: string; negative: boolean; text: string }

function identArg(a: ImapArg | undefined): Ident {
  const raw = a && a.type !== 'list' ? argBytes(a) : undefined;
  if (raw === undefined || raw.length === 0) throw new ImapParseError('Invalid arguments');
  if (raw.length > ACL_ID_MAX || raw.includes(0)) throw new ImapParseError('Invalid arguments');
  let text = raw.toString('utf8');
  if (/[\x00-\x1f\x7f]/.test(text)) throw new ImapParseError('Invalid arguments');
  const negative = text.startsWith('-');
  const id = negative ? text.slice(1) : text;
  if (id === 'anyone' || id === 'authenticated') throw new ImapParseError(`'${id}' identifier is disallowed`);
  if (id === '') throw new ImapParseError('Invalid arguments');
  text = id;
  if (id === 'owner') return { type: 'owner', name: '', negative, text };
  if (id.startsWith('$') && id.length > 1) return { type: 'group', name: id.slice(1), negative, text };
  return { type: 'user', name: id, negative, text };
}

function argCount(c: CommandContext, n: number): void {
  if (c.args.length < n) throw new ImapParseError('Missing arguments');
  if (c.args.length > n) throw new ImapParseError('Invalid arguments');
}

function isSelf(s: ImapSession, id: Ident): boolean {
  return !id.negative && (id.type === 'owner' || (id.type === 'user' && id.name === s.user!.user));
}

function ownsIt(s: ImapSession, name: string): boolean {
  return (s.user!.mailboxOwner?.(name) ?? s.user!.user) === s.user!.user;
}

function boxArg(s: ImapSession, a: ImapArg | undefined): string {
  return mailboxArg(s, a);
}

function disabled(s: ImapSession, c: CommandContext): Reply | undefined {
  if (s.shared.settings.imapAcl && aclOn(s)) return undefined;
  return { status: 'BAD', text: `Error in IMAP command ${c.name}: Unknown command` };
}

export async function cmdMyRights(s: ImapSession, c: CommandContext): Promise<Reply> {
  const off = disabled(s, c); if (off) return off;
  argCount(c, 1);
  const name = boxArg(s, c.args[0]);
  const r = await myRights(s, name);
  if (!/[lrikxa]/.test(r)) return { status: 'NO', code: 'NONEXISTENT', text: `Mailbox doesn't exist: ${mailboxText(name)}` };
  await s.send(line('* MYRIGHTS', mailboxOut(s, name), astr(shown(r))));
  return { status: 'OK', text: 'Myrights completed' };
}

export async function cmdListRights(s: ImapSession, c: CommandContext): Promise<Reply> {
  const off = disabled(s, c); if (off) return off;
  argCount(c, 2);
  const name = boxArg(s, c.args[0]);
  const idText = argString(c.args[1]);
  if (idText === undefined || c.args[1]!.type === 'list') throw new ImapParseError('Invalid arguments');
  const denied = await adminCheck(s, name); if (denied) return denied;
  await s.send(line('* LISTRIGHTS', mailboxOut(s, name), astr(idText), '"" l r w s t p i e k x a c d'));
  return { status: 'OK', text: 'Listrights completed' };
}

export async function cmdGetAcl(s: ImapSession, c: CommandContext): Promise<Reply> {
  const off = disabled(s, c); if (off) return off;
  argCount(c, 1);
  const name = boxArg(s, c.args[0]);
  await mustExist(s, name);
  const denied = await adminCheck(s, name); if (denied) return denied;
  const entries = (await aclEntries(s, name)) ?? [];
  const me = s.user!.mailboxOwner?.(name) ?? s.user!.user; // the mailbox's owner
  const named = entries.some((e) => e.type === 'user' && e.name === me);
  const parts: (Buffer | string)[] = ['* ACL', mailboxOut(s, name)];
  for (const e of entries) {
    const id = e.type === 'owner' ? (named ? 'owner' : me) : e.type === 'user' ? e.name : e.type === 'group' ? `$${e.name}` : e.type === 'group-override' ? `$${e.name}` : e.type;
    parts.push(astr((e.global ? '#' : '') + (e.negative ? '-' : '') + id), astr(shown(e.rights)));
  }
  if (!entries.some((e) => ownerEntry(e, me))) parts.push(astr(me), 'lrwstipekxacd');
  await s.send(line(...parts));
  return { status: 'OK', text: 'Getacl completed' };
}

/** Rights letters of a SETACL argument (c → k x, d → e t); BAD for anything else. */
function parseLetters(t: string): string {
  let out = '';
  for (const ch of t) {
    if (ACL_LETTERS[ch] !== undefined) out += ch;
    else if (ch === 'c') out += 'kx';
    else if (ch === 'd') out += 'et';
    else throw new ImapParseError(`Invalid ACL right: ${ch}`);
  }
  return out;
}

async function update(s: ImapSession, name: string, id: Ident, change: (old: string) => string): Promise<void> {
  await s.user!.acl!().update(name, (entries) => {
    const i = entries.findIndex((e) => e.type === id.type && e.name === id.name && e.negative === id.negative);
    const old = i >= 0 ? entries[i]!.rights : '';
    let next = sortRights(change(old));
    if (isSelf(s, id) && ownsIt(s, name) && !next.includes('a')) next = sortRights(next + 'a'); // never lock oneself out
    if (i >= 0) {
      if (next === '') entries.splice(i, 1);
      else entries[i] = { ...entries[i]!, rights: next };
    } else if (next !== '') {
      if (entries.length >= ACL_MAX_ENTRIES) throw new MailError('LIMIT', `Too many ACL entries (at most ${ACL_MAX_ENTRIES})`);
      entries.push({ type: id.type, name: id.name, negative: id.negative, rights: next });
    } else return undefined;
    return entries;
  });
}

export async function cmdSetAcl(s: ImapSession, c: CommandContext): Promise<Reply> {
  const off = disabled(s, c); if (off) return off;
  argCount(c, 3);
  const name = boxArg(s, c.args[0]);
  const id = identArg(c.args[1]);
  const rt = argString(c.args[2]);
  if (rt === undefined || c.args[2]!.type === 'list') throw new ImapParseError('Invalid arguments');
  const mode = rt.startsWith('+') ? 'add' : rt.startsWith('-') ? 'remove' : 'replace';
  const letters = parseLetters(mode === 'replace' ? rt : rt.slice(1));
  await mustExist(s, name);
  const denied = await adminCheck(s, name); if (denied) return denied;
  await update(s, name, id, (old) => mode === 'replace' ? letters : mode === 'add' ? old + letters : old.split('').filter((ch) => !letters.includes(ch)).join(''));
  return { status: 'OK', text: 'Setacl complete' };
}

export async function cmdDeleteAcl(s: ImapSession, c: CommandContext): Promise<Reply> {
  const off = disabled(s, c); if (off) return off;
  argCount(c, 2);
  const name = boxArg(s, c.args[0]);
  const id = identArg(c.args[1]);
  await mustExist(s, name);
  const denied = await adminCheck(s, name); if (denied) return denied;
  await s.user!.acl!().update(name, (entries) => {
    const rest = entries.filter((e) => !(e.type === id.type && e.name === id.name && e.negative === id.negative));
    return rest.length !== entries.length ? rest : undefined;
  });
  return { status: 'OK', text: 'Deleteacl complete' };
}
