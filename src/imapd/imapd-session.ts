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
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { createDeflateRaw, createInflateRaw, constants as zc, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { ImapParser, ImapParseError, type ImapArg, type ImapParserEvent } from '../lib-imap/imap-parser.ts';
import { MailError, MAIL_ERRSTR_CRITICAL_MSG } from '../lib-storage/mail-error.ts';
import type { Mailbox, MailUser, MessageInfo } from '../lib-storage/mail-storage.ts';
import type { UserRecord } from '../lib-auth/user-directory.ts';
import type { ImapdShared } from './imapd-shared.ts';
import { COMMANDS } from './imapd-commands.ts';
import { CMD_USES_SEQS, type CommandContext, type Reply } from './imapd-command.ts';
import { syncToClient } from './imapd-sync.ts';
import { ImapNoError } from './imapd-names.ts';
import { capabilityList } from './imapd-capability.ts';

export type SessionState = 'nonauth' | 'auth' | 'selected' | 'logout';

const MAIL_ERROR_CODES: Record<string, string | undefined> = {
  TEMP: 'UNAVAILABLE', NOTFOUND: 'NONEXISTENT', EXISTS: 'ALREADYEXISTS', PERM: 'NOPERM', NOQUOTA: 'OVERQUOTA',
  EXPUNGED: 'EXPUNGEISSUED', INUSE: 'INUSE', PARAMS: 'CANNOT', LIMIT: 'LIMIT', TOOBIG: 'TOOBIG',
};

/** Largest literal accepted before login (a LOGIN password, an AUTHENTICATE response). */
const PRELOGIN_MAX_LITERAL = 8192;

let sessionCounter = 0;

export class ImapSession {
  state: SessionState = 'nonauth';
  readonly shared: ImapdShared;
  sock: Socket;
  secure: boolean;
  readonly remoteIp: string;
  readonly localIp: string;
  readonly id: string;
  parser: ImapParser;
  userRecord: UserRecord | undefined;
  user: MailUser | undefined;
  box: Mailbox | undefined;
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
    return this.reported.get(m.uid) ?? m;
  }
  /** The keyword list last announced in `* FLAGS` (SELECT or a later update). */
  keywordsSent = '';
  compressed = false;
  private busy = false;
  private closed = false;
  private cleaned = false;
  private lineWaiter: ((line: Buffer | undefined) => void) | undefined;
  private deflate: DeflateRaw | undefined;
  private inflate: InflateRaw | undefined;
  private flushScheduled = false;
  private userIpKey: string | undefined;
  private bytesIn = 0;
  private bytesOut = 0;

  constructor(shared: ImapdShared, sock: Socket, o: { secure: boolean }) {
    this.shared = shared;
    this.sock = sock;
    this.secure = o.secure;
    this.remoteIp = stripV4Mapped(sock.remoteAddress ?? '');
    this.localIp = stripV4Mapped(sock.localAddress ?? '');
    this.id = `${process.pid.toString(36)}${(++sessionCounter).toString(36)}`;
    this.parser = this.newParser();
  }

  private newParser(): ImapParser {
    const s = this.shared.settings;
    return new ImapParser({
      maxLineLength: s.maxLineLength, maxLiteralSize: s.maxLiteralSize,
      // LITERAL+ (RFC 7888): non-synchronising literals up to the literal limit.
      maxNonSyncLiteral: s.maxLiteralSize,
    });
  }

  /**
   * Dovecot's `client->secured`: TLS, or the client's IP equals the local IP (a connection from
   * this host, e.g. 127.0.0.1 → 127.0.0.1), or login_trusted_networks.
   */
  get secured(): boolean {
    return this.secure || (this.remoteIp !== '' && this.remoteIp === this.localIp) || this.shared.trusted(this.remoteIp);
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
      this.deflate.write(buf);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => { this.flushScheduled = false; this.deflate?.flush(zc.Z_SYNC_FLUSH); });
      }
      return undefined;
    }
    if (this.sock.write(buf)) return undefined;
    return new Promise((resolve) => {
      const done = (): void => { this.sock.off('drain', done); this.sock.off('close', done); resolve(); };
      this.sock.once('drain', done);
      this.sock.once('close', done);
    });
  }

  // ---- input loop ----

  private pump(): void {
    while (!this.closed && (!this.busy || this.lineWaiter)) {
      let ev: ImapParserEvent | undefined;
      try { ev = this.parser.next(); } catch (e) { this.internalError(undefined, e); return; }
      if (!ev) { if (this.sock.isPaused()) this.sock.resume(); return; }
      if (this.busy) {
        // only a raw line can arrive here (IDLE's DONE, an AUTHENTICATE response)
        if (ev.type === 'line') { const w = this.lineWaiter!; this.lineWaiter = undefined; w(ev.data); }
        else if (ev.type === 'error' && ev.fatal) { this.fatal(ev.message); return; }
        continue;
      }
      switch (ev.type) {
        case 'line': break; // unexpected raw line: ignore
        case 'literal': this.onLiteral(ev); break;
        case 'literal-chunk': break;
        case 'error': this.onParseError(ev); break;
        case 'command': {
          this.busy = true;
          this.sock.pause();
          void this.runCommand(ev.tag, ev.command, ev.args).finally(() => {
            this.busy = false;
            if (!this.closed) setImmediate(() => this.pump());
          });
          return;
        }
      }
    }
  }

  private onLiteral(ev: Extract<ImapParserEvent, { type: 'literal' }>): void {
    if (this.state === 'nonauth' && ev.size > PRELOGIN_MAX_LITERAL) {
      this.parser.rejectLiteral();
      if (ev.sync) this.send(`${ev.tag} BAD Error in IMAP command received by server.\r\n`);
      else this.fatal('Too large literal before login');
      return;
    }
    this.parser.acceptLiteral();
    if (ev.sync) this.send('+ OK\r\n');
  }

  private onParseError(ev: Extract<ImapParserEvent, { type: 'error' }>): void {
    if (ev.fatal) { this.fatal(ev.message); return; }
    const code = ev.code ? `[${ev.code}] ` : '';
    if (this.state === 'nonauth') this.send(`${ev.tag ?? '*'} BAD ${code}Error in IMAP command received by server.\r\n`);
    else this.send(`${ev.tag ?? '*'} BAD ${code}Error in IMAP command: ${ev.message}\r\n`);
  }

  private fatal(message: string): void {
    this.send(`* BYE ${message}\r\n`);
    this.close();
  }

  /** Next raw line from the client (IDLE DONE, AUTHENTICATE responses); undefined if the client left. */
  readLine(): Promise<Buffer | undefined> {
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
    if (!spec || (this.state === 'nonauth' && !spec.states.includes('nonauth'))) {
      if (this.state === 'nonauth') this.send(`${tag} BAD Error in IMAP command received by server.\r\n`);
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
      reply = await spec.handler(this, c);
    } catch (e) {
      reply = this.errorReply(c, e);
    }
    if (this.closed || !reply) return;
    // RFC 3501 §7.4.1: no EXPUNGE during FETCH, STORE, SEARCH (without UID); skip the sync then.
    if (this.box && this.state === 'selected' && !reply.noSync && !((spec.flags & CMD_USES_SEQS) && !c.uid)) {
      try { await syncToClient(this, true); } catch (e) { this.shared.log.warn(`${this.who()}: sync failed: ${(e as Error).message}`); }
    }
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
    const code = r.code ? `[${r.code}] ` : '';
    let text = r.text;
    if (this.state !== 'nonauth' && !r.noTiming) {
      const secs = ((performance.now() - c.start) / 1000).toFixed(3);
      text += ` (${secs} + 0.000 secs).`;
    }
    this.send(`${c.tag} ${r.status} ${code}${text}\r\n`);
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
    this.userIpKey = `${rec.user}\0${this.remoteIp}`;
    this.shared.userIp.set(this.userIpKey, (this.shared.userIp.get(this.userIpKey) ?? 0) + 1);
    this.shared.log.info(`imap-login: Login: user=<${rec.user}>, method=${method}, rip=${this.remoteIp}, lip=${this.localIp}${this.secure ? ', TLS' : this.secured ? ', secured' : ''}, session=<${this.id}>`);
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
    inflate.on('data', (d: Buffer) => { this.parser.push(d); this.pump(); });
    inflate.on('error', () => this.close());
    deflate.on('data', (d: Buffer) => { if (!this.sock.destroyed) this.sock.write(d); });
    deflate.on('error', () => this.close());
    this.inflate = inflate;
    this.deflate = deflate;
  }

  close(): void {
    if (this.closed) return;
    if (this.deflate) { this.deflate.flush(zc.Z_SYNC_FLUSH, () => this.sock.end()); }
    else this.sock.end();
    setTimeout(() => this.sock.destroy(), 2000).unref();
    void this.cleanup();
  }

  private async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    this.closed = true;
    this.cancelReadLine();
    if (this.userIpKey) {
      const n = (this.shared.userIp.get(this.userIpKey) ?? 1) - 1;
      if (n <= 0) this.shared.userIp.delete(this.userIpKey); else this.shared.userIp.set(this.userIpKey, n);
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
