/**
 * lmtpd - the LMTP server (Dovecot's lmtp), final delivery into the mailbox store, for every
 * `lmtp` listener of dovecot.conf: `service lmtp { unix_listener lmtp {} inet_listener lmtp {} }`.
 *
 * SUMMARY
 *   service: ServiceImpl 'lmtpd' for the master; createLmtpd(deps) → { handle(socket) } for tests,
 *   benchmarks and embedding.
 *
 * DESCRIPTION
 *   Any MTA delivers through it: Postern's own lmtp client or a real Postfix with
 *   `virtual_transport = lmtp:inet:host:port` or `lmtp:unix:/path`. Recipients are checked in
 *   the shared user directory; each accepted recipient gets its own reply after DATA (RFC 2033),
 *   only once the message is durable. See lmtpd-session.ts and docs/lmtpd.md.
 *
 * SECURITY
 *   Talks to MTAs, not to end users: LMTP has no authentication, so its listeners belong on
 *   loopback, a unix socket or a trusted network (as with Dovecot). Input is still treated as
 *   hostile: command lines are limited to 4096 bytes, messages to 256 MB, a transaction to 50,000
 *   recipients; mailbox names taken from address details are validated by lib-storage.
 *
 * STANDARDS
 *   RFC 2033 (LMTP), RFC 5321, RFC 2920 (PIPELINING), RFC 6152 (8BITMIME), RFC 2034
 *   (ENHANCEDSTATUSCODES), RFC 3463, RFC 3207 (STARTTLS).
 *
 * DIAGNOSTICS
 *   `lmtp(user)<SESSION:Tn:Rn>: msgid=<id>: saved mail to INBOX`, `... save failed ...`.
 *
 * PARAMETERS (dovecot.conf)
 *   hostname, login_greeting, recipient_delimiter, lmtp_save_to_detail_mailbox,
 *   lmtp_rcpt_check_quota, lmtp_add_received_header, quota_full_tempfail, mail_location,
 *   passdb/userdb (quota_rule).
 */
import type { Socket } from 'node:net';
import { openUserDirectory } from '../lib-auth/user-directory-open.ts';
import { MaildirStore } from '../lib-storage/maildir/maildir-storage.ts';
import { serveSessions, type SessionSlot } from '../lib-master/master-session.ts';
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { LmtpSession, type LmtpdDeps } from './lmtpd-session.ts';
import { lmtpdSettings } from './lmtpd-settings.ts';
import { dovecotTlsProvider } from '../lib-tls/tls-dovecot.ts';
import { acceptImplicitTls } from '../lib-tls/tls-server.ts';
import type { CleanupClient } from '../global/cleanup-client.ts';
import { cleanupSubmitter } from '../global/cleanup-submit.ts';
import type { SieveSend } from '../lib-storage/mail-deliver.ts';

export interface Lmtpd {
  /** Serve one connection; `o.tls` when it is already TLS (an ssl listener). */
  handle(sock: Socket, o?: { tls?: boolean; slot?: SessionSlot }): Promise<void>;
}

export function createLmtpd(deps: LmtpdDeps): Lmtpd {
  return { handle: (sock, o) => new LmtpSession(sock, deps, o).run() };
}

/**
 * The master's service; `cleanup` (master-lmtpd.ts gives it) queues Sieve's redirects and
 * replies (global/cleanup-submit.ts). Without it they are logged and dropped.
 */
export function lmtpdService(cleanup?: CleanupClient): ServiceImpl {
  return {
    name: 'lmtpd',
    async start(ctx) {
      const directory = await openUserDirectory(ctx.dovecot);
      const sep = ctx.dovecot.namespaces.find((n) => n.inbox)?.separator;
      const store = new MaildirStore(sep ? { separator: sep } : {});
      // STARTTLS when dovecot.conf has ssl != no and an ssl_cert (reloadable, SNI: lib-tls).
      const tls = ctx.dovecot.ssl === 'no' ? undefined : dovecotTlsProvider(ctx.dovecot, 'lmtp', ctx.log);
      const handshakeMs = 60_000;
      const submitter = cleanup ? cleanupSubmitter(ctx.config, cleanup, 'lmtp') : undefined;
      const submit = submitter ? async (m: SieveSend): Promise<void> => {
        const qid = await submitter(m.sender, m.recipients, m.content);
        ctx.log.info(`lmtp: sieve ${m.kind} from <${m.sender}> to <${m.recipients.join('>, <')}> queued as ${qid}`);
      } : undefined;
      const lmtpd = createLmtpd({ directory, store, settings: lmtpdSettings(ctx.dovecot, ctx.config?.get?.('myhostname')), log: ctx.log, ...(tls ? { tls, tlsHandshakeMs: handshakeMs } : {}), ...(submit ? { submit } : {}) });
      const server = serveSessions(ctx, async (sock, listener, slot) => {
        if (!listener.ssl) return lmtpd.handle(sock, { slot });
        // inet_listener lmtp { ssl = yes }: TLS from the first byte, never in clear.
        const t = await acceptImplicitTls(sock, tls, handshakeMs, listener.name, ctx.log);
        if (!t) return;
        return lmtpd.handle(t, { tls: true, slot });
      });
      return {
        async stop() {
          tls?.close();
          await server.stop();
          await directory.close();
        },
      };
    },
  };
}

export const service: ServiceImpl = lmtpdService();
