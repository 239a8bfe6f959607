/**
 * default-config - the embedded default configuration that `postern start` writes when
 * CONFIG_DIR does not exist or holds none of main.cf, master.cf, dovecot.conf (DESIGN.md §1:
 * "with no configuration at all, postern start runs the whole system").
 *
 * What it writes (docs/master.md):
 *   CONFIG_DIR/main.cf                 loopback only (inet_interfaces = loopback-only), the hosted
 *                                      domain example.test (virtual_mailbox_domains = auth:domains,
 *                                      virtual_mailbox_maps = auth:userdb), self-signed TLS
 *   CONFIG_DIR/master.cf               Postfix's stock services, with SMTP, submission and
 *                                      submissions on unprivileged ports
 *   CONFIG_DIR/dovecot.conf            IMAP, POP3, LMTP, ManageSieve on unprivileged ports,
 *                                      passdb/userdb = the embedded SQLite user directory, Sieve
 *                                      scripts in Pigeonhole's layout (~/sieve, ~/.dovecot.sieve)
 *   CONFIG_DIR/dovecot-sql.conf.ext    the SQL queries for that directory
 *   CONFIG_DIR/tls/postern.crt, .key   a self-signed certificate (lib-tls/self-signed.ts)
 *   DATA_DIR/{queue,lib,vmail,run}     queue_directory, data_directory, virtual_mailbox_base,
 *                                      Dovecot base_dir
 *   DATA_DIR/users.db                  the user directory, with postmaster@example.test and a
 *                                      random password that is printed once
 *
 * Ports (unprivileged, so no root is needed):
 *   SMTP 2525, submission 5587, submissions 4465, IMAP 1143, IMAPS 1993, POP3 1110,
 *   POP3S 1995, LMTP 2424, ManageSieve 14190 (not 4190, which a system Dovecot may hold).
 * POSTERN_PORT_BASE=N (a test aid) uses N, N+1, ... N+8 in that order instead.
 *
 * Where a user's mail lives is stated once: mailboxBase() (DATA_DIR/vmail) is written as main.cf
 * virtual_mailbox_base and, through global/mail-location.ts virtualMailLocation(), as
 * dovecot.conf mail_location (`maildir:DATA_DIR/vmail/%d/%n`); auth:userdb gives virtual(8) the
 * user's maildir relative to that base, so SMTP and IMAP meet in the same Maildir.
 *
 * DATA_DIR: POSTERN_DATA_DIR if set; with the default CONFIG_DIR, /var/lib/postern for root and
 * $XDG_DATA_HOME/postern (else ~/.local/share/postern) for other users; with an explicit
 * `-c DIR`, DIR/data, so a configuration directory made for a test or a trial is self-contained.
 */
import { randomInt } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { defaultConfigDir } from '../global/config-dir.ts';
import { virtualMailLocation } from '../global/mail-location.ts';
import { createEmbeddedUserDb, embeddedUserDbSqlConf } from '../lib-auth/user-directory-embedded.ts';
import { passwordHash } from '../lib-auth/password-scheme.ts';
import { isDnsName, writeSelfSigned } from '../lib-tls/self-signed.ts';

/** The default ports and the order POSTERN_PORT_BASE assigns them. */
export const DEFAULT_PORTS = {
  smtp: 2525, submission: 5587, submissions: 4465, imap: 1143, imaps: 1993, pop3: 1110, pop3s: 1995, lmtp: 2424,
  // ManageSieve's 4190 is unprivileged already, but a system Dovecot may hold it: 14190, as
  // the others keep clear of the standard ports.
  sieve: 14190,
} as const;
export type PortName = keyof typeof DEFAULT_PORTS;
export type Ports = Record<PortName, number>;

export const SAMPLE_DOMAIN = 'example.test';
export const SAMPLE_USER = `postmaster@${SAMPLE_DOMAIN}`;

export function portsFromBase(base?: number): Ports {
  const names = Object.keys(DEFAULT_PORTS) as PortName[];
  const out = { ...DEFAULT_PORTS } as Ports;
  if (base !== undefined) names.forEach((n, i) => { out[n] = base + i; });
  return out;
}

/** Where mail data lives for a configuration directory (see the header). */
export function defaultDataDir(configDir: string, explicit: boolean): string {
  if (process.env.POSTERN_DATA_DIR) return resolve(process.env.POSTERN_DATA_DIR);
  if (explicit && resolve(configDir) !== resolve(defaultConfigDir())) return join(resolve(configDir), 'data');
  if (process.getuid?.() === 0) return '/var/lib/postern';
  return join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'postern');
}

/** virtual_mailbox_base, the root of every hosted mailbox (mail_location is derived from it). */
export function mailboxBase(v: Pick<DefaultValues, 'dataDir'>): string {
  return join(v.dataDir, 'vmail');
}

/** Everything the three files depend on. */
export interface DefaultValues {
  configDir: string;
  dataDir: string;
  myhostname: string;
  ports: Ports;
  /** The owner of virtual mailboxes (virtual_uid_maps, Dovecot mail_uid). */
  uid: number;
  gid: number;
  /** main.cf mail_owner when not running as root. */
  mailOwner?: string;
  date: string;
  /** The answers of `postern init` (src/cli/postinit.ts); absent = `postern start`'s default. */
  site?: SiteSettings;
}

/**
 * The seed's Table 2 answers, for `postern init`. Every field is written as the Postfix
 * parameter of the same name; `role` and `public` choose between whole blocks (docs/init-and-dns.md).
 */
export interface SiteSettings {
  mydomain: string;
  /** `$mydomain` or `$myhostname` */
  myorigin: string;
  mynetworks: string;
  mydestination: string;
  /** final: DOMAIN's mailboxes live here; relay: accept from mynetworks and send on, no mailboxes;
   *  null-client: send only, everything to relayhost (Postfix STANDARD_CONFIGURATION_README). */
  role: 'final' | 'relay' | 'null-client';
  /** virtual_mailbox_domains besides auth:domains (role final). */
  hostedDomains: string[];
  /** '' = deliver directly by MX lookup. */
  relayhost: string;
  /** Listen on all interfaces (inet_interfaces = all, Dovecot listen = *, ::). */
  public: boolean;
}

/** Standard ports (`postern init --public`); LMTP stays on the loopback interface. */
export const STANDARD_PORTS: Ports = {
  smtp: 25, submission: 587, submissions: 465, imap: 143, imaps: 993, pop3: 110, pop3s: 995, lmtp: 24, sieve: 4190,
};

function writer(v: DefaultValues): string {
  return v.site ? '`postern init`' : '`postern start`';
}

/** main.cf's identity and role block for `postern init` (seed Table 2). */
function siteBlock(s: SiteSettings): string {
  const lines = [
    '# The seed\'s Table 2: the machine\'s name, its parent domain, the name outgoing mail uses,',
    '# the domains delivered on this machine and the networks trusted without authentication.',
    `mydomain = ${s.mydomain}`,
    `myorigin = ${s.myorigin}`,
    `mydestination = ${s.mydestination}`,
    `mynetworks = ${s.mynetworks}`,
    `relayhost = ${s.relayhost}`,
    '',
    s.public ? '# Listen on every interface (standard ports in master.cf).' : '# Listen on the loopback interface only.',
    `inet_interfaces = ${s.public ? 'all' : 'loopback-only'}`,
    'inet_protocols = all',
  ];
  if (s.role === 'null-client') {
    lines.push('', '# Null client (send only): no local delivery; all mail goes to relayhost.',
      'local_transport = error:local delivery is disabled');
  }
  return lines.join('\n') + '\n';
}

/** A host name Postfix accepts as myhostname: the system's, made fully qualified. */
export function defaultHostname(): string {
  const h = hostname().toLowerCase();
  if (!isDnsName(h)) return 'localhost.localdomain';
  return h.includes('.') ? h : `${h}.localdomain`;
}

/** vmail's ids from /etc/passwd (Dovecot's and the seed's convention), else 5000:5000. */
function vmailIds(): { uid: number; gid: number } {
  try {
    for (const line of readFileSync('/etc/passwd', 'latin1').split('\n')) {
      const f = line.split(':');
      if (f[0] === 'vmail' && /^\d+$/.test(f[2] ?? '') && /^\d+$/.test(f[3] ?? '')) return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch { /* no /etc/passwd */ }
  return { uid: 5000, gid: 5000 };
}

export function defaultValues(configDir: string, dataDir: string, portBase?: number): DefaultValues {
  const root = process.getuid?.() === 0;
  const ids = root ? vmailIds() : { uid: process.getuid?.() ?? 5000, gid: process.getgid?.() ?? 5000 };
  let mailOwner: string | undefined;
  if (!root) { try { mailOwner = userInfo().username; } catch { /* no passwd entry */ } }
  return {
    configDir: resolve(configDir), dataDir: resolve(dataDir), myhostname: defaultHostname(),
    ports: portsFromBase(portBase), ...ids, ...(mailOwner ? { mailOwner } : {}),
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

export function tlsFiles(configDir: string): { cert: string; key: string } {
  return { cert: join(configDir, 'tls', 'postern.crt'), key: join(configDir, 'tls', 'postern.key') };
}

/** Postfix main.cf (postconf(5)); every name is a real Postfix parameter. */
export function mainCfText(v: DefaultValues): string {
  const tls = tlsFiles(v.configDir);
  return `# main.cf - Postern's main configuration, in Postfix main.cf syntax.
${v.site ? `# Written by \`postern init\` on ${v.date} from the answers to the seed's Table 2
# (role ${v.site.role}${v.site.public ? ', listening on all interfaces' : ', loopback only'}).`
    : `# Written by \`postern start\` on ${v.date} because ${v.configDir} held no configuration.
# A working system on the loopback interface only, with unprivileged ports (see master.cf and
# dovecot.conf), one hosted domain (${SAMPLE_DOMAIN}) and a self-signed certificate.`}
# \`postern conf -n\` shows these settings, \`postern conf -d\` the defaults; docs/master.md.

compatibility_level = 3.6
myhostname = ${v.myhostname}
${v.site ? siteBlock(v.site) : `
# Listen on the loopback interface only; accept mail for relaying from this host only.
inet_interfaces = loopback-only
inet_protocols = all
mynetworks = 127.0.0.0/8 [::1]/128
`}
# Where mail data lives.
queue_directory = ${v.dataDir}/queue
data_directory = ${v.dataDir}/lib
${v.mailOwner ? `mail_owner = ${v.mailOwner}\n` : ''}
# Local delivery (user@$myhostname, user@localhost) goes to UNIX accounts. Postfix's default
# alias_maps (hash:/etc/aliases, nis:mail.aliases) needs an index: to use the system aliases,
# set alias_maps = hash:/etc/aliases and run \`postern newaliases\`.
alias_maps =
alias_database =

# Hosted domains: the domains and mailboxes are those of the user directory configured in
# dovecot.conf, so SMTP and IMAP/POP3 share one user list (\`postern user add ...\`).
virtual_mailbox_domains = ${v.site && v.site.role !== 'final' ? '' : [...(v.site?.hostedDomains ?? []), 'auth:domains'].join(' ')}
virtual_mailbox_maps = auth:userdb
virtual_mailbox_base = ${mailboxBase(v)}
virtual_minimum_uid = ${Math.min(100, v.uid)}
virtual_uid_maps = static:${v.uid}
virtual_gid_maps = static:${v.gid}

# TLS: a self-signed certificate; replace it with a real one.
smtpd_tls_cert_file = ${tls.cert}
smtpd_tls_key_file = ${tls.key}
smtpd_tls_security_level = may
smtp_tls_security_level = may

# SASL authentication against the same user directory (enabled per service in master.cf).
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
`;
}

const MASTER_HEADER = `#
# ==========================================================================
# service type  private unpriv  chroot  wakeup  maxproc command + args
#               (yes)   (yes)   (no)    (never) (100)
# ==========================================================================
`;

/** Postfix master.cf (master(5)): Postfix's stock services; chroot is "n" (Node has none). */
export function masterCfText(v: DefaultValues): string {
  const p = v.ports;
  const col = (s: string, w: number) => (s.length >= w ? s + ' ' : s.padEnd(w));
  const entry = (svc: string, type: string, priv: string, unpriv: string, wakeup: string, maxproc: string, cmd: string, ...opts: string[]) =>
    `${col(svc, 10)}${col(type, 6)}${col(priv, 8)}${col(unpriv, 8)}${col('n', 8)}${col(wakeup, 8)}${col(maxproc, 8)}${cmd}\n`
    + opts.map((o) => `  -o ${o}\n`).join('');
  return `# master.cf - Postern's services, in Postfix master.cf syntax (master(5)).
# Written by ${writer(v)} on ${v.date}. SMTP listens on port ${p.smtp}, submission (STARTTLS
# required, then AUTH) on ${p.submission}, submissions (TLS from the first byte) on ${p.submissions};
# change the first column to move a service ("25", "127.0.0.1:2525", ...).
${MASTER_HEADER}`
    + entry(String(p.smtp), 'inet', 'n', '-', '-', '-', 'smtpd')
    + entry(String(p.submission), 'inet', 'n', '-', '-', '-', 'smtpd',
      'syslog_name=postern/submission', 'smtpd_tls_security_level=encrypt', 'smtpd_sasl_auth_enable=yes',
      'smtpd_tls_auth_only=yes', 'smtpd_client_restrictions=permit_sasl_authenticated,reject',
      'smtpd_relay_restrictions=permit_sasl_authenticated,reject', 'milter_macro_daemon_name=ORIGINATING')
    + entry(String(p.submissions), 'inet', 'n', '-', '-', '-', 'smtpd',
      'syslog_name=postern/submissions', 'smtpd_tls_wrappermode=yes', 'smtpd_sasl_auth_enable=yes',
      'smtpd_client_restrictions=permit_sasl_authenticated,reject',
      'smtpd_relay_restrictions=permit_sasl_authenticated,reject', 'milter_macro_daemon_name=ORIGINATING')
    + entry('pickup', 'unix', 'n', '-', '60', '1', 'pickup')
    + entry('cleanup', 'unix', 'n', '-', '-', '0', 'cleanup')
    + entry('qmgr', 'unix', 'n', '-', '300', '1', 'qmgr')
    + entry('tlsmgr', 'unix', '-', '-', '1000?', '1', 'tlsmgr')
    + entry('rewrite', 'unix', '-', '-', '-', '-', 'trivial-rewrite')
    + entry('bounce', 'unix', '-', '-', '-', '0', 'bounce')
    + entry('defer', 'unix', '-', '-', '-', '0', 'bounce')
    + entry('trace', 'unix', '-', '-', '-', '0', 'bounce')
    + entry('verify', 'unix', '-', '-', '-', '1', 'verify')
    + entry('flush', 'unix', 'n', '-', '1000?', '0', 'flush')
    + entry('proxymap', 'unix', '-', '-', '-', '-', 'proxymap')
    + entry('proxywrite', 'unix', '-', '-', '-', '1', 'proxymap')
    + entry('smtp', 'unix', '-', '-', '-', '-', 'smtp')
    + entry('relay', 'unix', '-', '-', '-', '-', 'smtp', 'syslog_name=postern/$service_name')
    + entry('showq', 'unix', 'n', '-', '-', '-', 'showq')
    + entry('error', 'unix', '-', '-', '-', '-', 'error')
    + entry('retry', 'unix', '-', '-', '-', '-', 'error')
    + entry('discard', 'unix', '-', '-', '-', '-', 'discard')
    + entry('local', 'unix', '-', 'n', '-', '-', 'local')
    + entry('virtual', 'unix', '-', 'n', '-', '-', 'virtual')
    + entry('lmtp', 'unix', '-', '-', '-', '-', 'lmtp')
    + entry('anvil', 'unix', '-', '-', '-', '1', 'anvil')
    + entry('scache', 'unix', '-', '-', '-', '1', 'scache');
}

/** dovecot.conf (Dovecot 2.3 syntax, the subset docs/dovecot-conf.md describes). */
export function dovecotConfText(v: DefaultValues): string {
  const p = v.ports;
  const tls = tlsFiles(v.configDir);
  const sqlConf = join(v.configDir, 'dovecot-sql.conf.ext');
  return `# dovecot.conf - Postern's mail access side (IMAP, POP3, LMTP, ManageSieve), in Dovecot 2.3 syntax.
# Written by ${writer(v)} on ${v.date}. Users live in the embedded SQLite directory
# ${v.dataDir}/users.db (\`postern user add|passwd|list\`); main.cf's auth:userdb reads the same one.

protocols = imap pop3 lmtp sieve
listen = ${v.site?.public ? '*, ::' : '127.0.0.1, ::1'}
base_dir = ${v.dataDir}/run
mail_location = ${virtualMailLocation(mailboxBase(v))}
mail_uid = ${v.uid}
mail_gid = ${v.gid}
first_valid_uid = ${Math.min(500, v.uid)}

ssl = yes
ssl_cert = <${tls.cert}
ssl_key = <${tls.key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login

passdb {
  driver = sql
  args = ${sqlConf}
}
userdb {
  driver = sql
  args = ${sqlConf}
  default_fields = home=${v.dataDir}/vmail/%d/%n
}

service imap-login {
  inet_listener imap {
    port = ${p.imap}
  }
  inet_listener imaps {
    port = ${p.imaps}
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = ${p.pop3}
  }
  inet_listener pop3s {
    port = ${p.pop3s}
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1 ::1
    port = ${p.lmtp}
  }
}
service managesieve-login {
  inet_listener sieve {
    port = ${p.sieve}
  }
}

# Users' Sieve filters (ManageSieve), where Dovecot's Pigeonhole keeps them.
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
# ... and run at delivery: by lmtpd, and by virtual(8)/local(8) as Dovecot's LDA (docs/sieve.md).
protocol lmtp {
  mail_plugins = $mail_plugins sieve
}
protocol lda {
  mail_plugins = $mail_plugins sieve
}

namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}
`;
}

/** A password a person can type: 16 characters without look-alikes (0/O, 1/l/I). */
export function generatePassword(): string {
  const alphabet = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  let pw = '';
  for (let i = 0; i < 16; i++) pw += alphabet[randomInt(alphabet.length)];
  return pw;
}

/** The how-to printed after the files are written. */
export function howToText(v: DefaultValues, password: string): string {
  const p = v.ports;
  const u = SAMPLE_USER;
  return `postern: user ${u} has the password ${password}
postern:   (shown only now; change it with: postern user passwd ${u})
postern: listening on 127.0.0.1 and ::1 only: SMTP ${p.smtp}, submission ${p.submission}, submissions ${p.submissions}, IMAP ${p.imap}, IMAPS ${p.imaps}, POP3 ${p.pop3}, POP3S ${p.pop3s}, LMTP ${p.lmtp}, ManageSieve ${p.sieve}
postern: send a message:
  swaks --server 127.0.0.1 --port ${p.smtp} --from you@${SAMPLE_DOMAIN} --to ${u}
  swaks --server 127.0.0.1 --port ${p.submission} -tls --auth PLAIN --auth-user ${u} --auth-password '${password}' --from ${u} --to ${u}
postern: read it:
  curl --insecure --user '${u}:${password}' 'imaps://127.0.0.1:${p.imaps}/INBOX;UID=1'
  python3 -c "import imaplib,ssl; m=imaplib.IMAP4_SSL('127.0.0.1', ${p.imaps}, ssl_context=ssl._create_unverified_context()); m.login('${u}', '${password}'); m.select(); print(m.fetch('1', '(RFC822)')[1][0][1].decode())"
  curl --insecure --user '${u}:${password}' pop3s://127.0.0.1:${p.pop3s}/1
`;
}

export interface WriteDefaultOptions {
  configDir: string;
  dataDir: string;
  portBase?: number;
  /** Where the announcements go (stdout for `postern start`). */
  say: (line: string) => void;
}

export interface DefaultConfigResult {
  values: DefaultValues;
  password: string;
  files: string[];
}

function writeNew(file: string, text: string, mode: number): void {
  writeFileSync(file, text, { mode, flag: 'wx' });   // never overwrite an administrator's file
}

/**
 * Write the whole default configuration, the data directories, the certificate and the sample
 * user. Refuses to overwrite any existing file (the caller checks hasConfig first).
 */
export async function writeDefaultConfig(o: WriteDefaultOptions): Promise<DefaultConfigResult> {
  const v = defaultValues(o.configDir, o.dataDir, o.portBase);
  const root = process.getuid?.() === 0;
  mkdirSync(v.configDir, { recursive: true, mode: 0o755 });
  for (const d of ['queue', 'lib', 'run']) mkdirSync(join(v.dataDir, d), { recursive: true, mode: 0o755 });
  mkdirSync(mailboxBase(v), { recursive: true, mode: 0o755 });
  if (root) chownSync(mailboxBase(v), v.uid, v.gid);   // virtual(8) and lmtpd write as the vmail owner

  const files = ['main.cf', 'master.cf', 'dovecot.conf', 'dovecot-sql.conf.ext'].map((f) => join(v.configDir, f));
  writeNew(files[0]!, mainCfText(v), 0o644);
  writeNew(files[1]!, masterCfText(v), 0o644);
  writeNew(files[2]!, dovecotConfText(v), 0o644);
  const dbPath = join(v.dataDir, 'users.db');
  writeNew(files[3]!, embeddedUserDbSqlConf(dbPath), 0o644);

  const tls = tlsFiles(v.configDir);
  if (!existsSync(tls.cert) && !existsSync(tls.key)) {
    writeSelfSigned(tls.cert, tls.key, { hostname: v.myhostname }, o.say);
    files.push(tls.cert, tls.key);
  }

  const password = generatePassword();
  createEmbeddedUserDb(dbPath);
  const db = new DatabaseSync(dbPath);
  try {
    // The embedded schema (user-directory-embedded.ts); NULL uid/gid/home/maildir = dovecot.conf's defaults.
    // A users.db left from an earlier configuration keeps its users; the sample user gets the new password.
    // postmaster is the web console's administrator (postern_admin, docs/console.md).
    db.prepare('INSERT INTO users (username, domain, password, postern_admin) VALUES (?, ?, ?, 1) ON CONFLICT(username) DO UPDATE SET password = excluded.password')
      .run(SAMPLE_USER, SAMPLE_DOMAIN, await passwordHash('SHA512-CRYPT', password));
  } finally {
    db.close();
  }
  files.push(dbPath);

  o.say(`postern: ${v.configDir} held no configuration: wrote a working default (main.cf, master.cf, dovecot.conf); mail data in ${v.dataDir}`);
  for (const line of howToText(v, password).trimEnd().split('\n')) o.say(line);
  return { values: v, password, files };
}
