/**
 * mail-location - where a user's mail lives: THE parser of Dovecot's `mail_location` / userdb
 * `mail` setting (doc: "Mail location"), and the one derivation of the mailbox virtual(8)
 * delivers to from it.
 *
 *   maildir:~/Maildir:LAYOUT=fs:INDEX=/var/idx/%u:CONTROL=~/ctl:INBOX=~/Maildir/INBOX:UTF8
 *   mbox:~/mail:INBOX=/var/mail/%u
 *
 * The first field is `<format>:<root>` (the format name in any case, as Dovecot compares it);
 * the rest are KEY=VALUE options separated by ':' ("::" stands for a literal ':' inside a value,
 * as in Dovecot). `%u` (user), `%n` (user part), `%d` (domain), `%h` (home), `%%`, and the long
 * forms `%{user}`, `%{username}`, `%{domain}`, `%{home}` are expanded; `%Lu` / `%Ln` lower-case.
 * A leading `~/` is the home directory. Postern keeps no index, so INDEX= and CONTROL= are
 * accepted and remembered only (CONTROL is where dovecot-uidlist lives when set, as in Dovecot).
 * A bad value is a MailLocationError; the mailbox store (lib-storage) answers it as its PARAMS
 * error.
 *
 * ONE SOURCE FOR WHERE A USER'S MAIL LIVES
 *   The user directory's `mail` (else dovecot.conf's mail_location) is the source. The mailbox
 *   store opens parseMailLocation(mail).root (imapd, pop3d, lmtpd); virtual(8), which delivers to
 *   a path of virtual_mailbox_maps relative to virtual_mailbox_base, is told by the `auth:userdb`
 *   table (lib-auth/dict-auth.ts) virtualMailboxPath(): that same root, relative to
 *   virtual_mailbox_base, so both reach the same Maildir. A root that is not below
 *   virtual_mailbox_base cannot be reached by virtual(8) (Postfix's rule: it never writes outside
 *   its base, virtual/virtual.ts): the answer is then `domain/user/` with a warning, as before.
 *   The default configuration (master/default-config.ts) writes virtual_mailbox_base and
 *   mail_location from one value with virtualMailLocation(base), so the layout below the base
 *   (VIRTUAL_MAILBOX_LAYOUT, `%d/%n`) is stated once. docs/user-directory.md says the same.
 */
import { isAbsolute, normalize } from 'node:path';

/** A mail_location that cannot be used; `message` names the setting and what is wrong. */
export class MailLocationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MailLocationError';
  }
}

export type MailFormat = 'maildir' | 'mbox';
export type ListLayout = 'maildir++' | 'fs';

export interface MailLocation {
  format: MailFormat;
  /** Absolute, normalised root directory (Maildir root / mbox directory). */
  root: string;
  layout: ListLayout;
  /** INBOX= : explicit INBOX path (mbox file or maildir dir). */
  inbox?: string;
  index?: string;
  control?: string;
  /** UTF8 option: folder names on disk in UTF-8 instead of modified UTF-7. */
  utf8: boolean;
  /** DIRNAME= (dbox/fs layout only in Dovecot; remembered). */
  dirname?: string;
}

export interface LocationVars { user: string; home?: string }

/** Expand Dovecot's %-variables for mail_location. Unknown variables are a PARAMS error. */
export function expandMailVars(text: string, v: LocationVars): string {
  const at = v.user.lastIndexOf('@');
  const n = at >= 0 ? v.user.slice(0, at) : v.user;
  const d = at >= 0 ? v.user.slice(at + 1) : '';
  const vals: Record<string, string | undefined> = { u: v.user, n, d, h: v.home, user: v.user, username: n, domain: d, home: v.home };
  return text.replace(/%(L?)(\{[a-z]+\}|[a-zA-Z%])/g, (m, lower: string, key: string) => {
    if (key === '%') return '%';
    const k = key.startsWith('{') ? key.slice(1, -1) : key;
    const val = vals[k];
    if (val === undefined) throw new MailLocationError(`mail_location: unknown or unset variable ${m}`);
    return lower ? val.toLowerCase() : val;
  });
}

/** Split on ':' where "::" is an escaped colon (Dovecot mailbox-list.c). */
function splitColons(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === ':') {
      if (s[i + 1] === ':') { cur += ':'; i++; continue; }
      out.push(cur); cur = '';
    } else cur += s[i];
  }
  out.push(cur);
  return out;
}

function resolvePath(p: string, v: LocationVars, what: string): string {
  let r = expandMailVars(p, v);
  if (r === '~' || r.startsWith('~/')) {
    if (!v.home) throw new MailLocationError(`mail_location: ${what} uses ~ but the user has no home directory`);
    r = v.home + r.slice(1);
  }
  if (!isAbsolute(r)) throw new MailLocationError(`mail_location: ${what} "${r}" is not an absolute path`);
  if (r.includes('\0')) throw new MailLocationError(`mail_location: ${what} contains a NUL byte`);
  return normalize(r).replace(/\/+$/, '') || '/';
}

/** mail_location when the setting is empty: Dovecot autodetects; Postern uses this (docs/mail-store.md). */
export const DEFAULT_MAIL_LOCATION = 'maildir:~/Maildir';

/** The format field of a mail_location ('maildir', 'mbox', ...), lower-cased; '' = the default's. */
export function mailLocationFormat(spec: string): string {
  const s = spec.trim() === '' ? DEFAULT_MAIL_LOCATION : spec.trim();
  return splitColons(s)[0]!.toLowerCase();
}

/**
 * Parse a mail_location. An empty value means Dovecot's autodetection; Postern then uses
 * `maildir:~/Maildir` (documented in docs/mail-store.md).
 */
export function parseMailLocation(spec: string, v: LocationVars): MailLocation {
  const s = spec.trim() === '' ? DEFAULT_MAIL_LOCATION : spec.trim();
  const parts = splitColons(s);
  const format = parts[0]!.toLowerCase();
  if (format !== 'maildir' && format !== 'mbox') {
    throw new MailLocationError(`mail_location "${spec}": unsupported mailbox format "${format}" (use maildir: or mbox:)`);
  }
  if (parts.length < 2 || parts[1] === '') throw new MailLocationError(`mail_location "${spec}": missing path after "${format}:"`);
  const loc: MailLocation = { format, root: resolvePath(parts[1]!, v, 'root'), layout: 'maildir++', utf8: false };
  if (format === 'mbox') loc.layout = 'fs';
  for (const opt of parts.slice(2)) {
    if (opt === '') continue;
    const eq = opt.indexOf('=');
    const key = (eq < 0 ? opt : opt.slice(0, eq)).toUpperCase();
    const val = eq < 0 ? '' : opt.slice(eq + 1);
    switch (key) {
      case 'LAYOUT':
        if (val !== 'fs' && val !== 'maildir++') throw new MailLocationError(`mail_location "${spec}": unsupported LAYOUT=${val} (use fs or maildir++)`);
        loc.layout = val; break;
      case 'INBOX': loc.inbox = resolvePath(val, v, 'INBOX'); break;
      case 'INDEX': if (val !== 'MEMORY') loc.index = resolvePath(val, v, 'INDEX'); break;
      case 'CONTROL': loc.control = resolvePath(val, v, 'CONTROL'); break;
      case 'UTF8': loc.utf8 = true; break;
      case 'DIRNAME': loc.dirname = val; break;
      case 'VOLATILEDIR': case 'ITERINDEX': case 'NO-NOSELECT': case 'FULLDIRNAME': case 'SUBSCRIPTIONS':
      case 'MAILBOXDIR': case 'ALT': case 'LISTINDEX': case 'NOLOCKS':
        break;   // Dovecot options Postern has no use for; accepted so the same line works
      default:
        throw new MailLocationError(`mail_location "${spec}": unknown option "${key}"`);
    }
  }
  return loc;
}

/** The layout of mailboxes below virtual_mailbox_base: domain/user (mail_location variables). */
export const VIRTUAL_MAILBOX_LAYOUT = '%d/%n';

/** The mail_location of Maildirs below `base` in VIRTUAL_MAILBOX_LAYOUT (the default configuration's). */
export function virtualMailLocation(base: string): string {
  return `maildir:${base.replace(/\/+$/, '')}/${VIRTUAL_MAILBOX_LAYOUT}`;
}

/** A user record's mail location: the userdb `mail` (%-variables already expanded) and identity. */
export interface UserMailLocation { user: string; home?: string; mail: string }

/**
 * What virtual(8) is told for a user (auth:userdb): for a maildir, its root (as the store opens
 * it, parseMailLocation) relative to virtual_mailbox_base with a trailing `/` (Postfix: Maildir);
 * when that root is not below the base (or the location is unusable), VIRTUAL_MAILBOX_LAYOUT's
 * `domain/user/` and a `warning` saying why. Other formats are answered as written.
 */
export function virtualMailboxPath(u: UserMailLocation, base: string): { path: string; warning?: string } {
  if (mailLocationFormat(u.mail) !== 'maildir') return { path: u.mail };
  const b = base.trim() === '' ? '' : normalize(base).replace(/\/+$/, '');
  let root: string;
  try {
    root = parseMailLocation(u.mail, { user: u.user, home: u.home || undefined }).root;
  } catch (e) {
    return { path: layoutPath(u.user), warning: `${(e as Error).message}; answering ${layoutPath(u.user)}` };
  }
  if (b && root.startsWith(b + '/')) return { path: root.slice(b.length + 1) + '/' };
  return { path: layoutPath(u.user), warning: `maildir ${root} is not below virtual_mailbox_base ${base || '(unset)'}; answering ${layoutPath(u.user)}` };
}

/** VIRTUAL_MAILBOX_LAYOUT for a user, as a Maildir path: `domain/user/` (`user/` without a domain). */
function layoutPath(user: string): string {
  const at = user.lastIndexOf('@');
  return at < 0 ? `${user}/` : `${user.slice(at + 1)}/${user.slice(0, at)}/`;
}
