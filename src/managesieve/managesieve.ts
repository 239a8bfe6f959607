/**
 * managesieve - the ManageSieve server (Pigeonhole's managesieve-login + managesieve), one
 * service for every listener of `service managesieve-login { inet_listener sieve { port = 4190 } }`
 * when dovecot.conf's `protocols` names `sieve`.
 *
 * SUMMARY
 *   service: ServiceImpl 'managesieve' for the master; createManageSieve(deps) →
 *   { handle(socket, options) } for tests and embedding.
 *
 * DESCRIPTION
 *   RFC 5804: users upload, check, list, fetch, rename, delete and activate their Sieve scripts
 *   (Roundcube's managesieve plug-in, Thunderbird's sieve add-on, sieve-connect). Scripts are
 *   stored in Pigeonhole's layout (plugin { sieve = file:~/sieve;active=~/.dovecot.sieve }:
 *   global/sieve-location.ts, managesieve-storage.ts), so delivery — Postern's or real
 *   Dovecot's — runs the script the user activated. Every upload gets the full compile check of
 *   lib-sieve (managesieve-compile.ts) with Pigeonhole's error report. See docs/managesieve.md.
 *
 * SECURITY
 *   Talks to clients on the network before and after login: every byte is hostile. Lines are
 *   bounded (4096 bytes before login, managesieve_max_line_length after), literals are refused
 *   by their announced size before they are read (a script over sieve_max_script_size is
 *   answered NO (QUOTA/MAXSIZE) and its bytes are dropped as they come, never held), failed
 *   logins go through the master's auth penalty (the same as IMAP and POP3), plaintext logins
 *   are refused on non-secure connections when disable_plaintext_auth = yes. Script names are
 *   checked (no '/', no control characters, valid UTF-8) before they become file names in the
 *   user's own script directory.
 *
 * STANDARDS
 *   RFC 5804 (ManageSieve), RFC 4616 (PLAIN), RFC 5228 (Sieve, via lib-sieve).
 *
 * DIAGNOSTICS
 *   `managesieve-login: Login: user=<u>, method=PLAIN, rip=..., lip=..., secured, session=<id>`,
 *   `managesieve(u)<id>: Disconnected: Logged out bytes=120/512 put=1/36 get=0/0 ...`.
 *
 * PARAMETERS (dovecot.conf)
 *   protocols (sieve), service managesieve-login { inet_listener sieve }, login_greeting,
 *   managesieve_implementation_string, managesieve_sieve_capability,
 *   managesieve_notify_capability, managesieve_max_line_length, managesieve_max_compile_errors,
 *   auth_failure_delay, disable_plaintext_auth, auth_mechanisms, ssl/ssl_cert/ssl_key,
 *   plugin { sieve sieve_extensions sieve_max_script_size sieve_quota_max_scripts
 *   sieve_quota_max_storage sieve_max_redirects }, passdb/userdb.
 */
import type { Socket } from 'node:net';
import { openUserDirectory } from '../lib-auth/user-directory-open.ts';
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { serveLoginListeners } from '../lib-login/login-serve.ts';
import { ManageSieveSession, type ManageSieveDeps, type ManageSieveSessionOptions } from './managesieve-session.ts';
import { managesieveSettings } from './managesieve-settings.ts';

export interface ManageSieve {
  handle(sock: Socket, o?: ManageSieveSessionOptions): Promise<void>;
}

export function createManageSieve(deps: ManageSieveDeps): ManageSieve {
  return { handle: (sock, o = {}) => new ManageSieveSession(sock, deps, { ...o }).run() };
}

export const service: ServiceImpl = {
  name: 'managesieve',
  async start(ctx) {
    const settings = managesieveSettings(ctx.dovecot);
    const directory = await openUserDirectory(ctx.dovecot);
    const ms = createManageSieve({ directory, settings, log: ctx.log, penalty: ctx.authPenalty });
    const server = serveLoginListeners(ctx, 'sieve', (sock, o) => ms.handle(sock, o));
    return {
      async stop() {
        await server.stop();
        await directory.close();
      },
    };
  },
};
