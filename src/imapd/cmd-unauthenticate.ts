/**
 * cmd-unauthenticate - UNAUTHENTICATE (RFC 8437): from the authenticated or selected state
 * back to not authenticated, so a client can log in again (as another user) on the same
 * connection. Dovecot 2.3 does not have it. As the RFC asks:
 *   - the selected mailbox is closed WITHOUT expunging (§3, unlike CLOSE), and no untagged
 *     updates are sent after the command;
 *   - all the user's state goes (ImapSession.loggedOut(): NOTIFY, ENABLE, SEARCHRES, the
 *     user+IP connection count of mail_max_userip_connections); TLS and COMPRESS stay;
 *   - the answer is `OK Unauthenticate completed`, after which CAPABILITY is the pre-login one
 *     again and only CAPABILITY, NOOP, LOGOUT, ID, STARTTLS (when still possible), LOGIN and
 *     AUTHENTICATE are valid.
 * Arguments are BAD. Announced (imapd-capability.ts) only after login.
 */
import { ImapParseError } from '../lib-imap/imap-parser.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';

export async function cmdUnauthenticate(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (c.args.length !== 0) throw new ImapParseError('Invalid arguments');
  await s.loggedOut();
  return { status: 'OK', text: 'Unauthenticate completed', noSync: true };
}
