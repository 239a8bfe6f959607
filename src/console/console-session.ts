/**
 * console-session - the web console's logins: sessions kept in memory (a restart logs everyone
 * out), a random 256-bit session id in a cookie that scripts cannot read and other sites never
 * send (`HttpOnly; Secure; SameSite=Strict; Path=/console/`), and a per-session CSRF token that
 * every POST form carries (compared in constant time). A session ends after
 * postern_console_session_timeout idle, after 12 hours in any case, at logout, and when its
 * password changes. At most 1000 sessions: beyond that the oldest goes.
 *
 * The password check goes through the master's shared auth penalty (anvil/auth-penalty.ts,
 * Dovecot's auth_penalty), the same table SMTP AUTH, IMAP and POP3 logins use: a guesser at the
 * console is slowed down, and also slowed down at IMAP, and the other way round.
 */
import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';

export interface Session {
  id: string;
  user: string;
  admin: boolean;
  csrf: string;
  created: number;
  seen: number;
}

const MAX_SESSIONS = 1000;
const MAX_AGE_MS = 12 * 3600_000;
export const COOKIE = 'postern_console';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b)) && a.length === b.length;
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly idleMs: number;
  constructor(idleMs: number) { this.idleMs = idleMs; }

  create(user: string, admin: boolean, now = Date.now()): Session {
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const s: Session = { id: randomBytes(32).toString('base64url'), user, admin, csrf: randomBytes(32).toString('base64url'), created: now, seen: now };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The session named by the request's cookie, if it is still valid. */
  get(cookieHeader: string | string[] | undefined, now = Date.now()): Session | undefined {
    const id = cookieValue(cookieHeader, COOKIE);
    if (!id || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (now - s.seen > this.idleMs || now - s.created > MAX_AGE_MS) { this.sessions.delete(id); return undefined; }
    s.seen = now;
    return s;
  }

  end(id: string): void { this.sessions.delete(id); }

  /** Log USER out everywhere except `keep` (after a password change or removal). */
  endUser(user: string, keep?: string): void {
    for (const [id, s] of this.sessions) if (s.user === user && id !== keep) this.sessions.delete(id);
  }
}

export function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  const all = Array.isArray(header) ? header.join('; ') : header ?? '';
  if (all.length > 8192) return undefined;
  for (const part of all.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function setCookie(id: string): string {
  return `${COOKIE}=${id}; Path=/console/; HttpOnly; Secure; SameSite=Strict`;
}

export function clearCookie(): string {
  return `${COOKIE}=; Path=/console/; HttpOnly; Secure; SameSite=Strict; Max-Age=0`;
}
