/**
 * imapd-session - one IMAP connection: the state machine of RFC 3501 §3 / RFC 9051 §3
 * (not authenticated → authenticated → selected → logout), a literal-aware reader on
 * lib-imap's ImapParser, and the command loop.
 *
 * Commands run ONE AT A TIME in arrival order (RFC 3501 §5.5 allows a server to do so; it is
 * what Dovecot does for every command that uses or breaks sequence numbers). While a command
 * runs the socket is paused, so a client cannot make us buffer more than one command line plus
 * a socket read. IDLE and AUTHENTICATE read raw lines through `readLine()`.
 *
 * Untagged updates (imapd-sync.ts) are sent before each tagged reply, except after FETCH,
 * STORE and SEARCH without UID, where EXPUNGE must not be sent (RFC 3501 §7.4.1): those
 * commands skip the sync, the next command reports what changed.
 *
 * Replies copy Dovecot 2.3: post-login tagged replies end in Dovecot's timing text
 * `(0.001 + 0.000 secs).`; `BAD Error in IMAP command X: reason`; internal errors are
 * `NO [SERVERBUG] Internal error occurred. Refer to server log for more information. [date]`.
 *
 * Per-connection memory is kept small: the parser, a handful of fields, the selected mailbox
 * handle (whose state lib-storage shares between sessions) and, while idling, one timer.
 *
 * Hostile clients (Dovecot 2.3's limits and texts, measured against the real one):
 * - One command, literals included, is at most imap_max_line_length bytes (default 64k), and
 *   8192 before login (imap-login's IMAP_LOGIN_MAX_LINE_LENGTH). A literal that does not fit:
 *   `* BYE Literal size too large` and the connection closes. A line over the limit: after
 *   login `TAG BAD Error in IMAP command X: Too long argument` (the rest of the line skipped),
 *   before login `* BYE Input buffer full, aborting`. APPEND's message literals are bounded
 *   by mail_max_size, together per command.
 * - Invalid commands: before login the third one gets `* BYE Too many invalid IMAP commands.`
 *   (imap-login's CLIENT_MAX_BAD_COMMANDS = 3, never reset); after login 20 BADs in a row do
 *   (imap's CLIENT_MAX_BAD_COMMANDS = 20, reset by any other reply).
 * - A raw line over the limit while a command waits for one: AUTHENTICATE closes the
 *   connection without a reply (imap-login: "Authentication response too large"), IDLE answers
 *   `BAD Expected DONE`.
 * - Output: the next command is not read while the socket (or the COMPRESS=DEFLATE stream in
 *   front of it) has a full write buffer, and a deflated FETCH waits for the socket like a plain
 *   one; input is not inflated while a command runs.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { createDeflateRaw, createInflateRaw, constants as zc, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { ImapParser, ImapParseError, TOO_LONG_ARGUMENT, type ImapArg, type ImapParserEvent } from '../lib-imap/imap-parser.ts';
import { MailError, MAIL_ERRSTR_CRITICAL_MSG } from '../lib-storage/mail-error.ts';
import type { Mailbox, MailUser, MessageInfo } from '../lib-storage/mail-storage.ts';
import type { UserRecord } from '../lib-auth/user-directory.ts';
import type { ImapdShared } from './imapd-shared.ts';
import { COMMANDS } from './imapd-commands.ts';
import { CMD_USES_SEQS, type CommandContext, type Reply } from './imapd-command.ts';
import { syncToClient } from './imapd-sync.ts';
import { autoCreateBeforeCommand } from './cmd-login.ts';
import { ImapNoError } from './imapd-names.ts';
import { capabilityList } from './imapd-capability.ts';
import type { NotifyState } from './imapd-notify.ts';
import { closeAfterLinger, type SessionSlot } from '../lib-master/master-session.ts';
import { LATENCY_BOUNDS, metrics } from '../util/metrics.ts';

const IMAP_COMMANDS = metrics.counter('postern_imap_commands_total', 'IMAP commands answered, by command and tagged status (OK, NO, BAD)', ['command', 'status']);
const IMAP_LATENCY = metrics.histogram('postern_imap_command_duration_seconds', 'Time from an IMAP command to its tagged reply, by command', ['command'], LATENCY_BOUNDS);

export type SessionState = 'nonauth' | 'auth' | 'selected' | 'logout';

const MAIL_ERROR_CODES: Record<string, string | undefined> = {
  TEMP: 'UNAVAILABLE', NOTFOUND: 'NONEXISTENT', EXISTS: 'ALREADYEXISTS', PERM: 'NOPERM', NOQUOTA: 'OVERQUOTA',
  EXPUNGED: 'EXPUNGEISSUED', INUSE: 'INUSE', PARAMS: 'CANNOT', LIMIT: 'LIMIT', TOOBIG: 'TOOBIG',
};

/** Largest METADATA value accepted, and all values of one SETMETADATA together (bytes). */
export const METADATA_MAX_VALUE = 1024 * 1024;
export const METADATA_MAX_COMMAND = 16 * 1024 * 1024;

/** imap-login's IMAP_LOGIN_MAX_LINE_LENGTH: one command before login, literals included. */
export const PRELOGIN_MAX_LINE = 8192;
/** imap-login's CLIENT_MAX_BAD_COMMANDS: the third invalid command before login ends the connection. */
export const PRELOGIN_MAX_BAD_COMMANDS = 3;
/** imap's CLIENT_MAX_BAD_COMMANDS: 20 BAD replies in a row after login end the connection. */
export const MAX_BAD_COMMANDS = 20;
const TOO_MANY_BAD = 'Too many invalid IMAP commands.';
/** Dovecot's BAD before login, whatever was wrong. */
const PRELOGIN_BAD = 'Error in IMAP command received by server.';

let sessionCounter = 0;

export class ImapSession {
  state: SessionState = 'nonauth';
  readonly shared: ImapdShared;
  sock: Socket;
  secure: boolean;
  /** The client's address: the peer's, or what a trusted proxy forwarded with ID (cmd-misc.ts). */
  remoteIp: string;
  localIp: string;
  remotePort: number;
  localPort: number;
  /** The address the connection really comes from (login_trusted_networks is checked on it). */
  readonly peerIp: string;
  readonly id: string;
  parser: ImapParser;
  userRecord: UserRecord | undefined;
  user: MailUser | undefined;
  box: Mailbox | undefined;
  /** ACL rights on the selected mailbox (imapd-acl.ts), when the acl plugin is on. */
  boxRights: string | undefined;
  /** The selected mailbox was opened with EXAMINE. */
  boxExamined = false;
  /** SELECTed, but the ACL rights allow no change: answered as READ-ONLY. */
  boxReadOnly = false;
  /** ENABLEd extensions (RFC 5161): CONDSTORE, QRESYNC, IMAP4rev2. */
  readonly enabled = new Set<string>();
  /** SEARCHRES `$` (RFC 5182): saved UIDs. */
  searchRes: number[] = [];
  /** Numbers the client knows: EXISTS and RECENT last sent. */
  exists = 0;
  recent = 0;
  /**
   * This session's own flag changes not yet folded into the view (the view changes only at a
   * sync, which FETCH/STORE/SEARCH by sequence number may not do): uid → the message as changed.
   * Also keeps the next sync from repeating FETCH FLAGS the client already got.
   */
  reported = new Map<number, MessageInfo>();

  /** The message as this session last changed it, else as the view shows it. */
  current(m: MessageInfo): MessageInfo {
    const r = this.reported.get(m.uid);
    return r !== undefined && r.modseq >= m.modseq ? r : m; // a later change by another session wins
  }
  /** The keyword list last announced in `* FLAGS` (SELECT or a later update). */
  keywordsSent = '';
  compressed = false;
  /** NOTIFY SET in force (RFC 5465, imapd-notify.ts). */
  notify: NotifyState | undefined;
  /** After NOTIFY (Dovecot's notify_count_changes / notify_flag_changes): EXISTS+RECENT, FETCH FLAGS of others. */
  notifyCounts = true;
  notifyFlags = true;
  /** IDLE is waiting for DONE: untagged updates may be pushed. */
  inIdle = false;
  /** DELETE removed the selected mailbox: the next command gets Dovecot's BYE. */
  selectedDeleted = false;
  private busy = false;
  private closed = false;
  private cleaned = false;
  private lineWaiter: ((line: Buffer | undefined | 'too-long') => void) | undefined;
  /** Invalid commands: all of them before login, the consecutive ones after. */
  private badCount = 0;
  /** APPEND message bytes announced in the current command (≤ mail_max_size together). */
  private appendBytes = 0;
  private deflatePaused = false;
  private deflate: DeflateRaw | undefined;
  private inflate: InflateRaw | undefined;
  private flushScheduled = false;
  private userIpKey: string | undefined;
  private bytesIn = 0;
  private bytesOut = 0;

  /** The master's session slot (serveSessions); without one the socket lingers on its own. */
  private readonly slot: SessionSlot | undefined;

  constructor(shared: ImapdShared, sock: Socket, o: { secure: boolean; slot?: SessionSlot }) {
    this.shared = shared;
    this.sock = sock;
    this.secure = o.secure;
    this.slot = o.slot;
    this.remoteIp = stripV4Mapped(sock.remoteAddress ?? '');
    this.peerIp = this.remoteIp;
    this.localIp = stripV4Mapped(sock.localAddress ?? '');
    this.remotePort = sock.remotePort ?? 0;
    this.localPort = sock.localPort ?? 0;
    this.id = `${process.pid.toString(36)}${(++sessionCounter).toString(36)}`;
    this.parser = this.newParser();
  }

  private newParser(): ImapParser {
    const s = this.shared.settings;
    return new ImapParser({
      maxLineLength: this.state === 'nonauth' ? Math.min(PRELOGIN_MAX_LINE, s.maxLineLength) : s.maxLineLength,
      maxLiteralSize: s.maxLiteralSize,
      // LITERAL+ (RFC 7888): non-synchronising literals up to the literal limit.
      maxNonSyncLiteral: s.maxLiteralSize,
    });
  }

  /**
   * Dovecot's `client->secured`: TLS, or the client's IP equals the local IP (a connection from
   * this host, e.g. 127.0.0.1 → 127.0.0.1), or login_trusted_networks.
   */
  get secured(): boolean {
    return this.secure || (this.peerIp !== '' && this.peerIp === stripV4Mapped(this.sock.localAddress ?? '')) || this.shared.trusted(this.peerIp);
  }

  /** The peer is in login_trusted_networks: it may forward the client's address (ID x-originating-ip). */
  get trustedPeer(): boolean { return this.shared.trusted(this.peerIp); }

  /**
   * The login is proxied (lib-login/login-proxy.ts): this session stops reading and lets go of
   * the socket, returning it with whatever the client sent after its login command. The
   * master's slot stays taken until the socket closes.
   */
  handOff(): { sock: Socket; rest: Buffer } {
    this.closed = true;
    this.cleaned = true;
    this.cancelReadLine();
    this.detach(this.sock);
    this.sock.on('error', () => {});
    return { sock: this.sock, rest: this.parser.takeBuffered() };
  }

  get condstore(): boolean { return this.enabled.has('CONDSTORE'); }
  get qresync(): boolean { return this.enabled.has('QRESYNC'); }
  /** After ENABLE IMAP4rev2 (RFC 9051; imapd-rev2.ts). */
  get rev2(): boolean { return this.enabled.has('IMAP4rev2'); }

  start(): void {
    this.attach(this.sock);
    this.send(`* OK [CAPABILITY ${capabilityList(this).join(' ')}] ${this.shared.settings.greeting}\r\n`);
  }

  private onData = (chunk: Buffer): void => {
    if (this.closed) return; // after BYE: nothing more is read or kept
    this.bytesIn += chunk.length;
    if (this.inflate) { this.inflate.write(chunk); return; }
    this.parser.push(chunk);
    this.pump();
  };
  private onClose = (): void => { void this.cleanup(); };
  private onError = (): void => { /* 'close' follows */ };

  private attach(sock: Socket): void {
    sock.on('data', this.onData);
    sock.on('close', this.onClose);
    sock.on('error', this.onError);
    sock.setNoDelay(true);
  }

  private detach(sock: Socket): void {
    sock.off('data', this.onData);
    sock.off('close', this.onClose);
    sock.off('error', this.onError);
  }

  // ---- output ----

  /** Write bytes to the client; resolves when the socket can take more (backpressure). */
  send(data: string | Buffer): Promise<void> | undefined {
    if (this.closed || this.sock.destroyed) return undefined;
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    this.bytesOut += buf.length;
    if (this.deflate) {
      const d = this.deflate;
      const ok = d.write(buf);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => { this.flushScheduled = false; this.deflate?.flush(zc.Z_SYNC_FLUSH); });
      }
      // the deflate stream stops taking input while the socket does not drain (startCompression)
      return ok ? undefined : this.drained(d);
    }
    if (this.sock.write(buf)) return undefined;
    return this.drained(this.sock);
  }

  /** Resolves when `stream` drains or the connection closes. */
  private drained(stream: NodeJS.WritableStream): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => { stream.off('drain', done); this.sock.off('close', done); resolve(); };
      stream.once('drain', done);
      this.sock.once('close', done);
    });
  }

  /** Untagged updates may be written now: no command runs, or IDLE waits. */
  get pushAllowed(): boolean { return !this.closed && (!this.busy || this.inIdle); }

  /** The client is not reading: the socket (or deflate) buffer is full. */
  get outputBlocked(): boolean {
    return this.closed || this.sock.destroyed || this.sock.writableNeedDrain || this.deflate?.writableNeedDrain === true;
  }

  /** Resolves when the output drains (or the connection closes). */
  whenDrained(): Promise<void> { return this.outputBacklog() ?? Promise.resolve(); }

  /** Before reading the next command: wait while the client is not reading what we wrote. */
  private outputBacklog(): Promise<void> | undefined {
    if (this.closed || this.sock.destroyed) return undefined;
    if (this.deflate?.writableNeedDrain) return this.drained(this.deflate);
    if (this.sock.writableNeedDrain) return this.drained(this.sock);
    return undefined;
  }

  // ---- input loop ----

  private pump(): void {
    while (!this.closed && (!this.busy || this.lineWaiter)) {
      let ev: ImapParserEvent | undefined;
      try { ev = this.parser.next(); } catch (e) { this.internalError(undefined, e); return; }
      if (!ev) {
        if (this.sock.isPaused()) this.sock.resume();
        if (this.inflate?.isPaused()) this.inflate.resume();
        return;
      }
      if (this.busy) {
        // only a raw line can arrive here (IDLE's DONE, an AUTHENTICATE response); a line too
        // long or any other error ends the wait too, so the command answers instead of hanging
        if (ev.type === 'error' && ev.fatal) { this.fatal(ev.message); return; }
        if (ev.type === 'line' || ev.type === 'error') {
          const w = this.lineWaiter!;
          this.lineWaiter = undefined;
          w(ev.type === 'line' && !ev.tooLong ? ev.data : 'too-long');
        }
        continue;
      }
      switch (ev.type) {
        case 'line': break; // unexpected raw line: ignore
        case 'literal': this.onLiteral(ev); break;
        case 'literal-chunk': break;
        case 'error': this.appendBytes = 0; this.onParseError(ev); break;
        case 'command': {
          this.busy = true;
          this.appendBytes = 0;
          this.sock.pause();
          this.inflate?.pause();
          void this.runCommand(ev.tag, ev.command, ev.args).then(() => this.outputBacklog()).finally(() => {
            this.busy = false;
            this.notify?.commandDone();
            if (!this.closed) setImmediate(() => this.pump());
          });
          return;
        }
      }
    }
  }

  private onLiteral(ev: Extract<ImapParserEvent, { type: 'literal' }>): void {
    const s = this.shared.settings;
    if (this.state !== 'nonauth' && (ev.command === 'APPEND' || ev.command === 'REPLACE' || ev.command === 'UID REPLACE')) {
      // message data: not part of imap_max_line_length (Dovecot streams it into the mailbox);
      // what one APPEND/MULTIAPPEND holds is bounded by mail_max_size together
      if (this.appendBytes + ev.size > s.maxLiteralSize) {
        this.parser.rejectLiteral(); // the command ends here: the client abandons it
        this.appendBytes = 0;
        this.sendBad(`${ev.tag} BAD [TOOBIG] Error in IMAP command ${ev.command}: Literal size too large\r\n`);
        return;
      }
      this.appendBytes += ev.size;
      this.parser.acceptLiteral({ uncounted: true });
    } else if (this.state !== 'nonauth' && ev.command === 'SETMETADATA' && s.metadataDict) {
      // METADATA values (RFC 5464 §4.3): not part of imap_max_line_length (Dovecot streams
      // them); one value ≤ METADATA_MAX_VALUE, one command's values ≤ METADATA_MAX_COMMAND
      const tooBig = ev.size > METADATA_MAX_VALUE;
      if (tooBig || this.appendBytes + ev.size > METADATA_MAX_COMMAND) {
        this.parser.rejectLiteral();
        this.appendBytes = 0;
        this.send(`${ev.tag} NO [METADATA ${tooBig ? `MAXSIZE ${METADATA_MAX_VALUE}` : 'TOOMANY'}] ${tooBig ? 'Metadata entry value too large' : 'Too much metadata in one command'}\r\n`);
        return;
      }
      this.appendBytes += ev.size;
      this.parser.acceptLiteral({ uncounted: true });
    } else {
      // Dovecot's imap-parser: the literal must fit in what is left of the command's limit
      const limit = this.state === 'nonauth' ? Math.min(PRELOGIN_MAX_LINE, s.maxLineLength) : s.maxLineLength;
      if (this.parser.commandBytes + ev.size > limit) {
        this.parser.rejectLiteral();
        this.fatal('Literal size too large');
        return;
      }
      this.parser.acceptLiteral();
    }
    if (ev.sync) this.send('+ OK\r\n');
  }

  private onParseError(ev: Extract<ImapParserEvent, { type: 'error' }>): void {
    if (ev.fatal) { this.fatal(ev.message); return; }
    const tooLong = ev.message === TOO_LONG_ARGUMENT;
    if (this.state === 'nonauth') {
      // imap-login reads into a small input buffer: a longer line ends the connection
      if (tooLong) { this.fatal('Input buffer full, aborting'); return; }
      this.sendBad(`${ev.tag ?? '*'} BAD ${PRELOGIN_BAD}\r\n`);
      return;
    }
    const code = ev.code && !tooLong ? `[${ev.code}] ` : '';
    const what = ev.tag === undefined ? 'Error in IMAP tag' : ev.command ? `Error in IMAP command ${ev.command}` : 'Error in IMAP command';
    this.sendBad(`${ev.tag ?? '*'} BAD ${code}${what}: ${ev.message} (0.000 + 0.000 secs).\r\n`);
  }

  /**
   * Send a BAD reply and count it. Before login the third invalid command is answered with BYE
   * instead; after login the 20th BAD in a row is followed by BYE (Dovecot 2.3).
   */
  private sendBad(line: string): void {
    if (this.state === 'nonauth') {
      if (++this.badCount >= PRELOGIN_MAX_BAD_COMMANDS) { this.tooManyBad(); return; }
      this.send(line);
      return;
    }
    this.send(line);
    if (++this.badCount >= MAX_BAD_COMMANDS) this.tooManyBad();
  }

  private tooManyBad(): void {
    this.shared.log.info(`${this.who()}: Disconnected: Too many invalid ${this.state === 'nonauth' ? 'commands' : 'IMAP commands.'}`);
    this.fatal(TOO_MANY_BAD);
  }

  private fatal(message: string): void {
    if (this.closed) return;
    this.send(`* BYE ${message}\r\n`);
    this.close({ abort: true });
  }

  /**
   * Next raw line from the client (IDLE DONE, AUTHENTICATE responses); undefined if the client
   * left; 'too-long' for a line over imap_max_line_length (8192 before login), whose rest is
   * skipped.
   */
  readLine(): Promise<Buffer | undefined | 'too-long'> {
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.lineWaiter = resolve;
      this.parser.expectRawLine();
      setImmediate(() => this.pump());
    });
  }

  /** Abort a pending readLine() (IDLE ended by the server). */
  cancelReadLine(): void {
    const w = this.lineWaiter;
    this.lineWaiter = undefined;
    w?.(undefined);
  }

  // ---- commands ----

  private async runCommand(tag: string, name: string, args: ImapArg[]): Promise<void> {
    const start = performance.now();
    const spec = COMMANDS.get(name);
    const c: CommandContext = { tag, name, uid: name.startsWith('UID '), args, start };
    if (this.notify) await this.notify.quiesce(); // a NOTIFY push being written ends first
    if (this.selectedDeleted) { this.fatal('Selected mailbox was deleted, have to disconnect.'); return; }
    // the selected mailbox renamed or deleted under us (by this or another session): Dovecot's end
    if (this.state === 'selected' && this.box && this.box.name !== 'INBOX' && this.user && !(await this.user.exists(this.box.name))) {
      this.fatal('IMAP session state is inconsistent, please relogin.');
      return;
    }
    if (!spec || (this.state === 'nonauth' && !spec.states.includes('nonauth'))) {
      if (this.state === 'nonauth') this.sendBad(`${tag} BAD ${PRELOGIN_BAD}\r\n`);
      else this.tagged(c, { status: 'BAD', text: `Error in IMAP command ${name}: Unknown command` });
      return;
    }
    if (!spec.states.includes(this.state)) {
      this.tagged(c, { status: 'BAD', text: this.state === 'selected' ? `Error in IMAP command ${name}: Unknown command` : 'No mailbox selected' });
      return;
    }
    if (has8bitAtom(args)) {
      // Dovecot: 8-bit text must be quoted or a literal (RFC 3501 §9 ATOM-CHAR is 7-bit)
      this.tagged(c, { status: 'BAD', text: `Error in IMAP command ${name}: 8bit data in atom` });
      return;
    }
    let reply: Reply | undefined;
    try {
      await autoCreateBeforeCommand(this, name, args); // cmd-login.ts
      reply = await spec.handler(this, c);
    } catch (e) {
      reply = this.errorReply(c, e);
    }
    if (this.closed || !reply) return;
    // RFC 3501 §7.4.1: no EXPUNGE during FETCH, STORE, SEARCH (without UID); skip the sync then.
    if (this.box && this.state === 'selected' && !reply.noSync && !((spec.flags & CMD_USES_SEQS) && !c.uid)) {
      try { await syncToClient(this, true); } catch (e) { this.shared.log.warn(`${this.who()}: sync failed: ${(e as Error).message}`); }
    }
    if (this.notify && !this.closed) await this.notify.beforeTagged(); // RFC 5465: other mailboxes' events
    if (!this.closed) this.tagged(c, reply);
    if (reply.after) await reply.after();
  }

  errorReply(c: CommandContext, e: unknown): Reply {
    if (e instanceof ImapParseError) {
      if (e.response === 'NO') return { status: 'NO', code: e.code, text: e.message };
      // Dovecot's wording for every bad sequence set
      const msg = e.message.startsWith('Invalid sequence set') ? 'Invalid messageset' : e.message;
      return { status: 'BAD', text: `Error in IMAP command ${c.name}: ${msg}` };
    }
    if (e instanceof ImapNoError) return { status: 'NO', text: e.message };
    if (e instanceof MailError) {
      if (e.code === 'TEMP') return this.internalReply(e);
      return { status: 'NO', code: MAIL_ERROR_CODES[e.code], text: e.message };
    }
    return this.internalReply(e);
  }

  private internalReply(e: unknown): Reply {
    const err = e as Error & { detail?: string };
    this.shared.log.error(`${this.who()}: ${err?.stack ?? String(e)}${err?.detail ? ` (${err.detail})` : ''}`);
    const d = new Date();
    const p = (n: number) => String(n).padStart(2, '0');
    const stamp = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    return { status: 'NO', code: 'SERVERBUG', text: `${MAIL_ERRSTR_CRITICAL_MSG} [${stamp}]` };
  }

  private internalError(tag: string | undefined, e: unknown): void {
    const r = this.internalReply(e);
    this.send(`${tag ?? '*'} NO [${r.code}] ${r.text}\r\n`);
  }

  /** The tagged reply, with Dovecot's timing text after login. */
  tagged(c: CommandContext, r: Reply): void {
    // Command names come from the client: only known ones become label values.
    const cmd = COMMANDS.has(c.name) ? c.name : 'unknown';
    IMAP_COMMANDS.labels(cmd, r.status).inc();
    IMAP_LATENCY.labels(cmd).observe((performance.now() - c.start) / 1000);
    const code = r.code ? `[${r.code}] ` : '';
    let text = r.text;
    if (this.state !== 'nonauth' && !r.noTiming) {
      const secs = ((performance.now() - c.start) / 1000).toFixed(3);
      text += ` (${secs} + 0.000 secs).`;
    }
    const line = `${c.tag} ${r.status} ${code}${text}\r\n`;
    if (r.status === 'BAD' && (this.state !== 'nonauth' || r.text === PRELOGIN_BAD)) { this.sendBad(line); return; }
    if (this.state !== 'nonauth') this.badCount = 0;
    this.send(line);
  }

  who(): string {
    return this.userRecord ? `imap(${this.userRecord.user})<${this.id}>` : `imap-login<${this.id}>: rip=${this.remoteIp}`;
  }

  // ---- login, TLS, compression ----

  /** After a successful login: counts user+IP connections (mail_max_userip_connections). */
  async loggedIn(rec: UserRecord, mailUser: MailUser, method: string): Promise<void> {
    this.userRecord = rec;
    this.user = mailUser;
    this.state = 'auth';
    this.badCount = 0;
    this.parser.setMaxLineLength(this.shared.settings.maxLineLength);
    this.userIpKey = `${rec.user}\0${this.remoteIp}`;
    this.shared.userIp.add(this.userIpKey);
    this.shared.log.info(`imap-login: Login: user=<${rec.user}>, method=${method}, rip=${this.remoteIp}, lip=${this.localIp}${this.secure ? ', TLS' : this.secured ? ', secured' : ''}, session=<${this.id}>`);
  }

  /**
   * UNAUTHENTICATE (RFC 8437, cmd-unauthenticate.ts): back to the not-authenticated state with
   * nothing of the user kept (selected mailbox, NOTIFY, ENABLEd extensions, SEARCHRES, the
   * user+IP count); TLS and COMPRESS stay as they are.
   */
  async loggedOut(): Promise<void> {
    this.notify?.stop();
    this.notify = undefined;
    const box = this.box;
    this.box = undefined;
    if (box) await box.close().catch(() => {});
    if (this.userIpKey) {
      this.shared.userIp.remove(this.userIpKey);
      this.userIpKey = undefined;
      this.shared.log.info(`${this.who()}: Logged out (UNAUTHENTICATE) in=${this.bytesIn} out=${this.bytesOut}`);
    }
    this.user = undefined;
    this.userRecord = undefined;
    this.state = 'nonauth';
    this.enabled.clear();
    this.searchRes = [];
    this.reported.clear();
    this.exists = 0;
    this.recent = 0;
    this.keywordsSent = '';
    this.boxRights = undefined;
    this.boxExamined = false;
    this.boxReadOnly = false;
    this.selectedDeleted = false;
    this.notifyCounts = true;
    this.notifyFlags = true;
    this.badCount = 0;
    this.parser.setMaxLineLength(Math.min(PRELOGIN_MAX_LINE, this.shared.settings.maxLineLength));
  }

  async startTls(): Promise<void> {
    const ctx = this.shared.tlsContext();
    const raw = this.sock;
    this.detach(raw);
    raw.pause();
    const { startServerTls } = await import('../lib-tls/tls-server.ts');
    let t: TLSSocket;
    try {
      t = await startServerTls(raw, ctx, 30_000);
    } catch (e) {
      this.shared.log.info(`${this.who()}: TLS handshaking failed: ${(e as Error).message}`);
      raw.destroy();
      await this.cleanup();
      return;
    }
    this.sock = t;
    this.secure = true;
    this.parser = this.newParser(); // RFC 3501 §6.2.1: discard anything sent before the handshake
    this.attach(t);
  }

  /** COMPRESS=DEFLATE (RFC 4978): raw deflate both ways from the next byte on. */
  startCompression(): void {
    this.compressed = true;
    const inflate = createInflateRaw();
    const deflate = createDeflateRaw({ level: 6 });
    inflate.on('data', (d: Buffer) => {
      if (this.closed) return;
      this.parser.push(d);
      // while a command runs nothing more is inflated (a small deflated input can be huge)
      if (this.busy && !this.lineWaiter) inflate.pause();
      this.pump();
    });
    inflate.on('error', () => this.close());
    // backpressure: the deflate stream is paused while the socket's write buffer is full, so
    // its own buffers fill and send() waits for them (RFC 4978 changes the bytes, not the flow)
    deflate.on('data', (d: Buffer) => {
      if (this.sock.destroyed) return;
      if (!this.sock.write(d) && !this.deflatePaused) {
        this.deflatePaused = true;
        deflate.pause();
        this.sock.once('drain', () => { this.deflatePaused = false; deflate.resume(); });
      }
    });
    deflate.on('error', () => this.close());
    this.inflate = inflate;
    this.deflate = deflate;
  }

  /**
   * End the connection (after LOGOUT's BYE and OK, a BYE for a limit): the last replies are
   * flushed, then FIN; the session slot is freed at once and the socket lingers at most 2 s for
   * those replies, never until the client closes (SessionSlot.end(), lib-master/master-session.ts).
   * `abort` (a BYE for abuse): nothing more is read, and the socket goes after 500 ms at most.
   */
  close(o: { abort?: boolean } = {}): void {
    if (this.closed) return;
    const sock = this.sock;
    if (this.deflate) this.deflate.flush(zc.Z_SYNC_FLUSH, () => { if (!sock.destroyed && !sock.writableEnded) sock.end(); });
    else if (!sock.destroyed && !sock.writableEnded) sock.end();
    if (this.slot) this.slot.end(); else closeAfterLinger(sock);
    if (o.abort) {
      // an abusive client's further input is not even read (the linger would read and drop it)
      sock.pause();
      setTimeout(() => sock.destroy(), 500).unref();
    }
    void this.cleanup();
  }

  private async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    this.closed = true;
    this.cancelReadLine();
    this.notify?.stop();
    this.notify = undefined;
    if (this.userIpKey) {
      this.shared.userIp.remove(this.userIpKey);
      this.userIpKey = undefined;
      this.shared.log.info(`${this.who()}: Disconnected: ${this.state === 'logout' ? 'Logged out' : 'Connection closed'} in=${this.bytesIn} out=${this.bytesOut}`);
    }
    const box = this.box;
    this.box = undefined;
    if (box) await box.close().catch(() => {});
    this.inflate?.destroy();
    this.deflate?.destroy();
    // the socket: closed by the peer already, or ended by close() (destroyed 2 s later at most)
  }

  get isClosed(): boolean { return this.closed; }
}

function has8bitAtom(args: ImapArg[]): boolean {
  const stack: ImapArg[] = [...args];
  while (stack.length > 0) {
    const a = stack.pop()!;
    if (a.type === 'list') stack.push(...a.items);
    else if (a.type === 'atom' && /[\x80-\xff]/.test(a.value)) return true;
  }
  return false;
}

function stripV4Mapped(a: string): string {
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}
