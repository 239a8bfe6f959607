/**
 * smtpd-check-config - the main.cf side of smtpd's restrictions: the parameters the restriction
 * engine reads (reply codes, smtpd_delay_reject, soft_bounce, ...), the restriction lists of each
 * stage, and Postfix's start-up refusal of a configuration that cannot reject relaying.
 *
 * Contract: readCheckParams() and readRestrictionLists() only read main.cf (values already
 * defaulted by MainConfig); hasRequired() answers whether a list (following restriction
 * classes) holds one of Postfix's rcpt_required[] restrictions. SmtpdCheck.open() throws the
 * ConfigError, with Postfix 3.7's wording, when neither smtpd_relay_restrictions nor
 * smtpd_recipient_restrictions has one.
 */
import type { MainConfig } from '../global/mail-conf.ts';
import { splitList } from '../global/mail-conf.ts';
import { lower } from './smtpd-check-reject.ts';

/** The parameters restrictions read, once per configuration. */
export interface CheckParams {
  delayReject: boolean; relayFirst: boolean; rejUnlRcpt: boolean; rejUnlFrom: boolean;
  untrustedRouting: boolean; softBounce: boolean; sasl: boolean; accessParent: boolean;
  nullKey: string; delim: string; accessRejectCode: number; accessDeferCode: number;
  deferCode: number; rejectCode: number; relayCode: number; nonFqdnCode: number;
  badNameCode: number; unkNameCode: number; unkAddrCode: number; unkClientCode: number;
  mulRcptCode: number; unkAddrTfDefer: boolean; unkNameTfDefer: boolean;
  /** Policy requests: the `stress` value and smtpd_tls_fingerprint_digest (ccert_fingerprint). */
  stress: string; tlsFingerprintDigest: string;
  /** receive_override_options = no_unknown_recipient_checks (a content filter's reinjection smtpd). */
  noUnknownRcpt: boolean;
}

/** The restriction list of each stage. */
export interface RestrictionLists {
  client: string[]; helo: string[]; mail: string[]; relay: string[]; rcpt: string[]; data: string[]; eod: string[]; etrn: string[];
}

/** Restriction names that reject by default (Postfix rcpt_required[], in its order). */
export const RCPT_REQUIRED = ['reject_unauth_destination', 'defer_unauth_destination', 'reject', 'defer', 'defer_if_permit', 'check_relay_domains'];

export function readCheckParams(c: MainConfig): CheckParams {
  const parentList = c.list('parent_domain_matches_subdomains').map(lower);
  const tf = (n: string) => lower(c.get(n)) !== 'defer';
  return {
    delayReject: c.bool('smtpd_delay_reject'),
    relayFirst: c.bool('smtpd_relay_before_recipient_restrictions'),
    rejUnlRcpt: c.bool('smtpd_reject_unlisted_recipient'),
    rejUnlFrom: c.bool('smtpd_reject_unlisted_sender'),
    noUnknownRcpt: c.list('receive_override_options').some((o) => lower(o) === 'no_unknown_recipient_checks'),
    untrustedRouting: c.bool('allow_untrusted_routing'),
    softBounce: c.bool('soft_bounce'),
    sasl: c.bool('smtpd_sasl_auth_enable'),
    accessParent: parentList.includes('smtpd_access_maps'),
    nullKey: c.get('smtpd_null_access_lookup_key') || '<>',
    delim: c.get('recipient_delimiter'),
    accessRejectCode: c.int('access_map_reject_code') || 554,
    accessDeferCode: c.int('access_map_defer_code') || 450,
    deferCode: c.int('defer_code') || 450,
    rejectCode: c.int('reject_code') || 554,
    relayCode: c.int('relay_domains_reject_code') || 554,
    nonFqdnCode: c.int('non_fqdn_reject_code') || 504,
    badNameCode: c.int('invalid_hostname_reject_code') || 501,
    unkNameCode: c.int('unknown_hostname_reject_code') || 450,
    unkAddrCode: c.int('unknown_address_reject_code') || 450,
    unkClientCode: c.int('unknown_client_reject_code') || 450,
    mulRcptCode: c.int('multi_recipient_bounce_reject_code') || 550,
    unkAddrTfDefer: tf('unknown_address_tempfail_action'),
    unkNameTfDefer: tf('unknown_helo_hostname_tempfail_action'),
    stress: c.get('stress'),
    tlsFingerprintDigest: c.get('smtpd_tls_fingerprint_digest'),
  };
}

export function readRestrictionLists(c: MainConfig): RestrictionLists {
  const list = (n: string) => splitList(c.get(n));
  return {
    client: list('smtpd_client_restrictions'),
    helo: list('smtpd_helo_restrictions'),
    mail: list('smtpd_sender_restrictions'),
    relay: list('smtpd_relay_restrictions'),
    rcpt: list('smtpd_recipient_restrictions'),
    data: list('smtpd_data_restrictions'),
    eod: list('smtpd_end_of_data_restrictions'),
    etrn: list('smtpd_etrn_restrictions'),
  };
}

/** Does the list (through restriction classes) hold a restriction that rejects by default? */
export function hasRequired(classes: ReadonlyMap<string, string[]>, list: string[], depth = 0): boolean {
  if (depth > 20) return false;
  for (let i = 0; i < list.length; i++) {
    const n = list[i]!;
    if (n === 'warn_if_reject' && i + 1 < list.length) { i++; continue; }
    if (RCPT_REQUIRED.includes(n)) return true;
    const cls = classes.get(n);
    if (cls && hasRequired(classes, cls, depth + 1)) return true;
  }
  return false;
}
