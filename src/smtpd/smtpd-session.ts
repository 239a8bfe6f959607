/**
 * smtpd-session - one SMTP connection (RFC 5321) as Postfix's smtpd(8) runs it: the reading
 * loop, the command table, replies, limits and timeouts. Policy stays outside (smtpd-policy.ts);
 * the message goes to cleanup (a CleanupStream, global/cleanup-client.ts), which answers only
 * after the queue file is durable.
 *
 * Reading: command lines end in LF (CRLF or bare LF, as Postfix); a line longer than
 * line_length_limit is cut there and the rest of it discarded. Commands are handled one at a
 * time in arrival order; replies are buffered and flushed when no complete command is waiting,
 * which gives PIPELINING (RFC 2920) for free and keeps replies in order.
 *
 * The session owns the socket, the reading loop, the command table, replies, limits, timeouts
 * and the transaction (HELO/EHLO, RSET, NOOP, QUIT, VRFY). Other commands live in
 * their own modules and work through the members below that are not `private` (the session's
 * contract with them; nothing outside src/smtpd uses those):
 *   smtpd-envelope.ts  MAIL and RCPT (and the creation of the transaction's queue file)
 *   smtpd-data.ts      DATA and BDAT (the message content, up to cleanup's durable commit)
 *   smtpd-starttls.ts  STARTTLS (swaps the socket)
 *   smtpd-auth.ts      AUTH (SASL exchange)
 *   smtpd-xclient.ts   XCLIENT and XFORWARD
 *
 * Reply texts are Postfix 3.7's, checked against the real smtpd in test/interop.
 */
import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import { randomFillSync } from 'node:crypto';
import type { TlsContextSource } from '../lib-tls/tls-server.ts';
import { receivedTlsText } from '../lib-tls/tls-describe.ts';
import { parsePathArg } from '../lib-smtp/smtp-address.ts';
import { logger } from '../util/msg.ts';
import type { SmtpdSettings } from './smtpd-settings.ts';
import type { SmtpdPolicy, SmtpdVerdict } from './smtpd-policy.ts';
import type { SmtpdState } from './smtpd-state.ts';
import type { CleanupOpenOptions, CleanupStream } from '../global/cleanup-client.ts';
import type { SmtpdAuth } from './smtpd-sasl.ts';
import type { ClientLimits } from './smtpd-anvil.ts';
import { cmdMail, cmdRcpt } from './smtpd-envelope.ts';
import { cmdEtrn } from './smtpd-etrn.ts';
import { cmdXclient, cmdXforward, XCLIENT_ATTRS, XFORWARD_ATTRS } from './smtpd-xclient.ts';
import { SmtpdData } from './smtpd-data.ts';
import { cmdStarttls } from './smtpd-starttls.ts';
import { cmdAuth } from './smtpd-auth.ts';
import { SmtpLineState, smtpGet } from '../lib-smtp/smtp-get.ts';
import { closeAfterLinger } from '../lib-master/master-session.ts';
import type { MilterConfig } from '../lib-milter/milter-config.ts';
import type { ResolveClient } from '../global/resolve-client.ts';
import { SmtpdMilters } from './smtpd-milter.ts';
import type { SmtpdProxy, SmtpdProxySettings } from './smtpd-proxy.ts';
import { metrics } from '../util/metrics.ts';

const REPLIES = metrics.counter('postern_smtpd_replies_total', 'SMTP replies smtpd sent, by master.cf service, reply code class and the restriction that caused a rejection (empty otherwise)', ['service', 'class', 'restriction']);
const REPLY_CLASS = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

const log = logger('smtpd');

export interface SmtpdDeps {
  settings: SmtpdSettings;
  policy: SmtpdPolicy;
  /** Opens a cleanup session (queue file) for a transaction. */
  openCleanup(opts: CleanupOpenOptions): Promise<CleanupStream>;
  /** Should cleanup add missing headers for this client (local_header_rewrite_clients)? */
  isLocalClient(addr: string): boolean;
  auth?: SmtpdAuth;
  service: string;
  /** smtpd_authorized_xclient_hosts / _xforward_hosts matchers (name, addr) → allowed. */
  xclientAllowed?: (name: string, addr: string) => Promise<boolean>;
  xforwardAllowed?: (name: string, addr: string) => Promise<boolean>;
  /** ETRN: 'ok' (delivery started), 'deny' (not in fast_flush_domains), 'fail'. */
  flushSite?: (domain: string) => Promise<'ok' | 'deny' | 'fail'>;
  /** Server TLS (smtpd_tls_security_level may/encrypt); undefined = no STARTTLS. */
  tls?: { context: SecureContext | TlsContextSource; level: 'may' | 'encrypt'; handshakeMs?: number; askCcert?: boolean };
  /** Per-client anvil limits (smtpd_client_new_tls_session_rate_limit at STARTTLS). */
  limits?: ClientLimits;
  /** smtpd_milters (smtpd-milter.ts); undefined: none, and no non_smtpd_milters downstream. */
  milters?: MilterConfig;
  /** trivial-rewrite for the milters' address macros ({mail_host}, {rcpt_mailer}, ...). */
  resolve?: ResolveClient;
  /** smtpd_proxy_filter: transactions go to this before-queue filter instead of cleanup (smtpd-proxy.ts). */
  proxy?: SmtpdProxySettings;
  /**
   * The session is over and its last reply written: the skeleton frees the slot and closes the
   * socket after a short linger (lib-master/master-session.ts). Without it the session closes
   * the socket itself after the same linger.
   */
  onEnd?: () => void;
}

type Handler = (s: SmtpdSession, arg: string) => Promise<void> | void;

/** The command table (Dovecot imap-commands.c style): verb → handler. */
const COMMANDS: Record<string, Handler> = {
  EHLO: (s, a) => s.cmdHelo(a, true),
  HELO: (s, a) => s.cmdHelo(a, false),
  MAIL: cmdMail,
  RCPT: cmdRcpt,
  DATA: (s, a) => s.body.cmdData(a),
  BDAT: (s, a) => s.body.cmdBdat(a),
  BURL: (s, a) => s.body.cmdBurl(a),
  RSET: (s, a) => s.cmdRset(a),
  NOOP: (s) => s.reply(250, '2.0.0', 'Ok'),
  QUIT: (s) => s.cmdQuit(),
  VRFY: (s, a) => s.cmdVrfy(a),
  STARTTLS: cmdStarttls,
  AUTH: cmdAuth,
  XCLIENT: cmdXclient,
  XFORWARD: cmdXforward,
  ETRN: cmdEtrn,
};

/** Commands allowed before STARTTLS when TLS is required (Postfix SMTPD_CMD_FLAG_PRE_TLS). */
const PRE_TLS = new Set(['EHLO', 'HELO', 'STARTTLS', 'RSET', 'NOOP', 'QUIT', 'XCLIENT', 'XFORWARD']);

/**
 * Commands counted for smtpd_junk_command_limit: smtpd.c's SMTPD_CMD_FLAG_LIMIT commands (HELO,
 * EHLO, RSET, NOOP, VRFY, ETRN; postconf(5) names NOOP, VRFY, ETRN and RSET).
 */
const JUNK = new Set(['HELO', 'EHLO', 'NOOP', 'VRFY', 'RSET', 'ETRN']);

/** In the output queue: smtpd_error_sleep_time passes before what follows is written. */
const SLEEP = '\0';

/** Unread input beyond this pauses the socket until the commands before it are handled. */
const INPUT_HIGH_WATER = 256 * 1024;

export class SmtpdSession {
  readonly state: SmtpdState;
  /** The client connection (a TLSSocket after STARTTLS). */
  sock: Socket;
  readonly deps: SmtpdDeps;
  readonly st: SmtpdSettings;
  /** Bytes read and not yet handled (commands, or content while `body.receiving`). */
  inbuf: Buffer = Buffer.alloc(0);
  /** DATA/BDAT content handling. */
  readonly body: SmtpdData;
  /** The queue file of the transaction, from the first accepted RCPT until the end of the content. */
  cleanup: CleanupStream | undefined;
  /** The queue file being created since MAIL FROM, not yet taken by an accepted RCPT (startOpen). */
  opening: Promise<CleanupStream> | undefined;
  /** The TCP peer, whatever XCLIENT says later. */
  readonly realAddr: string;
  readonly realName: string;
  /** The client was refused at connect (smtpd_delay_reject = no): 503 to all but QUIT. */
  accessDenied = false;
  /** XFORWARD attributes for the next queue file. */
  readonly xforward = new Map<string, string | undefined>();
  /** The session's milter connections (smtpd-milter.ts). */
  milters: SmtpdMilters | undefined;
  /** smtpd_proxy_filter: the transaction's filter connection, from the first accepted RCPT (smtpd-proxy.ts). */
  proxy: SmtpdProxy | undefined;
  /** The command line being handled, as the client sent it (relayed to a proxy filter). */
  line = '';
  private out: string[] = [];
  /** The restriction behind the next reply (metrics label). */
  private restriction: string | undefined;
  private busy = false;
  /** No more input is handled (QUIT, 421, the client left). */
  private closed = false;
  /** The socket is gone or handed back: nothing more is written. */
  private gone = false;
  /** hangup(): end the connection once the queued output is written. */
  private ending = false;
  /** An smtpd_error_sleep_time pause before the next queued reply (a timer, never a busy wait). */
  private sleeping: NodeJS.Timeout | undefined;
  /** A SLEEP is in `out` (so the pump needs no scan of the queue per command). */
  private sleepQueued = false;
  private wake: (() => void)[] = [];
  /** Reading paused at INPUT_HIGH_WATER. */
  private inputPaused: Socket | undefined;
  /** The last command handled (Postfix state->where), for "too many errors after RCPT". */
  private where = 'CONNECT';
  private readonly longLine = new SmtpLineState();
  private timer: NodeJS.Timeout | undefined;
  private readonly counts = new Map<string, number>();

  constructor(sock: Socket, deps: SmtpdDeps) {
    this.sock = sock;
    this.deps = deps;
    this.st = deps.settings;
    this.body = new SmtpdData(this);
    this.state = {
      sessionId: newSessionId(),
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
    const session = this;
    Object.defineProperty(this.state, 'queueId', { get: () => session.cleanup?.queueId, enumerable: false });
    if (this.state.clientAddr === '127.0.0.1' || this.state.clientAddr === '::1') this.state.clientName = 'localhost';
    this.realAddr = this.state.clientAddr;
    this.realName = this.state.clientName;
    this.milters = deps.milters ? new SmtpdMilters(this, deps.milters) : undefined;
  }

  get client(): string { return `${this.state.clientName}[${this.state.clientAddr}]`; }

  /** The session is over (client gone, QUIT, hangup): nothing more is sent or read. */
  get ended(): boolean { return this.closed; }

  async start(): Promise<void> {
    log.info(`connect from ${this.client}`);
    this.attach(this.sock);
    this.resetTimer();
    const v = await this.deps.policy.connect?.(this.state);
    if (v?.reply) {
      // smtpd_delay_reject = no: the client rejection replaces the greeting; afterwards every
      // command but QUIT gets "503 5.7.0 Error: access denied for ..." (Postfix smtpd.c).
      log.info(`NOQUEUE: reject: CONNECT from ${this.client}: ${v.reply.code} ${v.reply.enh} ${v.reply.text}; proto=SMTP`);
      this.restriction = v.restriction;
      this.reply(v.reply.code, v.reply.enh, v.reply.text);
      if (v.disconnect) return this.hangup();
      this.accessDenied = true;
      this.state.errorCount++;
      if (!this.errorLimit()) this.flush();
      return;
    }
    if (this.milters && !(await this.milters.connect())) return this.flush();
    this.reply(220, '', this.st.banner);
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
    this.state.tlsSocket = t;
  }

  // ---- input -------------------------------------------------------------------------------

  private onData(b: Buffer): void {
    if (this.closed) return;
    if (!this.st.perRequestDeadline) this.resetTimer();
    else if (this.body.receiving) this.extendDeadline(b.length);
    this.inbuf = this.inbuf.length ? Buffer.concat([this.inbuf, b]) : b;
    if (this.inbuf.length >= INPUT_HIGH_WATER && !this.inputPaused) {
      // The commands before this input are still being handled (a slow check, an error sleep):
      // let TCP hold the rest instead of our memory.
      this.inputPaused = this.sock;
      this.sock.pause();
    }
    void this.pump();
  }

  /** Process as much buffered input as possible, one command at a time. */
  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (!this.closed) {
        if (this.body.receiving) {
          if (this.inbuf.length === 0) break;
          await this.body.feed();
          if (this.st.perRequestDeadline && !this.body.receiving && !this.closed) this.resetTimer();
          continue;
        }
        const line = this.takeLine();
        if (line === undefined) break;
        // smtpd_per_request_deadline: the request is in; its handling is not the client's time.
        if (this.st.perRequestDeadline) clearTimeout(this.timer);
        await this.command(line);
        // smtpd.c smtpd_proto(): the error limit is checked before the next command is read.
        if (!this.closed && this.errorLimit()) break;
        // A reply behind an error sleep is sent before the next command is handled, as
        // Postfix's smtpd sleeps, writes and flushes in smtpd_chat_reply().
        if (this.sleepQueued) {
          this.sleepQueued = false;
          this.flush();
          if (this.sleeping) await new Promise<void>((r) => this.wake.push(r));
        }
        // ... and the time limit of the next request starts (smtp_stream_setup() per command).
        if (this.st.perRequestDeadline && !this.closed) this.resetTimer();
      }
    } catch (e) {
      log.error(`${this.state.sessionId}: ${this.client}: ${(e as Error).stack ?? e}`);
      this.reply(421, '4.3.0', `${this.st.myhostname} Error: internal error`);
      this.hangup();
    } finally {
      this.busy = false;
    }
    this.flush();
    if (this.inputPaused && this.inbuf.length < INPUT_HIGH_WATER) {
      this.inputPaused.resume();
      this.inputPaused = undefined;
    }
    // More input may have arrived while a handler awaited.
    if (!this.closed && this.inbuf.length && (this.body.receiving || this.inbuf.includes(0x0a))) void this.pump();
  }

  /**
   * One command line without its line ending, or undefined when none is complete. A line over
   * line_length_limit is cut like Postfix's smtp_get(): the first part is handled at once, the
   * rest is dropped.
   */
  takeLine(): string | undefined {
    const line = smtpGet(this.inbuf, this.st.lineLimit, this.longLine, true);
    this.inbuf = this.longLine.rest;
    return line;
  }

  private async command(line: string): Promise<void> {
    const sp = line.indexOf(' ');
    const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
    const arg = sp < 0 ? '' : line.slice(sp + 1);
    const h = COMMANDS[verb];
    this.line = line;
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
      this.where = 'UNKNOWN';
      const m = this.milters && !line.includes('\0') ? await this.milters.unknown(line) : undefined;
      if (m) { this.error(m.code, m.enh, m.text); if (m.code === 421) this.hangup(); return; }
      this.error(500, '5.5.2', line.includes('\0') ? 'Error: bad syntax' : 'Error: command not recognized');
      return;
    }
    this.count(verb.toLowerCase());
    this.where = verb;
    if (this.accessDenied && verb !== 'QUIT') {
      return this.error(503, '5.7.0', `Error: access denied for ${this.client}`);
    }
    if (this.deps.tls?.level === 'encrypt' && !this.state.tls && !PRE_TLS.has(verb)) {
      return this.error(530, '5.7.0', 'Must issue a STARTTLS command first');
    }
    await h(this, arg);
    // smtpd.c: past smtpd_junk_command_limit, each junk command counts as an error too.
    if (JUNK.has(verb) && this.state.junkCount++ > this.st.junkCommandLimit) this.state.errorCount++;
  }

  /**
   * smtpd_hard_error_limit (smtpd.c smtpd_proto()): once the session has made that many errors
   * without delivering mail, "421 4.7.0 <myhostname> Error: too many errors" and disconnect.
   */
  private errorLimit(): boolean {
    if (this.state.errorCount < this.st.hardErrorLimit) return false;
    log.info(`too many errors after ${this.where} from ${this.client}`);
    this.reply(421, '4.7.0', `${this.st.myhostname} Error: too many errors`);
    this.hangup();
    return true;
  }

  // ---- output ------------------------------------------------------------------------------

  writeLine(l: string): void { this.out.push(l + '\r\n'); }

  /**
   * Queue one reply (multi-line when `text` has newlines). Postfix smtpd_chat_reply(): once the
   * session has made smtpd_soft_error_limit errors, every reply — error or not — waits
   * smtpd_error_sleep_time first (a timer of this session; other sessions go on).
   */
  reply(code: number, enh: string, text: string, more = false): void {
    if (!more) { REPLIES.labels(this.state.service, REPLY_CLASS[Math.floor(code / 100)] ?? 'other', this.restriction ?? '').inc(); this.restriction = undefined; }
    if (this.state.errorCount >= this.st.softErrorLimit && this.st.errorSleepMs > 0) { this.out.push(SLEEP); this.sleepQueued = true; }
    const lines = text.split('\n');
    lines.forEach((t, i) => this.writeLine(`${code}${more || i < lines.length - 1 ? '-' : ' '}${enh ? enh + ' ' : ''}${t}`));
  }

  /**
   * A reply made elsewhere (a proxy filter's), CRLF between its lines, sent as Postfix's
   * smtpd_chat_reply() sends it: every line but the last marked as a continuation, and the
   * session ends after a 421 or 521. A 4xx/5xx counts as an error when `error` is set.
   */
  replyText(text: string, error: boolean): void {
    // soft_bounce: 5xx → 4xx on every line, and a 5.x.x detail → 4.x.x (smtpd_chat_reply()).
    const lines = text.split('\r\n').map((l) => (this.st.softBounce && l[0] === '5' ? '4' + l.slice(1, 4) + (l[4] === '5' ? '4' : l.slice(4, 5)) + l.slice(5) : l));
    REPLIES.labels(this.state.service, REPLY_CLASS[Number(text[0])] ?? 'other', '').inc();
    if (this.state.errorCount >= this.st.softErrorLimit && this.st.errorSleepMs > 0) { this.out.push(SLEEP); this.sleepQueued = true; }
    lines.forEach((l, i) => this.writeLine(i < lines.length - 1 && l.length > 3 ? l.slice(0, 3) + '-' + l.slice(4) : l));
    if (error && (text[0] === '4' || text[0] === '5')) this.state.errorCount++;
    // smtpd_chat_reply(): a 421 or 521 reply is followed by an orderly disconnect.
    if (/^[45]21/.test(lines[0]!)) this.hangup();
  }

  /** A reply that counts as an error (smtpd_soft/hard_error_limit), counted after it is queued as Postfix does. */
  error(code: number, enh: string, text: string): void {
    this.reply(code, enh, text);
    this.state.errorCount++;
  }

  /** The transaction ended with "250 ... queued as": Postfix forgives the session's errors. */
  delivered(): void {
    this.state.errorCount = 0;
    this.state.junkCount = 0;
  }

  /** Write the queued replies, up to the next error sleep; at the end of a hangup, end the session. */
  flush(): void {
    if (this.gone || this.sleeping) return;
    const i = this.out.indexOf(SLEEP);
    if (i < 0) {
      if (this.out.length) this.sock.write(this.out.join(''));
      this.out = [];
      if (this.ending) this.finish();
      return;
    }
    if (i > 0) this.sock.write(this.out.slice(0, i).join(''));
    this.out = this.out.slice(i + 1);
    this.sleep();
  }

  private sleep(): void {
    this.sleeping = setTimeout(() => {
      this.sleeping = undefined;
      this.flush();
      if (!this.sleeping) for (const w of this.wake.splice(0)) w();
    }, this.st.errorSleepMs);
  }

  /** The end of the session (QUIT, 421, errors): send what is queued, then close. */
  hangup(): void {
    this.closed = true;
    this.ending = true;
    clearTimeout(this.timer);
    void this.abortTx().finally(() => this.milters?.quit());
    this.logDisconnect();
    this.flush();
  }

  /** Everything is written: half-close, free the slot, and let the socket linger briefly. */
  private finish(): void {
    if (this.gone) return;
    this.gone = true;
    this.sock.end();
    if (this.deps.onEnd) this.deps.onEnd();
    else closeAfterLinger(this.sock);
  }

  private close(): void {
    this.gone = true;
    clearTimeout(this.sleeping);
    this.sleeping = undefined;
    for (const w of this.wake.splice(0)) w();
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    if (this.body.receiving || this.cleanup) log.info(`lost connection after ${this.body.stage ?? 'RCPT'} from ${this.client}`);
    void this.abortTx().finally(() => this.milters?.quit());
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

  /**
   * smtpd_timeout from now: per read (Postfix's default), or with smtpd_per_request_deadline
   * (default yes under stress) for the whole next request, so that a client trickling a
   * command byte by byte is cut off after smtpd_timeout all the same.
   */
  private resetTimer(): void {
    this.deadlineAt = Date.now() + this.st.timeoutMs;
    this.armTimer(this.st.timeoutMs);
  }

  private deadlineAt = 0;

  private armTimer(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      log.info(`timeout after ${this.body.stage === 'DATA' ? 'DATA' : 'command'} from ${this.client}`);
      this.reply(421, '4.4.2', `${this.st.myhostname} Error: timeout exceeded`);
      this.hangup();
    }, ms);
    this.timer.unref?.();
  }

  /**
   * smtpd_min_data_rate: with deadlines, each n bytes of DATA/BDAT content extend the request's
   * deadline by n / smtpd_min_data_rate seconds, never beyond smtpd_timeout from now.
   */
  private extendDeadline(n: number): void {
    const now = Date.now();
    this.deadlineAt = Math.min(now + this.st.timeoutMs, this.deadlineAt + (n * 1000) / this.st.minDataRate);
    this.armTimer(Math.max(0, this.deadlineAt - now));
  }

  private count(k: string): void { this.counts.set(k, (this.counts.get(k) ?? 0) + 1); }

  /** Apply a policy verdict: log and send a rejection (false), or note a HOLD/DISCARD action. */
  async verdict(v: SmtpdVerdict | undefined, stage: string, extra = ''): Promise<boolean> {
    if (!v) return true;
    if (v.action && this.state.tx) { this.state.tx.action = v.action; this.state.tx.actionReason = v.reason; }
    if (v.prepend && this.state.tx) (this.state.tx.prepend ??= []).push(...v.prepend);
    if (v.filter && this.state.tx) this.state.tx.filter = v.filter;
    if (v.redirect && this.state.tx) this.state.tx.redirect = v.redirect;
    if (!v.reply) return true;
    const r = v.reply;
    this.restriction = v.restriction;
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
    const milter = this.milters ? await this.milters.helo(name) : 'ok';
    if (milter === 'hangup') return;
    if (!ehlo) return this.reply(250, '', this.st.myhostname);
    // A milter's 5xx at CONNECT or HELO: ENHANCEDSTATUSCODES only (Postfix, Sendmail compatibility).
    if (milter === 'reject') return this.reply(250, '', `${this.st.myhostname}\nENHANCEDSTATUSCODES`);
    const kw: string[] = ['PIPELINING'];
    kw.push(this.st.messageSizeLimit > 0 ? `SIZE ${this.st.messageSizeLimit}` : 'SIZE');
    if (!this.st.disableVrfy) kw.push('VRFY');
    kw.push('ETRN');
    if (this.deps.tls && !this.state.tls) kw.push('STARTTLS');
    if (this.deps.auth && this.st.authEnabled && (this.state.tls || !this.st.tlsAuthOnly)) kw.push(`AUTH ${this.deps.auth.mechanisms.join(' ')}`);
    if (await this.deps.xclientAllowed?.(this.state.clientName, this.state.clientAddr)) kw.push(`XCLIENT ${XCLIENT_ATTRS.join(' ')}`);
    if (await this.deps.xforwardAllowed?.(this.realName, this.realAddr)) kw.push(`XFORWARD ${XFORWARD_ATTRS.join(' ')}`);
    kw.push('ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8', 'CHUNKING');
    // RFC 4468 §3: "BURL imap" once authenticated, bare BURL before
    if (this.st.burlImapServer && this.st.burlSubmitUser && this.deps.auth && this.st.authEnabled) kw.push(this.state.saslUsername ? 'BURL imap' : 'BURL');
    const lines = [this.st.myhostname, ...kw.filter((k) => !this.st.discardEhloKeywords.has(k.split(' ')[0]!))];
    // Postfix's ehlo_cmd() sends each line with its own smtpd_chat_reply() (and error sleep).
    lines.forEach((l, i) => this.reply(250, '', l, i < lines.length - 1));
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
    const m = this.milters?.other(false);
    if (m) return this.error(m.code, m.enh, m.text);
    let addr = a;
    try { addr = parsePathArg(a, { allowNull: false }).address; } catch { /* Postfix echoes what it got */ }
    this.reply(252, '2.0.0', addr);
  }

  /**
   * XCLIENT: close the milter connections and connect again for the new client (Postfix
   * milter_disc_event + setup_milters); false when the milters replaced the greeting.
   */
  async restartMilters(): Promise<boolean> {
    if (!this.milters) return true;
    await this.milters.quit();
    this.milters = new SmtpdMilters(this, this.deps.milters!);
    return this.milters.connect();
  }

  /** End the transaction: forget it and remove its queue file (RSET, EHLO, errors, disconnect). */
  async abortTx(): Promise<void> {
    this.body.reset();
    const c = this.cleanup;
    const opening = this.opening;
    this.cleanup = undefined;
    this.opening = undefined;
    this.proxy?.close();
    this.proxy = undefined;
    this.state.tx = undefined;
    if (c) {
      await this.body.settle();
      await c.abort();
    }
    if (opening) await (await opening.catch(() => undefined))?.abort();
    await this.milters?.abort();
  }

  // ---- socket swaps (smtpd-starttls.ts) ----------------------------------------------------

  /** Stop reading the current socket and return it (STARTTLS hands it to the TLS layer). */
  detachSocket(): Socket {
    const raw = this.sock;
    this.detach(raw);
    return raw;
  }

  /** Continue the session on a new socket (the TLS one). */
  attachSocket(sock: Socket): void {
    this.sock = sock;
    this.attach(sock);
    this.resetTimer();
  }

  /** End the session on a socket that cannot be talked to any more (failed TLS handshake). */
  abandon(raw: Socket): void {
    this.closed = true;
    this.gone = true;
    this.deps.onEnd?.();
    clearTimeout(this.timer);
    raw.destroy();
    this.logDisconnect();
  }
}

/** Random bytes for session IDs, drawn from a pool (one randomFillSync per 1024 connections). */
const idPool = Buffer.alloc(4096);
let idPoolPos = idPool.length;

/** A session's log identity: 8 random upper-case hex digits. */
function newSessionId(): string {
  if (idPoolPos + 4 > idPool.length) { randomFillSync(idPool); idPoolPos = 0; }
  const id = idPool.toString('hex', idPoolPos, idPoolPos + 4).toUpperCase();
  idPoolPos += 4;
  return id;
}

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
