/**
 * login-serve - the listeners of a Dovecot login service (login-common/main.c): every listener
 * of the service gets a session; one marked `ssl = yes` (pop3s, the sieve TLS port) starts TLS
 * from the first byte and is never served in clear without a certificate; the others may
 * upgrade with STARTTLS/STLS when dovecot.conf has a certificate (reloadable, with local_name
 * certificates by SNI: lib-tls/tls-dovecot.ts).
 *
 * SUMMARY
 *   serveLoginListeners(ctx, protocol, handle) → { stop() }
 *   handle(sock, { tls: true, slot })          a TLS socket (implicit TLS listener)
 *   handle(sock, { startTls?, slot })          a plain socket; startTls upgrades it
 */
import type { Socket } from 'node:net';
import { serveSessions, type SessionSlot } from '../lib-master/master-session.ts';
import type { ServiceContext } from '../lib-master/master-service.ts';
import { dovecotTlsProvider } from '../lib-tls/tls-dovecot.ts';
import { acceptImplicitTls, startServerTls } from '../lib-tls/tls-server.ts';

/** How long a client has to finish the TLS handshake. */
const HANDSHAKE_MS = 60_000;

export interface LoginSessionOptions {
  tls?: boolean;
  startTls?: (sock: Socket) => Promise<Socket>;
  slot?: SessionSlot;
}

export function serveLoginListeners(ctx: ServiceContext, protocol: string,
  handle: (sock: Socket, o: LoginSessionOptions) => Promise<void>): { stop(): Promise<void> } {
  const tls = dovecotTlsProvider(ctx.dovecot, protocol, ctx.log);
  const startTls = tls ? (s: Socket) => startServerTls(s, tls, HANDSHAKE_MS) as Promise<Socket> : undefined;
  const server = serveSessions(ctx, async (sock, listener, slot) => {
    if (listener.ssl) {
      const t = await acceptImplicitTls(sock, tls, HANDSHAKE_MS, listener.name, ctx.log);
      if (!t) return;
      return handle(t, { tls: true, slot });
    }
    return handle(sock, { ...(startTls ? { startTls } : {}), slot });
  });
  return {
    async stop() {
      tls?.close();
      await server.stop();
    },
  };
}
