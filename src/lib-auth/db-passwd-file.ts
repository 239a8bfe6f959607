/**
 * db-passwd-file - Dovecot's passwd-file passdb and userdb (auth/db-passwd-file.c):
 *
 *   user:password:uid:gid:(gecos):home:(shell):extra_fields
 *
 * extra_fields are space-separated `key=value`; in the passdb they are passdb fields, and those
 * named `userdb_X` are userdb field X (`userdb_mail=maildir:~/Mail`,
 * `userdb_quota_rule=*:storage=1G`). Everything after the 7th ':' is one extra-fields string, so
 * values may contain ':'. Empty fields are unset. `#` starts a comment line. A line with only a
 * user name is a user without password (the form `deny = yes` passdb files use).
 *
 * args: `[scheme=SCHEME] [username_format=FORMAT] PATH`. The path may use %u %n %d (one file per
 * domain: `/etc/dovecot/%d/passwd`) and, in a passdb, %s %r %l (one file per protocol:
 * `/etc/dovecot/proxy.%s`, read for imap, pop3, sieve logins); a per-user path that does not exist means "user unknown",
 * while a fixed path that does not exist is a temporary failure (as Dovecot logs open() errors).
 * Default scheme CRYPT, username_format %u.
 *
 * The file is re-read when its mtime, size or inode changes (checked on each lookup, as Dovecot
 * does with stat()). Broken lines are skipped with a warning `FILE, line N: ...` and every
 * other user keeps working.
 *
 * Reading is cheap whatever the file's size (Dovecot parses the whole file into a hash on
 * first use and again after each change; a LOGIN then waits for that). Here the file is kept
 * as read, and only the line of the user asked for is parsed: until the index is ready, by a
 * scan for `\nUSER:` in the lower-cased text (one memchr-like pass, no objects per line);
 * meanwhile the index (lower-cased user → offset of its line) is built off the login path,
 * starting a moment after the first lookup and then 2 ms of lines per turn of the event loop,
 * and serves every later lookup. A user's line is
 * parsed again on each lookup (microseconds; nothing per user is kept). A broken line is
 * warned about when its user is looked up (once per version of the file), a user listed twice
 * when the index is built; `parsePasswdFile` still parses a whole text (tests, tools).
 */
import { globSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { logger } from '../util/msg.ts';
import { parseKeyValues, type Passdb, type PassdbEntry, type Userdb } from './auth-db.ts';
import { expandVars, hasVars } from './auth-var-expand.ts';
import type { AuthRequestInfo } from './user-directory.ts';

const log = logger('auth');

/** Lines longer than this are refused (a passwd-file line is a few hundred bytes). */
export const MAX_PASSWD_LINE = 65536;

export interface PasswdFileUser {
  user: string;
  password?: string;
  uid?: string;
  gid?: string;
  gecos?: string;
  home?: string;
  shell?: string;
  extra: Record<string, string>;
  /** Its line in the file (set by parsePasswdFile; lookups do not count lines). */
  line?: number;
}

export interface ParsedPasswdFile {
  users: Map<string, PasswdFileUser>;
  warnings: string[];
}

/** A line parsed: the user, a warning (without the "FILE, line N: " head), or undefined for a comment or blank line. */
export function parsePasswdLine(raw: string): PasswdFileUser | string | undefined {
  let line = raw;
  if (line.endsWith('\r')) line = line.slice(0, -1);
  if (line === '' || line.startsWith('#') || /^\s+$/.test(line)) return undefined;
  if (line.length > MAX_PASSWD_LINE) return `line is too long (${line.length} characters; limit ${MAX_PASSWD_LINE}): ignored`;
  if (line.includes('\0')) return 'line contains a NUL byte: ignored';
  const f = line.split(':');
  const user = f[0]!;
  if (user === '') return 'empty user name: ignored';
  if (/\s/.test(user)) return `user name "${user}" contains white space: ignored`;
  const uid = f[2] || undefined, gid = f[3] || undefined;
  if (uid !== undefined && !/^[A-Za-z0-9_.-]+$/.test(uid)) return `user ${user}: invalid uid "${uid}": ignored`;
  if (gid !== undefined && !/^[A-Za-z0-9_.-]+$/.test(gid)) return `user ${user}: invalid gid "${gid}": ignored`;
  const home = f[5] || undefined;
  if (home !== undefined && !home.startsWith('/')) return `user ${user}: home "${home}" is not an absolute path: ignored`;
  return {
    user, password: f[1] || undefined, uid, gid, gecos: f[4] || undefined, home, shell: f[6] || undefined,
    extra: f.length > 7 ? parseKeyValues(f.slice(7).join(':')) : {},
  };
}

/** Parse passwd-file text. Never throws: bad lines become warnings naming file and line. */
export function parsePasswdFile(text: string, file: string): ParsedPasswdFile {
  const users = new Map<string, PasswdFileUser>();
  const warnings: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const u = parsePasswdLine(lines[i]!);
    if (u === undefined) continue;
    if (typeof u === 'string') { warnings.push(`${file}, line ${n}: ${u}`); continue; }
    const key = u.user.toLowerCase();
    const first = users.get(key);
    if (first) { warnings.push(`${file}, line ${n}: user ${u.user} exists more than once (first entry on line ${first.line} is used)`); continue; }
    u.line = n;
    users.set(key, u);
  }
  return { users, warnings };
}

/** Lines the index takes per turn of the event loop (a few milliseconds). */
const INDEX_SLICE = 512;
/** Time the index takes per turn of the event loop at most (then it yields to sessions). */
const INDEX_SLICE_MS = 2;
/**
 * The index is started this long after the first lookup of a version of the file: the logins
 * of that moment are answered by scans (about 1 ms for 100,000 users) instead of waiting
 * behind index slices between their own I/O steps.
 */
export const PASSWD_INDEX_DELAY_MS = 250;

/**
 * One version of a passwd-file as read: lookups by user without parsing the other lines (see
 * the header). `lower` is the text lower-cased when that keeps every offset (ASCII, nearly
 * always); otherwise the index is built at once and the scan is never used.
 */
export class PasswdFileText {
  readonly text: string;
  readonly file: string;
  private readonly lower: string | undefined;
  /** Lower-cased user → offset of its line (several when listed more than once, in file order). */
  private index: Map<string, number | number[]> | undefined;
  private building = false;
  private stopped = false;
  private readonly warned = new Set<number>();

  constructor(text: string, file: string) {
    this.text = text;
    this.file = file;
    const lower = text.toLowerCase();
    this.lower = lower.length === text.length ? lower : undefined;
    if (this.lower === undefined) this.buildAll();
  }

  /** The user's entry: the first valid line whose user is `key` (compared lower-cased). */
  find(key: string): PasswdFileUser | undefined {
    const k = key.toLowerCase();
    if (k === '' || k.startsWith('#') || /[:\n\r\0]/.test(k)) return undefined;
    if (this.index) {
      const at = this.index.get(k);
      if (at === undefined) return undefined;
      for (const off of typeof at === 'number' ? [at] : at) { const u = this.userAt(off); if (u) return u; }
      return undefined;
    }
    this.startIndex();
    // until the index is ready: a scan for the line that starts with `k:` (or is just `k`)
    const lower = this.lower!;
    const needle = '\n' + k;
    let off = lower.startsWith(k) ? 0 : lower.indexOf(needle);
    if (off > 0) off++;
    while (off >= 0) {
      const end = off + k.length;
      const c = lower.charCodeAt(end);
      // the user field ends there: ':', the end of the line (LF or CRLF) or of the file
      const whole = end >= lower.length || c === 58 || c === 10 || (c === 13 && (end + 1 >= lower.length || lower.charCodeAt(end + 1) === 10));
      if (whole) { const u = this.userAt(off); if (u) return u; }
      const next = lower.indexOf(needle, off);   // the '\n' before `off` is behind us
      off = next < 0 ? -1 : next + 1;
    }
    return undefined;
  }

  /** Every valid user, in file order (the first of a user listed twice). */
  *users(): Iterable<PasswdFileUser> {
    const seen = new Set<string>();
    const t = this.text;
    for (let pos = 0; pos < t.length;) {
      let eol = t.indexOf('\n', pos);
      if (eol < 0) eol = t.length;
      const u = this.parseAt(pos, eol);
      if (u && !seen.has(u.user.toLowerCase())) { seen.add(u.user.toLowerCase()); yield u; }
      pos = eol + 1;
    }
  }

  /** Every warning of the whole file (a full parse: for tools and tests, not the login path). */
  warnings(): string[] {
    return parsePasswdFile(this.text, this.file).warnings;
  }

  /** The index is built (lookups no longer scan). */
  get indexed(): boolean { return this.index !== undefined; }

  /** This version was replaced: an index still being built stops. */
  retire(): void { this.stopped = true; }

  private userAt(off: number): PasswdFileUser | undefined {
    let eol = this.text.indexOf('\n', off);
    if (eol < 0) eol = this.text.length;
    return this.parseAt(off, eol);
  }

  private parseAt(off: number, eol: number): PasswdFileUser | undefined {
    const u = parsePasswdLine(this.text.slice(off, eol));
    if (typeof u !== 'string') return u;
    if (!this.warned.has(off)) { this.warned.add(off); log.warn(`${this.file}, line ${lineOf(this.text, off)}: ${u}`); }
    return undefined;
  }

  private startIndex(): void {
    if (this.building || this.index) return;
    this.building = true;
    const index = new Map<string, number | number[]>();
    let pos = 0;
    const step = (): void => {
      if (this.stopped) return;
      const until = performance.now() + INDEX_SLICE_MS;
      do pos = this.indexLines(index, pos, INDEX_SLICE); while (pos < this.text.length && performance.now() < until);
      if (pos < this.text.length) { setImmediate(step); return; }
      this.index = index;
      this.building = false;
    };
    setTimeout(step, PASSWD_INDEX_DELAY_MS).unref();
  }

  private buildAll(): void {
    const index = new Map<string, number | number[]>();
    this.indexLines(index, 0, Infinity);
    this.index = index;
  }

  /** Index up to `max` lines from `pos`; returns where it stopped. */
  private indexLines(index: Map<string, number | number[]>, pos: number, max: number): number {
    const t = this.text;
    const src = this.lower ?? t;
    const len = t.length;
    for (let n = 0; n < max && pos < len; n++) {
      let eol = t.indexOf('\n', pos);
      if (eol < 0) eol = len;
      let end = t.indexOf(':', pos);
      if (end < 0 || end > eol) end = eol > pos && t.charCodeAt(eol - 1) === 13 ? eol - 1 : eol;
      if (end > pos && t.charCodeAt(pos) !== 35) {
        const key = this.lower ? src.slice(pos, end) : t.slice(pos, end).toLowerCase();
        const had = index.get(key);
        if (had === undefined) index.set(key, pos);
        else {
          if (typeof had === 'number') index.set(key, [had, pos]); else had.push(pos);
          log.warn(`${this.file}, line ${lineOf(t, pos)}: user ${t.slice(pos, end)} exists more than once (first entry on line ${lineOf(t, typeof had === 'number' ? had : had[0]!)} is used)`);
        }
      }
      pos = eol + 1;
    }
    return pos;
  }
}

/** 1-based line number of the line starting at `off` (for warnings only: a pass over the text before it). */
function lineOf(text: string, off: number): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < off; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

interface LoadedFile { key: string; file: PasswdFileText }

/** One passwd-file source shared by a passdb and a userdb with the same args. */
export class PasswdFileSource {
  readonly pathTemplate: string;
  readonly scheme: string;
  readonly usernameFormat: string;
  private files = new Map<string, LoadedFile>();
  private reading = new Map<string, { key: string; done: Promise<PasswdFileText> }>();

  constructor(args: string, baseDir = '/') {
    const words = args.trim().split(/\s+/).filter(Boolean);
    let scheme = 'CRYPT', usernameFormat = '%u', path: string | undefined;
    for (const w of words) {
      if (w.startsWith('scheme=')) scheme = w.slice(7);
      else if (w.startsWith('username_format=')) usernameFormat = w.slice(16);
      else if (path === undefined) path = w;
      else throw new Error(`passwd-file: unexpected argument "${w}" (expected [scheme=X] [username_format=F] PATH)`);
    }
    if (!path) throw new Error('passwd-file: args must name the file (args = scheme=SHA512-CRYPT /etc/dovecot/users)');
    this.pathTemplate = resolve(baseDir, path);
    this.scheme = scheme;
    this.usernameFormat = usernameFormat;
  }

  /** The fixed path, when the file does not depend on the user (writes and iteration need it). */
  get fixedPath(): string | undefined {
    return hasVars(this.pathTemplate) ? undefined : this.pathTemplate;
  }

  /** Load (or reuse) the file at `path`; undefined when a per-user file does not exist. */
  async load(path: string): Promise<PasswdFileText | undefined> {
    let st;
    try {
      st = await stat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !this.fixedPath) return undefined;
      throw new Error(`passwd-file ${path}: ${(err as Error).message}`);
    }
    const key = `${st.ino}:${st.size}:${st.mtimeMs}`;
    const cached = this.files.get(path);
    if (cached && cached.key === key) return cached.file;
    // lookups arriving while the file is read share the one read
    const pending = this.reading.get(path);
    if (pending && pending.key === key) return pending.done;
    const done = readFile(path, 'utf8').then((text) => {
      const file = new PasswdFileText(text, path);
      const old = this.files.get(path);
      if (old && old.key !== key) old.file.retire();
      this.files.set(path, { key, file });
      return file;
    }, (err: Error) => { throw new Error(`passwd-file ${path}: ${err.message}`); })
      .finally(() => { if (this.reading.get(path)?.done === done) this.reading.delete(path); });
    this.reading.set(path, { key, done });
    return done;
  }

  async find(user: string, req?: AuthRequestInfo): Promise<PasswdFileUser | undefined> {
    const path = expandVars(this.pathTemplate, { user, ...req });
    const key = expandVars(this.usernameFormat, { user, ...req });
    return (await this.load(path))?.find(key);
  }

  async stamp(): Promise<string> {
    const p = this.fixedPath;
    if (!p) return '';
    try { const st = await stat(p); return `${st.ino}:${st.size}:${st.mtimeMs}`; } catch { return 'missing'; }
  }

  /**
   * Every user. A per-domain path (only %d / %Ld / %{domain} in it, e.g. /etc/dovecot/%d/passwd)
   * is listed by globbing the domain part; any other per-user path cannot be listed.
   */
  async *iterate(): AsyncIterable<string> {
    const p = this.fixedPath;
    if (p) {
      const f = await this.load(p);
      for (const u of f?.users() ?? []) yield u.user;
      return;
    }
    const DOMAIN_VAR = /%L?d|%\{domain\}/g;
    const rest = this.pathTemplate.replace(/%%/g, '').replace(DOMAIN_VAR, '');
    if (rest.includes('%')) throw new Error(`passwd-file ${this.pathTemplate}: cannot list users of a per-user path`);
    const parts = this.pathTemplate.split(DOMAIN_VAR);
    const re = new RegExp('^' + parts.map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('([^/]+)') + '$');
    for (const file of globSync(this.pathTemplate.replace(DOMAIN_VAR, '*')).sort()) {
      const m = re.exec(file);
      const domain = m?.[1];
      if (!domain || m.slice(1).some((d) => d !== domain)) continue;
      const f = await this.load(file);
      for (const u of f?.users() ?? []) yield u.user.includes('@') ? u.user : `${u.user}@${domain}`;
    }
  }

  /** Warnings from the last load of the fixed file (for tests and `postern check`). */
  warnings(): string[] {
    const p = this.fixedPath;
    return (p && this.files.get(p)?.file.warnings()) || [];
  }
}

export function passwdFilePassdb(src: PasswdFileSource): Passdb {
  return {
    driver: 'passwd-file',
    defaultScheme: src.scheme,
    async lookup(user, req): Promise<PassdbEntry | undefined> {
      const u = await src.find(user, req);
      if (!u) return undefined;
      return { user: u.user, password: u.password, fields: { ...u.extra } };
    },
    iterate: () => src.iterate(),
    stamp: () => src.stamp(),
    async close() {},
  };
}

export function passwdFileUserdb(src: PasswdFileSource): Userdb {
  return {
    driver: 'passwd-file',
    async lookup(user) {
      const u = await src.find(user);
      if (!u) return undefined;
      const out: Record<string, string> = { user: u.user };
      if (u.uid) out.uid = u.uid;
      if (u.gid) out.gid = u.gid;
      if (u.home) out.home = u.home;
      // userdb-passwd-file.c: only userdb_-prefixed extra fields are userdb fields.
      for (const [k, v] of Object.entries(u.extra)) if (k.startsWith('userdb_')) out[k.slice(7)] = v;
      return out;
    },
    iterate: () => src.iterate(),
    stamp: () => src.stamp(),
    async close() {},
  };
}
