/**
 * master-cf - the master.cf service table (Postfix master(5)) as data for the master, for
 * `postern conf -M` (postconf -M) and for the delivery agents that read their own entry (pipe).
 *
 * Syntax, as Postfix 3.7 reads it (util/readlline.c, postconf/postconf_master.c, master/master_ent.c):
 *  - Blank lines and lines whose first non-blank character is `#` are ignored, wherever they are.
 *    A line that starts with white space continues the current logical line (also after an ignored
 *    comment line, as in Debian's `relay` entry). A logical line must not start with white space.
 *  - Fields are separated by space, tab, CR or LF (master_blanks " \t\r\n", so CRLF files work).
 *    `{ ... }` groups text with white space into one field (Postfix 3.0); braces nest.
 *  - 8 columns: service type private unpriv chroot wakeup maxproc command, then the command's args.
 *    `-` means the default: private=y, unpriv=y, chroot=n (Postfix >= 3.0), wakeup=0 (never),
 *    maxproc=$default_process_limit (100).
 *  - Leading daemon options are normalised as postconf does (pcf_normalize_daemon_args):
 *    `-oname=value` → `-o name=value`, `-vo x=y` → `-v -o x=y`, `-o { name = value }` → `-o name=value`,
 *    `{ arg }` → `arg`. The first argument that does not start with `-` (or `--`) ends the options.
 *  - pipe(8): the non-option arguments are `flags=`, `user=user[:group]`, `size=`, `null_sender=`,
 *    `eol=`, `directory=`, `chroot=`, and `argv=` — everything from argv= on is the command.
 *
 * Deviations from Postfix (all stricter, all reported as ConfigError with file and line):
 *  - a duplicate service name + type is an error; Postfix 3.7's master warns "duplicate master.cf
 *    entry for service ... -- using the last entry". Silently dropping a service hides mistakes.
 *  - things the daemons would die on later are reported at load time: `-o` without a value or
 *    without `=`, an unbalanced `{`, an inet port that is not a number or a known service name,
 *    a pipe entry without user= or argv=, pipe user=root, a service name with `/` (it names a
 *    socket file under private/ or public/).
 *  - NUL bytes and logical lines longer than MAX_LOGICAL_LINE are refused.
 * Inet service names are resolved with a built-in table plus /etc/services, never with DNS.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from './config-error.ts';

export interface MasterEntry {
  service: string; type: 'inet' | 'unix' | 'unix-dgram' | 'fifo' | 'pass';
  private: boolean; unpriv: boolean; chroot: boolean;
  wakeup: number; wakeupIfUsed: boolean;
  maxproc: number;
  command: string; args: string[];
  overrides: Record<string, string>;
  /** pipe(8) attributes; eol is unescaped (`\r\n` in master.cf → CR LF). directory= is a Postern addition to the shared shape. */
  pipe?: { flags: string; user: string; group?: string; argv: string[]; size?: number; nullSender?: string; eol?: string; directory?: string };
  file: string; line: number; fields: string[];
}

/** Options beyond the shared API: main.cf's default_process_limit resolves maxproc `-`. */
export interface MasterCfOptions { defaultProcessLimit?: number }

/** Command names (master.cf column 8) that Postern implements or will implement. */
export const POSTERN_SERVICES: ReadonlySet<string> = new Set([
  'smtpd', 'qmgr', 'cleanup', 'trivial-rewrite', 'pickup', 'bounce', 'defer', 'trace', 'verify',
  'flush', 'showq', 'error', 'retry', 'discard', 'local', 'virtual', 'lmtp', 'smtp', 'relay', 'pipe',
  'anvil', 'scache', 'tlsmgr', 'rewrite', 'proxymap', 'proxywrite', 'postlog', 'postlogd', 'qmqpd',
  'postscreen', 'dnsblog', 'tlsproxy', 'spawn',
]);

/** Largest logical line accepted (a real entry with many -o options is a few KiB). */
export const MAX_LOGICAL_LINE = 1 << 20;

const TYPES = new Set(['inet', 'unix', 'unix-dgram', 'fifo', 'pass']);
const BLANKS = ' \t\r\n';           // Postfix PCF_MASTER_BLANKS / master_blanks
const OPTIONS_WITH_VALUE = 'o';     // pcf_daemon_options_expecting_value
const PIPE_ATTRS = new Set(['flags', 'user', 'size', 'null_sender', 'eol', 'directory', 'chroot']);

/** Well-known TCP ports, so that resolution works without (or with a sparse) /etc/services. */
const KNOWN_PORTS: Record<string, number> = {
  smtp: 25, submission: 587, submissions: 465, smtps: 465, ssmtp: 465, urd: 465, lmtp: 24,
  qmqp: 628, imap: 143, imap2: 143, imaps: 993, pop3: 110, 'pop-3': 110, pop3s: 995, sieve: 4190,
};

/** Parses master.cf text. `file` names the file in error messages. Throws ConfigError. */
export function parseMasterCf(text: string, file: string, opts: MasterCfOptions = {}): MasterEntry[] {
  const entries: MasterEntry[] = [];
  const seen = new Map<string, MasterEntry>();
  for (const { text: logical, line } of logicalLines(text, file)) {
    const e = parseEntry(logical, file, line, opts);
    // master/master_ent.c: one entry per service name and type.
    const key = `${e.service}/${e.type}`;
    const prev = seen.get(key);
    if (prev) {
      throw new ConfigError(file, line, `duplicate master.cf entry for service "${e.service}" (${e.type}) ` +
        `-- first defined at line ${prev.line}; remove or rename one of them`);
    }
    seen.set(key, e);
    entries.push(e);
  }
  return entries;
}

/** Reads CONFIG_DIR/master.cf. A missing or unreadable file is a ConfigError (the master needs it). */
export function loadMasterCf(configDir: string, opts: MasterCfOptions = {}): MasterEntry[] {
  const file = path.join(configDir, 'master.cf');
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch (err) {
    throw new ConfigError(file, 0, `open ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseMasterCf(text, file, opts);
}

/**
 * One entry as `postconf -M` prints it (postconf_master.c pcf_print_master_entry): the 8 columns
 * at columns 0,11,17,25,33,41,49,57 with at least one space between, then the arguments; `-o`
 * values and later arguments that contain white space are shown in `{}`. With `fold` (postconf
 * -Mf), long lines wrap at 80 columns with a 4-space indent and every `-o` starts a new line.
 * No trailing newline.
 */
export function formatMasterEntry(e: MasterEntry, opts: { fold?: boolean } = {}): string {
  const LINE_LIMIT = 80;
  const INDENT = '    ';
  const goals = [0, 11, 17, 25, 33, 41, 49, 57];
  const argv = e.fields;
  let out = '';
  let len = 0;
  const add = (s: string): void => { out += s; len += s.length; };
  for (let f = 0; f < 8; f++) {
    if (len > 0) { do add(' '); while (len < goals[f]!); }
    add(argv[f]!);
  }
  let inOptions = true;
  for (let f = 8; f < argv.length; f++) {
    const arg = argv[f]!;
    let argLen = arg.length;
    let aval: string | undefined;
    let parens = false;
    if (inOptions) {
      if (arg[0] !== '-' || arg === '--') {
        inOptions = false;
      } else if (arg.length > 1 && OPTIONS_WITH_VALUE.includes(arg[1]!) && f + 1 < argv.length) {
        aval = argv[f + 1]!;
        len = LINE_LIMIT;                       // force a line break before an option with value
        argLen += aval.length + 3;
        parens = hasBlank(aval);
        if (parens) argLen += 2;
      }
    } else {
      parens = hasBlank(arg);                   // NB: not for the first non-option (Postfix quirk)
    }
    if (len > INDENT.length) {
      if (!opts.fold || len + 1 + argLen < LINE_LIMIT) add(' ');
      else { out += '\n' + INDENT; len = INDENT.length; }
    }
    const wrap = !inOptions && parens;
    add(wrap ? `{${arg}}` : arg);
    if (aval !== undefined) {
      add(' ');
      add(parens ? `{${aval}}` : aval);
      f += 1;
      len = LINE_LIMIT;                         // and after it
    }
  }
  return out;
}

/** Entries whose command Postern does not run (the master warns once about each). */
export function unsupportedServices(entries: readonly MasterEntry[]): MasterEntry[] {
  return entries.filter((e) => !POSTERN_SERVICES.has(path.posix.basename(e.command)));
}

/**
 * Where an inet service listens (master_ent.c + util/host_port.c): `port`, `host:port`,
 * `[host]:port`; host '' = all of inet_interfaces. Port names come from a built-in table and
 * /etc/services, never from DNS. Throws ConfigError for a non-inet entry or a bad name.
 */
export function inetEndpoint(e: MasterEntry): { host: string; port: number } {
  if (e.type !== 'inet') throw new ConfigError(e.file, e.line, `service "${e.service}" is not an inet service`);
  return parseInetName(e.service, e.file, e.line);
}

// ---------------------------------------------------------------------------------------------

interface Logical { text: string; line: number }

/** util/readlline.c: join continuation lines, drop comments and blank lines. */
function logicalLines(text: string, file: string): Logical[] {
  const out: Logical[] = [];
  let cur: Logical | undefined;
  let lineNo = 0;
  let pos = 0;
  while (pos <= text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const raw = text.slice(pos, end);
    lineNo++;
    pos = end + 1;
    if (raw.includes('\0')) throw new ConfigError(file, lineNo, 'line contains a NUL byte; master.cf must be a text file');
    const first = firstNonBlank(raw);
    if (first < 0 || raw[first] === '#') { if (end === text.length) break; else continue; }
    if (first > 0) {
      if (!cur) throw new ConfigError(file, lineNo, `logical line must not start with whitespace: "${clip(raw)}"`);
      cur.text += ' ' + raw;
    } else {
      cur = { text: raw, line: lineNo };
      out.push(cur);
    }
    if (cur.text.length > MAX_LOGICAL_LINE) {
      throw new ConfigError(file, cur.line, `logical line too long (more than ${MAX_LOGICAL_LINE} bytes)`);
    }
    if (end === text.length) break;
  }
  return out;
}

function firstNonBlank(s: string): number {
  for (let i = 0; i < s.length; i++) if (!BLANKS.includes(s[i]!)) return i;
  return -1;
}

function hasBlank(s: string): boolean {
  for (const c of s) if (BLANKS.includes(c)) return true;
  return false;
}

function clip(s: string): string {
  const t = s.trim();
  return t.length > 80 ? t.slice(0, 77) + '...' : t;
}

/** util/mystrtok.c mystrtokq(): split on blanks outside `{}` (nesting counted). */
function splitq(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && BLANKS.includes(s[i]!)) i++;
    if (i >= s.length) break;
    const start = i;
    let level = 0;
    for (; i < s.length; i++) {
      const c = s[i]!;
      if (c === '{') level++;
      else if (level > 0 && c === '}') level--;
      else if (level === 0 && BLANKS.includes(c)) break;
    }
    out.push(s.slice(start, i));
  }
  return out;
}

/** util/extpar.c with EXTPAR_FLAG_STRIP: `{ text }` → `text`. */
function extractBraces(arg: string, file: string, line: number): string {
  let level = 0;
  let close = -1;
  for (let i = 0; i < arg.length; i++) {
    if (arg[i] === '{') level++;
    else if (arg[i] === '}' && --level === 0) { close = i; break; }
  }
  if (close < 0) throw new ConfigError(file, line, `missing '}' in "${clip(arg)}"`);
  if (arg.slice(close + 1).trim() !== '') throw new ConfigError(file, line, `syntax error after '}' in "${clip(arg)}"`);
  return arg.slice(1, close).replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
}

/** util/split_nameval.c: `name = value` with optional blanks; returns [name, value]. */
function splitNameval(text: string, file: string, line: number): [string, string] {
  const m = /^[ \t\r\n]*([^ \t\r\n=]*)[ \t\r\n]*(=?)[ \t\r\n]*([^]*?)[ \t\r\n]*$/.exec(text)!;
  if (m[1] === '') throw new ConfigError(file, line, `missing attribute name: "-o ${clip(text)}"`);
  if (m[2] !== '=') throw new ConfigError(file, line, `missing '=' after attribute name: "-o ${clip(text)}"; write -o name=value`);
  return [m[1]!, m[3]!];
}

function parseEntry(text: string, file: string, line: number, opts: MasterCfOptions): MasterEntry {
  const argv = splitq(text);
  if (argv.length < 8) {
    throw new ConfigError(file, line, `bad field count (${argv.length} fields; an entry needs service type private unpriv chroot wakeup maxproc command)`);
  }
  const [service, type, priv, unpriv, chroot, wakeup, maxproc] = argv as [string, string, string, string, string, string, string];
  if (!TYPES.has(type)) throw new ConfigError(file, line, `bad transport type: ${type} (use inet, unix, unix-dgram, fifo or pass)`);
  const bool = (name: string, v: string, def: boolean): boolean => {
    if (v === '-') return def;
    if (v === 'y') return true;
    if (v === 'n') return false;
    throw new ConfigError(file, line, `field "${name}": bad value: "${v}" (use y, n or -)`);
  };
  const isPrivate = bool('private', priv, true);
  if (type === 'inet' && isPrivate) throw new ConfigError(file, line, 'inet service cannot be private');
  // postconf_master.c pcf_check_master_entry: wakeup is "-" or digits with an optional "?".
  const wm = /^(?:-|(\d+)(\?)?)$/.exec(wakeup);
  if (!wm) throw new ConfigError(file, line, `field "wakeup_time": bad value: "${wakeup}" (use -, seconds, or seconds followed by ?)`);
  if (maxproc !== '-' && !/^\d+$/.test(maxproc)) {
    throw new ConfigError(file, line, `field "max_proc": bad value: "${maxproc}" (use -, 0 for no limit, or a number)`);
  }
  if (service === '' || service.includes('/') || service.includes('\0')) {
    throw new ConfigError(file, line, `bad service name: "${clip(service)}" (it must not contain "/")`);
  }
  if (type === 'inet') parseInetName(service, file, line);

  // pcf_normalize_daemon_args: split options, extract {} groups.
  const fields = argv.slice(0, 8);
  const rest = argv.slice(8);
  const overrides: Record<string, string> = {};
  let i = 0;
  for (; i < rest.length; i++) {
    let arg = rest[i]!;
    if (arg[0] !== '-' || arg === '--') break;
    // "-vo" → "-v" "-o": an option expecting a value ends a cluster, as getopt(3) reads it
    // in the daemon; "-osmtpd_tls_wrappermode=yes" is -o with the value (the 'o' inside
    // "wrappermode" must not split it).
    const k = [...arg].findIndex((c, j) => j >= 1 && OPTIONS_WITH_VALUE.includes(c));
    if (k > 1) {
      fields.push(arg.slice(0, k));
      arg = '-' + arg.slice(k);
    }
    if (arg.length < 2 || !OPTIONS_WITH_VALUE.includes(arg[1]!)) { fields.push(arg); continue; }
    let value: string;
    if (arg.length > 2) { value = arg.slice(2); arg = arg.slice(0, 2); }
    else if (i + 1 < rest.length) value = rest[++i]!;
    else throw new ConfigError(file, line, `option "${arg}" requires a value: write ${arg} name=value`);
    if (value[0] === '{') {
      value = extractBraces(value, file, line);
      if (arg === '-o') value = splitNameval(value, file, line).join('=');
    }
    if (arg === '-o') {
      const [name, v] = splitNameval(value, file, line);
      overrides[name] = v;                     // later -o of the same name wins (mail_conf.c)
    }
    fields.push(arg, value);
  }
  for (; i < rest.length; i++) {
    const arg = rest[i]!;
    fields.push(arg[0] === '{' ? extractBraces(arg, file, line) : arg);
  }
  const e: MasterEntry = {
    service, type: type as MasterEntry['type'],
    private: isPrivate, unpriv: bool('unprivileged', unpriv, true), chroot: bool('chroot', chroot, false),
    wakeup: wm[1] !== undefined ? Number(wm[1]) : 0,
    wakeupIfUsed: wm[1] !== undefined && Number(wm[1]) > 0 && wm[2] === '?',
    maxproc: maxproc === '-' ? (opts.defaultProcessLimit ?? 100) : Number(maxproc),
    command: fields[7]!, args: fields.slice(8), overrides, file, line, fields,
  };
  if (path.posix.basename(e.command) === 'pipe') e.pipe = parsePipeAttrs(e, file, line);
  return e;
}

/** pipe/pipe.c parse_callback(): the attributes after the daemon options. */
function parsePipeAttrs(e: MasterEntry, file: string, line: number): NonNullable<MasterEntry['pipe']> {
  let i = 0;
  while (i < e.args.length && e.args[i]![0] === '-' && e.args[i] !== '--') {
    i += OPTIONS_WITH_VALUE.includes(e.args[i]![1] ?? '') ? 2 : 1;
  }
  if (e.args[i] === '--') i++;
  const attrs: Record<string, string> = {};
  let argv: string[] | undefined;
  for (; i < e.args.length; i++) {
    const a = e.args[i]!;
    if (a.startsWith('argv=')) { argv = [a.slice(5), ...e.args.slice(i + 1)]; break; }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (!PIPE_ATTRS.has(name)) {
      throw new ConfigError(file, line,
        `pipe: unknown attribute name: ${clip(a)} (expected flags= user= size= null_sender= eol= directory= chroot= argv=)`);
    }
    attrs[name] = a.slice(eq + 1);
  }
  const hint = ' (attributes written on the next line must be indented: a continuation line starts with white space)';
  if (attrs.user === undefined || attrs.user === '') throw new ConfigError(file, line, 'pipe: missing user= command-line attribute' + hint);
  if (!argv || argv[0] === '') throw new ConfigError(file, line, 'pipe: missing argv= command-line attribute' + hint);
  const [user, group] = attrs.user.split(':', 2) as [string, string | undefined];
  if (user === 'root' || user === '0') throw new ConfigError(file, line, 'pipe: user= command-line attribute specifies root privileges');
  const p: NonNullable<MasterEntry['pipe']> = { flags: attrs.flags ?? '', user, argv };
  if (group !== undefined && group !== '') p.group = group;
  if (attrs.size !== undefined) {
    if (!/^\d+$/.test(attrs.size)) throw new ConfigError(file, line, `pipe: bad size= value: ${clip(attrs.size)}`);
    p.size = Number(attrs.size);
  }
  if (attrs.null_sender !== undefined) p.nullSender = attrs.null_sender;
  if (attrs.eol !== undefined) p.eol = unescapeC(attrs.eol);
  if (attrs.directory !== undefined) p.directory = attrs.directory;
  return p;
}

/** util/unescape.c: \a \b \f \n \r \t \v \\ and \ooo octal. */
function unescapeC(s: string): string {
  const map: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
  return s.replace(/\\([0-7]{1,3}|.)/g, (_, c: string) => (/^[0-7]/.test(c) ? String.fromCharCode(parseInt(c, 8) & 0xff) : map[c] ?? c));
}

/** util/host_port.c host_port() as master_ent.c uses it, plus port-name resolution. */
function parseInetName(name: string, file: string, line: number): { host: string; port: number } {
  let host: string;
  let port: string;
  const fail = (why: string): never => { throw new ConfigError(file, line, `${why} in "${clip(name)}"`); };
  if (name.startsWith('[')) {
    const close = name.indexOf(']');
    if (close < 0) fail('missing "]"');
    host = name.slice(1, close);
    const after = name.slice(close + 1);
    if (!after.startsWith(':')) fail('garbage after "]"');
    port = after.slice(1);
  } else {
    const colon = name.lastIndexOf(':');
    if (colon < 0) { host = ''; port = name; } else { host = name.slice(0, colon); port = name.slice(colon + 1); }
    if (colon >= 0 && host === '') fail('missing host information');
  }
  if (port === '') fail('missing service information');
  if (host !== '' && !/^[A-Za-z0-9._:%-]+$/.test(host)) fail('valid hostname or network address required');
  let n: number | undefined;
  if (/^\d+$/.test(port)) {
    n = Number(port);
    if (n > 65535) fail('bad port number');
  } else {
    n = lookupService(port);
    if (n === undefined) throw new ConfigError(file, line, `unknown service: ${port}/tcp (not a port number, not in /etc/services)`);
  }
  return { host, port: n };
}

let servicesCache: Map<string, number> | undefined;

/** getservbyname(name, "tcp") without NSS: the built-in table, then /etc/services. */
function lookupService(name: string): number | undefined {
  if (Object.hasOwn(KNOWN_PORTS, name)) return KNOWN_PORTS[name];
  if (!servicesCache) {
    servicesCache = new Map();
    let text = '';
    try { text = readFileSync('/etc/services', 'latin1'); } catch { /* no /etc/services: built-ins only */ }
    for (const l of text.split('\n')) {
      const words = l.replace(/#.*/, '').trim().split(/\s+/);
      const m = /^(\d+)\/tcp$/.exec(words[1] ?? '');
      if (!m) continue;
      for (const w of [words[0]!, ...words.slice(2)]) if (!servicesCache.has(w)) servicesCache.set(w, Number(m[1]));
    }
  }
  return servicesCache.get(name);
}

/**
 * The service part of an entry's log lines when it sets `-o syslog_name` (Postfix logs
 * `<syslog_name>/<process name>`: `-o syslog_name=postfix/submission` on smtpd gives
 * postfix/submission/smtpd): `submission/smtpd`, or the command alone when the name has no `/`.
 * `syslogName` is the entry's expanded syslog_name. Undefined without an override.
 */
export function entryLogName(entry: MasterEntry, syslogName: string): string | undefined {
  if (entry.overrides['syslog_name'] === undefined) return undefined;
  const rest = syslogName.includes('/') ? syslogName.slice(syslogName.indexOf('/') + 1) : '';
  return rest ? `${rest}/${entry.command}` : entry.command;
}
