/**
 * sieve-settings - Pigeonhole's settings as dovecot.conf gives them, read once by the caller and
 * passed down (no daemon reads a configuration file itself):
 *
 *   protocol lmtp { mail_plugins = $mail_plugins sieve }      Sieve runs at LMTP delivery
 *   plugin {
 *     sieve = file:~/sieve;active=~/.dovecot.sieve             the user's scripts and active one
 *     sieve_default = /etc/dovecot/sieve/default.sieve          when the user has none
 *     sieve_before = /etc/dovecot/sieve/before.d (sieve_before2, sieve_before3, ...)
 *     sieve_after  = ...                                        (sieve_after2, ...)
 *     sieve_global = /etc/dovecot/sieve/global                  include :global
 *     sieve_dir = ~/sieve                                       (older configurations: :personal includes)
 *     sieve_extensions = +editheader   sieve_global_extensions = +vnd.dovecot.debug
 *     sieve_max_script_size = 1M  sieve_max_actions = 32  sieve_max_redirects = 4
 *     sieve_vacation_min_period = 1d  sieve_vacation_max_period = 60d
 *     sieve_vacation_default_period = 7d  sieve_vacation_send_from_recipient = no
 *     sieve_vacation_default_subject  sieve_vacation_default_subject_template = Re: %$
 *     sieve_user_email = (the user's address for vacation's own-address checks)
 *     sieve_vacation_dont_check_recipient = no  sieve_vacation_use_original_recipient = no
 *     sieve_redirect_envelope_from = sender | recipient | orig_recipient | user_email | postmaster | <addr>
 *     sieve_spamtest_status_header, sieve_spamtest_status_type, sieve_spamtest_max_value,
 *     sieve_spamtest_max_header, sieve_spamtest_text_valueN, and the same for sieve_virustest_*
 *     sieve_duplicate_default_period = 14d  sieve_duplicate_max_period = 7d
 *     recipient_delimiter (top level, Dovecot's)
 *   }
 *
 * Durations take Dovecot's units (s, m, h, d, w; a bare number is seconds); sizes k, M, G.
 * Locations expand ~ (home), %u (user), %n (local part), %d (domain), %h (home).
 */
import { sieveExtensions } from './sieve-compile.ts';

/** The subset of DovecotConfig this module reads (global/dovecot-conf.ts). */
export interface DovecotSettingsSource {
  get(name: string): string | undefined;
  getFor?(name: string, ctx: { protocol?: string }): string | undefined;
}

export interface SieveSettings {
  /** Sieve is enabled for this protocol (mail_plugins has sieve). */
  enabled: boolean;
  /** plugin/sieve (unexpanded); undefined: Pigeonhole's default file:~/sieve;active=~/.dovecot.sieve. */
  location: string;
  before: string[];
  after: string[];
  defaultScript?: string;
  global?: string;
  /** sieve_dir (Pigeonhole 0.3 style, with `sieve = ~/.dovecot.sieve`): where :personal includes live. */
  sieveDir?: string;
  extensions: Set<string>;
  maxScriptSize: number;
  maxActions: number;
  maxRedirects: number;
  vacationMinPeriod: number;
  vacationMaxPeriod: number;
  vacationDefaultPeriod: number;
  vacationSendFromRecipient: boolean;
  vacationDontCheckRecipient: boolean;
  vacationUseOriginalRecipient: boolean;
  /** sieve_vacation_default_subject (no :subject, original without Subject:). */
  vacationDefaultSubject?: string;
  /** sieve_vacation_default_subject_template: %$ / %{subject} is the original subject. */
  vacationDefaultSubjectTemplate?: string;
  /** sieve_user_email: the user's own address, for vacation's checks. */
  userEmail?: string;
  redirectEnvelopeFrom: string;
  duplicateDefaultPeriod: number;
  duplicateMaxPeriod: number;
  recipientDelimiter: string;
  postmasterAddress?: string;
  hostname: string;
  spamtest: Record<string, string>;
  virustest: Record<string, string>;
  /** RFC 8579: special-use flag (lower case, "\\junk") → mailbox name, from dovecot.conf's inbox namespace. */
  specialUse: Record<string, string>;
}

/** Dovecot time units: "7d", "1h", "30 mins", bare seconds. */
export function parseDuration(v: string | undefined, dflt: number): number {
  if (v === undefined || v.trim() === '') return dflt;
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(v);
  if (!m) return dflt;
  const n = Number(m[1]);
  const u = m[2]!.toLowerCase();
  if (u === '' || u.startsWith('s')) return n;
  if (u.startsWith('mi') || u === 'm') return n * 60;
  if (u.startsWith('h')) return n * 3600;
  if (u.startsWith('d')) return n * 86400;
  if (u.startsWith('w')) return n * 7 * 86400;
  return dflt;
}

export function parseSize(v: string | undefined, dflt: number): number {
  if (v === undefined || v.trim() === '') return dflt;
  const m = /^\s*(\d+)\s*([kmgt]?)b?\s*$/i.exec(v);
  if (!m) return dflt;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase()] ?? 1;
  return Number(m[1]) * mult;
}

function numbered(get: (n: string) => string | undefined, base: string): string[] {
  const out: string[] = [];
  const first = get(`plugin/${base}`);
  if (first) out.push(first);
  for (let i = 2; i < 100; i++) {
    const v = get(`plugin/${base}${i}`);
    if (v === undefined) break;
    if (v) out.push(v);
  }
  return out;
}

export function sieveSettings(dc: DovecotSettingsSource, protocol: string): SieveSettings {
  const get = (n: string): string | undefined => dc.getFor ? dc.getFor(n, { protocol }) : dc.get(n);
  const p = (n: string): string | undefined => get(`plugin/${n}`);
  const plugins = (get('mail_plugins') ?? '').split(/[\s,]+/);
  const bool = (v: string | undefined): boolean => /^(yes|y|true|1)$/i.test(v ?? '');
  const sub = (prefix: string): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const k of ['status_header', 'status_type', 'max_value', 'max_header']) { const v = p(`${prefix}_${k}`); if (v !== undefined) out[k] = v; }
    for (let i = 0; i <= 10; i++) { const v = p(`${prefix}_text_value${i}`); if (v !== undefined) out[`text_value${i}`] = v; }
    return out;
  };
  const ext = sieveExtensions(p('sieve_extensions'));
  for (const e of sieveExtensions(p('sieve_global_extensions'), [])) ext.add(e);
  const postmaster = get('postmaster_address');
  const def = p('sieve_default');
  const glob = p('sieve_global') ?? p('sieve_global_dir');
  return {
    enabled: plugins.includes('sieve'),
    location: p('sieve') ?? 'file:~/sieve;active=~/.dovecot.sieve',
    before: numbered(get, 'sieve_before'),
    after: numbered(get, 'sieve_after'),
    ...(def ? { defaultScript: def } : {}),
    ...(glob ? { global: glob } : {}),
    ...(p('sieve_dir') ? { sieveDir: p('sieve_dir')! } : {}),
    extensions: ext,
    maxScriptSize: parseSize(p('sieve_max_script_size'), 1024 * 1024),
    maxActions: Number(p('sieve_max_actions') ?? 32) || 32,
    maxRedirects: Number(p('sieve_max_redirects') ?? 4) || 4,
    vacationMinPeriod: parseDuration(p('sieve_vacation_min_period'), 86400),
    vacationMaxPeriod: parseDuration(p('sieve_vacation_max_period'), 60 * 86400),
    vacationDefaultPeriod: parseDuration(p('sieve_vacation_default_period'), 7 * 86400),
    vacationSendFromRecipient: bool(p('sieve_vacation_send_from_recipient')),
    vacationDontCheckRecipient: bool(p('sieve_vacation_dont_check_recipient')),
    vacationUseOriginalRecipient: bool(p('sieve_vacation_use_original_recipient')),
    ...(p('sieve_vacation_default_subject') ? { vacationDefaultSubject: p('sieve_vacation_default_subject')! } : {}),
    ...(p('sieve_vacation_default_subject_template') ? { vacationDefaultSubjectTemplate: p('sieve_vacation_default_subject_template')! } : {}),
    ...(p('sieve_user_email') ? { userEmail: p('sieve_user_email')! } : {}),
    redirectEnvelopeFrom: p('sieve_redirect_envelope_from') ?? 'sender',
    duplicateDefaultPeriod: parseDuration(p('sieve_duplicate_default_period'), 14 * 86400),
    duplicateMaxPeriod: parseDuration(p('sieve_duplicate_max_period'), 7 * 86400),
    recipientDelimiter: get('recipient_delimiter') ?? '+',
    ...(postmaster ? { postmasterAddress: postmaster } : {}),
    hostname: get('hostname') ?? '',
    spamtest: sub('sieve_spamtest'),
    virustest: sub('sieve_virustest'),
    specialUse: {},
  };
}

/** ~ %u %n %d %h in a location (Dovecot's var expansion for plugin settings). */
/** The special_use mailboxes of dovecot.conf's inbox namespace (`mailbox Junk { special_use = \\Junk }`). */
export function specialUseMap(namespaces: readonly { inbox: boolean; mailboxes: readonly { name: string; specialUse: readonly string[] }[] }[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of namespaces.find((n) => n.inbox)?.mailboxes ?? []) for (const u of m.specialUse) out[u.toLowerCase()] ??= m.name;
  return out;
}

export function expandUserPath(s: string, user: string, home: string): string {
  const at = user.lastIndexOf('@');
  const n = at < 0 ? user : user.slice(0, at);
  const d = at < 0 ? '' : user.slice(at + 1);
  return s.replace(/^~(?=\/|$)/, home).replace(/%([%unhd])/g, (_, c: string) => c === '%' ? '%' : c === 'u' ? user : c === 'n' ? n : c === 'd' ? d : home);
}
