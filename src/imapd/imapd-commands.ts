/**
 * imapd-commands - the command table (Dovecot imap/imap-commands.c): verb → the states it is
 * valid in, its flags, and its handler. The flags carry the pipelining / untagged EXPUNGE
 * rules: CMD_USES_SEQS commands (FETCH, STORE, SEARCH, COPY, MOVE by sequence number, SORT,
 * THREAD) must not see an untagged EXPUNGE sent in their response (RFC 3501 §7.4.1), so the
 * session does not sync after them; their UID forms may. What a handler is and returns is in
 * imapd-command.ts.
 */
import type { SessionState } from './imapd-session.ts';
import { CMD_BREAKS_SEQS, CMD_USES_SEQS, type CommandHandler, type CommandSpec } from './imapd-command.ts';
import { cmdAuthenticate, cmdLogin } from './cmd-login.ts';
import { cmdExamine, cmdSelect } from './cmd-select.ts';
import { cmdList, cmdLsub } from './cmd-list.ts';
import { cmdStatus } from './cmd-status.ts';
import { cmdFetch } from './cmd-fetch.ts';
import { cmdStore } from './cmd-store.ts';
import { cmdSearch } from './cmd-search.ts';
import { cmdCopy, cmdMove } from './cmd-copy-move.ts';
import { cmdClose, cmdExpunge, cmdUnselect } from './cmd-expunge.ts';
import { cmdAppend } from './cmd-append.ts';
import { cmdIdle } from './cmd-idle.ts';
import { cmdSort, cmdThread } from './cmd-sort.ts';
import { cmdCancelUpdate } from './cmd-search-context.ts';
import { cmdGetMetadata, cmdSetMetadata } from './cmd-metadata.ts';
import { cmdReplace } from './cmd-replace.ts';
import { cmdGenUrlauth, cmdResetKey, cmdUrlFetch } from './cmd-urlauth.ts';
import { cmdNotify } from './cmd-notify.ts';
import { cmdCreate } from './cmd-create.ts';
import { cmdUnauthenticate } from './cmd-unauthenticate.ts';
import { cmdDeleteAcl, cmdGetAcl, cmdListRights, cmdMyRights, cmdSetAcl } from './cmd-acl.ts';
import {
  cmdCapability, cmdCheck, cmdCompress, cmdDelete, cmdEnable, cmdGetQuota, cmdGetQuotaRoot, cmdId,
  cmdLogout, cmdNamespace, cmdNoop, cmdRename, cmdStartTls, cmdSubscribe, cmdUnsubscribe,
} from './cmd-misc.ts';

const ANY: SessionState[] = ['nonauth', 'auth', 'selected'];
const PRE: SessionState[] = ['nonauth'];
const AUTH: SessionState[] = ['auth', 'selected'];
const SEL: SessionState[] = ['selected'];

const table: [string, SessionState[], number, CommandHandler][] = [
  ['CAPABILITY', ANY, 0, cmdCapability],
  ['NOOP', ANY, 0, cmdNoop],
  ['LOGOUT', ANY, 0, cmdLogout],
  ['ID', ANY, 0, cmdId],
  ['STARTTLS', PRE, 0, cmdStartTls],
  ['LOGIN', PRE, 0, cmdLogin],
  ['AUTHENTICATE', PRE, 0, cmdAuthenticate],
  ['ENABLE', AUTH, 0, cmdEnable],
  ['UNAUTHENTICATE', AUTH, 0, cmdUnauthenticate],
  ['SELECT', AUTH, 0, cmdSelect],
  ['EXAMINE', AUTH, 0, cmdExamine],
  ['CREATE', AUTH, 0, cmdCreate],
  ['DELETE', AUTH, 0, cmdDelete],
  ['RENAME', AUTH, 0, cmdRename],
  ['SUBSCRIBE', AUTH, 0, cmdSubscribe],
  ['UNSUBSCRIBE', AUTH, 0, cmdUnsubscribe],
  ['LIST', AUTH, 0, cmdList],
  ['LSUB', AUTH, 0, cmdLsub],
  ['NAMESPACE', AUTH, 0, cmdNamespace],
  ['STATUS', AUTH, 0, cmdStatus],
  ['APPEND', AUTH, 0, cmdAppend],
  ['IDLE', AUTH, 0, cmdIdle],
  ['GETQUOTA', AUTH, 0, cmdGetQuota],
  ['GETQUOTAROOT', AUTH, 0, cmdGetQuotaRoot],
  ['COMPRESS', AUTH, 0, cmdCompress],
  ['CANCELUPDATE', AUTH, 0, cmdCancelUpdate],
  ['GETMETADATA', AUTH, 0, cmdGetMetadata],
  ['GENURLAUTH', AUTH, 0, cmdGenUrlauth],
  ['RESETKEY', AUTH, 0, cmdResetKey],
  ['URLFETCH', AUTH, 0, cmdUrlFetch],
  ['SETMETADATA', AUTH, 0, cmdSetMetadata],
  ['GETACL', AUTH, 0, cmdGetAcl],
  ['SETACL', AUTH, 0, cmdSetAcl],
  ['DELETEACL', AUTH, 0, cmdDeleteAcl],
  ['LISTRIGHTS', AUTH, 0, cmdListRights],
  ['MYRIGHTS', AUTH, 0, cmdMyRights],
  ['NOTIFY', AUTH, 0, cmdNotify],
  ['CHECK', SEL, 0, cmdCheck],
  ['CLOSE', SEL, CMD_BREAKS_SEQS, cmdClose],
  ['UNSELECT', SEL, 0, cmdUnselect],
  ['EXPUNGE', SEL, CMD_BREAKS_SEQS, cmdExpunge],
  ['SEARCH', SEL, CMD_USES_SEQS, cmdSearch],
  ['FETCH', SEL, CMD_USES_SEQS, cmdFetch],
  ['STORE', SEL, CMD_USES_SEQS, cmdStore],
  ['COPY', SEL, CMD_USES_SEQS, cmdCopy],
  ['MOVE', SEL, CMD_USES_SEQS | CMD_BREAKS_SEQS, cmdMove],
  ['SORT', SEL, CMD_USES_SEQS, cmdSort],
  ['THREAD', SEL, CMD_USES_SEQS, cmdThread],
  ['UID SEARCH', SEL, CMD_USES_SEQS, cmdSearch],
  ['UID FETCH', SEL, CMD_USES_SEQS, cmdFetch],
  ['UID STORE', SEL, CMD_USES_SEQS, cmdStore],
  ['UID COPY', SEL, CMD_USES_SEQS, cmdCopy],
  ['UID MOVE', SEL, CMD_USES_SEQS | CMD_BREAKS_SEQS, cmdMove],
  ['REPLACE', SEL, CMD_USES_SEQS | CMD_BREAKS_SEQS, cmdReplace],
  ['UID REPLACE', SEL, CMD_USES_SEQS | CMD_BREAKS_SEQS, cmdReplace],
  ['UID EXPUNGE', SEL, CMD_BREAKS_SEQS, cmdExpunge],
  ['UID SORT', SEL, CMD_USES_SEQS, cmdSort],
  ['UID THREAD', SEL, CMD_USES_SEQS, cmdThread],
];

export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(
  table.map(([name, states, flags, handler]) => [name, { states, flags, handler }]),
);
