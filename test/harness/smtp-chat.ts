/**
 * smtp-chat - a raw-socket SMTP conversation for tests: send exact bytes, read replies until a
 * final reply line ("NNN " form). Used for hostile input that real clients refuse to send.
 */
import { connect, type Socket } from 'node:net';

export class SmtpChat {
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

  static open(port: number, host = '127.0.0.1'): Promise<SmtpChat> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host }, () => resolve(new SmtpChat(s)));
      s.once('error', reject);
    });
  }

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  send(data: string | Buffer): void { this.sock.write(data); }

  /** Read one complete (possibly multi-line) reply; rejects after timeoutMs. */
  async reply(timeoutMs = 5000): Promise<string> {
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

  /** Send a command line (CRLF added) and return the reply. */
  async cmd(line: string): Promise<string> {
    this.send(line + '\r\n');
    return this.reply();
  }

  /** Wait until the server closes the connection. */
  async waitClose(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('server did not close the connection');
      await new Promise<void>((r) => { const t = setTimeout(r, 50); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  close(): void { this.sock.destroy(); }
}
