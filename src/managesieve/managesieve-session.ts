/**
 * managesieve-session - one ManageSieve connection (RFC 5804) from greeting to close, as
 * Pigeonhole's managesieve-login + managesieve serve it:
 *
 *  - greeting: the capability list, then `OK "<login_greeting>"` (§1.7);
 *  - before login: CAPABILITY, AUTHENTICATE (managesieve-auth.ts), STARTTLS (§2.2: after the
 *    handshake the capabilities are sent again, then `OK "TLS negotiation successful."`), NOOP,
 *    LOGOUT; anything else is `NO "Error in MANAGESIEVE command received by server."` and the
 *    3rd such command ends the connection with `BYE "Too many invalid MANAGESIEVE commands."`;
 *    a line over 4096 bytes ends it with `BYE "Input buffer full, aborting"`;
 *  - after login: the commands of managesieve-commands.ts, CAPABILITY (with MAXREDIRECTS, without
 *    SASL and STARTTLS), LOGOUT (`OK "Logout completed."`), UNAUTHENTICATE (§2.14.1: back to the
 *    non-authenticated state, `OK "Unauthenticate completed."`); 20 protocol errors in a row end
 *    the connection with the same BYE; an argument over managesieve_max_line_length is
 *    `NO "Error in MANAGESIEVE command X: Too long argument."`; a literal over it (other than a
 *    script) ends the connection with `BYE "Literal size too large"`;
 *  - a client must log in within 3 min of connecting, however busy it keeps the connection
 *    (Dovecot's login time-out: a slow client dribbling bytes cannot hold a connection), and
 *    is disconnected after 30 min idle once logged in, both with
 *    `BYE "Disconnected for inactivity."`;
 *  - after every 64 commands read without waiting the session yields, so one client pipelining
 *    thousands of commands delays others by at most one such batch; output waits for the
 *    socket (nothing is queued for a client that does not read);
 *  - after the last reply the session slot is freed at once and the socket lingers briefly
 *    (lib-master/master-session.ts);
 *  - the connection is secure when it is TLS or the client's address is the server's own
 *    (Dovecot's rule), which is what disable_plaintext_auth checks; when plaintext is not allowed
 *    the SASL capability is empty.
 */
import type { Socket } from 'node:net';
import type { UserDirectory, UserRecord } from '../lib-auth/user-directory.ts';
import type { Logger } from '../util/msg.ts';
import { closeAfterLinger, type SessionSlot } from '../lib-master/master-session.ts';
import { parseSieveLocation, SieveLocationError } from '../global/sieve-location.ts';
import { ManageSieveInput, msQuote, readCommand, readSaslResponse, type MsArg } from './managesieve-input.ts';
import { MAX_SASL_RESPONSE, saslAuthenticate, TEXT_AUTH_FAILED, TEXT_PLAINTEXT_DISABLED, type AuthOutcome } from './managesieve-auth.ts';
import { isIP } from 'node:net';
import { CLIENT_MAX_BAD_COMMANDS, holdAuthFailure, LOGIN_MAX_BAD_COMMANDS, LOGIN_MAX_LINE, loginDirectory, loginTrusted, plainAddr as strip, YIELD_EVERY, type AuthPenaltyHook } from '../lib-login/login-common.ts';
import { PROXY_FAILURE_MSG, proxyDestination, proxyLogin, proxySplice, type ProxyError } from '../lib-login/login-proxy.ts';
import { AUTHENTICATED_COMMANDS, noopCommand, scriptLiteral, type MsCommandContext, type MsIo } from './managesieve-commands.ts';
import { SieveFileStorage } from './managesieve-storage.ts';
import type { ManageSieveSettings } from './managesieve-settings.ts';
import { parseDovecotSize } from '../global/dovecot-units.ts';

/** Dovecot login-common: the pre-login input buffer. */
export const MS_LOGIN_MAX_LINE = LOGIN_MAX_LINE;
/** managesieve-login CLIENT_MAX_BAD_COMMANDS. */
export const MS_LOGIN_MAX_BAD_COMMANDS = LOGIN_MAX_BAD_COMMANDS;
/** managesieve CLIENT_MAX_BAD_COMMANDS. */
export const MS_MAX_BAD_COMMANDS = CLIENT_MAX_BAD_COMMANDS;

export interface ManageSieveDeps {
  directory: UserDirectory;
  settings: ManageSieveSettings;
  log: Logger;
  /** The master's auth penalty (ServiceContext.authPenalty). */
  penalty?: AuthPenaltyHook | undefined;
}

export interface ManageSieveSessionOptions {
  tls?: boolean;
  /** Upgrade the plain socket to TLS; unset: STARTTLS is not offered. */
  startTls?: (sock: Socket) => Promise<Socket>;
  slot?: SessionSlot;
}

let sessionCounter = 0;

const LOGIN_COMMANDS = new Set(['CAPABILITY', 'AUTHENTICATE', 'STARTTLS', 'NOOP', 'LOGOUT']);

export class ManageSieveSession {
  private sock: Socket;
  private readonly deps: ManageSieveDeps;
  private readonly o: ManageSieveSessionOptions;
  private readonly input: ManageSieveInput;
  private readonly id: string;
  private user: UserRecord | undefined;
  private ctx: MsCommandContext | undefined;
  private failures = 0;
  private closed = false;
  private bad = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private idleMs: number;
  private loginTimer: NodeJS.Timeout | undefined;
  private readonly onIdle = (): void => {
    this.deps.log.info(`${this.who()}: Disconnected: Inactivity (${this.client()})`);
    void this.io.reply('BYE', 'Disconnected for inactivity.').finally(() => { this.close(); this.sock.destroy(); });
  };

  constructor(sock: Socket, deps: ManageSieveDeps, o: ManageSieveSessionOptions = {}) {
    this.sock = sock;
    this.deps = deps;
    this.o = o;
    this.input = new ManageSieveInput(sock, { pauseAbove: Math.max(65536, deps.settings.maxLineLength) });
    this.id = `${process.pid.toString(36)}${(++sessionCounter).toString(36)}${Date.now().toString(36)}`;
    this.idleMs = 0;
    this.watch(sock);
    this.startLoginTimer();
  }

  /** The pre-login deadline, from the connection (or UNAUTHENTICATE) on. */
  private startLoginTimer(): void {
    clearTimeout(this.loginTimer);
    this.loginTimer = setTimeout(this.onIdle, this.deps.settings.loginTimeoutMs);
    this.loginTimer.unref();
  }

  private watch(sock: Socket): void {
    sock.on('close', () => { this.closed = true; });
    sock.on('error', () => { this.closed = true; });
    sock.on('data', (d: Buffer) => { this.bytesIn += d.length; });
    sock.setTimeout(this.idleMs);
    sock.on('timeout', this.onIdle);
  }

  private get secure(): boolean {
    if (this.o.tls || loginTrusted(this.sock.remoteAddress ?? '', this.deps.settings.trustedNetworks)) return true;
    const r = this.sock.remoteAddress;
    return r !== undefined && r === this.sock.localAddress;
  }

  private get plaintextAllowed(): boolean { return !this.deps.settings.disablePlaintextAuth || this.secure; }

  private who(): string { return this.user ? `managesieve(${this.user.user})<${this.id}>` : 'managesieve-login'; }
  private client(): string { return `rip=${this.forwardedIp ?? (this.sock.remoteAddress || 'local')}, lip=${this.sock.localAddress ?? 'local'}`; }

  /** The client's address a trusted proxy forwarded with XCLIENT (Pigeonhole managesieve-login). */
  private forwardedIp: string | undefined;
  private forwardedPort: number | undefined;

  /** The peer is in login_trusted_networks: it may send XCLIENT. */
  private get trustedPeer(): boolean {
    return loginTrusted(this.sock.remoteAddress ?? '', this.deps.settings.trustedNetworks);
  }

  private async write(data: Buffer | string): Promise<void> {
    if (this.closed || this.sock.destroyed) return;
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    this.bytesOut += b.length;
    if (!this.sock.write(b)) {
      await new Promise<void>((resolve) => {
        const done = () => { this.sock.off('drain', done); this.sock.off('close', done); resolve(); };
        this.sock.on('drain', done);
        this.sock.on('close', done);
      });
    }
  }

  private readonly io: MsIo = {
    reply: (kind, text, code) => this.write(`${kind}${code ? ` (${code})` : ''} ${msQuote(text)}\r\n`),
    raw: (data) => this.write(data),
  };

  private close(): void {
    const sock = this.sock;
    if (!sock.destroyed && !sock.writableEnded) sock.end();
    if (this.o.slot) this.o.slot.end(); else closeAfterLinger(sock);
  }

  private async end(kind: 'OK' | 'BYE', text: string): Promise<void> {
    await this.io.reply(kind, text);
    this.close();
  }

  private capabilities(): string {
    const s = this.deps.settings;
    const lines = [`"IMPLEMENTATION" ${msQuote(s.implementation)}`, `"SIEVE" ${msQuote(s.sieveCapability)}`];
    if (this.user) {
      if (s.maxRedirects > 0) lines.push(`"MAXREDIRECTS" "${s.maxRedirects}"`);
      if (s.notifyCapability) lines.push(`"NOTIFY" ${msQuote(s.notifyCapability)}`);
      lines.push('"UNAUTHENTICATE"');
    } else {
      if (s.notifyCapability) lines.push(`"NOTIFY" ${msQuote(s.notifyCapability)}`);
      lines.push(`"SASL" ${msQuote(this.plaintextAllowed ? s.mechanisms.join(' ') : '')}`);
      if (this.o.startTls && !this.o.tls) lines.push('"STARTTLS"');
      if (this.trustedPeer) lines.push('"XCLIENT"');
    }
    lines.push('"VERSION" "1.0"');
    return lines.map((l) => l + '\r\n').join('');
  }

  private setIdle(ms: number): void {
    this.idleMs = ms;
    this.sock.setTimeout(ms);
  }

  async run(): Promise<void> {
    let handled = 0;
    try {
      await this.write(this.capabilities());
      await this.io.reply('OK', this.deps.settings.greeting);
      for (;;) {
        if (++handled % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
        if (this.closed) break;
        const more = this.user ? await this.authenticatedCommand() : await this.loginCommand();
        if (!more) break;
      }
    } catch (e) {
      this.deps.log.error(`${this.who()}: ${(e as Error).stack ?? String(e)}`);
      await this.end('BYE', 'Internal error occurred. Refer to server log for more information.').catch(() => {});
    } finally {
      clearTimeout(this.loginTimer);
      if (this.user && this.ctx && !this.logged) {
        this.deps.log.info(`${this.who()}: Disconnected: Connection closed ${this.stats()}`);
      }
      if (!this.proxied) this.close();
    }
  }

  private logged = false;

  private stats(): string {
    const st = this.ctx?.stats;
    return `bytes=${this.bytesIn}/${this.bytesOut}${st ? ` put=${st.put}/${st.putBytes} get=${st.get}/${st.getBytes} check=${st.check}/${st.checkBytes} deleted=${st.deleted} renamed=${st.renamed}` : ''}`;
  }

  /** One command before login; false ends the session. */
  private async loginCommand(): Promise<boolean> {
    const r = await readCommand(this.input, { maxLine: MS_LOGIN_MAX_LINE, maxLiteral: MAX_SASL_RESPONSE }, (verb, _i, size) =>
      (size > MAX_SASL_RESPONSE ? 'close' : 'read'));
    if ('eof' in r) return false;
    if ('literalRefused' in r) {
      this.deps.log.info(`managesieve-login: Disconnected: ${r.verb === 'AUTHENTICATE' ? 'Authentication response too large' : 'Literal size too large'} (${this.client()})`);
      this.close();
      this.sock.destroy();
      return false;
    }
    if ('error' in r && r.error === 'tooLong') {
      this.deps.log.info(`managesieve-login: Disconnected: Input buffer full (${this.client()})`);
      await this.end('BYE', 'Input buffer full, aborting');
      return false;
    }
    const known = (LOGIN_COMMANDS.has(r.verb) || (r.verb === 'XCLIENT' && this.trustedPeer)) && !('error' in r);
    if (!known) {
      if (++this.bad >= MS_LOGIN_MAX_BAD_COMMANDS) {
        this.deps.log.info(`managesieve-login: Disconnected: Too many invalid commands. (${this.client()})`);
        await this.end('BYE', 'Too many invalid MANAGESIEVE commands.');
        return false;
      }
      await this.io.reply('NO', 'Error in MANAGESIEVE command received by server.');
      return true;
    }
    this.bad = 0;
    const args = (r as { args: MsArg[] }).args;
    const str = (i: number) => args[i]?.value.toString('latin1');
    switch (r.verb) {
      case 'CAPABILITY':
        await this.write(this.capabilities());
        await this.io.reply('OK', 'Capability completed.');
        return true;
      case 'NOOP':
        await noopCommand(this.fakeCtx(), r.verb, args);
        return true;
      case 'XCLIENT':
        // a proxy in login_trusted_networks forwards its client's address (ADDR= PORT= ...)
        for (const a of args) {
          const kv = a.value.toString('latin1');
          const eq = kv.indexOf('=');
          const k = kv.slice(0, eq).toUpperCase(), v = kv.slice(eq + 1);
          if (k === 'ADDR' && isIP(v)) this.forwardedIp = v;
          else if (k === 'PORT' && /^\d{1,5}$/.test(v) && Number(v) > 0 && Number(v) < 65536) this.forwardedPort = Number(v);
        }
        await this.io.reply('OK', 'Updated');
        return true;
      case 'LOGOUT':
        await this.end('OK', 'Logout completed.');
        return false;
      case 'STARTTLS': {
        if (!this.o.startTls || this.o.tls) {
          await this.io.reply('NO', this.o.tls ? 'TLS is already active.' : "TLS support isn't enabled.");
          return true;
        }
        await this.io.reply('OK', 'Begin TLS negotiation now.');
        this.sock.setTimeout(0);
        this.sock.off('timeout', this.onIdle);
        const tlsSock = await this.o.startTls(this.sock);
        this.sock = tlsSock;
        this.o.tls = true;
        this.input.switchTo(tlsSock);
        this.watch(tlsSock);
        await this.write(this.capabilities());
        await this.io.reply('OK', 'TLS negotiation successful.');
        return true;
      }
      case 'AUTHENTICATE': {
        if (args.length < 1 || args.length > 2 || args.some((a) => a.kind !== 'string')) {
          await this.io.reply('NO', 'Error in MANAGESIEVE command received by server.');
          return true;
        }
        if (!this.plaintextAllowed) {
          this.deps.log.info(`managesieve-login: Aborted login (tried to use disallowed plaintext auth): user=<>, ${this.client()}`);
          await this.io.reply('NO', TEXT_PLAINTEXT_DISABLED, 'ENCRYPT-NEEDED');
          return true;
        }
        const out = await saslAuthenticate(this.authDirectory(), this.deps.settings.mechanisms, str(0)!, str(1), async (challenge) => {
          await this.write(`${msQuote(challenge)}\r\n`);
          return readSaslResponse(this.input, MAX_SASL_RESPONSE);
        }, {
          service: 'sieve', remoteIp: this.forwardedIp ?? strip(this.sock.remoteAddress), localIp: strip(this.sock.localAddress),
          remotePort: this.forwardedPort ?? this.sock.remotePort, localPort: this.sock.localPort,
        });
        return this.finishAuth(out);
      }
    }
    return true;
  }

  /** A command context for NOOP before login (it uses only io). */
  private fakeCtx(): MsCommandContext {
    return { io: this.io } as MsCommandContext;
  }

  private authDirectory(): UserDirectory {
    return loginDirectory(this.deps.directory, this.deps.penalty, this.forwardedIp ?? this.sock.remoteAddress ?? '');
  }

  private async finishAuth(r: AuthOutcome): Promise<boolean> {
    const s = this.deps.settings;
    if (!r.ok) {
      if (r.close) {
        if (r.logReason !== 'connection lost') this.deps.log.info(`managesieve-login: Disconnected: ${r.logReason} (${this.client()})`);
        this.close();
        this.sock.destroy();
        return false;
      }
      if (r.failure) {
        this.failures++;
        await holdAuthFailure(s.authFailureDelayMs, this.failures, this.deps.penalty);
      }
      this.deps.log.info(`managesieve-login: Aborted login (auth failed, ${this.failures} attempts): ${this.client()}, reason=${r.logReason}`);
      await this.io.reply('NO', r.text, r.code);
      return !this.closed;
    }
    if (r.fields && ('proxy' in r.fields || 'proxy_maybe' in r.fields)) {
      const p = await this.proxy(r.user, r.password, r.fields);
      if (p !== 'local') return p;
    }
    let rec: UserRecord | undefined;
    try {
      rec = await this.deps.directory.lookup(r.user);
    } catch (e) {
      this.deps.log.warn(`managesieve-login: userdb lookup of ${r.user}: ${(e as Error).message}`);
      await this.io.reply('NO', 'Temporary authentication failure.', 'TRYLATER');
      return true;
    }
    if (!rec) {
      this.deps.log.warn(`managesieve-login: user ${r.user} passed the passdb but the userdb does not know it`);
      await this.io.reply('NO', 'Authentication failed.');
      return true;
    }
    let storage: SieveFileStorage;
    let quota: MsCommandContext['quota'];
    try {
      const loc = parseSieveLocation(rec.extra?.sieve ?? s.location, rec.user, rec.home);
      if (!loc.active) {
        throw new SieveLocationError(`plugin { sieve } = ${rec.extra?.sieve ?? s.location}: names a single script, but ManageSieve needs a script directory and an active link (e.g. file:~/sieve;active=~/.dovecot.sieve)`);
      }
      storage = new SieveFileStorage(loc, { uid: rec.uid, gid: rec.gid });
      const ex = rec.extra ?? {};
      quota = {
        maxScripts: ex.sieve_quota_max_scripts !== undefined ? Number(ex.sieve_quota_max_scripts) || 0 : s.quotaMaxScripts,
        maxStorage: ex.sieve_quota_max_storage !== undefined ? parseDovecotSize(ex.sieve_quota_max_storage, 'sieve_quota_max_storage') : s.quotaMaxStorage,
      };
    } catch (e) {
      const msg = e instanceof SieveLocationError ? e.message : (e as Error).message;
      this.deps.log.error(`managesieve(${rec.user}): Failed to open Sieve storage: ${msg}`);
      await this.io.reply('NO', 'Failed to open Sieve storage.', 'TRYLATER');
      return true;
    }
    this.user = rec;
    this.ctx = {
      io: this.io, storage, settings: s, quota,
      stats: { put: 0, putBytes: 0, get: 0, getBytes: 0, check: 0, checkBytes: 0, deleted: 0, renamed: 0 },
    };
    this.bad = 0;
    clearTimeout(this.loginTimer);
    this.setIdle(s.idleTimeoutMs);
    this.deps.log.info(`managesieve-login: Login: user=<${rec.user}>, method=${r.mech}, ${this.client()}${this.secure ? ', secured' : ''}, session=<${this.id}>`);
    await this.io.reply('OK', 'Logged in.');
    return true;
  }

  /** The session was handed to a backend (lib-login/login-proxy.ts). */
  private proxied = false;

  /**
   * The passdb said proxy: log in at the backend, forward its OK and relay the connection
   * (Pigeonhole's managesieve-proxy). 'local' when proxy_maybe points here; false ends the loop.
   */
  private async proxy(user: string, password: string, fields: Record<string, string>): Promise<boolean | 'local'> {
    const client = {
      remoteIp: this.forwardedIp ?? strip(this.sock.remoteAddress), remotePort: this.forwardedPort ?? this.sock.remotePort ?? 0,
      localIp: strip(this.sock.localAddress), localPort: this.sock.localPort ?? 0, sessionId: this.id,
    };
    let dest;
    try {
      dest = proxyDestination('sieve', fields, { user, password }, client);
    } catch (e) {
      this.deps.log.error(`proxy(${user}): ${(e as Error).message}: ${this.client()}, session=<${this.id}>`);
      await this.io.reply('NO', PROXY_FAILURE_MSG, 'TRYLATER');
      return true;
    }
    if (!dest) return 'local';
    let b;
    try {
      b = await proxyLogin('sieve', dest, client, this.deps.log, user);
    } catch (e) {
      const err = e as ProxyError;
      if (this.closed) return false;
      if (err.kind === 'authfailed' && err.backendReply) await this.write(`${err.backendReply}\r\n`);
      else if (err.kind === 'authfailed') await this.io.reply('NO', TEXT_AUTH_FAILED);
      else await this.io.reply('NO', PROXY_FAILURE_MSG, 'TRYLATER');
      return true;
    }
    if (this.closed) { b.sock.destroy(); return false; }
    await this.write(`${b.reply}\r\n`);
    this.proxied = true;
    clearTimeout(this.loginTimer);
    this.sock.setTimeout(0);
    this.sock.off('timeout', this.onIdle);
    const rest = this.input.release();
    void proxySplice(this.sock, rest, b.sock, b.rest, { log: this.deps.log, user, remoteIp: client.remoteIp });
    return false;
  }

  /** One command after login; false ends the session. */
  private async authenticatedCommand(): Promise<boolean> {
    const ctx = this.ctx!;
    const s = this.deps.settings;
    const r = await readCommand(this.input, { maxLine: s.maxLineLength, maxLiteral: s.maxLineLength }, async (verb, index, size, args) => {
      const d = await scriptLiteral(ctx, verb, index, size, args);
      if (d !== undefined) return d;
      return size > s.maxLineLength ? 'close' : 'read';
    });
    if ('eof' in r) return false;
    if ('literalRefused' in r) {
      if (r.literalRefused === 'skip') return true; // answered by scriptLiteral()
      this.deps.log.info(`${this.who()}: Disconnected: Literal size too large ${this.stats()}`);
      this.logged = true;
      await this.end('BYE', 'Literal size too large');
      return false;
    }
    let protocolError: boolean;
    if ('error' in r) {
      await this.io.reply('NO', `Error in MANAGESIEVE command ${r.verb}: ${r.message}`);
      protocolError = true;
    } else if (r.verb === 'LOGOUT') {
      this.deps.log.info(`${this.who()}: Disconnected: Logged out ${this.stats()}`);
      this.logged = true;
      await this.end('OK', 'Logout completed.');
      return false;
    } else if (r.verb === 'CAPABILITY') {
      await this.write(this.capabilities());
      await this.io.reply('OK', 'Capability completed.');
      protocolError = false;
    } else if (r.verb === 'UNAUTHENTICATE') {
      if (r.args.length > 0) {
        await this.io.reply('NO', `Error in MANAGESIEVE command ${r.verb}: Too many arguments.`);
        protocolError = true;
      } else {
        this.deps.log.info(`${this.who()}: Unauthenticated ${this.stats()}`);
        this.user = undefined;
        this.ctx = undefined;
        this.failures = 0;
        this.bad = 0;
        this.setIdle(0);
        this.startLoginTimer();
        await this.io.reply('OK', 'Unauthenticate completed.');
        return true;
      }
    } else {
      const cmd = AUTHENTICATED_COMMANDS.get(r.verb);
      if (!cmd) {
        await this.io.reply('NO', `Error in MANAGESIEVE command ${r.verb}: Unknown command.`);
        protocolError = true;
      } else {
        protocolError = await cmd(ctx, r.verb, r.args);
      }
    }
    if (!protocolError) { this.bad = 0; return true; }
    if (++this.bad >= MS_MAX_BAD_COMMANDS) {
      this.deps.log.info(`${this.who()}: Disconnected: Too many invalid commands. ${this.stats()}`);
      this.logged = true;
      await this.end('BYE', 'Too many invalid MANAGESIEVE commands.');
      return false;
    }
    return true;
  }
}
