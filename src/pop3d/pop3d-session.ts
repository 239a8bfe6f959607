/**
 * pop3d-session - one POP3 connection (RFC 1939) from greeting to close: AUTHORIZATION
 * (pop3d-auth.ts), TRANSACTION (pop3d-commands.ts on a Pop3Maildrop snapshot), UPDATE at QUIT.
 *
 * Dovecot 2.3 behaviour kept:
 *  - greeting `+OK <login_greeting>`; QUIT before login `+OK Logging out`; after login
 *    `+OK Logging out.` or `+OK Logging out, messages deleted.`;
 *  - pre-login unknown commands `-ERR Unknown command.`; after login `-ERR Unknown command: VERB`;
 *  - a line longer than 4096 bytes: before login `-ERR Input buffer full, aborting`, after
 *    login `-ERR Input line too long.`, then the connection is closed;
 *  - idle clients are disconnected with `-ERR Disconnected for inactivity.`;
 *  - bad commands (measured against Dovecot 2.3.19, test/interop/pop3-bad-commands.test.ts):
 *    before login (pop3-login) an unknown command is answered `-ERR Unknown command.`, and the
 *    3rd one in a row is followed by `-ERR Too many invalid bad commands.` and the connection is
 *    closed (CLIENT_MAX_BAD_COMMANDS); after login (pop3) any command answered -ERR counts, and
 *    the 21st in a row is followed by `-ERR Too many bad commands.` and the close. A command
 *    answered +OK starts the count again. Nothing is deleted (no UPDATE state, RFC 1939 §6);
 *  - one connection never keeps the event loop to itself: after every 64 commands read
 *    without waiting for input the session yields, so a client pipelining thousands of lines
 *    delays others by no more than one such batch;
 *  - after the last reply (QUIT, a limit, a time-out) the session's slot is freed at once and
 *    the socket is closed after a short linger for that reply (SessionSlot.end(),
 *    lib-master/master-session.ts), even when the client never closes its side;
 *  - the connection counts as secure when it is TLS or the client's address is the server's
 *    own address (Dovecot's rule; loopback to loopback qualifies), which is what
 *    disable_plaintext_auth checks;
 *  - pop3_lock_session = yes: a second session of the same user waits for the first to end
 *    (up to lockWaitMs) and then gets the maildrop as the first left it; after the wait it is
 *    refused with `-ERR [IN-USE] Couldn't open INBOX: Timeout while waiting for lock`. The
 *    lock is per Postern process (Dovecot uses a lock file in the mailbox).
 *  - a connection that ends without QUIT deletes nothing (RFC 1939 §6).
 *
 * STLS (RFC 2595) is answered "-ERR TLS support isn't enabled." until lib-tls provides a
 * context: `Pop3SessionOptions.startTls` is the hook (upgrade the socket, then CAPA shows STLS).
 */
import type { Socket } from 'node:net';
import type { UserDirectory } from '../lib-auth/user-directory.ts';
import type { MailStore } from '../lib-storage/mail-storage.ts';
import { MailError } from '../lib-storage/mail-storage.ts';
import type { Logger } from '../util/msg.ts';
import { LineReader } from '../util/line-reader.ts';
import { isIP } from 'node:net';
import { CLIENT_MAX_BAD_COMMANDS, holdAuthFailure, LOGIN_MAX_BAD_COMMANDS, LOGIN_MAX_LINE, loginDirectory, loginTrusted, plainAddr, YIELD_EVERY, type AuthPenaltyHook } from '../lib-login/login-common.ts';
import { PROXY_FAILURE_MSG, proxyDestination, proxyLogin, proxySplice, type ProxyError } from '../lib-login/login-proxy.ts';
import { closeAfterLinger, type SessionSlot } from '../lib-master/master-session.ts';
import { REPLY_AUTH_FAILED, REPLY_PLAINTEXT_DISABLED, saslAuth, verifyPassword, type AuthOutcome } from './pop3d-auth.ts';
import { POP3_CAPABILITIES, TRANSACTION_COMMANDS, type Pop3Io } from './pop3d-commands.ts';
import { Pop3Maildrop } from './pop3d-maildrop.ts';
import type { Pop3dSettings } from './pop3d-settings.ts';

/** Dovecot's login input buffer and pop3 command line limit. */
export const POP3_MAX_LINE = LOGIN_MAX_LINE;
/** Dovecot login-common CLIENT_MAX_BAD_COMMANDS: the 3rd unknown command before login ends it. */
export const POP3_LOGIN_MAX_BAD_COMMANDS = LOGIN_MAX_BAD_COMMANDS;
/** Dovecot pop3-client.c CLIENT_MAX_BAD_COMMANDS: more than 20 failed commands in a row end it. */
export const POP3_MAX_BAD_COMMANDS = CLIENT_MAX_BAD_COMMANDS;

export interface Pop3dDeps {
  directory: UserDirectory;
  store: MailStore;
  settings: Pop3dSettings & { lockWaitMs?: number };
  log: Logger;
  /** The master's auth penalty (ServiceContext.authPenalty): it holds failed logins itself. */
  penalty?: AuthPenaltyHook | undefined;
}

export interface Pop3SessionOptions {
  /** The connection is already TLS (pop3s), or became TLS through STLS. */
  tls?: boolean;
  /**
   * The STLS hook: upgrade the plain socket to TLS (server side) and return the TLS socket.
   * Unset until lib-tls provides contexts: STLS is then refused and CAPA does not list it.
   */
  startTls?: (sock: Socket) => Promise<Socket>;
  /** The master's session slot (serveSessions); without one the socket lingers on its own. */
  slot?: SessionSlot;
}

/** pop3_lock_session: users with a session in the TRANSACTION state, and who waits for them. */
const locks = new Map<string, (() => void)[]>();

async function lockUser(user: string, waitMs: number): Promise<boolean> {
  if (!locks.has(user)) { locks.set(user, []); return true; }
  return new Promise<boolean>((resolve) => {
    const waiters = locks.get(user)!;
    const grant = () => { clearTimeout(t); resolve(true); };
    const t = setTimeout(() => {
      const i = waiters.indexOf(grant);
      if (i >= 0) waiters.splice(i, 1);
      resolve(false);
    }, waitMs);
    waiters.push(grant);
  });
}

function unlockUser(user: string): void {
  const waiters = locks.get(user);
  if (!waiters) return;
  const next = waiters.shift();
  if (next) next(); else locks.delete(user);
}

let sessionCounter = 0;

/** The commands pop3-login knows; anything else before login is a bad command. */
const LOGIN_COMMANDS = new Set(['CAPA', 'USER', 'PASS', 'AUTH', 'APOP', 'STLS', 'QUIT', 'XCLIENT']);

export class Pop3Session {
  private sock: Socket;
  private readonly deps: Pop3dDeps;
  private readonly o: Pop3SessionOptions;
  private reader: LineReader;
  private readonly id: string;
  private userName: string | undefined;
  private drop: Pop3Maildrop | undefined;
  private lockedUser: string | undefined;
  private failures = 0;
  private closed = false;
  /** Bad commands in a row (see the header). */
  private bad = 0;
  /** The last status line written was -ERR. */
  private lastErr = false;
  /** The client's address: the peer's, or what a trusted proxy forwarded with XCLIENT. */
  private remoteIp: string;
  private remotePort: number;
  private readonly localIp: string;
  private readonly localPort: number;
  /** The peer is in login_trusted_networks (it may send XCLIENT). */
  private readonly trustedPeer: boolean;
  /** The session was handed to a backend (login-proxy): the socket is no longer ours. */
  private proxied = false;

  constructor(sock: Socket, deps: Pop3dDeps, o: Pop3SessionOptions = {}) {
    this.sock = sock;
    this.deps = deps;
    this.o = o;
    this.reader = new LineReader(sock, POP3_MAX_LINE);
    this.id = `${process.pid.toString(36)}${(++sessionCounter).toString(36)}${Date.now().toString(36)}`;
    this.remoteIp = plainAddr(sock.remoteAddress);
    this.localIp = plainAddr(sock.localAddress);
    this.remotePort = sock.remotePort ?? 0;
    this.localPort = sock.localPort ?? 0;
    this.trustedPeer = loginTrusted(this.remoteIp, deps.settings.trustedNetworks);
    sock.on('close', () => { this.closed = true; });
    sock.on('error', () => { this.closed = true; });
  }

  /** Dovecot's client->secured: TLS, a connection from this host's own address, or login_trusted_networks. */
  private get secure(): boolean {
    if (this.o.tls || this.trustedPeer) return true;
    const r = this.sock.remoteAddress;
    return r !== undefined && r === this.sock.localAddress;
  }

  private get plaintextAllowed(): boolean { return !this.deps.settings.disablePlaintextAuth || this.secure; }

  private readonly io: Pop3Io = {
    line: (text) => { this.lastErr = text.startsWith('-ERR'); return this.write(Buffer.from(text + '\r\n')); },
    raw: (data) => this.write(data),
  };

  private async write(b: Buffer): Promise<void> {
    if (this.closed || this.sock.destroyed) return;
    if (!this.sock.write(b)) {
      await new Promise<void>((resolve) => {
        const done = () => { this.sock.off('drain', done); this.sock.off('close', done); resolve(); };
        this.sock.on('drain', done);
        this.sock.on('close', done);
      });
    }
  }

  private async end(text: string): Promise<void> {
    await this.io.line(text);
    this.close();
  }

  /**
   * The session is over: half-close, free the session slot at once and let the socket linger
   * briefly for the last reply (lib-master/master-session.ts), never until the client closes.
   */
  private close(): void {
    const sock = this.sock;
    if (!sock.destroyed && !sock.writableEnded) sock.end();
    if (this.o.slot) this.o.slot.end(); else closeAfterLinger(sock);
  }

  /** The directory password checks go to: through the auth penalty when the master gave one. */
  private authDirectory(): UserDirectory {
    return loginDirectory(this.deps.directory, this.deps.penalty, this.remoteIp);
  }

  private client(): string { return `rip=${this.remoteIp || 'local'}, lip=${this.localIp || 'local'}`; }

  private authRequest() {
    return { service: 'pop3', remoteIp: this.remoteIp, localIp: this.localIp, remotePort: this.remotePort, localPort: this.localPort };
  }

  async run(): Promise<void> {
    const s = this.deps.settings;
    const onIdle = () => {
      this.deps.log.info(`${this.drop ? `pop3(${this.userName})<${this.id}>` : 'pop3-login'}: Disconnected: Inactivity (${this.client()})`);
      void this.end('-ERR Disconnected for inactivity.').finally(() => this.sock.destroy());
    };
    const setIdle = (ms: number) => { this.sock.off('timeout', onIdle); this.sock.setTimeout(ms); this.sock.on('timeout', onIdle); };
    setIdle(s.loginTimeoutMs);
    let handled = 0;
    try {
      // Dovecot's pop3-login tells a trusted proxy that it may forward the client's address
      await this.io.line(`+OK ${this.trustedPeer ? '[XCLIENT] ' : ''}${s.greeting}`);
      for (;;) {
        if (++handled % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
        const line = await this.reader.next();
        if (line === undefined || this.closed) break;
        if (typeof line !== 'string') {
          await this.end(this.drop ? '-ERR Input line too long.' : '-ERR Input buffer full, aborting');
          this.deps.log.info(`${this.drop ? `pop3(${this.userName})` : 'pop3-login'}: Disconnected: Input line too long (${this.client()})`);
          break;
        }
        const sp = line.indexOf(' ');
        const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
        const args = sp < 0 ? '' : line.slice(sp + 1);
        if (this.drop) {
          if (verb === 'QUIT') { await this.quit(); break; }
          const cmd = TRANSACTION_COMMANDS.get(verb);
          this.lastErr = false;
          if (!cmd) await this.io.line(verb === '' ? '-ERR Unknown command.' : `-ERR Unknown command: ${verb}`);
          else await cmd(this.drop, args, this.io);
          if (!this.lastErr) this.bad = 0;
          else if (++this.bad > POP3_MAX_BAD_COMMANDS) {
            this.deps.log.info(`pop3(${this.userName})<${this.id}>: Disconnected: Too many bad commands. ${this.logoutStats()}`);
            await this.end('-ERR Too many bad commands.');
            break;
          }
        } else {
          if (verb === 'QUIT') { await this.end('+OK Logging out'); break; }
          const known = LOGIN_COMMANDS.has(verb);
          const more = await this.authorization(verb, args);
          if (this.proxied) return;
          if (this.drop) setIdle(s.idleTimeoutMs);
          if (!more) break;
          if (known) this.bad = 0;
          else if (++this.bad >= POP3_LOGIN_MAX_BAD_COMMANDS) {
            this.deps.log.info(`pop3-login: Disconnected: Too many bad commands (no auth attempts): user=<>, ${this.client()}`);
            await this.end('-ERR Too many invalid bad commands.');
            break;
          }
        }
      }
    } catch (e) {
      const detail = e instanceof MailError ? `${e.message}${e.detail ? ` (${e.detail})` : ''}` : (e as Error).stack ?? String(e);
      this.deps.log.error(`pop3(${this.userName ?? '?'})<${this.id}>: ${detail}`);
      await this.end(`-ERR [SYS/TEMP] ${e instanceof MailError ? e.message : 'Internal error occurred. Refer to server log for more information.'}`).catch(() => {});
    } finally {
      if (this.drop) {
        // No QUIT (vanished client, timeout, error): nothing is deleted (RFC 1939 §6).
        if (!this.closed) this.deps.log.info(`pop3(${this.userName})<${this.id}>: Disconnected: Connection closed ${this.logoutStats()}`);
        await this.drop.close();
        this.drop = undefined;
      }
      if (this.lockedUser) { unlockUser(this.lockedUser); this.lockedUser = undefined; }
      if (!this.proxied) this.close();
    }
  }

  private logoutStats(): string {
    const d = this.drop!;
    const st = d.stats;
    const delBytes = d.messages.filter((m) => m.deleted).reduce((a, m) => a + m.size, 0);
    return this.deps.settings.logoutFormat
      .replace(/%t/g, String(st.top)).replace(/%p/g, String(st.topBytes))
      .replace(/%r/g, String(st.retr)).replace(/%b/g, String(st.retrBytes))
      .replace(/%d/g, String(d.messages.filter((m) => m.deleted).length)).replace(/%m/g, String(d.messages.length))
      .replace(/%s/g, String(d.totalSize())).replace(/%D/g, String(delBytes));
  }

  private async quit(): Promise<void> {
    const d = this.drop!;
    const n = await d.update(true);
    this.deps.log.info(`pop3(${this.userName})<${this.id}>: Disconnected: Logged out ${this.logoutStats()}`);
    await d.close();
    this.drop = undefined;
    await this.end(n > 0 || d.messages.some((m) => m.deleted) ? '+OK Logging out, messages deleted.' : '+OK Logging out.');
  }

  /** One AUTHORIZATION-state command; false ends the session. */
  private async authorization(verb: string, args: string): Promise<boolean> {
    const s = this.deps.settings;
    switch (verb) {
      case 'CAPA': {
        const caps = [...POP3_CAPABILITIES];
        if (this.o.startTls && !this.o.tls) caps.push('STLS');
        if (this.plaintextAllowed) caps.push('USER');
        const mechs = this.plaintextAllowed ? s.mechanisms : [];
        caps.push(mechs.length > 0 ? `SASL ${mechs.join(' ')}` : 'SASL');
        await this.io.raw(Buffer.from(['+OK', ...caps, '.'].join('\r\n') + '\r\n'));
        return true;
      }
      case 'USER':
        if (!this.plaintextAllowed) { await this.io.line(REPLY_PLAINTEXT_DISABLED); return true; }
        this.userName = args;
        await this.io.line('+OK');
        return true;
      case 'PASS': {
        if (!this.plaintextAllowed) { await this.io.line(REPLY_PLAINTEXT_DISABLED); return true; }
        if (this.userName === undefined) { await this.io.line('-ERR No username given.'); return true; }
        const user = this.userName;
        this.userName = undefined;
        return this.finishAuth(await verifyPassword(this.authDirectory(), 'PLAIN', user, args, this.authRequest()), user);
      }
      case 'AUTH': {
        if (args === '') {
          await this.io.raw(Buffer.from(['+OK', ...(this.plaintextAllowed ? s.mechanisms : []), '.'].join('\r\n') + '\r\n'));
          return true;
        }
        if (!this.plaintextAllowed) { await this.io.line(REPLY_PLAINTEXT_DISABLED); return true; }
        const r = await saslAuth(this.authDirectory(), s.mechanisms, args, async (challenge) => {
          await this.io.line(`+ ${challenge}`);
          const l = await this.reader.next();
          return typeof l === 'string' ? l : undefined;
        }, this.authRequest());
        if (!r.ok && r.reply === '') return false; // connection lost mid-exchange
        return this.finishAuth(r, '');
      }
      case 'APOP':
        await this.io.line('-ERR APOP not enabled.');
        return true;
      case 'XCLIENT': {
        // Dovecot pop3-login: a proxy in login_trusted_networks forwards its client's address
        // (ADDR= PORT= SESSION= TTL=, as pop3-proxy.c sends it); from anyone else unknown.
        if (!this.trustedPeer) { await this.io.line('-ERR Unknown command.'); return true; }
        for (const kv of args.split(' ')) {
          const eq = kv.indexOf('=');
          if (eq < 0) continue;
          const k = kv.slice(0, eq).toUpperCase(), v = kv.slice(eq + 1);
          if (k === 'ADDR' && isIP(v)) this.remoteIp = v;
          else if (k === 'PORT' && /^\d{1,5}$/.test(v) && Number(v) > 0 && Number(v) < 65536) this.remotePort = Number(v);
        }
        await this.io.line('+OK');
        return true;
      }
      case 'STLS': {
        // RFC 2595 §4. The hook (lib-tls, later) wraps the socket; the session then reads and
        // writes the TLS socket and forgets anything pipelined in clear text after STLS.
        if (!this.o.startTls || this.o.tls) { await this.io.line(this.o.tls ? '-ERR TLS is already active.' : "-ERR TLS support isn't enabled."); return true; }
        await this.io.line('+OK Begin TLS negotiation now.');
        const tlsSock = await this.o.startTls(this.sock);
        this.sock = tlsSock;
        this.reader = new LineReader(tlsSock, POP3_MAX_LINE);
        this.o.tls = true;
        tlsSock.on('close', () => { this.closed = true; });
        tlsSock.on('error', () => { this.closed = true; });
        return true;
      }
      default:
        await this.io.line('-ERR Unknown command.');
        return true;
    }
  }

  private async finishAuth(r: AuthOutcome, typed: string): Promise<boolean> {
    const s = this.deps.settings;
    if (!r.ok) {
      if (r.failure) {
        this.failures++;
        await holdAuthFailure(s.authFailureDelayMs, this.failures, this.deps.penalty);
      }
      this.deps.log.info(`pop3-login: Aborted login (auth failed, ${this.failures} attempts): user=<${typed}>, ${this.client()}, reason=${r.logReason}`);
      await this.io.line(r.reply);
      return !this.closed;
    }
    if (r.fields && ('proxy' in r.fields || 'proxy_maybe' in r.fields)) {
      const p = await this.proxy(r.user, r.password, r.fields);
      if (p !== 'local') return p;
    }
    const rec = await this.deps.directory.lookup(r.user);
    if (!rec) {
      this.deps.log.warn(`pop3-login: user ${r.user} passed the passdb but the userdb does not know it`);
      await this.io.line(REPLY_AUTH_FAILED);
      return true;
    }
    if (s.lockSession) {
      if (!(await lockUser(rec.user, s.lockWaitMs ?? 30_000))) {
        await this.io.line("-ERR [IN-USE] Couldn't open INBOX: Timeout while waiting for lock");
        return true;
      }
      this.lockedUser = rec.user;
      if (this.closed) return false;
    }
    const mailUser = await this.deps.store.forUser(rec);
    try {
      this.drop = await Pop3Maildrop.open(mailUser, s.uidlFormat);
    } catch (e) {
      await mailUser.close().catch(() => {});
      if (this.lockedUser) { unlockUser(this.lockedUser); this.lockedUser = undefined; }
      throw e;
    }
    this.userName = rec.user;
    this.deps.log.info(`pop3-login: Login: user=<${rec.user}>, method=${r.mech}, ${this.client()}${this.secure ? ', secured' : ''}, session=<${this.id}>`);
    await this.io.line('+OK Logged in.');
    return true;
  }

  /**
   * The passdb said proxy: log in at the backend (lib-login/login-proxy.ts), forward its reply and
   * relay the connection. 'local' when proxy_maybe points at this server; false ends the loop.
   */
  private async proxy(user: string, password: string, fields: Record<string, string>): Promise<boolean | 'local'> {
    const client = { remoteIp: this.remoteIp, remotePort: this.remotePort, localIp: this.localIp, localPort: this.localPort, sessionId: this.id };
    const unavailable = `-ERR [SYS/TEMP] ${PROXY_FAILURE_MSG}`;
    let dest;
    try {
      dest = proxyDestination('pop3', fields, { user, password }, client);
    } catch (e) {
      this.deps.log.error(`proxy(${user}): ${(e as Error).message}: ${this.client()}, session=<${this.id}>`);
      await this.io.line(unavailable);
      return true;
    }
    if (!dest) return 'local';
    let b;
    try {
      b = await proxyLogin('pop3', dest, client, this.deps.log, user);
    } catch (e) {
      const err = e as ProxyError;
      if (this.closed) return false;
      await this.io.line(err.kind === 'authfailed' ? (err.backendReply ?? REPLY_AUTH_FAILED) : unavailable);
      return true;
    }
    if (this.closed) { b.sock.destroy(); return false; }
    await this.io.line(b.reply);
    this.proxied = true;
    this.sock.setTimeout(0);
    this.sock.removeAllListeners('timeout');   // the login's idle timer: the backend's now
    const rest = this.reader.release();
    void proxySplice(this.sock, rest, b.sock, b.rest, { log: this.deps.log, user, remoteIp: this.remoteIp });
    return false;
  }
}
