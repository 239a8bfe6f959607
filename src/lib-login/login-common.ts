/**
 * login-common - what Dovecot's login processes share (login-common/client-common.c,
 * client-common-auth.c), for pop3d and managesieve: the pre-login line limit, the bad-command
 * limits, the doubling delay after a failed login, login_trusted_networks, and the master's
 * auth penalty that holds failed logins itself.
 *
 * DESCRIPTION
 *   loginDirectory(dir, penalty, ip) is the user directory password checks go to: through the
 *   auth penalty when the master gave one (it then delays failures per client address).
 *
 *   holdAuthFailure(baseMs, failures, penalty) waits baseMs doubled per earlier failure of this
 *   session (at most 15 s, Dovecot's AUTH_FAILURE_DELAY max), unless the penalty holds it.
 *
 *   loginTrusted(ip, nets) is login_trusted_networks: is the client's address in one of the
 *   CIDR networks (util/cidr-match.ts inNetworkList)? An IPv4-mapped IPv6 address counts as IPv4.
 */
import type { UserDirectory } from '../lib-auth/user-directory.ts';
import { inNetworkList } from '../util/cidr-match.ts';

/** login-common: the pre-login input buffer (and pop3's command line limit). */
export const LOGIN_MAX_LINE = 4096;
/** login-common CLIENT_MAX_BAD_COMMANDS: the 3rd unknown command before login ends the session. */
export const LOGIN_MAX_BAD_COMMANDS = 3;
/** pop3/managesieve CLIENT_MAX_BAD_COMMANDS: more than 20 failed commands in a row end it. */
export const CLIENT_MAX_BAD_COMMANDS = 20;
/** Commands handled back to back before a session lets other connections run. */
export const YIELD_EVERY = 64;
const MAX_FAILURE_DELAY_MS = 15_000;

/** The master's auth penalty (ServiceContext.authPenalty). */
export interface AuthPenaltyHook { directory(dir: UserDirectory, clientAddr: string): UserDirectory }

/** "::ffff:1.2.3.4" → "1.2.3.4"; undefined → "". */
export function plainAddr(a: string | undefined): string { return (a ?? '').replace(/^::ffff:/, ''); }

export function loginDirectory(dir: UserDirectory, penalty: AuthPenaltyHook | undefined, clientIp: string): UserDirectory {
  return penalty ? penalty.directory(dir, clientIp) : dir;
}

export async function holdAuthFailure(baseMs: number, failures: number, penalty: AuthPenaltyHook | undefined): Promise<void> {
  const delay = Math.min(MAX_FAILURE_DELAY_MS, baseMs * 2 ** (failures - 1));
  if (delay > 0 && !penalty) await new Promise((res) => setTimeout(res, delay));
}

export function loginTrusted(ip: string, nets: string[] | undefined): boolean {
  return inNetworkList(plainAddr(ip), nets ?? []);
}
