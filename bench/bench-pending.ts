/**
 * bench-pending - the scenarios of issue 8 whose Postern side is not built yet. They are listed
 * so the table shows what is missing; none of them produces a number until its service exists.
 * When a service lands, replace its entry here with a paired scenario (see bench-smtp-accept.ts).
 */
import type { PendingScenario } from './bench-scenario.ts';

export const PENDING_SCENARIOS: readonly PendingScenario[] = [
  { kind: 'pending', name: 'e2e-smtp-maildir', metric: 'messages delivered/s', needs: 'qmgr/virtual',
    description: 'end-to-end SMTP → Maildir delivery rate (smtp-source, Postfix smtpd+qmgr+virtual vs Postern)' },
  { kind: 'pending', name: 'lmtp', metric: 'messages delivered/s', needs: 'lmtpd',
    description: 'LMTP delivery rate (smtp-source -L, Dovecot lmtp vs Postern lmtpd)' },
  { kind: 'pending', name: 'imap-10k', metric: 'operations/s', needs: 'imapd',
    description: 'IMAP operations on a 10,000-message mailbox (SELECT, FETCH FLAGS/ENVELOPE, SEARCH, STORE; imapflow)' },
  { kind: 'pending', name: 'imap-50-clients', metric: 'operations/s', needs: 'imapd',
    description: '50 concurrent IMAP clients (Python imaplib), operations/s' },
  { kind: 'pending', name: 'imap-idle-1000', metric: 'memory per IDLE connection', needs: 'imapd',
    description: 'memory per idle IMAP connection, 1,000 IDLE sessions (Dovecot imap processes vs Postern)' },
  { kind: 'pending', name: 'queue-100k-deferred', metric: 'qmgr memory, flush time', needs: 'qmgr/virtual',
    description: 'queue with 100,000 deferred messages: qmgr memory and `postqueue -f` flush time' },
];
