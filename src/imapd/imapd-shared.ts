/**
 * imapd-shared - what every session of one imapd service instance shares: settings, the user
 * directory, the mail store, the log, the per-user+IP connection counts
 * (mail_max_userip_connections) and the per-IP authentication failure counts (the growing
 * failure delay, as Dovecot's auth penalty: the delay doubles with each failure from one IP,
 * up to 15 s, and a successful login clears it).
 */
import { BlockList } from 'node:net';
import type { UserDirectory } from '../lib-auth/user-directory.ts';
import type { MailStore } from '../lib-storage/mail-storage.ts';
import type { Logger } from '../util/msg.ts';
import type { ImapdSettings } from './imapd-settings.ts';
import type { TlsContextSource } from '../lib-tls/tls-server.ts';
import { MessageCache } from './imapd-cache.ts';

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
  readonly userIp = new Map<string, number>();
  /** ENVELOPE/BODYSTRUCTURE answers shared by every session (imapd-cache.ts). */
  readonly cache = new MessageCache();
  private readonly failures = new Map<string, { n: number; last: number }>();
  private readonly tls: TlsContextSource | undefined;
  private readonly trustedList: BlockList | undefined;
  /** The process-wide auth penalty (anvil/auth-penalty.ts): it holds failed LOGINs itself. */
  readonly penalty: { directory(dir: UserDirectory, clientAddr: string): UserDirectory } | undefined;

  constructor(o: { settings: ImapdSettings; directory: UserDirectory; store: MailStore; log: Logger; tls?: TlsContextSource | undefined;
    penalty?: ImapdShared['penalty'] }) {
    this.tls = o.tls;
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
