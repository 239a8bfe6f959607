/**
 * cleanup - cleanup(8): turns one submission (envelope + content from smtpd, pickup or bounce)
 * into a queue file in `incoming`, durably, and tells qmgr. The only creator of queue files.
 *
 * SUMMARY
 *   open() → addRecipient()* → write()* → finish() → { queueId } | { reject }
 *
 * DESCRIPTION
 *   Duplicate recipients are removed (same address, same DSN NOTIFY/ORCPT, as Postfix's
 *   duplicate filter), missing From:/Date:/Message-Id: headers are added at the end of the
 *   header block when the client is local (cleanup-message.ts), and the queue file is written
 *   through QueueFileWriter: fsync + rename + directory fsync before finish() resolves, so the
 *   caller may then answer 250. Log lines follow Postfix: `QID: message-id=<...>`.
 *   Address rewriting (canonical, virtual alias) and header/body checks plug in here
 *   (issue 3); today the hooks are the `rewriteRecipient` option.
 *
 * SECURITY
 *   Not network-facing: it trusts its callers for the envelope, never for the content.
 *
 * PARAMETERS
 *   myhostname, myorigin, header_size_limit, message_size_limit, always_add_missing_headers
 */
import { hostname } from 'node:os';
import { QueueFileWriter, type QueueRecipient } from '../global/queue-file.ts';
import type { MailQueue } from '../global/mail-queue.ts';
import { logger } from '../util/msg.ts';
import { HeaderScanner } from './cleanup-message.ts';
import { mailDate } from '../global/mail-date.ts';

const log = logger('cleanup');

export interface CleanupSettings {
  myhostname: string;
  myorigin: string;
  headerSizeLimit: number;
  messageSizeLimit: number;
  alwaysAddMissingHeaders: boolean;
  /** Called when qmgr should look at incoming (the "I" trigger). */
  notify?: (queueId: string) => void;
}

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
}

export class CleanupSession {
  readonly writer: QueueFileWriter;
  private readonly settings: CleanupSettings;
  private readonly opts: CleanupOpenOptions;
  private readonly seenRcpt = new Set<string>();
  private readonly scanner: HeaderScanner;
  private size = 0;
  private tooBig = false;
  private aborted = false;

  private constructor(settings: CleanupSettings, writer: QueueFileWriter, opts: CleanupOpenOptions) {
    this.settings = settings;
    this.writer = writer;
    this.opts = opts;
    // Local submissions (rewrite_context=local): an unqualified sender gets @$myorigin, as
    // Postfix's cleanup does through trivial-rewrite (append_at_myorigin).
    if (opts.addMissingHeaders && opts.sender !== '' && !opts.sender.includes('@')) {
      opts = { ...opts, sender: `${opts.sender}@${settings.myorigin}` };
      this.opts = opts;
    }
    writer.setSender(opts.sender);
    for (const [k, v] of Object.entries(opts.attrs)) writer.addAttr(k, v);
    if (opts.flags) writer.setFlags(opts.flags);
    this.scanner = new HeaderScanner(settings.headerSizeLimit, (b) => this.writer.writeContent(b), () => this.missingHeaders());
  }

  static async open(settings: CleanupSettings, queue: MailQueue, opts: CleanupOpenOptions): Promise<CleanupSession> {
    const w = await QueueFileWriter.create(queue);
    return new CleanupSession(settings, w, opts);
  }

  get queueId(): string { return this.writer.queueId; }

  addRecipient(r: QueueRecipient): void {
    const key = `${r.address.toLowerCase()}\0${r.notify ?? 0}\0${r.orcpt ?? ''}`;
    if (this.seenRcpt.has(key)) return;
    this.seenRcpt.add(key);
    this.writer.addRecipient(r);
  }

  /** Message content, LF line endings. */
  async write(chunk: Buffer): Promise<void> {
    if (this.tooBig) return;
    this.size += chunk.length;
    if (this.settings.messageSizeLimit > 0 && this.size > this.settings.messageSizeLimit) {
      this.tooBig = true;
      return;
    }
    await this.scanner.write(chunk);
  }

  async finish(): Promise<CleanupResult> {
    if (this.tooBig) {
      await this.abort();
      return { reject: { code: 552, enh: '5.3.4', text: 'Error: message file too big' } };
    }
    try {
      await this.scanner.end();
      const qid = await this.writer.commit();
      const mid = this.scanner.result.messageId ?? this.addedMessageId;
      if (mid) log.info(`${qid}: message-id=${mid}`);
      this.settings.notify?.(qid);
      return { queueId: qid };
    } catch (e) {
      await this.abort();
      log.warn(`${this.writer.queueId}: queue file write error: ${(e as Error).message}`);
      return { reject: { code: 451, enh: '4.3.0', text: 'Error: queue file write error' } };
    }
  }

  async abort(): Promise<void> {
    if (this.aborted) return;
    this.aborted = true;
    await this.writer.abort();
  }

  private addedMessageId: string | undefined;

  private missingHeaders(): Buffer {
    if (!this.opts.addMissingHeaders && !this.settings.alwaysAddMissingHeaders) return Buffer.alloc(0);
    const seen = this.scanner.result.seen;
    const lines: string[] = [];
    if (!seen.has('message-id')) {
      // Postfix: <YYYYMMDDhhmmss.QUEUEID@myhostname>
      const d = new Date();
      const p2 = (n: number) => String(n).padStart(2, '0');
      const stamp = `${d.getUTCFullYear()}${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}${p2(d.getUTCSeconds())}`;
      this.addedMessageId = `<${stamp}.${this.writer.queueId}@${this.settings.myhostname}>`;
      lines.push(`Message-Id: ${this.addedMessageId}`);
    }
    if (!seen.has('date')) lines.push(`Date: ${mailDate(new Date())}`);
    if (!seen.has('from')) {
      const s = this.opts.sender;
      const addr = s === '' ? `MAILER-DAEMON@${this.settings.myhostname}` : s.includes('@') ? s : `${s}@${this.settings.myorigin}`;
      const name = this.opts.fullname?.trim();
      // Postfix: "From: Full Name <addr>", the name quoted when it holds RFC 5322 specials.
      lines.push(name ? `From: ${quotePhrase(name)} <${addr}>` : `From: ${addr}`);
    }
    if (!seen.has('to') && !seen.has('cc') && !seen.has('bcc') && !seen.has('resent-to')) {
      // Postfix undisclosed_recipients_header
      lines.push('To: undisclosed-recipients:;');
    }
    return Buffer.from(lines.map((l) => l + '\n').join(''), 'utf8');
  }
}

export function defaultHostname(): string { return hostname(); }

/** An RFC 5322 phrase: as is when it is atoms and spaces, else a quoted string. */
export function quotePhrase(name: string): string {
  if (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ \u0080-\uffff]+$/u.test(name)) return name;
  return `"${name.replace(/(["\\])/g, '\\$1')}"`;
}
