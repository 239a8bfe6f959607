/**
 * smtpd-milter - smtpd_milters in an SMTP session (Postfix smtpd.c with smtpd_milter.c,
 * MILTER_README): the session's connections to the milters, the events of the SMTP stages and
 * the macros they carry, and what the milters' replies do to the dialogue.
 *
 * DESCRIPTION
 *   Placement. Postfix's smtpd opens the milter connections, sends CONNECT, HELO, MAIL, RCPT,
 *   DATA and unknown commands, then hands the open connections to cleanup(8), which sends the
 *   message (headers, body, end of message) as it will be queued and applies the edits.
 *   Postern runs smtpd and cleanup in one process: the session owns its Milters
 *   (src/lib-milter/milters.ts) and passes them to cleanup in the cleanup request
 *   (CleanupOpenOptions.milters, global/cleanup-client.ts, contract global/milter-message.ts).
 *   A session without smtpd_milters tells cleanup not to run non_smtpd_milters either.
 *
 *   Stages, as Postfix: CONNECT after smtpd_client_restrictions (when not delayed): a 5xx
 *   milter reply turns the greeting into "554 <myhostname> ESMTP not accepting connections",
 *   421 into "421 <myhostname> Service unavailable - try again later", anything else keeps the
 *   220 greeting and the reply stands for every later command. HELO/EHLO: only a 421 is sent
 *   (Sendmail compatibility). MAIL and RCPT: after smtpd's own restrictions passed (a rejected
 *   RCPT still goes to milters that negotiated SMFIP_RCPT_REJ); DATA: after the DATA
 *   restrictions. A 4xx/5xx reply is sent as the milter gave it; "D" and "H" accept and mark the
 *   transaction for DISCARD or HOLD; a 421 ends the session. Each decision is logged as
 *   Postfix does: "QID: milter-reject: RCPT from client[addr]: 550 5.7.1 ...; from=<..> to=<..>
 *   proto=ESMTP helo=<..>". RSET, a new MAIL after HELO, and the end of a message send
 *   SMFIC_ABORT; the end of the session SMFIC_QUIT.
 *
 *   Macros (smtpd_milter.c smtpd_milter_eval): j, {daemon_name}, {daemon_addr}, {daemon_port},
 *   v, _, {client_addr}, {client_port}, {client_name}, {client_ptr}, {client_resolve},
 *   {client_connections}, {tls_version}, {cipher}, {cipher_bits}, i, {auth_type},
 *   {auth_authen}, {auth_author}, {mail_addr}, {rcpt_addr}, {mail_host}, {mail_mailer},
 *   {rcpt_host}, {rcpt_mailer} (trivial-rewrite's answer for the address, as Postfix's
 *   smtpd_resolve_addr; SmtpdDeps.resolve), and for a rejected recipient {rcpt_mailer} = error,
 *   {rcpt_host} = the enhanced status, {rcpt_addr} = the reply text. {cert_subject} and
 *   {cert_issuer}: the common names of the client certificate's subject and issuer, only when
 *   the certificate is trusted (smtpd_tls_ask_ccert = yes and a CA of smtpd_tls_CAfile /
 *   smtpd_tls_CApath signed it; Postfix IF_TRUSTED), else not sent.
 *
 * PARAMETERS
 *   smtpd_milters and those of src/lib-milter/milter-config.ts
 */
import type { TLSSocket } from 'node:tls';
import { Milters } from '../lib-milter/milters.ts';
import type { MilterConfig } from '../lib-milter/milter-config.ts';
import type { MilterReply } from '../lib-milter/milter8.ts';
import { logger } from '../util/msg.ts';
import type { SmtpdSession } from './smtpd-session.ts';
import type { SmtpdReply } from './smtpd-policy.ts';
import type { ResolveReply } from '../global/resolve-client.ts';

const log = logger('smtpd');

export class SmtpdMilters {
  readonly milters: Milters;
  private readonly s: SmtpdSession;
  private readonly cfg: MilterConfig;
  /** The address of the event being sent ({mail_addr}, {rcpt_addr}) and a rejection's text. */
  private sender: string | undefined;
  private recipient: string | undefined;
  /** The sender and the current recipient as trivial-rewrite resolves them (Postfix smtpd_resolve_addr). */
  private senderReply: ResolveReply | undefined;
  private rcptReply: ResolveReply | undefined;
  private rejectReply: SmtpdReply | undefined;
  /** A transaction was shown to the milters (MAIL sent): abort it at its end. */
  private needAbort = false;
  /** Events stop after a DISCARD decision for the transaction (Postfix MILTER_SKIP_FLAGS). */
  private skip = false;

  constructor(s: SmtpdSession, cfg: MilterConfig) {
    this.s = s;
    this.cfg = cfg;
    this.milters = Milters.create(cfg, (n) => this.macro(n), (t) => log.warn(t));
  }

  private macro(name: string): string | undefined {
    const s = this.s;
    const st = s.state;
    switch (name) {
      case 'j': return s.st.myhostname;
      case 'daemon_name': return this.cfg.daemonName;
      case 'v': return this.cfg.v;
      case '_': return `${st.clientName} [${st.clientAddr}]`;
      case 'client_addr': return st.clientAddr;
      case 'client_port': return String(st.clientPort);
      case 'client_name': case 'client_ptr': return st.clientName;
      case 'client_resolve': return st.clientName === 'unknown' ? 'FAIL' : 'OK';
      case 'client_connections': return '0';
      case 'daemon_addr': return st.serverAddr;
      case 'daemon_port': return String(st.serverPort);
      case 'tls_version': case 'cipher': case 'cipher_bits': {
        if (!st.tls) return undefined;
        const t = s.sock as TLSSocket;
        if (typeof t.getCipher !== 'function') return undefined;
        if (name === 'tls_version') return t.getProtocol() ?? undefined;
        const c = t.getCipher();
        // OpenSSL's cipher name, as Postfix's {cipher}.
        return name === 'cipher' ? c.name : String(cipherBits(c.name));
      }
      case 'cert_subject': case 'cert_issuer': {
        // smtpd_milter.c: IF_TRUSTED(peer_CN / issuer_CN).
        const t = st.tls ? st.tlsSocket : undefined;
        if (!t || t.authorized !== true) return undefined;
        const cert = t.getPeerCertificate?.(false);
        if (!cert || !cert.raw) return undefined;
        const dn = name === 'cert_subject' ? cert.subject : cert.issuer;
        // Postfix tls_issuer_CN(): the issuer's CN, else its O.
        const v = dn?.CN ?? (name === 'cert_issuer' ? dn?.O : undefined);
        return v === undefined ? undefined : String(Array.isArray(v) ? v[0] : v);
      }
      case 'i': return s.cleanup?.queueId;
      case 'auth_type': return st.saslUsername ? st.saslMethod : undefined;
      case 'auth_authen': return st.saslUsername;
      case 'auth_author': return undefined;
      case 'mail_addr': return this.sender === undefined || this.sender === '' ? this.sender : this.senderReply?.recipient ?? this.sender;
      case 'mail_host': return this.sender === undefined ? undefined : this.senderReply?.nexthop;
      case 'mail_mailer': return this.sender === undefined ? undefined : this.senderReply?.transport;
      case 'rcpt_addr':
        if (this.rejectReply) return this.rejectReply.text.replace(/^\S+\s*/, '');
        return this.recipient === undefined || this.recipient === '' ? this.recipient : this.rcptReply?.recipient ?? this.recipient;
      case 'rcpt_host': return this.rejectReply ? this.rejectReply.enh : this.recipient === undefined ? undefined : this.rcptReply?.nexthop;
      case 'rcpt_mailer': return this.rejectReply ? 'error' : this.recipient === undefined ? undefined : this.rcptReply?.transport;
    }
    return undefined;
  }

  /** Resolve an address for the macros; a failure leaves them unset (they are informational). */
  private async resolve(address: string, sender: string | undefined): Promise<ResolveReply | undefined> {
    const r = this.s.deps.resolve;
    if (!r || address === '') return undefined;
    try { return await r.resolve(address, sender); } catch { return undefined; }
  }

  /** Postfix check_milter_reply(): log the decision; the reply to send, if any. */
  private check(reply: MilterReply, where: string, extra: string): SmtpdReply | 'hangup' | undefined {
    if (reply === undefined) return undefined;
    const s = this.s;
    const tx = s.state.tx;
    const qid = s.cleanup?.queueId ?? 'NOQUEUE';
    const whatsup = `${extra} proto=${s.state.protocol} helo=<${s.state.helo ?? ''}>`;
    if (reply[0] === 'H' || reply[0] === 'D') {
      const hold = reply[0] === 'H';
      if (tx && tx.action === (hold ? 'hold' : 'discard')) return undefined;
      const text = hold ? (reply.slice(1) || 'milter triggers HOLD action') : 'milter triggers DISCARD action';
      if (tx && tx.action !== 'discard') { tx.action = hold ? 'hold' : 'discard'; tx.actionReason = text; }
      if (!hold) this.skip = true;
      log.info(`${qid}: milter-${hold ? 'hold' : 'discard'}: ${where} from ${s.client}: ${text};${whatsup}`);
      return undefined;
    }
    const r = reply === 'S' ? '421 4.7.0 Server closing connection' : /^[45]/.test(reply) ? reply : '421 4.3.5 Server configuration error';
    log.info(`${qid}: ${/^[45S]/.test(reply) ? 'milter-reject' : 'reject'}: ${where} from ${s.client}: ${r.replace(/\r\n/g, ' ')};${whatsup}`);
    return parseReply(r);
  }

  /** Send a milter reply to the client; a 421 ends the session. */
  private send(r: SmtpdReply, error = true): void {
    if (error) this.s.error(r.code, r.enh, r.text); else this.s.reply(r.code, r.enh, r.text);
    if (r.code === 421) this.s.hangup();
  }

  /** At the connection (before the greeting): false when the greeting was replaced. */
  async connect(): Promise<boolean> {
    const st = this.s.state;
    const fam = st.clientAddr.includes(':') ? 'inet6' : /^\d+\.\d+\.\d+\.\d+$/.test(st.clientAddr) ? 'inet' : 'unknown';
    const r = this.check(await this.milters.connect(st.clientName, st.clientAddr, st.clientPort, fam), 'CONNECT', '');
    if (r === undefined || r === 'hangup') return true;
    if (r.code >= 500) {
      this.s.error(554, '', `${this.s.st.myhostname} ESMTP not accepting connections`);
      return false;
    }
    if (r.code === 421) {
      this.s.reply(421, '', `${this.s.st.myhostname} Service unavailable - try again later`);
      this.s.hangup();
      return false;
    }
    return true;
  }

  /**
   * HELO/EHLO: 'hangup' when the session ends (only a 421 is sent to the client), 'reject' when
   * the milters refuse the connection with a 5xx (EHLO then announces ENHANCEDSTATUSCODES only).
   */
  async helo(name: string): Promise<'ok' | 'reject' | 'hangup'> {
    this.skip = false;
    const r = this.check(await this.milters.helo(name), this.s.state.protocol === 'ESMTP' ? 'EHLO' : 'HELO', '');
    if (r && r !== 'hangup' && r.code === 421) { this.send(r); return 'hangup'; }
    return r && r !== 'hangup' && r.code >= 500 ? 'reject' : 'ok';
  }

  /** MAIL FROM (after smtpd's checks): false when a reply was sent. */
  async mail(sender: string, args: string[]): Promise<boolean> {
    this.skip = false;
    this.needAbort = true;
    this.sender = sender;
    this.senderReply = await this.resolve(sender, undefined);
    const r = this.check(await this.milters.mail([`<${sender}>`, ...args]), 'MAIL', ` from=<${sender}>`);
    if (!r || r === 'hangup') return true;
    this.send(r);
    await this.abort();
    return false;
  }

  /** RCPT TO (after smtpd's checks): false when a reply was sent. */
  async rcpt(recipient: string, args: string[]): Promise<boolean> {
    if (this.skip) return true;
    this.recipient = recipient;
    this.rcptReply = await this.resolve(recipient, this.sender);
    const r = this.check(await this.milters.rcpt([`<${recipient}>`, ...args], false), 'RCPT', ` from=<${this.sender ?? ''}> to=<${recipient}>`);
    this.recipient = undefined;
    if (!r || r === 'hangup') return true;
    this.send(r);
    return false;
  }

  /** A recipient smtpd refused: shown to milters that asked for them (SMFIP_RCPT_REJ). */
  async rcptRejected(recipient: string, args: string[], reply: SmtpdReply): Promise<void> {
    if (this.skip) return;
    this.recipient = recipient;
    this.rejectReply = reply;
    try { await this.milters.rcpt([`<${recipient}>`, ...args], true); } finally { this.rejectReply = undefined; this.recipient = undefined; }
  }

  /** DATA or the first BDAT (after smtpd's checks): false when a reply was sent. */
  async data(): Promise<boolean> {
    if (this.skip) return true;
    const r = this.check(await this.milters.data(), 'DATA', ` from=<${this.sender ?? ''}>`);
    if (!r || r === 'hangup') return true;
    this.send(r);
    return false;
  }

  /** An unknown command: a 4xx from the milters replaces smtpd's 500 (Postfix unknown override). */
  async unknown(line: string): Promise<SmtpdReply | undefined> {
    const r = await this.milters.unknown(line);
    if (r?.[0] === '4') return parseReply(r);
    return undefined;
  }

  /**
   * AUTH, STARTTLS, VRFY (Postfix milter_other_event): a milter's standing reply (after it
   * refused the connection) refuses them too; `map4xx`: AUTH and STARTTLS answer a 4xx with
   * "454 4.3.0 Try again later" (Sendmail compatibility).
   */
  other(map4xx: boolean): SmtpdReply | undefined {
    const r = this.milters.other();
    if (!r || !/^[45]/.test(r)) return undefined;
    if (r[0] === '4' && map4xx) return { code: 454, enh: '4.3.0', text: 'Try again later' };
    return parseReply(r);
  }

  /** The transaction ended (RSET, HELO, end of message, client gone). */
  async abort(): Promise<void> {
    this.sender = undefined;
    this.skip = false;
    if (!this.needAbort) return;
    this.needAbort = false;
    await this.milters.abort();
  }

  async quit(): Promise<void> {
    await this.milters.quit();
  }
}

/** "550 5.7.1 text" (maybe multi-line, CRLF) → code, enhanced code, text lines joined by LF. */
export function parseReply(r: string): SmtpdReply {
  const lines = r.split('\r\n');
  const code = Number(r.slice(0, 3));
  const m = /^\d{3}[ -](\d\.\d{1,3}\.\d{1,3})(?: |$)/.exec(lines[0]!);
  const enh = m ? m[1]! : '';
  const text = lines.map((l) => {
    let t = l.slice(4);
    if (enh && t.startsWith(enh)) t = t.slice(enh.length).replace(/^ /, '');
    return t;
  }).join('\n');
  return { code, enh, text };
}

function cipherBits(name: string): number {
  return /256|CHACHA20/i.test(name) ? 256 : /128/.test(name) ? 128 : 0;
}
