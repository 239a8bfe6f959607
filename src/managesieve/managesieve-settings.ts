/**
 * managesieve-settings - the dovecot.conf settings the ManageSieve server reads, with
 * Pigeonhole 0.5's names and defaults, seen from inside `protocol sieve { }`:
 *
 *   login_greeting                       "Dovecot ready." when unset is shown as "Postern ready."
 *   managesieve_implementation_string    "Postern" (Pigeonhole: "Dovecot Pigeonhole")
 *   managesieve_sieve_capability         the enabled extensions (plugin sieve_extensions applied
 *                                        to Pigeonhole's defaults)
 *   managesieve_notify_capability        "mailto" when enotify is enabled
 *   managesieve_max_line_length          65536
 *   managesieve_max_compile_errors       5
 *   auth_failure_delay, disable_plaintext_auth, ssl = required, auth_mechanisms (plain, login, oauthbearer, xoauth2)
 *   login_trusted_networks (peers counted as secured: a proxy in front)
 *   plugin { sieve }                     where scripts live (global/sieve-location.ts)
 *   plugin { sieve_max_script_size }     1M  (0: Pigeonhole's "no limit" is 64M here: scripts are
 *                                        compiled in memory)
 *   plugin { sieve_quota_max_scripts }   0   (no limit)
 *   plugin { sieve_quota_max_storage }   0   (no limit; sizes take k, M, G)
 *   plugin { sieve_max_redirects }       4   (the MAXREDIRECTS capability)
 *
 * userdb fields `sieve`, `sieve_quota_max_scripts`, `sieve_quota_max_storage` (extra fields
 * of the user's record) override the plugin values per user, as Dovecot's userdb plugin
 * settings do.
 */
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import { SIEVE_CAPABILITY, SIEVE_NOTIFY_METHODS, sieveExtensions } from './managesieve-compile.ts';
import { parseDovecotSize, parseDovecotTime } from '../global/dovecot-units.ts';
import { offeredMechanisms } from '../lib-auth/sasl-oauth2.ts';

/** The largest script accepted when sieve_max_script_size = 0 (see managesieveSettings()). */
export const MAX_SCRIPT_SIZE_UNLIMITED = 64 * 1024 * 1024;

export interface ManageSieveSettings {
  greeting: string;
  implementation: string;
  sieveCapability: string;
  notifyCapability: string | undefined;
  maxRedirects: number;
  maxLineLength: number;
  maxCompileErrors: number;
  authFailureDelayMs: number;
  disablePlaintextAuth: boolean;
  /** login_trusted_networks: peers counted as secured (a proxy in front, Dovecot's client->secured). */
  trustedNetworks?: string[];
  mechanisms: string[];
  /** plugin { sieve }; undefined = Pigeonhole's default location. */
  location: string | undefined;
  extensions: ReadonlySet<string>;
  maxScriptSize: number;
  quotaMaxScripts: number;
  quotaMaxStorage: number;
  /** Pre-login and authenticated idle time-outs (Dovecot: 3 min, 30 min). */
  loginTimeoutMs: number;
  idleTimeoutMs: number;
}

function parseCount(v: string, name: string): number {
  if (!/^\s*\d{1,9}\s*$/.test(v)) throw new Error(`${name} = ${v}: not a number`);
  return Number(v);
}

export function managesieveSettings(conf: DovecotConfig): ManageSieveSettings {
  const get = (n: string) => conf.getFor(n, { protocol: 'sieve' }) ?? '';
  const plugin = (n: string) => conf.get(`plugin/${n}`) ?? '';
  const extensions = sieveExtensions(plugin('sieve_extensions') || undefined);
  const defaultCap = SIEVE_CAPABILITY.split(' ').filter((e) => extensions.has(e))
    .concat([...extensions].filter((e) => !SIEVE_CAPABILITY.split(' ').includes(e))).join(' ');
  return {
    greeting: conf.isSet('login_greeting') ? get('login_greeting') : 'Postern ready.',
    implementation: get('managesieve_implementation_string') || 'Postern',
    sieveCapability: get('managesieve_sieve_capability') || defaultCap,
    notifyCapability: get('managesieve_notify_capability') || (extensions.has('enotify') ? SIEVE_NOTIFY_METHODS.join(' ') : undefined),
    maxRedirects: plugin('sieve_max_redirects') ? parseCount(plugin('sieve_max_redirects'), 'sieve_max_redirects') : 4,
    maxLineLength: get('managesieve_max_line_length') ? parseDovecotSize(get('managesieve_max_line_length'), 'managesieve_max_line_length') : 65536,
    maxCompileErrors: get('managesieve_max_compile_errors') ? parseCount(get('managesieve_max_compile_errors'), 'managesieve_max_compile_errors') : 5,
    authFailureDelayMs: parseDovecotTime(get('auth_failure_delay') || '2 secs', 'auth_failure_delay'),
    disablePlaintextAuth: conf.disablePlaintextAuth || conf.ssl === 'required',
    trustedNetworks: (conf.get('login_trusted_networks') ?? '').split(/[\s,]+/).filter((n) => /^[0-9a-fA-F.:]+(\/\d+)?$/.test(n)),
    mechanisms: offeredMechanisms(conf.authMechanisms),
    location: plugin('sieve') || undefined,
    extensions,
    // 0 is "no limit" in Pigeonhole, which streams uploads to disk; Postern compiles a script
    // in memory, so "no limit" is MAX_SCRIPT_SIZE_UNLIMITED.
    maxScriptSize: (plugin('sieve_max_script_size') ? parseDovecotSize(plugin('sieve_max_script_size'), 'sieve_max_script_size') : 1024 * 1024) || MAX_SCRIPT_SIZE_UNLIMITED,
    quotaMaxScripts: plugin('sieve_quota_max_scripts') ? parseCount(plugin('sieve_quota_max_scripts'), 'sieve_quota_max_scripts') : 0,
    quotaMaxStorage: plugin('sieve_quota_max_storage') ? parseDovecotSize(plugin('sieve_quota_max_storage'), 'sieve_quota_max_storage') : 0,
    loginTimeoutMs: 3 * 60_000,
    idleTimeoutMs: 30 * 60_000,
  };
}
