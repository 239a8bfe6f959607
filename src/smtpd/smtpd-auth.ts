/**
 * smtpd-auth - the AUTH command (RFC 4954) of an SMTP session, as Postfix's smtpd_sasl_auth_cmd():
 * the mechanism exchange runs through the session's SmtpdAuth (smtpd-sasl.ts, Dovecot-style
 * SASL); this file owns the SMTP side: when AUTH is allowed, the 334 challenges and the client's
 * answers, and the 235 / 535 replies.
 *
 * Contract with smtpd-session.ts: cmdAuth(session, arg) is the AUTH entry of the command table.
 * While the exchange runs, the session's reading loop is parked inside this command, so each
 * client line is taken here (session.takeLine) instead of being read as a command.
 *
 * Postfix replies: "503 5.5.1 Error: authentication not enabled" (no SASL, or
 * smtpd_tls_auth_only before STARTTLS), "503 5.5.1 Error: already authenticated",
 * "503 5.5.1 Error: MAIL transaction in progress", "235 2.7.0 Authentication successful",
 * and by default "535 5.7.8 Error: authentication failed: authentication failure"
 * (an error that counts towards smtpd_hard_error_limit). Passwords are never logged.
 */
import { logger } from '../util/msg.ts';
import type { SmtpdSession } from './smtpd-session.ts';

const log = logger('smtpd');

export async function cmdAuth(s: SmtpdSession, arg: string): Promise<void> {
  const auth = s.deps.auth;
  if (!auth || !s.st.authEnabled) return s.error(503, '5.5.1', 'Error: authentication not enabled');
  if (s.st.tlsAuthOnly && !s.state.tls) return s.error(503, '5.5.1', 'Error: authentication not enabled');
  if (s.state.saslUsername) return s.error(503, '5.5.1', 'Error: already authenticated');
  if (s.state.tx) return s.error(503, '5.5.1', 'Error: MAIL transaction in progress');
  const m = s.milters?.other(true);
  if (m) return s.error(m.code, m.enh, m.text);
  const r = await auth.authenticate(arg, s.state, (challenge) => saslExchange(s, challenge));
  if (r.ok) {
    s.state.saslUsername = r.user;
    s.state.saslMethod = r.mechanism;
    s.reply(235, '2.7.0', 'Authentication successful');
  } else {
    log.warn(`${s.client}: SASL ${r.mechanism ?? ''} authentication failed: ${r.logReason ?? 'authentication failure'}`);
    s.error(r.code ?? 535, r.enh ?? '5.7.8', r.text ?? 'Error: authentication failed: authentication failure');
  }
}

/** Send a 334 challenge and wait for the client's next line (RFC 4954 §4); undefined = gone. */
function saslExchange(s: SmtpdSession, challenge: string): Promise<string | undefined> {
  s.writeLine(`334 ${challenge}`);
  s.flush();
  const sock = s.sock;
  return new Promise((resolve) => {
    const tryTake = () => {
      const l = s.takeLine();
      // Each exchange removes its own listeners: a session may run many AUTH dialogues.
      if (l !== undefined) { sock.off('data', onMore); sock.off('close', onClose); resolve(l); return true; }
      return false;
    };
    const onMore = () => { tryTake(); };
    const onClose = () => { sock.off('data', onMore); resolve(undefined); };
    sock.once('close', onClose);
    if (!tryTake()) sock.on('data', onMore);
  });
}
