/**
 * imapd-shared - what every session of one imapd service instance shares: settings, the user
 * directory, the mail store, the log, the per-user+IP connection counts
 * (mail_max_userip_connections) and the per-IP authentication failure counts (the growing
 * failure delay, as Dovecot's auth penalty: the delay doubles with each failure from one IP,
 * up to 15 s, and a successful login clears it).
 *
 * The user+IP counts are the master's anvil table when the master gives one (ServiceContext.anvil:
 * Dovecot's imap asks anvil the same way), so they hold across the worker processes of
 * postern_process_count; without it (unit tests), a Map of this instance.
 */
import { BlockList } from 'node:net';
import type { UserDirectory } from '../lib-auth/user-directory.ts';
import type { MailStore } from '../lib-storage/mail-storage.ts';
import type { Logger } from '../util/msg.ts';
import type { ImapdSettings } from './imapd-settings.ts';
import type { TlsContextSource } from '../lib-tls/tls-server.ts';
import { MessageCache } from './imapd-cache.ts';
import type { AnvilClient } from '../global/anvil-client.ts';

/** The user+IP connection counts of mail_max_userip_connections; keys are "user\0ip". */
export interface UserIpCounts {
  count(key: string): number | Promise<number>;
  add(key: string): void;
  remove(key: string): void;
}

/** Counts kept in this process only. */
export function mapUserIpCounts(): UserIpCounts {
  const m = new Map<string, number>();
  return {
    count: (k) => m.get(k) ?? 0,
    add: (k) => { m.set(k, (m.get(k) ?? 0) + 1); },
    remove: (k) => { const n = (m.get(k) ?? 1) - 1; if (n <= 0) m.delete(k); else m.set(k, n); },
  };
}

/** Counts in the anvil table (global/anvil-client.ts), as Dovecot's "imap/IP/user" idents. */
export function anvilUserIpCounts(anvil: AnvilClient): UserIpCounts {
  const ident = (k: string) => { const i = k.indexOf('\0'); return `${k.slice(i + 1)}/${k.slice(0, i)}`; };
  return {
    count: async (k) => (await anvil.lookup('imap', ident(k)))?.count ?? 0,
    // The answer is not needed; a remote table gets the connect before the later disconnect.
    add: (k) => { void Promise.resolve(anvil.connect('imap', ident(k))).catch(() => undefined); },
    remove: (k) => { anvil.disconnect('imap', ident(k)); },
  };
}

/** Dovecot AUTH_PENALTY_MAX_SECS. */
const FAILURE_DELAY_MAX_MS = 15_000;
/** Forget an IP's failures after this long without a new one (Dovecot AUTH_PENALTY_TIMEOUT: 1 h). */
const FAILURE_MEMORY_MS = 3_600_000;
const FAILURE_TABLE_MAX = 10_000;

export class ImapdShared {
  readonly settings: ImapdSettings;
  readonly directory: UserDirectory;
  readonly store: MailStore;
  readonly log: Logger;
  readonly userIp: UserIpCounts;
  /** ENVELOPE/BODYSTRUCTURE answers shared by every session (imapd-cache.ts). */
  readonly cache = new MessageCache();
  private readonly failures = new Map<string, { n: number; last: number }>();
  private readonly tls: TlsContextSource | undefined;
  private readonly trustedList: BlockList | undefined;
  /** The process-wide auth penalty (anvil/auth-penalty.ts): it holds failed LOGINs itself. */
  readonly penalty: { directory(dir: UserDirectory, clientAddr: string): UserDirectory } | undefined;

  constructor(o: { settings: ImapdSettings; directory: UserDirectory; store: MailStore; log: Logger; tls?: TlsContextSource | undefined;
    penalty?: ImapdShared['penalty']; userIp?: UserIpCounts }) {
    this.tls = o.tls;
    this.userIp = o.userIp ?? mapUserIpCounts();
    this.penalty = o.penalty;
    this.settings = o.settings;
    this.directory = o.directory;
    this.store = o.store;
    this.log = o.log;
    if (o.settings.trustedNetworks.length > 0) {
      const bl = new BlockList();
      for (const n of o.settings.trustedNetworks) {
        const [addr, bits] = n.split('/');
        const type = addr!.includes(':') ? 'ipv6' : 'ipv4';
        if (bits !== undefined) bl.addSubnet(addr!, Number(bits), type); else bl.addAddress(addr!, type);
      }
      this.trustedList = bl;
    }
  }

  /** dovecot.conf ssl_cert/ssl_key (+ local_name SNI certificates, reloadable): lib-tls/tls-dovecot.ts. */
  tlsContext(): TlsContextSource {
    if (!this.tls) throw new Error('TLS is not configured (dovecot.conf ssl = no, or no ssl_cert)');
    return this.tls;
  }

  /** Delay before answering a failed login from `ip` (and record the failure). */
  failureDelay(ip: string, now = Date.now()): number {
    let f = this.failures.get(ip);
    if (!f || now - f.last > FAILURE_MEMORY_MS) f = { n: 0, last: now };
    f.n++;
    f.last = now;
    this.failures.delete(ip);
    this.failures.set(ip, f);
    if (this.failures.size > FAILURE_TABLE_MAX) this.failures.delete(this.failures.keys().next().value!);
    const base = this.settings.authFailureDelayMs;
    return Math.min(base * 2 ** Math.min(f.n - 1, 16), Math.max(base, FAILURE_DELAY_MAX_MS));
  }

  /** login_trusted_networks (CIDR list). */
  trusted(ip: string): boolean {
    return this.trustedList !== undefined && ip !== '' && this.trustedList.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4');
  }

  loginSucceeded(ip: string): void {
    this.failures.delete(ip);
  }
}
