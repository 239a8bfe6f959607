/**
 * mail-acl-shared - Dovecot's `acl_shared_dict` (plugin { acl_shared_dict = file:PATH }): which
 * users share something with whom, so LIST of the shared namespace finds the owners without
 * reading every user's mailboxes (Dovecot acl-lookup-dict.c). The file is Dovecot's file dict:
 * a key line then a value line, for each entry:
 *
 *     shared/shared-boxes/user/b@x.test/a@x.test     (a@x.test gave b@x.test l somewhere)
 *     1
 *     shared/shared-boxes/anyone/a@x.test             (a@x.test gave anyone l somewhere)
 *     1
 *
 * After an owner's ACL changes, that owner's entries are rebuilt from all their mailboxes'
 * ACLs (Dovecot: acl_lookup_dict_rebuild). Replaced through a temporary file and rename(2),
 * one rewrite at a time in this process (Dovecot's own lock on the file dict is not taken: a
 * change by Dovecot at the same instant may be lost until the owner's next change); a file
 * over DICT_MAX bytes is not read (LIMIT).
 */
import { promises as fsp } from 'node:fs';
import { MailError } from './mail-error.ts';
import type { MailUser } from './mail-storage.ts';

const DICT_MAX = 64 << 20;
const PREFIX = 'shared/shared-boxes/';

async function readDict(path: string): Promise<Map<string, string>> {
  let text: string;
  try {
    const st = await fsp.stat(path);
    if (st.size > DICT_MAX) throw new MailError('LIMIT', `acl_shared_dict ${path} is over ${DICT_MAX} bytes`);
    text = await fsp.readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    if (e instanceof MailError) throw e;
    throw new MailError('TEMP', `acl_shared_dict ${path} cannot be read: ${(e as Error).message}`);
  }
  const lines = text.split('\n');
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < lines.length; i += 2) m.set(lines[i]!, lines[i + 1]!);
  return m;
}

/** The owners that share something with `user` (directly, with one of `groups`, or with anyone). */
export async function sharedOwnersFor(path: string, user: string, groups: readonly string[] = []): Promise<string[]> {
  const d = await readDict(path);
  const out = new Set<string>();
  const heads = [`${PREFIX}user/${user}/`, `${PREFIX}anyone/`, ...groups.map((g) => `${PREFIX}group/${g}/`)];
  for (const k of d.keys()) {
    const h = heads.find((x) => k.startsWith(x));
    if (h) out.add(k.slice(h.length));
  }
  return [...out].filter((o) => o !== '' && !o.includes('\n')).sort();
}

/** Rewrites of one dict file in this process, one at a time (read-modify-write). */
const writers = new Map<string, Promise<void>>();

/** Rebuilds `owner`'s entries from the ACLs of all their mailboxes. */
export function updateSharedDict(path: string, owner: string, u: MailUser): Promise<void> {
  const prev = writers.get(path) ?? Promise.resolve();
  const next = prev.catch(() => undefined).then(() => rebuild(path, owner, u));
  const tail = next.catch(() => undefined);
  writers.set(path, tail);
  void tail.then(() => { if (writers.get(path) === tail) writers.delete(path); });
  return next;
}

async function rebuild(path: string, owner: string, u: MailUser): Promise<void> {
  const acl = u.acl?.();
  if (!acl) return;
  const keys = new Set<string>();
  for (const m of await u.list()) {
    if (m.nonExistent) continue;
    for (const e of (await acl.read(m.name)) ?? []) {
      if (e.negative || !e.rights.includes('l')) continue;
      if (e.type === 'user' && e.name !== owner) keys.add(`${PREFIX}user/${e.name}/${owner}`);
      else if (e.type === 'anyone' || e.type === 'authenticated') keys.add(`${PREFIX}anyone/${owner}`);
      else if (e.type === 'group' || e.type === 'group-override') keys.add(`${PREFIX}group/${e.name}/${owner}`);
    }
  }
  const d = await readDict(path);
  for (const k of [...d.keys()]) if (k.startsWith(PREFIX) && k.endsWith(`/${owner}`)) d.delete(k);
  for (const k of keys) if (!k.includes('\n')) d.set(k, '1');
  const text = [...d].map(([k, v]) => `${k}\n${v}\n`).join('');
  const tmp = `${path}.tmp.${process.pid}.${Date.now()}`;
  try {
    await fsp.writeFile(tmp, text, { mode: 0o600 });
    await fsp.rename(tmp, path);
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw new MailError('TEMP', `acl_shared_dict ${path} cannot be written: ${(e as Error).message}`);
  }
}
