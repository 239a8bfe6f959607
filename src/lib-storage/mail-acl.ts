/**
 * mail-acl - mailbox access control lists as Dovecot 2.3's acl plugin keeps them with
 * `acl = vfile` (doc/wiki ACL, src/plugins/acl/acl-backend-vfile*.c): a `dovecot-acl` file in
 * each mailbox's directory (INBOX: the Maildir root), one entry a line:
 *
 *     owner alr
 *     user=b@x.test elrt
 *     -user=b@x.test r          (negative rights: taken away)
 *     group=staff lr            anyone lr      authenticated lr      # comments, blank lines
 *
 * Rights are Dovecot's letters (RFC 4314 §2.1): l lookup, r read, w write (flags other than
 * \Seen and \Deleted), s write-seen, t write-deleted, i insert, p post, e expunge, k create,
 * x delete, a admin. Dovecot writes each entry's letters in the order of the right's name and
 * the entries ordered by identifier type (anyone, authenticated, group, owner, user,
 * group-override) then identifier, positive before negative; so does this module, so both
 * servers can change the same file in turn. Changes are made under Dovecot's dotlock
 * `dovecot-acl.lock` (the new file written into the lock, then renamed over), and `dovecot-acl-list` (Dovecot's cache of mailboxes with ACLs, in the root) is
 * removed after a change so Dovecot rebuilds it.
 *
 * Rights of a user (Dovecot's acl_object_rebuild_cache): the matching entries are applied type
 * by type in the order above, each matching type's positive rights replacing what the types
 * before gave, entries of the same type adding up; negative rights are then taken away. The
 * owner of a private mailbox without an entry of their own (`owner`, or `user=` naming them)
 * has a default `owner` entry with every right.
 *
 * Limits against abuse: a file over ACL_FILE_MAX bytes or ACL_MAX_ENTRIES entries is refused
 * (MailError LIMIT); identifiers over ACL_ID_MAX bytes or with control characters are refused
 * (PARAMS). A missing file is "no ACL" (the defaults).
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { MailError } from './mail-error.ts';
import { dotlockCreate } from './maildir/maildir-dotlock.ts';

/** Dovecot's right names, by letter, in the letter order Dovecot answers MYRIGHTS in. */
export const ACL_LETTERS: Readonly<Record<string, string>> = {
  l: 'lookup', r: 'read', w: 'write', s: 'write-seen', t: 'write-deleted', i: 'insert', p: 'post',
  e: 'expunge', k: 'create', x: 'delete', a: 'admin',
};
/** Every right, in MYRIGHTS order (the owner's defaults). */
export const ALL_RIGHTS = 'lrwstipekxa';
export const ACL_FILE_MAX = 1 << 20;
export const ACL_MAX_ENTRIES = 10_000;
export const ACL_ID_MAX = 256;

export type AclIdType = 'anyone' | 'authenticated' | 'group' | 'owner' | 'user' | 'group-override';
const TYPE_ORDER: readonly AclIdType[] = ['anyone', 'authenticated', 'group', 'owner', 'user', 'group-override'];

export interface AclEntry {
  type: AclIdType;
  /** The user or group name ('' for anyone, authenticated, owner). */
  name: string;
  /** Letters (a set, kept in Dovecot's written order). */
  rights: string;
  negative: boolean;
  /** From the global ACL file (acl = vfile:FILE): applied after the mailbox's own, never written. */
  global?: boolean;
}

/** Letters ordered by right name, as Dovecot writes them ("alr", "elrt", "akilrws"). */
export function sortRights(letters: string): string {
  const set = [...new Set(letters.split(''))].filter((c) => ACL_LETTERS[c] !== undefined);
  return set.sort((a, b) => (ACL_LETTERS[a]! < ACL_LETTERS[b]! ? -1 : ACL_LETTERS[a]! > ACL_LETTERS[b]! ? 1 : 0)).join('');
}

/** Letters in MYRIGHTS order (l r w s t i p e k x a). */
export function rightsInLetterOrder(letters: string): string {
  return ALL_RIGHTS.split('').filter((c) => letters.includes(c)).join('');
}

/** The file's identifier form: `owner`, `user=x`, `group=x`, `anyone`. */
export function aclIdText(e: Pick<AclEntry, 'type' | 'name'>): string {
  return e.type === 'user' || e.type === 'group' || e.type === 'group-override' ? `${e.type}=${e.name}` : e.type;
}

export function parseAclId(text: string): Pick<AclEntry, 'type' | 'name'> | undefined {
  if (text === 'anyone' || text === 'authenticated' || text === 'owner') return { type: text, name: '' };
  const m = /^(user|group|group-override)=(.+)$/s.exec(text);
  return m ? { type: m[1] as AclIdType, name: m[2]! } : undefined;
}

export function checkAclName(name: string): void {
  if (name.length === 0 || Buffer.byteLength(name) > ACL_ID_MAX) throw new MailError('PARAMS', 'Invalid ACL identifier');
  if (/[\x00-\x1f\x7f]/.test(name)) throw new MailError('PARAMS', 'Invalid ACL identifier');
}

/** A dovecot-acl file's entries (unknown identifiers and letters are skipped, as Dovecot logs and skips them). */
export function parseAclFile(text: string): AclEntry[] {
  const out: AclEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    if (sp <= 0) continue;
    let idText = line.slice(0, sp).trim();
    const negative = idText.startsWith('-');
    if (negative) idText = idText.slice(1);
    const id = parseAclId(idText);
    if (!id) continue;
    const rights = sortRights(line.slice(sp + 1).replace(/^:/, ''));
    out.push({ ...id, rights, negative });
    if (out.length > ACL_MAX_ENTRIES) throw new MailError('LIMIT', `ACL has more than ${ACL_MAX_ENTRIES} entries`);
  }
  return sortAcl(out);
}

export function sortAcl(entries: AclEntry[]): AclEntry[] {
  return entries.sort((a, b) => {
    const g = (a.global ? 1 : 0) - (b.global ? 1 : 0);
    if (g !== 0) return g;
    const t = TYPE_ORDER.indexOf(a.type) - TYPE_ORDER.indexOf(b.type);
    if (t !== 0) return t;
    if (a.name !== b.name) return a.name < b.name ? -1 : 1;
    return (a.negative ? 1 : 0) - (b.negative ? 1 : 0);
  });
}

export function formatAclFile(entries: readonly AclEntry[]): string {
  return entries.filter((e) => e.rights !== '').map((e) => `${e.negative ? '-' : ''}${aclIdText(e)} ${e.rights}\n`).join('');
}

/** Who is asking: the user, the groups the userdb gives (acl_groups), whether they own the mailbox. */
export interface AclSubject { user: string; groups?: readonly string[]; owner: boolean }

function matches(e: AclEntry, who: AclSubject): boolean {
  switch (e.type) {
    case 'anyone': return true;
    case 'authenticated': return who.user !== '';
    case 'owner': return who.owner;
    case 'user': return e.name === who.user;
    case 'group': case 'group-override': return (who.groups ?? []).includes(e.name);
  }
}

/** Whether an entry is the owner's own (then the owner's default rights do not apply). */
export function ownerEntry(e: AclEntry, owner: string): boolean {
  return !e.negative && (e.type === 'owner' || (e.type === 'user' && e.name === owner));
}

/**
 * The rights (letters, MYRIGHTS order) `who` has under `entries` (undefined: no ACL file). The
 * owner without an entry of their own gets Dovecot's default owner entry (every right).
 */
export function effectiveRights(entries: readonly AclEntry[] | undefined, who: AclSubject): string {
  let list = entries ?? [];
  if (who.owner && !list.some((e) => ownerEntry(e, who.user))) {
    list = sortAcl([...list, { type: 'owner', name: '', rights: ALL_RIGHTS, negative: false }]);
  }
  let have = new Set<string>();
  let lastType: string | undefined;
  for (const e of list) {
    if (e.negative || !matches(e, who)) continue;
    const t = `${e.global ? 'g' : 'l'}:${e.type}`;
    if (t !== lastType) { have = new Set(); lastType = t; }
    for (const c of e.rights) have.add(c);
  }
  for (const e of list) if (e.negative && matches(e, who)) for (const c of e.rights) have.delete(c);
  return rightsInLetterOrder([...have].join(''));
}

/**
 * The global ACL file (Dovecot 2.3 `acl = vfile:/etc/dovecot/dovecot-acl`): lines
 * `MAILBOX-PATTERN IDENTIFIER RIGHTS`, `*` and `?` wildcards, for every user's mailboxes; its
 * entries come after the mailbox's own (GETACL shows them with `#`) and cannot be changed by
 * SETACL. Read again when its mtime changes; over ACL_FILE_MAX bytes it is refused (LIMIT).
 */
const globalCache = new Map<string, { mtimeMs: number; lines: { re: RegExp; entry: AclEntry }[] }>();

export async function readGlobalAcl(path: string, mailbox: string): Promise<AclEntry[]> {
  let st;
  try { st = await fsp.stat(path); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new MailError('TEMP', `global ACL file ${path} cannot be read: ${(e as Error).message}`);
  }
  if (st.isDirectory()) throw new MailError('TEMP', `global ACL directory ${path} is not supported (Dovecot 2.2 layout); use a global ACL file`);
  if (st.size > ACL_FILE_MAX) throw new MailError('LIMIT', `global ACL file ${path} is over ${ACL_FILE_MAX} bytes`);
  let c = globalCache.get(path);
  if (!c || c.mtimeMs !== st.mtimeMs) {
    const lines: { re: RegExp; entry: AclEntry }[] = [];
    for (const raw of (await fsp.readFile(path, 'utf8')).split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const sp = line.indexOf(' ');
      if (sp <= 0) continue;
      const pattern = line.slice(0, sp).replace(/^"(.*)"$/, '$1');
      const [entry] = parseAclFile(line.slice(sp + 1));
      if (!entry) continue;
      const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 's');
      lines.push({ re, entry: { ...entry, global: true } });
      if (lines.length > ACL_MAX_ENTRIES) throw new MailError('LIMIT', `global ACL file ${path} has more than ${ACL_MAX_ENTRIES} entries`);
    }
    c = { mtimeMs: st.mtimeMs, lines };
    globalCache.set(path, c);
  }
  return sortAcl(c.lines.filter((l) => l.re.test(mailbox)).map((l) => ({ ...l.entry })));
}

/** The ACLs of a user's mailboxes, by mailbox name. */
export interface MailboxAcl {
  /** The entries of a mailbox's ACL; undefined when it has none. */
  read(mailbox: string): Promise<AclEntry[] | undefined>;
  /** Replaces a mailbox's ACL. */
  write(mailbox: string, entries: readonly AclEntry[]): Promise<void>;
  /**
   * Read-modify-write under Dovecot's `dovecot-acl.lock` dotlock: `change` gets the mailbox's
   * own entries and returns the new ones (undefined: no change). Resolves whether it changed.
   */
  update(mailbox: string, change: (entries: AclEntry[]) => AclEntry[] | undefined): Promise<boolean>;
}

/** A user's mailboxes' ACL files. `dirOf` is the storage's own validated mailbox → directory. */
export class VfileAcl implements MailboxAcl {
  private readonly dirOf: (mailbox: string) => string;
  private readonly root: string;
  constructor(dirOf: (mailbox: string) => string, root: string) {
    this.dirOf = dirOf;
    this.root = root;
  }

  /** The entries of a mailbox's dovecot-acl; undefined when it has none. */
  async read(mailbox: string): Promise<AclEntry[] | undefined> {
    const path = join(this.dirOf(mailbox), 'dovecot-acl');
    let fh;
    try { fh = await fsp.open(path, 'r'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new MailError('TEMP', `ACL file ${path} cannot be read: ${(e as Error).message}`);
    }
    try {
      const st = await fh.stat();
      if (st.size > ACL_FILE_MAX) throw new MailError('LIMIT', `ACL file ${path} is over ${ACL_FILE_MAX} bytes`);
      return parseAclFile((await fh.readFile()).toString('utf8'));
    } finally { await fh.close(); }
  }

  async update(mailbox: string, change: (entries: AclEntry[]) => AclEntry[] | undefined): Promise<boolean> {
    const path = join(this.dirOf(mailbox), 'dovecot-acl');
    const lock = await dotlockCreate(path);
    try {
      const next = change((await this.read(mailbox)) ?? []);
      if (!next) return false;
      const list = sortAcl(next.filter((e) => e.rights !== '' && !e.global));
      if (list.length > ACL_MAX_ENTRIES) throw new MailError('LIMIT', `Too many ACL entries (at most ${ACL_MAX_ENTRIES})`);
      if (list.length === 0) await fsp.rm(path, { force: true });
      else await lock.replace(formatAclFile(list));
      await fsp.rm(join(this.root, 'dovecot-acl-list'), { force: true });
      return true;
    } finally { await lock.release(); }
  }

  /** Replaces a mailbox's dovecot-acl (removed when nothing is left). */
  async write(mailbox: string, entries: readonly AclEntry[]): Promise<void> {
    const list = sortAcl(entries.filter((e) => e.rights !== '' && !e.global));
    if (list.length > ACL_MAX_ENTRIES) throw new MailError('LIMIT', `ACL would have more than ${ACL_MAX_ENTRIES} entries`);
    const dir = this.dirOf(mailbox);
    const path = join(dir, 'dovecot-acl');
    try {
      if (list.length === 0) await fsp.rm(path, { force: true });
      else {
        const tmp = join(dir, `dovecot-acl.tmp.${process.pid}.${Date.now()}`);
        await fsp.writeFile(tmp, formatAclFile(list), { mode: 0o600 });
        await fsp.rename(tmp, path);
      }
      await fsp.rm(join(this.root, 'dovecot-acl-list'), { force: true });
    } catch (e) {
      throw new MailError('TEMP', `ACL file ${path} cannot be written: ${(e as Error).message}`);
    }
  }
}
