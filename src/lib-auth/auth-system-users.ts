/**
 * auth-system-users - user and group names to numeric ids through /etc/passwd and /etc/group,
 * as Dovecot resolves `uid=vmail gid=vmail` in userdb fields and mail_uid/mail_gid
 * (getpwnam/getgrnam). Files are re-read when their mtime changes. Numeric ids pass through.
 * Also the system-user lookups of Dovecot's `passwd` userdb and `shadow` passdb.
 */
import { readFileSync, statSync } from 'node:fs';

interface Cached { mtimeMs: number; map: Map<string, { id: number; home?: string }> }
const cache = new Map<string, Cached>();

/** The files to read; tests may point these elsewhere. */
export const SYSTEM_FILES = { passwd: '/etc/passwd', group: '/etc/group', shadow: '/etc/shadow' };

function load(file: string, withHome: boolean): Map<string, { id: number; home?: string }> {
  let st;
  try { st = statSync(file); } catch { return new Map(); }
  const c = cache.get(file);
  if (c && c.mtimeMs === st.mtimeMs) return c.map;
  const map = new Map<string, { id: number; home?: string }>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    const id = Number(f[2]);
    if (f[0] && Number.isInteger(id) && !map.has(f[0])) map.set(f[0], withHome ? { id, home: f[5] } : { id });
  }
  cache.set(file, { mtimeMs: st.mtimeMs, map });
  return map;
}

/** "vmail" or "5000" → 5000; undefined when the name is unknown or the value malformed. */
export function resolveUid(v: string): number | undefined {
  if (/^\d{1,10}$/.test(v)) return Number(v);
  return load(SYSTEM_FILES.passwd, true).get(v)?.id;
}

export function resolveGid(v: string): number | undefined {
  if (/^\d{1,10}$/.test(v)) return Number(v);
  return load(SYSTEM_FILES.group, false).get(v)?.id;
}

/** A system user's passwd entry (for the `passwd` userdb). */
export function systemUser(name: string): { uid: number; home: string; gid: number } | undefined {
  let text: string;
  try { text = readFileSync(SYSTEM_FILES.passwd, 'utf8'); } catch { return undefined; }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 7) return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '' };
  }
  return undefined;
}

/**
 * A system user's crypt(3) hash from /etc/shadow (Dovecot's shadow passdb). undefined when the
 * user is absent; '' for a locked or password-less account. Throws when the file is unreadable
 * (not root): the passdb then reports a temporary failure that names the file.
 */
export function shadowHash(name: string): string | undefined {
  const text = readFileSync(SYSTEM_FILES.shadow, 'utf8');
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 2) return /^[!*]/.test(f[1]!) ? '' : f[1]!;
  }
  return undefined;
}
