/**
 * smtpd-envelope - MAIL FROM and RCPT TO of an SMTP session (RFC 5321 §4.1.1.2-3, with the
 * ESMTP parameters SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET/ENVID/NOTIFY/ORCPT
 * (RFC 3461), AUTH (RFC 4954 §5, ignored)), as Postfix's smtpd mail_cmd() and rcpt_cmd(), and the
 * creation of the transaction's queue file.
 *
 * Contract with smtpd-session.ts: cmdMail(session, arg) and cmdRcpt(session, arg) are the
 * command table's entries. MAIL sets state.tx after the queue_minfree check (smtpd-space.ts) and
 * the sender restrictions, then starts creating the queue file (session.opening) while the
 * client sends its RCPT; the first accepted RCPT takes it as session.cleanup and logs
 * "QID: client=..." (Postfix with smtpd_delay_open_until_valid_rcpt = yes). The session's
 * abortTx() removes a file no RCPT took. Reply texts are Postfix 3.7's.
 */
import { parsePathArg, AddressSyntaxError, decodeXtext } from '../lib-smtp/smtp-address.ts';
import { DSN_NOTIFY, ATTR, QF } from '../global/rec-type.ts';
import { logger } from '../util/msg.ts';
import type { CleanupStream, SubmissionOrigin } from '../global/cleanup-client.ts';
import type { SmtpdTransaction } from './smtpd-state.ts';
import type { SmtpdSession } from './smtpd-session.ts';
import { enoughQueueSpace } from './smtpd-space.ts';
import { SmtpdProxy, type ProxyClientAttrs } from './smtpd-proxy.ts';

const log = logger('smtpd');

export async function cmdMail(s: SmtpdSession, arg: string): Promise<void> {
  if (s.st.heloRequired && !s.state.helo) return s.error(503, '5.5.1', 'Error: send HELO/EHLO first');
  if (s.state.tx) return s.error(503, '5.5.1', 'Error: nested MAIL command');
  const m = /^FROM:/i.exec(arg);
  if (!m) return s.error(501, '5.5.4', 'Syntax: MAIL FROM:<address>');
  let p;
  try { p = parsePathArg(arg.slice(5), { allowNull: true }); } catch (e) {
    if (e instanceof AddressSyntaxError) return s.error(501, '5.1.7', 'Bad sender address syntax');
    throw e;
  }
  const tx: SmtpdTransaction = { sender: p.address, senderArg: p, recipients: [], smtputf8: false, rcptCount: 0 };
  for (const [k, v] of p.params) {
    const val = v === true ? '' : v;
    switch (k) {
      case 'SIZE': {
        if (!/^\d{1,15}$/.test(val)) return s.error(501, '5.5.4', 'Bad message size syntax');
        tx.declaredSize = Number(val);
        if (s.st.messageSizeLimit > 0 && tx.declaredSize > s.st.messageSizeLimit) return s.error(552, '5.3.4', 'Message size exceeds fixed limit');
        break;
      }
      case 'BODY': {
        const b = val.toUpperCase();
        if (b !== '7BIT' && b !== '8BITMIME') return s.error(555, '5.5.4', `Unsupported option: ${k}=${val}`);
        tx.body = b;
        break;
      }
      case 'SMTPUTF8': if (v !== true) return s.error(555, '5.5.4', `Unsupported option: ${k}=${val}`); tx.smtputf8 = true; break;
      case 'RET': {
        const r = val.toUpperCase();
        if (r !== 'FULL' && r !== 'HDRS') return s.error(501, '5.5.4', 'Bad RET parameter syntax');
        tx.dsnRet = r;
        break;
      }
      case 'ENVID': {
        const e = decodeXtext(val);
        // RFC 3461 §4.4: printable US-ASCII only — a CR/LF here would forge a DSN header.
        if (e === undefined || e.length > 100 || /[^\x20-\x7e]/.test(e)) return s.error(501, '5.5.4', 'Bad ENVID parameter syntax');
        tx.dsnEnvid = e;
        break;
      }
      case 'AUTH': break; // RFC 4954 §5: accepted and ignored unless trusted
      default: return s.error(555, '5.5.4', `Unsupported option: ${k}${v === true ? '' : '=' + val}`);
    }
  }
  if (p.utf8 && !tx.smtputf8) return s.error(553, '5.6.7', 'Must declare SMTPUTF8 to send UTF8 address');
  // Postfix mail_cmd(): with a proxy filter the queue is not ours, unless speed_adjust spools.
  if ((!s.deps.proxy || s.deps.proxy.speedAdjust) && !(await enoughSpace(s, tx.declaredSize ?? 0))) return s.reply(452, '4.3.1', 'Insufficient system storage');
  if (s.deps.proxy) tx.proxyMail = s.line;
  s.state.tx = tx;
  if (!(await s.verdict(await s.deps.policy.mail?.(s.state, tx.sender), 'MAIL', ` from=<${tx.sender}>`))) {
    s.state.tx = undefined;
    return;
  }
  if (s.milters && !(await s.milters.mail(tx.sender, esmtpArgs(p.params)))) {
    s.state.tx = undefined;
    return;
  }
  // The client may have left during the checks (abortTx has run): create nothing then.
  if (!s.ended && !s.deps.proxy) startOpen(s, tx);
  s.reply(250, '2.1.0', 'Ok');
}

export async function cmdRcpt(s: SmtpdSession, arg: string): Promise<void> {
  const tx = s.state.tx;
  if (!tx) return s.error(503, '5.5.1', 'Error: need MAIL command');
  if (!/^TO:/i.test(arg)) return s.error(501, '5.5.4', 'Syntax: RCPT TO:<address>');
  let p;
  try { p = parsePathArg(arg.slice(3), { allowNull: false }); } catch (e) {
    if (e instanceof AddressSyntaxError) return s.error(501, '5.1.3', 'Bad recipient address syntax');
    throw e;
  }
  if (p.utf8 && !tx.smtputf8) return s.error(553, '5.6.7', 'Must declare SMTPUTF8 to send UTF8 address');
  let notify = 0;
  let orcpt: string | undefined;
  for (const [k, v] of p.params) {
    const val = v === true ? '' : v;
    if (k === 'NOTIFY') {
      for (const w of val.toUpperCase().split(',')) {
        const bit = (DSN_NOTIFY as Record<string, number>)[w];
        if (!bit) return s.error(501, '5.5.4', 'Error: Bad NOTIFY parameter syntax');
        notify |= bit;
      }
      if ((notify & DSN_NOTIFY.NEVER) && notify !== DSN_NOTIFY.NEVER) return s.error(501, '5.5.4', 'Error: Bad NOTIFY parameter syntax');
    } else if (k === 'ORCPT') {
      const semi = val.indexOf(';');
      const dec = semi > 0 ? decodeXtext(val.slice(semi + 1)) : undefined;
      if (dec === undefined || /[\x00-\x1f\x7f]/.test(dec) || !/^[A-Za-z0-9-]+$/.test(val.slice(0, semi))) return s.error(501, '5.5.4', 'Error: Bad ORCPT parameter syntax');
      orcpt = `${val.slice(0, semi)};${dec}`;
    } else {
      return s.error(555, '5.5.4', `Unsupported option: ${k}${v === true ? '' : '=' + val}`);
    }
  }
  if (++tx.rcptCount > s.st.recipientLimit) {
    return s.reply(452, '4.5.3', 'Error: too many recipients');
  }
  const extra = ` from=<${tx.sender}> to=<${p.address}>`;
  const v = await s.deps.policy.rcpt?.(s.state, p.address);
  if (v?.reply && s.milters) await s.milters.rcptRejected(p.address, esmtpArgs(p.params), v.reply);
  if (!(await s.verdict(v, 'RCPT', extra))) return;
  if (s.milters && !(await s.milters.rcpt(p.address, esmtpArgs(p.params)))) return;
  if (s.deps.proxy) {
    // smtpd-proxy.ts: the filter instead of a queue file; it answers the recipient itself.
    if (!(await proxyRcpt(s, tx))) return;
  } else if (!s.cleanup) {
    if (s.ended) return; // the client left during the checks; abortTx has run
    const opening = s.opening ?? openCleanup(s, tx);
    s.opening = undefined;
    s.cleanup = await opening;
    if (s.ended) {
      // The client left while the queue file was being created: remove it (nothing leaks).
      const c = s.cleanup;
      s.cleanup = undefined;
      await c.abort();
      return;
    }
    log.info(`${s.cleanup.queueId}: client=${s.client}${s.state.saslUsername ? `, sasl_method=${s.state.saslMethod}, sasl_username=${s.state.saslUsername}` : ''}`);
  }
  tx.recipients.push({ address: p.address, orig: p.address, notify, orcpt });
  s.cleanup?.addRecipient({ address: p.address, orig: p.address, notify, orcpt });
  s.reply(250, '2.1.5', 'Ok');
}

/**
 * Postfix mail_open_stream() and rcpt_cmd() with smtpd_proxy_filter: the filter connection is
 * opened at the first accepted RCPT (greeting, EHLO, XFORWARD, the client's MAIL line), then
 * the client's RCPT line goes to it; its refusal is the client's reply (false).
 */
async function proxyRcpt(s: SmtpdSession, tx: SmtpdTransaction): Promise<boolean> {
  const line = s.line;
  if (!s.proxy) {
    const proxy = new SmtpdProxy(s.deps.proxy!, () => proxyAttrs(s));
    const r = await proxy.open(tx.proxyMail ?? `MAIL FROM:<${tx.sender}>`);
    if (s.ended || s.state.tx !== tx) { proxy.close(); return false; }
    if (!r.ok) {
      proxy.close();
      s.replyText(r.reply, true);
      return false;
    }
    s.proxy = proxy;
    log.info(`NOQUEUE: client=${s.client}${s.state.saslUsername ? `, sasl_method=${s.state.saslMethod}, sasl_username=${s.state.saslUsername}` : ''}`);
  }
  const r = await s.proxy.cmd(line, '2');
  if (s.ended || s.state.tx !== tx) return false;
  if (!r.ok) { s.replyText(r.reply, true); return false; }
  return true;
}

/** What XFORWARD tells the filter (Postfix FORWARD_NAME() ...: an upstream XFORWARD wins). */
function proxyAttrs(s: SmtpdSession): ProxyClientAttrs {
  const x = s.xforward;
  const fwd = ['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO'].some((k) => x.has(k));
  const st = s.state;
  const avail = (v: string | undefined) => (v === undefined || v === 'unknown' ? undefined : v);
  const addr = fwd ? x.get('ADDR') : (st.clientAddr.includes(':') ? `IPv6:${st.clientAddr}` : st.clientAddr);
  const source = x.get('SOURCE') ?? (s.deps.isLocalClient(st.clientAddr) ? 'LOCAL' : 'REMOTE');
  return {
    NAME: avail(fwd ? x.get('NAME') : st.clientName),
    ADDR: avail(addr),
    PORT: avail(fwd ? x.get('PORT') : String(st.clientPort)),
    HELO: fwd ? x.get('HELO') : st.helo,
    PROTO: avail(fwd ? x.get('PROTO') : st.protocol),
    IDENT: x.get('IDENT'),
    SOURCE: source.toUpperCase() === 'LOCAL' ? 'LOCAL' : 'REMOTE',
  };
}

/**
 * Start creating the transaction's queue file (cleanup) while the client sends its next
 * command: the file (mode 0600, "being written") is taken over by the first accepted RCPT,
 * which also logs "QID: client=..." then, as Postfix with smtpd_delay_open_until_valid_rcpt =
 * yes; a transaction that ends without one removes it (abortTx). Nothing the client sees
 * changes: a failure to create it surfaces at that RCPT, as when it was created there.
 */
function startOpen(s: SmtpdSession, tx: SmtpdTransaction): void {
  const p = openCleanup(s, tx);
  p.catch(() => {}); // reported at the first accepted RCPT, or dropped with the transaction
  s.opening = p;
}

async function openCleanup(s: SmtpdSession, tx: SmtpdTransaction): Promise<CleanupStream> {
  const attrs = queueAttrs(s, tx);
  const local = s.deps.isLocalClient(s.state.clientAddr);
  // Postfix MAIL_ATTR_RWR_CONTEXT (the smtp client's XFORWARD SOURCE= to a content filter).
  attrs.rewrite_context = local ? 'local' : 'remote';
  // Our users' mail (DKIM-signed by cleanup): authenticated, or from $mynetworks.
  const origin: SubmissionOrigin | undefined = s.state.saslUsername ? 'sasl'
    : (await s.deps.policy.mynetworks?.(s.state)) ? 'mynetworks' : undefined;
  return s.deps.openCleanup({
    sender: tx.sender,
    attrs,
    addMissingHeaders: local,
    flags: (tx.smtputf8 ? QF.SMTPUTF8 : 0) | (tx.body === '8BITMIME' ? QF.EIGHTBIT : 0),
    milters: s.milters?.milters,
    origin,
    // docs/authres.md: mail from outside is verified; without a mynetworks check (tests, no
    // restrictions) nobody counts as outside.
    inbound: origin || !s.deps.policy.mynetworks ? 'strip' : 'verify',
  });
}

function queueAttrs(s: SmtpdSession, tx: SmtpdTransaction): Record<string, string> {
  const a: Record<string, string> = {
    [ATTR.CLIENT_NAME]: s.state.clientName,
    [ATTR.CLIENT_ADDR]: s.state.clientAddr,
    [ATTR.CLIENT_PORT]: String(s.state.clientPort),
    [ATTR.PROTO_NAME]: s.state.protocol,
    [ATTR.LOG_IDENT]: s.state.sessionId,
  };
  if (s.state.helo) a[ATTR.HELO_NAME] = s.state.helo;
  if (s.state.saslUsername) { a[ATTR.SASL_USERNAME] = s.state.saslUsername; a[ATTR.SASL_METHOD] = s.state.saslMethod ?? ''; }
  if (tx.dsnEnvid) a[ATTR.DSN_ENVID] = tx.dsnEnvid;
  if (tx.dsnRet) a[ATTR.DSN_RET] = tx.dsnRet;
  if (tx.body) a[ATTR.ENCODING] = tx.body;
  // XFORWARD: the original client, as Postfix's forward_* queue file attributes.
  for (const [k, v] of s.xforward) if (v !== undefined) a[`forward_${k.toLowerCase()}`] = v;
  s.xforward.clear();
  return a;
}

/** Postfix smtpd_check_size() at MAIL FROM (smtpd-space.ts). */
async function enoughSpace(s: SmtpdSession, size: number): Promise<boolean> {
  if (!s.st.queueDirectory) return true;
  const v = await enoughQueueSpace(s.st.queueDirectory, s.st.queueMinfree, size);
  if (!v.ok) log.info(`NOQUEUE: reject: MAIL from ${s.client}: 452 4.3.1 Insufficient system storage; size=${size} free=${v.free} queue_minfree=${s.st.queueMinfree}`);
  return v.ok;
}

/** The ESMTP parameters as the milters get them ("SIZE=123", "SMTPUTF8"). */
function esmtpArgs(params: Iterable<[string, string | true]>): string[] {
  return [...params].map(([k, v]) => (v === true ? k : `${k}=${v}`));
}
