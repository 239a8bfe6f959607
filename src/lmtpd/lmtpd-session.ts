/**
 * lmtpd-session - one LMTP connection (RFC 2033) as Dovecot 2.3's lmtp serves it: final
 * delivery into the mailbox store of the users the shared directory knows.
 *
 *   220 HOST <login_greeting>
 *   LHLO → 250-HOST 250-8BITMIME 250-ENHANCEDSTATUSCODES 250-PIPELINING [250 STARTTLS]
 *   STARTTLS → 220 2.0.0 Begin TLS negotiation now. | 502 5.5.1 TLS is already active.
 *          | 502 5.5.1 TLS support isn't enabled. | 501 5.5.4 Invalid parameters
 *   MAIL → 250 2.1.0 OK          RCPT → 250 2.1.5 OK | 550 5.1.1 <a> User doesn't exist: user
 *   DATA → 354 OK, then ONE reply per accepted recipient, in RCPT order (RFC 2033 §4.2):
 *          250 2.0.0 <a> SESSION-ID Saved | 552 5.2.2 <a> Quota exceeded (mailbox for user is full)
 *   RSET/NOOP → 250 2.0.0 OK     VRFY → 252 2.3.3 Try RCPT instead (no argument: 501 5.5.4 Invalid parameters)
 *   QUIT → 221 2.0.0 Bye
 *   503 5.5.0 MAIL needed first / No valid recipients, 555 5.5.4 Unsupported parameters,
 *   500 5.5.1 Unknown command (HELO and EHLO too: LMTP has only LHLO, RFC 2033 §4.1)
 *
 * Per recipient (Dovecot lmtp-local.c): the user is looked up with the detail removed at the
 * first recipient_delimiter character; with lmtp_save_to_detail_mailbox the detail names the
 * target mailbox when that mailbox exists (names are validated by lib-storage: `..`, `/`, NUL
 * and the like can never leave the user's mail root; an invalid or missing one means INBOX).
 * Recipients resolving to the same user and mailbox are delivered once and share the first
 * one's reply (duplicate suppression). Every copy gets `Return-Path:`, `Delivered-To:` and
 * Dovecot's `Received:` header; the 250 is sent only after lib-storage has fsynced the file and
 * its directory. One recipient's failure never affects another's reply.
 *
 * STARTTLS (RFC 3207) as Dovecot 2.3's lmtp offers it: advertised when dovecot.conf has
 * `ssl = yes|required` and an ssl_cert (master_service_ssl_is_enabled()), and not on a connection
 * that is already TLS. After the 220, plaintext the client pipelined behind STARTTLS is thrown
 * away (the CVE-2011-0411 command-injection class) and everything learned before (LHLO, the
 * transaction) is forgotten (RFC 3207 §4.2). A handshake that fails or stalls ends the session.
 *
 * Bad commands as Dovecot 2.3.19 (measured, test/interop/lmtp-bad-commands.test.ts): replies
 * with a 5.5.x status (unknown command, bad parameters, bad sequence, line too long) count; a
 * 2xx/3xx reply starts the count again; the 11th in a row is answered
 * `421 4.7.0 HOST Too many invalid commands.` instead, and the connection is closed.
 *
 * After QUIT's 221 (or any end) the session slot is freed at once and the socket closed after a
 * short linger for the reply (SessionSlot.end(), lib-master/master-session.ts), even when the
 * client keeps its side open.
 *
 * CHUNKING/BDAT is not offered (Postfix's lmtp client does not use it).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { messageDateCreate } from '../lib-mail/mail-date.ts';
import type { UserDirectory, UserRecord } from '../lib-auth/user-directory.ts';
import { DataDecoder } from '../lib-smtp/smtp-data-stream.ts';
import { AddressSyntaxError, parsePathArg, quoteAddress } from '../lib-smtp/smtp-address.ts';
import { MAIL_ERRSTR_CRITICAL_MSG, MailError, type MailStore } from '../lib-storage/mail-storage.ts';
import type { Logger } from '../util/msg.ts';
import { LineReader } from '../util/line-reader.ts';
import { closeAfterLinger, type SessionSlot } from '../lib-master/master-session.ts';
import type { LmtpdSettings } from './lmtpd-settings.ts';
import { LmtpSpool } from './lmtpd-spool.ts';
import { startServerTls, describeTls, type TlsContextSource } from '../lib-tls/tls-server.ts';
import { quarantineOf } from '../lib-authres/authres-header.ts';
import { deliverWithSieve, sieveScripts, type SieveSend } from '../lib-storage/mail-deliver.ts';

/** Longest command line (Dovecot's smtp-server limit is of this order; RFC 5321 asks 512). */
export const LMTP_MAX_LINE = 4096;
/** Dovecot lmtp's smtp-server max_bad_commands: the 11th protocol error in a row ends the session. */
export const LMTP_MAX_BAD_COMMANDS = 10;

export interface LmtpdDeps {
  directory: UserDirectory;
  store: MailStore;
  settings: LmtpdSettings;
  log: Logger;
  /** STARTTLS certificate (lib-tls); undefined = not offered. */
  tls?: TlsContextSource;
  /** Handshake time limit (ms); default 60 s. */
  tlsHandshakeMs?: number;
  /** Where Sieve's redirects and replies are queued (cleanup); undefined: they are dropped and logged. */
  submit?: (m: SieveSend) => Promise<void>;
}

interface Rcpt {
  /** As the client wrote it (for the replies). */
  address: string;
  rec: UserRecord;
  detail: string;
  /** Recipient id for the log and the 250 reply (Dovecot's SESSION:Tn:Rn). */
  id: string;
  /** Index of the first recipient with the same user+detail, or -1. */
  dupOf: number;
}

/** RFC 5322 date as Dovecot writes it in Received: (zero-padded day, no zone comment), cached per second. */
let dateCache = { sec: -1, text: '' };
function receivedDate(): string {
  const now = Date.now();
  const sec = Math.floor(now / 1000);
  if (sec !== dateCache.sec) dateCache = { sec, text: messageDateCreate(new Date(now)) };
  return dateCache.text;
}

function sessionId(): string {
  return randomBytes(16).toString('base64').replace(/=+$/, '');
}

/** user+detail@domain → [user@domain, detail], split at the first delimiter character. */
export function splitDetail(address: string, delimiters: string): [string, string] {
  const at = address.lastIndexOf('@');
  const local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? '' : address.slice(at);
  if (delimiters === '') return [address, ''];
  let i = -1;
  for (const d of delimiters) {
    const j = local.indexOf(d);
    if (j > 0 && (i < 0 || j < i)) i = j;
  }
  if (i < 0) return [address, ''];
  return [local.slice(0, i) + domain, local.slice(i + 1)];
}

/** Run at most `n` of `jobs` at once; results in order. */
async function pool<T>(n: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => { while (next < jobs.length) { const i = next++; out[i] = await jobs[i]!(); } };
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
  return out;
}

export class LmtpSession {
  private sock: Socket;
  private readonly deps: LmtpdDeps;
  private reader: LineReader;
  /** The connection is TLS (implicit, or after STARTTLS). */
  private secured: boolean;
  private readonly base = sessionId();
  private helo: string | undefined;
  private sender: string | undefined;
  private rcpts: Rcpt[] = [];
  private rcptCount = 0;
  private tx = 0;
  private closed = false;
  /** Protocol errors in a row (LMTP_MAX_BAD_COMMANDS). */
  private bad = 0;

  /** The master's session slot (serveSessions); without one the socket lingers on its own. */
  private readonly slot: SessionSlot | undefined;

  constructor(sock: Socket, deps: LmtpdDeps, o: { tls?: boolean; slot?: SessionSlot } = {}) {
    this.sock = sock;
    this.slot = o.slot;
    this.secured = o.tls ?? false;
    this.deps = deps;
    this.reader = new LineReader(sock, LMTP_MAX_LINE);
    sock.on('close', () => { this.closed = true; });
    sock.on('error', () => { this.closed = true; });
  }

  /** Replies not yet sent: pipelined commands are answered in one write (RFC 2920 §3.1). */
  private out: string[] = [];

  private write(text: string): void {
    this.out.push(text);
  }

  private flush(): void {
    if (this.out.length === 0) return;
    const data = this.out.join('\r\n') + '\r\n';
    this.out = [];
    if (!this.closed && !this.sock.destroyed) this.sock.write(data);
  }

  private drained(): Promise<void> {
    const sock = this.sock;
    return new Promise<void>((resolve) => {
      const done = () => { sock.off('drain', done); sock.off('close', done); resolve(); };
      sock.on('drain', done);
      sock.on('close', done);
    });
  }

  private get txId(): string { return this.tx > 1 ? `${this.base}:T${this.tx}` : this.base; }

  private reset(): void { this.sender = undefined; this.rcpts = []; this.rcptCount = 0; }

  async run(): Promise<void> {
    const s = this.deps.settings;
    const log = this.deps.log;
    const peer = this.sock.remoteAddress ?? 'local';
    this.armIdle();
    log.info(`lmtp: Connect from ${peer}`);
    this.write(`220 ${s.hostname} ${s.greeting}`);
    try {
      for (;;) {
        if (!this.reader.hasLine() || this.out.length >= 128) {
          this.flush();
          // A client that pipelines without reading our replies waits for us, not our memory.
          if (this.sock.writableNeedDrain) await this.drained();
        }
        const line = await this.reader.next();
        if (line === undefined || this.closed) break;
        if (typeof line !== 'string') this.write('500 5.5.2 Line too long');
        else {
          const sp = line.indexOf(' ');
          const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
          const args = sp < 0 ? '' : line.slice(sp + 1);
          if (verb === 'QUIT') { this.write('221 2.0.0 Bye'); break; }
          await this.command(verb, args);
        }
        // Dovecot's smtp-server: protocol errors (5.5.x) in a row; the 11th is answered 421.
        const last = this.out[this.out.length - 1];
        if (last === undefined) continue;
        if (/^5\d\d 5\.5\./.test(last)) {
          if (++this.bad > LMTP_MAX_BAD_COMMANDS) {
            this.out[this.out.length - 1] = `421 4.7.0 ${s.hostname} Too many invalid commands.`;
            log.info(`lmtp: Disconnect from ${peer}: Too many invalid commands.`);
            break;
          }
        } else if (last[0] === '2' || last[0] === '3') this.bad = 0;
      }
    } catch (e) {
      log.error(`lmtp<${this.base}>: ${(e as Error).stack ?? String(e)}`);
      this.write(`421 4.3.0 ${s.hostname} ${MAIL_ERRSTR_CRITICAL_MSG}`);
    } finally {
      this.flush();
      log.info(`lmtp: Disconnect from ${peer}`);
      // Free the slot now; the socket lingers briefly for the last reply (lib-master/master-session.ts).
      if (!this.sock.destroyed && !this.sock.writableEnded) this.sock.end();
      if (this.slot) this.slot.end(); else closeAfterLinger(this.sock);
    }
  }

  private async command(verb: string, args: string): Promise<void> {
    switch (verb) {
      case 'LHLO':
        if (args.trim() === '') { this.write('501 5.5.4 Missing hostname'); return; }
        this.helo = args.trim();
        this.reset();
        this.write([`250-${this.deps.settings.hostname}`, '250-8BITMIME', '250-ENHANCEDSTATUSCODES',
          this.deps.tls && !this.secured ? '250-PIPELINING\r\n250 STARTTLS' : '250 PIPELINING'].join('\r\n'));
        return;
      case 'STARTTLS': return this.starttls(args);
      case 'MAIL': return this.mail(args);
      case 'RCPT': return this.rcpt(args);
      case 'DATA': return this.data();
      case 'RSET': this.reset(); this.write('250 2.0.0 OK'); return;
      case 'NOOP': this.write('250 2.0.0 OK'); return;
      case 'VRFY': this.write(args.trim() === '' ? '501 5.5.4 Invalid parameters' : '252 2.3.3 Try RCPT instead'); return;
      default: this.write('500 5.5.1 Unknown command');
    }
  }

  /** Dovecot smtp-server-cmd-starttls.c texts; see the header. */
  private async starttls(args: string): Promise<void> {
    if (this.secured) { this.write('502 5.5.1 TLS is already active.'); return; }
    if (!this.deps.tls) { this.write("502 5.5.1 TLS support isn't enabled."); return; }
    if (args.trim() !== '') { this.write('501 5.5.4 Invalid parameters'); return; }
    this.write('220 2.0.0 Begin TLS negotiation now.');
    this.flush();
    const log = this.deps.log;
    const peer = this.sock.remoteAddress ?? 'local';
    if (this.reader.hasLine()) {
      log.warn(`lmtp: ${peer}: discarding plaintext pipelined after STARTTLS (command injection attempt?)`);
    }
    const raw = this.sock;
    raw.setTimeout(0);
    let t;
    try {
      t = await startServerTls(raw, this.deps.tls, this.deps.tlsHandshakeMs ?? 60_000);
    } catch (e) {
      log.info(`lmtp: ${peer}: TLS handshaking failed: ${(e as Error).message}`);
      this.closed = true;
      raw.destroy();
      return;
    }
    // A new reader on the TLS socket: whatever the old one buffered (plaintext) is dropped.
    this.sock = t;
    this.reader = new LineReader(t, LMTP_MAX_LINE);
    this.secured = true;
    t.on('close', () => { this.closed = true; });
    t.on('error', () => { this.closed = true; });
    this.armIdle();
    log.info(`lmtp: ${peer}: TLS connection established: ${describeTls(t)}`);
    this.helo = undefined;
    this.reset();
  }

  private armIdle(): void {
    const s = this.deps.settings;
    this.sock.setTimeout(s.idleTimeoutMs, () => {
      this.write(`421 4.4.2 ${s.hostname} Disconnected for inactivity`);
      this.flush();
      this.sock.end();
      this.sock.destroy();
    });
  }

  private mail(args: string): void {
    if (this.sender !== undefined) { this.write('503 5.5.1 MAIL already given'); return; }
    if (!/^FROM:/i.test(args)) { this.write('501 5.5.4 Invalid parameters'); return; }
    let p;
    try {
      p = parsePathArg(args.slice(5), { allowNull: true });
    } catch (e) {
      if (e instanceof AddressSyntaxError) { this.write(`501 5.5.4 Invalid FROM: ${e.message}`); return; }
      throw e;
    }
    for (const [k, v] of p.params) {
      // RFC 6152 BODY, RFC 1870 SIZE, RFC 6531 SMTPUTF8; anything else as Dovecot.
      const ok = (k === 'BODY' && typeof v === 'string' && /^(7BIT|8BITMIME|BINARYMIME)$/i.test(v))
        || (k === 'SIZE' && typeof v === 'string' && /^\d{1,15}$/.test(v)) || k === 'SMTPUTF8';
      if (!ok) { this.write('555 5.5.4 Unsupported parameters'); return; }
      if (k === 'SIZE' && Number(v) > this.deps.settings.maxMessageSize) { this.write('552 5.3.4 Message too large'); return; }
    }
    this.sender = p.address;
    this.tx++;
    this.write('250 2.1.0 OK');
  }

  private async rcpt(args: string): Promise<void> {
    const s = this.deps.settings;
    if (this.sender === undefined) { this.write('503 5.5.0 MAIL needed first'); return; }
    if (!/^TO:/i.test(args)) { this.write('501 5.5.4 Invalid parameters'); return; }
    let p;
    try {
      p = parsePathArg(args.slice(3), { allowNull: false });
    } catch (e) {
      if (e instanceof AddressSyntaxError) { this.write(`501 5.5.4 Invalid TO: ${e.message}`); return; }
      throw e;
    }
    for (const k of p.params.keys()) {
      if (k !== 'ORCPT' && k !== 'NOTIFY') { this.write('555 5.5.4 Unsupported parameters'); return; }
    }
    this.rcptCount++;
    const q = `<${quoteAddress(p.address)}>`;
    if (this.rcpts.length >= s.maxRecipients) { this.write('452 4.5.3 Too many recipients'); return; }
    const [user, detail] = splitDetail(p.address, s.recipientDelimiter);
    let rec: UserRecord | undefined;
    try {
      rec = await this.deps.directory.lookup(user);
    } catch (e) {
      this.deps.log.error(`lmtp<${this.txId}>: user directory lookup of ${user}: ${(e as Error).message}`);
      this.write(`451 4.3.0 ${q} Temporary internal error`);
      return;
    }
    if (!rec) { this.write(`550 5.1.1 ${q} User doesn't exist: ${user}`); return; }
    if (s.rcptCheckQuota) {
      const m = await this.deps.store.forUser(rec);
      try {
        const qu = await m.quota();
        if ((qu.limitBytes !== undefined && qu.bytes >= qu.limitBytes) || (qu.limitMessages !== undefined && qu.messages >= qu.limitMessages)) {
          this.write(`${s.quotaFullTempfail ? '452 4.2.2' : '552 5.2.2'} ${q} Quota exceeded (mailbox for user is full)`);
          return;
        }
      } finally { await m.close().catch(() => {}); }
    }
    const key = `${rec.user}\0${s.saveToDetailMailbox ? detail : ''}`;
    const dupOf = this.rcpts.findIndex((r) => `${r.rec.user}\0${s.saveToDetailMailbox ? r.detail : ''}` === key);
    const id = dupOf >= 0 ? this.rcpts[dupOf]!.id : (this.rcptCount > 1 ? `${this.txId}:R${this.rcptCount}` : this.txId);
    this.rcpts.push({ address: p.address, rec, detail, id, dupOf });
    this.write('250 2.1.5 OK');
  }

  private async data(): Promise<void> {
    const s = this.deps.settings;
    if (this.sender === undefined) { this.write('503 5.5.0 MAIL needed first'); return; }
    if (this.rcpts.length === 0) { this.write('503 5.5.0 No valid recipients'); return; }
    this.write('354 OK');
    this.flush();
    // The message goes to a spool with a fixed memory window (Dovecot: mail_temp_dir past
    // 128 KiB); past maxMessageSize the rest is read and dropped.
    const spool = new LmtpSpool(s.tempDir);
    let tooBig = false;
    const dec = new DataDecoder({
      forbidBareLf: false,
      out: (b) => {
        if (tooBig) return;
        if (spool.size + b.length > s.maxMessageSize) { tooBig = true; return; }
        spool.push(b);
      },
    });
    const sock = this.sock;
    spool.onDrain = () => { if (sock.isPaused()) sock.resume(); };
    await new Promise<void>((resolve) => {
      const onClose = () => resolve();
      sock.once('close', onClose);
      this.reader.startRaw((chunk) => {
        const used = dec.feed(chunk);
        if (dec.done) {
          sock.off('close', onClose);
          this.reader.endRaw(chunk.subarray(used));
          resolve();
        } else if (spool.full) sock.pause();
      });
    });
    spool.onDrain = undefined;
    if (!dec.done) { await spool.close(); return; } // connection lost in DATA: nothing delivered
    const rcpts = this.rcpts;
    const sender = this.sender;
    this.reset();
    if (tooBig) {
      await spool.close();
      for (const r of rcpts) this.write(`552 5.3.4 <${quoteAddress(r.address)}> Message too large`);
      return;
    }
    try {
      await spool.finish();
    } catch (e) {
      await spool.close();
      this.deps.log.error(`lmtp<${this.txId}>: write(${s.tempDir}/dovecot.lmtp.*) failed: ${(e as Error).message}`);
      for (const r of rcpts) this.write(`451 4.3.0 <${quoteAddress(r.address)}> Temporary internal failure`);
      return;
    }
    try {
      await this.deliverAll(rcpts, sender, spool);
    } finally {
      await spool.close();
    }
  }

  private async deliverAll(rcpts: Rcpt[], sender: string, spool: LmtpSpool): Promise<void> {
    const s = this.deps.settings;
    const body = spool.inMemory() ?? spool;
    // Sieve reads the whole message: a spooled one is read once for every recipient of the transaction.
    let full: Promise<Buffer> | undefined;
    const whole = (): Promise<Buffer> => (full ??= Buffer.isBuffer(body) ? Promise.resolve(body) : collect(body.chunks()).then((b) => Buffer.concat(b)));
    const head = spool.head;
    const msgid = /^message-id:[ \t]*(.*)$/im.exec(head.toString('latin1').split(/\n\n/)[0] ?? '')?.[1]?.trim() ?? 'unspecified';
    // Different users in parallel, one user's copies one after the other (like Dovecot's
    // lmtp_user_concurrency_limit, and so a new user's INBOX is created once).
    const perUser = new Map<string, number[]>();
    rcpts.forEach((r, i) => {
      if (r.dupOf >= 0 && r.dupOf !== i) return;
      const l = perUser.get(r.rec.user);
      if (l) l.push(i); else perUser.set(r.rec.user, [i]);
    });
    const replies: (string | undefined)[] = new Array(rcpts.length);
    await pool(s.deliveryConcurrency, [...perUser.values()].map((idx) => async () => {
      for (const i of idx) replies[i] = await this.deliverOne(rcpts[i]!, sender, body, msgid, whole);
    }));
    // One reply per RCPT that got 250, in RCPT order (RFC 2033 §4.2); duplicates repeat the first one's.
    rcpts.forEach((r, i) => { this.write(replies[r.dupOf >= 0 ? r.dupOf : i]!.replace('\u0000', `<${quoteAddress(r.address)}>`)); });
  }

  /** Deliver one copy; the reply has \0 where the recipient address goes. */
  private async deliverOne(r: Rcpt, sender: string, body: Buffer | LmtpSpool, msgid: string, whole: () => Promise<Buffer>): Promise<string> {
    const s = this.deps.settings;
    const log = this.deps.log;
    const hdr = [`Return-Path: <${sender}>`, `Delivered-To: ${r.address}`];
    if (s.addReceivedHeader) {
      const from = this.sock.remoteAddress ? `${this.helo ?? 'unknown'} ([${this.sock.remoteAddress.replace(/^::ffff:/, '')}])` : (this.helo ?? 'unknown');
      hdr.push(`Received: from ${from}\n\tby ${s.hostname} with LMTP\n\tid ${r.id}\n\t(envelope-from <${sender}>)\n\tfor <${r.address}>; ${receivedDate()}`);
    }
    const prefix = Buffer.from(hdr.join('\n') + '\n');
    // A small message as one buffer (as ever); a spooled one streamed from the file, each
    // recipient reading its own copy: the same bytes either way.
    const content = Buffer.isBuffer(body) ? Buffer.concat([prefix, body]) : (async function* () { yield prefix; yield* body.chunks(); })();
    let user;
    try {
      user = await this.deps.store.forUser(r.rec);
      let box = 'INBOX';
      if (s.saveToDetailMailbox && r.detail !== '') {
        // An invalid name (PARAMS) or a missing mailbox means INBOX, as Dovecot does.
        if (await user.exists(r.detail).catch(() => false)) box = r.detail;
      }
      // DMARC p=quarantine (docs/authres.md): the \Junk mailbox, created when missing.
      if (s.authservId && quarantineOf(Buffer.isBuffer(body) ? body : body.head, s.authservId)) {
        box = s.junkMailbox;
        if (!(await user.exists(box).catch(() => false))) {
          await user.create(box).catch((e: unknown) => { if (!(e instanceof MailError) || e.code !== 'EXISTS') throw e; });
          await user.setSubscribed(box, true).catch(() => {});
        }
      }
      // Only a user with something for Sieve to do costs a copy of the message in memory.
      const loaded = s.sieve.enabled ? sieveScripts(s.sieve, r.rec) : undefined;
      if (loaded) {
        const raw = Buffer.concat([prefix, await whole()]);
        const res = await deliverWithSieve(user, {
          settings: s.sieve, rec: r.rec, loaded, envelope: { from: sender, to: r.address }, content: raw,
          ...(this.deps.submit ? { submit: this.deps.submit } : {}),
          log: { info: (m) => log.info(`lmtp(${r.rec.user})<${r.id}>: ${m}`), warn: (m) => log.warn(`lmtp(${r.rec.user})<${r.id}>: ${m}`), error: (m) => log.error(`lmtp(${r.rec.user})<${r.id}>: ${m}`) },
          ...(box !== 'INBOX' ? { defaultMailbox: box } : {}),
          canRejectInProtocol: true,
          environment: { 'remote-ip': (this.sock.remoteAddress ?? '').replace(/^::ffff:/, ''), 'remote-host': this.helo ?? '' },
        });
        if (res.protocolReject !== undefined) return `550 5.7.1 \u0000 ${res.protocolReject}`;
        log.info(`lmtp(${r.rec.user})<${r.id}>: msgid=${msgid}: ${res.stored.length ? `saved mail to ${res.stored.join(', ')}` : 'sieve: no mailbox stored'}`);
        return `250 2.0.0 \u0000 ${r.id} Saved`;
      }
      await user.deliver(box, content, { postSession: true });
      log.info(`lmtp(${r.rec.user})<${r.id}>: msgid=${msgid}: saved mail to ${box}`);
      return `250 2.0.0 \u0000 ${r.id} Saved`;
    } catch (e) {
      if (e instanceof MailError && e.code === 'NOQUOTA') {
        log.info(`lmtp(${r.rec.user})<${r.id}>: msgid=${msgid}: save failed to INBOX: ${e.message}`);
        return `${s.quotaFullTempfail ? '452 4.2.2' : '552 5.2.2'} \u0000 ${e.message}`;
      }
      if (e instanceof MailError && e.code === 'TOOBIG') return '552 5.3.4 \u0000 Message too large';
      log.error(`lmtp(${r.rec.user})<${r.id}>: msgid=${msgid}: save failed: ${(e as Error).message}${e instanceof MailError && e.detail ? ` (${e.detail})` : ''}`);
      return `451 4.2.0 \u0000 ${MAIL_ERRSTR_CRITICAL_MSG}`;
    } finally {
      await user?.close().catch(() => {});
    }
  }
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(Buffer.from(c));
  return out;
}
