/**
 * smtpd-service - smtpd(8) as a master service: one instance per `inet ... smtpd` line of
 * master.cf (smtp, submission, submissions), with that line's -o overrides already applied to
 * ctx.config. Wires the protocol engine (smtpd.ts) to the access policy (smtpd-check.ts), the
 * shared user directory (SASL), the queue, and the in-process qmgr trigger.
 */
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { serveSessions } from '../lib-master/master-session.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { trigger } from '../global/mail-trigger.ts';
import { TrivialRewrite } from '../trivial-rewrite/trivial-rewrite.ts';
import { SmtpdCheck } from './smtpd-check.ts';
import { createSmtpd } from './smtpd.ts';
import { penalizedAuth } from '../anvil/anvil-smtpd.ts';
import { configureSharedAnvil } from '../anvil/anvil.ts';
import { sharedAuthPenalty } from '../anvil/auth-penalty.ts';

export const service: ServiceImpl = {
  name: 'smtpd',
  async start(ctx) {
    const config = ctx.config;
    configureSharedAnvil(config); // anvil_rate_time_unit; one table for every listener
    const queue = MailQueue.fromConfig(config);
    queue.ensureDirs();
    const rewrite = await TrivialRewrite.open(config);
    const policy = await SmtpdCheck.open(config, { rewrite });
    let auth;
    if (config.bool('smtpd_sasl_auth_enable')) {
      const { openUserDirectory } = await import('../lib-auth/user-directory-open.ts');
      // Dovecot's auth_penalty, shared with imapd/pop3d: failed logins slow the next attempt.
      auth = penalizedAuth(await openUserDirectory(ctx.dovecot), sharedAuthPenalty());
    }
    const smtpd = createSmtpd(config, { queue, policy, auth, service: ctx.entry.service, notify: (qid) => { trigger('qmgr', qid); } });
    return serveSessions(ctx, (sock) => new Promise<void>((resolve) => {
      sock.once('close', () => resolve());
      smtpd.handle(sock);
    }));
  },
};
