/**
 * smtpd-etrn - the ETRN command (RFC 1985; Postfix smtpd.c etrn_cmd(), ETRN_README): a client
 * asks that the mail queued for a site be delivered now.
 *
 *   ETRN [@|#]domain
 *     503 5.5.1 Error: send HELO/EHLO first (smtpd_helo_required), 503 Error: MAIL transaction
 *     in progress, 500 Syntax: ETRN domain, 501 Error: invalid parameter syntax (no enhanced
 *     status codes, as Postfix 3.7 answers); then smtpd_etrn_restrictions (check_etrn_access; with
 *     smtpd_delay_reject the client and HELO restrictions first); then the flush: a domain in
 *     fast_flush_domains (default $relay_domains) gets "250 Queuing started", another one
 *     "459 <domain>: service unavailable", a failure "458 Unable to queue messages".
 *
 * Postern's flush differs from Postfix's flush(8): there are no per-site logfiles; the qmgr is
 * asked to retry its whole deferred queue now (postern queue flush), which includes the site's
 * mail.
 */
import { logger } from '../util/msg.ts';
import { validHostname } from '../global/address-syntax.ts';
import type { SmtpdSession } from './smtpd-session.ts';

const log = logger('smtpd');

export async function cmdEtrn(s: SmtpdSession, arg: string): Promise<void> {
  if (s.st.heloRequired && !s.state.helo) return s.error(503, '5.5.1', 'Error: send HELO/EHLO first');
  if (s.state.tx) return s.error(503, '', 'Error: MAIL transaction in progress');
  const words = arg.trim().split(/\s+/).filter(Boolean);
  if (words.length !== 1) return s.error(500, '', 'Syntax: ETRN domain');
  let domain = words[0]!;
  if (!/^[A-Za-z0-9]/.test(domain)) domain = domain.slice(1);
  if (!validHostname(domain)) return s.error(501, '', 'Error: invalid parameter syntax');
  if (!(await s.verdict(await s.deps.policy.etrn?.(s.state, domain), 'ETRN', ''))) return;
  const r = s.deps.flushSite ? await s.deps.flushSite(domain).catch(() => 'fail' as const) : 'fail';
  if (r === 'ok') return s.reply(250, '', 'Queuing started');
  if (r === 'deny') {
    log.info(`reject: ETRN ${domain.slice(0, 100)}... from ${s.client}`);
    return s.error(459, '', `<${domain}>: service unavailable`);
  }
  log.warn(`bad ETRN ${domain.slice(0, 100)}... from ${s.client}`);
  return s.error(458, '', 'Unable to queue messages');
}
