/**
 * pop3d - the POP3 server (Dovecot's pop3-login + pop3), one service for every `pop3` listener
 * of dovecot.conf (`service pop3-login { inet_listener pop3 / pop3s }`).
 *
 * SUMMARY
 *   service: ServiceImpl 'pop3d' for the master; createPop3d(deps) → { handle(socket, tls) }
 *   for tests and embedding.
 *
 * DESCRIPTION
 *   RFC 1939 with CAPA, RESP-CODES, AUTH-RESP-CODE, PIPELINING (RFC 2449) and SASL (RFC 5034)
 *   on the shared user directory and mailbox store. UIDLs follow pop3_uidl_format (Dovecot's
 *   default %08Xu%08Xv), so clients moving from Dovecot do not download everything again.
 *   See docs/pop3d.md.
 *
 * SECURITY
 *   Talks to POP3 clients on the network before and after login: every line is hostile.
 *   Lines are limited to 4096 bytes, failed logins are slowed down (auth_failure_delay),
 *   plaintext logins are refused on non-secure connections when disable_plaintext_auth = yes.
 *   Reads mail only through lib-storage, for the user the directory returned.
 *
 * STANDARDS
 *   RFC 1939 (POP3), RFC 2449 (CAPA, response codes), RFC 3206 (SYS/AUTH codes),
 *   RFC 5034 (SASL), RFC 4616 (PLAIN), RFC 2595 (STLS: hook only, see pop3d-session.ts).
 *
 * DIAGNOSTICS
 *   `pop3-login: Login: user=<u>, method=PLAIN, rip=..., lip=...`,
 *   `pop3(u)<session>: Disconnected: Logged out top=0/0, retr=1/204, del=1/3, size=612`.
 *
 * PARAMETERS (dovecot.conf)
 *   login_greeting, auth_failure_delay, disable_plaintext_auth, auth_mechanisms,
 *   pop3_lock_session, pop3_uidl_format, pop3_logout_format, mail_location + passdb/userdb.
 */
import type { Socket } from 'node:net';
import { openUserDirectory } from '../lib-auth/user-directory-open.ts';
import { MaildirStore } from '../lib-storage/maildir/maildir-storage.ts';
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { Pop3Session, type Pop3dDeps, type Pop3SessionOptions } from './pop3d-session.ts';
import { pop3dSettings } from './pop3d-settings.ts';
import { serveLoginListeners } from '../lib-login/login-serve.ts';

export interface Pop3d {
  /** Serve one connection; `o.tls` for pop3s sockets, `o.startTls` enables STLS (the TLS issue). */
  handle(sock: Socket, o?: Pop3SessionOptions): Promise<void>;
}

export function createPop3d(deps: Pop3dDeps): Pop3d {
  return {
    handle: (sock, o = {}) => new Pop3Session(sock, deps, { ...o }).run(),
  };
}

export const service: ServiceImpl = {
  name: 'pop3d',
  async start(ctx) {
    const directory = await openUserDirectory(ctx.dovecot);
    const sep = ctx.dovecot.namespaces.find((n) => n.inbox)?.separator;
    const store = new MaildirStore(sep ? { separator: sep } : {});
    const pop3d = createPop3d({ directory, store, settings: pop3dSettings(ctx.dovecot), log: ctx.log, penalty: ctx.authPenalty });
    // pop3s: TLS from the first byte, never in clear; STLS with a reloadable certificate.
    const server = serveLoginListeners(ctx, 'pop3', (sock, o) => pop3d.handle(sock, o));
    return {
      async stop() {
        await server.stop();
        await directory.close();
      },
    };
  },
};
