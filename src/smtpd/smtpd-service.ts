/**
 * smtpd-service - smtpd(8) as a master service: one instance per `inet ... smtpd` line of
 * master.cf (smtp, submission, submissions), with that line's -o overrides already applied to
 * ctx.config. Wires the protocol engine (smtpd.ts) to the access policy (smtpd-check.ts), the
 * shared user directory (SASL), the queue, and the in-process qmgr trigger.
 *
 * SUMMARY
 *   smtpdService(clients) → the ServiceImpl; clients are the services smtpd is a client of,
 *   through their global/ contracts (cleanup, trivial-rewrite, anvil and the auth penalty,
 *   postscreen), which the master passes in (master/master-smtpd.ts).
 */
import type { MainConfig } from '../global/mail-conf.ts';
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { serveSessions } from '../lib-master/master-session.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { trigger } from '../global/mail-trigger.ts';
import type { AnvilClient } from '../global/anvil-client.ts';
import type { ResolveOpener } from '../global/resolve-client.ts';
import { SmtpdCheck } from './smtpd-check.ts';
import { VerifyCache, VerifyClient, probeSender } from '../global/verify-client.ts';
import { createSmtpd, type SmtpdClients } from './smtpd.ts';
import { penalizedAuth, type AuthPenaltyDirectory } from './smtpd-anvil.ts';

export interface SmtpdServiceClients extends Omit<SmtpdClients, 'anvil'> {
  /** trivial-rewrite for the access checks (global/resolve-client.ts). */
  openRewrite: ResolveOpener;
  /** The process-wide anvil table, set up for this configuration (anvil_rate_time_unit). */
  anvil(config: MainConfig): AnvilClient;
  /** The process-wide auth penalty (Dovecot's auth_penalty) put on SMTP AUTH. */
  authPenalty(): AuthPenaltyDirectory;
}

export function smtpdService(clients: SmtpdServiceClients): ServiceImpl {
  return {
    name: 'smtpd',
    async start(ctx) {
      const config = ctx.config;
      const anvil = clients.anvil(config); // anvil_rate_time_unit; one table for every listener
      const queue = MailQueue.fromConfig(config);
      queue.ensureDirs();
      const rewrite = await clients.openRewrite(config);
      const notifyQmgr = (qid: string) => { trigger('qmgr', qid); };
      const verify = new VerifyClient(config, VerifyCache.forConfig(config), probeSender(clients.cleanup, queue, config, notifyQmgr));
      const policy = await SmtpdCheck.open(config, { rewrite, verify });
      let auth;
      if (config.bool('smtpd_sasl_auth_enable')) {
        const { openUserDirectory } = await import('../lib-auth/user-directory-open.ts');
        // Dovecot's auth_penalty, shared with imapd/pop3d: failed logins slow the next attempt.
        // The mechanisms are Dovecot's auth_mechanisms, as a Postfix with smtpd_sasl_type = dovecot offers.
        const { offeredMechanisms } = await import('../lib-auth/sasl-oauth2.ts');
        auth = penalizedAuth(await openUserDirectory(ctx.dovecot), clients.authPenalty(), offeredMechanisms(ctx.dovecot.authMechanisms));
      }
      const smtpd = createSmtpd(config, {
        cleanup: clients.cleanup, anvil, postscreen: clients.postscreen,
        queue, policy, auth, service: ctx.entry.service, notify: (qid) => { trigger('qmgr', qid); }, resolve: rewrite,
      });
      // The anvil count (smtpd_client_connection_count_limit) is checked before a connection
      // takes one of the maxproc slots, so one client's connections cannot hold them all; a
      // session frees its slot when it ends (221, 421), not when the client closes.
      const server = serveSessions(ctx, (sock, _listener, slot) => new Promise<void>((resolve) => {
        sock.once('close', () => resolve());
        smtpd.handle(sock, { admitted: true, stress: slot.stress, end: slot.end });
      }), { admit: (sock, _listener, stress) => smtpd.admit(sock, stress) });
      // Policy servers' connections end with this instance (a spawned policyd-spf then exits),
      // as they do when a Postfix smtpd process exits.
      return { ...server, stop: async () => { await server.stop(); await policy.close(); } };
    },
  };
}
