/**
 * dovecot-conf - the subset of dovecot.conf (Dovecot 2.3 doveconf syntax) that Postern's imapd,
 * pop3d, lmtpd, authd and the master read: what to listen on, where mail lives, which passdb and
 * userdb, TLS files, SASL mechanisms, namespaces and their special-use mailboxes.
 *
 * Syntax, as Dovecot 2.3's src/config/config-parser.c reads it (config_parse_line):
 *  - `key = value`; white space around `=` is ignored; a value quoted with "" or '' at both ends
 *    is unquoted and `\x` becomes `x`. `#` outside quotes starts a comment (a `#` glued to text
 *    gets Dovecot's "Ambiguous '#'" warning). CR before LF is ignored.
 *  - A line ending in `\` continues on the next line; the pieces are joined with one space.
 *  - `section [name] {` ... `}`, nested; the name may be quoted (`mailbox "Sent Messages" {`).
 *  - `!include PATH` / `!include_try PATH`: glob patterns, relative to the including file's
 *    directory; files are read in sorted order; a file that includes itself (directly or not)
 *    is an error ("Recursive include file"), a missing `!include` is "No matches", and
 *    `!include_try` ignores missing or unreadable files.
 *  - `key = <FILE` reads the value from FILE (relative to the including file). For the TLS
 *    file settings (ssl_cert, ssl_key, ssl_ca, ssl_dh, ...) the path is kept instead and is
 *    what sslCert/sslKey hold, so a config whose key files are not readable yet still loads.
 *  - `$name` as a white-space separated word of an unquoted value expands to the value set
 *    earlier (or Dovecot's default); `$ENV:NAME` to the environment. "protocols = $protocols imap".
 *  - Filters `protocol NAME {}` (also `!NAME`), `local IP[/bits] {}`, `remote IP[/bits] {}`,
 *    `local_name NAME {}` hold overrides, retrieved with getFor().
 * Errors are ConfigError with Dovecot's text: "Error in configuration file FILE line N: ...".
 * A setting Dovecot knows but Postern does not use is kept (get() returns it) without a warning;
 * a setting Dovecot does not know is a warning "FILE, line N: unknown setting X (ignored)"
 * (doveconf would refuse to start; Postern reads only a subset and goes on).
 */
import { globSync, readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import path from 'node:path';
import { ConfigError } from './config-error.ts';
import DEFAULTS_JSON from './dovecot-conf-defaults.json' with { type: 'json' };

export interface AuthDbSpec {
  driver: string; args: string; defaultFields?: Record<string, string>; overrideFields?: Record<string, string>;
  file: string; line: number;
  /** Postern additions: the block's name, and every setting as written (deny, master, pass, skip, result_*...). */
  name?: string; settings?: Record<string, string>;
}
export interface InetListener { name: string; address?: string[]; port: number; ssl: boolean }
export interface DovecotService {
  name: string; inetListeners: InetListener[];
  unixListeners: { path: string; mode?: string; user?: string; group?: string }[];
  settings: Record<string, string>;
}
export interface MailboxSetting { name: string; specialUse: string[]; auto?: string }
export interface Namespace {
  name: string; inbox: boolean; separator?: string; prefix: string; mailboxes: MailboxSetting[];
  /** Postern addition: every namespace setting as written (type, location, hidden, list, subscriptions...). */
  settings?: Record<string, string>;
}
/** Where getFor() is asked from: the filters `protocol`, `local`, `remote`, `local_name`. */
export interface FilterContext { protocol?: string; localIp?: string; remoteIp?: string; localName?: string }
export interface DovecotFilter {
  protocol?: string; local?: string; remote?: string; localName?: string;
  settings: Record<string, string>; file: string; line: number;
}
export interface DovecotConfig {
  file: string;
  protocols: string[]; listen: string[]; mailLocation: string;
  passdbs: AuthDbSpec[]; userdbs: AuthDbSpec[]; services: DovecotService[];
  ssl: 'no' | 'yes' | 'required'; sslCert?: string; sslKey?: string;
  sslMinProtocol: string; authMechanisms: string[]; disablePlaintextAuth: boolean;
  namespaces: Namespace[];
  /** Top-level setting: the configured value, else Dovecot's default, else undefined. `plugin/NAME` for plugin {}. */
  get(name: string): string | undefined;
  warnings: string[];
  /** Postern additions. */
  isSet(name: string): boolean;
  /** A setting as seen from inside the filters that match ctx (most specific filter first), else get(name). */
  getFor(name: string, ctx: FilterContext): string | undefined;
  filters: DovecotFilter[];
}

/** Largest physical line accepted. */
export const MAX_LINE = 1 << 20;
/** Most files one configuration may include (counts repeats: stops include bombs). */
export const MAX_INCLUDES = 1000;

const DEFAULTS: Readonly<Record<string, string>> = DEFAULTS_JSON;
/** TLS settings whose `<FILE` value is kept as a path (Postern's TLS layer reads the files). */
const SSL_FILE_KEYS = new Set(['ssl_cert', 'ssl_key', 'ssl_ca', 'ssl_dh', 'ssl_alt_cert', 'ssl_alt_key', 'ssl_client_cert', 'ssl_client_key']);
const SERVICE_KEYS = new Set(['chroot', 'client_limit', 'drop_priv_before_exec', 'executable', 'extra_groups', 'group',
  'idle_kill', 'privileged_group', 'process_limit', 'process_min_avail', 'protocol', 'service_count', 'type', 'user', 'vsz_limit']);
const INET_LISTENER_KEYS = new Set(['address', 'haproxy', 'port', 'reuse_port', 'ssl']);
const UNIX_LISTENER_KEYS = new Set(['mode', 'user', 'group']);
const PASSDB_KEYS = new Set(['args', 'auth_verbose', 'default_fields', 'deny', 'driver', 'master', 'mechanisms', 'name',
  'override_fields', 'pass', 'result_failure', 'result_internalfail', 'result_success', 'skip', 'username_filter']);
const USERDB_KEYS = new Set(['args', 'auth_verbose', 'default_fields', 'driver', 'name', 'override_fields',
  'result_failure', 'result_internalfail', 'result_success', 'skip']);
const NAMESPACE_KEYS = new Set(['alias_for', 'disabled', 'hidden', 'ignore_on_failure', 'inbox', 'list', 'location',
  'order', 'prefix', 'separator', 'subscriptions', 'type']);
const MAILBOX_KEYS = new Set(['auto', 'autoexpunge', 'autoexpunge_max_mails', 'comment', 'driver', 'special_use']);
const STRLIST_SECTIONS = new Set(['plugin', 'dict']);
const FILTER_SECTIONS = new Set(['protocol', 'local', 'remote', 'local_name']);
/** Valid Dovecot 2.3 sections Postern does not read (no "unknown" warning, but a "not supported" one). */
const UNSUPPORTED_SECTIONS = new Set(['metric', 'event_exporter', 'auth_policy']);

/** Dovecot's default services for the protocols Postern serves (doveconf -d, 2.3.19). */
function defaultServices(): DovecotService[] {
  const login = (name: string, ls: [string, number, boolean][]): DovecotService => ({
    name, inetListeners: ls.map(([n, port, ssl]) => ({ name: n, port, ssl })), unixListeners: [], settings: {},
  });
  return [
    login('imap-login', [['imap', 143, false], ['imaps', 993, true]]),
    login('pop3-login', [['pop3', 110, false], ['pop3s', 995, true]]),
    login('submission-login', [['submission', 587, false]]),
    { name: 'lmtp', inetListeners: [], unixListeners: [{ path: 'lmtp', mode: '0666' }], settings: {} },
    { name: 'auth', inetListeners: [], settings: {}, unixListeners: [
      { path: 'auth-client', mode: '0600' }, { path: 'auth-login', mode: '0600' }, { path: 'auth-master', mode: '0600' },
      { path: 'auth-userdb', mode: '0666' }, { path: 'login/login', mode: '0666' }, { path: 'token-login/tokenlogin', mode: '0666' }] },
  ];
}

/**
 * Postern's configuration when there is no dovecot.conf: Dovecot's defaults (protocols
 * "imap pop3 lmtp", listen "*, ::", ssl=yes, disable_plaintext_auth=yes, auth_mechanisms=plain,
 * mail_location empty, imap 143/993, pop3 110/995, submission 587, lmtp on a unix socket), no
 * passdb/userdb (the user directory picks its embedded default), and one inbox namespace with
 * Drafts, Junk, Trash and Sent auto-subscribed (Debian's 15-mailboxes.conf plus auto=subscribe).
 */
export function dovecotDefaults(file = 'dovecot.conf'): DovecotConfig {
  const st = newState(file);
  const ns: NsState = { name: 'inbox', inbox: true, prefix: '', mailboxes: [], settings: { inbox: 'yes' } };
  for (const [name, use] of [['Drafts', '\\Drafts'], ['Junk', '\\Junk'], ['Trash', '\\Trash'], ['Sent', '\\Sent']] as const) {
    ns.mailboxes.push({ name, specialUse: [use], auto: 'subscribe' });
  }
  st.namespaces.push(ns);
  return finish(st);
}

/** Parses dovecot.conf text; `file` names it in messages and anchors relative `!include`s. Throws ConfigError. */
export function parseDovecotConf(text: string, file: string): DovecotConfig {
  const st = newState(file);
  parseText(st, text, path.resolve(file));
  const open = st.stack.at(-1)!;
  if (open.kind !== 'root') {
    const e = new ConfigError(open.file, open.line, '');
    e.message = `Error in configuration file ${file}: Missing '}' (section started at ${open.file}:${open.line})`;
    throw e;
  }
  // Dovecot creates an implicit inbox namespace when none is configured (mail_namespaces_init_empty).
  if (st.namespaces.length === 0) st.namespaces.push({ name: 'inbox', inbox: true, prefix: '', mailboxes: [], settings: {} });
  return finish(st);
}

/** Reads CONFIG_DIR/dovecot.conf; a missing file gives dovecotDefaults(). */
export function loadDovecotConf(configDir: string): DovecotConfig {
  const file = path.join(configDir, 'dovecot.conf');
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return dovecotDefaults(file);
    throw dovecotError(file, 0, `open(${file}) failed: ${code ?? String(err)}`);
  }
  return parseDovecotConf(text, file);
}

// ---------------------------------------------------------------------------------------------

interface Where { file: string; line: number }
interface NsState { name: string; inbox: boolean; separator?: string; prefix: string; mailboxes: MailboxSetting[]; settings: Record<string, string> }
type Frame =
  | { kind: 'root'; file: string; line: number }
  | { kind: 'service'; svc: DovecotService; file: string; line: number }
  | { kind: 'inet_listener'; l: InetListener; file: string; line: number }
  | { kind: 'unix_listener'; l: DovecotService['unixListeners'][number]; file: string; line: number }
  | { kind: 'passdb' | 'userdb'; db: AuthDbSpec; file: string; line: number }
  | { kind: 'namespace'; ns: NsState; file: string; line: number }
  | { kind: 'mailbox'; mb: MailboxSetting & { settings: Record<string, string> }; file: string; line: number }
  | { kind: 'filter'; f: DovecotFilter; file: string; line: number }
  | { kind: 'strlist'; prefix: string; filter?: DovecotFilter; file: string; line: number }
  | { kind: 'ignore'; file: string; line: number };

interface State {
  file: string;
  stack: Frame[];
  includes: string[];            // the include chain, for "Recursive include file"
  includeCount: number;
  settings: Map<string, { value: string; where: Where }>;
  filePaths: Map<string, string>;
  services: DovecotService[];
  passdbs: AuthDbSpec[]; userdbs: AuthDbSpec[];
  namespaces: NsState[];
  filters: DovecotFilter[];
  warnings: string[];
}

function newState(file: string): State {
  return {
    file, stack: [{ kind: 'root', file, line: 0 }], includes: [], includeCount: 0, settings: new Map(),
    filePaths: new Map(), services: defaultServices(), passdbs: [], userdbs: [], namespaces: [], filters: [], warnings: [],
  };
}

function dovecotError(file: string, line: number, msg: string): ConfigError {
  const e = new ConfigError(file, line, msg);
  e.message = line > 0 ? `Error in configuration file ${file} line ${line}: ${msg}` : `Error in configuration file ${file}: ${msg}`;
  return e;
}

const isWhite = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\r';

/** Dovecot's str_unescape(): `\x` → `x`. */
function unescape(s: string): string {
  return s.replace(/\\(.)/gs, '$1');
}

function parseText(st: State, text: string, file: string): void {
  if (st.includes.includes(file)) throw dovecotError(st.includes.at(-1)!, 0, `Recursive include file: ${file}`);
  st.includes.push(file);
  const lines = text.split('\n');
  let full = '';
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i]!;
    if (line.length > MAX_LINE) throw dovecotError(file, lineNo, `Line too long (more than ${MAX_LINE} bytes)`);
    if (line.includes('\0')) throw dovecotError(file, lineNo, 'Line contains a NUL byte');
    let p = 0;
    while (isWhite(line[p])) p++;
    if (line[p] === '#' || p === line.length) continue;
    line = line.slice(p);
    // Strip the comment (outside quotes); config-parser.c "pretty kludgy way really".
    for (let j = 0; j < line.length; j++) {
      const c = line[j]!;
      if (c === '"' || c === "'") {
        for (j++; j < line.length && line[j] !== c; j++) if (line[j] === '\\' && j + 1 < line.length) j++;
      } else if (c === '#') {
        if (!isWhite(line[j - 1])) {
          st.warnings.push(`${file}, line ${lineNo}: ambiguous '#' character in line, treating it as comment (add a space before it)`);
        }
        line = line.slice(0, j);
        break;
      }
    }
    let len = line.length;
    while (len > 0 && isWhite(line[len - 1])) len--;
    line = line.slice(0, len);
    if (line.endsWith('\\')) {
      let l2 = len - 1;
      while (l2 > 0 && isWhite(line[l2 - 1])) l2--;
      if (l2 > 0) full += line.slice(0, l2) + ' ';
      if (full.length > MAX_LINE) throw dovecotError(file, lineNo, `Line too long (more than ${MAX_LINE} bytes)`);
      continue;
    }
    if (full !== '') { line = full + line; full = ''; }
    parseLine(st, line, { file, line: lineNo });
  }
  st.includes.pop();
}

function parseLine(st: State, line: string, where: Where): void {
  let p = 0;
  while (p < line.length && !isWhite(line[p]) && line[p] !== '=') p++;
  const key = line.slice(0, p);
  while (isWhite(line[p])) p++;
  let rest = line.slice(p);
  if (key === '!include' || key === '!include_try') return include(st, rest, key === '!include_try', where);
  if (rest[0] === '=') {
    if (key === '') throw dovecotError(where.file, where.line, "Missing key name ('=' at the beginning of line)");
    rest = rest.slice(1).replace(/^[ \t\r]+/, '');
    return setValue(st, key, rest, where);
  }
  if (key === '}' && rest === '') return endSection(st, where);
  // b) section_type [section_name] {
  let name = '';
  if (rest[0] !== '{') {
    if (rest[0] === '"') {
      const close = rest.indexOf('"', 1);
      if (close > 0) { name = unescape(rest.slice(1, close)); rest = rest.slice(close + 1).replace(/^[ \t\r]+/, ''); }
    } else {
      const m = /^([^ \t\r]*)[ \t\r]*(.*)$/s.exec(rest)!;
      name = m[1]!; rest = m[2]!;
    }
    if (rest[0] !== '{') throw dovecotError(where.file, where.line, "Expecting '{'");
  }
  if (rest.length > 1) throw dovecotError(where.file, where.line, "Garbage after '{'");
  beginSection(st, key, name, where);
}

function include(st: State, pattern: string, tryOnly: boolean, where: Where): void {
  const abs = path.resolve(path.dirname(where.file), pattern);
  let matches: string[];
  try {
    matches = globSync(abs).sort();
  } catch {
    matches = [];
  }
  if (matches.length === 0) {
    if (tryOnly) return;
    throw dovecotError(where.file, where.line, `No matches for !include ${pattern}`);
  }
  for (const m of matches) {
    if (st.includes.includes(m)) throw dovecotError(where.file, where.line, `Recursive include file: ${m}`);
    if (++st.includeCount > MAX_INCLUDES) throw dovecotError(where.file, where.line, `Too many included files (more than ${MAX_INCLUDES})`);
    let text: string;
    try {
      text = readFileSync(m, 'latin1');
    } catch (err) {
      if (tryOnly) continue;
      throw dovecotError(where.file, where.line, `Couldn't open include file ${m}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    parseText(st, text, m);
  }
}

/** Expands `$name` words (config_write_keyvariable): earlier value in this filter, then globally, then the default. */
function expandVars(st: State, value: string, where: Where): string {
  const words = value.split(/[ \t\r]+/);
  return words.map((w) => {
    if (!w.startsWith('$')) return w;
    if (w.startsWith('$ENV:')) return process.env[w.slice(5)] ?? '';
    const name = w.slice(1);
    const frame = st.stack.at(-1)!;
    if (frame.kind === 'filter' && Object.hasOwn(frame.f.settings, name)) return frame.f.settings[name]!;
    const set = st.settings.get(name);
    if (set) return set.value;
    if (Object.hasOwn(DEFAULTS, name)) return DEFAULTS[name]!;
    throw dovecotError(where.file, where.line, `Unknown variable: $${name}`);
  }).join(' ');
}

function setValue(st: State, key: string, raw: string, where: Where): void {
  let value = raw;
  let filePath: string | undefined;
  if (raw[0] === '<') {
    const p = path.resolve(path.dirname(where.file), raw.slice(1).replace(/^[ \t\r]+/, ''));
    if (SSL_FILE_KEYS.has(key)) {
      filePath = p;
      value = '<' + p;
    } else {
      try {
        value = readFileSync(p, 'latin1');
      } catch (err) {
        throw dovecotError(where.file, where.line, `${key}: Can't open file ${p}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    }
  } else if (raw[0] !== '"' && raw[0] !== "'" && raw.includes('$')) {
    value = expandVars(st, raw, where);
  } else if (raw.length > 1 && (raw[0] === '"' || raw[0] === "'") && raw.at(-1) === raw[0]) {
    value = unescape(raw.slice(1, -1));
  }
  const frame = st.stack.at(-1)!;
  const unknown = (what = 'setting'): void => {
    st.warnings.push(`${where.file}, line ${where.line}: unknown ${what} ${key} (ignored)`);
  };
  switch (frame.kind) {
    case 'root':
      if (!Object.hasOwn(DEFAULTS, key)) return unknown();
      if (filePath !== undefined) st.filePaths.set(key, filePath);
      else st.filePaths.delete(key);
      if (key === 'ssl_cert' || key === 'ssl_key') checkSslFile(st, key, raw, value, where);
      st.settings.set(key, { value, where });
      return;
    case 'filter':
      if (!Object.hasOwn(DEFAULTS, key)) return unknown();
      if ((frame.f.local !== undefined || frame.f.remote !== undefined) && key.startsWith('auth_')) {
        throw dovecotError(where.file, where.line, `Auth settings not supported inside local/remote blocks: ${key}`);
      }
      frame.f.settings[key] = value;
      return;
    case 'strlist':
      if (frame.filter) frame.filter.settings[`${frame.prefix}/${key}`] = value;
      else st.settings.set(`${frame.prefix}/${key}`, { value, where });
      return;
    case 'service':
      if (!SERVICE_KEYS.has(key)) return unknown('service setting');
      frame.svc.settings[key] = value;
      return;
    case 'inet_listener':
      if (!INET_LISTENER_KEYS.has(key)) return unknown('inet_listener setting');
      if (key === 'port') {
        if (!/^\d+$/.test(value) || Number(value) > 65535) throw dovecotError(where.file, where.line, `port: Invalid port number: ${value}`);
        frame.l.port = Number(value);
      } else if (key === 'ssl') frame.l.ssl = parseBool(value, key, where);
      else if (key === 'address') {
        const a = splitList(value);
        if (a.length > 0) frame.l.address = a; else delete frame.l.address;
      }
      return;
    case 'unix_listener':
      if (!UNIX_LISTENER_KEYS.has(key)) return unknown('unix_listener setting');
      frame.l[key as 'mode' | 'user' | 'group'] = value;
      return;
    case 'passdb':
    case 'userdb':
      if (!(frame.kind === 'passdb' ? PASSDB_KEYS : USERDB_KEYS).has(key)) return unknown(`${frame.kind} setting`);
      frame.db.settings![key] = value;
      if (key === 'driver') frame.db.driver = value;
      else if (key === 'args') frame.db.args = value;
      else if (key === 'default_fields') frame.db.defaultFields = parseFields(value);
      else if (key === 'override_fields') frame.db.overrideFields = parseFields(value);
      return;
    case 'namespace':
      if (!NAMESPACE_KEYS.has(key)) return unknown('namespace setting');
      frame.ns.settings[key] = value;
      if (key === 'inbox') frame.ns.inbox = parseBool(value, key, where);
      else if (key === 'prefix') frame.ns.prefix = value;
      else if (key === 'separator') frame.ns.separator = value;
      return;
    case 'mailbox':
      if (!MAILBOX_KEYS.has(key)) return unknown('mailbox setting');
      frame.mb.settings[key] = value;
      if (key === 'special_use') frame.mb.specialUse = splitList(value);
      else if (key === 'auto') {
        if (!['no', 'create', 'subscribe'].includes(value)) {
          throw dovecotError(where.file, where.line, `auto: Invalid value: ${value} (use no, create or subscribe)`);
        }
        frame.mb.auto = value;
      }
      return;
    case 'ignore':
      return;
  }
}

function checkSslFile(st: State, key: string, raw: string, value: string, where: Where): void {
  if (raw === '' || raw[0] === '<' || value.startsWith('-----BEGIN')) return;
  st.warnings.push(`${where.file}, line ${where.line}: ${key} should be written "${key} = <${value}" ` +
    `(the '<' reads the file); using ${value} as the file name`);
  st.filePaths.set(key, path.resolve(path.dirname(where.file), value));
}

function beginSection(st: State, type: string, name: string, where: Where): void {
  const top = st.stack.at(-1)!;
  const push = (f: Frame): void => { st.stack.push(f); };
  const base = { file: where.file, line: where.line };
  const ignore = (why: string): void => {
    st.warnings.push(`${where.file}, line ${where.line}: ${why} (ignored)`);
    push({ kind: 'ignore', ...base });
  };
  if (top.kind === 'ignore') return push({ kind: 'ignore', ...base });
  if (top.kind === 'root' || top.kind === 'filter') {
    if (FILTER_SECTIONS.has(type)) {
      const parent = top.kind === 'filter' ? top.f : undefined;
      const inherited = parent ? { protocol: parent.protocol, local: parent.local, remote: parent.remote, localName: parent.localName } : {};
      const f: DovecotFilter = { ...inherited, settings: {}, ...base };
      if (type === 'protocol') f.protocol = name;
      else if (type === 'local') f.local = checkNet(name, where);
      else if (type === 'remote') f.remote = checkNet(name, where);
      else f.localName = name;
      for (const k of Object.keys(f) as (keyof DovecotFilter)[]) if (f[k] === undefined) delete f[k];
      st.filters.push(f);
      return push({ kind: 'filter', f, ...base });
    }
    if (STRLIST_SECTIONS.has(type)) {
      return push(top.kind === 'filter' ? { kind: 'strlist', prefix: type, filter: top.f, ...base } : { kind: 'strlist', prefix: type, ...base });
    }
    if (top.kind === 'filter') return ignore(`section ${type} inside a filter is not supported by Postern`);
    switch (type) {
      case 'service': {
        let svc = st.services.find((s) => s.name === name);
        if (!svc) { svc = { name, inetListeners: [], unixListeners: [], settings: {} }; st.services.push(svc); }
        return push({ kind: 'service', svc, ...base });
      }
      case 'passdb':
      case 'userdb': {
        const list = type === 'passdb' ? st.passdbs : st.userdbs;
        let db = name !== '' ? list.find((d) => d.name === name) : undefined;
        if (!db) {
          db = { driver: '', args: '', ...base, settings: {} };
          if (name !== '') db.name = name;
          list.push(db);
        }
        return push({ kind: type, db, ...base });
      }
      case 'namespace': {
        let ns = st.namespaces.find((n) => n.name === name);
        if (!ns) { ns = { name, inbox: false, prefix: '', mailboxes: [], settings: {} }; st.namespaces.push(ns); }
        return push({ kind: 'namespace', ns, ...base });
      }
    }
    if (UNSUPPORTED_SECTIONS.has(type)) return ignore(`section ${type} is not supported by Postern`);
    return ignore(`unknown section ${type}`);
  }
  if (top.kind === 'service' && type === 'inet_listener') {
    let l = top.svc.inetListeners.find((x) => x.name === name);
    if (!l) { l = { name, port: 0, ssl: false }; top.svc.inetListeners.push(l); }
    return push({ kind: 'inet_listener', l, ...base });
  }
  if (top.kind === 'service' && (type === 'unix_listener' || type === 'fifo_listener')) {
    // fifo_listener only serves Dovecot-internal services (director, log): accepted, not used.
    if (type === 'fifo_listener') return push({ kind: 'ignore', ...base });
    let l = top.svc.unixListeners.find((x) => x.path === name);
    if (!l) { l = { path: name }; top.svc.unixListeners.push(l); }
    return push({ kind: 'unix_listener', l, ...base });
  }
  if (top.kind === 'namespace' && type === 'mailbox') {
    let mb = top.ns.mailboxes.find((m) => m.name === name) as (MailboxSetting & { settings: Record<string, string> }) | undefined;
    if (!mb) { mb = { name, specialUse: [], settings: {} }; top.ns.mailboxes.push(mb); }
    return push({ kind: 'mailbox', mb, ...base });
  }
  if (top.kind === 'strlist') return push({ ...top, prefix: `${top.prefix}/${type}`, ...base });
  return ignore(`unknown section ${type} inside ${top.kind}`);
}

function endSection(st: State, where: Where): void {
  if (st.stack.length === 1) throw dovecotError(where.file, where.line, "Unexpected '}'");
  st.stack.pop();
}

function checkNet(name: string, where: Where): string {
  const [ip, bits] = name.split('/', 2) as [string, string | undefined];
  const fam = isIP(ip);
  if (fam === 0 || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > (fam === 4 ? 32 : 128)))) {
    throw dovecotError(where.file, where.line, `Invalid network mask: ${name} (use an IP address, optionally with /bits)`);
  }
  return name;
}

function parseBool(v: string, key: string, where: Where): boolean {
  const l = v.toLowerCase();
  if (l === 'yes' || l === 'y' || l === '1') return true;
  if (l === 'no' || l === 'n' || l === '0') return false;
  throw dovecotError(where.file, where.line, `${key}: Invalid boolean value: ${v} (use yes or no)`);
}

function splitList(v: string): string[] {
  return v.split(/[\s,]+/).filter((x) => x !== '');
}

/** default_fields/override_fields: "key=value key2=value2" (a word without '=' is key=""). */
function parseFields(v: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of v.split(/[ \t]+/)) {
    if (w === '') continue;
    const eq = w.indexOf('=');
    if (eq < 0) out[w] = ''; else out[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return out;
}

function filterMatches(f: DovecotFilter, ctx: FilterContext): boolean {
  if (f.protocol !== undefined) {
    if (ctx.protocol === undefined) return false;
    const neg = f.protocol.startsWith('!');
    if ((neg ? f.protocol.slice(1) : f.protocol) === ctx.protocol ? neg : !neg) return false;
  }
  const inNet = (net: string, ip: string | undefined): boolean => {
    if (ip === undefined || isIP(ip) === 0) return false;
    const [addr, bits] = net.split('/', 2) as [string, string | undefined];
    const fam = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    const bl = new BlockList();
    bl.addSubnet(addr, bits === undefined ? (fam === 'ipv4' ? 32 : 128) : Number(bits), fam);
    return bl.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
  };
  if (f.local !== undefined && !inNet(f.local, ctx.localIp)) return false;
  if (f.remote !== undefined && !inNet(f.remote, ctx.remoteIp)) return false;
  if (f.localName !== undefined && !f.localName.split(/\s+/).includes(ctx.localName ?? '')) return false;
  return true;
}

/** Specificity, as Dovecot's config-filter.c sorts filters: local/remote networks, then local_name, then protocol. */
function specificity(f: DovecotFilter): number {
  const bits = (n?: string): number => (n === undefined ? -1 : Number(n.split('/')[1] ?? (isIP(n) === 6 ? 128 : 32)));
  return (bits(f.local) + 1) * 1e6 + (bits(f.remote) + 1) * 1e3 + (f.localName !== undefined ? 10 : 0) + (f.protocol !== undefined ? 1 : 0);
}

function finish(st: State): DovecotConfig {
  const rawGet = (name: string): string | undefined => st.settings.get(name)?.value ?? (Object.hasOwn(DEFAULTS, name) ? DEFAULTS[name] : undefined);
  const whereOf = (name: string): Where => st.settings.get(name)?.where ?? { file: st.file, line: 0 };
  const ssl = rawGet('ssl')!;
  if (ssl !== 'no' && ssl !== 'yes' && ssl !== 'required') {
    throw dovecotError(whereOf('ssl').file, whereOf('ssl').line, `ssl: Invalid value: ${ssl} (use no, yes or required)`);
  }
  const protocols = [...new Set(splitList(rawGet('protocols')!))].filter((p) => p !== 'none');
  const services = st.services.map((s) => ({ ...s, inetListeners: s.inetListeners.filter((l) => l.port !== 0) }));
  const namespaces: Namespace[] = st.namespaces.map((n) => {
    const ns: Namespace = { name: n.name, inbox: n.inbox, prefix: n.prefix, settings: n.settings,
      mailboxes: n.mailboxes.map((m) => {
        const mb: MailboxSetting = { name: m.name, specialUse: m.specialUse };
        if (m.auto) mb.auto = m.auto;
        return mb;
      }) };
    if (n.separator !== undefined) ns.separator = n.separator;
    return ns;
  });
  const conf: DovecotConfig = {
    file: st.file,
    protocols,
    listen: splitList(rawGet('listen')!),
    mailLocation: rawGet('mail_location')!,
    passdbs: st.passdbs, userdbs: st.userdbs, services,
    ssl,
    sslMinProtocol: rawGet('ssl_min_protocol')!,
    authMechanisms: splitList(rawGet('auth_mechanisms')!.toLowerCase()),
    disablePlaintextAuth: parseBool(rawGet('disable_plaintext_auth')!, 'disable_plaintext_auth', whereOf('disable_plaintext_auth')),
    namespaces,
    get: rawGet,
    warnings: st.warnings,
    isSet: (name) => st.settings.has(name),
    getFor(name, ctx) {
      const hits = st.filters.filter((f) => Object.hasOwn(f.settings, name) && filterMatches(f, ctx));
      hits.sort((a, b) => specificity(b) - specificity(a));
      return hits.length > 0 ? hits[0]!.settings[name] : rawGet(name);
    },
    filters: st.filters,
  };
  const cert = st.filePaths.get('ssl_cert');
  const key = st.filePaths.get('ssl_key');
  if (cert !== undefined) conf.sslCert = cert;
  if (key !== undefined) conf.sslKey = key;
  return conf;
}
