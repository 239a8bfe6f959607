/**
 * postscreen-client - the contract between postscreen(8) and the smtpd it screens for: "run the
 * before-greeting tests on this new connection, then tell me whether to serve it" (Postfix runs
 * postscreen as the daemon in front of smtpd, which then receives the connection; psc_send.c).
 *
 * SUMMARY
 *   const screen = openPostscreen(config, { dns });   // PostscreenOpener; undefined = tests off
 *   const v = await screen.screen(sock);              // socket left paused, early bytes pushed back
 *   if (!v.pass) return;                              // answered (521) and closed
 *   if (v.enforce) ...every RCPT gets v.enforce...
 *
 * DESCRIPTION
 *   One-way: smtpd knows only this contract, postscreen knows no smtpd. smtpd asks at the point
 *   where Postfix's postscreen would have handed the connection over (after smtpd's own anvil
 *   admission here, and never on an implicit-TLS port); the master passes postscreen/'s
 *   implementation (postscreen.ts openPostscreen) in when it assembles smtpd.
 */
import type { Socket } from 'node:net';
import type { MainConfig } from './mail-conf.ts';
import type { DnsResolver } from '../util/dns-resolver.ts';

export interface PostscreenVerdict {
  /** false: the client was answered (521) and the connection closed; do not start a session. */
  pass: boolean;
  /** enforce: reject every RCPT with this reply (code, RFC 3463 code, text). */
  enforce?: { code: number; enh: string; text: string };
  /** What the client sent before its turn (already pushed back into the socket). */
  pregreet?: Buffer;
  /** The combined DNSBL score. */
  dnsblScore?: number;
}

export interface PostscreenClient {
  /** The before-greeting tests on a new connection. */
  screen(sock: Socket): Promise<PostscreenVerdict>;
}

/**
 * postscreen for a configuration: undefined when no test would be enforced (nothing to do);
 * throws ConfigError for a bad postscreen_* value. `dns` overrides postern_dns_servers.
 */
export type PostscreenOpener = (config: MainConfig, deps: { dns?: DnsResolver }) => PostscreenClient | undefined;
