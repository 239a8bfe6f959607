/**
 * NAME
 *   imapd - Postern's IMAP server (Dovecot's imap-login + imap in one process)
 * SUMMARY
 *   The `imap` protocol of dovecot.conf: one in-process service serving every `imap`/`imaps`
 *   inet_listener the master binds, on the shared mailbox store (lib-storage) and the shared
 *   user directory (lib-auth).
 * DESCRIPTION
 *   IMAP4rev1 (RFC 3501) with the extensions listed in imapd-capability.ts. Each connection is
 *   an ImapSession (imapd-session.ts); commands are in cmd-*.ts, dispatched by the table in
 *   imapd-commands.ts. Mail arriving through MailUser.deliver() in this process (virtual,
 *   lmtpd, APPEND) wakes IDLE sessions at once; other writers through inotify.
 * SECURITY
 *   Talks to untrusted network clients. Every input goes through lib-imap's bounded parser
 *   (imap_max_line_length, literal limits, no recursion); mailbox names through lib-storage's
 *   validation (nothing outside the user's mail root). Plaintext logins are refused on
 *   non-TLS, non-loopback connections when disable_plaintext_auth = yes. Runs as the master's
 *   user; mailbox files inherit the owner of their directory when that is root.
 * STANDARDS
 *   RFC 3501, 9051 (partly), 2177, 2342, 2971, 3348, 3502, 3516, 3691, 4315, 4469, 4731, 4959,
 *   4978, 5032, 5161, 5182, 5256, 5258, 5267, 5819, 5957, 6154, 6851, 7162, 7888, 8438, 8514, 9208.
 * DIAGNOSTICS
 *   `imap-login: Login: user=<u>, method=PLAIN, rip=..., lip=..., session=<id>`,
 *   `imap(u)<id>: Disconnected: Logged out in=N out=N`, internal errors with a stack.
 * PARAMETERS (dovecot.conf)
 *   login_greeting, disable_plaintext_auth, auth_mechanisms, auth_failure_delay,
 *   mail_max_userip_connections, imap_idle_notify_interval, imap_max_line_length, mail_max_size,
 *   ssl, ssl_cert, ssl_key, namespace inbox { separator prefix mailbox X { special_use auto } },
 *   mail_location, passdb, userdb.
 */
import type { Socket } from 'node:net';
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import type { UserDirectory } from '../lib-auth/user-directory.ts';
import type { MailStore } from '../lib-storage/mail-storage.ts';
import { MaildirStore } from '../lib-storage/maildir/maildir-storage.ts';
import { logger, type Logger } from '../util/msg.ts';
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { serveSessions, type SessionSlot } from '../lib-master/master-session.ts';
import { startServerTls } from '../lib-tls/tls-server.ts';
import { dovecotTlsProvider } from '../lib-tls/tls-dovecot.ts';
import { imapdSettings, parseDovecotTime, type ImapdSettings } from './imapd-settings.ts';
import { setMailboxIdleCheckInterval } from '../lib-storage/mail-notify-watch.ts';
import { anvilUserIpCounts, ImapdShared } from './imapd-shared.ts';
import type { AnvilClient } from '../global/anvil-client.ts';
import { ImapSession } from './imapd-session.ts';

export interface ImapdOptions {
  dovecot: DovecotConfig;
  /** Default: openUserDirectory(dovecot). */
  directory?: UserDirectory;
  /** Default: a MaildirStore with the inbox namespace's separator. */
  store?: MailStore;
  log?: Logger;
  /** Test aids: override settings read from dovecot.conf. */
  settings?: Partial<ImapdSettings>;
  /** The master's auth penalty (ServiceContext.authPenalty); without it, the per-IP delay of imapd-shared.ts. */
  penalty?: ImapdShared['penalty'];
  /** The master's anvil (ServiceContext.anvil): mail_max_userip_connections across processes. */
  anvil?: AnvilClient | undefined;
}

export class Imapd {
  readonly shared: ImapdShared;
  private readonly ownsDirectory: boolean;
  private readonly sessions = new Set<ImapSession>();

  constructor(shared: ImapdShared, ownsDirectory: boolean) {
    this.shared = shared;
    this.ownsDirectory = ownsDirectory;
  }

  /** Serve one accepted connection; `ssl` = implicit TLS (imaps); `slot` from serveSessions. */
  async handle(sock: Socket, o: { ssl: boolean; slot?: SessionSlot } = { ssl: false }): Promise<void> {
    let s = sock;
    if (o.ssl) {
      try { s = await startServerTls(sock, this.shared.tlsContext(), 30_000); } catch (e) {
        this.shared.log.info(`imap-login: Disconnected (no auth attempts): TLS handshaking failed: ${(e as Error).message}, rip=${sock.remoteAddress}`);
        sock.destroy();
        return;
      }
    }
    const session = new ImapSession(this.shared, s, o.slot ? { secure: o.ssl, slot: o.slot } : { secure: o.ssl });
    this.sessions.add(session);
    s.once('close', () => this.sessions.delete(session));
    session.start();
  }

  get sessionCount(): number { return this.sessions.size; }

  async close(): Promise<void> {
    for (const s of this.sessions) { s.send('* BYE Server shutting down.\r\n'); s.close(); }
    if (this.ownsDirectory) await this.shared.directory.close();
  }
}

export async function createImapd(o: ImapdOptions): Promise<Imapd> {
  const settings = { ...imapdSettings(o.dovecot), ...o.settings };
  // mailboxes past the kernel's inotify limits are looked at this often (Dovecot's setting and default)
  setMailboxIdleCheckInterval(parseDovecotTime(o.dovecot.get('mailbox_idle_check_interval'), 30_000));
  let directory = o.directory;
  const owns = !directory;
  if (!directory) {
    const { openUserDirectory } = await import('../lib-auth/user-directory-open.ts');
    directory = await openUserDirectory(o.dovecot);
  }
  const store = o.store ?? new MaildirStore({ separator: settings.separator });
  const log = o.log ?? logger('imap');
  // a bad certificate fails the service start with a message naming the setting
  const tls = dovecotTlsProvider(o.dovecot, 'imap', log);
  settings.starttls = tls !== undefined;
  const shared = new ImapdShared({ settings, directory, store, log, tls, penalty: o.penalty, ...(o.anvil ? { userIp: anvilUserIpCounts(o.anvil) } : {}) });
  return new Imapd(shared, owns);
}

export const service: ServiceImpl = {
  name: 'imapd',
  async start(ctx) {
    const imapd = await createImapd({ dovecot: ctx.dovecot, log: ctx.log, penalty: ctx.authPenalty, anvil: ctx.anvil });
    const srv = serveSessions(ctx, (sock, listener, slot) => imapd.handle(sock, { ssl: listener.ssl, slot }), { maxSessions: 0 });
    return {
      async stop() {
        await imapd.close();
        await srv.stop();
      },
    };
  },
};
