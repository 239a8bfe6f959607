/**
 * lmtpd-settings - the dovecot.conf settings lmtpd reads (Dovecot 2.3 names and defaults, seen
 * from inside `protocol lmtp { }`):
 *
 *   hostname                       the LHLO/greeting name; default the machine's host name
 *   login_greeting                 "Postern ready." unless dovecot.conf sets it
 *   recipient_delimiter            "+" (a set of characters; the first one found splits the detail)
 *   lmtp_save_to_detail_mailbox    no; yes: user+Folder@dom goes to Folder when it exists
 *   lmtp_rcpt_check_quota          no; yes: a user already over quota is refused at RCPT
 *   lmtp_add_received_header       yes
 *   quota_full_tempfail            no; yes: over quota is 452 4.2.2 (retry) instead of 552 5.2.2
 *   mail_temp_dir                  /tmp: where a message over 128 KiB waits during its delivery
 *                                  (an unlinked file, lmtpd-spool.ts)
 *   mail_plugins = $mail_plugins sieve, plugin { sieve* }   Sieve filtering at delivery
 *                                  (lib-sieve/sieve-settings.ts, docs/sieve.md)
 *
 * And for DMARC quarantine (docs/authres.md): the Junk folder is the inbox namespace's mailbox
 * with special_use = \Junk ("Junk" when none has it); the authserv-id whose quarantine mark
 * lmtpd honours is main.cf's myhostname (the Postern MTA in front of it), else `hostname`.
 */
import { hostname } from 'node:os';
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import { sieveSettings, specialUseMap, type SieveSettings } from '../lib-sieve/sieve-settings.ts';

export interface LmtpdSettings {
  hostname: string;
  greeting: string;
  recipientDelimiter: string;
  saveToDetailMailbox: boolean;
  rcptCheckQuota: boolean;
  addReceivedHeader: boolean;
  quotaFullTempfail: boolean;
  /** mail_temp_dir: the spool of a DATA larger than the memory window. */
  tempDir: string;
  /** Largest message accepted (bytes); larger ones get 552 5.3.4 for every recipient. */
  maxMessageSize: number;
  /** Most recipients per transaction. */
  maxRecipients: number;
  idleTimeoutMs: number;
  /** Deliveries running at once for one message. */
  deliveryConcurrency: number;
  /** The authserv-id of the Authentication-Results header whose policy.dmarc=quarantine is honoured. */
  authservId: string;
  /** The special-use \\Junk mailbox DMARC-quarantined mail goes to (created when missing). */
  junkMailbox: string;
  /** Pigeonhole's settings; `sieve.enabled` when mail_plugins has sieve for lmtp. */
  sieve: SieveSettings;
}

export function lmtpdSettings(conf: DovecotConfig, myhostname?: string): LmtpdSettings {
  const get = (n: string) => conf.getFor(n, { protocol: 'lmtp' }) ?? '';
  const yes = (n: string) => /^(yes|y|1|true)$/i.test(get(n).trim());
  return {
    hostname: get('hostname') || hostname(),
    greeting: conf.isSet('login_greeting') ? get('login_greeting') : 'Postern ready.',
    recipientDelimiter: conf.isSet('recipient_delimiter') ? get('recipient_delimiter') : '+',
    saveToDetailMailbox: yes('lmtp_save_to_detail_mailbox'),
    rcptCheckQuota: yes('lmtp_rcpt_check_quota'),
    addReceivedHeader: get('lmtp_add_received_header') === '' ? true : yes('lmtp_add_received_header'),
    quotaFullTempfail: yes('quota_full_tempfail'),
    tempDir: get('mail_temp_dir') || '/tmp',
    maxMessageSize: 256 * 1024 * 1024,
    maxRecipients: 50_000,
    idleTimeoutMs: 5 * 60_000,
    deliveryConcurrency: 16,
    authservId: myhostname || get('hostname') || hostname(),
    junkMailbox: conf.namespaces.find((n) => n.inbox)?.mailboxes.find((m) => m.specialUse.some((u) => u.toLowerCase() === '\\junk'))?.name ?? 'Junk',
    sieve: { ...sieveSettings(conf, 'lmtp'), specialUse: specialUseMap(conf.namespaces), hostname: get('hostname') || hostname(), recipientDelimiter: conf.isSet('recipient_delimiter') ? get('recipient_delimiter') : '+' },
  };
}
