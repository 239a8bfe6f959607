/**
 * smtpd-proxy - the before-queue content filter client (Postfix SMTPD_PROXY_README, smtpd(8)
 * smtpd_proxy_filter, src/smtpd/smtpd_proxy.c of Postfix 3.7): instead of a queue file, smtpd
 * relays each mail transaction to an SMTP filter that answers before the client gets its reply.
 *
 * SUMMARY
 *   const p = new SmtpdProxy(settings, client);     // at the first accepted RCPT
 *   await p.open('MAIL FROM:<a@b> SIZE=10')         // connect, greeting, EHLO, XFORWARD, MAIL
 *   await p.cmd('RCPT TO:<c@d>', '2'); await p.cmd('DATA', '3');
 *   await p.write(content);                         // LF form; sent CRLF and dot-stuffed
 *   const r = await p.end();                        // "." and the filter's reply (any code)
 *   p.close();                                      // QUIT, unless the connection failed
 *
 * DESCRIPTION
 *   Each result is { ok, reply }: `reply` is the text smtpd sends its client as it is (lines
 *   joined by CRLF; Postfix's smtpd_chat_reply() marks every line but the last as a
 *   continuation). As Postfix:
 *   - The filter (smtpd_proxy_filter: `host:port`, `inet:host:port`, `:port` or `port` for
 *     localhost, `unix:path` relative to queue_directory) is connected at the first accepted
 *     RCPT, its greeting and its reply to EHLO $smtpd_proxy_ehlo must be 2xx, then XFORWARD with
 *     the attributes it announces (NAME ADDR PORT HELO IDENT PROTO SOURCE, in that order, xtext,
 *     "[UNAVAILABLE]" for unknown values, one command per 498 bytes), then the client's MAIL
 *     FROM line as the client sent it. A failure before MAIL FROM, a lost connection and a
 *     timeout (smtpd_proxy_timeout, for the connect and for each read and write) all become
 *     "451 4.3.0 Error: queue file write error" (cleanup_strerror.c CLEANUP_STAT_PROXY: the
 *     client learns nothing of the filter); the log says what happened.
 *   - A reply of the expected class passes through; a 4xx/5xx passes through as the failure;
 *     an unexpected 2xx or 3xx (e.g. 250 to DATA) becomes the 451 above (Postfix ≥ 2.6).
 *   - Reply lines are read like smtp_get() with a limit of line_length_limit (the rest of a
 *     longer line is skipped), non-printable characters become "?", lines that are not
 *     "NNN-"/"NNN "/"NNN" are logged as garbage and kept in the reply while reading goes on;
 *     no more lines are kept once the reply holds line_length_limit bytes.
 *   - smtpd_proxy_options = speed_adjust: nothing is sent until the client's whole message is
 *     in. The commands and the content are kept (the content in an unlinked temporary file),
 *     and at the end of the content the session is replayed, stopping at the first reply that
 *     is not the expected one; that reply (or the filter's reply to ".") is the client's reply
 *     to the end of the content. A filter must then accept or refuse all recipients alike.
 *
 * SECURITY
 *   The filter is trusted as far as its replies go (they reach the client), but not for memory
 *   or time: replies are bounded and every wait is bounded by smtpd_proxy_timeout.
 *
 * PARAMETERS
 *   smtpd_proxy_filter, smtpd_proxy_options, smtpd_proxy_timeout, smtpd_proxy_ehlo,
 *   line_length_limit, queue_directory (relative unix: paths)
 */
import { connect, type Socket } from 'node:net';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { logger } from '../util/msg.ts';

const log = logger('smtpd');

/** cleanup_strerror.c CLEANUP_STAT_PROXY: all a client learns of a filter that failed. */
export const PROXY_FAILURE = '451 4.3.0 Error: queue file write error';

export interface SmtpdProxySettings {
  /** smtpd_proxy_filter as written (for the log). */
  filter: string;
  timeoutMs: number;
  ehlo: string;
  speedAdjust: boolean;
  /** line_length_limit: reply lines are cut here. */
  lineLimit: number;
  /** queue_directory: where a relative unix: path starts. */
  baseDir: string;
}

/** The XFORWARD values of the session (Postfix FORWARD_NAME() ...): undefined = unavailable. */
export interface ProxyClientAttrs {
  NAME?: string; ADDR?: string; PORT?: string; HELO?: string; IDENT?: string; PROTO?: string;
  /** 'LOCAL' or 'REMOTE' (the rewrite context). */
  SOURCE: string;
}

export interface ProxyResult { ok: boolean; reply: string }
type Expect = '2' | '3' | 'any';

/** The smtpd_proxy_options words Postfix knows. */
export function parseProxyOptions(words: string[]): { speedAdjust: boolean } {
  let speedAdjust = false;
  for (const w of words) {
    if (w.toLowerCase() === 'speed_adjust') speedAdjust = true;
    else log.warn(`unknown smtpd_proxy_options value "${w}" in "${words.join(', ')}"; ignored`);
  }
  return { speedAdjust };
}

type Endpoint = { path: string } | { host: string; port: number };

/** Postfix inet_connect()/unix_connect() forms of smtpd_proxy_filter; undefined when malformed. */
export function proxyEndpoint(spec: string, baseDir: string): Endpoint | undefined {
  const s = spec.trim();
  if (/^unix:/i.test(s)) {
    const p = s.slice(5);
    return p ? { path: isAbsolute(p) ? p : join(baseDir, p) } : undefined;
  }
  const hp = /^inet:/i.test(s) ? s.slice(5) : s;
  const m = /^\[([^\]]+)\]:(\w+)$/.exec(hp) ?? /^(?:(.*):)?(\w+)$/.exec(hp);
  if (!m || !/^\d+$/.test(m[2]!)) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] || 'localhost', port };
}

/** Postfix printable(): what is not printable (or not valid UTF-8) becomes "?". */
function printable(b: Buffer): string {
  // eslint-disable-next-line no-control-regex
  return b.toString('utf8').replace(/[\x00-\x1f\x7f\ufffd]/g, '?');
}

/** Postfix xtext_quote(): '+', controls, space and non-ASCII as +XX. */
function xtext(v: string): string {
  let out = '';
  for (const ch of Buffer.from(v, 'utf8')) out += ch !== 0x2b && ch > 32 && ch < 127 ? String.fromCharCode(ch) : '+' + ch.toString(16).toUpperCase().padStart(2, '0');
  return out;
}

class ProxyError extends Error {}

/** One connection to the filter: replies read with timeouts, writes bounded by the same timeout. */
class ProxyConn {
  private readonly sock: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private eof = false;
  private failed: string | undefined;
  private wake: (() => void) | undefined;
  private readonly name: string;
  private readonly timeoutMs: number;
  private closing = false;

  private constructor(sock: Socket, name: string, timeoutMs: number) {
    this.sock = sock;
    this.name = name;
    this.timeoutMs = timeoutMs;
    sock.on('data', (b: Buffer) => {
      if (this.closing) return;
      this.buf = this.buf.length ? Buffer.concat([this.buf, b]) : b;
      // Unread reply bytes beyond what any reply may hold: stop reading until they are used.
      if (this.buf.length > 65536) sock.pause();
      this.wake?.();
    });
    sock.on('end', () => { this.eof = true; this.wake?.(); });
    sock.on('close', () => { this.eof = true; this.wake?.(); });
    sock.on('error', (e) => { this.failed ??= e.message; this.wake?.(); });
  }

  static connect(ep: Endpoint, name: string, timeoutMs: number): Promise<ProxyConn> {
    return new Promise((resolve, reject) => {
      const sock = 'path' in ep ? connect({ path: ep.path }) : connect({ host: ep.host, port: ep.port });
      const t = setTimeout(() => { sock.destroy(); reject(new ProxyError('Connection timed out')); }, timeoutMs);
      sock.once('connect', () => { clearTimeout(t); sock.removeAllListeners('error'); sock.setNoDelay(true); resolve(new ProxyConn(sock, name, timeoutMs)); });
      sock.once('error', (e: NodeJS.ErrnoException) => { clearTimeout(t); reject(new ProxyError(errnoText(e))); });
    });
  }

  get broken(): boolean { return this.failed !== undefined; }

  /** One line (CRLF/LF removed, cut at `limit`, the rest skipped) and whether it was cut. */
  private async line(limit: number): Promise<{ text: Buffer; cut: boolean }> {
    let head: Buffer | undefined;
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl >= 0) {
        let end = nl;
        if (end > 0 && this.buf[end - 1] === 0x0d) end--;
        const text = head ?? this.buf.subarray(0, Math.min(end, limit));
        const cut = head !== undefined || end > limit;
        this.buf = this.buf.subarray(nl + 1);
        if (this.sock.isPaused()) this.sock.resume();
        return { text: Buffer.from(text), cut };
      }
      if (!head && this.buf.length > limit) head = Buffer.from(this.buf.subarray(0, limit));
      if (head) this.buf = Buffer.alloc(0);
      if (this.sock.isPaused()) this.sock.resume();
      if (this.failed) throw new ProxyError(`lost connection with proxy ${this.name}`);
      if (this.eof) throw new ProxyError(`lost connection with proxy ${this.name}`);
      await this.waitInput();
    }
  }

  private waitInput(): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        this.failed = 'timeout';
        reject(new ProxyError(`timeout talking to proxy ${this.name}`));
      }, this.timeoutMs);
      this.wake = () => { clearTimeout(t); this.wake = undefined; resolve(); };
    });
  }

  /** A whole reply, as Postfix smtpd_proxy_cmd() keeps it. */
  async reply(limit: number): Promise<string> {
    const kept: string[] = [];
    let len = 0;
    for (;;) {
      const { text, cut } = await this.line(limit);
      const l = printable(text);
      if (cut) log.warn(`${this.name}: response longer than ${limit}: ${l.slice(0, 30)}...`);
      if (len < limit) { len += (kept.length ? 2 : 0) + l.length; kept.push(l); }
      // Exactly three digits, then "-" (more follows), " " or nothing (the last line).
      const m = /^(\d*)(.?)/.exec(l)!;
      if (m[1]!.length === 3 && m[2] === '-') continue;
      if (m[1]!.length === 3 && (m[2] === ' ' || m[2] === '')) break;
      log.warn(`received garbage from proxy ${this.name}: ${l.slice(0, 100)}`);
    }
    return kept.join('\r\n');
  }

  /** Write, waiting (at most the timeout) while the socket's buffer is full. */
  async write(data: Buffer | string): Promise<void> {
    if (this.failed || this.eof) throw new ProxyError(`lost connection with proxy ${this.name}`);
    if (this.sock.write(data)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        clearTimeout(t);
        this.sock.off('drain', ok); this.sock.off('close', closed);
        if (e) reject(e); else resolve();
      };
      const ok = () => done();
      const closed = () => done(new ProxyError(`lost connection with proxy ${this.name}`));
      const t = setTimeout(() => { this.failed = 'timeout'; done(new ProxyError(`timeout talking to proxy ${this.name}`)); }, this.timeoutMs);
      this.sock.once('drain', ok);
      this.sock.once('close', closed);
    });
  }

  /**
   * Postfix smtpd_proxy_close(): QUIT (its reply is not awaited) unless the connection failed
   * (lost, timed out), then close.
   */
  close(): void {
    this.closing = true;
    if (this.failed || this.eof || this.sock.destroyed) { this.sock.destroy(); return; }
    this.sock.end('QUIT\r\n');
    this.sock.resume();
    setTimeout(() => this.sock.destroy(), 1000).unref();
  }
}

function errnoText(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ECONNREFUSED': return 'Connection refused';
    case 'ENOENT': return 'No such file or directory';
    case 'EACCES': return 'Permission denied';
    case 'ETIMEDOUT': return 'Connection timed out';
    case 'EHOSTUNREACH': return 'No route to host';
    case 'ENETUNREACH': return 'Network is unreachable';
    default: return e.message;
  }
}

/** LF-form content → the SMTP wire form (CRLF, dot-stuffed), across write boundaries. */
class WireEncoder {
  private atLineStart = true;
  encode(b: Buffer): Buffer {
    const out: Buffer[] = [];
    let start = 0;
    if (this.atLineStart && b.length && b[0] === 0x2e) out.push(DOT);
    for (;;) {
      const nl = b.indexOf(0x0a, start);
      if (nl < 0) { if (start < b.length) out.push(b.subarray(start)); break; }
      out.push(b.subarray(start, nl), CRLF);
      start = nl + 1;
      if (start < b.length && b[start] === 0x2e) out.push(DOT);
    }
    if (b.length) this.atLineStart = b[b.length - 1] === 0x0a;
    return Buffer.concat(out);
  }
  /** Before ".": an unterminated last line is ended (Postfix writes whole records). */
  finish(): Buffer { return this.atLineStart ? Buffer.alloc(0) : CRLF; }
}
const DOT = Buffer.from('.');
const CRLF = Buffer.from('\r\n');

/** One mail transaction's connection to the before-queue filter (or its speed_adjust log). */
export class SmtpdProxy {
  private readonly st: SmtpdProxySettings;
  private readonly attrs: () => ProxyClientAttrs;
  private conn: ProxyConn | undefined;
  /** A failure already seen: every later command gets this reply. */
  private dead: string | undefined;
  /** The last reply the filter gave (or the failure reply): Postfix's proxy->reply, for the log. */
  lastReply = '';
  private readonly enc = new WireEncoder();
  /** speed_adjust: the MAIL line, the commands with their expected reply, the content file. */
  private mailLine = '';
  private readonly saved: { line: string; expect: Expect }[] = [];
  private spool: FileHandle | undefined;
  private spoolSize = 0;

  constructor(settings: SmtpdProxySettings, attrs: () => ProxyClientAttrs) {
    this.st = settings;
    this.attrs = attrs;
  }

  /** Connect and send MAIL FROM (speed_adjust: only remember it). */
  async open(mailLine: string): Promise<ProxyResult> {
    if (this.st.speedAdjust) {
      this.mailLine = mailLine;
      try {
        const path = join(tmpdir(), `postern-proxy-${process.pid}-${randomBytes(6).toString('hex')}`);
        this.spool = await open(path, 'wx+', 0o600);
        await unlink(path);
      } catch (e) {
        log.warn(`proxy speed-adjust log I/O error: ${(e as Error).message}`);
        return this.fail();
      }
      return { ok: true, reply: '' };
    }
    return this.connect(mailLine);
  }

  private async connect(mailLine: string): Promise<ProxyResult> {
    const ep = proxyEndpoint(this.st.filter, this.st.baseDir);
    if (!ep) {
      log.warn(`connect to proxy filter ${this.st.filter}: bad address; specify host:port, inet:host:port or unix:pathname in smtpd_proxy_filter`);
      return this.fail();
    }
    try {
      this.conn = await ProxyConn.connect(ep, this.st.filter, this.st.timeoutMs);
    } catch (e) {
      log.warn(`connect to proxy filter ${this.st.filter}: ${(e as Error).message}`);
      return this.fail();
    }
    // Greeting, EHLO, XFORWARD: any refusal becomes our own 451 (the client is past MAIL).
    const greet = await this.exchange(undefined, '2');
    if (!greet.ok) return this.fail();
    const ehlo = await this.exchange(`EHLO ${this.st.ehlo}`, '2');
    if (!ehlo.ok) return this.fail();
    const features = new Set<string>();
    for (const l of ehlo.reply.split('\r\n')) {
      const w = l.slice(4).trim().split(/[ \t]+/);
      if (w[0]?.toUpperCase() === 'XFORWARD') for (const f of w.slice(1)) features.add(f.toUpperCase());
    }
    if (features.size && !(await this.xforward(features))) return this.fail();
    return this.exchange(mailLine, '2');
  }

  /** Postfix smtpd_proxy_connect(): the announced attributes, in its order, ≤ 498 bytes per command. */
  private async xforward(features: Set<string>): Promise<boolean> {
    const a = this.attrs();
    const LIMIT = 512 - 'XFORWARD'.length - 6;
    let buf = '';
    const flush = async (): Promise<boolean> => {
      if (!buf) return true;
      const r = await this.exchange(`XFORWARD${buf}`, '2');
      buf = '';
      return r.ok;
    };
    for (const k of ['NAME', 'ADDR', 'PORT', 'HELO', 'IDENT', 'PROTO', 'SOURCE'] as const) {
      if (!features.has(k)) continue;
      const item = ` ${k}=${xtext(a[k] ?? '[UNAVAILABLE]')}`;
      if (item.length > LIMIT) log.warn(`XFORWARD command payload ${k}=${(a[k] ?? '').slice(0, 10)}... exceeds SMTP protocol limit`);
      if (buf && buf.length + item.length > LIMIT && !(await flush())) return false;
      buf += item;
    }
    return flush();
  }

  /** A command of the client's transaction (RCPT, DATA) relayed, or saved with speed_adjust. */
  async cmd(line: string, expect: Expect): Promise<ProxyResult> {
    if (this.st.speedAdjust && !this.conn) {
      if (this.dead) return { ok: false, reply: this.dead };
      this.saved.push({ line, expect });
      return { ok: true, reply: '' };
    }
    return this.exchange(line, expect);
  }

  /** Message content in the queue's LF form. A failure is kept and reported by end(). */
  async write(b: Buffer): Promise<void> {
    if (this.dead) throw new ProxyError(this.dead);
    const wire = this.enc.encode(b);
    if (this.spool) {
      try {
        await this.spool.write(wire, 0, wire.length, this.spoolSize);
        this.spoolSize += wire.length;
      } catch (e) {
        log.warn(`proxy speed-adjust log I/O error: ${(e as Error).message}`);
        this.fail();
        throw e;
      }
      return;
    }
    try {
      await this.conn!.write(wire);
    } catch (e) {
      log.warn((e as Error).message);
      this.fail();
      throw e;
    }
  }

  /** The end of the content: "." and the filter's reply, whatever its code. */
  async end(): Promise<ProxyResult> {
    if (this.dead) return { ok: false, reply: this.dead };
    const tail = this.enc.finish();
    if (this.spool) return this.replay(tail);
    try {
      if (tail.length) await this.conn!.write(tail);
    } catch (e) {
      log.warn((e as Error).message);
      return this.fail();
    }
    return this.exchange('.', 'any');
  }

  /** speed_adjust: the saved session, now that the whole message is in. */
  private async replay(tail: Buffer): Promise<ProxyResult> {
    const spool = this.spool!;
    this.spool = undefined;
    try {
      const m = await this.connect(this.mailLine);
      if (!m.ok) return m;
      let data = false;
      for (const c of this.saved) {
        const r = await this.exchange(c.line, c.expect);
        if (!r.ok) return r;
        if (c.expect === '3') data = true;
      }
      if (!data) return this.fail();
      const chunk = Buffer.alloc(65536);
      for (let pos = 0; pos < this.spoolSize;) {
        const { bytesRead } = await spool.read(chunk, 0, chunk.length, pos);
        if (bytesRead <= 0) break;
        await this.conn!.write(Buffer.from(chunk.subarray(0, bytesRead)));
        pos += bytesRead;
      }
      if (tail.length) await this.conn!.write(tail);
      return await this.exchange('.', 'any');
    } catch (e) {
      log.warn((e as Error).message);
      return this.fail();
    } finally {
      await spool.close().catch(() => {});
    }
  }

  /** Send one command (none: read the greeting) and read its reply (smtpd_proxy_cmd()). */
  private async exchange(line: string | undefined, expect: Expect): Promise<ProxyResult> {
    if (this.dead) return { ok: false, reply: this.dead };
    const c = this.conn;
    if (!c) return this.fail();
    let reply: string;
    try {
      if (line !== undefined) await c.write(line + '\r\n');
      reply = await c.reply(this.st.lineLimit);
    } catch (e) {
      log.warn((e as Error).message);
      return this.fail();
    }
    this.lastReply = reply;
    if (expect === 'any' || reply[0] === expect) return { ok: true, reply };
    log.warn(`proxy ${this.st.filter} rejected "${line ?? 'connection request'}": "${reply}"`);
    // Postfix ≥ 2.6: an unexpected 2xx or 3xx reply is never passed on.
    if (reply[0] === '2' || reply[0] === '3') return this.fail();
    return { ok: false, reply };
  }

  /** The connection is unusable: the client gets the generic 451 from now on. */
  private fail(): ProxyResult {
    this.dead = PROXY_FAILURE;
    this.lastReply = PROXY_FAILURE;
    this.conn?.close();
    this.conn = undefined;
    return { ok: false, reply: PROXY_FAILURE };
  }

  /** The transaction is over (end of data, RSET, disconnect): QUIT and close, as Postfix. */
  close(): void {
    this.conn?.close();
    this.conn = undefined;
    const s = this.spool;
    this.spool = undefined;
    void s?.close().catch(() => {});
  }
}
