/**
 * smtpd-settings - the main.cf parameters smtpd(8) reads, resolved once per listener from the
 * effective configuration (main.cf + the master.cf entry's -o overrides).
 */
import type { MainConfig } from '../global/mail-conf.ts';

export interface SmtpdSettings {
  myhostname: string;
  /** smtpd_banner, expanded: the text after "220 ". */
  banner: string;
  mailName: string;
  /** line_length_limit: longer command lines are cut here (the rest is discarded, as Postfix). */
  lineLimit: number;
  messageSizeLimit: number;
  recipientLimit: number;
  timeoutMs: number;
  /** smtpd_per_request_deadline: smtpd_timeout per request, not per read (default: yes under stress). */
  perRequestDeadline: boolean;
  /** smtpd_min_data_rate (bytes/s): with deadlines, how content extends the DATA/BDAT deadline. */
  minDataRate: number;
  hardErrorLimit: number;
  softErrorLimit: number;
  errorSleepMs: number;
  junkCommandLimit: number;
  heloRequired: boolean;
  disableVrfy: boolean;
  /** smtpd_forbid_bare_newline: no | normal | strict (see lib-smtp/smtp-data-stream.ts). */
  forbidBareNewline: 'no' | 'normal' | 'strict';
  bareNewlineRejectCode: number;
  forbiddenCommands: Set<string>;
  discardEhloKeywords: Set<string>;
  authEnabled: boolean;
  tlsAuthOnly: boolean;
  /** postern_burl_imap_server: where BURL URLs are fetched ('' = no BURL). */
  burlImapServer: string;
  burlSubmitUser: string;
  burlTimeoutMs: number;
  burlSubmitPasswordFile: string;
  headerSizeLimit: number;
  alwaysAddMissingHeaders: boolean;
  myorigin: string;
  /** For the free-space check at MAIL (smtpd_check_size). '' = no check. */
  queueDirectory: string;
  queueMinfree: number;
  /** soft_bounce: a 5xx reply made elsewhere (a proxy filter's) is sent as 4xx (smtpd_chat_reply()). */
  softBounce: boolean;
}

export function smtpdSettings(c: MainConfig): SmtpdSettings {
  const fbn = c.get('smtpd_forbid_bare_newline').toLowerCase();
  return {
    myhostname: c.get('myhostname'),
    banner: c.get('smtpd_banner'),
    mailName: c.get('mail_name') || 'Postfix',
    lineLimit: Math.max(512, c.int('line_length_limit') || 2048),
    messageSizeLimit: c.int('message_size_limit'),
    recipientLimit: c.int('smtpd_recipient_limit') || 1000,
    timeoutMs: (c.time('smtpd_timeout') || 300) * 1000,
    perRequestDeadline: c.bool('smtpd_per_request_deadline'),
    minDataRate: Math.max(1, c.int('smtpd_min_data_rate') || 500),
    hardErrorLimit: c.int('smtpd_hard_error_limit') || 20,
    softErrorLimit: c.int('smtpd_soft_error_limit') || 10,
    errorSleepMs: c.time('smtpd_error_sleep_time') * 1000,
    junkCommandLimit: c.int('smtpd_junk_command_limit') || 100,
    heloRequired: c.bool('smtpd_helo_required'),
    disableVrfy: c.bool('disable_vrfy_command'),
    forbidBareNewline: fbn === 'strict' || fbn === 'reject' ? 'strict' : fbn === 'no' ? 'no' : 'normal',
    bareNewlineRejectCode: c.int('smtpd_forbid_bare_newline_reject_code') || 550,
    forbiddenCommands: new Set(c.list('smtpd_forbidden_commands').filter((w) => /^[A-Za-z]+$/.test(w)).map((w) => w.toUpperCase())),
    discardEhloKeywords: new Set(c.list('smtpd_discard_ehlo_keywords').map((w) => w.toUpperCase())),
    authEnabled: c.bool('smtpd_sasl_auth_enable'),
    tlsAuthOnly: c.bool('smtpd_tls_auth_only'),
    burlImapServer: (c.get('postern_burl_imap_server') ?? '').trim(),
    burlSubmitUser: (c.get('postern_burl_submit_user') ?? '').trim(),
    burlTimeoutMs: (c.time('postern_burl_timeout') || 30) * 1000,
    burlSubmitPasswordFile: (c.get('postern_burl_submit_password_file') ?? '').trim(),
    headerSizeLimit: c.int('header_size_limit') || 102400,
    alwaysAddMissingHeaders: c.bool('always_add_missing_headers'),
    myorigin: c.get('myorigin'),
    queueDirectory: c.get('queue_directory'),
    queueMinfree: c.int('queue_minfree'),
    softBounce: c.bool('soft_bounce'),
  };
}
