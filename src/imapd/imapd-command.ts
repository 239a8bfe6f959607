/**
 * imapd-command - the contract between the session and a command (Dovecot imap/imap-commands.h
 * and imap-client.h's client_command_context): the context a handler gets (tag, name, UID form,
 * parsed arguments), the tagged Reply it returns, the command flags, and a table entry's shape.
 * Each cmd-*.ts implements CommandHandler; imapd-commands.ts is the table of them.
 */
import type { ImapArg } from '../lib-imap/imap-parser.ts';
import type { ImapSession, SessionState } from './imapd-session.ts';

export interface CommandContext {
  tag: string;
  /** Upper case, "UID FETCH" for UID commands. */
  name: string;
  uid: boolean;
  args: ImapArg[];
  /** performance.now() at the start, for Dovecot's timing text. */
  start: number;
}

export interface Reply {
  status: 'OK' | 'NO' | 'BAD';
  code?: string | undefined;
  text: string;
  /** Do not sync before this reply (the command already did, or must not). */
  noSync?: boolean;
  noTiming?: boolean;
  /** Run after the tagged reply is written (LOGOUT close, STARTTLS handshake, COMPRESS). */
  after?: () => void | Promise<void>;
}

export type CommandHandler = (s: ImapSession, c: CommandContext) => Promise<Reply | undefined>;

/** Uses sequence numbers: no untagged EXPUNGE in its response (Dovecot COMMAND_FLAG_USES_SEQS). */
export const CMD_USES_SEQS = 1;
/** Changes sequence numbers (Dovecot COMMAND_FLAG_BREAKS_SEQS). */
export const CMD_BREAKS_SEQS = 2;

/** One entry of the command table (imapd-commands.ts). */
export interface CommandSpec {
  states: readonly SessionState[];
  flags: number;
  handler: CommandHandler;
}
