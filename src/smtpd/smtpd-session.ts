/**
 * smtpd-session - one SMTP connection (RFC 5321) as Postfix's smtpd(8) runs it: the reading
 * loop, the command table, replies, limits and timeouts. Policy stays outside (smtpd-policy.ts);
 * the message goes to cleanup (src/cleanup/cleanup.ts), which answers only after the queue file
 * is durable.
 *
 * Reading: command lines end in LF (CRLF or bare LF, as Postfix); a line longer than
 * line_length_limit is cut there and the rest of it discarded. Commands are handled one at a
 * time in arrival order; replies are buffered and flushed when no complete command is waiting,
 * which gives PIPELINING (RFC 2920) for free and keeps replies in order.
 *
 * Reply texts are Postfix 3.7's, checked against the real smtpd in test/interop.
 */
import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import { startServerTls, describeTls, type TlsContextSource } from '../lib-tls/tls-server.ts';
import { receivedTlsText } from '../lib-tls/tls-describe.ts';
import { parsePathArg, AddressSyntaxError, decodeXtext } from '../lib-smtp/smtp-address.ts';
import { DataDecoder } from '../lib-smtp/smtp-data-stream.ts';
import { DSN_NOTIFY, ATTR, QF } from '../global/rec-type.ts';
import { mailDate } from '../global/mail-date.ts';
import { logger } from '../util/msg.ts';
import type { SmtpdSettings } from './smtpd-settings.ts';
import type { SmtpdPolicy, SmtpdReply, SmtpdVerdict } from './smtpd-policy.ts';
import type { SmtpdState, SmtpdTransaction } from './smtpd-state.ts';
import type { CleanupSession, CleanupOpenOptions } from '../cleanup/cleanup.ts';
import type { SmtpdAuth } from './smtpd-sasl.ts';
import type { ClientLimits } from '../anvil/anvil-smtpd.ts';
import { parseXAttrs, XclientError, XCLIENT_ATTRS, XFORWARD_ATTRS } from './smtpd-xclient.ts';

const log = logger('smtpd');

export interface SmtpdDeps {
  settings: SmtpdSettings;
  policy: SmtpdPolicy;
  /** Opens a cleanup session (queue file) for a transaction. */
  openCleanup(opts: CleanupOpenOptions): Promise<CleanupSession>;
  /** Should cleanup add missing headers for this client (local_header_rewrite_clients)? */
  isLocalClient(addr: string): boolean;
  auth?: SmtpdAuth;
  service: string;
  /** smtpd_authorized_xclient_hosts / _xforward_hosts matchers (name, addr) → allowed. */
  xclientAllowed?: (name: string, addr: string) => Promise<boolean>;
  xforwardAllowed?: (name: string, addr: string) => Promise<boolean>;
  /** Server TLS (smtpd_tls_security_level may/encrypt); undefined = no STARTTLS. */
  tls?: { context: SecureContext | TlsContextSource; level: 'may' | 'encrypt'; handshakeMs?: number };
  /** Per-client anvil limits (smtpd_client_new_tls_session_rate_limit at STARTTLS). */
  limits?: ClientLimits;
}

type Handler = (s: SmtpdSession, arg: string) => Promise<void> | void;

/** The command table (Dovecot imap-commands.c style): verb → handler. */
const COMMANDS: Record<string, Handler> = {
  EHLO: (s, a) => s.cmdHelo(a, true),
  HELO: (s, a) => s.cmdHelo(a, false),
  MAIL: (s, a) => s.cmdMail(a),
  RCPT: (s, a) => s.cmdRcpt(a),
  DATA: (s, a) => s.cmdData(a),
  BDAT: (s, a) => s.cmdBdat(a),
  RSET: (s, a) => s.cmdRset(a),
  NOOP: (s) => s.reply(250, '2.0.0', 'Ok'),
  QUIT: (s) => s.cmdQuit(),
  VRFY: (s, a) => s.cmdVrfy(a),
  STARTTLS: (s, a) => s.cmdStarttls(a),
  AUTH: (s, a) => s.cmdAuth(a),
  XCLIENT: (s, a) => s.cmdXclient(a),
  XFORWARD: (s, a) => s.cmdXforward(a),
};

/** Commands allowed before STARTTLS when TLS is required (Postfix SMTPD_CMD_FLAG_PRE_TLS). */
const PRE_TLS = new Set(['EHLO', 'HELO', 'STARTTLS', 'RSET', 'NOOP', 'QUIT', 'XCLIENT', 'XFORWARD']);

/** Commands that count as "junk" for smtpd_junk_command_limit (Postfix: NOOP, VRFY, ETRN, RSET). */
const JUNK = new Set(['NOOP', 'VRFY', 'RSET', 'ETRN']);

export class SmtpdSession {
  readonly state: SmtpdState;
  private sock: Socket;
  private readonly deps: SmtpdDeps;
  private readonly st: SmtpdSettings;
  private inbuf: Buffer = Buffer.alloc(0);
  private out: string[] = [];
  private busy = false;
  private closed = false;
  private discardingLongLine = false;
  /** The TCP peer, whatever XCLIENT says later. */
  private realAddr: string;
  private realName: string;
  private accessDenied = false;
  private timer: NodeJS.Timeout | undefined;
  /** Non-null while receiving DATA. */
  private data: DataDecoder | undefined;
  /** Bytes still to read for the current BDAT chunk. */
  private bdatRemaining = 0;
  private bdatLast = false;
  private bdatFailed: SmtpdReply | undefined;
  private cleanup: CleanupSession | undefined;
  private contentWrites: Promise<void> = Promise.resolve();
  private contentError: Error | undefined;
  private readonly counts = new Map<string, number>();

  constructor(sock: Socket, deps: SmtpdDeps) {
    this.sock = sock;
    this.deps = deps;
    this.st = deps.settings;
    this.state = {
      sessionId: randomBytes(4).toString('hex').toUpperCase(),
      clientAddr: normalizeAddr(sock.remoteAddress ?? 'unknown'),
      clientPort: sock.remotePort ?? 0,
      clientName: 'unknown',
      serverAddr: normalizeAddr(sock.localAddress ?? ''),
      serverPort: sock.localPort ?? 0,
      service: deps.service,
      protocol: 'SMTP',
      tls: false,
      errorCount: 0,
      junkCount: 0,
      messages: 0,
      inputPending: () => this.inbuf.length > 0,
    };
    if (this.state.clientAddr === '127.0.0.1' || this.state.clientAddr === '::1') this.state.clientName = 'localhost';
    this.realAddr = this.state.clientAddr;
    this.realName = this.state.clientName;
  }

  get client(): string { return `${this.state.clientName}[${this.state.clientAddr}]`; }

  async start(): Promise<void> {
    log.info(`connect from ${this.client}`);
    this.attach(this.sock);
    this.resetTimer();
    const v = await this.deps.policy.connect?.(this.state);
    if (v?.reply) {
      // smtpd_delay_reject = no: the client rejection replaces the greeting; afterwards every
      // command but QUIT gets "503 5.7.0 Error: access denied for ..." (Postfix smtpd.c).
      log.info(`NOQUEUE: reject: CONNECT from ${this.client}: ${v.reply.code} ${v.reply.enh} ${v.reply.text}; proto=SMTP`);
      this.reply(v.reply.code, v.reply.enh, v.reply.text);
      if (v.disconnect) return this.hangup();
      this.accessDenied = true;
      this.flush();
      return;
    }
    this.writeLine(`220 ${this.st.banner}`);
    this.flush();
  }

  private readonly onDataBound = (b: Buffer) => this.onData(b);
  private readonly onCloseBound = () => this.close();

  private attach(sock: Socket): void {
    sock.on('data', this.onDataBound);
    sock.on('error', this.onCloseBound);
    sock.on('close', this.onCloseBound);
  }

  private detach(sock: Socket): void {
    sock.off('data', this.onDataBound);
    sock.off('error', this.onCloseBound);
    sock.off('close', this.onCloseBound);
  }

  /** The session runs on a socket that is already TLS (smtpd_tls_wrappermode). */
  markTls(t: TLSSocket): void {
    this.state.tls = true;
    this.state.tlsInfo = receivedTlsText(t);
  }

  // ---- input -------------------------------------------------------------------------------

  private onData(b: Buffer): void {
    if (this.closed) return;
    this.resetTimer();
    this.inbuf = this.inbuf.length ? Buffer.concat([this.inbuf, b]) : b;
    void this.pump();
  }

  /** Process as much buffered input as possible, one command at a time. */
  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (!this.closed) {
        if (this.data) {
          if (this.inbuf.length === 0) break;
          const used = this.data.feed(this.inbuf);
          this.inbuf = this.inbuf.subarray(used);
          if (this.data.done) await this.endData();
          continue;
        }
        if (this.bdatRemaining > 0) {
          if (this.inbuf.length === 0) break;
          const n = Math.min(this.bdatRemaining, this.inbuf.length);
          const chunk = this.inbuf.subarray(0, n);
          this.inbuf = this.inbuf.subarray(n);
          this.bdatRemaining -= n;
          if (!this.bdatFailed) this.queueBdat(Buffer.from(chunk));
          if (this.bdatRemaining === 0) await this.endBdatChunk();
          continue;
        }
        const line = this.takeLine();
        if (line === undefined) break;
        await this.command(line);
      }
    } catch (e) {
      log.error(`${this.state.sessionId}: ${this.client}: ${(e as Error).stack ?? e}`);
      this.reply(421, '4.3.0', `${this.st.myhostname} Error: internal error`);
      this.hangup();
    } finally {
      this.busy = false;
    }
    this.flush();
    // More input may have arrived while a handler awaited.
    if (!this.closed && this.inbuf.length && (this.data || this.bdatRemaining > 0 || this.inbuf.includes(0x0a))) void this.pump();
  }

  /** One command line without its line ending, or undefined when none is complete. */
  private takeLine(): string | undefined {
    for (;;) {
      const nl = this.inbuf.indexOf(0x0a);
      if (this.discardingLongLine) {
        if (nl < 0) { this.inbuf = Buffer.alloc(0); return undefined; }
        this.inbuf = this.inbuf.subarray(nl + 1);
        this.discardingLongLine = false;
        continue;
      }
      if (nl < 0) {
        if (this.inbuf.length > this.st.lineLimit) {
          // Cut the line like Postfix's smtp_get(): handle the first part, drop the rest.
          const head = this.inbuf.subarray(0, this.st.lineLimit);
          this.inbuf = Buffer.alloc(0);
          this.discardingLongLine = true;
          return head.toString('utf8');
        }
        return undefined;
      }
      let end = nl;
      if (end > 0 && this.inbuf[end - 1] === 0x0d) end--;
      const line = this.inbuf.subarray(0, Math.min(end, this.st.lineLimit)).toString('utf8');
      this.inbuf = this.inbuf.subarray(nl + 1);
      return line;
    }
  }

  private async command(line: string): Promise<void> {
    const sp = line.indexOf(' ');
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? '' : line.slice(sp + 1);
    const h = COMMANDS[verb];
    if (!h && (this.st.forbiddenCommands.has(verb) || /^[^A-Za-z]/.test(line) || isHeader(line))) {
      // Postfix smtpd.c: an unknown command that is in smtpd_forbidden_commands, does not start
      // with a letter, or looks like a message header (pipelining abuse, HTTP proxies) ends the
      // session.
      log.warn(`non-SMTP command from ${this.client}: ${printable(line).slice(0, 100)}`);
      this.reply(221, '2.7.0', 'Error: I can break rules, too. Goodbye.');
      return this.hangup();
    }
    if (!h || line.includes('\0')) {
      this.count('unknown');
      this.error(500, '5.5.2', line.includes('\0') ? 'Error: bad syntax' : 'Error: command not recognized');
      return;
    }
    this.count(verb.toLowerCase());
    if (this.accessDenied && verb !== 'QUIT') {
      return this.error(503, '5.7.0', `Error: access denied for ${this.client}`);
    }
    if (this.deps.tls?.level === 'encrypt' && !this.state.tls && !PRE_TLS.has(verb)) {
      return this.error(530, '5.7.0', 'Must issue a STARTTLS command first');
    }
    if (JUNK.has(verb) && ++this.state.junkCount > this.st.junkCommandLimit) {
      this.error(421, '4.7.0', `${this.st.myhostname} Error: too many errors`);
      return this.hangup();
    }
    await h(this, arg);
  }

  // ---- output ------------------------------------------------------------------------------

  private writeLine(l: string): void { this.out.push(l + '\r\n'); }

  reply(code: number, enh: string, text: string): void {
    const lines = text.split('\n');
    lines.forEach((t, i) => this.writeLine(`${code}${i < lines.length - 1 ? '-' : ' '}${enh ? enh + ' ' : ''}${t}`));
  }

  private replyR(r: SmtpdReply): void { this.reply(r.code, r.enh, r.text); }

  /** A reply that counts as an error (smtpd_soft/hard_error_limit). */
  private error(code: number, enh: string, text: string): void {
    this.state.errorCount++;
    this.reply(code, enh, text);
    if (this.state.errorCount >= this.st.hardErrorLimit) {
      this.reply(421, '4.7.0', `${this.st.myhostname} Error: too many errors`);
      this.hangup();
    }
  }

  private flush(): void {
    if (this.out.length === 0 || this.closed) return;
    const s = this.out.join('');
    this.out = [];
    this.sock.write(s);
  }

  private hangup(): void {
    this.flush();
    this.closed = true;
    clearTimeout(this.timer);
    this.sock.end();
    void this.abortTx();
    this.logDisconnect();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    if (this.data || this.bdatRemaining > 0 || this.cleanup) log.info(`lost connection after ${this.data ? 'DATA' : this.bdatRemaining ? 'BDAT' : 'RCPT'} from ${this.client}`);
    void this.abortTx();
    this.logDisconnect();
  }

  private logged = false;
  private logDisconnect(): void {
    if (this.logged) return;
    this.logged = true;
    const parts = [...this.counts].map(([k, v]) => `${k}=${v}`);
    const total = [...this.counts.values()].reduce((a, b) => a + b, 0);
    log.info(`disconnect from ${this.client}${parts.length ? ' ' + parts.join(' ') : ''} commands=${total}`);
  }

  private resetTimer(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      log.info(`timeout after ${this.data ? 'DATA' : 'command'} from ${this.client}`);
      this.reply(421, '4.4.2', `${this.st.myhostname} Error: timeout exceeded`);
      this.hangup();
    }, this.st.timeoutMs);
    this.timer.unref?.();
  }

  private count(k: string): void { this.counts.set(k, (this.counts.get(k) ?? 0) + 1); }

  private async verdict(v: SmtpdVerdict | undefined, stage: string, extra = ''): Promise<boolean> {
    if (!v) return true;
    if (v.action && this.state.tx) { this.state.tx.action = v.action; this.state.tx.actionReason = v.reason; }
    if (!v.reply) return true;
    const r = v.reply;
    log.info(`${this.cleanup?.queueId ?? 'NOQUEUE'}: reject: ${stage} from ${this.client}: ${r.code} ${r.enh} ${r.text};${extra} proto=${this.state.protocol} helo=<${this.state.helo ?? ''}>`);
    this.error(r.code, r.enh, r.text);
    if (v.disconnect) this.hangup();
    return false;
  }

  // ---- commands ----------------------------------------------------------------------------

  async cmdHelo(arg: string, ehlo: boolean): Promise<void> {
    const name = arg.trim();
    if (!name) return this.error(501, '', `Syntax: ${ehlo ? 'EHLO' : 'HELO'} hostname`);
    await this.abortTx(); // RFC 5321 §4.1.4: EHLO/HELO reset the transaction
    this.state.helo = name;
    this.state.protocol = ehlo ? 'ESMTP' : 'SMTP';
    if (!(await this.verdict(await this.deps.policy.helo?.(this.state, name), 'HELO', ''))) return;
    if (!ehlo) return this.reply(250, '', this.st.myhostname);
    const kw: string[] = ['PIPELINING'];
    kw.push(this.st.messageSizeLimit > 0 ? `SIZE ${this.st.messageSizeLimit}` : 'SIZE');
    if (!this.st.disableVrfy) kw.push('VRFY');
    if (this.deps.tls && !this.state.tls) kw.push('STARTTLS');
    if (this.deps.auth && this.st.authEnabled && (this.state.tls || !this.st.tlsAuthOnly)) kw.push(`AUTH ${this.deps.auth.mechanisms.join(' ')}`);
    if (await this.deps.xclientAllowed?.(this.state.clientName, this.state.clientAddr)) kw.push(`XCLIENT ${XCLIENT_ATTRS.join(' ')}`);
    if (await this.deps.xforwardAllowed?.(this.realName, this.realAddr)) kw.push(`XFORWARD ${XFORWARD_ATTRS.join(' ')}`);
    kw.push('ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8', 'CHUNKING');
    const lines = [this.st.myhostname, ...kw.filter((k) => !this.st.discardEhloKeywords.has(k.split(' ')[0]!))];
    this.reply(250, '', lines.join('\n'));
  }

  async cmdMail(arg: string): Promise<void> {
    if (this.st.heloRequired && !this.state.helo) return this.error(503, '5.5.1', 'Error: send HELO/EHLO first');
    if (this.state.tx) return this.error(503, '5.5.1', 'Error: nested MAIL command');
    const m = /^FROM:/i.exec(arg);
    if (!m) return this.error(501, '5.5.4', 'Syntax: MAIL FROM:<address>');
    let p;
    try { p = parsePathArg(arg.slice(5), { allowNull: true }); } catch (e) {
      if (e instanceof AddressSyntaxError) return this.error(501, '5.1.7', 'Bad sender address syntax');
      throw e;
    }
    const tx: SmtpdTransaction = { sender: p.address, senderArg: p, recipients: [], smtputf8: false, rcptCount: 0 };
    for (const [k, v] of p.params) {
      const val = v === true ? '' : v;
      switch (k) {
        case 'SIZE': {
          if (!/^\d{1,15}$/.test(val)) return this.error(501, '5.5.4', 'Bad message size syntax');
          tx.declaredSize = Number(val);
          if (this.st.messageSizeLimit > 0 && tx.declaredSize > this.st.messageSizeLimit) return this.error(552, '5.3.4', 'Message size exceeds fixed limit');
          break;
        }
        case 'BODY': {
          const b = val.toUpperCase();
          if (b !== '7BIT' && b !== '8BITMIME') return this.error(555, '5.5.4', `Unsupported option: ${k}=${val}`);
          tx.body = b;
          break;
        }
        case 'SMTPUTF8': if (v !== true) return this.error(555, '5.5.4', `Unsupported option: ${k}=${val}`); tx.smtputf8 = true; break;
        case 'RET': {
          const r = val.toUpperCase();
          if (r !== 'FULL' && r !== 'HDRS') return this.error(501, '5.5.4', 'Bad RET parameter syntax');
          tx.dsnRet = r;
          break;
        }
        case 'ENVID': {
          const e = decodeXtext(val);
          // RFC 3461 §4.4: printable US-ASCII only — a CR/LF here would forge a DSN header.
          if (e === undefined || e.length > 100 || /[^\x20-\x7e]/.test(e)) return this.error(501, '5.5.4', 'Bad ENVID parameter syntax');
          tx.dsnEnvid = e;
          break;
        }
        case 'AUTH': break; // RFC 4954 §5: accepted and ignored unless trusted
        default: return this.error(555, '5.5.4', `Unsupported option: ${k}${v === true ? '' : '=' + val}`);
      }
    }
    if (p.utf8 && !tx.smtputf8) return this.error(553, '5.6.7', 'Must declare SMTPUTF8 to send UTF8 address');
    if (!(await this.enoughSpace(tx.declaredSize ?? 0))) return this.reply(452, '4.3.1', 'Insufficient system storage');
    this.state.tx = tx;
    if (!(await this.verdict(await this.deps.policy.mail?.(this.state, tx.sender), 'MAIL', ` from=<${tx.sender}>`))) {
      this.state.tx = undefined;
      return;
    }
    this.reply(250, '2.1.0', 'Ok');
  }

  async cmdRcpt(arg: string): Promise<void> {
    const tx = this.state.tx;
    if (!tx) return this.error(503, '5.5.1', 'Error: need MAIL command');
    if (!/^TO:/i.test(arg)) return this.error(501, '5.5.4', 'Syntax: RCPT TO:<address>');
    let p;
    try { p = parsePathArg(arg.slice(3), { allowNull: false }); } catch (e) {
      if (e instanceof AddressSyntaxError) return this.error(501, '5.1.3', 'Bad recipient address syntax');
      throw e;
    }
    if (p.utf8 && !tx.smtputf8) return this.error(553, '5.6.7', 'Must declare SMTPUTF8 to send UTF8 address');
    let notify = 0;
    let orcpt: string | undefined;
    for (const [k, v] of p.params) {
      const val = v === true ? '' : v;
      if (k === 'NOTIFY') {
        for (const w of val.toUpperCase().split(',')) {
          const bit = (DSN_NOTIFY as Record<string, number>)[w];
          if (!bit) return this.error(501, '5.5.4', 'Error: Bad NOTIFY parameter syntax');
          notify |= bit;
        }
        if ((notify & DSN_NOTIFY.NEVER) && notify !== DSN_NOTIFY.NEVER) return this.error(501, '5.5.4', 'Error: Bad NOTIFY parameter syntax');
      } else if (k === 'ORCPT') {
        const semi = val.indexOf(';');
        const dec = semi > 0 ? decodeXtext(val.slice(semi + 1)) : undefined;
        if (dec === undefined || /[\x00-\x1f\x7f]/.test(dec) || !/^[A-Za-z0-9-]+$/.test(val.slice(0, semi))) return this.error(501, '5.5.4', 'Error: Bad ORCPT parameter syntax');
        orcpt = `${val.slice(0, semi)};${dec}`;
      } else {
        return this.error(555, '5.5.4', `Unsupported option: ${k}${v === true ? '' : '=' + val}`);
      }
    }
    if (++tx.rcptCount > this.st.recipientLimit) {
      return this.reply(452, '4.5.3', 'Error: too many recipients');
    }
    const extra = ` from=<${tx.sender}> to=<${p.address}>`;
    if (!(await this.verdict(await this.deps.policy.rcpt?.(this.state, p.address), 'RCPT', extra))) return;
    if (!this.cleanup) {
      this.cleanup = await this.deps.openCleanup({
        sender: tx.sender,
        attrs: this.queueAttrs(tx),
        addMissingHeaders: this.deps.isLocalClient(this.state.clientAddr),
        flags: (tx.smtputf8 ? QF.SMTPUTF8 : 0) | (tx.body === '8BITMIME' ? QF.EIGHTBIT : 0),
      });
      if (this.closed) {
        // The client left while the queue file was being created: remove it (nothing leaks).
        const c = this.cleanup;
        this.cleanup = undefined;
        await c.abort();
        return;
      }
      log.info(`${this.cleanup.queueId}: client=${this.client}${this.state.saslUsername ? `, sasl_method=${this.state.saslMethod}, sasl_username=${this.state.saslUsername}` : ''}`);
    }
    tx.recipients.push({ address: p.address, orig: p.address, notify, orcpt });
    this.cleanup.addRecipient({ address: p.address, orig: p.address, notify, orcpt });
    this.reply(250, '2.1.5', 'Ok');
  }

  private queueAttrs(tx: SmtpdTransaction): Record<string, string> {
    const a: Record<string, string> = {
      [ATTR.CLIENT_NAME]: this.state.clientName,
      [ATTR.CLIENT_ADDR]: this.state.clientAddr,
      [ATTR.CLIENT_PORT]: String(this.state.clientPort),
      [ATTR.PROTO_NAME]: this.state.protocol,
      [ATTR.LOG_IDENT]: this.state.sessionId,
    };
    if (this.state.helo) a[ATTR.HELO_NAME] = this.state.helo;
    if (this.state.saslUsername) { a[ATTR.SASL_USERNAME] = this.state.saslUsername; a[ATTR.SASL_METHOD] = this.state.saslMethod ?? ''; }
    if (tx.dsnEnvid) a[ATTR.DSN_ENVID] = tx.dsnEnvid;
    if (tx.dsnRet) a[ATTR.DSN_RET] = tx.dsnRet;
    if (tx.body) a[ATTR.ENCODING] = tx.body;
    // XFORWARD: the original client, as Postfix's forward_* queue file attributes.
    for (const [k, v] of this.xforward) if (v !== undefined) a[`forward_${k.toLowerCase()}`] = v;
    this.xforward.clear();
    return a;
  }

  private receivedHeader(): string {
    const s = this.state;
    const tx = s.tx!;
    const proto = s.protocol + (s.tls ? 'S' : '') + (s.saslUsername ? 'A' : '') ; // RFC 3848
    const helo = s.helo ?? s.clientName;
    let h = `Received: from ${helo} (${s.clientName} [${s.clientAddr}])\n`;
    if (s.tlsInfo) h += `\t(${s.tlsInfo})\n\t(No client certificate requested)\n`;
    h += `\tby ${this.st.myhostname} (${this.st.mailName}) with ${proto} id ${this.cleanup!.queueId}`;
    if (tx.recipients.length === 1) h += `\n\tfor <${tx.recipients[0]!.address}>`;
    h += `; ${mailDate()}\n`;
    return h;
  }

  private async startContent(): Promise<boolean> {
    const tx = this.state.tx;
    if (!tx || tx.recipients.length === 0 || !this.cleanup) return false;
    if (!(await this.verdict(await this.deps.policy.data?.(this.state), 'DATA', ` from=<${tx.sender}>`))) return false;
    this.contentError = undefined;
    this.queueContent(Buffer.from(this.receivedHeader(), 'utf8'));
    return true;
  }

  private queueContent(b: Buffer): void {
    const c = this.cleanup;
    if (!c) return;
    this.contentWrites = this.contentWrites.then(() => c.write(b)).catch((e: Error) => { this.contentError = e; });
  }

  async cmdData(arg: string): Promise<void> {
    const tx = this.state.tx;
    // Postfix smtpd.c data_cmd(): recipients are checked before the syntax.
    if (!tx) return this.error(503, '5.5.1', 'Error: need RCPT command');
    if (tx.recipients.length === 0) return this.reply(554, '5.5.1', 'Error: no valid recipients');
    if (arg.trim()) return this.error(501, '5.5.4', 'Syntax: DATA');
    if (!(await this.startContent())) return;
    this.reply(354, '', 'End data with <CR><LF>.<CR><LF>');
    this.flush();
    let bare = false;
    this.data = new DataDecoder({
      out: (b) => this.queueContent(Buffer.from(b)),
      forbidBareLf: this.st.forbidBareNewline === 'strict',
      onBareLf: () => { bare = true; },
    });
    this.bareLf = () => bare;
  }
  private bareLf: () => boolean = () => false;

  private async endData(): Promise<void> {
    this.data = undefined;
    if (this.bareLf()) {
      await this.abortTx();
      this.reply(this.st.bareNewlineRejectCode, '5.5.2', 'Error: bare <LF> received');
      return this.hangup();
    }
    await this.finishMessage();
  }

  /** `note` goes before "queued as" (BDAT: "Ok: 23 bytes queued as QID", as Postfix). */
  private async finishMessage(note = ''): Promise<void> {
    const tx = this.state.tx!;
    const c = this.cleanup!;
    await this.contentWrites;
    if (this.contentError) {
      await this.abortTx();
      log.warn(`${c.queueId}: ${this.contentError.message}`);
      return this.reply(451, '4.3.0', 'Error: queue file write error');
    }
    const v = await this.deps.policy.endOfData?.(this.state);
    if (v?.reply) {
      await this.abortTx();
      this.reply(v.reply.code, v.reply.enh, v.reply.text);
      return;
    }
    if (tx.action === 'discard') {
      log.info(`${c.queueId}: discard: END-OF-MESSAGE from ${this.client}: ${tx.actionReason ?? ''}`);
      await this.abortTx();
      return this.reply(250, '2.0.0', `Ok: ${note}queued as ${c.queueId}`);
    }
    const r = await c.finish();
    this.cleanup = undefined;
    this.state.tx = undefined;
    if ('reject' in r) return this.reply(r.reject.code, r.reject.enh, r.reject.text);
    this.state.messages++;
    this.reply(250, '2.0.0', `Ok: ${note}queued as ${r.queueId}`);
  }

  async cmdBdat(arg: string): Promise<void> {
    const m = /^(\d{1,15})(?:\s+(LAST))?\s*$/i.exec(arg.trim());
    if (!m) {
      this.error(521, '5.5.4', 'Syntax: BDAT count [LAST]');
      return this.hangup();
    }
    const n = Number(m[1]);
    const last = m[2] !== undefined;
    const tx = this.state.tx;
    if (!this.bdatActive) {
      this.bdatFailed = undefined;
      if (!tx) this.bdatFailed = { code: 503, enh: '5.5.1', text: 'Error: need MAIL command' };
      else if (tx.recipients.length === 0) this.bdatFailed = { code: 554, enh: '5.5.1', text: 'Error: no valid recipients' };
      else if (!(await this.startContent())) this.bdatFailed = { code: 554, enh: '5.5.1', text: 'Error: no valid recipients' };
      this.bdatActive = true;
      this.bdatNormalizer = new CrlfToLf();
      this.bdatTotal = 0;
      this.bdatLastByte = -1;
    }
    if (n === 0 && !last) {
      this.bdatActive = false;
      await this.abortTx();
      return this.error(551, '5.7.1', 'Null BDAT request');
    }
    this.bdatLast = last;
    this.bdatRemaining = n;
    this.bdatChunkSize = n;
    if (n === 0) await this.endBdatChunk();
  }
  private bdatActive = false;
  private bdatNormalizer = new CrlfToLf();
  private bdatChunkSize = 0;
  private bdatTotal = 0;
  private bdatLastByte = -1;

  private async endBdatChunk(): Promise<void> {
    if (!this.bdatLast) {
      if (this.bdatFailed) return this.replyR(this.bdatFailed);
      return this.reply(250, '2.0.0', `Ok: ${this.bdatChunkSize} bytes`);
    }
    this.bdatActive = false;
    if (this.bdatFailed) {
      const f = this.bdatFailed;
      this.bdatFailed = undefined;
      await this.abortTx();
      return this.error(f.code, f.enh, f.text);
    }
    const tail = this.bdatNormalizer.end();
    if (tail.length) this.queueContent(tail);
    // Postfix terminates an unterminated last line (and counts the CRLF it added).
    if (this.bdatTotal > 0 && this.bdatLastByte !== 0x0a) { this.queueContent(Buffer.from('\n')); this.bdatTotal += 2; }
    await this.finishMessage(`${this.bdatTotal} bytes `);
  }

  async cmdRset(arg: string): Promise<void> {
    if (arg.trim()) return this.error(501, '5.5.4', 'Syntax: RSET');
    await this.abortTx();
    this.reply(250, '2.0.0', 'Ok');
  }

  cmdQuit(): void {
    this.reply(221, '2.0.0', 'Bye');
    this.hangup();
  }

  cmdVrfy(arg: string): void {
    if (this.st.disableVrfy) return this.error(502, '5.5.1', 'VRFY command is disabled');
    const a = arg.trim();
    if (!a) return this.error(501, '5.5.4', 'Syntax: VRFY address [SMTPUTF8]');
    let addr = a;
    try { addr = parsePathArg(a, { allowNull: false }).address; } catch { /* Postfix echoes what it got */ }
    this.reply(252, '2.0.0', addr);
  }

  /** Postfix XCLIENT: become the client the proxy names, then greet again. */
  async cmdXclient(arg: string): Promise<void> {
    if (this.state.tx) return this.error(503, '5.5.1', 'Error: MAIL transaction in progress');
    if (!(await this.deps.xclientAllowed?.(this.state.clientName, this.state.clientAddr))) return this.error(550, '5.7.0', 'Error: insufficient authorization');
    let a;
    try { a = parseXAttrs(arg, XCLIENT_ATTRS, 'XCLIENT'); } catch (e) {
      if (e instanceof XclientError) return this.error(e.code, e.enh, e.message);
      throw e;
    }
    const s = this.state;
    if (a.has('ADDR')) s.clientAddr = (a.get('ADDR') ?? 'unknown').replace(/^IPV6:/i, '');
    if (a.has('NAME')) s.clientName = a.get('NAME') ?? 'unknown';
    if (a.has('PORT')) s.clientPort = Number(a.get('PORT') ?? 0);
    if (a.has('LOGIN')) { s.saslUsername = a.get('LOGIN'); s.saslMethod = s.saslUsername ? 'XCLIENT' : undefined; }
    s.helo = a.has('HELO') ? a.get('HELO') : undefined;
    if (a.has('PROTO')) s.protocol = (a.get('PROTO') ?? 'SMTP').toUpperCase() === 'ESMTP' ? 'ESMTP' : 'SMTP';
    log.info(`${s.sessionId}: XCLIENT as ${this.client}`);
    this.accessDenied = false;
    const v = await this.deps.policy.connect?.(s);
    if (v?.reply) {
      this.reply(v.reply.code, v.reply.enh, v.reply.text);
      if (v.disconnect) return this.hangup();
      this.accessDenied = true;
      return;
    }
    this.writeLine(`220 ${this.st.banner}`);
  }

  /** Postfix XFORWARD: remember the original client for the next transaction's queue file. */
  async cmdXforward(arg: string): Promise<void> {
    if (this.state.tx) return this.error(503, '5.5.1', 'Error: MAIL transaction in progress');
    // XFORWARD authorization stays with the real peer (the proxy), even after XCLIENT.
    if (!(await this.deps.xforwardAllowed?.(this.realName, this.realAddr))) return this.error(550, '5.7.0', 'Error: insufficient authorization');
    try {
      const a = parseXAttrs(arg, XFORWARD_ATTRS, 'XFORWARD');
      for (const [k, v] of a) this.xforward.set(k, v);
    } catch (e) {
      if (e instanceof XclientError) return this.error(e.code, e.enh, e.message);
      throw e;
    }
    this.reply(250, '2.0.0', 'Ok');
  }
  private readonly xforward = new Map<string, string | undefined>();

  /**
   * Postfix smtpd_check_size(), in file-system blocks: refuse when queue_minfree is not free, or
   * the declared size would not leave queue_minfree, or would take half of what is free. A
   * completely full file system refuses even a message of unknown size.
   */
  private async enoughSpace(size: number): Promise<boolean> {
    if (!this.st.queueDirectory) return true;
    let fs;
    try { fs = await statfs(this.st.queueDirectory); } catch { return true; }
    const bsize = Number(fs.bsize) || 4096;
    const free = Number(fs.bavail);
    const minBlocks = Math.floor(this.st.queueMinfree / bsize);
    const sizeBlocks = Math.floor(size / bsize);
    if (minBlocks >= free || sizeBlocks >= free - minBlocks || sizeBlocks >= free / 2) {
      log.info(`NOQUEUE: reject: MAIL from ${this.client}: 452 4.3.1 Insufficient system storage; size=${size} free=${free * bsize} queue_minfree=${this.st.queueMinfree}`);
      return false;
    }
    return true;
  }

  /** RFC 3207. Plaintext pipelined after STARTTLS is discarded (CVE-2011-0411 class). */
  async cmdStarttls(arg: string): Promise<void> {
    if (arg.trim()) return this.error(501, '5.5.4', 'Syntax: STARTTLS');
    if (this.state.tls) return this.error(554, '5.5.1', 'Error: TLS already active');
    if (!this.deps.tls) return this.error(502, '5.5.1', 'Error: command not implemented');
    // Postfix smtpd_starttls(): "454 4.7.0 Error: too many new TLS sessions from addr".
    const refused = await this.deps.limits?.checkNewTls(this.state, false);
    if (refused) return this.error(refused.code, refused.enh, refused.text);
    this.reply(220, '2.0.0', 'Ready to start TLS');
    this.flush();
    if (this.inbuf.length) {
      log.warn(`${this.client}: discarding ${this.inbuf.length} bytes of plaintext sent after STARTTLS (command injection attempt?)`);
      this.inbuf = Buffer.alloc(0);
    }
    const raw = this.sock;
    this.detach(raw);
    let t: TLSSocket;
    try {
      t = await startServerTls(raw, this.deps.tls.context, this.deps.tls.handshakeMs ?? this.st.timeoutMs);
    } catch (e) {
      log.warn(`SSL_accept error from ${this.client}: ${(e as Error).message}`);
      this.closed = true;
      clearTimeout(this.timer);
      raw.destroy();
      this.logDisconnect();
      return;
    }
    this.sock = t;
    this.attach(t);
    this.resetTimer();
    this.markTls(t);
    void this.deps.limits?.countNewTls(this.state, t.isSessionReused());
    log.info(`Anonymous TLS connection established from ${this.client}: ${describeTls(t)}`);
    // RFC 3207 §4.2: forget everything learned before TLS; the client must EHLO again.
    await this.abortTx();
    this.state.helo = undefined;
    this.state.protocol = 'SMTP';
  }

  async cmdAuth(arg: string): Promise<void> {
    if (!this.deps.auth || !this.st.authEnabled) return this.error(503, '5.5.1', 'Error: authentication not enabled');
    if (this.st.tlsAuthOnly && !this.state.tls) return this.error(503, '5.5.1', 'Error: authentication not enabled');
    if (this.state.saslUsername) return this.error(503, '5.5.1', 'Error: already authenticated');
    if (this.state.tx) return this.error(503, '5.5.1', 'Error: MAIL transaction in progress');
    const r = await this.deps.auth.authenticate(arg, this.state, (challenge) => this.saslExchange(challenge));
    if (r.ok) {
      this.state.saslUsername = r.user;
      this.state.saslMethod = r.mechanism;
      this.reply(235, '2.7.0', 'Authentication successful');
    } else {
      log.warn(`${this.client}: SASL ${r.mechanism ?? ''} authentication failed: ${r.logReason ?? 'authentication failure'}`);
      this.error(r.code ?? 535, r.enh ?? '5.7.8', r.text ?? 'Error: authentication failed: authentication failure');
    }
  }

  /** Send a 334 challenge and wait for the client's next line (RFC 4954 §4). */
  private saslExchange(challenge: string): Promise<string | undefined> {
    this.writeLine(`334 ${challenge}`);
    this.flush();
    return new Promise((resolve) => {
      const tryTake = () => {
        const l = this.takeLine();
        if (l !== undefined) { this.sock.off('data', onMore); resolve(l); return true; }
        return false;
      };
      const onMore = () => { tryTake(); };
      const onClose = () => { resolve(undefined); };
      this.sock.once('close', onClose);
      if (!tryTake()) this.sock.on('data', onMore);
    });
  }

  private async abortTx(): Promise<void> {
    this.data = undefined;
    this.bdatRemaining = 0;
    this.bdatActive = false;
    const c = this.cleanup;
    this.cleanup = undefined;
    this.state.tx = undefined;
    if (c) {
      await this.contentWrites.catch(() => {});
      await c.abort();
    }
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

function normalizeAddr(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/** Postfix is_header(): "name:" with a printable name and no white space before the colon. */
function isHeader(line: string): boolean {
  return /^[!-9;-~]+:/.test(line);
}

function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]/g, '?');
}
