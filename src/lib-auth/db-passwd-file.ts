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
  line: number;
}

export interface ParsedPasswdFile {
  users: Map<string, PasswdFileUser>;
  warnings: string[];
}

/** Parse passwd-file text. Never throws: bad lines become warnings naming file and line. */
export function parsePasswdFile(text: string, file: string): ParsedPasswdFile {
  const users = new Map<string, PasswdFileUser>();
  const warnings: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    const n = i + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '' || line.startsWith('#') || /^\s+$/.test(line)) continue;
    const warn = (msg: string) => warnings.push(`${file}, line ${n}: ${msg}`);
    if (line.length > MAX_PASSWD_LINE) { warn(`line is too long (${line.length} characters; limit ${MAX_PASSWD_LINE}): ignored`); continue; }
    if (line.includes('\0')) { warn('line contains a NUL byte: ignored'); continue; }
    const f = line.split(':');
    const user = f[0]!;
    if (user === '') { warn('empty user name: ignored'); continue; }
    if (/\s/.test(user)) { warn(`user name "${user}" contains white space: ignored`); continue; }
    const uid = f[2] || undefined, gid = f[3] || undefined;
    if (uid !== undefined && !/^[A-Za-z0-9_.-]+$/.test(uid)) { warn(`user ${user}: invalid uid "${uid}": ignored`); continue; }
    if (gid !== undefined && !/^[A-Za-z0-9_.-]+$/.test(gid)) { warn(`user ${user}: invalid gid "${gid}": ignored`); continue; }
    const home = f[5] || undefined;
    if (home !== undefined && !home.startsWith('/')) { warn(`user ${user}: home "${home}" is not an absolute path: ignored`); continue; }
    const key = user.toLowerCase();
    if (users.has(key)) { warn(`user ${user} exists more than once (first entry on line ${users.get(key)!.line} is used)`); continue; }
    users.set(key, {
      user, password: f[1] || undefined, uid, gid, gecos: f[4] || undefined, home, shell: f[6] || undefined,
      extra: f.length > 7 ? parseKeyValues(f.slice(7).join(':')) : {}, line: n,
    });
  }
  return { users, warnings };
}

interface LoadedFile { key: string; parsed: ParsedPasswdFile }

/** One passwd-file source shared by a passdb and a userdb with the same args. */
export class PasswdFileSource {
  readonly pathTemplate: string;
  readonly scheme: string;
  readonly usernameFormat: string;
  private files = new Map<string, LoadedFile>();

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
  async load(path: string): Promise<ParsedPasswdFile | undefined> {
    let st;
    try {
      st = await stat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !this.fixedPath) return undefined;
      throw new Error(`passwd-file ${path}: ${(err as Error).message}`);
    }
    const key = `${st.ino}:${st.size}:${st.mtimeMs}`;
    const cached = this.files.get(path);
    if (cached && cached.key === key) return cached.parsed;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new Error(`passwd-file ${path}: ${(err as Error).message}`);
    }
    const parsed = parsePasswdFile(text, path);
    for (const w of parsed.warnings) log.warn(w);
    this.files.set(path, { key, parsed });
    return parsed;
  }

  async find(user: string, req?: AuthRequestInfo): Promise<PasswdFileUser | undefined> {
    const path = expandVars(this.pathTemplate, { user, ...req });
    const key = expandVars(this.usernameFormat, { user, ...req });
    const parsed = await this.load(path);
    return parsed?.users.get(key.toLowerCase());
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
      const parsed = await this.load(p);
      for (const u of parsed?.users.values() ?? []) yield u.user;
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
      const parsed = await this.load(file);
      for (const u of parsed?.users.values() ?? []) yield u.user.includes('@') ? u.user : `${u.user}@${domain}`;
    }
  }

  /** Warnings from the last load of the fixed file (for tests and `postern check`). */
  warnings(): string[] {
    const p = this.fixedPath;
    return (p && this.files.get(p)?.parsed.warnings) || [];
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
