/**
 * cleanup - cleanup(8): turns one submission (envelope + content from smtpd, pickup, qmqpd or
 * bounce) into a queue file, durably, and tells qmgr. The only creator of queue files.
 *
 * SUMMARY
 *   open() → addRecipient()* → write()* → finish() → { queueId } | { reject }
 *   cleanupClient(openRewrite): the same, as the CleanupClient of global/cleanup-client.ts (the
 *   contract its submitters know; master/ and cli/ build it and pass it in)
 *
 * DESCRIPTION
 *   Envelope (cleanup-envelope.ts): sender and recipients go through canonical_maps,
 *   sender_canonical_maps, recipient_canonical_maps (cleanup-map11.ts), masquerading
 *   (cleanup-masq.ts), virtual_alias_maps expansion (cleanup-map1n.ts), the duplicate filter,
 *   and always_bcc / sender_bcc_maps / recipient_bcc_maps. The envelope is processed when the
 *   content starts (all recipients are known by then: RCPT comes before DATA).
 *   Content (cleanup-message.ts): header_checks, mime_header_checks, nested_header_checks,
 *   body_checks (cleanup-checks.ts), address rewriting in headers (cleanup-header-addr.ts), and
 *   the missing From:/Date:/Message-Id:/To: headers for local submissions; Return-Path: and
 *   Content-Length: headers from the client are dropped, as Postfix does.
 *   The queue file is written through QueueFileWriter: fsync + rename + directory fsync before
 *   finish() resolves, so the caller may then answer 250 — into `hold` after a HOLD action, not
 *   at all after DISCARD (the caller still answers 250). Log lines follow Postfix:
 *   `QID: message-id=<...>`, `QID: reject: header ...`, `QID: hold: body ...`.
 *   The content filter (FILTER_README): the submitter's content_filter (opts.filter), replaced by
 *   smtpd's FILTER action (setFilter) and then by each FILTER action of header/body checks (the
 *   last one wins; one without ":" is logged "bad FILTER action" and ignored), is written as the
 *   queue file's L record (Postfix REC_TYPE_FILT) for qmgr.
 *   REDIRECT actions (smtpd's setRedirect, then header/body checks; the last one wins) give the
 *   queue file's > record (Postfix REC_TYPE_RDR).
 *
 *   The tables come from `settings.config` (main.cf with the service's -o overrides), opened
 *   once per configuration; without it (or with receive_override_options = no_address_mappings,
 *   no_header_body_checks) the corresponding steps are off, as for Postfix's internal mail.
 *
 * SECURITY
 *   Not network-facing: it trusts its callers for the envelope, never for the content.
 *
 * DIAGNOSTICS
 *   The reply for a refused message (cleanup-status.ts): 550 5.7.1 (REJECT), 451 4.6.0 Alias
 *   expansion error (virtual alias limits), 451 4.3.0 Error: queue file write error (I/O or a
 *   table lookup failure), 552 5.3.4 Error: message file too big.
 *
 * PARAMETERS
 *   myhostname, myorigin, header_size_limit, message_size_limit, always_add_missing_headers,
 *   and those of cleanup-tables.ts
 */
import { hostname } from 'node:os';
import { QueueFileWriter } from '../global/queue-file-writer.ts';
import type { QueueRecipient } from '../global/queue-file.ts';
import type { MailQueue } from '../global/mail-queue.ts';
import type { MainConfig } from '../global/mail-conf.ts';
import { ATTR } from '../global/rec-type.ts';
import { logger } from '../util/msg.ts';
import { CleanupMessage, isMimeHeader, type HeaderClass } from './cleanup-message.ts';
import { mailDate } from '../global/mail-date.ts';
import { addressMappingTables, cleanupTables, type CleanupTables } from './cleanup-tables.ts';
import { CleanupEnvelope } from './cleanup-envelope.ts';
import { CleanupError, STAT_SIZE, STAT_WRITE } from './cleanup-status.ts';
import { actLog, checkContent, type CheckAction, type CheckLogContext } from './cleanup-checks.ts';
import { RECIPIENT_HEADERS, SENDER_HEADERS, rewriteHeaderValue } from './cleanup-header-addr.ts';
import { cleanupMap11 } from './cleanup-map11.ts';
import { CleanupDkimSign } from './cleanup-dkim-sign.ts';
import { masquerade } from './cleanup-masq.ts';
import type { Maps } from '../global/maps.ts';
import type { CleanupClient, CleanupOpenOptions, CleanupReject, CleanupResult, CleanupSettings, CleanupStream } from '../global/cleanup-client.ts';
import type { ResolveOpener } from '../global/resolve-client.ts';
import { CleanupMilter, type CleanupMilterHost } from './cleanup-milter.ts';
import { CleanupAuthres } from './cleanup-authres.ts';
import { CleanupSrs } from './cleanup-srs.ts';
import { metrics } from '../util/metrics.ts';

const RECEIVED = metrics.counter('postern_messages_received_total', 'Messages cleanup committed to the queue (smtpd, pickup, qmqpd, bounce, local forwarding), by the queue they entered', ['queue']);

const log = logger('cleanup');

export class CleanupSession implements CleanupStream {
  readonly writer: QueueFileWriter;
  private readonly settings: CleanupSettings;
  private readonly opts: CleanupOpenOptions;
  private readonly tables: CleanupTables | undefined;
  private readonly checks: boolean;
  private readonly env: CleanupEnvelope;
  private readonly message: CleanupMessage;
  private readonly pending: QueueRecipient[] = [];
  private written = 0;
  private sender: string;
  private envelopeDone = false;
  private size = 0;
  private tooBig = false;
  private aborted = false;
  private error: CleanupReject | undefined;
  private hold = false;
  private discard = false;
  /** The content filter (content_filter, then FILTER actions: the last one wins). */
  private filter: string | undefined;
  /** REDIRECT: smtpd's, then header/body checks' (the last one wins). */
  private redirect: string | undefined;
  /** Addresses from BCC actions of header/body checks. */
  private readonly actionBcc: string[] = [];
  /** The milters of this message (cleanup-milter.ts): the content waits for them. */
  private milter: CleanupMilter | undefined;
  /** DKIM signing of our users' mail (cleanup-dkim-sign.ts); undefined: not signed. */
  private readonly dkim: CleanupDkimSign | undefined;
  private readonly writeOut = (b: Buffer): Promise<void> => this.writer.writeContent(b);
  /** Inbound verification (cleanup-authres.ts), for mail from SMTP clients. */
  private readonly authres: CleanupAuthres | undefined;
  /** The Sender Rewriting Scheme (cleanup-srs.ts); undefined: off. */
  private readonly srs: CleanupSrs | undefined;
  private srsDecided = false;

  private constructor(settings: CleanupSettings, writer: QueueFileWriter, opts: CleanupOpenOptions, tables: CleanupTables | undefined, dkim?: CleanupDkimSign) {
    this.settings = settings;
    this.writer = writer;
    this.dkim = dkim;
    // Local submissions (rewrite_context=local): an unqualified sender gets @$myorigin, as
    // Postfix's cleanup does through trivial-rewrite (append_at_myorigin).
    if (opts.addMissingHeaders && opts.sender !== '' && !opts.sender.includes('@')) {
      opts = { ...opts, sender: `${opts.sender}@${settings.myorigin}` };
    }
    this.opts = opts;
    this.sender = opts.sender;
    this.filter = opts.filter || undefined;
    this.tables = tables;
    this.env = new CleanupEnvelope(addressMappingTables(tables, opts.mapAddresses), writer.queueId);
    this.checks = !!tables && !tables.overrides.noHeaderBodyChecks && opts.contentChecks !== false;
    for (const [k, v] of Object.entries(opts.attrs)) writer.addAttr(k, v);
    if (opts.flags) writer.setFlags(opts.flags);
    // receive_override_options = no_milters (a content filter's re-injection service): no
    // verification and no header removal, as such a service runs without the milters that
    // Postfix sites verify with (cleanup-authres.ts).
    this.authres = tables?.overrides.noMilters ? undefined : CleanupAuthres.start(settings, opts, writer.queueId);
    this.srs = tables ? CleanupSrs.open(settings.config, writer.queueId) : undefined;
    const t = this.checks ? tables : undefined;
    const inspectBody = !!t && !!(t.bodyChecks || t.mimeHeaderChecks || t.nestedHeaderChecks);
    this.message = new CleanupMessage({
      queueId: writer.queueId,
      emit: (b) => this.emit(b),
      onHeadersEnd: () => this.missingHeaders(),
      header: (h, name, cls) => this.header(h, name, cls),
      bodyLine: t?.bodyChecks ? (l) => this.bodyLine(l) : undefined,
    }, settings.headerSizeLimit, tables?.bodyChecksSizeLimit ?? 51200, inspectBody);
  }

  /** `openRewrite` (trivial-rewrite) is needed when settings.config brings the tables. */
  static async open(settings: CleanupSettings, queue: MailQueue, opts: CleanupOpenOptions, openRewrite?: ResolveOpener): Promise<CleanupSession> {
    if (settings.config && !openRewrite) throw new Error('cleanup: the tables of settings.config need trivial-rewrite (openRewrite)');
    const tables = settings.config ? await cleanupTables(settings.config, openRewrite!) : undefined;
    const w = await QueueFileWriter.create(queue);
    let self: CleanupSession | undefined;
    const dkim = await CleanupDkimSign.open(settings.config, opts.origin, w.queueId, () => self!.forwardingDomain());
    const s = new CleanupSession(settings, w, opts, tables, dkim);
    self = s;
    try {
      s.milter = await CleanupMilter.open(s.opts, settings.config, !!tables?.overrides.noMilters, s.milterHost());
    } catch (e) {
      await s.abort();
      throw e;
    }
    return s;
  }

  get queueId(): string { return this.writer.queueId; }

  /**
   * For ARC sealing: the domain of the address a recipient was given as, when virtual alias
   * expansion sent that recipient on to a remote (relay or default class) destination.
   */
  async forwardingDomain(): Promise<string | undefined> {
    const t = this.tables;
    if (!t) return undefined;
    for (const r of this.env.out) {
      if (!r.orig || r.orig.toLowerCase() === r.address.toLowerCase() || !r.orig.includes('@')) continue;
      const reply = await t.rewrite.resolve(r.address);
      if (reply.class === 'relay' || reply.class === 'default') return r.orig.slice(r.orig.lastIndexOf('@') + 1).toLowerCase();
    }
    return undefined;
  }

  /** A recipient as the client gave it; mapping and duplicate removal happen when the content starts. */
  addRecipient(r: QueueRecipient): void {
    this.pending.push(r);
  }

  /** Message content, LF line endings. */
  async write(chunk: Buffer): Promise<void> {
    if (this.tooBig) return;
    this.size += chunk.length;
    if (this.settings.messageSizeLimit > 0 && this.size > this.settings.messageSizeLimit) {
      this.tooBig = true;
      return;
    }
    if (!this.envelopeDone) await this.envelope();
    if (this.error) return;
    try {
      await this.authres?.write(chunk);
      await this.message.write(chunk);
    } catch (e) {
      this.fail(e);
    }
  }

  setHold(_reason: string): void { this.hold = true; }

  setFilter(filter: string): void { this.filter = filter; }

  setRedirect(addr: string): void { this.redirect = addr; }

  async finish(): Promise<CleanupResult> {
    if (this.tooBig) {
      await this.abort();
      return { reject: STAT_SIZE };
    }
    if (!this.envelopeDone) await this.envelope();
    if (!this.error) {
      try {
        await this.message.end();
        await this.envelope();   // recipients added after the content started, then the BCCs
        await this.env.finish();
        // BCC actions come after always_bcc, as in Postfix (state->hbc_rcpt, added last).
        for (const b of this.actionBcc.splice(0)) await this.env.bcc(b);
        this.flushRecipients();
        if (this.milter && !this.error && !this.discard) await this.milterStage(this.milter);
      } catch (e) {
        this.fail(e);
      }
    }
    let authResults: string | undefined;
    if (!this.error && !this.discard && this.authres) {
      const a = await this.authres.finish({ client: this.clientLogName(), sender: this.sender, recipient: this.env.firstRecipient, proto: this.opts.attrs[ATTR.PROTO_NAME], helo: this.opts.attrs[ATTR.HELO_NAME] });
      if (a && 'reject' in a) this.error = a.reject;
      else if (a) { this.writer.addTrailingAttr(ATTR.PREPEND_HEADERS, a.header); authResults = a.header; }
    }
    // The content is final (every rewrite done): sign it (or ARC-seal it, with the verdict just
    // made), as the last step before the commit.
    if (this.dkim && !this.error && !this.discard) {
      try { await this.dkim.finish(this.writeOut, authResults); } catch (e) { this.fail(e); }
    }
    if (this.error) {
      await this.abort();
      return { reject: this.error };
    }
    if (this.discard) {
      // DISCARD: accepted (the client sees 250) and thrown away; Postfix logs the discard action only.
      const qid = this.writer.queueId;
      await this.abort();
      return { queueId: qid };
    }
    try {
      if (this.hold) this.writer.setTarget('hold');
      // Postfix cleanup_extracted: the content filter goes at the end of the extracted segment.
      this.writer.setFilter(this.filter);
      this.writer.setRedirect(this.redirect);
      const qid = await this.writer.commit();
      RECEIVED.labels(this.hold ? 'hold' : 'incoming').inc();
      const mid = this.message.result.messageId ?? this.addedMessageId;
      if (mid) log.info(`${qid}: message-id=${mid}`);
      if (!this.hold) this.settings.notify?.(qid);
      return { queueId: qid };
    } catch (e) {
      await this.abort();
      log.warn(`${this.writer.queueId}: queue file write error: ${(e as Error).message}`);
      return { reject: STAT_WRITE };
    }
  }

  async abort(): Promise<void> {
    if (this.aborted) return;
    this.aborted = true;
    this.authres?.abort();
    await this.writer.abort();
  }

  // --- envelope ------------------------------------------------------------------------------

  /** Map the sender (once) and the recipients given so far, and hand them to the writer. */
  private async envelope(): Promise<void> {
    try {
      if (!this.envelopeDone) {
        this.envelopeDone = true;
        this.sender = await this.env.sender(this.opts.sender);
        this.writer.setSender(this.sender);
      }
      for (const r of this.pending.splice(0)) await this.env.recipient(this.srs ? this.srs.reverse(r) : r);
      if (!this.srsDecided) {
        // SRS (cleanup-srs.ts): once, with the recipients known before the content, expanded.
        this.srsDecided = true;
        const t = this.tables;
        if (this.srs && t && this.opts.origin === undefined && !t.overrides.noAddressMappings && this.opts.mapAddresses !== false) {
          const srs = await this.srs.forward(t.rewrite, this.sender, this.env.out, this.opts.forwarded === true);
          if (srs) { this.sender = srs; this.writer.setSender(srs); }
        }
      }
      this.flushRecipients();
    } catch (e) {
      this.fail(e);
    }
  }

  private flushRecipients(): void {
    for (; this.written < this.env.out.length; this.written++) this.writer.addRecipient(this.env.out[this.written]!);
  }

  private fail(e: unknown): void {
    if (e instanceof CleanupError) { this.error ??= e.reject; return; }
    log.warn(`${this.writer.queueId}: ${(e as Error).message}`);
    this.error ??= STAT_WRITE;
  }

  private async emit(b: Buffer): Promise<void> {
    if (this.error || this.discard) return;
    if (this.milter) return this.milter.buffer(b);
    await this.output(b);
  }

  /** Content on its way to the queue file: through the DKIM signer when it signs this message. */
  private async output(b: Buffer): Promise<void> {
    if (this.dkim) await this.dkim.emit(b, this.writeOut);
    else await this.writer.writeContent(b);
  }

  /** The milters see the message as it will be queued, and may change it (cleanup-milter.ts). */
  private async milterStage(m: CleanupMilter): Promise<void> {
    this.milter = undefined;
    const out = await m.run();
    if ('reject' in out) { this.error ??= out.reject; return; }
    if (out.discard) { this.discard = true; return; }
    if (out.hold) this.hold = true;
    await this.output(out.content);
  }

  private milterHost(): CleanupMilterHost {
    return {
      queueId: this.writer.queueId,
      messageSizeLimit: this.settings.messageSizeLimit,
      headerSizeLimit: this.settings.headerSizeLimit,
      myhostname: this.settings.myhostname,
      logContext: () => this.logContext(),
      changeSender: async (a) => { this.sender = await this.env.sender(a); this.writer.setSender(this.sender); },
      setAttr: (n, v) => this.writer.setAttr(n, v),
      addRecipient: async (r) => { await this.env.recipient(r); this.flushRecipients(); },
      deleteRecipient: (a) => this.writer.removeRecipients((r) => (r.orig ?? r.address) === a),
      sender: () => this.sender,
      recipients: () => this.env.out.map((r) => r.address),
    };
  }

  // --- content -------------------------------------------------------------------------------

  /** "host[addr]" as Postfix logs the client. */
  private clientLogName(): string {
    const a = this.opts.attrs;
    return `${a[ATTR.CLIENT_NAME] ?? 'unknown'}[${a[ATTR.CLIENT_ADDR] ?? ''}]`;
  }

  private logContext(): CheckLogContext {
    const a = this.opts.attrs;
    return {
      queueId: this.writer.queueId,
      clientName: a[ATTR.CLIENT_NAME],
      clientAddr: a[ATTR.CLIENT_ADDR],
      sender: this.sender,
      recipient: this.env.firstRecipient,
      proto: a[ATTR.PROTO_NAME],
      helo: a[ATTR.HELO_NAME],
    };
  }

  /**
   * Apply one check result (Postfix cleanup_act): returns the replacement bytes for the
   * header/line, or undefined to keep it.
   */
  private act(a: CheckAction, cls: 'header' | 'body', text: string, original: Buffer): Buffer | undefined {
    const ctx = this.logContext();
    switch (a.kind) {
      case 'none': return undefined;
      case 'reject':
        if (!this.error) log.info(actLog(ctx, 'reject', cls, text, `${a.enh} ${a.text}`));
        this.error ??= { code: a.code, enh: a.enh, text: a.text };
        return Buffer.alloc(0);
      case 'warn': log.info(actLog(ctx, 'warning', cls, text, a.text)); return undefined;
      case 'info': log.info(actLog(ctx, 'info', cls, text, a.text)); return undefined;
      case 'hold': log.info(actLog(ctx, 'hold', cls, text, a.text)); this.hold = true; return undefined;
      case 'discard': log.info(actLog(ctx, 'discard', cls, text, a.text)); this.discard = true; return undefined;
      case 'replace': log.info(actLog(ctx, 'replace', cls, text, a.text)); return Buffer.from(a.text + '\n', 'utf8');
      case 'prepend': log.info(actLog(ctx, 'prepend', cls, text, a.text)); return Buffer.concat([Buffer.from(a.text + '\n', 'utf8'), original]);
      case 'ignore': return Buffer.alloc(0);
      case 'bcc':
        log.info(actLog(ctx, 'bcc', cls, text, a.text));
        this.actionBcc.push(a.text);
        return undefined;
      case 'filter':
        // Postfix cleanup_act(): FILTER needs transport:destination; the last one wins.
        if (!a.text.includes(':')) {
          log.warn(`${this.writer.queueId}: bad FILTER action: ${a.text}`);
          return undefined;
        }
        log.info(actLog(ctx, 'filter', cls, text, a.text));
        this.filter = a.text;
        return undefined;
      case 'redirect':
        // Postfix cleanup_act(): REDIRECT needs an address with @; the last one wins.
        if (!a.text.includes('@')) {
          log.warn(`${this.writer.queueId}: bad REDIRECT action: ${a.text}`);
          return undefined;
        }
        log.info(actLog(ctx, 'redirect', cls, text, a.text));
        this.redirect = a.text;
        return undefined;
      case 'end': return undefined;
    }
  }

  private async header(h: Buffer, name: string, cls: HeaderClass): Promise<Buffer> {
    if (this.error) return h;
    const t = this.tables;
    const lname = name.toLowerCase();
    if (this.checks && t) {
      const mime = isMimeHeader(lname);
      const maps: Maps | undefined = cls === 'multipart' ? t.mimeHeaderChecks
        : mime ? t.mimeHeaderChecks : cls === 'nested' ? t.nestedHeaderChecks : t.headerChecks;
      if (maps) {
        // The logical header as one string, newlines between its lines, without the last one.
        const text = h.toString('utf8').replace(/\r?\n$/, '').replace(/\r\n/g, '\n');
        const a = await checkContent(maps, text);
        const out = this.act(a, 'header', text, h);
        if (out) return out;
      }
    }
    // RFC 8601 §5: an Authentication-Results header claiming our authserv-id is a forgery.
    if (cls === 'primary' && this.authres?.drops(h, lname)) return Buffer.alloc(0);
    // Return-Path: and Content-Length: from the client are dropped (Postfix header_opts.c
    // HDR_OPT_DROP): the delivery agents add their own Return-Path:.
    if (cls === 'primary' && (lname === 'return-path' || lname === 'content-length')) return Buffer.alloc(0);
    // Address rewriting, primary header only (Postfix: MIME_HDR_PRIMARY).
    if (cls === 'primary' && (SENDER_HEADERS.has(lname) || RECIPIENT_HEADERS.has(lname))) {
      const sender = SENDER_HEADERS.has(lname);
      const str = h.toString('latin1');
      const colon = str.indexOf(':');
      const value = await rewriteHeaderValue(str.slice(colon + 1), (addr) => this.headerAddress(sender, addr));
      if (value !== undefined) return Buffer.from(str.slice(0, colon + 1) + value, 'latin1');
    }
    return h;
  }

  private async headerAddress(sender: boolean, address: string): Promise<string> {
    const t = this.tables;
    if (!t) return address;
    let a = address;
    // Local submissions: the header addresses are made complete (local_header_rewrite_clients).
    if (this.opts.addMissingHeaders && a !== '') a = t.rewrite.rewrite(a);
    if (t.overrides.noAddressMappings || this.opts.mapAddresses === false || a === '') return a;
    const q = this.writer.queueId;
    if (sender) {
      if (t.senderCanonicalMaps && t.senderCanonicalClasses.headerSender) a = await cleanupMap11(t, q, t.senderCanonicalMaps, a, t.propagateCanonical);
      if (t.canonicalMaps && t.canonicalClasses.headerSender) a = await cleanupMap11(t, q, t.canonicalMaps, a, t.propagateCanonical);
      if (t.masqueradeClasses.headerSender) a = masquerade(a, t.masqueradeDomains, t.masqueradeExceptions);
    } else {
      if (t.recipientCanonicalMaps && t.recipientCanonicalClasses.headerRecipient) a = await cleanupMap11(t, q, t.recipientCanonicalMaps, a, t.propagateCanonical);
      if (t.canonicalMaps && t.canonicalClasses.headerRecipient) a = await cleanupMap11(t, q, t.canonicalMaps, a, t.propagateCanonical);
      if (t.masqueradeClasses.headerRecipient) a = masquerade(a, t.masqueradeDomains, t.masqueradeExceptions);
    }
    return a;
  }

  private async bodyLine(line: Buffer): Promise<Buffer> {
    if (this.error) return line;
    const text = line.toString('utf8').replace(/\r?\n$/, '');
    const a = await checkContent(this.tables!.bodyChecks!, text);
    return this.act(a, 'body', text, line) ?? line;
  }

  private addedMessageId: string | undefined;

  private missingHeaders(): Buffer {
    if (!this.opts.addMissingHeaders && !this.settings.alwaysAddMissingHeaders) return Buffer.alloc(0);
    const seen = this.message.result.seen;
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
      const s = this.sender;
      const addr = s === '' ? `MAILER-DAEMON@${this.settings.myhostname}` : s.includes('@') ? s : `${s}@${this.settings.myorigin}`;
      const name = this.opts.fullname?.trim();
      // Postfix: "From: Full Name <addr>", the name quoted when it holds RFC 5322 specials.
      lines.push(name ? `From: ${quotePhrase(name)} <${addr}>` : `From: ${addr}`);
    }
    const witheld = this.settings.undisclosedRecipientsHeader?.trim() ?? '';
    if (witheld && !seen.has('to') && !seen.has('cc') && !seen.has('bcc') && !seen.has('resent-to')) {
      // Postfix cleanup_message.c: undisclosed_recipients_header, added only when set (empty by
      // default since Postfix 2.8) and only when it has the form "name: value".
      if (/^[\x21-\x39\x3b-\x7e]+:/.test(witheld)) lines.push(witheld);
      else log.warn(`bad undisclosed_recipients_header header text "${witheld}" -- need "headername: headervalue"`);
    }
    return Buffer.from(lines.map((l) => l + '\n').join(''), 'utf8');
  }
}

/**
 * The in-process cleanup service (global/cleanup-client.ts) that master/ and cli/ build once and
 * pass to the submitters, with the trivial-rewrite it asks for its address mapping.
 */
export function cleanupClient(openRewrite: ResolveOpener): CleanupClient {
  return { open: (settings, queue, opts) => CleanupSession.open(settings, queue, opts, openRewrite) };
}

export function defaultHostname(): string { return hostname(); }

/** An RFC 5322 phrase: as is when it is atoms and spaces, else a quoted string. */
export function quotePhrase(name: string): string {
  if (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ \u0080-\uffff]+$/u.test(name)) return name;
  return `"${name.replace(/(["\\])/g, '\\$1')}"`;
}
