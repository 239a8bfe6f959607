/**
 * dict-unix - the `unix:` lookup-table type (Postfix util/dict_unix.c): `unix:passwd.byname`
 * and `unix:group.byname`, read from /etc/passwd and /etc/group (Postfix calls getpwnam(3) and
 * getgrnam(3); Postern reads the files, so NSS sources such as LDAP are not seen — documented in
 * docs/local.md). Postfix's default `local_recipient_maps = proxy:unix:passwd.byname $alias_maps`
 * relies on it.
 *
 * Results, as dict_unix.c formats them:
 *   passwd.byname: the passwd(5) line `name:passwd:uid:gid:gecos:dir:shell`
 *   group.byname:  `name:passwd:gid:member,member`
 * Keys are matched exactly after the caller's case folding (Postfix folds: unix: is a fixed
 * table). A key with `@` never matches (no UNIX account has one).
 *
 * Also exported for the delivery agents: getpwnam()/getgrnam() with the same file reads, so
 * local(8) and pipe(8) find a user's uid, gid, home and shell without a native binding.
 * The files are re-read when their mtime changes (a new account is seen without a restart).
 */
import { statSync, readFileSync } from 'node:fs';
import { DictError, type Dict } from './dict.ts';
import type { DictOpenFlags } from './dict-source.ts';

export interface PasswdEntry { name: string; passwd: string; uid: number; gid: number; gecos: string; dir: string; shell: string; line: string }
export interface GroupEntry { name: string; passwd: string; gid: number; members: string[]; line: string }

/** Where the account files live (tests point these at a temporary copy). */
export const UNIX_FILES = { passwd: '/etc/passwd', group: '/etc/group' };

interface Cached<T> { path: string; mtimeMs: number; size: number; byName: Map<string, T>; byId: Map<number, T> }
const cache = new Map<string, Cached<unknown>>();

function load<T extends { name: string }>(path: string, parse: (f: string[], line: string) => T | undefined, id: (t: T) => number): Cached<T> {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new DictError('retry', `${path}: ${(e as Error).message}`);
  }
  const hit = cache.get(path) as Cached<T> | undefined;
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DictError('retry', `${path}: ${(e as Error).message}`);
  }
  const byName = new Map<string, T>();
  const byId = new Map<number, T>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-') || line.includes('\0')) continue;
    const t = parse(line.split(':'), line);
    if (!t) continue;
    // getpwnam(3) returns the first match.
    if (!byName.has(t.name)) byName.set(t.name, t);
    if (!byId.has(id(t))) byId.set(id(t), t);
  }
  const c: Cached<T> = { path, mtimeMs: st.mtimeMs, size: st.size, byName, byId };
  cache.set(path, c as Cached<unknown>);
  return c;
}

function num(s: string | undefined): number | undefined {
  return s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined;
}

function parsePasswd(f: string[], line: string): PasswdEntry | undefined {
  if (f.length !== 7 || !f[0]) return undefined;
  const uid = num(f[2]);
  const gid = num(f[3]);
  if (uid === undefined || gid === undefined) return undefined;
  return { name: f[0], passwd: f[1]!, uid, gid, gecos: f[4]!, dir: f[5]!, shell: f[6]!, line };
}

function parseGroup(f: string[], line: string): GroupEntry | undefined {
  if (f.length !== 4 || !f[0]) return undefined;
  const gid = num(f[2]);
  if (gid === undefined) return undefined;
  return { name: f[0], passwd: f[1]!, gid, members: f[3] ? f[3].split(',') : [], line };
}

/** getpwnam(3) from /etc/passwd. Throws DictError('retry') when the file cannot be read. */
export function getpwnam(name: string): PasswdEntry | undefined {
  return load(UNIX_FILES.passwd, parsePasswd, (p) => p.uid).byName.get(name);
}
export function getpwuid(uid: number): PasswdEntry | undefined {
  return load(UNIX_FILES.passwd, parsePasswd, (p) => p.uid).byId.get(uid);
}
export function getgrnam(name: string): GroupEntry | undefined {
  return load(UNIX_FILES.group, parseGroup, (g) => g.gid).byName.get(name);
}

export async function openUnixDict(name: string, _flags: DictOpenFlags = {}): Promise<Dict> {
  let find: (key: string) => string | undefined;
  if (name === 'passwd.byname') find = (k) => getpwnam(k)?.line;
  else if (name === 'group.byname') find = (k) => getgrnam(k)?.line;
  else throw new DictError('config', `unknown table: unix:${name} (expected unix:passwd.byname or unix:group.byname)`);
  return {
    type: 'unix',
    name,
    async lookup(key: string) {
      if (key === '' || key.includes('@') || key.includes(':') || key.includes('\n')) return undefined;
      return find(key);
    },
    async *entries() {
      const c = name === 'passwd.byname' ? load(UNIX_FILES.passwd, parsePasswd, (p) => p.uid) : load(UNIX_FILES.group, parseGroup, (g) => g.gid);
      for (const [k, v] of c.byName) yield [k, (v as { line: string }).line] as [string, string];
    },
    close: async () => {},
  };
}
