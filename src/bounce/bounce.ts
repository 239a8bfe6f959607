/**
 * bounce - bounce(8): turn a message's bounce/defer/trace log records into a delivery status
 * notification and submit it through cleanup (Postfix bounce_notify_service.c,
 * bounce_warn_service.c, bounce_trace_service.c). One class serves the three Postfix services
 * (bounce, defer, trace): the BounceClient of global/bounce-client.ts, which qmgr calls
 * in-process; the master builds it with the cleanup client it writes through.
 *
 * SUMMARY
 *   const b = BounceService.fromConfig(config, queue, cleanup, notify);   // cleanup: CleanupClient
 *   await b.notify(qf, 'failure' | 'delay' | 'success', entries) → true (sent or discarded)
 *                                                                 | false (try again later)
 *
 * DESCRIPTION
 *   Who gets what (bounce_notify_service.c):
 *    - a message from a normal sender: the DSN goes to the envelope sender with the null
 *      sender `<>`; with `bounce` (failures) or `delay` (delay warnings) in notify_classes, a
 *      copy with the headers only goes to bounce_notice_recipient / delay_notice_recipient
 *      from double_bounce_sender.
 *    - a message with the null sender (a bounce that bounced): never a DSN back to `<>`; with
 *      `2bounce` in notify_classes a copy goes to 2bounce_notice_recipient from
 *      double_bounce_sender, else it is discarded.
 *    - a message from double_bounce_sender (a postmaster notice that failed): discarded with
 *      "undeliverable postmaster notification discarded" — never a triple bounce, so no loop.
 *   RFC 3461 NOTIFY: failures are reported for recipients without NOTIFY or with FAILURE, delays
 *   for those without NOTIFY or with DELAY, successes only for those with SUCCESS; NEVER
 *   suppresses everything.
 *
 * SECURITY
 *   Reads queue files and logs; writes only through cleanup.
 *
 * STANDARDS
 *   RFC 3464 (delivery status notifications), RFC 3461 (NOTIFY, RET, ORCPT, ENVID), RFC 3834
 *   (Auto-Submitted: auto-replied).
 *
 * DIAGNOSTICS
 *   `QID: sender non-delivery notification: NEWQID`, `QID: sender delay notification: NEWQID`,
 *   `QID: sender delivery status notification: NEWQID`, `QID: postmaster non-delivery
 *   notification: NEWQID`, `warning: QID: undeliverable postmaster notification discarded`.
 *
 * PARAMETERS
 *   myhostname, myorigin, bounce_size_limit, notify_classes, bounce_notice_recipient,
 *   2bounce_notice_recipient, delay_notice_recipient, double_bounce_sender, delay_warning_time,
 *   maximal_queue_lifetime, header_size_limit, message_size_limit
 */
import type { MainConfig } from '../global/mail-conf.ts';
import type { MailQueue } from '../global/mail-queue.ts';
import type { QueueFile } from '../global/queue-file-reader.ts';
import type { CleanupClient, CleanupSettings } from '../global/cleanup-client.ts';
import { wantsNotice, type BounceClient, type NoticeKind } from '../global/bounce-client.ts';
import { logger } from '../util/msg.ts';
import type { BounceLogEntry } from '../global/bounce-log.ts';
import { composeDsn } from './bounce-dsn.ts';

const log = logger('bounce');

export interface BounceSettings {
  myhostname: string;
  myorigin: string;
  /** mail_name (the notice's Received: line). */
  mailName?: string;
  bounceSizeLimit: number;
  notifyClasses: ReadonlySet<string>;
  bounceNoticeRecipient: string;
  twoBounceNoticeRecipient: string;
  delayNoticeRecipient: string;
  /** double_bounce_sender, qualified with @myhostname (Postfix mail_addr_double_bounce()). */
  doubleBounceSender: string;
  /** The same qualified with @myorigin (what older Postern versions sent from). */
  doubleBounceSenderOld?: string;
  delayWarningTime: number;
  maximalQueueLifetime: number;
  /** smtputf8_enable (the sendmail -bv report's encoding). */
  smtputf8?: boolean;
  /**
   * internal_mail_filter_classes: with `bounce`, everything bounce(8) sends (non-delivery,
   * delay, success notices, sendmail -bv reports, postmaster copies) goes through
   * non_smtpd_milters, header_checks and body_checks (Postfix int_filt.c); by default not.
   */
  filterClasses?: ReadonlySet<string>;
  cleanup: CleanupSettings;
}

function qualify(addr: string, myorigin: string): string {
  return addr.includes('@') ? addr : `${addr}@${myorigin}`;
}

export class BounceService implements BounceClient {
  readonly settings: BounceSettings;
  private readonly queue: MailQueue;
  private readonly cleanup: CleanupClient;

  constructor(settings: BounceSettings, queue: MailQueue, cleanup: CleanupClient) {
    this.settings = settings;
    this.queue = queue;
    this.cleanup = cleanup;
  }

  static fromConfig(config: MainConfig, queue: MailQueue, cleanup: CleanupClient, notify?: (qid: string) => void): BounceService {
    const myorigin = config.get('myorigin');
    return new BounceService({
      myhostname: config.get('myhostname'),
      myorigin,
      mailName: config.get('mail_name'),
      bounceSizeLimit: config.size('bounce_size_limit'),
      notifyClasses: new Set(config.list('notify_classes').map((s) => s.toLowerCase())),
      bounceNoticeRecipient: config.get('bounce_notice_recipient'),
      twoBounceNoticeRecipient: config.get('2bounce_notice_recipient'),
      delayNoticeRecipient: config.get('delay_notice_recipient'),
      doubleBounceSender: qualify(config.get('double_bounce_sender'), config.get('myhostname')),
      doubleBounceSenderOld: qualify(config.get('double_bounce_sender'), myorigin),
      delayWarningTime: config.time('delay_warning_time'),
      maximalQueueLifetime: config.time('maximal_queue_lifetime'),
      smtputf8: config.bool('smtputf8_enable'),
      filterClasses: new Set(config.list('internal_mail_filter_classes').map((s) => s.toLowerCase())),
      cleanup: {
        myhostname: config.get('myhostname'),
        myorigin,
        headerSizeLimit: config.size('header_size_limit'),
        messageSizeLimit: 0,
        alwaysAddMissingHeaders: true,
        notify,
        // Address mapping applies to notifications too (a bounce to an alias reaches its
        // target), as in Postfix; content checks and milters only as internal_mail_filter_classes says.
        config,
      },
    }, queue, cleanup);
  }

  /** Is this the sender of our own postmaster notices? */
  isDoubleBounceSender(sender: string): boolean {
    const s = sender.toLowerCase();
    return s === this.settings.doubleBounceSender.toLowerCase() || s === this.settings.doubleBounceSenderOld?.toLowerCase();
  }

  /**
   * Send the notices owed for `entries` (records of one log). Returns false when a notice could
   * not be queued (the caller keeps the logs and tries again later).
   */
  async notify(qf: QueueFile, kind: NoticeKind, entries: readonly BounceLogEntry[]): Promise<boolean> {
    const s = this.settings;
    const wanted = entries.filter((e) => wantsNotice(e.notifyFlags, kind));
    if (wanted.length === 0) return true;
    const what = kind === 'failure' ? 'non-delivery' : kind === 'delay' ? 'delay' : 'delivery status';
    if (this.isDoubleBounceSender(qf.sender)) {
      if (kind === 'failure') log.warn(`${qf.queueId}: undeliverable postmaster notification discarded`);
      return true;
    }
    if (qf.sender === '') {
      if (kind !== 'failure' || !s.notifyClasses.has('2bounce')) return true;
      const id = await this.submit(qf, wanted, kind, s.twoBounceNoticeRecipient, s.doubleBounceSender, true);
      if (!id) { log.warn(`${qf.queueId}: postmaster notice failed while bouncing to ${s.twoBounceNoticeRecipient}`); return false; }
      log.info(`${qf.queueId}: postmaster ${what} notification: ${id}`);
      return true;
    }
    const id = await this.submit(qf, wanted, kind, qf.sender, '', false);
    if (!id) return false;
    log.info(`${qf.queueId}: sender ${what} notification: ${id}`);
    const cls = kind === 'failure' ? 'bounce' : kind === 'delay' ? 'delay' : '';
    if (cls && s.notifyClasses.has(cls)) {
      const to = kind === 'failure' ? s.bounceNoticeRecipient : s.delayNoticeRecipient;
      const pid = await this.submit(qf, wanted, kind, to, s.doubleBounceSender, true);
      if (pid) log.info(`${qf.queueId}: postmaster ${what} notification: ${pid}`);
      else log.warn(`${qf.queueId}: postmaster notice failed while ${kind === 'failure' ? 'bouncing' : 'warning'} to ${to}`);
    }
    return true;
  }

  private async submit(qf: QueueFile, entries: readonly BounceLogEntry[], kind: NoticeKind, to: string, sender: string, postmasterCopy: boolean): Promise<string | undefined> {
    const s = this.settings;
    // Postfix bounce(8) posts with CLEANUP_FLAG_FILTER / _MILTER only for the classes named in
    // internal_mail_filter_classes (int_filt.c): everything bounce(8) sends is class "bounce".
    const inspect = s.filterClasses?.has('bounce') === true;
    const c = await this.cleanup.open(s.cleanup, this.queue, {
      sender, attrs: { protocol_name: 'local', log_ident: qf.queueId }, addMissingHeaders: true, contentChecks: inspect, nonSmtpdMilters: inspect, origin: 'local',
    });
    let msg: Buffer;
    try {
      msg = await composeDsn(qf, entries, {
        kind, myhostname: s.myhostname, myorigin: s.myorigin, smtputf8: s.smtputf8, to: qualify(to, s.myorigin), postmasterCopy, sizeLimit: s.bounceSizeLimit,
        delayWarningTime: s.delayWarningTime, maximalQueueLifetime: s.maximalQueueLifetime, noticeId: c.queueId, mailName: s.mailName,
      });
    } catch (e) {
      log.warn(`${qf.queueId}: cannot compose notification: ${(e as Error).message}`);
      await c.abort();
      return undefined;
    }
    // Postfix posts the notice recipient as configured ("postmaster"): cleanup qualifies the
    // address, and the original stays unqualified (X-Original-To: postmaster).
    c.addRecipient({ address: qualify(to, s.myorigin), orig: to });
    await c.write(msg);
    const r = await c.finish();
    if ('reject' in r) {
      log.warn(`${qf.queueId}: notification rejected by cleanup: ${r.reject.code} ${r.reject.enh} ${r.reject.text}`);
      return undefined;
    }
    return r.queueId;
  }
}
