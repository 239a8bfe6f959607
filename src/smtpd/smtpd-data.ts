/**
 * smtpd-data - the message content of one SMTP session: DATA (RFC 5321 §4.1.1.4) and BDAT
 * (RFC 3030 CHUNKING), as Postfix's smtpd data_cmd() and bdat_cmd().
 *
 * Contract with smtpd-session.ts: the session owns the socket, the input buffer and the
 * transaction (state.tx, session.cleanup, opened at the first accepted RCPT). It hands its
 * DATA and BDAT commands to cmdData()/cmdBdat(); while `receiving` is true it calls feed(),
 * which takes the content from the front of the session's input buffer (`session.inbuf`) and
 * leaves what follows it (the next command). reset()
 * forgets the content state when the transaction ends (RSET, EHLO, STARTTLS, disconnect);
 * settle() waits for queued writes to cleanup before the session aborts the queue file.
 *
 * Content goes to cleanup in the queue's LF form, after the Received: header, through one
 * promise chain so that writes stay in order while the socket keeps being read: one write per
 * socket read (the decoded lines of the read, copied once). The reply to the end of the content
 * comes only after cleanup's finish() has made the queue file durable (250 "queued as") or
 * refused it; DISCARD (from smtpd restrictions) still answers 250.
 *
 * Bounded memory (issue 13): a session holds at most CONTENT_WINDOW bytes of content on their way
 * to the queue file; above it feed() waits for cleanup, the session stops reading the socket
 * (smtpd-session.ts INPUT_HIGH_WATER) and TCP holds the client back. Past message_size_limit nothing
 * more is kept, as Postfix's smtpd (data_cmd(): "queue file size limit exceeded", the rest read
 * and thrown away): DATA is read to its end and answered "552 5.3.4 Error: message file too
 * big"; a BDAT chunk whose announced size would cross the limit is answered "552 5.3.4 Chunk
 * exceeds message size limit", each later chunk of the transaction "551 5.0.0 Discarded N bytes
 * after earlier error" (checked against Postfix 3.7).
 *
 * Postfix behaviours kept: recipients are checked before the DATA syntax; a bare LF with
 * smtpd_forbid_bare_newline = strict rejects the message and ends the session; BDAT with a bad
 * size argument ends the session (521); "BDAT 0" without LAST is a null request (551); a BDAT
 * transaction that failed at its first chunk swallows the remaining chunks and answers each with
 * the first error; an unterminated last BDAT line is terminated (and counted in "N bytes").
 */
import { readFile } from 'node:fs/promises';
import { urlFetch } from '../global/imap-urlauth-client.ts';
import { parseUrlauthUrl } from '../lib-imap/imap-urlauth-url.ts';
import { DataDecoder } from '../lib-smtp/smtp-data-stream.ts';
import { mailDate } from '../global/mail-date.ts';
import { logger } from '../util/msg.ts';
import type { SmtpdReply } from './smtpd-policy.ts';
import type { SmtpdSession } from './smtpd-session.ts';

const log = logger('smtpd');
/** Content queued for cleanup and not yet written, above which feed() waits for cleanup. */
const CONTENT_WINDOW = 256 * 1024;

export class SmtpdData {
  private readonly s: SmtpdSession;
  /** Non-null while receiving DATA. */
  private data: DataDecoder | undefined;
  private bareLf = false;
  /** Bytes still to read for the current BDAT chunk. */
  private bdatRemaining = 0;
  private bdatLast = false;
  private bdatFailed: SmtpdReply | undefined;
  private bdatActive = false;
  private bdatNormalizer = new CrlfToLf();
  private bdatChunkSize = 0;
  private bdatTotal = 0;
  private bdatLastByte = -1;
  private contentWrites: Promise<void> = Promise.resolve();
  private contentError: Error | undefined;
  /** Bytes given to cleanup for this message (with the Received: header, LF form). */
  private size = 0;
  /** message_size_limit was crossed: nothing more is kept, the message is refused at its end. */
  private tooBig = false;
  /** Bytes queued for cleanup and not yet written. */
  private queued = 0;
  /** Decoded DATA content of the current socket read, written as one piece. */
  private batch: Buffer[] = [];
  private batchLen = 0;
  /** A proxy filter's refusal of DATA, answered to each chunk of a failed BDAT transaction. */
  private proxyRefusal: string | undefined;
  /** BDAT over message_size_limit: 'exceeds' for the chunk that crossed it, 'discarding' after. */
  private bdatDiscard: 'exceeds' | 'discarding' | undefined;

  constructor(session: SmtpdSession) { this.s = session; }

  /** Input bytes belong to the content (DATA lines or a BDAT chunk), not to commands. */
  get receiving(): boolean { return this.data !== undefined || this.bdatRemaining > 0; }

  /** 'DATA' or 'BDAT' while content is being received (for "lost connection after ..."). */
  get stage(): 'DATA' | 'BDAT' | undefined { return this.data ? 'DATA' : this.bdatRemaining > 0 ? 'BDAT' : undefined; }

  /** Consume content from the session's input buffer (non-empty, `receiving` true). */
  async feed(): Promise<void> {
    const s = this.s;
    if (this.data) {
      const d = this.data;
      const used = d.feed(s.inbuf);
      s.inbuf = s.inbuf.subarray(used);
      if (this.batchLen) {
        const b = this.batch.length === 1 ? Buffer.from(this.batch[0]!) : Buffer.concat(this.batch, this.batchLen);
        this.batch = []; this.batchLen = 0;
        this.queueContent(b);
      }
      if (d.done) await this.endData();
      else if (this.queued > CONTENT_WINDOW) await this.settle();
      return;
    }
    const n = Math.min(this.bdatRemaining, s.inbuf.length);
    const chunk = s.inbuf.subarray(0, n);
    s.inbuf = s.inbuf.subarray(n);
    this.bdatRemaining -= n;
    if (!this.bdatFailed && !this.bdatDiscard && !this.tooBig) this.queueBdat(Buffer.from(chunk));
    if (this.bdatRemaining === 0) await this.endBdatChunk();
    else if (this.queued > CONTENT_WINDOW) await this.settle();
  }

  /** The transaction is over: forget the content state (the session aborts cleanup). */
  reset(): void {
    this.data = undefined;
    this.bdatRemaining = 0;
    this.bdatActive = false;
    this.bdatDiscard = undefined;
    this.batch = []; this.batchLen = 0;
  }

  /** Wait for queued content writes (their errors are already recorded). */
  settle(): Promise<void> { return this.contentWrites.catch(() => {}); }

  async cmdData(arg: string): Promise<void> {
    const s = this.s;
    const tx = s.state.tx;
    // Postfix smtpd.c data_cmd(): recipients are checked before the syntax.
    if (!tx) return s.error(503, '5.5.1', 'Error: need RCPT command');
    if (tx.recipients.length === 0) return s.reply(554, '5.5.1', 'Error: no valid recipients');
    if (arg.trim()) return s.error(501, '5.5.4', 'Syntax: DATA');
    if (!(await this.startContent(s.line))) {
      if (this.proxyRefusal) s.replyText(this.proxyRefusal, true);
      return;
    }
    s.reply(354, '', 'End data with <CR><LF>.<CR><LF>');
    s.flush();
    this.bareLf = false;
    this.data = new DataDecoder({
      out: (b) => { this.batch.push(b); this.batchLen += b.length; },
      forbidBareLf: s.st.forbidBareNewline === 'strict',
      onBareLf: () => { this.bareLf = true; },
    });
  }

  async cmdBdat(arg: string): Promise<void> {
    const s = this.s;
    const m = /^(\d{1,15})(?:\s+(LAST))?\s*$/i.exec(arg.trim());
    if (!m) {
      s.error(521, '5.5.4', 'Syntax: BDAT count [LAST]');
      return s.hangup();
    }
    const n = Number(m[1]);
    const last = m[2] !== undefined;
    await this.beginChunks();
    if (n === 0 && !last) {
      this.bdatActive = false;
      await s.abortTx();
      return s.error(551, '5.7.1', 'Null BDAT request');
    }
    // Postfix bdat_cmd(): a chunk that would take the message over message_size_limit is read
    // and thrown away, judged by its announced size added to what the message has so far (the
    // Received: header included, as Postfix: 10000 + 10000 bytes cross a limit of 20000).
    const limit = s.st.messageSizeLimit;
    if (!this.bdatFailed && !this.bdatDiscard && limit > 0 && this.size + n > limit) {
      this.bdatDiscard = 'exceeds';
      log.warn(`${s.cleanup?.queueId ?? 'NOQUEUE'}: BDAT request from ${s.client} exceeds message size limit`);
    }
    this.bdatLast = last;
    this.bdatRemaining = n;
    this.bdatChunkSize = n;
    if (n === 0) await this.endBdatChunk();
  }

  /** The first BDAT/BURL of a transaction: the DATA-time checks, the Received: header. */
  private async beginChunks(): Promise<void> {
    if (this.bdatActive) return;
    const tx = this.s.state.tx;
    this.bdatFailed = undefined;
    this.proxyRefusal = undefined;
    if (!tx) this.bdatFailed = { code: 503, enh: '5.5.1', text: 'Error: need MAIL command' };
    else if (tx.recipients.length === 0) this.bdatFailed = { code: 554, enh: '5.5.1', text: 'Error: no valid recipients' };
    else if (!(await this.startContent('DATA'))) this.bdatFailed = { code: 554, enh: '5.5.1', text: 'Error: no valid recipients' };
    this.bdatActive = true;
    this.bdatDiscard = undefined;
    this.bdatNormalizer = new CrlfToLf();
    this.bdatTotal = 0;
    this.bdatLastByte = -1;
  }

  /**
   * BURL (RFC 4468): `BURL imap-url [LAST]` — the content of the URL, fetched from the IMAP
   * service (global/imap-urlauth-client.ts) as postern_burl_submit_user, is the next chunk of the
   * message, as if sent with BDAT (the two may be mixed). Only URLAUTH-ed imap URLs whose
   * access identifier is `submit+USER` with USER the SASL login (RFC 4468 §3.1) are accepted.
   *   501 5.5.4 Missing chunk URL parameter / Invalid chunk URL: Not an IMAP URL (Dovecot's)
   *   530 5.7.0 Authentication required               (no AUTH yet)
   *   554 5.7.8 URL resolution requires trust relationship (an imap URL without URLAUTH)
   *   554 5.6.6 IMAP URL resolution failed: No 'ACCESS' access allowed for user LOGIN
   *                                                   (an access identifier other than submit+LOGIN)
   *   554 5.6.6 IMAP URL resolution failed            (URLFETCH NIL, IMAP login refused)
   *   451 4.4.1 IMAP server unavailable: ...          (temporary; the transaction stays open)
   * 554 5.6.6 and 451 4.4.1 with RFC 4468 §6's example texts.
   * A failed fetch leaves the transaction as it was; the client may retry or RSET.
   */
  async cmdBurl(arg: string): Promise<void> {
    const s = this.s;
    if (!s.st.burlImapServer || !s.st.burlSubmitUser) return s.error(502, '5.5.1', 'Error: command not implemented');
    if (arg.trim() === '') return s.error(501, '5.5.4', 'Missing chunk URL parameter');
    const m = /^(\S+)(?:\s+(LAST))?\s*$/i.exec(arg.trim());
    if (!m) return s.error(501, '5.5.4', 'Syntax: BURL imap-url [LAST]');
    const user = s.state.saslUsername;
    if (!user) return s.error(530, '5.7.0', 'Authentication required');
    const url = m[1]!;
    if (!/^imap:\/\//i.test(url)) return s.error(501, '5.5.4', 'Invalid chunk URL: Not an IMAP URL');
    const u = parseUrlauthUrl(url);
    // a URL without URLAUTH would need a trust relationship with the IMAP server (RFC 4468 §6)
    if (!u || u.token === undefined) return s.error(554, '5.7.8', 'URL resolution requires trust relationship');
    const access = u.access.toLowerCase();
    let who = '';
    try { who = decodeURIComponent(access.slice('submit+'.length)); } catch { /* refused below */ }
    if (!access.startsWith('submit+') || who !== user.toLowerCase()) {
      let shown = u.access;
      try { shown = decodeURIComponent(u.access); } catch { /* as given */ }
      return s.error(554, '5.6.6', `IMAP URL resolution failed: No '${shown}' access allowed for user ${user}`);
    }
    if (!s.state.tx) return s.error(503, '5.5.1', 'Error: need MAIL command');
    let secret: string;
    try {
      secret = (await readFile(s.st.burlSubmitPasswordFile, 'utf8')).split('\n')[0]!.replace(/\r$/, '');
    } catch (e) {
      log.error(`BURL: postern_burl_submit_password_file: ${(e as Error).message}`);
      return s.error(451, '4.4.1', 'IMAP server unavailable: try again later');
    }
    const r = await urlFetch({
      server: s.st.burlImapServer, user: s.st.burlSubmitUser, secret, mechanism: 'PLAIN', url, timeoutMs: s.st.burlTimeoutMs,
      ...(s.st.messageSizeLimit > 0 ? { maxBytes: s.st.messageSizeLimit } : {}),
    });
    if (!r.ok) {
      log.warn(`${s.cleanup?.queueId ?? 'NOQUEUE'}: BURL from ${s.client}: ${r.why}`);
      return r.temp ? s.error(451, '4.4.1', 'IMAP server unavailable: try again later') : s.error(554, '5.6.6', 'IMAP URL resolution failed');
    }
    await this.beginChunks();
    const n = r.data.length;
    const limit = s.st.messageSizeLimit;
    if (!this.bdatFailed && !this.bdatDiscard && limit > 0 && this.size + n > limit) this.bdatDiscard = 'exceeds';
    this.bdatLast = m[2] !== undefined;
    this.bdatChunkSize = n;
    if (!this.bdatFailed && !this.bdatDiscard && !this.tooBig) this.queueBdat(r.data);
    await this.endBdatChunk();
  }

  private receivedHeader(): string {
    const s = this.s;
    const state = s.state;
    const tx = state.tx!;
    // RFC 3848; RFC 6531 §4.3: UTF8SMTP[S][A] for a message sent with MAIL FROM ... SMTPUTF8 (as Postfix).
    const proto = (tx.smtputf8 ? 'UTF8SMTP' : state.protocol) + (state.tls ? 'S' : '') + (state.saslUsername ? 'A' : '');
    const helo = state.helo ?? state.clientName;
    // Postfix: no Received: header of ours when we pass XFORWARD-ed mail on to a proxy filter.
    if (s.proxy && ['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO'].some((k) => s.xforward.has(k))) return '';
    let h = `Received: from ${helo} (${state.clientName} [${state.clientAddr}])\n`;
    if (state.tlsInfo) h += `\t(${state.tlsInfo})\n\t(No client certificate requested)\n`;
    // No queue file behind a proxy filter: no "id" (Postfix common_pre_message_handling()).
    h += `\tby ${s.st.myhostname} (${s.st.mailName}) with ${proto}${s.cleanup ? ` id ${s.cleanup.queueId}` : ''}`;
    if (tx.recipients.length === 1) h += `\n\tfor <${tx.recipients[0]!.address}>; ${mailDate()}\n`;
    else h += s.cleanup ? `; ${mailDate()}\n` : `;\n\t${mailDate()}\n`;
    return h;
  }

  /** `line`: what a proxy filter is sent (the client's DATA line; "DATA" for BDAT, as Postfix). */
  private async startContent(line: string): Promise<boolean> {
    const s = this.s;
    const tx = s.state.tx;
    this.proxyRefusal = undefined;
    if (!tx || tx.recipients.length === 0 || (!s.cleanup && !s.proxy)) return false;
    if (!(await s.verdict(await s.deps.policy.data?.(s.state), 'DATA', ` from=<${tx.sender}>`))) return false;
    if (s.milters && !(await s.milters.data())) return false;
    if (s.proxy) {
      const r = await s.proxy.cmd(line, '3');
      if (!r.ok) { this.proxyRefusal = r.reply; return false; }
    }
    this.contentError = undefined;
    this.size = 0;
    this.tooBig = false;
    // PREPEND headers from access tables and policy servers come first (Postfix smtpd.c data_cmd()).
    const pre = tx.prepend?.length ? tx.prepend.map((h) => h + '\n').join('') : '';
    this.queueContent(Buffer.from(pre + this.receivedHeader(), 'utf8'));
    return true;
  }

  /** Queue content for cleanup (`b` is ours: a copy of the input). */
  private queueContent(b: Buffer): void {
    const c = this.s.cleanup ?? this.s.proxy;
    if (!c || this.tooBig || !b.length) return;
    this.size += b.length;
    const limit = this.s.st.messageSizeLimit;
    if (limit > 0 && this.size > limit) {
      // Postfix smtpd data_cmd(): from here on the content is read and discarded.
      this.tooBig = true;
      if (this.data) this.data.discard = true;
      log.warn(`${this.s.cleanup?.queueId ?? 'NOQUEUE'}: queue file size limit exceeded`);
      // A proxy filter has seen every line that fitted, as Postfix writes line by line.
      const room = limit - (this.size - b.length);
      const fit = this.s.cleanup || room <= 0 ? -1 : b.lastIndexOf(0x0a, room - 1);
      if (fit >= 0) this.sendContent(c, b.subarray(0, fit + 1));
      return;
    }
    this.sendContent(c, b);
  }

  private sendContent(c: { write(b: Buffer): Promise<void> }, b: Buffer): void {
    this.queued += b.length;
    const n = b.length;
    this.contentWrites = this.contentWrites.then(() => c.write(b)).then(
      () => { this.queued -= n; },
      (e: Error) => { this.queued -= n; this.contentError = e; },
    );
  }

  private async endData(): Promise<void> {
    const s = this.s;
    this.data = undefined;
    if (this.bareLf) {
      await s.abortTx();
      s.reply(s.st.bareNewlineRejectCode, '5.5.2', 'Error: bare <LF> received');
      return s.hangup();
    }
    await this.finishMessage();
  }

  /** `note` goes before "queued as" (BDAT: "Ok: 23 bytes queued as QID", as Postfix). */
  private async finishMessage(note = ''): Promise<void> {
    const s = this.s;
    const tx = s.state.tx!;
    await this.contentWrites;
    if (this.tooBig) {
      if (s.proxy) this.logProxy(false, s.proxy.lastReply);
      await s.abortTx();
      return s.reply(552, '5.3.4', 'Error: message file too big');
    }
    if (s.proxy) return this.finishProxy();
    const c = s.cleanup!;
    if (this.contentError) {
      await s.abortTx();
      log.warn(`${c.queueId}: ${this.contentError.message}`);
      return s.reply(451, '4.3.0', 'Error: queue file write error');
    }
    const v = await s.deps.policy.endOfData?.(s.state);
    if (v?.reply) {
      await s.abortTx();
      s.reply(v.reply.code, v.reply.enh, v.reply.text);
      return;
    }
    if (tx.action === 'discard') {
      log.info(`${c.queueId}: discard: END-OF-MESSAGE from ${s.client}: ${tx.actionReason ?? ''}`);
      await s.abortTx();
      s.delivered();
      return s.reply(250, '2.0.0', `Ok: ${note}queued as ${c.queueId}`);
    }
    if (tx.action === 'hold') c.setHold?.(tx.actionReason ?? '');
    if (tx.filter) c.setFilter?.(tx.filter);
    if (tx.redirect) c.setRedirect?.(tx.redirect);
    const r = await c.finish();
    s.cleanup = undefined;
    s.state.tx = undefined;
    await s.milters?.abort();
    if ('reject' in r) {
      s.reply(r.reject.code, r.reject.enh, r.reject.text);
      if (r.reject.code === 421) s.hangup(); // a milter's shutdown
      return;
    }
    s.state.messages++;
    s.delivered(); // smtpd.c: a delivered message forgives the session's errors
    s.reply(250, '2.0.0', `Ok: ${note}queued as ${r.queueId}`);
  }

  /**
   * The end of the content with a proxy filter (Postfix common_post_message_handling()): the
   * filter's reply to "." is the client's, whatever it says; a failure on the way is 451.
   */
  private async finishProxy(): Promise<void> {
    const s = this.s;
    const tx = s.state.tx!;
    const proxy = s.proxy!;
    const v = this.contentError ? undefined : await s.deps.policy.endOfData?.(s.state);
    if (v?.reply) {
      await s.abortTx();
      s.reply(v.reply.code, v.reply.enh, v.reply.text);
      return;
    }
    const r = await proxy.end(); // after a failed write: the 451 below, nothing sent
    const ok = r.ok && r.reply[0] === '2';
    this.logProxy(ok, r.reply);
    s.xforward.clear(); // Postfix mail_reset(): XFORWARD attributes last one transaction
    await s.abortTx();
    if (ok) {
      s.state.messages++;
      s.delivered();
    }
    s.replyText(r.reply, true);
  }

  /** Postfix's "proxy-accept: END-OF-MESSAGE: <the filter's last reply>; from=<...> ..." (smtpd_whatsup()). */
  private logProxy(ok: boolean, reply: string): void {
    const s = this.s;
    const tx = s.state.tx!;
    const to = tx.recipients.length ? ` to=<${tx.recipients[0]!.address}>` : '';
    const helo = s.state.helo !== undefined ? ` helo=<${s.state.helo}>` : '';
    const sasl = s.state.saslUsername ? ` sasl_username=<${s.state.saslUsername}>` : '';
    // A multi-line reply is logged as Postfix's logger shows it: CR LF as "??".
    log.info(`proxy-${ok ? 'accept' : 'reject'}: END-OF-MESSAGE: ${reply.replace(/\r\n/g, '??')}; from=<${tx.sender}>${to} proto=${s.state.protocol}${helo}${sasl}`);
  }

  private async endBdatChunk(): Promise<void> {
    const s = this.s;
    if (this.bdatDiscard) {
      const first = this.bdatDiscard === 'exceeds';
      this.bdatDiscard = 'discarding';
      if (this.bdatLast) {
        this.bdatActive = false;
        await s.abortTx();
      }
      if (first) return s.reply(552, '5.3.4', 'Chunk exceeds message size limit');
      return s.reply(551, '5.0.0', `Discarded ${this.bdatChunkSize} bytes after earlier error`);
    }
    if (!this.bdatLast) {
      if (this.bdatFailed && this.proxyRefusal) return s.replyText(this.proxyRefusal, false);
      if (this.bdatFailed) return s.reply(this.bdatFailed.code, this.bdatFailed.enh, this.bdatFailed.text);
      return s.reply(250, '2.0.0', `Ok: ${this.bdatChunkSize} bytes`);
    }
    this.bdatActive = false;
    if (this.bdatFailed) {
      const f = this.bdatFailed;
      const refusal = this.proxyRefusal;
      this.bdatFailed = undefined;
      this.proxyRefusal = undefined;
      await s.abortTx();
      if (refusal) return s.replyText(refusal, true);
      return s.error(f.code, f.enh, f.text);
    }
    const tail = this.bdatNormalizer.end();
    if (tail.length) this.queueContent(tail);
    // Postfix terminates an unterminated last line (and counts the CRLF it added).
    if (this.bdatTotal > 0 && this.bdatLastByte !== 0x0a) { this.queueContent(Buffer.from('\n')); this.bdatTotal += 2; }
    await this.finishMessage(`${this.bdatTotal} bytes `);
  }

  /** BDAT content arrives with CRLF: normalise to the queue's LF form. */
  private queueBdat(b: Buffer): void {
    this.bdatTotal += b.length;
    if (b.length) this.bdatLastByte = b[b.length - 1]!;
    const out = this.bdatNormalizer.push(b);
    if (out.length) this.queueContent(out);
  }
}

/** CRLF → LF across chunk boundaries (BDAT content is not dot-stuffed: RFC 3030 §2). */
export class CrlfToLf {
  private pendingCr = false;
  push(b: Buffer): Buffer {
    const parts: Buffer[] = [];
    let start = 0;
    if (this.pendingCr) {
      this.pendingCr = false;
      if (b[0] !== 0x0a) parts.push(CR);
    }
    for (;;) {
      const i = b.indexOf(0x0d, start);
      if (i < 0) { parts.push(b.subarray(start)); break; }
      if (i === b.length - 1) { parts.push(b.subarray(start, i)); this.pendingCr = true; break; }
      if (b[i + 1] === 0x0a) { parts.push(b.subarray(start, i)); start = i + 1; } else { parts.push(b.subarray(start, i + 1)); start = i + 1; }
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
  end(): Buffer {
    if (this.pendingCr) { this.pendingCr = false; return CR; }
    return Buffer.alloc(0);
  }
}
const CR = Buffer.from('\r');
