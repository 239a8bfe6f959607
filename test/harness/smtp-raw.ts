/**
 * smtp-raw - a raw SMTP client for the fault and security suites: exact bytes out, replies
 * in, optionally from a chosen local address (127.0.0.2 is outside a mynetworks of
 * 127.0.0.1/32), and an abrupt close (destroy) to drop the network in mid-transfer.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export class RawSmtp {
  private sock: Socket;
  private buf = '';
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => { this.buf += d; this.wake(); });
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => { this.closed = true; this.wake(); });
  }

  /** Connect and read the greeting. */
  static async open(port: number, o: { host?: string; localAddress?: string } = {}): Promise<{ c: RawSmtp; greeting: string }> {
    const c = await new Promise<RawSmtp>((resolve, reject) => {
      const s = connect({ port, host: o.host ?? '127.0.0.1', ...(o.localAddress ? { localAddress: o.localAddress } : {}) }, () => resolve(new RawSmtp(s)));
      s.once('error', reject);
    });
    return { c, greeting: await c.reply() };
  }

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  send(data: string | Buffer): void { if (!this.closed) this.sock.write(data); }

  /** One complete (possibly multi-line) reply, CRLF → LF, trailing newline removed. */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        return m[0].replace(/\r\n/g, '\n').trimEnd();
      }
      if (this.closed) throw new Error(`connection closed; pending: ${JSON.stringify(this.buf)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for reply; pending: ${JSON.stringify(this.buf)}`);
      await new Promise<void>((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  async cmd(line: string): Promise<string> {
    this.send(line + '\r\n');
    return this.reply();
  }

  /** STARTTLS (RFC 3207) and the TLS handshake (any certificate: tests run on loopback). */
  async starttls(): Promise<string> {
    const r = await this.cmd('STARTTLS');
    if (!r.startsWith('220')) return r;
    const plain = this.sock;
    plain.removeAllListeners('data');
    const secure = await new Promise<Socket>((resolve, reject) => {
      const t = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(t));
      t.once('error', reject);
    });
    this.sock = secure;
    secure.setEncoding('latin1');
    secure.on('data', (d: string) => { this.buf += d; this.wake(); });
    secure.on('close', () => { this.closed = true; this.wake(); });
    secure.on('error', () => { this.closed = true; this.wake(); });
    return r;
  }

  /** Whatever arrived and was not read as a reply yet. */
  pending(): string { return this.buf; }

  async waitClose(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('server did not close the connection');
      await new Promise<void>((r) => { const t = setTimeout(r, 50); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  /** Drop the connection at once (no QUIT, no FIN wait). */
  close(): void { this.sock.destroy(); }
}
