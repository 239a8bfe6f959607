/**
 * smtpd-state - what one SMTP session knows (Postfix smtpd/smtpd.h SMTPD_STATE), shared by the
 * command handlers and the access checks. One object per connection; reset per transaction.
 */
import type { TLSSocket } from 'node:tls';
import type { PathArg } from '../lib-smtp/smtp-address.ts';

export interface SmtpdRecipient {
  address: string;
  /** As the client wrote it (RFC 3461 ORCPT default). */
  orig: string;
  notify: number;
  orcpt?: string;
}

export interface SmtpdTransaction {
  sender: string;
  senderArg: PathArg;
  recipients: SmtpdRecipient[];
  /** DSN RET=FULL|HDRS (RFC 3461 §4.3) */
  dsnRet?: 'FULL' | 'HDRS';
  dsnEnvid?: string;
  body?: '7BIT' | '8BITMIME' | 'BINARYMIME';
  smtputf8: boolean;
  declaredSize?: number;
  /** Set by an access check: DISCARD (accept and drop) or HOLD (put on hold). */
  action?: 'discard' | 'hold';
  actionReason?: string;
  /** A FILTER action's transport:nexthop (access tables, policy servers): replaces content_filter. */
  filter?: string;
  /** A REDIRECT action's address (access tables, policy servers): delivered there instead. */
  redirect?: string;
  /** Headers from PREPEND actions (access tables, policy servers), written before Received:. */
  prepend?: string[];
  /** smtpd_proxy_filter: the client's MAIL line as sent, relayed to the filter (Postfix proxy_mail). */
  proxyMail?: string;
  /** Number of RCPT commands in this transaction, accepted or not (smtpd_recipient_limit). */
  rcptCount: number;
}

export interface SmtpdState {
  /** Session ID for log lines before a queue ID exists. */
  sessionId: string;
  clientAddr: string;
  clientPort: number;
  /** "unknown" when reverse lookups are off or fail (Postfix). */
  clientName: string;
  serverAddr: string;
  serverPort: number;
  /** The listener's service name (master.cf column 1), e.g. "smtp", "submission". */
  service: string;
  helo?: string;
  /** 'SMTP' | 'ESMTP' (+S with TLS, +A with AUTH in the Received header, RFC 3848). */
  protocol: 'SMTP' | 'ESMTP';
  tls: boolean;
  tlsInfo?: string;
  /** The TLS connection once encrypted (its protocol, cipher and client certificate: policy requests). */
  tlsSocket?: TLSSocket;
  /** The queue ID once the first recipient is accepted (the queue file exists), else undefined. */
  readonly queueId?: string;
  saslUsername?: string;
  saslMethod?: string;
  tx?: SmtpdTransaction;
  errorCount: number;
  junkCount: number;
  /** Messages accepted in this session. */
  messages: number;
  /** Has the client sent input we have not read yet (reject_unauth_pipelining)? */
  inputPending?: () => boolean;
}
