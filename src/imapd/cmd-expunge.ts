/**
 * cmd-expunge - EXPUNGE (RFC 3501 §6.4.3), UID EXPUNGE (RFC 4315 §2.1: only \Deleted messages
 * of the set), CLOSE (RFC 3501 §6.4.2: expunge silently, unless read-only) and UNSELECT
 * (RFC 3691: no expunge). The untagged EXPUNGE (or VANISHED) lines come from the sync that
 * precedes the tagged reply.
 */
import { ImapParseError, argAtom } from '../lib-imap/imap-parser.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { parseSetArg, resolveMessages } from './imapd-sync.ts';

export async function cmdExpunge(s: ImapSession, c: CommandContext): Promise<Reply> {
  const box = s.box!;
  if (box.readOnly) return { status: 'OK', text: 'Expunge completed' }; // Dovecot: nothing to do
  // ACL (imapd-acl.ts): without e, Dovecot's acl plugin answers OK and removes nothing
  if (s.boxRights !== undefined && !s.boxRights.includes('e')) {
    const deleted = box.messages().some((m) => s.current(m).flags.includes('\\Deleted'));
    return { status: 'OK', text: deleted ? 'Expunge ignored: Permission denied' : 'Expunge completed' };
  }
  if (c.uid) {
    if (c.args.length !== 1) throw new ImapParseError('Invalid arguments');
    const idx = resolveMessages(s, parseSetArg(argAtom(c.args[0])), true);
    const view = box.messages();
    const uids = idx.map((i) => s.current(view[i]!)).filter((m) => m.flags.includes('\\Deleted')).map((m) => m.uid);
    if (uids.length > 0) await box.expunge(uids);
  } else {
    if (c.args.length !== 0) throw new ImapParseError('Invalid arguments');
    await box.expunge();
  }
  return { status: 'OK', text: 'Expunge completed' };
}

async function unselect(s: ImapSession, expunge: boolean): Promise<void> {
  const box = s.box!;
  if (expunge && !box.readOnly && (s.boxRights === undefined || s.boxRights.includes('e'))) await box.expunge().catch(() => []);
  s.box = undefined;
  s.state = 'auth';
  s.searchRes = [];
  s.reported.clear();
  await box.close();
}

export async function cmdClose(s: ImapSession, _c: CommandContext): Promise<Reply> {
  await unselect(s, true);
  return { status: 'OK', text: 'Close completed' };
}

export async function cmdUnselect(s: ImapSession, _c: CommandContext): Promise<Reply> {
  await unselect(s, false);
  return { status: 'OK', text: 'Unselect completed' };
}
