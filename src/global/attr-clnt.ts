/**
 * attr-clnt - a client of an attribute-list server (Postfix global/attr_clnt.c over
 * util/auto_clnt.c, with util/attr_print_plain.c / attr_scan_plain.c framing): the transport
 * under the policy client (policy-client.ts) and any other `name=value` service.
 *
 * SUMMARY
 *   const c = new AttrClient('inet:127.0.0.1:10023', { timeoutMs, maxIdleMs, maxTtlMs,
 *     requestLimit, tryLimit, retryDelayMs, baseDir: queue_directory });
 *   const reply = await c.request([['request', 'smtpd_access_policy'], ...]);  // Map name → value
 *   await c.close();
 *
 * PROTOCOL
 *   A request is one `name=value` line per attribute, then an empty line; so is the reply
 *   (SMTPD_POLICY_README "Protocol description"). Lines end in LF (a CR before it is dropped).
 *   A reply line without `=` is a protocol error; a repeated name keeps its first value.
 *
 * CONNECTIONS (auto_clnt.c)
 *   `inet:host:port` or `unix:path` (a relative path is relative to `baseDir`, the queue
 *   directory, as Postfix's `unix:private/policy`). A connection is opened on demand, kept for
 *   the next request, and closed when it has been idle for maxIdle, is older than maxTtl, or has
 *   served requestLimit requests (0: no limit). Postfix has one connection per smtpd process;
 *   here one process serves many sessions at once, so idle connections form a pool of at most
 *   MAX_CONNECTIONS (more requests wait for one).
 *
 * FAILURES
 *   connect, write or read slower than timeoutMs, a closed connection, a protocol error or a
 *   reply over MAX_REPLY bytes (the server is hostile or broken: it is not read further) end that
 *   connection; the request is tried again on a new connection, up to tryLimit times with
 *   retryDelayMs between tries (attr_clnt_request()), then request() throws AttrClientError whose
 *   message names the server ("problem talking to server inet:127.0.0.1:10023: timeout"). The
 *   caller decides what a failure means (smtpd: smtpd_policy_service_default_action).
 *
 * SECURITY
 *   The server's reply is untrusted: its size is bounded, NUL bytes are refused, and one server
 *   that hangs holds at most its own requests for timeoutMs × tryLimit.
 */
import { connect, type Socket } from 'node:net';
import { isAbsolute, join } from 'node:path';

/** Largest reply accepted (a policy reply is one short line; a server sending more is broken). */
export const MAX_REPLY = 64 * 1024;
/** Connections to one server open at once; further requests wait for one to be free. */
export const MAX_CONNECTIONS = 128;

export interface AttrClientOptions {
  /** Per connect / write / reply (smtpd_policy_service_timeout). */
  timeoutMs: number;
  /** Close a connection idle this long (smtpd_policy_service_max_idle). */
  maxIdleMs: number;
  /** Close a connection this old after its request (smtpd_policy_service_max_ttl). */
  maxTtlMs: number;
  /** Requests per connection, 0 = no limit (smtpd_policy_service_request_limit). */
  requestLimit: number;
  /** Attempts per request (smtpd_policy_service_try_limit). */
  tryLimit: number;
  /** Pause between attempts (smtpd_policy_service_retry_delay). */
  retryDelayMs: number;
  /** Directory relative `unix:` paths start from (queue_directory). */
  baseDir?: string;
}

export class AttrClientError extends Error {
  override name = 'AttrClientError';
}

/** One connection: a socket, its age, its request count, and an idle timer. */
class Conn {
  readonly sock: Socket;
  readonly born = Date.now();
  requests = 0;
  idleTimer: NodeJS.Timeout | undefined;
  buf: Buffer = Buffer.alloc(0);
  dead = false;
  constructor(sock: Socket) { this.sock = sock; }
  destroy(): void {
    this.dead = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.sock.destroy();
  }
}

type Endpoint = { kind: 'inet'; host: string; port: number } | { kind: 'unix'; path: string };

/** `inet:host:port`, `inet:[v6]:port`, `unix:path`; undefined when malformed. */
export function parseEndpoint(spec: string, baseDir = '.'): Endpoint | undefined {
  const m = /^(inet|unix):(.+)$/.exec(spec.trim());
  if (!m) return undefined;
  if (m[1] === 'unix') return { kind: 'unix', path: isAbsolute(m[2]!) ? m[2]! : join(baseDir, m[2]!) };
  const hp = /^\[([^\]]+)\]:(\d+)$/.exec(m[2]!) ?? /^([^:]+):(\d+)$/.exec(m[2]!);
  if (!hp || Number(hp[2]) < 1 || Number(hp[2]) > 65535) return undefined;
  return { kind: 'inet', host: hp[1]!, port: Number(hp[2]) };
}

export class AttrClient {
  readonly server: string;
  private readonly endpoint: Endpoint;
  private readonly o: AttrClientOptions;
  private readonly idle: Conn[] = [];
  private open = 0;
  private readonly waiters: (() => void)[] = [];
  private closed = false;

  constructor(server: string, o: AttrClientOptions) {
    const ep = parseEndpoint(server, o.baseDir);
    if (!ep) throw new AttrClientError(`bad server address "${server}": specify inet:host:port or unix:pathname`);
    this.server = server;
    this.endpoint = ep;
    this.o = o;
  }

  /** Send one attribute list; the reply's attributes. Throws AttrClientError after tryLimit failures. */
  async request(attrs: readonly (readonly [string, string])[]): Promise<Map<string, string>> {
    const text = attrs.map(([k, v]) => `${k}=${v.replace(/[\r\n]/g, ' ')}\n`).join('') + '\n';
    const tries = Math.max(1, this.o.tryLimit);
    let why = '';
    for (let attempt = 1; attempt <= tries; attempt++) {
      if (this.closed) throw new AttrClientError(`problem talking to server ${this.server}: client closed`);
      let c: Conn | undefined;
      try {
        c = await this.take();
        const reply = await this.exchange(c, text);
        c.requests++;
        this.give(c);
        return reply;
      } catch (e) {
        if (c) this.drop(c);
        why = (e as Error).message;
        if (attempt < tries && this.o.retryDelayMs > 0) await new Promise((r) => setTimeout(r, this.o.retryDelayMs).unref());
      }
    }
    throw new AttrClientError(`problem talking to server ${this.server}: ${why}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.destroy();
    for (const w of this.waiters.splice(0)) w();
  }

  // ---- the pool ----------------------------------------------------------------------------

  private async take(): Promise<Conn> {
    for (;;) {
      const c = this.idle.pop();
      if (c) {
        if (c.idleTimer) clearTimeout(c.idleTimer);
        if (!c.dead && !c.sock.destroyed && !this.tooOld(c)) return c;
        this.drop(c);
        continue;
      }
      if (this.open < MAX_CONNECTIONS) {
        this.open++;
        try { return await this.connect(); } catch (e) { this.open--; this.wakeOne(); throw e; }
      }
      await new Promise<void>((r) => this.waiters.push(r));
      if (this.closed) throw new Error('client closed');
    }
  }

  private give(c: Conn): void {
    const tooMany = this.o.requestLimit > 0 && c.requests >= this.o.requestLimit;
    if (this.closed || this.tooOld(c) || tooMany || c.dead) { this.drop(c); return; }
    c.idleTimer = setTimeout(() => {
      const i = this.idle.indexOf(c);
      if (i >= 0) { this.idle.splice(i, 1); this.drop(c); }
    }, Math.max(1, this.o.maxIdleMs));
    c.idleTimer.unref();
    c.sock.unref();
    this.idle.push(c);
    this.wakeOne();
  }

  private tooOld(c: Conn): boolean { return this.o.maxTtlMs > 0 && Date.now() - c.born >= this.o.maxTtlMs; }

  private drop(c: Conn): void {
    c.destroy();
    this.open--;
    this.wakeOne();
  }

  private wakeOne(): void { this.waiters.shift()?.(); }

  private connect(): Promise<Conn> {
    const ep = this.endpoint;
    return new Promise((resolve, reject) => {
      const sock = ep.kind === 'unix' ? connect({ path: ep.path }) : connect({ host: ep.host, port: ep.port });
      const timer = setTimeout(() => { sock.destroy(); reject(new Error('connect timeout')); }, this.o.timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        const c = new Conn(sock);
        sock.on('error', () => { c.dead = true; });
        sock.on('close', () => { c.dead = true; });
        resolve(c);
      });
      sock.once('error', (e: NodeJS.ErrnoException) => { clearTimeout(timer); reject(new Error(`connect: ${e.code ?? e.message}`)); });
    });
  }

  /** Write the request, read one reply (bounded, with the timeout). */
  private exchange(c: Conn, text: string): Promise<Map<string, string>> {
    const sock = c.sock;
    sock.ref();
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err: Error | undefined, reply?: Map<string, string>) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.off('data', onData);
        sock.off('close', onClose);
        sock.off('error', onError);
        if (err) reject(err); else resolve(reply!);
      };
      const timer = setTimeout(() => finish(new Error('timeout')), this.o.timeoutMs);
      const onClose = () => finish(new Error('lost connection'));
      const onError = (e: NodeJS.ErrnoException) => finish(new Error(e.code ?? e.message));
      const onData = (b: Buffer) => {
        c.buf = c.buf.length ? Buffer.concat([c.buf, b]) : b;
        if (c.buf.length > MAX_REPLY) { finish(new Error(`reply longer than ${MAX_REPLY} bytes`)); return; }
        const end = endOfReply(c.buf);
        if (end < 0) return;
        const raw = c.buf.subarray(0, end);
        c.buf = c.buf.subarray(end);
        if (c.buf.length) { finish(new Error('unexpected data after the reply')); return; }
        try { finish(undefined, parseReply(raw)); } catch (e) { finish(e as Error); }
      };
      if (c.dead || sock.destroyed) { finish(new Error('lost connection')); return; }
      c.buf = Buffer.alloc(0);
      sock.on('data', onData);
      sock.on('close', onClose);
      sock.on('error', onError);
      sock.write(text);
    });
  }
}

/** Offset just past the empty line that ends a reply ("\n\n" or "\n\r\n"), or -1. */
function endOfReply(b: Buffer): number {
  if (b.length && b[0] === 0x0a) return 1;
  if (b.length > 1 && b[0] === 0x0d && b[1] === 0x0a) return 2;
  for (let i = b.indexOf(0x0a); i >= 0 && i < b.length - 1; i = b.indexOf(0x0a, i + 1)) {
    if (b[i + 1] === 0x0a) return i + 2;
    if (b[i + 1] === 0x0d && b[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

/** name=value lines (attr_scan_plain): a line without '=' or with a NUL is a protocol error. */
export function parseReply(raw: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  if (raw.includes(0)) throw new Error('NUL byte in reply');
  for (let line of raw.toString('utf8').split('\n')) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`missing '=' after attribute name in reply: "${line.slice(0, 60)}"`);
    const k = line.slice(0, eq);
    if (!out.has(k)) out.set(k, line.slice(eq + 1));
  }
  return out;
}
