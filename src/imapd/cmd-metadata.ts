/**
 * cmd-metadata - GETMETADATA and SETMETADATA (RFC 5464 METADATA), offered as Dovecot 2.3 offers
 * them: with `imap_metadata = yes` (protocol imap) and a `mail_attribute_dict`, whose file
 * lib-storage reads and writes as Dovecot does (mail-attribute.ts), so both servers see the
 * same entries. Answers copy Dovecot's (DEPTH on the server entries lists nothing, as Dovecot):
 *   GETMETADATA [(MAXSIZE n DEPTH 0|1|infinity)] mailbox entry | (entries)
 *     `* METADATA mailbox (entry value ...)`, values always as literals, NIL for an entry that
 *     is not set (without DEPTH; with DEPTH only the entries that exist below it, no line at all
 *     when none); values over MAXSIZE are left out and the tagged OK says
 *     `[METADATA LONGENTRIES n]` (the largest size left out)
 *   SETMETADATA mailbox (entry value|NIL ...)  all or nothing; NIL removes
 *   entry names: /private/... or /shared/..., stored lower-case; anything else is BAD.
 * The server entries (mailbox "") are Dovecot's INBOX attributes under
 * vendor/vendor.dovecot/pvt/server/ (entries there on a mailbox read as unset and cannot be set,
 * Dovecot's internal attributes); DELETE removes a mailbox's entries; /shared server entries cannot be changed (as Dovecot without
 * an admin). Limits against abuse: values up to imap_max_line_length (a literal must fit the
 * command, or METADATA_MAX_VALUE as a literal, imapd-session.ts), at most MAX_ENTRIES entries per
 * command, the whole attribute file up to mail-attribute.ts ATTRIBUTE_FILE_MAX.
 */
import { argBytes, argString, ImapParseError, type ImapArg } from '../lib-imap/imap-parser.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import type { AttributeChange, AttributeType, MailAttributes } from '../lib-storage/mail-attribute.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { ImapNoError, mailboxArg, mailboxOut, mailboxText } from './imapd-names.ts';

/** Entries one command may name or set. */
export const MAX_ENTRIES = 1000;
const DOVECOT_PVT = 'vendor/vendor.dovecot/pvt/';
const SERVER_PREFIX = DOVECOT_PVT + 'server/';

/** Dovecot 2.3 without a mail_attribute_dict (METADATA is then not announced either). */
const DISABLED: Reply = { status: 'NO', code: 'CANNOT', text: 'Generic mailbox attributes not enabled' };

interface Entry { type: AttributeType; key: string; name: string }

/** `/private/a/b` → private, `a/b` (BAD for anything RFC 5464 §3.2 does not allow). */
function parseEntry(a: ImapArg | undefined): Entry {
  const raw = argString(a);
  if (raw === undefined || a?.type === 'list') throw new ImapParseError('Invalid arguments');
  const name = raw.toLowerCase();
  // Dovecot's imap_metadata_verify_entry_name() texts
  const bad = /[\x00-\x1f\x7f]/.exec(name);
  if (bad) throw new ImapParseError('Entry name can\'t contain control chars');
  if (name.includes('*')) throw new ImapParseError('Entry name can\'t contain \'*\'');
  if (name.includes('%')) throw new ImapParseError('Entry name can\'t contain \'%\'');
  if (name.includes('//')) throw new ImapParseError('Entry name can\'t contain consecutive \'/\'');
  if (name.endsWith('/')) throw new ImapParseError('Entry name can\'t end with \'/\'');
  const m = /^\/(private|shared)(?:\/(.*))?$/.exec(name);
  if (!m) throw new ImapParseError('Entry name must begin with /private or /shared');
  const key = m[2] ?? '';
  return { type: m[1] === 'private' ? 'private' : 'shared', key, name };
}

function attributes(s: ImapSession): MailAttributes {
  const uri = s.shared.settings.metadataDict;
  const a = uri && s.user!.attributes ? s.user!.attributes(uri) : undefined;
  if (!a) throw new MailError('PARAMS', 'METADATA is not supported for this mailbox format');
  return a;
}

/** The mailbox arg: '' for the server, else the storage name (which must exist). */
async function target(s: ImapSession, a: ImapArg | undefined): Promise<string> {
  const raw = a && a.type !== 'list' ? argBytes(a) : undefined;
  if (raw === undefined) throw new ImapParseError('Invalid arguments');
  if (raw.length === 0) return '';
  const name = mailboxArg(s, a);
  if (!(await s.user!.exists(name))) throw new ImapNoError(`Mailbox doesn't exist: ${mailboxText(name)}`);
  return name;
}

function storageOf(box: string, e: Entry): { mailbox: string; key: string } {
  return box === '' ? { mailbox: 'INBOX', key: SERVER_PREFIX + e.key } : { mailbox: box, key: e.key };
}

export async function cmdGetMetadata(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (!s.shared.settings.metadataDict) return DISABLED;
  const args = c.args;
  let i = 0;
  let maxSize: number | undefined;
  let depth: 0 | 1 | 'infinity' = 0;
  let depthGiven = false;
  if (args[0]?.type === 'list') {
    const o = args[0].items;
    for (let j = 0; j < o.length; j += 2) {
      const n = argString(o[j])?.toUpperCase();
      const v = argString(o[j + 1]);
      if (n === 'MAXSIZE' && v !== undefined && /^\d{1,10}$/.test(v)) maxSize = Number(v);
      else if (n === 'DEPTH' && (v === '0' || v === '1' || v?.toLowerCase() === 'infinity')) {
        depth = v === '0' ? 0 : v === '1' ? 1 : 'infinity';
        depthGiven = true;
      } else throw new ImapParseError('Invalid option');
    }
    i++;
  }
  if (args.length !== i + 2) throw new ImapParseError('Invalid arguments');
  const box = await target(s, args[i]);
  const ea = args[i + 1]!;
  const items = ea.type === 'list' ? ea.items : [ea];
  if (items.length === 0 || items.length > MAX_ENTRIES) throw new ImapParseError('Invalid arguments');
  const entries = items.map(parseEntry);
  const attrs = attributes(s);
  const out: Buffer[] = [];
  let longest = 0;
  const emit = (name: string, value: string | undefined): void => {
    if (value === undefined) { out.push(Buffer.from(`${name} NIL`)); return; }
    const v = Buffer.from(value, 'utf8');
    if (maxSize !== undefined && v.length > maxSize) { longest = Math.max(longest, v.length); return; }
    out.push(Buffer.concat([Buffer.from(`${name} {${v.length}}\r\n`), v]));
  };
  for (const e of entries) {
    const st = storageOf(box, e);
    if (e.key !== '') {
      // Dovecot's internal attributes read as unset
      const v = box !== '' && e.key.startsWith(DOVECOT_PVT) ? undefined : await attrs.get(st.mailbox, e.type, st.key);
      if (v !== undefined || !depthGiven) emit(e.name, v);
    }
    if (depth === 0 || box === '') continue; // Dovecot does not iterate the server entries
    const base = e.key === '' ? '' : e.key + '/';
    for (const [k, v] of await attrs.list(st.mailbox, e.type, base)) {
      if (k.startsWith(DOVECOT_PVT)) continue; // Dovecot's internal attributes are not shown
      const rel = k.slice(base.length);
      if (rel === '' || (depth === 1 && rel.includes('/'))) continue;
      emit(`/${e.type}/${base}${rel}`, v);
    }
  }
  if (out.length > 0) {
    const parts: Buffer[] = [Buffer.from('* METADATA '), box === '' ? Buffer.from('""') : mailboxOut(s, box), Buffer.from(' (')];
    out.forEach((b, j) => { if (j > 0) parts.push(Buffer.from(' ')); parts.push(b); });
    parts.push(Buffer.from(')\r\n'));
    await s.send(Buffer.concat(parts));
  }
  if (longest > 0) return { status: 'OK', code: `METADATA LONGENTRIES ${longest}`, text: 'Getmetadata completed' };
  return { status: 'OK', text: 'Getmetadata completed' };
}

/** DELETE: the mailbox's attributes go with it (Dovecot); nothing when METADATA is off. */
export async function removeMailboxMetadata(s: ImapSession, name: string): Promise<void> {
  const uri = s.shared.settings.metadataDict;
  if (uri && s.user!.attributes) await s.user!.attributes(uri).removeAll(name);
}

export async function cmdSetMetadata(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (!s.shared.settings.metadataDict) return DISABLED;
  if (c.args.length !== 2 || c.args[1]?.type !== 'list') throw new ImapParseError('Invalid arguments');
  const box = await target(s, c.args[0]);
  const items = c.args[1].items;
  if (items.length === 0 || items.length % 2 !== 0) throw new ImapParseError('Invalid arguments');
  if (items.length / 2 > MAX_ENTRIES) return { status: 'NO', code: 'METADATA TOOMANY', text: 'Too many metadata entries' };
  const byMailbox = new Map<string, AttributeChange[]>();
  for (let j = 0; j < items.length; j += 2) {
    const e = parseEntry(items[j]);
    if (e.key === '') throw new ImapParseError('Invalid entry name');
    const v = items[j + 1]!;
    if (v.type === 'list') throw new ImapParseError('Invalid arguments');
    const value = v.type === 'nil' ? undefined : argBytes(v)!.toString('utf8');
    if (box !== '' && e.key.startsWith(DOVECOT_PVT)) return { status: 'NO', code: 'CANNOT', text: 'Internal mailbox attributes cannot be accessed' };
    if (box === '' && e.type === 'shared') {
      return { status: 'NO', code: 'CANNOT', text: `The /shared/${SERVER_PREFIX}${e.key} attribute cannot be changed` };
    }
    const st = storageOf(box, e);
    const list = byMailbox.get(st.mailbox) ?? [];
    list.push({ type: e.type, key: st.key, value });
    byMailbox.set(st.mailbox, list);
  }
  const attrs = attributes(s);
  for (const [mailbox, changes] of byMailbox) await attrs.set(mailbox, changes);
  return { status: 'OK', text: 'Setmetadata completed' };
}
