/**
 * smtp-conn - one client connection to an SMTP/LMTP server: connect with a deadline, read
 * replies (RFC 5321 §4.2: "NNN-text" continuation lines up to "NNN text"), write with a
 * deadline, upgrade to TLS in place (RFC 3207). Every wait has a stage-specific timeout and a
 * stage name, so failures come out in Postfix's words (smtp/smtp_proto.c xfer_states[]):
 *   "conversation with mx.example[192.0.2.1] timed out while sending RCPT TO"
 *   "lost connection with mx.example[192.0.2.1] while receiving the initial server greeting"
 *   "connect to mx.example[192.0.2.1]:25: Connection refused"
 * A hostile server cannot make the reader grow without bound: reply lines are cut at
 * 4096 bytes and a reply at 1000 lines.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureVersion, type TLSSocket } from 'node:tls';
import { SmtpLineState, smtpGet } from '../lib-smtp/smtp-get.ts';

export interface SmtpReply {
  code: number;
  /** RFC 3463 enhanced status code when the server gave one ("5.1.1"), else undefined. */
  enh?: string;
  /** Reply lines without the code and separator. */
  lines: string[];
  /** The lines as received, code and all (Postfix smtp_chat_resp() keeps these). */
  raw?: string[];
}

/**
 * The reply as Postfix prints it (logs, bounce reasons, Diagnostic-Code): one line as
 * "550 5.1.1 <a@b>: Recipient address rejected"; a multi-line reply as its lines as received,
 * codes included, joined by a space ("550-5.1.1 first 550 5.1.1 last"), as Postfix's
 * translit(resp->str, "\n", " ").
 */
export function replyText(r: SmtpReply): string {
  if (r.raw && r.raw.length > 1) return r.raw.join(' ');
  return `${r.code} ${r.enh ? `${r.enh} ` : ''}${r.lines.join(' ')}`.trimEnd();
}

/** The DSN status of a reply: its enhanced code, else "X.0.0" from the reply class. */
export function replyDsn(r: SmtpReply): string {
  return r.enh ?? `${Math.floor(r.code / 100)}.0.0`;
}

export type SessionErrorKind = 'connect' | 'timeout' | 'lost' | 'protocol' | 'tls';

/** A failure of the session (not of one recipient): the delivery moves on or defers. */
export class SmtpSessionError extends Error {
  override name = 'SmtpSessionError';
  readonly kind: SessionErrorKind;
  constructor(kind: SessionErrorKind, text: string) { super(text); this.kind = kind; }
}

const MAX_LINE = 4096;
const MAX_LINES = 1000;

export class SmtpConn {
  sock: Socket | TLSSocket;
  /** "host[addr]" (Postfix namaddr), or "host[path]" for a UNIX-domain socket. */
  readonly namaddr: string;
  /** "host[addr]:port" (Postfix namaddrport), the relay= of log lines. */
  readonly namaddrport: string;
  readonly host: string;
  tls = false;
  private buf: Buffer = Buffer.alloc(0);
  private longLine = new SmtpLineState();
  private lines: string[] = [];
  private closed = false;
  private closeErr = '';
  private wake: (() => void) | undefined;

  /** The local address of the connection (TLS-RPT "sending-mta-ip"). */
  get localAddress(): string | undefined { return (this.sock as Socket).localAddress?.replace(/^::ffff:(?=\d)/, ''); }

  private constructor(sock: Socket, host: string, namaddr: string, namaddrport: string) {
    this.sock = sock; this.host = host; this.namaddr = namaddr; this.namaddrport = namaddrport;
    this.attach(sock);
  }

  private attach(sock: Socket | TLSSocket): void {
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('end', () => { this.closed = true; this.notify(); });
    sock.on('close', () => { this.closed = true; this.notify(); });
    sock.on('error', (e) => { this.closed = true; this.closeErr = (e as Error).message; this.notify(); });
  }

  /**
   * Connect to one address, from `localAddress` when given (smtp_bind_address). Throws
   * SmtpSessionError('connect', "connect to host[addr]:port: reason").
   */
  static async open(a: { host: string; addr: string; port: number; unix?: boolean }, timeoutMs: number, localAddress?: string): Promise<SmtpConn> {
    const namaddr = `${a.host}[${a.addr}]`;
    const namaddrport = a.unix ? namaddr : `${namaddr}:${a.port}`;
    const sock = a.unix ? netConnect({ path: a.addr })
      : netConnect({ host: a.addr, port: a.port, ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      const timer = timeoutMs > 0 ? setTimeout(() => { sock.destroy(); reject(new SmtpSessionError('connect', `connect to ${namaddrport}: Connection timed out`)); }, timeoutMs) : undefined;
      sock.once('connect', () => { clearTimeout(timer); resolve(); });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new SmtpSessionError('connect', `connect to ${namaddrport}: ${errnoText(e)}`));
      });
    });
    sock.setNoDelay(true);
    return new SmtpConn(sock, a.host, namaddr, namaddrport);
  }

  private notify(): void { const w = this.wake; this.wake = undefined; w?.(); }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    // A line over MAX_LINE keeps its first MAX_LINE bytes, the rest is dropped (smtp_get()).
    for (;;) {
      const line = smtpGet(this.buf, MAX_LINE, this.longLine, false);
      this.buf = this.longLine.rest;
      if (line === undefined) break;
      this.lines.push(line);
    }
    this.notify();
  }

  get isOpen(): boolean { return !this.closed && !this.sock.destroyed; }

  /** Bytes or lines that arrived unasked (a server talking while idle). */
  get hasPendingInput(): boolean { return this.lines.length > 0 || this.buf.length > 0 || this.longLine.skipping; }

  private async nextLine(timeoutMs: number, stage: string): Promise<string> {
    // On the monotonic clock: a wall clock stepped back would stretch the timeout by the step.
    const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : Infinity;
    for (;;) {
      const l = this.lines.shift();
      if (l !== undefined) return l;
      if (this.closed) throw new SmtpSessionError('lost', `lost connection with ${this.namaddr} while ${stage}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new SmtpSessionError('timeout', `conversation with ${this.namaddr} timed out while ${stage}`);
      await new Promise<void>((resolve) => {
        const t = Number.isFinite(left) ? setTimeout(resolve, left) : undefined;
        this.wake = () => { clearTimeout(t); resolve(); };
      });
    }
  }

  /** Read one complete reply. */
  async readReply(timeoutMs: number, stage: string): Promise<SmtpReply> {
    const lines: string[] = [];
    const raw: string[] = [];
    let code = 0;
    for (;;) {
      const l = await this.nextLine(timeoutMs, stage);
      const m = /^(\d{3})([ -]|$)(.*)$/.exec(l);
      if (!m || (code && Number(m[1]) !== code)) {
        throw new SmtpSessionError('protocol', `malformed reply from ${this.namaddr} while ${stage}: ${JSON.stringify(l.slice(0, 100))}`);
      }
      code = Number(m[1]);
      if (lines.length < MAX_LINES) { lines.push(m[3]!); raw.push(l); }
      if (m[2] !== '-') break;
    }
    // RFC 2034 §4: the enhanced code leads the text of each line; take the first line's.
    const e = /^([245]\.\d{1,3}\.\d{1,3})(\s|$)/.exec(lines[0] ?? '');
    const enh = e && e[1]![0] === String(code)[0] ? e[1] : undefined;
    const clean = enh ? lines.map((l) => l.replace(/^[245]\.\d{1,3}\.\d{1,3}\s?/, '')) : lines;
    return { code, enh, lines: clean, raw };
  }

  /** Write with a deadline (the socket must drain within it). */
  async write(data: string | Buffer, timeoutMs: number, stage: string): Promise<void> {
    if (!this.isOpen) throw new SmtpSessionError('lost', `lost connection with ${this.namaddr} while ${stage}`);
    const ok = this.sock.write(data);
    if (ok) return;
    await new Promise<void>((resolve, reject) => {
      const t = timeoutMs > 0 ? setTimeout(() => reject(new SmtpSessionError('timeout', `conversation with ${this.namaddr} timed out while ${stage}`)), timeoutMs) : undefined;
      const done = () => { clearTimeout(t); this.sock.off('drain', done); this.sock.off('close', lost); resolve(); };
      const lost = () => { clearTimeout(t); this.sock.off('drain', done); reject(new SmtpSessionError('lost', `lost connection with ${this.namaddr} while ${stage}`)); };
      this.sock.once('drain', done);
      this.sock.once('close', lost);
    });
  }

  /** RFC 3207 §4.2: after "220 Ready to start TLS", handshake on the same socket. */
  async startTls(opts: { servername?: string; timeoutMs: number; ca?: string[]; minVersion?: SecureVersion; ciphers?: string }): Promise<TLSSocket> {
    const raw = this.sock as Socket;
    raw.removeAllListeners('data'); raw.removeAllListeners('end'); raw.removeAllListeners('close'); raw.removeAllListeners('error');
    this.buf = Buffer.alloc(0); this.longLine = new SmtpLineState(); this.lines = [];
    // Verification is judged afterwards (smtp-tls-verify.ts), so the handshake never fails on it.
    // `ca` is exactly the configured CAs (Postfix: no system roots unless tls_append_default_CA).
    const t = tlsConnect({ socket: raw, servername: opts.servername, rejectUnauthorized: false, ca: opts.ca ?? [], minVersion: opts.minVersion, ciphers: opts.ciphers });
    await new Promise<void>((resolve, reject) => {
      const timer = opts.timeoutMs > 0 ? setTimeout(() => { t.destroy(); reject(new SmtpSessionError('tls', `conversation with ${this.namaddr} timed out while performing the TLS handshake`)); }, opts.timeoutMs) : undefined;
      t.once('secureConnect', () => { clearTimeout(timer); resolve(); });
      t.once('error', (e) => { clearTimeout(timer); reject(new SmtpSessionError('tls', `Cannot start TLS: handshake failure (${(e as Error).message})`)); });
    });
    this.sock = t;
    this.tls = true;
    this.closed = false;
    this.attach(t);
    return t;
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }
}

function errnoText(e: NodeJS.ErrnoException): string {
  // strerror(3) texts, as Postfix logs them.
  switch (e.code) {
    case 'ECONNREFUSED': return 'Connection refused';
    case 'ETIMEDOUT': return 'Connection timed out';
    case 'EHOSTUNREACH': return 'No route to host';
    case 'ENETUNREACH': return 'Network is unreachable';
    case 'ENOENT': return 'No such file or directory';
    case 'EACCES': return 'Permission denied';
    case 'ECONNRESET': return 'Connection reset by peer';
    case 'EADDRNOTAVAIL': return 'Cannot assign requested address';
    default: return e.message;
  }
}
