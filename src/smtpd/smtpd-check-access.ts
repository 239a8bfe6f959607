/**
 * smtpd-check-access - access(5) tables for smtpd's restrictions (Postfix smtpd/smtpd_check.c:
 * check_table_result(), check_access(), check_domain_access(), check_addr_access(),
 * check_namadr_access(), check_mail_access()).
 *
 * Two jobs, kept apart from the restriction engine (smtpd-check.ts):
 *
 *  1. The lookup KEY ORDER of each check_*_access restriction (access(5) "EMAIL ADDRESS
 *     PATTERNS", "HOST NAME/ADDRESS PATTERNS"):
 *       check_sender_access / check_recipient_access (mail_addr_find_strategy with
 *         MA_FIND_FULL|NOEXT|DOMAIN|LOCALPART_AT|PDMS):
 *           user+ext@domain, user@domain, domain, parent domains, user+ext@, user@
 *       check_helo_access: the name, then its parent domains
 *       check_client_access: the client name and its parent domains, then the address and its
 *         parent networks (1.2.3.4, 1.2.3, 1.2, 1; IPv6 split at ':')
 *     Parent domains are `example.com` when smtpd_access_maps is listed in
 *     parent_domain_matches_subdomains (the default), else `.example.com`. Every key but the
 *     first is "partial": regexp/pcre tables see only the first key (DICT_FLAG_FIXED).
 *
 *  2. The MEANING of a table value (check_table_result()): OK/RELAY, all-digits, DUNNO,
 *     REJECT [text], DEFER [text], DEFER_IF_REJECT/PERMIT [text], 4NN/5NN [d.d.d] text, HOLD,
 *     DISCARD, WARN, FILTER, REDIRECT, PREPEND, or a list of restriction names evaluated in
 *     place (smtpd-check.ts does that through the `evaluate` callback).
 */
import { Maps } from '../global/maps.ts';
import { extensionIndex } from '../global/mail-addr-find.ts';
import { dsnSplit } from '../global/dsn-split.ts';
import { validHostaddr } from '../global/address-syntax.ts';

/** A key to look up, and whether it is partial (skip regexp/pcre: DICT_FLAG_FIXED). */
export interface AccessKey { key: string; partial: boolean }

/** check_domain_access(): the name, then each parent domain; numeric names get no parents. */
export function domainKeys(domain: string, parentStyle: boolean): AccessKey[] {
  const d = domain.toLowerCase();
  const keys: AccessKey[] = [];
  if (d === '') return keys;
  keys.push({ key: d, partial: false });
  if (validHostaddr(d)) return keys;
  let pos = 0;
  for (;;) {
    const next = d.indexOf('.', pos + 1);
    if (next < 0) break;
    const parent = parentStyle ? d.slice(next + 1) : d.slice(next);
    if (parent === '' || parent === '.') break;
    keys.push({ key: parent, partial: true });
    pos = next;
  }
  return keys;
}

/** check_addr_access(): 1.2.3.4, 1.2.3, 1.2, 1 (IPv6: split at ':'). */
export function addrKeys(addr: string): AccessKey[] {
  const keys: AccessKey[] = [];
  const delim = addr.includes(':') ? ':' : '.';
  let a = addr.toLowerCase();
  let first = true;
  for (;;) {
    if (a !== '') keys.push({ key: a, partial: !first });
    first = false;
    const i = a.lastIndexOf(delim);
    if (i < 0) break;
    a = a.slice(0, i);
  }
  return keys;
}

/** check_namadr_access(): name (and parents), then the address (and parent networks). */
export function clientKeys(name: string, addr: string, parentStyle: boolean): AccessKey[] {
  return [...domainKeys(name, parentStyle), ...addrKeys(addr).map((k, i) => ({ ...k, partial: i > 0 }))];
}

/**
 * check_mail_access() order for a resolved address (lower case): user+ext@domain,
 * user@domain, domain, parent domains, user+ext@, user@.
 */
export function mailKeys(address: string, recipientDelimiter: string, parentStyle: boolean): AccessKey[] {
  const a = address.toLowerCase();
  const at = a.lastIndexOf('@');
  if (at < 0) return [{ key: a, partial: false }];
  const user = a.slice(0, at);
  const domain = a.slice(at + 1);
  const ext = extensionIndex(user, recipientDelimiter);
  const bare = ext < 0 ? undefined : user.slice(0, ext);
  const keys: AccessKey[] = [{ key: a, partial: false }];
  if (bare !== undefined) keys.push({ key: `${bare}@${domain}`, partial: true });
  for (const k of domainKeys(domain, parentStyle)) keys.push({ key: k.key, partial: true });
  keys.push({ key: `${user}@`, partial: true });
  if (bare !== undefined) keys.push({ key: `${bare}@`, partial: true });
  return keys;
}

/** Look the keys up in order; the first hit wins. Table errors are thrown (DictError). */
export async function findFirst(maps: Maps, keys: AccessKey[]): Promise<{ key: string; value: string } | undefined> {
  for (const k of keys) {
    if (k.key === '') continue;
    const value = await maps.find(k.key, { fixedOnly: k.partial });
    if (value !== undefined) return { key: k.key, value };
  }
  return undefined;
}

/** An access(5) action, as check_table_result() understands the value. */
export type AccessAction =
  | { kind: 'dunno' }
  | { kind: 'ok' }
  | { kind: 'reject'; code?: number; dsn: string; text: string }
  | { kind: 'defer_if_permit' | 'defer_if_reject'; dsn: string; text: string }
  | { kind: 'warn' | 'hold' | 'discard' | 'filter' | 'redirect' | 'prepend'; text: string }
  | { kind: 'defer'; dsn: string; text: string }
  | { kind: 'restrictions'; names: string[] }
  | { kind: 'table-in-value' }
  | { kind: 'empty' };

/** check_table_result(): parse a table value into an action (no side effects). */
export function parseAccessValue(value: string): AccessAction {
  const sp = value.search(/[ \t]/);
  const cmd = sp < 0 ? value : value.slice(0, sp);
  const rest = sp < 0 ? '' : value.slice(sp).replace(/^[ \t]+/, '');
  const is = (w: string) => cmd.toUpperCase() === w;
  if (is('DUNNO')) return { kind: 'dunno' };
  if (is('REJECT')) { const d = dsnSplit('5.7.1', rest); return { kind: 'reject', dsn: d.dsn, text: d.text || 'Access denied' }; }
  if (is('DEFER')) { const d = dsnSplit('4.7.1', rest); return { kind: 'defer', dsn: d.dsn, text: d.text || 'Access denied' }; }
  if (is('WARN')) return { kind: 'warn', text: rest };
  if (is('FILTER')) return { kind: 'filter', text: rest };
  if (is('HOLD')) return { kind: 'hold', text: rest };
  if (is('DISCARD')) return { kind: 'discard', text: rest };
  if (is('REDIRECT')) return { kind: 'redirect', text: rest };
  if (is('DEFER_IF_PERMIT') || is('DEFER_IF_REJECT')) {
    const d = dsnSplit('4.7.1', rest);
    return { kind: is('DEFER_IF_PERMIT') ? 'defer_if_permit' : 'defer_if_reject', dsn: d.dsn, text: d.text || 'Service unavailable' };
  }
  if (is('PREPEND')) return { kind: 'prepend', text: rest };
  if (/^\d+$/.test(value)) return { kind: 'ok' };
  if (cmd.length === 3 && rest !== '' && /^[45]\d\d$/.test(cmd)) {
    const d = dsnSplit(`${cmd[0]}.7.1`, rest);
    return { kind: 'reject', code: Number(cmd), dsn: d.dsn, text: d.text || 'Access denied' };
  }
  if (is('OK') || is('RELAY')) return { kind: 'ok' };
  if (value.includes(':')) return { kind: 'table-in-value' };
  const names = value.split(/[\s,]+/).filter((w) => w !== '');
  if (names.length === 0) return { kind: 'empty' };
  return { kind: 'restrictions', names };
}

/**
 * smtpd_dsn_fix(): an address DSN (X.1.Y) is translated to the kind of thing being rejected:
 * a recipient code becomes a sender code when the sender is rejected and vice versa; for
 * anything else (client, HELO, DATA) it becomes "4.0.0" (the caller fixes the first digit).
 * The table was measured against Postfix 3.7's smtpd (REJECT 5.1.N in each kind of access
 * table): sender 1,3,4,6,7 → X.1.7, 2,8 → X.1.8, other → X.1.0; recipient 7 → X.1.3,
 * 8 → X.1.2, 1-6 unchanged, other → X.1.0.
 */
export function dsnFix(status: string, replyClass: string): string {
  if (!/^\d\.1\./.test(status)) return status;
  const micro = status.slice(4);
  const map: Record<string, [string, string]> = {
    1: ['4.1.7', '4.1.1'], 2: ['4.1.8', '4.1.2'], 3: ['4.1.7', '4.1.3'], 4: ['4.1.7', '4.1.4'],
    5: ['4.1.0', '4.1.5'], 6: ['4.1.7', '4.1.6'], 7: ['4.1.7', '4.1.3'], 8: ['4.1.8', '4.1.2'],
  };
  const m = map[micro] ?? ['4.1.0', '4.1.0'];
  if (replyClass === 'Sender address') return m[0];
  if (replyClass === 'Recipient address') return m[1];
  return '4.0.0';
}
