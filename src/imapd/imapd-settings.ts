/**
 * imapd-settings - the dovecot.conf settings imapd uses, read once per service start into a
 * typed object (no globals): login_greeting, disable_plaintext_auth, auth_mechanisms,
 * auth_failure_delay, mail_max_userip_connections, imap_idle_notify_interval,
 * imap_max_line_length, ssl/ssl_cert/ssl_key, imap_metadata + mail_attribute_dict, mail_plugins acl/imap_acl with plugin { acl = vfile }, and the inbox namespace (separator, prefix,
 * `mailbox X { special_use, auto }`). Dovecot 2.3 names and defaults.
 */
import type { DovecotConfig, MailboxSetting } from '../global/dovecot-conf.ts';
import { offeredMechanisms } from '../lib-auth/sasl-oauth2.ts';

export interface ImapdSettings {
  /** `* OK [...] <greeting>`; dovecot.conf login_greeting, else "Postern ready.". */
  greeting: string;
  disablePlaintextAuth: boolean;
  /** Upper-case SASL mechanisms we offer (PLAIN, LOGIN only). */
  mechanisms: string[];
  /** auth_failure_delay in ms: the first failure's delay; it doubles per failure from the same IP (max 15 s). */
  authFailureDelayMs: number;
  /** 0 = unlimited. */
  maxUserIpConnections: number;
  /** imap_idle_notify_interval in ms ("* OK Still here"); 0 = never. */
  idleNotifyMs: number;
  maxLineLength: number;
  /** Largest literal (APPEND message) accepted. */
  maxLiteralSize: number;
  separator: string;
  prefix: string;
  specialMailboxes: MailboxSetting[];
  sslCert?: string;
  sslKey?: string;
  /** login_trusted_networks: clients treated as secured (plaintext auth allowed). */
  trustedNetworks: string[];
  /** Whether STARTTLS may be offered (ssl != no and a certificate is configured). */
  starttls: boolean;
  /** METADATA (RFC 5464): mail_attribute_dict when `imap_metadata = yes`, else undefined. */
  metadataDict?: string;
  /** URLAUTH (RFC 4467, cmd-urlauth.ts): mail_attribute_dict when imap_urlauth_host is set, else undefined. */
  urlauthDict?: string;
  /** imap_urlauth_host / imap_urlauth_port: the host (`*` any) and port (default 143) URLAUTH URLs must name. */
  urlauthHost?: string;
  urlauthPort?: number;
  /** plugin { urlauth_submit_user }: the login the submission server fetches submit+ URLs as. */
  urlauthSubmitUser?: string;
  /** Dovecot's acl plugin with `acl = vfile` (rights enforced) — mail_plugins has acl. */
  acl: boolean;
  /**
   * Postern's full-text index for SEARCH BODY/TEXT (docs/fts.md); on unless dovecot.conf has
   * `plugin { postern_fts = no }` (then every search reads every message, as Dovecot without fts).
   */
  ftsIndex?: boolean;
  /** imap_acl in protocol imap's mail_plugins: the ACL commands and the ACL capability. */
  imapAcl: boolean;
  /** `acl = vfile:FILE`: the global ACL file. */
  aclGlobalFile?: string;
  /** A `type = shared` namespace (with the acl plugin): its prefix up to %u, and acl_shared_dict's file. */
  /** indexPvt: INDEXPVT= of the namespace location (`~/Maildir/shared/%u`), for private \Seen. */
  sharedNamespace?: { prefix: string; dictPath?: string; indexPvt?: string };
  /** `type = public` namespaces (with the acl plugin): prefix and mail location. */
  publicNamespaces: { prefix: string; location: string }[];
}

/** Dovecot time values: "2 secs", "500 msecs", "2 mins", bare number = seconds. */
export function parseDovecotTime(v: string | undefined, dflt: number): number {
  if (v === undefined || v.trim() === '') return dflt;
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(v);
  if (!m) return dflt;
  const n = Number(m[1]);
  const u = m[2]!.toLowerCase();
  if (u.startsWith('ms') || u.startsWith('msec') || u.startsWith('milli')) return n;
  if (u === '' || u.startsWith('s')) return n * 1000;
  if (u.startsWith('m')) return n * 60_000;
  if (u.startsWith('h')) return n * 3_600_000;
  if (u.startsWith('d')) return n * 86_400_000;
  return dflt;
}

/** Dovecot sizes: "64 k", "10M", bare bytes. */
export function parseDovecotSize(v: string | undefined, dflt: number): number {
  if (v === undefined || v.trim() === '' || v === 'None') return dflt;
  const m = /^\s*(\d+)\s*([kmgt]?)/i.exec(v);
  if (!m) return dflt;
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Number(m[1]) * mult[m[2]!.toLowerCase()]!;
}

export function imapdSettings(conf: DovecotConfig): ImapdSettings {
  const ns = conf.namespaces.find((n) => n.inbox) ?? conf.namespaces[0];
  const greeting = conf.isSet('login_greeting') ? (conf.get('login_greeting') ?? 'Postern ready.') : 'Postern ready.';
  const mechs = offeredMechanisms(conf.authMechanisms);
  const maxUip = Number(conf.get('mail_max_userip_connections') ?? '10');
  const s: ImapdSettings = {
    greeting,
    // ssl = required implies it (Dovecot: "SSL required" for any authentication before TLS)
    disablePlaintextAuth: conf.disablePlaintextAuth || conf.ssl === 'required',
    mechanisms: mechs.length > 0 ? mechs : ['PLAIN'],
    authFailureDelayMs: parseDovecotTime(conf.get('auth_failure_delay'), 2000),
    maxUserIpConnections: Number.isFinite(maxUip) ? maxUip : 10,
    idleNotifyMs: parseDovecotTime(conf.get('imap_idle_notify_interval'), 120_000),
    maxLineLength: parseDovecotSize(conf.get('imap_max_line_length'), 65536),
    maxLiteralSize: parseDovecotSize(conf.get('mail_max_size'), 64 * 1024 * 1024) || 64 * 1024 * 1024,
    separator: ns?.separator || '.',   // Dovecot's default for maildir (Maildir++ layout)
    prefix: ns?.prefix ?? '',
    specialMailboxes: ns?.mailboxes ?? [],
    starttls: conf.ssl !== 'no' && !!conf.sslCert,   // imapd.ts: true when the certificate loads
    acl: false,
    imapAcl: false,
    publicNamespaces: [],
    trustedNetworks: (conf.get('login_trusted_networks') ?? '').split(/[\s,]+/).filter((n) => /^[0-9a-fA-F.:]+(\/\d+)?$/.test(n)),
  };
  const imap = { protocol: 'imap' };
  const dict = conf.getFor('mail_attribute_dict', imap)?.trim();
  if (conf.getFor('imap_metadata', imap)?.trim() === 'yes' && dict) s.metadataDict = dict;
  const urlauthHost = conf.getFor('imap_urlauth_host', imap)?.trim();
  if (urlauthHost && dict) {
    s.urlauthDict = dict;
    s.urlauthHost = urlauthHost;
    const port = Number(conf.getFor('imap_urlauth_port', imap)?.trim() || '143');
    s.urlauthPort = Number.isInteger(port) && port > 0 && port < 65536 ? port : 143;
  }
  const submitUser = conf.getFor('plugin/urlauth_submit_user', imap)?.trim();
  if (submitUser) s.urlauthSubmitUser = submitUser;
  const plugins = (conf.getFor('mail_plugins', imap) ?? '').split(/[\s,]+/);
  const aclSetting = conf.getFor('plugin/acl', imap)?.trim() ?? '';
  s.ftsIndex = !/^(no|false|0)$/i.test(conf.getFor('plugin/postern_fts', imap)?.trim() ?? '');
  s.acl = plugins.includes('acl') && /^vfile(:|$)/.test(aclSetting);
  s.imapAcl = s.acl && plugins.includes('imap_acl');
  const gpath = /^vfile:([^:]+)/.exec(aclSetting)?.[1];
  if (s.acl && gpath) s.aclGlobalFile = gpath;
  for (const n of conf.namespaces) {
    const location = n.settings?.['location']?.trim();
    if (!s.acl || n.settings?.['type'] !== 'public' || !location || !n.prefix.endsWith(s.separator)) continue;
    if ((n.separator ?? s.separator) !== s.separator) continue;
    s.publicNamespaces.push({ prefix: n.prefix, location });
  }
  const shared = conf.namespaces.find((n) => n.settings?.['type'] === 'shared');
  if (s.acl && shared) {
    const prefix = shared.prefix.split('%')[0]!;
    const dict = conf.getFor('plugin/acl_shared_dict', imap)?.trim() ?? '';
    if (prefix !== '' && (shared.separator ?? s.separator) === s.separator) {
      const pvt = /:INDEXPVT=([^:]+)/.exec(shared.settings?.['location'] ?? '')?.[1];
      s.sharedNamespace = { prefix, ...(dict.startsWith('file:') ? { dictPath: dict.slice(5) } : {}), ...(pvt ? { indexPvt: pvt } : {}) };
    }
  }
  if (conf.sslCert) s.sslCert = conf.sslCert;
  if (conf.sslKey) s.sslKey = conf.sslKey;
  return s;
}
