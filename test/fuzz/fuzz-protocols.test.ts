/** Bounded CI fuzzing (issue 8) of what a network client reaches: SMTP, LMTP, POP3, IMAP, MIME. See fuzz-ci.ts. */
import { ciFuzz } from './fuzz-ci.ts';

ciFuzz(['smtp-address', 'smtp-data', 'imap-command', 'mime', 'smtpd-session', 'lmtpd-session', 'pop3d-session']);
