/**
 * quota-status - Dovecot's quota-status policy service: tells the MTA, at RCPT TO, whether a
 * message of the announced size would fit in the recipient's mailbox, so an over-quota
 * recipient is refused before the message is accepted instead of bounced after.
 *
 * SUMMARY
 *   dovecot.conf:
 *     service quota-status {
 *       executable = quota-status -p postfix
 *       inet_listener { port = 12340 }          (or unix_listener PATH)
 *     }
 *     plugin {
 *       quota_status_success   = DUNNO          (default OK)
 *       quota_status_nouser    = DUNNO          (default "REJECT Unknown user")
 *       quota_status_overquota = "552 5.2.2 Mailbox is full"  (default "554 5.2.2 " + quota_exceeded_message)
 *       quota_status_toolarge  = ...            (the message alone is larger than the quota; default: overquota's)
 *     }
 *   main.cf: smtpd_recipient_restrictions = ... check_policy_service inet:127.0.0.1:12340
 *
 * DESCRIPTION
 *   Each Postfix policy request (quota-status-policy.ts) is answered `action=...`: no recipient
 *   → DUNNO; the recipient's detail (recipient_delimiter) is stripped and the user looked up in
 *   the passdb/userdb of dovecot.conf (the same directory delivery uses); an unknown user gets
 *   quota_status_nouser; a user whose quota (quota_rule, quota_grace) has room for
 *   max(1, size) bytes and one more message gets quota_status_success, else
 *   quota_status_toolarge / quota_status_overquota (lib-storage/mail-quota.ts, the same test
 *   delivery makes). A failed lookup (directory down) is `DEFER_IF_PERMIT Temporary internal
 *   error`. Replies are Dovecot 2.3's, checked against its quota-status binary.
 *
 * SECURITY
 *   Talks to the MTA (and anyone who can reach the listener: bind it to loopback). Requests are
 *   bounded (quota-status-policy.ts), one at a time per connection (input is paused while a
 *   request is answered), a connection idle for QUOTA_STATUS_IDLE_MS is closed, at most
 *   QUOTA_STATUS_MAX_CLIENTS connections at once. Reads the user's Maildir file names only.
 *
 * STANDARDS
 *   Postfix SMTPD_POLICY_README (policy delegation protocol); Dovecot 2.3 quota-status.
 *
 * DIAGNOSTICS
 *   `quota-status: Failed to lookup user U: ERROR`, `quota-status: client: ERROR` for a
 *   request over the bounds.
 *
 * PARAMETERS (dovecot.conf)
 *   service quota-status { executable inet_listener unix_listener }, plugin { quota_status_* 
 *   quota_rule quota_grace quota_exceeded_message }, recipient_delimiter, passdb/userdb.
 */
import type { Socket } from 'node:net';
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import { openUserDirectory } from '../lib-auth/user-directory-open.ts';
import type { UserDirectory, UserRecord } from '../lib-auth/user-directory.ts';
import { serveSessions } from '../lib-master/master-session.ts';
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { quotaGrace, quotaTestAlloc } from '../lib-storage/mail-quota.ts';
import type { MailStore, QuotaUsage } from '../lib-storage/mail-storage.ts';
import { MaildirStore } from '../lib-storage/maildir/maildir-storage.ts';
import { PolicyRequestReader, recipientUser, type PolicyRequest } from './quota-status-policy.ts';

export const QUOTA_STATUS_IDLE_MS = 300_000;
export const QUOTA_STATUS_MAX_CLIENTS = 100;

export interface QuotaStatusSettings {
  success: string; nouser: string; overquota: string; toolarge?: string; recipientDelimiter: string;
}

export function quotaStatusSettings(conf: DovecotConfig): QuotaStatusSettings {
  const p = (n: string) => conf.get(`plugin/${n}`);
  const exceeded = p('quota_exceeded_message') ?? 'Quota exceeded (mailbox for user is full)';
  const s: QuotaStatusSettings = {
    success: p('quota_status_success') ?? 'OK',
    nouser: p('quota_status_nouser') ?? 'REJECT Unknown user',
    overquota: p('quota_status_overquota') ?? `554 5.2.2 ${exceeded}`,
    recipientDelimiter: conf.isSet('recipient_delimiter') ? (conf.get('recipient_delimiter') ?? '') : '+',
  };
  const tl = p('quota_status_toolarge');
  if (tl !== undefined) s.toolarge = tl;
  return s;
}

export interface QuotaStatusDeps {
  directory: UserDirectory;
  store: MailStore;
  settings: QuotaStatusSettings;
  log: { info(m: string): void; warn(m: string): void; error(m: string): void };
}

/**
 * One usage scan per user at a time: requests for a user whose scan is running share it (a
 * Maildir of 100,000 messages takes ~150 ms to scan), so a burst of requests for one mailbox
 * costs one scan, not one each.
 */
const scans = new Map<string, Promise<QuotaUsage>>();
function sharedScan(rec: UserRecord, store: MailStore): Promise<QuotaUsage> {
  const key = `${rec.user}\u0000${rec.mail}`;
  let p = scans.get(key);
  if (!p) {
    p = (async () => {
      const u = await store.forUser(rec);
      try { return await u.quota(); } finally { await u.close(); }
    })().finally(() => scans.delete(key));
    scans.set(key, p);
  }
  return p;
}

/** The action for one request (without the `action=`). */
export async function quotaStatusAnswer(req: PolicyRequest, d: QuotaStatusDeps): Promise<string> {
  if (req.recipient === undefined) return 'DUNNO';
  const name = recipientUser(req.recipient, d.settings.recipientDelimiter);
  if (name === undefined) return 'DUNNO';
  let rec;
  try {
    rec = await d.directory.lookup(name);
  } catch (e) {
    d.log.error(`quota-status: Failed to lookup user ${name}: ${(e as Error).message}`);
    return 'DEFER_IF_PERMIT Temporary internal error';
  }
  if (!rec) return d.settings.nouser;
  if (rec.quotaBytes === undefined && rec.quotaMessages === undefined) return d.settings.success;
  let usage;
  try {
    usage = await sharedScan(rec, d.store);
  } catch (e) {
    d.log.error(`quota-status: user ${name}: quota: ${(e as Error).message}`);
    return 'DEFER_IF_PERMIT Internal quota calculation error';
  }
  const r = quotaTestAlloc(usage, Math.max(1, req.size), quotaGrace(rec));
  if (r === 'ok') return d.settings.success;
  if (r === 'toolarge' && d.settings.toolarge !== undefined) return d.settings.toolarge;
  return d.settings.overquota;
}

/** Serve one connection until it closes, is idle too long, or breaks a bound. */
export function handleQuotaStatus(sock: Socket, d: QuotaStatusDeps, idleMs = QUOTA_STATUS_IDLE_MS): Promise<void> {
  return new Promise<void>((resolve) => {
    const reader = new PolicyRequestReader();
    const pending: PolicyRequest[] = [];
    let busy = false;
    sock.setEncoding('latin1');
    sock.setTimeout(idleMs, () => sock.destroy());
    sock.once('close', () => resolve());
    sock.on('error', () => { /* close follows */ });
    const next = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      sock.pause();
      while (pending.length > 0 && !sock.destroyed) {
        const answer = await quotaStatusAnswer(pending.shift()!, d);
        sock.write(`action=${answer.replace(/[\r\n]/g, ' ')}\n\n`);
      }
      busy = false;
      if (!sock.destroyed) sock.resume();
    };
    sock.on('data', (chunk: string) => {
      try {
        pending.push(...reader.push(chunk));
      } catch (e) {
        d.log.warn(`quota-status: client ${sock.remoteAddress ?? ''}: ${(e as Error).message}; disconnecting`);
        sock.destroy();
        return;
      }
      void next();
    });
  });
}

export const service: ServiceImpl = {
  name: 'quota-status',
  async start(ctx) {
    const directory = await openUserDirectory(ctx.dovecot);
    const deps: QuotaStatusDeps = { directory, store: new MaildirStore(), settings: quotaStatusSettings(ctx.dovecot), log: ctx.log };
    const server = serveSessions(ctx, (sock) => handleQuotaStatus(sock, deps), { maxSessions: QUOTA_STATUS_MAX_CLIENTS });
    return {
      async stop() {
        await server.stop();
        await directory.close();
      },
    };
  },
};
