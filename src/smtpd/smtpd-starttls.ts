/**
 * smtpd-starttls - the STARTTLS command (RFC 3207) of an SMTP session, as Postfix's
 * smtpd_starttls(): "220 2.0.0 Ready to start TLS", the handshake on the same connection, then
 * the session goes on over TLS with everything learned before forgotten (RFC 3207 §4.2: HELO,
 * the transaction); the client must EHLO again.
 *
 * Contract with smtpd-session.ts: cmdStarttls(session, arg) is the STARTTLS entry of the
 * command table. It swaps the session's socket (detachSocket/attachSocket); a failed handshake
 * ends the session without a reply (abandon), as Postfix does after SSL_accept fails.
 *
 * SECURITY: plaintext the client pipelined after STARTTLS is discarded, never read as commands
 * after the handshake (CVE-2011-0411 class). smtpd_client_new_tls_session_rate_limit is checked
 * first (anvil): "454 4.7.0 Error: too many new TLS sessions from ...".
 */
import type { TLSSocket } from 'node:tls';
import { startServerTls, describeTls } from '../lib-tls/tls-server.ts';
import { logger } from '../util/msg.ts';
import type { SmtpdSession } from './smtpd-session.ts';

const log = logger('smtpd');

export async function cmdStarttls(s: SmtpdSession, arg: string): Promise<void> {
  if (arg.trim()) return s.error(501, '5.5.4', 'Syntax: STARTTLS');
  if (s.state.tls) return s.error(554, '5.5.1', 'Error: TLS already active');
  const tls = s.deps.tls;
  if (!tls) return s.error(502, '5.5.1', 'Error: command not implemented');
  const m = s.milters?.other(true);
  if (m) return s.error(m.code, m.enh, m.text);
  // Postfix smtpd_starttls(): "454 4.7.0 Error: too many new TLS sessions from addr".
  const refused = await s.deps.limits?.checkNewTls(s.state, false);
  if (refused) return s.error(refused.code, refused.enh, refused.text);
  s.reply(220, '2.0.0', 'Ready to start TLS');
  s.flush();
  if (s.inbuf.length) {
    log.warn(`${s.client}: discarding ${s.inbuf.length} bytes of plaintext sent after STARTTLS (command injection attempt?)`);
    s.inbuf = Buffer.alloc(0);
  }
  const raw = s.detachSocket();
  let t: TLSSocket;
  try {
    t = await startServerTls(raw, tls.context, tls.handshakeMs ?? s.st.timeoutMs, { requestCert: tls.askCcert ?? false });
  } catch (e) {
    log.warn(`SSL_accept error from ${s.client}: ${(e as Error).message}`);
    s.abandon(raw);
    return;
  }
  s.attachSocket(t);
  s.markTls(t);
  void s.deps.limits?.countNewTls(s.state, t.isSessionReused());
  log.info(`Anonymous TLS connection established from ${s.client}: ${describeTls(t)}`);
  // RFC 3207 §4.2: forget everything learned before TLS; the client must EHLO again.
  await s.abortTx();
  s.state.helo = undefined;
  s.state.protocol = 'SMTP';
}
