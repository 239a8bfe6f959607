/**
 * postinit - `postern init`: write a working configuration from the answers to the seed's
 * Table 2 ("questions to answer before configuring a mail server").
 *
 * SYNOPSIS
 *   postern [-c CONFIG_DIR] init [--force] [--non-interactive]
 *       [--hostname HOST] [--domain DOMAIN] [--networks "CIDR ..."] [--origin domain|hostname]
 *       [--destination "LIST"] [--role final|relay|null-client] [--relayhost HOST] [--public]
 *       [--user ADDRESS | --no-user]
 *
 * DESCRIPTION
 *   On a terminal, asks one question per Table 2 row, each explained in one line, with Postfix's
 *   derived default as the answer given by Enter:
 *     myhostname     this machine's name (the MX target; its PTR should name it)   [gethostname(), made fully qualified]
 *     mydomain       the parent domain, also the hosted mail domain                  [myhostname minus its first label]
 *     mynetworks     clients that may relay without authentication                   [Postfix's mynetworks_style = host]
 *     myorigin       the domain of locally posted mail (hostname or domain)          [hostname, Postfix's default]
 *     mydestination  domains delivered to this machine itself                        [$myhostname, localhost.$mydomain, localhost]
 *     role           final (mailboxes for DOMAIN here) | relay (for mynetworks, no mailboxes) | null-client (send only)
 *     relayhost      direct delivery (empty) or via a relay host ("relay or proxy?")
 *     public         listen on all interfaces and the standard ports, or loopback + unprivileged ports
 *     first user     a mailbox in the user directory (default postmaster@DOMAIN), password generated
 *   Answers may also come from the flags; a flag's question is not asked. When standard input is
 *   not a terminal (or with --non-interactive) nothing is asked: --hostname and --domain are
 *   required (the machine's own name is often not the mail name), the rest default as above, and
 *   a first user is made only with --user.
 *
 *   Writes CONFIG_DIR/main.cf, master.cf, dovecot.conf and dovecot-sql.conf.ext with the text
 *   builders of src/master/default-config.ts (so `postern start` and `postern init` agree), the
 *   data directories, the embedded user directory (DATA_DIR/users.db) and a self-signed
 *   certificate for myhostname (kept if one exists and names myhostname). An existing
 *   configuration is never overwritten without --force; with it, each file is first renamed to
 *   FILE.bak (FILE.bak.1, ... when that exists).
 *
 *   Then runs `postern check` on the result (the seed's NEVER rules among them) and prints the
 *   DNS records to publish (`postern dns DOMAIN`).
 *
 * EXIT STATUS
 *   0 written and checked; 1 the check found errors (the files stay written; the messages say
 *   what to change), or the files could not be written; 64 usage error, an invalid answer, or a
 *   missing answer when nothing may be asked; 73 (EX_CANTCREAT) a configuration exists and
 *   --force was not given.
 */
import { X509Certificate } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { defaultMyDomain, defaultMyNetworks } from '../global/mail-params-computed.ts';
import { loadDovecotConf } from '../global/dovecot-conf.ts';
import { createEmbeddedUserDb, embeddedUserDbSqlConf } from '../lib-auth/user-directory-embedded.ts';
import { checkNewUserName, openUserWriter, UserWriteError } from '../lib-auth/user-directory-write.ts';
import { passwordHash } from '../lib-auth/password-scheme.ts';
import { writeSelfSigned } from '../lib-tls/self-signed.ts';
import {
  STANDARD_PORTS, defaultDataDir, defaultHostname, defaultValues, dovecotConfText, generatePassword, mailboxBase,
  mainCfText, masterCfText, tlsFiles, type DefaultValues, type SiteSettings,
} from '../master/default-config.ts';
import { checkConfiguration, formatProblem } from './postcheck.ts';
import { STDIO, type CliOutput } from './postdns.ts';
import { checkDomainName, hostAddresses, zoneText } from './postdns-plan.ts';
import { MainConfig } from '../global/mail-conf.ts';
import type { CliContext } from './cli-context.ts';

const EX_USAGE = 64;
const EX_CANTCREAT = 73;
const USAGE = `usage: postern [-c CONFIG_DIR] init [--force] [--non-interactive] [--hostname HOST] [--domain DOMAIN]
         [--networks "CIDR ..."] [--origin domain|hostname] [--destination "LIST"]
         [--role final|relay|null-client] [--relayhost HOST] [--public] [--user ADDRESS | --no-user]`;

/** The files `postern init` writes in CONFIG_DIR (and backs up with --force). */
export const INIT_FILES = ['main.cf', 'master.cf', 'dovecot.conf', 'dovecot-sql.conf.ext'] as const;

export type Role = SiteSettings['role'];
const ROLES: Role[] = ['final', 'relay', 'null-client'];

/** All answers, after defaults. */
export interface InitAnswers {
  myhostname: string;
  mydomain: string;
  mynetworks: string;
  myorigin: 'hostname' | 'domain';
  mydestination: string;
  role: Role;
  relayhost: string;
  public: boolean;
  /** '' = no first user. */
  user: string;
}

type Key = keyof InitAnswers;

interface Question {
  key: Key;
  flag: string;
  /** The Table 2 question and the one-line explanation printed before it. */
  ask: string;
  explain: string;
  dflt: (a: Partial<InitAnswers>) => string;
  /** Error text or undefined; gets the raw answer. */
  check: (v: string, a: Partial<InitAnswers>) => string | undefined;
  /** Required when nothing may be asked (no usable default). */
  required?: boolean;
}

// ---- validation ------------------------------------------------------------------------------

/** A mynetworks entry: IPv4 CIDR, [IPv6]/len, or a bare address; never a network that opens relaying to everyone. */
export function checkNetworks(v: string): string | undefined {
  const items = v.split(/[\s,]+/).filter(Boolean);
  if (items.length === 0) return 'give at least one network (127.0.0.0/8 is the loopback network)';
  for (const item of items) {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+))(?:\/(\d{1,3}))?$/.exec(item);
    const addr = m?.[1] ?? m?.[2];
    const family = addr ? isIP(addr) : 0;
    if (!m || family === 0) return `"${item}" is not a network: write 192.0.2.0/24 or [2001:db8::]/32`;
    const len = m[3] === undefined ? (family === 4 ? 32 : 128) : Number(m[3]);
    if (len > (family === 4 ? 32 : 128)) return `"${item}": prefix length ${len} is too long`;
    // DESIGN.md §5 "never an open relay": a /0 (or anything near it) trusts the whole Internet.
    if (len < (family === 4 ? 8 : 16)) return `"${item}" trusts too much of the Internet to relay without authentication (an open relay); use a smaller network`;
  }
  return undefined;
}

/** relayhost syntax (postconf(5)): host, [host], host:port, [host]:port, [address]. */
export function checkRelayhost(v: string): string | undefined {
  if (v === '') return undefined;
  const m = /^(\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(v);
  if (!m) return `"${v}" is not a relay host: write mail.provider.example, [mail.provider.example] or [192.0.2.1]:587`;
  const host = m[2] ?? m[3]!;
  if (m[4] !== undefined && (Number(m[4]) < 1 || Number(m[4]) > 65535)) return `"${v}": bad port`;
  if (isIP(host) === 0 && checkDomainName(host)) return `relayhost: ${checkDomainName(host)}`;
  if (isIP(host) !== 0 && m[2] === undefined) return `"${v}": put an address in brackets: [${host}]`;
  return undefined;
}

/** mydestination: domain names or $name references, comma/space separated. */
function checkDestination(v: string): string | undefined {
  for (const item of v.split(/[\s,]+/).filter(Boolean)) {
    if (/^\$\{?[a-z_]+\}?$/.test(item) || item === 'localhost') continue;
    // localhost.$mydomain: check the literal labels around the $name.
    const bad = checkDomainName(item.replace(/^\./, '').replace(/\$\{?[a-z_]+\}?/g, 'x.x'));
    if (bad) return bad;
  }
  return undefined;
}

function yesNo(v: string): boolean | undefined {
  if (/^(y|yes|true|1)$/i.test(v)) return true;
  if (/^(n|no|false|0)$/i.test(v)) return false;
  return undefined;
}

// ---- the questions (seed Table 2, in its order) ----------------------------------------------

export const QUESTIONS: Question[] = [
  {
    key: 'myhostname', flag: '--hostname', required: true,
    ask: 'What is the domain name of the machine with Postern (myhostname)?',
    explain: 'The MX record of your domain points at this name; its PTR record should name it too (e.g. mail.example.com).',
    dflt: () => defaultHostname(),
    check: (v) => checkDomainName(v),
  },
  {
    key: 'mydomain', flag: '--domain', required: true,
    ask: 'Which domain is the parent domain (mydomain)?',
    explain: 'By default myhostname minus its first label; addresses user@DOMAIN get mailboxes here (role final).',
    dflt: (a) => defaultMyDomain(a.myhostname ?? defaultHostname()),
    check: (v) => checkDomainName(v),
  },
  {
    key: 'mynetworks', flag: '--networks',
    ask: 'Mail from which networks is relayed without authentication (mynetworks)?',
    explain: 'Only networks you control; everyone else must log in (SASL on submission) to send to other domains.',
    dflt: () => defaultMyNetworks('host'),
    check: (v) => checkNetworks(v),
  },
  {
    key: 'myorigin', flag: '--origin',
    ask: 'Which domain name does outgoing local mail use: hostname or domain (myorigin)?',
    explain: 'Postfix\'s default is hostname ($myhostname); the seed recommends domain ($mydomain) unless the site is really small.',
    dflt: () => 'hostname',
    check: (v) => (/^(hostname|domain)$/.test(v) ? undefined : 'answer hostname or domain'),
  },
  {
    key: 'mydestination', flag: '--destination',
    ask: 'For which domains is mail delivered to this machine itself (mydestination)?',
    explain: 'The machine\'s own names; never list a hosted mailbox domain here (the seed\'s NEVER rule).',
    dflt: () => '$myhostname, localhost.$mydomain, localhost',
    check: (v) => checkDestination(v),
  },
  {
    key: 'role', flag: '--role',
    ask: 'Which role does this machine have: final, relay or null-client?',
    explain: 'final: mailboxes for DOMAIN live here; relay: passes on mail of mynetworks, no mailboxes; null-client: only sends, all via relayhost.',
    dflt: () => 'final',
    check: (v) => (ROLES.includes(v as Role) ? undefined : `answer one of ${ROLES.join(', ')}`),
  },
  {
    key: 'relayhost', flag: '--relayhost',
    ask: 'Deliver outgoing mail directly (empty) or through which relay host (relayhost)?',
    explain: 'Direct delivery looks up each domain\'s MX; a relay host (your provider\'s smarthost) is needed where port 25 is blocked.',
    dflt: () => '',
    check: (v, a) => checkRelayhost(v) ?? (a.role === 'null-client' && v === '' ? 'a null client needs a relayhost' : undefined),
  },
  {
    key: 'public', flag: '--public',
    ask: 'Listen on all interfaces and the standard ports 25/587/465/143/993/110/995 (yes/no)?',
    explain: 'no: loopback only and unprivileged ports (a trial); yes: a real server, which must run as root to bind these ports.',
    dflt: () => 'no',
    check: (v) => (yesNo(v) === undefined ? 'answer yes or no' : undefined),
  },
  {
    key: 'user', flag: '--user',
    ask: 'Create a first mailbox user (an address, or "none")?',
    explain: 'Users live in the embedded user directory shared by SMTP, IMAP and POP3; the password is generated and shown once.',
    dflt: (a) => (a.role === 'final' ? `postmaster@${a.mydomain}` : 'none'),
    check: (v) => {
      if (v === 'none' || v === '') return undefined;
      try { checkNewUserName(v); } catch (e) { return (e as Error).message; }
      return v.includes('@') ? undefined : 'give a full address, user@domain';
    },
  },
];

/** Asks one question; returns the raw answer ('' = the default). */
export type Asker = (q: Question, dflt: string, error?: string) => Promise<string>;

function assign(a: Partial<InitAnswers>, key: Key, v: string): void {
  switch (key) {
    case 'public': a.public = yesNo(v)!; break;
    case 'role': a.role = v as Role; break;
    case 'myorigin': a.myorigin = v as 'hostname' | 'domain'; break;
    case 'user': a.user = v === 'none' ? '' : v.toLowerCase(); break;
    default: a[key] = (key === 'myhostname' || key === 'mydomain' ? v.toLowerCase().replace(/\.$/, '') : v);
  }
}

/**
 * Collect all answers: flags first; then the asker (a terminal) for the rest, or, without one,
 * the defaults, with an error listing the required flags not given.
 */
export async function collectAnswers(flags: Map<string, string>, asker: Asker | undefined): Promise<InitAnswers> {
  const a: Partial<InitAnswers> = {};
  if (!asker) {
    const missing = QUESTIONS.filter((q) => q.required && !flags.has(q.flag)).map((q) => q.flag);
    if (missing.length > 0) {
      throw new InitError(`standard input is not a terminal (or --non-interactive): give ${missing.map((f) => `${f} ...`).join(' and ')}`
        + ` (missing: ${missing.join(', ')})`);
    }
  }
  for (const q of QUESTIONS) {
    const dflt = q.dflt(a);
    let v = flags.get(q.flag);
    if (v !== undefined) {
      const bad = q.check(v, a);
      if (bad) throw new InitError(`${q.flag} ${JSON.stringify(v)}: ${bad}`);
    } else if (!asker) {
      v = dflt;
      const bad = q.check(v, a);
      if (bad) throw new InitError(`${q.flag}: ${bad}`);
    } else {
      let error: string | undefined;
      for (let tries = 0; ; tries++) {
        const raw = (await asker(q, dflt, error)).trim();
        v = raw === '' ? dflt : raw;
        error = q.check(v, a);
        if (!error) break;
        if (tries >= 4) throw new InitError(`${q.key}: ${error}`);
      }
    }
    assign(a, q.key, v);
  }
  const clash = neverRuleClash(a as InitAnswers);
  if (clash) throw new InitError(clash);
  return a as InitAnswers;
}

/**
 * The seed's first NEVER rule before anything is written: with role final, mydomain becomes a
 * virtual mailbox domain, so it must not also be one of mydestination's names (after $myhostname
 * and $mydomain are expanded). `postern check` repeats this on the written files.
 */
export function neverRuleClash(a: InitAnswers): string | undefined {
  if (a.role !== 'final') return undefined;
  const names = a.mydestination.split(/[\s,]+/).filter(Boolean)
    .map((n) => n.replace(/\$\{?myhostname\}?/g, a.myhostname).replace(/\$\{?mydomain\}?/g, a.mydomain).toLowerCase());
  if (!names.includes(a.mydomain)) return undefined;
  return `NEVER list a virtual MAILBOX domain in mydestination (the seed): mydestination = ${a.mydestination} names ${a.mydomain}, `
    + `which role final hosts as a virtual mailbox domain. Name the machine differently (e.g. --hostname mail.${a.mydomain}) `
    + 'or leave the domain out of --destination';
}

export class InitError extends Error {
  override name = 'InitError';
}

/**
 * A readline asker on a terminal: explanation, then `question [default]: `. Lines are read
 * through the async iterator, which buffers lines typed (or pasted) ahead of their question;
 * end of input (Ctrl+D) stops with nothing written.
 */
export function terminalAsker(input: NodeJS.ReadableStream, output: NodeJS.WritableStream): { ask: Asker; close: () => void } {
  const rl = createInterface({ input, output, terminal: true });
  const lines = rl[Symbol.asyncIterator]();
  return {
    ask: async (q, dflt, error) => {
      if (error) output.write(`  ! ${error}\n`);
      else output.write(`\n# ${q.explain}\n`);
      rl.setPrompt(`${q.ask} [${dflt === '' ? 'empty' : dflt}]: `);
      rl.prompt();
      const next = await lines.next();
      if (next.done) throw new InitError('end of input: nothing was written');
      return next.value;
    },
    close: () => rl.close(),
  };
}

// ---- writing ---------------------------------------------------------------------------------

/** FILE.bak, or FILE.bak.N when that exists too. */
function backupName(file: string): string {
  if (!existsSync(`${file}.bak`)) return `${file}.bak`;
  for (let n = 1; ; n++) if (!existsSync(`${file}.bak.${n}`)) return `${file}.bak.${n}`;
}

/** Postfix's smtpd_* and Dovecot's protocols as DefaultValues from the answers. */
export function valuesFor(a: InitAnswers, configDir: string, dataDir: string, portBase?: number): DefaultValues {
  const v = defaultValues(configDir, dataDir, portBase);
  v.myhostname = a.myhostname;
  if (a.public) v.ports = { ...STANDARD_PORTS };
  v.site = {
    mydomain: a.mydomain,
    myorigin: a.myorigin === 'domain' ? '$mydomain' : '$myhostname',
    mynetworks: a.mynetworks,
    mydestination: a.role === 'null-client' ? '' : a.mydestination,
    role: a.role,
    hostedDomains: a.role === 'final' ? [a.mydomain] : [],
    relayhost: a.relayhost,
    public: a.public,
  };
  return v;
}

export interface InitResult {
  values: DefaultValues;
  files: string[];
  backups: string[];
  password?: string;
  errors: number;
}

/** Write everything for the answers; the caller has checked --force. */
export async function writeInit(a: InitAnswers, configDir: string, dataDir: string, force: boolean, say: (l: string) => void, portBase?: number): Promise<InitResult> {
  const v = valuesFor(a, configDir, dataDir, portBase);
  const existing = INIT_FILES.map((f) => join(v.configDir, f)).filter((f) => existsSync(f));
  if (existing.length > 0 && !force) {
    throw new InitError(`${v.configDir} already holds a configuration (${existing.map((f) => f.slice(v.configDir.length + 1)).join(', ')}); `
      + 'give --force to replace it (the old files are kept as FILE.bak)');
  }
  mkdirSync(v.configDir, { recursive: true, mode: 0o755 });
  for (const d of ['queue', 'lib', 'run']) mkdirSync(join(v.dataDir, d), { recursive: true, mode: 0o755 });
  mkdirSync(mailboxBase(v), { recursive: true, mode: 0o755 });
  if (process.getuid?.() === 0) chownSync(mailboxBase(v), v.uid, v.gid);

  const backups: string[] = [];
  for (const f of existing) {
    const b = backupName(f);
    renameSync(f, b);
    backups.push(b);
    say(`postern: kept the old ${f} as ${b}`);
  }
  const dbPath = join(v.dataDir, 'users.db');
  const texts: [string, string][] = [
    ['main.cf', mainCfText(v)], ['master.cf', masterCfText(v)], ['dovecot.conf', dovecotConfText(v)],
    ['dovecot-sql.conf.ext', embeddedUserDbSqlConf(dbPath)],
  ];
  const files: string[] = [];
  for (const [name, text] of texts) {
    const file = join(v.configDir, name);
    writeFileSync(file, text, { mode: 0o644, flag: 'wx' });
    files.push(file);
  }
  createEmbeddedUserDb(dbPath);
  files.push(dbPath);

  // A certificate is kept when it names myhostname; one for another name is set aside.
  const tls = tlsFiles(v.configDir);
  let keep = false;
  try { keep = existsSync(tls.key) && new X509Certificate(readFileSync(tls.cert)).checkHost(a.myhostname) !== undefined; } catch { keep = false; }
  if (!keep) {
    for (const f of [tls.cert, tls.key]) if (existsSync(f)) { const b = backupName(f); renameSync(f, b); backups.push(b); }
    writeSelfSigned(tls.cert, tls.key, { hostname: a.myhostname }, say);
    files.push(tls.cert, tls.key);
  }

  let password: string | undefined;
  if (a.user) {
    password = generatePassword();
    const writer = openUserWriter(loadDovecotConf(v.configDir));
    try {
      const hash = await passwordHash('SHA512-CRYPT', password);
      try {
        writer.add({ user: a.user, password: hash, admin: true });
      } catch (e) {
        if (!(e instanceof UserWriteError) || !/already exists/.test(e.message)) throw e;
        writer.setPassword(a.user, hash);
        say(`postern: ${a.user} already existed in ${writer.where}: its password was replaced`);
      }
    } finally {
      writer.close();
    }
  }

  const problems = await checkConfiguration(v.configDir);
  for (const p of problems) say(formatProblem(p));
  return { values: v, files, backups, password, errors: problems.filter((p) => p.severity === 'error').length };
}

/** What to tell the administrator afterwards: ports, the user, and the DNS records. */
export function summaryText(a: InitAnswers, r: InitResult): string {
  const p = r.values.ports;
  const where = a.public ? 'all interfaces' : '127.0.0.1 and ::1 only';
  const lines = [
    `postern: wrote ${r.files.filter((f) => f.endsWith('.cf') || f.includes('dovecot')).join(', ')}`,
    `postern: role ${a.role}; myhostname = ${a.myhostname}, mydomain = ${a.mydomain}; mail data in ${r.values.dataDir}`,
    `postern: will listen on ${where}: SMTP ${p.smtp}, submission ${p.submission}, submissions ${p.submissions}, IMAP ${p.imap}, IMAPS ${p.imaps}, POP3 ${p.pop3}, POP3S ${p.pop3s}`,
  ];
  if (r.password) {
    lines.push(`postern: user ${a.user} has the password ${r.password}`,
      `postern:   (shown only now; change it with: postern user passwd ${a.user})`);
  }
  lines.push(r.errors > 0
    ? `postern: \`postern check\` found ${r.errors} error(s) above: correct them (postern conf -e NAME=VALUE or edit main.cf) before \`postern start\``
    : 'postern: `postern check` found no errors; start with: postern start');
  return lines.join('\n') + '\n';
}

// ---- command line ----------------------------------------------------------------------------

const VALUE_FLAGS = new Set(QUESTIONS.filter((q) => q.key !== 'public').map((q) => q.flag));

export function parseInitArgs(args: string[]): { flags: Map<string, string>; force: boolean; nonInteractive: boolean } {
  const flags = new Map<string, string>();
  let force = false;
  let nonInteractive = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    if (name === '--force') force = true;
    else if (name === '--non-interactive') nonInteractive = true;
    else if (name === '--public') flags.set('--public', 'yes');
    else if (name === '--no-user') flags.set('--user', 'none');
    else if (VALUE_FLAGS.has(name)) {
      const v = eq > 0 && name !== a ? a.slice(eq + 1) : args[++i];
      if (v === undefined) throw new InitError(`option ${name} needs a value`);
      flags.set(name, v);
    } else {
      throw new InitError(`unknown argument ${JSON.stringify(a)}`);
    }
  }
  return { flags, force, nonInteractive };
}

export interface InitIo extends CliOutput {
  /** A terminal to ask on; undefined = never ask. */
  asker?: Asker;
  /** Unprivileged port base (default: POSTERN_PORT_BASE, the test aid of default-config.ts). */
  portBase?: number;
}

export async function runInit(args: string[], ctx: CliContext, io: InitIo): Promise<number> {
  let parsed;
  let answers: InitAnswers;
  try {
    parsed = parseInitArgs(args);
  } catch (e) {
    if (!(e instanceof InitError)) throw e;
    io.err(`postern init: ${e.message}\n${USAGE}\n`);
    return EX_USAGE;
  }
  // Refuse before asking anything (writeInit checks again).
  const present = INIT_FILES.filter((f) => existsSync(join(ctx.configDir, f)));
  if (present.length > 0 && !parsed.force) {
    io.err(`postern init: ${resolve(ctx.configDir)} already holds a configuration (${present.join(', ')}); `
      + 'give --force to replace it (the old files are kept as FILE.bak)\n');
    return EX_CANTCREAT;
  }
  try {
    answers = await collectAnswers(parsed.flags, parsed.nonInteractive ? undefined : io.asker);
  } catch (e) {
    if (!(e instanceof InitError)) throw e;
    io.err(`postern init: ${e.message}\n${USAGE}\n`);
    return EX_USAGE;
  }
  const configDir = resolve(ctx.configDir);
  const dataDir = defaultDataDir(configDir, ctx.configDirExplicit);
  const base = process.env.POSTERN_PORT_BASE;
  const portBase = answers.public ? undefined : io.portBase ?? (base && /^\d+$/.test(base) ? Number(base) : undefined);
  const say = (l: string) => io.out(l + '\n');
  let r: InitResult;
  try {
    r = await writeInit(answers, configDir, dataDir, parsed.force, say, portBase);
  } catch (e) {
    if (e instanceof InitError) {
      io.err(`postern init: ${e.message}\n`);
      return EX_CANTCREAT;
    }
    io.err(`postern init: ${(e as Error).message}\n`);
    return 1;
  }
  io.out(summaryText(answers, r));
  if (answers.role === 'final') {
    const cf = MainConfig.load(configDir);
    const { addresses, source } = hostAddresses(cf, []);
    io.out('\n' + zoneText({
      domain: answers.mydomain, myhostname: answers.myhostname, addresses, addressSource: source, dkim: [],
      dkimHint: `DKIM: make the signing keys and their records with: postern -c ${configDir} dkim keygen ${answers.mydomain}`,
    }));
  }
  return r.errors > 0 ? 1 : 0;
}

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const term = tty ? terminalAsker(process.stdin, process.stdout) : undefined;
  try {
    return await runInit(args, ctx, { ...STDIO, asker: term?.ask });
  } finally {
    term?.close();
  }
}
