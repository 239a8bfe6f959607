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
 * What a reply is depends on the protocol (LineChatOptions.protocol):
 *   smtp (also LMTP, the default)  reply()/cmd(): "NNN-" lines then "NNN ", as above
 *   pop3 (RFC 1939)                reply()/cmd(): the status line as sent, without its CRLF;
 *                                  multi(): a multi-line reply raw, up to and including ".\r\n"
 *   imap (RFC 9051)                tagged('a1', 'LOGIN u p'): the raw response up to and including
 *                                  the tagged status line; waitFor(/re/) for untagged data
 * line() reads one CRLF line, waitFor() anything a regular expression recognises.
 *
 * scriptedChat(port, from, commands, /done/) is the whole-session form: after the greeting each
 * command is sent once a line matching `done` arrives; it returns the transcript when the server
 * closes (20 s at most).
 *
 * Every wait is bounded by a timeout and fails with what was received so far.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';

export type LineProtocol = 'smtp' | 'pop3' | 'imap';

export interface LineChatOptions {
  host?: string;
  localAddress?: string;
  /** What reply() and cmd() read (see the header); default smtp. */
  protocol?: LineProtocol;
}

/** A complete SMTP-style reply: any "NNN-" lines, then one "NNN " (or bare "NNN") line. */
const SMTP_REPLY = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\n/;

export class LineChat {
  private socket: Socket;
  /** Received and not yet consumed (latin1, so bytes map 1:1 to characters). */
  buf = '';
  closed = false;
  private waiters: (() => void)[] = [];
  readonly protocol: LineProtocol;

  private constructor(sock: Socket, protocol: LineProtocol) {
    this.socket = sock;
    this.protocol = protocol;
    this.attach(sock);
  }

  /** Connect; the greeting is left unread. */
  static open(port: number, o: LineChatOptions = {}): Promise<LineChat> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: o.host ?? '127.0.0.1', ...(o.localAddress ? { localAddress: o.localAddress } : {}) },
        () => resolve(new LineChat(s, o.protocol ?? 'smtp')));
      s.once('error', reject);
    });
  }

  /** Chat over a socket already connected (e.g. the TLS socket after POP3 STLS). */
  static over(sock: Socket, protocol: LineProtocol = 'smtp'): LineChat {
    return new LineChat(sock, protocol);
  }

  /** Connect and read the greeting (SMTP/LMTP form). */
  static async greet(port: number, o: LineChatOptions = {}): Promise<{ c: LineChat; greeting: string }> {
    const c = await LineChat.open(port, o);
    return { c, greeting: await c.reply() };
  }

  /** The current socket (the TLS one after starttls()). */
  get sock(): Socket { return this.socket; }

  private attach(sock: Socket): void {
    // Decoded here, not by setEncoding(): whoever takes the socket over later (COMPRESS) gets Buffers.
    sock.on('data', (d: Buffer) => { this.buf += d.toString('latin1'); this.wake(); });
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

  /**
   * One complete reply: SMTP/LMTP, possibly multi-line, CRLF → LF, trailing newline removed; POP3,
   * the status line without its CRLF.
   */
  async reply(timeoutMs = 10_000): Promise<string> {
    if (this.protocol !== 'smtp') return this.line(timeoutMs);
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

  /** One line, without its CRLF (nothing converted). */
  line(timeoutMs = 10_000): Promise<string> {
    return this.waitFor(/\r\n/, timeoutMs).then((l) => l.slice(0, -2));
  }

  /** A POP3 multi-line reply: "+OK" line and data up to and including ".\r\n", raw; an -ERR line alone. */
  multi(timeoutMs = 10_000): Promise<string> {
    return this.waitFor(/^-ERR[^\r]*\r\n|\r\n\.\r\n/, timeoutMs);
  }

  /**
   * Wait until what arrived matches `re`; returns (and consumes) everything up to the end of the
   * match.
   */
  async waitFor(re: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.buf);
      if (m) {
        const end = m.index + m[0].length;
        const out = this.buf.slice(0, end);
        this.buf = this.buf.slice(end);
        return out;
      }
      if (this.closed) throw new Error(`connection closed waiting for ${re}; pending: ${JSON.stringify(this.buf.slice(-500))}`);
      await this.waitMore(deadline, String(re));
    }
  }

  /** IMAP: send `tag line` (CRLF added) and return the response up to and including the tagged status. */
  tagged(tag: string, line: string | Buffer, timeoutMs?: number): Promise<string> {
    this.send(typeof line === 'string' ? `${tag} ${line}\r\n` : Buffer.concat([Buffer.from(`${tag} `), line, Buffer.from('\r\n')]));
    return this.waitFor(new RegExp(`(^|\\n)${tag.replace(/[.*+?^$()[\]\\|{}]/g, '\\$&')} (OK|NO|BAD)[^\\n]*\\r\\n`), timeoutMs);
  }

  /**
   * STARTTLS (RFC 3207) and the TLS handshake (any certificate: tests run on loopback);
   * `client`: a client certificate and key (PEM files) to present.
   */
  async starttls(client?: { cert: string; key: string }): Promise<string> {
    const r = await this.cmd('STARTTLS');
    if (!r.startsWith('220')) return r;
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = await new Promise<Socket>((resolve, reject) => {
      const t = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'localhost', ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}) }, () => resolve(t));
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

/**
 * A client from loopback address `from`: after the greeting, each command waits for a line
 * matching `done`; the transcript is returned once the server closes (the socket is closed
 * after 20 s at most).
 */
export function scriptedChat(port: number, from: string, commands: string[], done: RegExp): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, localAddress: from });
    let buf = '', pending = '', greeted = false;
    const timer = setTimeout(() => s.destroy(), 20_000);
    const next = () => { const c = commands.shift(); if (c !== undefined) s.write(`${c}\r\n`); };
    s.on('data', (d) => {
      buf += d;
      pending += d;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (!greeted) { greeted = true; next(); } else if (done.test(line)) next();
      }
    });
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve(buf); });
  });
}
