/**
 * user-directory-write - changes to the user list for `postern user add|passwd|del` and the web
 * console (add, password, delete, the postern_admin flag, the listing). Dovecot has
 * no such command (administrators edit the passwd-file or the SQL table); we write to the first
 * passdb of dovecot.conf when it is one of:
 *
 *  - passwd-file with a fixed path: the file is rewritten atomically (temp file in the same
 *    directory, fsync, rename), keeping every other line, comment and broken line as it was,
 *    and the file's mode (0600 for a new file);
 *  - sql on SQLite with the embedded schema (user-directory-embedded.ts).
 *
 * Anything else (a per-domain passwd-file path, a custom SQL schema, static) is read-only here
 * and the error says where the users live.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import { parseQuotaRule } from './auth-quota-rule.ts';
import { splitUser } from './auth-var-expand.ts';
import { PasswdFileSource } from './db-passwd-file.ts';
import { loadSqlConf } from './db-sql-conf.ts';
import { EMBEDDED_COLUMNS } from './user-directory-embedded.ts';

export class UserWriteError extends Error {
  override name = 'UserWriteError';
}

export interface NewUser {
  user: string;
  /** `{SCHEME}hash` */
  password: string;
  home?: string;
  /** Dovecot quota_rule value, e.g. `*:storage=1G`. */
  quotaRule?: string;
  uid?: string;
  gid?: string;
  /** Web console administrator: passwd-file extra field postern_admin=yes, SQLite column postern_admin = 1. */
  admin?: boolean;
}

/** One user as the store holds it (for listings). */
export interface StoredUser { user: string; admin: boolean; active: boolean }

export interface UserWriter {
  /** e.g. "passwd-file /etc/postern/users" */
  readonly where: string;
  add(u: NewUser): void;
  setPassword(user: string, password: string): void;
  remove(user: string): void;
  /** Grant or withdraw the web console's administrator flag. */
  setAdmin(user: string, admin: boolean): void;
  /** Every user of the store, in file / name order. */
  list(): StoredUser[];
  close(): void;
}

/** A name `postern user add` accepts: what Dovecot's default auth_username_chars allow, lower case, safe as a path. */
export function checkNewUserName(user: string): string {
  const u = user.toLowerCase();
  if (u.length === 0 || u.length > 255) throw new UserWriteError(`user name must be 1 to 255 characters`);
  if (!/^[a-z0-9._-]+(@[a-z0-9._-]+)?$/.test(u)) {
    throw new UserWriteError(`invalid user name ${JSON.stringify(user)}: use letters, digits, ".", "-", "_" and one "@" (no ":", "/", spaces or control characters)`);
  }
  const { local, domain } = splitUser(u);
  for (const part of [local, domain]) {
    if (part.startsWith('.') || part.endsWith('.') || part.includes('..')) throw new UserWriteError(`invalid user name ${JSON.stringify(user)}: "." may not start or end a part or be doubled`);
  }
  return u;
}

function checkField(what: string, v: string | undefined, colonOk = true): void {
  if (v === undefined) return;
  if (/[\0\r\n]/.test(v) || (!colonOk && v.includes(':')) || /\s/.test(v)) throw new UserWriteError(`${what} ${JSON.stringify(v)} contains white space, ':' or control characters`);
}

function validate(u: NewUser): void {
  if (u.home !== undefined && (!u.home.startsWith('/') || u.home.split('/').includes('..'))) throw new UserWriteError(`home ${JSON.stringify(u.home)} must be an absolute path without ".."`);
  checkField('home', u.home, false);
  checkField('password', u.password, false);
  checkField('quota rule', u.quotaRule);
  if (u.quotaRule) {
    try { parseQuotaRule(u.quotaRule); } catch (err) { throw new UserWriteError((err as Error).message); }
  }
  for (const [k, v] of [['uid', u.uid], ['gid', u.gid]] as const) if (v !== undefined && !/^[A-Za-z0-9_.-]+$/.test(v)) throw new UserWriteError(`${k} ${JSON.stringify(v)} is not a number or a name`);
}

/** Open the writable store behind the first passdb of `conf`. */
export function openUserWriter(conf: DovecotConfig): UserWriter {
  const spec = conf.passdbs[0];
  if (!spec) throw new UserWriteError(`${conf.file}: no passdb is configured, so there is no user list to change`);
  const base = dirname(resolve(conf.file));
  const at = `${spec.file}, line ${spec.line}`;
  if (spec.driver === 'passwd-file') {
    const src = new PasswdFileSource(spec.args, base);
    const path = src.fixedPath;
    if (!path) throw new UserWriteError(`${at}: passwd-file ${src.pathTemplate} depends on the user name; edit the per-domain files directly`);
    return new PasswdFileWriter(path);
  }
  if (spec.driver === 'sql') {
    const sql = loadSqlConf(resolve(base, spec.args.trim()));
    return new SqliteWriter(sql.connect, at);
  }
  throw new UserWriteError(`${at}: passdb driver "${spec.driver}" is read-only for postern user (it can change passwd-file and the embedded SQLite table)`);
}

class PasswdFileWriter implements UserWriter {
  readonly where: string;
  private readonly path: string;
  constructor(path: string) { this.path = path; this.where = `passwd-file ${path}`; }

  private read(): { lines: string[]; mode: number } {
    try {
      const st = statSync(this.path);
      const text = readFileSync(this.path, 'utf8');
      const lines = text.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      return { lines, mode: st.mode & 0o7777 };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], mode: 0o600 };
      throw new UserWriteError(`${this.path}: ${(err as Error).message}`);
    }
  }

  private index(lines: string[], user: string): number {
    return lines.findIndex((l) => !l.startsWith('#') && l.split(':')[0]!.toLowerCase() === user);
  }

  /** Write all lines to a temp file beside the target, fsync, rename over it. */
  private write(lines: string[], mode: number): void {
    const tmp = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.tmp`);
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, lines.length ? lines.join('\n') + '\n' : '');
      fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      unlinkSync(tmp);
      throw err;
    }
    closeSync(fd);
    renameSync(tmp, this.path);
  }

  add(u: NewUser): void {
    const user = checkNewUserName(u.user);
    validate(u);
    const { lines, mode } = this.read();
    if (this.index(lines, user) >= 0) throw new UserWriteError(`user ${user} already exists in ${this.path}`);
    const extra = [u.quotaRule ? `userdb_quota_rule=${u.quotaRule}` : '', u.admin ? 'postern_admin=yes' : ''].filter(Boolean).join(' ');
    const f = [user, u.password, u.uid ?? '', u.gid ?? '', '', u.home ?? '', '', extra];
    while (f.length > 2 && f[f.length - 1] === '') f.pop();
    lines.push(f.join(':'));
    this.write(lines, mode);
  }

  setPassword(user: string, password: string): void {
    user = checkNewUserName(user);
    checkField('password', password, false);
    const { lines, mode } = this.read();
    const i = this.index(lines, user);
    if (i < 0) throw new UserWriteError(`user ${user} does not exist in ${this.path}`);
    const f = lines[i]!.split(':');
    f[1] = password;
    lines[i] = f.join(':');
    this.write(lines, mode);
  }

  remove(user: string): void {
    user = checkNewUserName(user);
    const { lines, mode } = this.read();
    const i = this.index(lines, user);
    if (i < 0) throw new UserWriteError(`user ${user} does not exist in ${this.path}`);
    lines.splice(i, 1);
    this.write(lines, mode);
  }

  setAdmin(user: string, admin: boolean): void {
    user = checkNewUserName(user);
    const { lines, mode } = this.read();
    const i = this.index(lines, user);
    if (i < 0) throw new UserWriteError(`user ${user} does not exist in ${this.path}`);
    const f = lines[i]!.split(':');
    while (f.length < 8) f.push('');
    // Field 8 onwards: space-separated extra fields (a ':' inside one is kept).
    const extra = f.slice(7).join(':').split(' ').filter((x) => x !== '' && !/^postern_admin=/.test(x));
    if (admin) extra.push('postern_admin=yes');
    const out = [...f.slice(0, 7), extra.join(' ')];
    while (out.length > 2 && out[out.length - 1] === '') out.pop();
    lines[i] = out.join(':');
    this.write(lines, mode);
  }

  list(): StoredUser[] {
    return this.read().lines.filter((l) => l !== '' && !l.startsWith('#') && l.includes(':')).map((l) => {
      const f = l.split(':');
      const extra = f.slice(7).join(':').split(' ');
      return { user: f[0]!.toLowerCase(), admin: extra.includes('postern_admin=yes'), active: !extra.includes('nologin') };
    });
  }

  close(): void {}
}

class SqliteWriter implements UserWriter {
  readonly where: string;
  private readonly db: DatabaseSync;
  constructor(path: string, at: string) {
    this.where = `sqlite ${path}`;
    try {
      statSync(path);
      this.db = new DatabaseSync(path, { timeout: 5000 });
    } catch (err) {
      throw new UserWriteError(`${at}: cannot open SQLite database ${path}: ${(err as Error).message}`);
    }
    const cols = new Set((this.db.prepare('PRAGMA table_info(users)').all() as { name: string }[]).map((r) => r.name));
    const missing = EMBEDDED_COLUMNS.filter((c) => !cols.has(c));
    if (missing.length) {
      this.db.close();
      throw new UserWriteError(`${at}: ${path} does not have Postern's users table (missing ${missing.join(', ')}); change users with your own SQL`);
    }
  }

  add(u: NewUser): void {
    const user = checkNewUserName(u.user);
    validate(u);
    const num = (v?: string) => (v === undefined ? null : /^\d+$/.test(v) ? Number(v) : v);
    try {
      this.db.prepare('INSERT INTO users (username, domain, password, uid, gid, home, quota_rule, active) VALUES (?, ?, ?, ?, ?, ?, ?, 1)')
        .run(user, splitUser(user).domain, u.password, num(u.uid), num(u.gid), u.home ?? null, u.quotaRule ?? null);
      if (u.admin) this.setAdmin(user, true);
    } catch (err) {
      if (/UNIQUE/i.test((err as Error).message)) throw new UserWriteError(`user ${user} already exists in ${this.where}`);
      throw new UserWriteError(`${this.where}: ${(err as Error).message}`);
    }
  }

  setPassword(user: string, password: string): void {
    user = checkNewUserName(user);
    const r = this.db.prepare('UPDATE users SET password = ? WHERE username = ?').run(password, user);
    if (Number(r.changes) === 0) throw new UserWriteError(`user ${user} does not exist in ${this.where}`);
  }

  remove(user: string): void {
    user = checkNewUserName(user);
    const r = this.db.prepare('DELETE FROM users WHERE username = ?').run(user);
    if (Number(r.changes) === 0) throw new UserWriteError(`user ${user} does not exist in ${this.where}`);
  }

  private hasAdminColumn(): boolean {
    return (this.db.prepare('PRAGMA table_info(users)').all() as { name: string }[]).some((r) => r.name === 'postern_admin');
  }

  setAdmin(user: string, admin: boolean): void {
    user = checkNewUserName(user);
    if (!this.hasAdminColumn()) throw new UserWriteError(`${this.where} has no postern_admin column: run postern start once (it adds it), or list the administrators in postern_console_admins`);
    const r = this.db.prepare('UPDATE users SET postern_admin = ? WHERE username = ?').run(admin ? 1 : 0, user);
    if (Number(r.changes) === 0) throw new UserWriteError(`user ${user} does not exist in ${this.where}`);
  }

  list(): StoredUser[] {
    const admin = this.hasAdminColumn() ? 'postern_admin' : '0';
    return (this.db.prepare(`SELECT username, ${admin} AS admin, active FROM users ORDER BY domain, username`).all() as { username: string; admin: number; active: number }[])
      .map((r) => ({ user: r.username, admin: Number(r.admin) === 1, active: Number(r.active) === 1 }));
  }

  close(): void { this.db.close(); }
}
