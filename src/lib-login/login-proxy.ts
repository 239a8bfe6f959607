/**
 * login-proxy - Dovecot's login proxy (login-common/login-proxy.c, imap-login/imap-proxy.c,
 * pop3-login/pop3-proxy.c, Pigeonhole's managesieve-proxy.c): after a login is authenticated,
 * the passdb's extra fields may send the session to another server (a mailbox backend), and
 * this module logs in there with the same credentials and then relays bytes both ways.
 *
 * SUMMARY
 *   proxyDestination(protocol, fields, login, client) → where to go, or undefined (log in here)
 *   proxyLogin(protocol, dest, client, log)          → the backend socket, logged in
 *   proxySplice(client, rest, backend, ...)           → bytes both ways until one side closes
 *
 * DESCRIPTION
 *   The daemons (imapd, pop3d, managesieve) call this at their one login point; this module
 *   knows no daemon. Passdb extra fields, as Dovecot documents them (PasswordDatabase/
 *   ExtraFields/Proxy):
 *     proxy              proxy the session to host (value ignored: `proxy`, `proxy=y`)
 *     proxy_maybe        proxy only when host (and port, when given) is not this server's
 *                        address the client connected to; else log in here
 *     host= port=        the backend (port defaults to the protocol's: 143, 110, 4190, 587)
 *     destuser=          the name to log in with at the backend (default: the login name)
 *     pass=              the password to use there (default: the one the client gave)
 *     master=            log in as this master user: AUTHENTICATE PLAIN with the user as
 *                        authorization identity and `pass` as the master password
 *     ssl=yes|any-cert   TLS from the first byte (any-cert: the certificate is not checked)
 *     starttls=yes|any-cert   STARTTLS (STLS for POP3) before logging in
 *     proxy_timeout=N    seconds (or `N ms`, `N secs`) for connect + backend login; default 30
 *   The client's address goes with the login, as Dovecot sends it: IMAP
 *   `ID ("x-session-id" ... "x-originating-ip" ... "x-originating-port" ... "x-connected-ip" ...
 *   "x-connected-port" ... "x-proxy-ttl" ...)` when the backend lists ID; POP3 and ManageSieve
 *   `XCLIENT ADDR= PORT= SESSION= TTL=` when the backend's greeting offers XCLIENT (Dovecot's
 *   pop3 greeting `+OK [XCLIENT] ...` to a client in login_trusted_networks). A backend honours
 *   them only from its login_trusted_networks.
 *
 *   The backend's success line goes to the client (IMAP with the client's tag: the
 *   `OK [CAPABILITY ...] Logged in` of the backend, so the client sees the backend's
 *   capabilities); its failure line too when it carries a response code, else the login
 *   process's own "Authentication failed.". A backend that cannot be reached, times out, or
 *   answers what its protocol does not allow is a temporary failure for the client:
 *     IMAP  NO [UNAVAILABLE] Account is temporarily unavailable.
 *     POP3  -ERR [SYS/TEMP] Account is temporarily unavailable.
 *     Sieve NO (TRYLATER) "Account is temporarily unavailable."
 *   (Dovecot 2.3's LOGIN_PROXY_FAILURE_MSG) and the log says which backend and why.
 *
 * SECURITY
 *   Talks to backends, which are trusted less than the client is distrusted: every backend line
 *   is bounded (8192 bytes), the whole login is bounded by proxy_timeout, and a backend that
 *   sends anything unexpected is dropped. While the login runs, the client's input waits in the
 *   kernel (the daemons pause their socket), so a client flooding the handshake costs nothing.
 *   The password is sent only to the configured backend, over TLS when ssl/starttls say so.
 *
 * DIAGNOSTICS
 *   `proxy(alice): started proxying to 127.0.0.2:143`, `proxy(alice): connect(127.0.0.2, 143)
 *   failed: ...`, `proxy(alice): Login for 127.0.0.2:143 timed out`, `proxy(alice): disconnecting
 *   1.2.3.4 (Disconnected by client, in=N out=M)`.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Logger } from '../util/msg.ts';

export type ProxyProtocol = 'imap' | 'pop3' | 'sieve';

/** Dovecot 2.3 LOGIN_PROXY_FAILURE_MSG. */
export const PROXY_FAILURE_MSG = 'Account is temporarily unavailable.';
/** Dovecot's default proxy_timeout (login_proxy connect + login). */
export const DEFAULT_PROXY_TIMEOUT_MS = 30_000;
/** Longest backend line accepted during the login. */
export const MAX_BACKEND_LINE = 8192;
/** Dovecot's LOGIN_PROXY_TTL: hops left, sent to the backend. */
const PROXY_TTL = 5;

const DEFAULT_PORTS: Record<ProxyProtocol, number> = { imap: 143, pop3: 110, sieve: 4190 };

/** The client connection the login came on. */
export interface ProxyClient {
  remoteIp: string;
  remotePort: number;
  localIp: string;
  localPort: number;
  sessionId: string;
}

/** The login the client made (what the backend login reuses). */
export interface ProxyLoginName {
  user: string;
  password: string;
}

export interface ProxyDest {
  host: string;
  port: number;
  /** 'ssl': TLS from the first byte; 'starttls': STARTTLS/STLS first. */
  tls: 'none' | 'ssl' | 'starttls';
  anyCert: boolean;
  destuser: string;
  password: string;
  /** Master user name: AUTHENTICATE PLAIN authzid=destuser, authcid=master. */
  master?: string;
  timeoutMs: number;
}

export class ProxyError extends Error {
  override name = 'ProxyError';
  /** 'tempfail': the backend is unavailable; 'authfailed': it refused the login. */
  readonly kind: 'tempfail' | 'authfailed';
  /** The backend's failure line to forward (it carries a response code), if any. */
  readonly backendReply: string | undefined;
  constructor(kind: 'tempfail' | 'authfailed', message: string, backendReply?: string) {
    super(message);
    this.kind = kind;
    this.backendReply = backendReply;
  }
}

function has(fields: Record<string, string>, k: string): boolean {
  return k in fields && !/^(no|n|0|false)$/i.test(fields[k]!);
}

function tlsSetting(v: string | undefined): { on: boolean; anyCert: boolean } {
  if (v === undefined) return { on: false, anyCert: false };
  const t = v.toLowerCase();
  if (t === 'any-cert') return { on: true, anyCert: true };
  return { on: /^(yes|y|1|true|)$/.test(t), anyCert: false };
}

/** Dovecot time in the proxy_timeout field: bare seconds, or with a unit. */
export function parseProxyTimeout(v: string | undefined): number {
  if (v === undefined || v.trim() === '') return DEFAULT_PROXY_TIMEOUT_MS;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|msecs?|s|secs?|seconds?|m|mins?|minutes?)?\s*$/i.exec(v);
  if (!m) throw new Error(`proxy_timeout=${v}: not a time (e.g. proxy_timeout=10)`);
  const n = Number(m[1]);
  const u = (m[2] ?? 's').toLowerCase();
  const ms = u.startsWith('ms') ? n : u.startsWith('m') && !u.startsWith('ms') ? n * 60_000 : n * 1000;
  return ms > 0 ? ms : DEFAULT_PROXY_TIMEOUT_MS;
}

function normalizeIp(a: string): string {
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/**
 * Where the passdb sends this login, or undefined to log in here. Throws ProxyError('tempfail')
 * for a proxy answer without a usable host (Dovecot: "proxy: host not given").
 */
export function proxyDestination(protocol: ProxyProtocol, fields: Record<string, string> | undefined, login: ProxyLoginName,
  client: ProxyClient): ProxyDest | undefined {
  if (!fields) return undefined;
  const proxy = has(fields, 'proxy');
  const maybe = has(fields, 'proxy_maybe');
  if (!proxy && !maybe) return undefined;
  const host = (fields.host ?? '').trim();
  if (host === '' || /[\s/\\]/.test(host)) throw new ProxyError('tempfail', `proxy: host not given${host ? ` (host=${host})` : ''}`);
  let port = DEFAULT_PORTS[protocol];
  if (fields.port !== undefined && fields.port !== '') {
    const p = Number(fields.port);
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new ProxyError('tempfail', `proxy: invalid port=${fields.port}`);
    port = p;
  }
  // proxy_maybe: this server itself (auth-request.c auth_request_proxy_is_self: same IP, and
  // the same port when one is given) means a normal login here.
  if (maybe && !proxy) {
    const self = normalizeIp(host) === normalizeIp(client.localIp) || (host === 'localhost' && isIP(client.localIp) !== 0 && /^(127\.|::1$)/.test(client.localIp));
    if (self && (fields.port === undefined || fields.port === '' || port === client.localPort)) return undefined;
  }
  const ssl = tlsSetting(fields.ssl);
  const starttls = tlsSetting(fields.starttls);
  let timeoutMs: number;
  try { timeoutMs = parseProxyTimeout(fields.proxy_timeout); } catch (e) { throw new ProxyError('tempfail', (e as Error).message); }
  const dest: ProxyDest = {
    host, port,
    tls: ssl.on ? 'ssl' : starttls.on ? 'starttls' : 'none',
    anyCert: ssl.on ? ssl.anyCert : starttls.anyCert,
    destuser: fields.destuser || login.user,
    password: fields.pass ?? login.password,
    timeoutMs,
  };
  if (fields.master) dest.master = fields.master;
  return dest;
}

export function describeDest(d: ProxyDest): string {
  return `${d.host.includes(':') ? `[${d.host}]` : d.host}:${d.port}`;
}

/** Lines from the backend during the login: bounded, with the socket swappable for TLS. */
class BackendLines {
  private buf: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private ended = false;
  private sock!: Socket;
  private readonly onData = (d: Buffer): void => {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    if (this.buf.length > MAX_BACKEND_LINE * 2) this.sock.pause();
    this.wake();
  };
  private readonly onEnd = (): void => { this.ended = true; this.wake(); };

  constructor(sock: Socket) { this.attach(sock); }

  attach(sock: Socket): void {
    this.sock = sock;
    sock.on('data', this.onData);
    sock.on('end', this.onEnd);
    sock.on('close', this.onEnd);
    sock.on('error', this.onEnd);
    this.ended = false;
  }

  /** Stop reading; returns what the backend sent after the last line taken. */
  detach(): Buffer {
    const s = this.sock;
    s.off('data', this.onData);
    s.off('end', this.onEnd);
    s.off('close', this.onEnd);
    s.off('error', this.onEnd);
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  private wake(): void { const w = this.waiter; this.waiter = undefined; w?.(); }

  async next(): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl >= 0) {
        if (nl > MAX_BACKEND_LINE) throw new ProxyError('tempfail', `backend sent a line over ${MAX_BACKEND_LINE} bytes`);
        let line = this.buf.subarray(0, nl);
        this.buf = this.buf.subarray(nl + 1);
        if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
        if (this.sock.isPaused()) this.sock.resume();
        if (line.includes(0)) throw new ProxyError('tempfail', 'backend sent a NUL byte');
        return line.toString('utf8');
      }
      if (this.buf.length > MAX_BACKEND_LINE) throw new ProxyError('tempfail', `backend sent a line over ${MAX_BACKEND_LINE} bytes`);
      if (this.ended) throw new ProxyError('tempfail', 'backend disconnected during the login');
      if (this.sock.isPaused()) this.sock.resume();
      await new Promise<void>((r) => { this.waiter = r; });
    }
  }
}

function showLine(l: string): string {
  const t = l.length > 120 ? `${l.slice(0, 120)}...` : l;
  return JSON.stringify(t);
}

/** An IMAP quoted string (RFC 3501 §4.3), or undefined when it must be a literal. */
function imapQuote(s: string): string | undefined {
  if (/[\r\n\0]/.test(s) || Buffer.byteLength(s) > 1000) return undefined;
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function saslPlain(d: ProxyDest): string {
  const authz = d.master ? d.destuser : '';
  const authc = d.master ?? d.destuser;
  return Buffer.from(`${authz}\0${authc}\0${d.password}`, 'utf8').toString('base64');
}

interface Conversation {
  lines: BackendLines;
  sock: Socket;
  write(s: string): void;
  /** Switch the backend connection to TLS (after STARTTLS/STLS was accepted). */
  startTls(): Promise<void>;
}

/** IMAP (imap-proxy.c): greeting, [STARTTLS], ID, LOGIN | AUTHENTICATE PLAIN. */
async function imapLogin(c: Conversation, d: ProxyDest, client: ProxyClient): Promise<string> {
  let greeting = await c.lines.next();
  if (!/^\* OK\b/i.test(greeting)) throw new ProxyError('tempfail', `Remote returned invalid banner: ${showLine(greeting)}`);
  let caps = /\[CAPABILITY ([^\]]*)\]/i.exec(greeting)?.[1]?.toUpperCase().split(' ') ?? [];
  if (d.tls === 'starttls') {
    c.write('S STARTTLS\r\n');
    for (;;) {
      const l = await c.lines.next();
      if (l.startsWith('* ')) continue;
      if (!/^S OK\b/i.test(l)) throw new ProxyError('tempfail', `Remote STARTTLS failed: ${showLine(l)}`);
      break;
    }
    await c.startTls();
    c.write('C CAPABILITY\r\n');
    caps = [];
    for (;;) {
      greeting = await c.lines.next();
      const m = /^\* CAPABILITY (.*)$/i.exec(greeting);
      if (m) { caps = m[1]!.toUpperCase().split(' '); continue; }
      if (greeting.startsWith('* ')) continue;
      if (!/^C OK\b/i.test(greeting)) throw new ProxyError('tempfail', `Remote CAPABILITY failed: ${showLine(greeting)}`);
      break;
    }
  }
  let out = '';
  if (caps.length === 0 || caps.includes('ID')) {
    const q = (v: string | number) => `"${String(v).replace(/[\\"]/g, '')}"`;
    out += `I ID (${q('x-session-id')} ${q(client.sessionId)} ${q('x-originating-ip')} ${q(client.remoteIp)} ${q('x-originating-port')} ${q(client.remotePort)} `
      + `${q('x-connected-ip')} ${q(client.localIp)} ${q('x-connected-port')} ${q(client.localPort)} ${q('x-proxy-ttl')} ${q(PROXY_TTL - 1)})\r\n`;
  }
  const user = imapQuote(d.destuser), pass = imapQuote(d.password);
  if (d.master || user === undefined || pass === undefined) {
    out += caps.includes('SASL-IR') ? `L AUTHENTICATE PLAIN ${saslPlain(d)}\r\n` : 'L AUTHENTICATE PLAIN\r\n';
  } else {
    out += `L LOGIN ${user} ${pass}\r\n`;
  }
  c.write(out);
  for (;;) {
    const l = await c.lines.next();
    if (l.startsWith('* ') || /^I (OK|NO|BAD)\b/i.test(l)) continue; // ID's answers, untagged data
    if (l.startsWith('+') && !caps.includes('SASL-IR')) { c.write(`${saslPlain(d)}\r\n`); continue; }
    if (/^L OK\b/i.test(l)) return l.slice(2);
    if (/^L NO\b/i.test(l)) {
      const text = l.slice(2);
      throw new ProxyError(/^NO \[(UNAVAILABLE|SERVERBUG)\]/i.test(text) ? 'tempfail' : 'authfailed', `backend refused the login: ${showLine(l)}`, /^NO \[/i.test(text) ? text : undefined);
    }
    throw new ProxyError('tempfail', `Unexpected reply from backend: ${showLine(l)}`);
  }
}

/** POP3 (pop3-proxy.c): greeting, [STLS], [XCLIENT], USER/PASS | AUTH PLAIN. */
async function pop3Login(c: Conversation, d: ProxyDest, client: ProxyClient): Promise<string> {
  const greeting = await c.lines.next();
  if (!/^\+OK\b/.test(greeting)) throw new ProxyError('tempfail', `Remote returned invalid banner: ${showLine(greeting)}`);
  const xclient = /^\+OK \[XCLIENT\]/i.test(greeting);
  const expectOk = async (what: string): Promise<string> => {
    const l = await c.lines.next();
    if (/^\+OK\b/.test(l)) return l;
    if (/^-ERR\b/.test(l)) {
      const temp = /^-ERR \[(SYS\/TEMP|IN-USE)\]/i.test(l);
      throw new ProxyError(temp || what !== 'login' ? 'tempfail' : 'authfailed', `backend ${what} failed: ${showLine(l)}`, /^-ERR \[/.test(l) ? l : undefined);
    }
    throw new ProxyError('tempfail', `Unexpected reply from backend: ${showLine(l)}`);
  };
  if (d.tls === 'starttls') {
    c.write('STLS\r\n');
    await expectOk('STLS');
    await c.startTls();
  }
  if (xclient) {
    c.write(`XCLIENT ADDR=${client.remoteIp} PORT=${client.remotePort} SESSION=${client.sessionId} TTL=${PROXY_TTL - 1}\r\n`);
    await expectOk('XCLIENT');
  }
  if (d.master || /[\r\n\0 ]/.test(d.destuser) || /[\r\n\0]/.test(d.password)) {
    c.write(`AUTH PLAIN ${saslPlain(d)}\r\n`);
    return expectOk('login');
  }
  c.write(`USER ${d.destuser}\r\n`);
  await expectOk('USER');
  c.write(`PASS ${d.password}\r\n`);
  return expectOk('login');
}

/** ManageSieve (managesieve-proxy.c): capabilities + OK, [STARTTLS], [XCLIENT], AUTHENTICATE. */
async function sieveLogin(c: Conversation, d: ProxyDest, client: ProxyClient): Promise<string> {
  const readCaps = async (): Promise<string[]> => {
    const caps: string[] = [];
    for (let i = 0; i < 100; i++) {
      const l = await c.lines.next();
      if (/^OK\b/i.test(l)) return caps;
      const m = /^"([^"]*)"/.exec(l);
      if (!m) throw new ProxyError('tempfail', `Remote returned invalid banner: ${showLine(l)}`);
      caps.push(m[1]!.toUpperCase());
    }
    throw new ProxyError('tempfail', 'Remote sent too many capability lines');
  };
  let caps = await readCaps();
  const expectOk = async (what: string): Promise<string> => {
    for (let i = 0; i < 100; i++) {
      const l = await c.lines.next();
      if (/^OK\b/i.test(l)) return l;
      if (/^NO\b/i.test(l)) {
        throw new ProxyError(/^NO \(TRYLATER\)/i.test(l) || what !== 'login' ? 'tempfail' : 'authfailed', `backend ${what} failed: ${showLine(l)}`, /^NO \(/i.test(l) ? l : undefined);
      }
      if (/^BYE\b/i.test(l)) throw new ProxyError('tempfail', `backend ${what} failed: ${showLine(l)}`);
      if (!l.startsWith('"')) throw new ProxyError('tempfail', `Unexpected reply from backend: ${showLine(l)}`);
    }
    throw new ProxyError('tempfail', 'Remote sent too many lines');
  };
  if (d.tls === 'starttls') {
    c.write('STARTTLS\r\n');
    await expectOk('STARTTLS');
    await c.startTls();
    caps = await readCaps();   // RFC 5804 §2.2: the server sends its capabilities again
  }
  if (caps.includes('XCLIENT')) {
    c.write(`XCLIENT ADDR=${client.remoteIp} PORT=${client.remotePort} SESSION=${client.sessionId} TTL=${PROXY_TTL - 1}\r\n`);
    await expectOk('XCLIENT');
  }
  c.write(`AUTHENTICATE "PLAIN" "${saslPlain(d)}"\r\n`);
  return expectOk('login');
}

/**
 * Connect to the backend and log in there; resolves with the logged-in socket and the backend's
 * success line (IMAP: without its tag). Rejects with ProxyError; the socket is then closed.
 */
export async function proxyLogin(protocol: ProxyProtocol, d: ProxyDest, client: ProxyClient, log: Logger, user: string): Promise<{ sock: Socket; reply: string; rest: Buffer }> {
  const where = describeDest(d);
  let sock: Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  const started = Date.now();
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ProxyError('tempfail', `Login for ${where} timed out after ${((Date.now() - started) / 1000).toFixed(1)} secs`)), d.timeoutMs);
    });
    const connected = new Promise<Socket>((resolve, reject) => {
      const servername = isIP(d.host) === 0 ? d.host : undefined;
      const s: Socket = d.tls === 'ssl'
        ? tlsConnect({ host: d.host, port: d.port, rejectUnauthorized: !d.anyCert, ...(servername ? { servername } : {}) }, () => resolve(s))
        : netConnect({ host: d.host, port: d.port }, () => resolve(s));
      sock = s;
      s.once('error', (e) => reject(new ProxyError('tempfail', `connect(${d.host}, ${d.port}) failed: ${e.message}`)));
    });
    // the loser of each race settles later: never an unhandled rejection
    connected.catch(() => {});
    const s0 = await Promise.race([connected, timeout]);
    s0.setNoDelay(true);
    const lines = new BackendLines(s0);
    const conv: Conversation = {
      lines,
      sock: s0,
      write: (t) => { conv.sock.write(t); },
      startTls: async () => {
        const raw = conv.sock;
        lines.detach();
        const servername = isIP(d.host) === 0 ? d.host : undefined;
        const t: TLSSocket = await new Promise((resolve, reject) => {
          const ts = tlsConnect({ socket: raw, rejectUnauthorized: !d.anyCert, ...(servername ? { servername } : {}) }, () => resolve(ts));
          ts.once('error', (e) => reject(new ProxyError('tempfail', `TLS handshake with ${where} failed: ${e.message}`)));
        });
        conv.sock = t;
        sock = t;
        lines.attach(t);
      },
    };
    const login = protocol === 'imap' ? imapLogin(conv, d, client) : protocol === 'pop3' ? pop3Login(conv, d, client) : sieveLogin(conv, d, client);
    login.catch(() => {});
    const reply = await Promise.race([login, timeout]);
    const rest = lines.detach();
    log.info(`proxy(${user}): started proxying to ${where}${d.tls !== 'none' ? ' (TLS)' : ''}: rip=${client.remoteIp}, lip=${client.localIp}, session=<${client.sessionId}>`);
    return { sock: conv.sock, reply, rest };
  } catch (e) {
    sock?.destroy();
    const err = e instanceof ProxyError ? e : new ProxyError('tempfail', (e as Error).message);
    const line = `proxy(${user}): ${err.message.startsWith('connect(') || err.message.startsWith('Login for') ? '' : `${where}: `}${err.message}: rip=${client.remoteIp}, lip=${client.localIp}, session=<${client.sessionId}>`;
    if (err.kind === 'authfailed') log.info(line); else log.error(line);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Relay bytes both ways: `rest` (what the client sent after its login command) goes first.
 * Backpressure both ways (pipe); when either side ends or fails, both are closed. Resolves when
 * both sockets are closed.
 */
export function proxySplice(client: Socket, rest: Buffer, backend: Socket, backendRest: Buffer, o: { log: Logger; user: string; remoteIp: string }): Promise<void> {
  return new Promise((resolve) => {
    let inBytes = rest.length, outBytes = backendRest.length;
    let why: string | undefined;
    const finish = (reason: string): void => {
      if (why !== undefined) return;
      why = reason;
      if (!client.destroyed) client.end();
      if (!backend.destroyed) backend.end();
      setTimeout(() => { client.destroy(); backend.destroy(); }, 2000).unref();
    };
    let closed = 0;
    const onClose = (): void => {
      if (++closed < 2) return;
      o.log.info(`proxy(${o.user}): disconnecting ${o.remoteIp} (${why ?? 'Disconnected'}, in=${inBytes} out=${outBytes})`);
      resolve();
    };
    client.on('data', (d: Buffer) => { inBytes += d.length; });
    backend.on('data', (d: Buffer) => { outBytes += d.length; });
    client.once('end', () => finish('Disconnected by client'));
    backend.once('end', () => finish('Disconnected by server'));
    client.once('error', (e) => { finish(`Disconnected by client: ${e.message}`); client.destroy(); });
    backend.once('error', (e) => { finish(`Disconnected by server: ${e.message}`); backend.destroy(); });
    client.once('close', () => { finish('Disconnected by client'); onClose(); });
    backend.once('close', () => { finish('Disconnected by server'); onClose(); });
    if (rest.length > 0) backend.write(rest);
    if (backendRest.length > 0) client.write(backendRest);
    client.pipe(backend, { end: false });
    backend.pipe(client, { end: false });
    client.resume();
    backend.resume();
  });
}
