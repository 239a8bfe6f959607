/**
 * smtpd-xclient - the XCLIENT and XFORWARD extensions (Postfix XCLIENT_README,
 * XFORWARD_README): a trusted proxy or content filter tells smtpd who the real client was.
 *
 *   XCLIENT NAME=x ADDR=1.2.3.4 PORT=25 PROTO=ESMTP HELO=h LOGIN=u DESTADDR=.. DESTPORT=..
 *     → the session continues as if that client had connected: smtpd answers with the 220
 *       greeting again and every check, log line and Received: header uses the new identity.
 *   XFORWARD NAME=x ADDR=1.2.3.4 PORT=25 PROTO=ESMTP HELO=h IDENT=id SOURCE=LOCAL|REMOTE
 *     → the next transaction's queue file records the original client (for logs/Received:).
 *
 * Only clients matched by smtpd_authorized_xclient_hosts / smtpd_authorized_xforward_hosts may
 * use them (default: nobody); others get "550 5.7.0 Error: insufficient authorization".
 * Values are xtext (RFC 3461 §4); [UNAVAILABLE] and [TEMPUNAVAIL] are Postfix's placeholders.
 *
 * Contract with smtpd-session.ts: cmdXclient(session, arg) and cmdXforward(session, arg) are the
 * command table's entries; both refuse during a MAIL transaction ("503 5.5.1 Error: MAIL
 * transaction in progress"). XFORWARD attributes wait in `session.xforward` until the next
 * queue file takes them (forward_* attributes). XFORWARD authorization is always the real TCP
 * peer's (the proxy), even after XCLIENT changed the client identity.
 */
import { decodeXtext } from '../lib-smtp/smtp-address.ts';
import { logger } from '../util/msg.ts';
import type { SmtpdSession } from './smtpd-session.ts';

const log = logger('smtpd');

export const XCLIENT_ATTRS = ['NAME', 'ADDR', 'PROTO', 'HELO', 'REVERSE_NAME', 'PORT', 'LOGIN', 'DESTADDR', 'DESTPORT'] as const;
export const XFORWARD_ATTRS = ['NAME', 'ADDR', 'PROTO', 'HELO', 'SOURCE', 'PORT', 'IDENT'] as const;

export type XAttrs = Map<string, string | undefined>;

/** Parse "A=v B=w"; undefined values stand for [UNAVAILABLE]/[TEMPUNAVAIL]. Throws a reply text. */
export function parseXAttrs(arg: string, allowed: readonly string[], command: string): XAttrs {
  const out: XAttrs = new Map();
  const items = arg.trim().split(/\s+/).filter(Boolean);
  if (items.length === 0) throw new XclientError(501, '5.5.4', `Syntax: ${command} attribute=value...`);
  for (const it of items) {
    const eq = it.indexOf('=');
    const name = (eq < 0 ? it : it.slice(0, eq)).toUpperCase();
    if (eq < 0 || !allowed.includes(name)) throw new XclientError(501, '5.5.4', `Bad ${command} attribute name: ${eq < 0 ? it : it.slice(0, eq)}`);
    const raw = it.slice(eq + 1);
    if (raw.toUpperCase() === '[UNAVAILABLE]' || raw.toUpperCase() === '[TEMPUNAVAIL]') { out.set(name, undefined); continue; }
    const v = decodeXtext(raw);
    if (v === undefined || /[\s\0]/.test(v) || v.length > 255) throw new XclientError(501, '5.5.4', `Bad ${name} syntax: ${raw}`);
    out.set(name, v);
  }
  const addr = out.get('ADDR');
  if (addr !== undefined && !isIpAddr(addr.replace(/^IPV6:/i, ''))) throw new XclientError(501, '5.5.4', `Bad ADDR syntax: ${addr}`);
  const port = out.get('PORT');
  if (port !== undefined && !/^\d{1,5}$/.test(port)) throw new XclientError(501, '5.5.4', `Bad PORT syntax: ${port}`);
  const proto = out.get('PROTO');
  if (proto !== undefined && !/^E?SMTP$/i.test(proto) && command === 'XCLIENT') throw new XclientError(501, '5.5.4', `Bad PROTO syntax: ${proto}`);
  return out;
}

function isIpAddr(a: string): boolean {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(a)) return a.split('.').every((n) => Number(n) <= 255);
  return /^[0-9a-f:.]+$/i.test(a) && a.includes(':');
}

export class XclientError extends Error {
  readonly code: number;
  readonly enh: string;
  constructor(code: number, enh: string, text: string) { super(text); this.code = code; this.enh = enh; }
}

/** Postfix XCLIENT: become the client the proxy names, then greet again. */
export async function cmdXclient(session: SmtpdSession, arg: string): Promise<void> {
  const s = session.state;
  if (s.tx) return session.error(503, '5.5.1', 'Error: MAIL transaction in progress');
  if (!(await session.deps.xclientAllowed?.(s.clientName, s.clientAddr))) return session.error(550, '5.7.0', 'Error: insufficient authorization');
  let a;
  try { a = parseXAttrs(arg, XCLIENT_ATTRS, 'XCLIENT'); } catch (e) {
    if (e instanceof XclientError) return session.error(e.code, e.enh, e.message);
    throw e;
  }
  if (a.has('ADDR')) s.clientAddr = (a.get('ADDR') ?? 'unknown').replace(/^IPV6:/i, '');
  if (a.has('NAME')) s.clientName = a.get('NAME') ?? 'unknown';
  if (a.has('PORT')) s.clientPort = Number(a.get('PORT') ?? 0);
  if (a.has('LOGIN')) { s.saslUsername = a.get('LOGIN'); s.saslMethod = s.saslUsername ? 'XCLIENT' : undefined; }
  s.helo = a.has('HELO') ? a.get('HELO') : undefined;
  if (a.has('PROTO')) s.protocol = (a.get('PROTO') ?? 'SMTP').toUpperCase() === 'ESMTP' ? 'ESMTP' : 'SMTP';
  log.info(`${s.sessionId}: XCLIENT as ${session.client}`);
  session.accessDenied = false;
  const v = await session.deps.policy.connect?.(s);
  if (v?.reply) {
    session.reply(v.reply.code, v.reply.enh, v.reply.text);
    if (v.disconnect) return session.hangup();
    session.accessDenied = true;
    return;
  }
  // Postfix: the milters start over as for a new connection from the XCLIENT client.
  if (!(await session.restartMilters())) return;
  session.writeLine(`220 ${session.st.banner}`);
}

/** Postfix XFORWARD: remember the original client for the next transaction's queue file. */
export async function cmdXforward(session: SmtpdSession, arg: string): Promise<void> {
  if (session.state.tx) return session.error(503, '5.5.1', 'Error: MAIL transaction in progress');
  // XFORWARD authorization stays with the real peer (the proxy), even after XCLIENT.
  if (!(await session.deps.xforwardAllowed?.(session.realName, session.realAddr))) return session.error(550, '5.7.0', 'Error: insufficient authorization');
  try {
    const a = parseXAttrs(arg, XFORWARD_ATTRS, 'XFORWARD');
    for (const [k, v] of a) session.xforward.set(k, v);
  } catch (e) {
    if (e instanceof XclientError) return session.error(e.code, e.enh, e.message);
    throw e;
  }
  session.reply(250, '2.0.0', 'Ok');
}
