/**
 * smtp-proto - the SMTP/LMTP client protocol engine of smtp(8)/lmtp(8), after Postfix
 * smtp/smtp_proto.c: session set-up (greeting, EHLO/HELO or LHLO, STARTTLS, AUTH) and one mail
 * transaction (MAIL, RCPT..., DATA, content, end of data) with per-recipient outcomes.
 *
 * STANDARDS
 *   RFC 5321 (SMTP: §4.1.1.1 EHLO then HELO fallback, §4.5.3.2 timeouts), RFC 2033 (LMTP: LHLO,
 *   §4.2 one reply per accepted recipient after the final dot), RFC 2920 (PIPELINING: MAIL,
 *   RCPTs and DATA in one write, replies read in order), RFC 1870 (SIZE), RFC 6152 (8BITMIME;
 *   8-bit content to a server without it is converted to quoted-printable), RFC 6531
 *   (SMTPUTF8: a message that needs it bounces when the server lacks it), RFC 3461 (DSN:
 *   NOTIFY/ORCPT/RET/ENVID passed on when the server offers DSN), RFC 3207 (STARTTLS),
 *   RFC 4954 (AUTH), RFC 2034 (enhanced status codes).
 *
 * OUTCOMES (Postfix smtp_trouble.c)
 *   2xx → sent ("250 2.0.0 Ok: queued as X"); 4xx → deferred, 5xx → bounced, with text
 *   "host mx[addr] said: 550 5.1.1 <u@d>: ... (in reply to RCPT TO command)". A 4xx from a
 *   server that is not the last one to try marks the recipient `retry` so the caller tries the
 *   next MX host (smtp_rcpt_fail/smtp_site_fail with SMTP_MISC_FLAG_FINAL_SERVER unset).
 *   A lost connection or a timeout defers what is unfinished; after the final dot was sent it
 *   says "-- message may be sent more than once" as Postfix does.
 */
import type { TlsRptResultType } from '../global/tls-rpt.ts';
import type { TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import type { QueueRecipient } from '../global/queue-file.ts';
import type { DeliveryStatus } from '../global/deliver-request.ts';
import { DSN_NOTIFY } from '../global/rec-type.ts';
import type { Logger } from '../util/msg.ts';
import { SmtpConn, SmtpSessionError, replyDsn, replyText, type SmtpReply } from './smtp-conn.ts';
import { downgradeTo7bit, hasEightBit } from '../lib-mail/mail-mime-downgrade.ts';
import { dotStuff } from '../lib-smtp/smtp-data-stream.ts';
import { saslAuthenticate, saslCredentials, SaslFailure, type SmtpSaslSettings } from './smtp-sasl.ts';
import { tlsMustMatch, tlsRequired, type TlsHostPolicy, type TlsLevel } from './smtp-tls-policy.ts';
import { describeTlsClient, verifyPeer } from './smtp-tls-verify.ts';
import { mxPatternMatches } from './smtp-tls-mta-sts.ts';
import { minProtocol } from '../lib-tls/tls-server.ts';

export type { TlsLevel } from './smtp-tls-policy.ts';

/** Milliseconds; 0 = no limit. Parameter names in comments (smtp_* / lmtp_*). */
export interface SmtpTimeouts {
  connect: number; // *_connect_timeout
  helo: number; // smtp_helo_timeout / lmtp_lhlo_timeout (also the greeting)
  starttls: number; // *_starttls_timeout
  mail: number; // *_mail_timeout
  rcpt: number; // *_rcpt_timeout
  dataInit: number; // *_data_init_timeout
  dataXfer: number; // *_data_xfer_timeout
  dataDone: number; // *_data_done_timeout
  xforward?: number; // *_xforward_timeout
  rset: number; // *_rset_timeout
  quit: number; // *_quit_timeout
}

export interface SmtpProtoSettings {
  lmtp: boolean;
  /** smtp_helo_name / lmtp_lhlo_name. */
  heloName: string;
  timeouts: SmtpTimeouts;
  neverSendEhlo: boolean;
  skip5xxGreeting: boolean;
  skipQuitResponse: boolean;
  /** smtp_discard_ehlo_keywords (upper case). */
  discardEhloKeywords: ReadonlySet<string>;
  tlsLevel: TlsLevel;
  /** The per-server TLS policy (smtp-tls-policy.ts); when absent, `tlsLevel` with no CAs. */
  tlsPolicy?: TlsHostPolicy;
  /** smtp_tls_loglevel: ≥ 1 logs "... TLS connection established to ..." (Postfix: 0 logs only failures). */
  tlsLogLevel?: number;
  /** smtp_send_xforward_command / lmtp_send_xforward_command. */
  sendXforward?: boolean;
  /** Present when smtp_sasl_auth_enable = yes and smtp_sasl_password_maps is set. */
  sasl?: SmtpSaslSettings;
  /** TLS-RPT (RFC 8460): told the TLS outcome of the session (global/tls-rpt.ts). */
  tlsReport?: (ok: boolean, resultType?: TlsRptResultType, info?: string) => void;
}

/** A verification failure text (smtp-tls-verify.ts) → the RFC 8460 §4.3 result type. */
export function tlsRptResultType(failure: string | undefined): TlsRptResultType {
  if (!failure) return 'validation-failure';
  if (/mismatch|does not match|not match/i.test(failure)) return 'certificate-host-mismatch';
  if (/expired|not yet valid/i.test(failure)) return 'certificate-expired';
  return 'certificate-not-trusted';
}

export interface SmtpFeatures {
  esmtp: boolean;
  pipelining: boolean;
  /** SIZE limit announced (0 = none given). undefined = no SIZE. */
  size?: number;
  eightBitMime: boolean;
  dsn: boolean;
  smtputf8: boolean;
  starttls: boolean;
  auth: string[];
  /** XFORWARD attribute names the server announced (Postfix XFORWARD_README), upper case. */
  xforward?: string[];
}

/** A failure of the whole session before any transaction (greeting, HELO, TLS, AUTH). */
export class SmtpSiteFail extends Error {
  override name = 'SmtpSiteFail';
  readonly status: DeliveryStatus;
  readonly dsn: string;
  readonly diagnostic?: string;
  constructor(status: DeliveryStatus, dsn: string, text: string, diagnostic?: string) {
    super(text); this.status = status; this.dsn = dsn; this.diagnostic = diagnostic;
  }
}

/** An established session, ready for transactions. */
export interface SmtpSession {
  conn: SmtpConn;
  features: SmtpFeatures;
  /** Transactions done on this connection (connection cache reuse count). */
  reuseCount: number;
}

function parseEhlo(r: SmtpReply, discard: ReadonlySet<string>): SmtpFeatures {
  const f: SmtpFeatures = { esmtp: true, pipelining: false, eightBitMime: false, dsn: false, smtputf8: false, starttls: false, auth: [] };
  for (const line of r.lines.slice(1)) {
    const words = line.trim().split(/[\s=]+/);
    const kw = (words[0] ?? '').toUpperCase();
    if (discard.has(kw)) continue;
    switch (kw) {
      case 'PIPELINING': f.pipelining = true; break;
      case 'SIZE': f.size = Number(words[1] ?? 0) || 0; break;
      case '8BITMIME': f.eightBitMime = true; break;
      case 'DSN': f.dsn = true; break;
      case 'SMTPUTF8': f.smtputf8 = true; break;
      case 'STARTTLS': f.starttls = true; break;
      case 'XFORWARD': f.xforward = words.slice(1).map((w) => w.toUpperCase()); break;
      // "AUTH=LOGIN PLAIN" is the pre-RFC form some servers still send (Postfix accepts both).
      case 'AUTH': for (const m of words.slice(1)) if (m && !f.auth.includes(m.toUpperCase())) f.auth.push(m.toUpperCase()); break;
    }
  }
  return f;
}

/** Greeting, EHLO/HELO/LHLO, optional STARTTLS and AUTH. Throws SmtpSiteFail or SmtpSessionError. */
export async function smtpHandshake(conn: SmtpConn, s: SmtpProtoSettings, nexthop: string, log: Logger): Promise<SmtpSession> {
  const t = s.timeouts;
  const greet = await conn.readReply(t.helo, 'receiving the initial server greeting');
  if (greet.code !== 220) {
    // smtp_proto.c: a 5XX greeting is skipped like a 4XX one when smtp_skip_5xx_greeting = yes.
    const hard = greet.code >= 500 && !s.skip5xxGreeting;
    throw new SmtpSiteFail(hard ? 'bounced' : 'deferred', hard ? replyDsn(greet) : `4${replyDsn(greet).slice(1)}`,
      `host ${conn.namaddr} refused to talk to me: ${replyText(greet)}`, `smtp; ${replyText(greet)}`);
  }
  const hello = async (): Promise<SmtpFeatures> => {
    const verb = s.lmtp ? 'LHLO' : s.neverSendEhlo ? 'HELO' : 'EHLO';
    const stage = `performing the ${verb} handshake`;
    await conn.write(`${verb} ${s.heloName}\r\n`, t.helo, stage);
    let r = await conn.readReply(t.helo, stage);
    if (r.code === 250) return verb === 'HELO' ? { ...parseEhlo({ ...r, lines: [] }, s.discardEhloKeywords), esmtp: false } : parseEhlo(r, s.discardEhloKeywords);
    if (verb === 'EHLO' && r.code >= 500) {
      // RFC 5321 §4.1.1.1: a server that does not know EHLO gets HELO.
      await conn.write(`HELO ${s.heloName}\r\n`, t.helo, 'performing the HELO handshake');
      r = await conn.readReply(t.helo, 'performing the HELO handshake');
      if (r.code === 250) return { ...parseEhlo({ ...r, lines: [] }, s.discardEhloKeywords), esmtp: false };
      throw reject(conn, r, 'HELO');
    }
    throw reject(conn, r, verb);
  };
  let features = await hello();
  const policy: TlsHostPolicy = s.tlsPolicy ?? { level: s.tlsLevel, match: [], nexthopDomain: '', source: 'main.cf', ca: [], fingerprintDigest: 'sha256' };
  const level = policy.level;
  if (level !== 'none' && !conn.tls) {
    if (features.starttls) {
      await conn.write('STARTTLS\r\n', t.starttls, 'sending STARTTLS');
      const r = await conn.readReply(t.starttls, 'receiving the STARTTLS response');
      if (r.code === 220) {
        const servername = isIP(conn.host) || conn.host.startsWith('/') ? undefined : conn.host;
        let tls: TLSSocket;
        try {
          tls = await conn.startTls({ servername, timeoutMs: t.starttls, ca: policy.ca, minVersion: policy.protocols ? minProtocol(policy.protocols) : undefined, ciphers: policy.ciphers });
        } catch (e) {
          s.tlsReport?.(false, 'validation-failure', `TLS handshake failed: ${e instanceof Error ? e.message : String(e)}`);
          throw new SmtpSiteFail('deferred', '4.7.5', e instanceof Error ? e.message : String(e));
        }
        const v = verifyPeer(tls, policy, conn.host, conn.namaddrport);
        // Postfix tls_client.c: the verification failure, then "%s TLS connection established to %s: %s".
        if (v.failure && tlsMustMatch(level)) log.info(v.failure);
        if ((s.tlsLogLevel ?? 1) >= 1) log.info(`${v.trust} TLS connection established to ${conn.namaddrport}: ${describeTlsClient(tls)}`);
        if (!v.matched && tlsMustMatch(level)) {
          s.tlsReport?.(false, tlsRptResultType(v.failure), v.failure);
          throw new SmtpSiteFail('deferred', '4.7.5', 'Server certificate not verified');
        }
        let reported = false;
        if (policy.mtaSts?.mode === 'testing') {
          // RFC 8461 §5: testing mode reports what enforce would have refused, and delivers.
          const would = verifyPeer(tls, { ...policy, level: 'secure', match: ['hostname'] }, conn.host, conn.namaddrport);
          const mxOk = policy.mtaSts.mx.some((p) => mxPatternMatches(p, conn.host));
          if (!would.matched || !mxOk) {
            log.info(`MTA-STS policy for ${policy.mtaSts.domain} (mode testing): ${conn.namaddrport} would fail: ${!mxOk ? 'MX host not in policy' : 'Server certificate not verified'}`);
            s.tlsReport?.(false, mxOk ? tlsRptResultType(would.failure) : 'validation-failure', mxOk ? would.failure : 'MX host not in policy');
            reported = true;
          }
        }
        if (!reported) s.tlsReport?.(true);
        features = await hello(); // RFC 3207 §4.2: forget what was learned before TLS
      } else {
        s.tlsReport?.(false, 'starttls-not-supported', `STARTTLS answered ${r.code}`);
        if (tlsRequired(level)) throw new SmtpSiteFail('deferred', '4.7.5', `host ${conn.namaddr} said: ${replyText(r)} (in reply to STARTTLS command)`);
      }
    } else {
      s.tlsReport?.(false, 'starttls-not-supported');
      if (tlsRequired(level)) throw new SmtpSiteFail('deferred', '4.7.4', `TLS is required, but was not offered by host ${conn.namaddr}`);
    }
  }
  if (s.sasl && features.auth.length > 0) {
    const cred = await saslCredentials(s.sasl.maps, conn.host, nexthop);
    if (cred) {
      try {
        await saslAuthenticate(conn, features.auth, cred, s.sasl);
      } catch (e) {
        if (e instanceof SaslFailure) throw new SmtpSiteFail('deferred', e.dsn, e.message);
        throw e;
      }
    }
  }
  return { conn, features, reuseCount: 0 };
}

function reject(conn: SmtpConn, r: SmtpReply, command: string): SmtpSiteFail {
  return new SmtpSiteFail(r.code >= 500 ? 'bounced' : 'deferred', replyDsn(r), `host ${conn.namaddr} said: ${replyText(r)} (in reply to ${command} command)`, `smtp; ${replyText(r)}`);
}

export interface SmtpTransaction {
  sender: string;
  recipients: QueueRecipient[];
  /** The message as queued (LF line endings). */
  content: Buffer;
  /** The message needs SMTPUTF8 (RFC 6531 §3.4). */
  smtputf8: boolean;
  /** Client asked for SMTPUTF8 (pass it on when the server has it). */
  smtputf8Requested: boolean;
  dsnEnvid?: string;
  dsnRet?: string;
  /**
   * An address verification probe (Postfix DEL_REQ_FLAG_MTA_VRFY, smtp_address_verify_target =
   * rcpt): MAIL and RCPT only, no DATA; a recipient the server accepts is "deliverable".
   */
  verifyOnly?: boolean;
  /**
   * A probe with smtp_address_verify_target = data (Postfix smtp_proto.c SMTP_VRFY_TGT_DATA):
   * MAIL, RCPT and DATA; a recipient is deliverable when the server accepts its RCPT and then
   * DATA (354), and undeliverable when DATA is refused ("... (in reply to DATA command)"), for
   * servers that refuse recipients only after DATA. The connection is then dropped without a
   * word (the server waits for the message): never QUIT, never reused.
   */
  verifyData?: boolean;
  /**
   * The original client for XFORWARD (NAME ADDR PORT PROTO HELO IDENT SOURCE; what is unknown is
   * left out), when sendXforward is on and the server announces XFORWARD.
   */
  xforward?: Record<string, string | undefined>;
}

export interface RcptOutcome {
  recipient: QueueRecipient;
  status: DeliveryStatus;
  dsn: string;
  text: string;
  diagnostic?: string;
  /** A soft failure that another server may cure: try the next MX host. */
  retry: boolean;
}

/** RFC 3461 §4: xtext for ENVID and ORCPT values. */
export function xtext(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += b < 33 || b > 126 || b === 0x2b || b === 0x3d ? `+${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  return out;
}

function notifyParam(n: number): string | undefined {
  if (!n) return undefined;
  if (n & DSN_NOTIFY.NEVER) return 'NEVER';
  const w: string[] = [];
  if (n & DSN_NOTIFY.SUCCESS) w.push('SUCCESS');
  if (n & DSN_NOTIFY.FAILURE) w.push('FAILURE');
  if (n & DSN_NOTIFY.DELAY) w.push('DELAY');
  return w.join(',');
}

/**
 * One mail transaction on an established session. Never throws for the recipients: a broken
 * session defers what is unfinished and sets `broken` (the connection must not be reused).
 */
export async function smtpTransaction(sess: SmtpSession, tx: SmtpTransaction, s: SmtpProtoSettings, final: boolean): Promise<{ outcomes: RcptOutcome[]; broken: boolean }> {
  const { conn, features: f } = sess;
  const t = s.timeouts;
  const out = new Map<QueueRecipient, RcptOutcome>();
  const proto = 'smtp';
  const set = (rcpt: QueueRecipient, status: DeliveryStatus, dsn: string, text: string, diagnostic?: string) => {
    if (!out.has(rcpt)) out.set(rcpt, { recipient: rcpt, status, dsn, text, diagnostic, retry: status === 'deferred' && !final });
  };
  const replyOutcome = (rcpt: QueueRecipient, r: SmtpReply, command: string) => {
    if (r.code >= 200 && r.code < 300) set(rcpt, 'sent', replyDsn(r), replyText(r));
    else set(rcpt, r.code >= 500 ? 'bounced' : 'deferred', replyDsn(r), `host ${conn.namaddr} said: ${replyText(r)} (in reply to ${command} command)`, `${proto}; ${replyText(r)}`);
  };
  const all = (status: DeliveryStatus, dsn: string, text: string) => { for (const r of tx.recipients) set(r, status, dsn, text); };

  // Decide the content form before MAIL FROM (SIZE must describe what is sent).
  const eight = hasEightBit(tx.content);
  if (tx.smtputf8 && !f.smtputf8) {
    // Postfix smtp_proto.c, same words.
    all('bounced', '5.6.7', `SMTPUTF8 is required, but was not offered by host ${conn.namaddr}`);
    return { outcomes: [...out.values()], broken: false };
  }
  const body = eight && !f.eightBitMime ? downgradeTo7bit(tx.content) : tx.content;
  const wire = dotStuff(body, { keepCr: true });   // a CR before LF is content (Postfix)
  const size = body.length + (body.toString('latin1').match(/\n/g)?.length ?? 0); // CRLF size, RFC 1870 §3
  if (f.size && size > f.size) {
    all('bounced', '5.3.4', `message size ${size} exceeds size limit ${f.size} of server ${conn.namaddr}`);
    return { outcomes: [...out.values()], broken: false };
  }
  let mail = `MAIL FROM:<${tx.sender}>`;
  if (f.size !== undefined) mail += ` SIZE=${size}`;
  if (eight && f.eightBitMime) mail += ' BODY=8BITMIME';
  if (tx.smtputf8Requested && f.smtputf8) mail += ' SMTPUTF8';
  if (f.dsn && tx.dsnRet) mail += ` RET=${tx.dsnRet}`;
  if (f.dsn && tx.dsnEnvid) mail += ` ENVID=${xtext(tx.dsnEnvid)}`;
  const rcptCmd = (r: QueueRecipient) => {
    let c = `RCPT TO:<${r.address}>`;
    const n = notifyParam(r.notify ?? 0);
    if (f.dsn && n) c += ` NOTIFY=${n}`;
    if (f.dsn && r.orcpt) {
      const semi = r.orcpt.indexOf(';');
      if (semi > 0) c += ` ORCPT=${r.orcpt.slice(0, semi)};${xtext(r.orcpt.slice(semi + 1))}`;
    }
    return c;
  };

  let stage = 'sending MAIL FROM';
  let dotSent = false;
  try {
    // Postfix smtp_proto.c SMTP_STATE_XFORWARD_NAME_ADDR / _PROTO_HELO: two commands before MAIL,
    // with the attributes the server announced. As in Postfix, a refusal is not fatal: the
    // transaction goes on without them.
    if (s.sendXforward && f.xforward?.length && tx.xforward) {
      for (const group of [['NAME', 'ADDR', 'PORT'], ['PROTO', 'HELO', 'IDENT', 'SOURCE']]) {
        const names = group.filter((n) => f.xforward!.includes(n) && tx.xforward![n] !== undefined);
        if (names.length === 0) continue;
        const cmd = 'XFORWARD' + names.map((n) => ` ${n}=${xtext(tx.xforward![n]!)}`).join('');
        stage = 'sending XFORWARD';
        await conn.write(cmd + '\r\n', t.xforward ?? t.mail, stage);
        await conn.readReply(t.xforward ?? t.mail, stage);
      }
      stage = 'sending MAIL FROM';
    }
    const accepted: QueueRecipient[] = [];
    /** Accepted recipients' RCPT replies: a probe's answer (Postfix smtp_rcpt_done with that reply). */
    const rcptReplies = new Map<QueueRecipient, SmtpReply>();
    let dataReply: SmtpReply | undefined;
    let mailReply: SmtpReply;
    if (f.pipelining) {
      // RFC 2920 §3.1: MAIL, every RCPT and DATA in one write; replies come back in order.
      await conn.write([mail, ...tx.recipients.map(rcptCmd), ...(tx.verifyOnly && !tx.verifyData ? [] : ['DATA'])].join('\r\n') + '\r\n', t.mail, stage);
      mailReply = await conn.readReply(t.mail, stage);
      stage = 'sending RCPT TO';
      for (const r of tx.recipients) {
        const rr = await conn.readReply(t.rcpt, stage);
        if (mailReply.code !== 250) continue;
        if (rr.code >= 200 && rr.code < 300) { accepted.push(r); rcptReplies.set(r, rr); } else replyOutcome(r, rr, 'RCPT TO');
      }
      if (!tx.verifyOnly || tx.verifyData) {
        stage = 'sending DATA command';
        dataReply = await conn.readReply(t.dataInit, stage);
      }
      if (mailReply.code !== 250) for (const r of tx.recipients) replyOutcome(r, mailReply, 'MAIL FROM');
    } else {
      await conn.write(mail + '\r\n', t.mail, stage);
      mailReply = await conn.readReply(t.mail, stage);
      if (mailReply.code !== 250) {
        for (const r of tx.recipients) replyOutcome(r, mailReply, 'MAIL FROM');
      } else {
        stage = 'sending RCPT TO';
        for (const r of tx.recipients) {
          await conn.write(rcptCmd(r) + '\r\n', t.rcpt, stage);
          const rr = await conn.readReply(t.rcpt, stage);
          if (rr.code >= 200 && rr.code < 300) { accepted.push(r); rcptReplies.set(r, rr); } else replyOutcome(r, rr, 'RCPT TO');
        }
        if (accepted.length && (!tx.verifyOnly || tx.verifyData)) {
          stage = 'sending DATA command';
          await conn.write('DATA\r\n', t.dataInit, stage);
          dataReply = await conn.readReply(t.dataInit, stage);
        }
      }
    }
    if (tx.verifyData && dataReply?.code === 354) {
      // The server now waits for the message: each accepted recipient is deliverable (the 354
      // reply, DSN 2.0.0), and the session ends here, unceremoniously (broken: closed, no QUIT).
      for (const r of accepted) set(r, 'sent', '2.0.0', replyText(dataReply), `${proto}; ${replyText(dataReply)}`);
      for (const r of tx.recipients) if (!out.has(r)) set(r, 'deferred', '4.3.0', `host ${conn.namaddr}: no reply to RCPT`);
      return { outcomes: tx.recipients.map((r) => out.get(r)!), broken: true };
    }
    if (dataReply && dataReply.code === 354) {
      stage = 'sending message body';
      // RFC 2920 §3.1: DATA accepted although no recipient was: send only the terminating dot.
      await conn.write(accepted.length ? wire : '.\r\n', t.dataXfer, stage);
      dotSent = accepted.length > 0;
      stage = 'sending end of data -- message may be sent more than once';
      if (s.lmtp) {
        // RFC 2033 §4.2: one reply per successful RCPT, in RCPT order.
        for (const r of accepted) replyOutcome(r, await conn.readReply(t.dataDone, stage), 'end of DATA');
        if (!accepted.length) await conn.readReply(t.dataDone, stage);
      } else {
        const fin = await conn.readReply(t.dataDone, stage);
        for (const r of accepted) replyOutcome(r, fin, 'end of DATA');
      }
    } else if (dataReply) {
      for (const r of accepted) replyOutcome(r, dataReply, 'DATA');
    }
    if (tx.verifyOnly) {
      // The probe ends at RCPT: an accepted recipient is deliverable, with its RCPT reply
      // ("250 2.1.5 Ok", as Postfix logs and reports it).
      for (const r of accepted) {
        const rr = rcptReplies.get(r);
        if (rr) set(r, 'sent', replyDsn(rr), replyText(rr), `${proto}; ${replyText(rr)}`); else set(r, 'sent', '2.1.5', 'deliverable');
      }
    }
    for (const r of accepted) if (!out.has(r)) set(r, 'deferred', '4.3.0', `host ${conn.namaddr}: no reply to DATA`);
    return { outcomes: tx.recipients.map((r) => out.get(r)!), broken: false };
  } catch (e) {
    if (!(e instanceof SmtpSessionError)) throw e;
    const text = dotSent && !e.message.includes('more than once') ? `${e.message} -- message may be sent more than once` : e.message;
    all('deferred', '4.4.2', text);
    return { outcomes: tx.recipients.map((r) => out.get(r)!), broken: true };
  }
}

/** RSET before the connection goes back to the cache (Postfix smtp_rset). True = reusable. */
export async function smtpReset(sess: SmtpSession, s: SmtpProtoSettings): Promise<boolean> {
  try {
    await sess.conn.write('RSET\r\n', s.timeouts.rset, 'sending final RSET');
    const r = await sess.conn.readReply(s.timeouts.rset, 'sending final RSET');
    return r.code === 250;
  } catch {
    return false;
  }
}

/** QUIT and close; never throws. smtp_skip_quit_response = yes closes without waiting. */
export async function smtpQuit(sess: SmtpSession, s: SmtpProtoSettings): Promise<void> {
  try {
    await sess.conn.write('QUIT\r\n', s.timeouts.quit, 'sending QUIT');
    if (!s.skipQuitResponse) await sess.conn.readReply(s.timeouts.quit, 'sending QUIT');
  } catch { /* the server went away first: nothing to do */ }
  sess.conn.close();
}
