/**
 * line-chat - the one raw line client of the test suites: exact bytes out, SMTP/LMTP/POP3/IMAP
 * lines in. Used for hostile input that real clients refuse to send (bare CR/LF, NUL, 1 MB
 * lines, pipelining before the greeting), from a chosen local address (127.0.0.2 is "another
 * client", outside a mynetworks of 127.0.0.1/32), with STARTTLS (RFC 3207) and an abrupt close
 * (destroy) to drop the network in mid-transfer.
 *
 *   const c = await LineChat.open(port, { localAddress: '127.0.0.2' });  // greeting unread
 *   const { c, greeting } = await LineChat.greet(port);                  // greeting read
 *   await c.cmd('EHLO x')  → '250-...\n250 ...'  (one whole reply, CRLF → LF, no trailing newline)
 *
 * Every wait is bounded by a timeout and fails with what was received so far.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface LineChatOptions {
  host?: string;
  localAddress?: string;
}

/** A complete SMTP-style reply: any "NNN-" lines, then one "NNN " (or bare "NNN") line. */
const SMTP_REPLY = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\n/;

export class LineChat {
  private socket: Socket;
  /** Received and not yet consumed (latin1, so bytes map 1:1 to characters). */
  buf = '';
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(sock: Socket) {
    this.socket = sock;
    this.attach(sock);
  }

  /** Connect; the greeting is left unread. */
  static open(port: number, o: LineChatOptions = {}): Promise<LineChat> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: o.host ?? '127.0.0.1', ...(o.localAddress ? { localAddress: o.localAddress } : {}) },
        () => resolve(new LineChat(s)));
      s.once('error', reject);
    });
  }

  /** Connect and read the greeting (SMTP/LMTP form). */
  static async greet(port: number, o: LineChatOptions = {}): Promise<{ c: LineChat; greeting: string }> {
    const c = await LineChat.open(port, o);
    return { c, greeting: await c.reply() };
  }

  /** The current socket (the TLS one after starttls()). */
  get sock(): Socket { return this.socket; }

  private attach(sock: Socket): void {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => { this.buf += d; this.wake(); });
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => { this.closed = true; this.wake(); });
  }

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  private async waitMore(deadline: number, what: string): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timeout waiting for ${what}; pending: ${JSON.stringify(this.buf)}`);
    await new Promise<void>((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
  }

  send(data: string | Buffer): void { if (!this.closed) this.socket.write(data); }

  /** One complete (possibly multi-line) SMTP reply, CRLF → LF, trailing newline removed. */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = SMTP_REPLY.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        return m[0].replace(/\r\n/g, '\n').trimEnd();
      }
      if (this.closed) throw new Error(`connection closed; pending: ${JSON.stringify(this.buf)}`);
      await this.waitMore(deadline, 'reply');
    }
  }

  /** Send a command line (CRLF added) and return the reply. */
  async cmd(line: string, timeoutMs?: number): Promise<string> {
    this.send(line + '\r\n');
    return this.reply(timeoutMs);
  }

  /** STARTTLS (RFC 3207) and the TLS handshake (any certificate: tests run on loopback). */
  async starttls(): Promise<string> {
    const r = await this.cmd('STARTTLS');
    if (!r.startsWith('220')) return r;
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = await new Promise<Socket>((resolve, reject) => {
      const t = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(t));
      t.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
    return r;
  }

  /** Whatever arrived and was not read as a reply yet. */
  pending(): string { return this.buf; }

  /** Wait until the peer closes; returns what is left unread. */
  async untilClosed(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) await this.waitMore(deadline, 'the server to close the connection');
    return this.buf;
  }

  /** Wait until the peer closes. */
  async waitClose(timeoutMs = 5000): Promise<void> { await this.untilClosed(timeoutMs); }

  /** Drop the connection at once (no QUIT, no FIN wait). */
  close(): void { this.socket.destroy(); }
}
