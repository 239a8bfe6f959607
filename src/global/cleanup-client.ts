/**
 * cleanup-client - the contract between cleanup(8) and the programs that submit mail through it
 * (smtpd, pickup, qmqpd, bounce, local's forwarding; `sendmail -bs` writes the same stream into
 * a maildrop file): Postfix's global/mail_stream.c (the client side of one cleanup stream) and
 * global/cleanup_user.h (what the client may ask, and the status it gets back).
 *
 * SUMMARY
 *   const s = await cleanup.open(cleanupSettings(config, notify), queue, { sender, attrs, addMissingHeaders });
 *   s.addRecipient(r); ... await s.write(chunk); ...
 *   const r = await s.finish();      // { queueId } once the queue file is durable, or { reject }
 *   await s.abort();                 // the transaction is off: no queue file
 *
 * DESCRIPTION
 *   The submitter never sees the queue file: it gets a CleanupStream from the CleanupClient the
 *   master (or the command) passed in, whose implementation is cleanup/cleanup.ts
 *   (CleanupSession). In-process the call is a plain method call: no copy, no extra hop.
 *
 *   cleanupSettings() reads the main.cf parameters every submitter passes to cleanup (Postfix
 *   reads them in cleanup itself; here the settings travel with the open, so each service's -o
 *   overrides apply).
 *
 * PARAMETERS
 *   myhostname, myorigin, header_size_limit, message_size_limit, always_add_missing_headers
 */
import type { MainConfig } from './mail-conf.ts';
import type { MailQueue } from './mail-queue.ts';
import type { QueueRecipient } from './queue-file.ts';
import type { MessageMilters } from './milter-message.ts';

export interface CleanupSettings {
  myhostname: string;
  myorigin: string;
  headerSizeLimit: number;
  messageSizeLimit: number;
  alwaysAddMissingHeaders: boolean;
  /**
   * undisclosed_recipients_header: the header added to a message with no To:, Cc: or Bcc: when
   * missing headers are added. Empty or absent: none (Postfix 2.8 and later; 3.7's default is empty).
   */
  undisclosedRecipientsHeader?: string;
  /** Called when qmgr should look at incoming (the "I" trigger). */
  notify?: (queueId: string) => void;
  /** main.cf (with -o overrides): the source of the address mapping and content check tables. */
  config?: MainConfig;
}

/** A refusal: the SMTP reply the submitter passes on (cleanup_strerror.c). */
export interface CleanupReject { code: number; enh: string; text: string }
export type CleanupResult = { queueId: string } | { reject: CleanupReject };

export interface CleanupOpenOptions {
  sender: string;
  attrs: Record<string, string>;
  /** Local submission or a client in local_header_rewrite_clients: add missing headers. */
  addMissingHeaders: boolean;
  flags?: number;
  /** sendmail -F / the password file's full name, for an added From: header (Postfix's -F). */
  fullname?: string;
  /** false: no canonical/virtual/masquerade/BCC (Postfix internal mail without CLEANUP_FLAG_MAP_OK). */
  mapAddresses?: boolean;
  /** false: no header/body checks (Postfix CLEANUP_FLAG_FILTER off, e.g. bounces). */
  contentChecks?: boolean;
  /**
   * The submitter's content_filter (smtpd, pickup, qmqpd; main.cf or master.cf -o), recorded
   * in the queue file (Postfix REC_TYPE_FILT) so qmgr sends the message to that
   * transport:nexthop instead of its normal route. FILTER actions override it.
   */
  filter?: string;
  /** smtpd's milter connections: cleanup sends them the message (global/milter-message.ts). */
  milters?: MessageMilters;
  /** Mail that did not come through smtpd (pickup, qmqpd): cleanup runs non_smtpd_milters. */
  nonSmtpdMilters?: boolean;
  /**
   * Where the message comes from, as the submitter knows it (OpenDKIM's InternalHosts and
   * {auth_type}; see SubmissionOrigin). Undefined: from outside (an SMTP client neither
   * authenticated nor in $mynetworks, or a forward of such mail).
   */
  origin?: SubmissionOrigin;
  /**
   * Mail from an SMTP client (docs/authres.md): 'verify' for a client from outside (not
   * mynetworks, not SASL-authenticated): SPF/DKIM/DMARC/ARC, one Authentication-Results header,
   * the DMARC policy (finish() may refuse with 550 5.7.1); 'strip' for the others. Both remove
   * incoming Authentication-Results headers that claim our authserv-id (RFC 8601 §5).
   * Unset (local submission, forwarding, bounces): the headers are left alone.
   */
  inbound?: 'verify' | 'strip';
  /**
   * local(8) re-submits mail an alias or .forward sends elsewhere (docs/authres.md: such mail
   * gets an SRS sender when it leaves for another domain).
   */
  forwarded?: boolean;
}

/**
 * A message of our own users: 'sasl' from a SASL-authenticated SMTP client (smtpd), 'mynetworks'
 * from a client in $mynetworks (smtpd), 'local' from sendmail/pickup, qmqpd or the bounce
 * service. Such mail is DKIM-signed when its From: domain has a key (lib-authres/dkim-sign*);
 * the rest is mail from outside.
 */
export type SubmissionOrigin = 'sasl' | 'mynetworks' | 'local';

/** One message on its way into the queue. */
export interface CleanupStream {
  /** The queue ID the message will have (log lines before the commit use it). */
  readonly queueId: string;
  /** A recipient as the client gave it; mapping and duplicate removal are cleanup's. */
  addRecipient(r: QueueRecipient): void;
  /** Message content, LF line endings. */
  write(chunk: Buffer): Promise<void>;
  /** A HOLD action (smtpd restrictions, a milter): commit into the hold queue (Postfix CLEANUP_FLAG_HOLD). */
  setHold?(reason: string): void;
  /** A FILTER action of smtpd's restrictions: "transport:nexthop" replaces the content_filter. */
  setFilter?(filter: string): void;
  /** A REDIRECT action of smtpd's restrictions: deliver to this address instead. */
  setRedirect?(addr: string): void;
  /** Commit: resolves once the queue file is durable (the caller may answer 250), or refuses. */
  finish(): Promise<CleanupResult>;
  abort(): Promise<void>;
}

/** The service: open one stream per message. */
export interface CleanupClient {
  open(settings: CleanupSettings, queue: MailQueue, opts: CleanupOpenOptions): Promise<CleanupStream>;
}

/** The main.cf parameters a submitter hands to cleanup, with the trigger for qmgr. */
export function cleanupSettings(c: MainConfig, notify?: (qid: string) => void): CleanupSettings {
  return {
    myhostname: c.get('myhostname'),
    myorigin: c.get('myorigin'),
    headerSizeLimit: c.int('header_size_limit') || 102400,
    messageSizeLimit: c.int('message_size_limit'),
    alwaysAddMissingHeaders: c.bool('always_add_missing_headers'),
    undisclosedRecipientsHeader: c.get('undisclosed_recipients_header'),
    notify,
    config: c,
  };
}
