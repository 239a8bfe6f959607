/**
 * dict-auth - the `auth:` lookup-table type: Postfix maps answered by the user directory that
 * Dovecot-side services use, so the MTA and IMAP share one user list (DESIGN.md §2):
 *
 *   virtual_mailbox_domains = auth:domains
 *   virtual_mailbox_maps    = auth:userdb
 *
 * auth:userdb   key `user@domain` → the user's mailbox for virtual(8): when their mail location
 *               is a maildir under virtual_mailbox_base, the path relative to it with a trailing
 *               `/` (Postfix: a trailing slash means Maildir), e.g. `example.com/alice/Maildir/`;
 *               a maildir elsewhere gives `domain/user/` (and a warning: virtual(8) can only
 *               deliver below virtual_mailbox_base); any other mail location is returned as is.
 *               The path is global/mail-location.ts virtualMailboxPath(): the root the mailbox
 *               store opens for the user (the one mail_location parser), so virtual(8) delivers
 *               where imapd, pop3d and lmtpd read. Unknown users and `@domain` keys are not found.
 * auth:domains  key `domain` → `OK` when at least one user has that domain. The domain set is
 *               cached and rebuilt when the directory changes (passwd-file mtime, SQLite
 *               data_version), checked at most once a second.
 *
 * The type is not one of util/'s: whoever assembles a service (master/, cli/) and holds its
 * configuration gives it to the service's MainConfig (withDictTypes(authDictTypesFor(...))),
 * whose dictFlags carry it to every table the service opens. The directory is the one of the
 * dovecot.conf it is given, virtual_mailbox_base that of the service's main.cf with its
 * master.cf -o overrides; nothing is read from disk here. A broken configuration is
 * DictError('config'); an unreachable database is DictError('retry').
 */
import { DictError, type Dict, type DictFlags } from '../util/dict.ts';
import type { DictTypeOpener } from '../util/dict-source.ts';
import { logger } from '../util/msg.ts';
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import type { MainConfig } from '../global/mail-conf.ts';
import { virtualMailboxPath } from '../global/mail-location.ts';
import { splitUser } from './auth-var-expand.ts';
import { openUserDirectory, type AuthUserDirectory } from './user-directory-open.ts';
import type { UserRecord } from './user-directory.ts';

const log = logger('auth');
const STAMP_CHECK_MS = 1000;

/** The value auth:userdb gives for a user record (see the header); a warning is logged. */
export function virtualMailboxValue(rec: UserRecord, base: string): string {
  const { path, warning } = virtualMailboxPath(rec, base);
  if (warning) log.warn(`auth:userdb: ${rec.user}: ${warning}`);
  return path;
}

/** What auth: tables answer from, passed down by whoever assembled the service. */
export interface AuthDictSource {
  /** dovecot.conf as loaded for the service (called when an auth: table is opened; may throw). */
  dovecot: () => DovecotConfig;
  /** main.cf virtual_mailbox_base of the service (called when auth:userdb is opened; may throw). */
  virtualMailboxBase: () => string;
}

/** The `auth` table type for DictOpenFlags.types. */
export function authDictTypes(src: AuthDictSource): Record<string, DictTypeOpener> {
  return { auth: (name, flags) => openAuthDict(name, flags, src) };
}

/** For MainConfig.withDictTypes: auth: bound to each configuration's virtual_mailbox_base. */
export function authDictTypesFor(dovecot: () => DovecotConfig): (c: MainConfig) => Record<string, DictTypeOpener> {
  return (c) => authDictTypes({ dovecot, virtualMailboxBase: () => c.get('virtual_mailbox_base') });
}

export async function openAuthDict(name: string, _flags: DictFlags, src: AuthDictSource): Promise<Dict> {
  if (name !== 'userdb' && name !== 'domains') {
    throw new DictError('config', `auth:${name}: unknown table (use auth:userdb or auth:domains)`);
  }
  let dir: AuthUserDirectory;
  let base = '';
  try {
    if (name === 'userdb') base = src.virtualMailboxBase();
    dir = await openUserDirectory(src.dovecot());
  } catch (err) {
    throw new DictError('config', `auth:${name}: ${(err as Error).message}`);
  }
  const retry = (err: unknown): never => {
    if (err instanceof DictError) throw err;
    throw new DictError('retry', `auth:${name}: ${(err as Error).message}`);
  };

  if (name === 'userdb') {
    return {
      type: 'auth', name,
      async lookup(key) {
        if (key.startsWith('@') || key === '') return undefined;
        try {
          const rec = await dir.lookup(key);
          return rec ? virtualMailboxValue(rec, base) : undefined;
        } catch (err) { return retry(err); }
      },
      async *entries() {
        try {
          for await (const u of dir.iterate()) {
            const rec = await dir.lookup(u);
            if (rec) yield [u, virtualMailboxValue(rec, base)] as [string, string];
          }
        } catch (err) { retry(err); }
      },
      close: () => dir.close(),
    };
  }

  let domains: Set<string> | undefined;
  let stamp = '';
  let checked = 0;
  const current = async (): Promise<Set<string>> => {
    const now = performance.now();   // an interval: a wall clock stepped back must not stop it
    if (domains && now - checked < STAMP_CHECK_MS) return domains;
    checked = now;
    const s = await dir.changeStamp();
    if (domains && s === stamp && s !== '') return domains;
    const set = new Set<string>();
    for await (const u of dir.iterate()) {
      const d = splitUser(u).domain.toLowerCase();
      if (d) set.add(d);
    }
    domains = set;
    stamp = s;
    return set;
  };
  return {
    type: 'auth', name,
    async lookup(key) {
      try {
        return (await current()).has(key.toLowerCase()) ? 'OK' : undefined;
      } catch (err) { return retry(err); }
    },
    async *entries() {
      try {
        for (const d of [...(await current())].sort()) yield [d, 'OK'] as [string, string];
      } catch (err) { retry(err); }
    },
    close: () => dir.close(),
  };
}
