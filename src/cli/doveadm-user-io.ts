/**
 * doveadm-user-io - `postern user export` and `postern user import`: moving users between user
 * directories (the embedded SQLite table, passwd-files, SQL and LDAP) in Dovecot's passwd-file
 * format, the one format every Dovecot and Postern directory can be written from.
 *
 *   postern user export [PATTERN]     every user of dovecot.conf's directory (sql, ldap, passwd-file,
 *                                     ...), one passwd-file line each, on standard output
 *   postern user import [FILE]        passwd-file lines (FILE or standard input) added to the
 *                                     writable directory (the first passdb: passwd-file or the
 *                                     embedded SQLite table); users that exist are skipped
 *
 * A line is `user:{SCHEME}hash:uid:gid::home::userdb_mail=... userdb_quota_rule=...`: the password
 * exactly as the passdb stores it (with its scheme, `{DEFAULT}` made explicit), so nobody's
 * password changes or has to be known. A user without a stored password (auth_bind LDAP, static
 * passdbs) is exported with an empty password field and skipped by import, with a warning.
 *
 * To move users into PostgreSQL or MySQL, export them and load the lines with the database's
 * own tools (the mapping to a site's schema is the site's); `postern user export` reads them back.
 */
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import { parsePasswdFile } from '../lib-auth/db-passwd-file.ts';
import { splitScheme } from '../lib-auth/password-scheme.ts';
import { openUserDirectory } from '../lib-auth/user-directory-open.ts';
import { openUserWriter, UserWriteError } from '../lib-auth/user-directory-write.ts';

const SAFE = /^[^\s:\0\r\n]*$/;

/** The passwd-file lines of every user matching `re`. Warnings (skipped users) go to `warn`. */
export async function exportUsers(conf: DovecotConfig, re: RegExp, warn: (m: string) => void): Promise<string[]> {
  const dir = await openUserDirectory(conf);
  const out: string[] = [];
  try {
    for await (const u of dir.iterate()) {
      if (!re.test(u)) continue;
      const name = dir.normalizeName(u) ?? u;
      let password = '';
      for (const { db, spec } of dir.passdbs) {
        if (/^(yes|y|1|true)$/i.test(spec.settings?.deny ?? '') || /^(yes|y|1|true)$/i.test(spec.settings?.master ?? '')) continue;
        const e = await db.lookup(name);
        if (!e) continue;
        if (e.password !== undefined) password = splitScheme(e.password).scheme ? e.password : `{${db.defaultScheme}}${e.password}`;
        break;
      }
      const rec = await dir.lookup(name);
      if (!rec) { warn(`${u}: no userdb entry: skipped`); continue; }
      const extra: string[] = [];
      if (rec.mail) extra.push(`userdb_mail=${rec.mail}`);
      const q: string[] = [];
      if (rec.quotaBytes !== undefined) q.push(`storage=${Math.floor(rec.quotaBytes / 1024)}k`);
      if (rec.quotaMessages !== undefined) q.push(`messages=${rec.quotaMessages}`);
      if (q.length) extra.push(`userdb_quota_rule=*:${q.join(':')}`);
      const fields = [rec.user, password, String(rec.uid), String(rec.gid), '', rec.home, ''];
      if (!fields.every((f) => SAFE.test(f)) || extra.some((x) => /[\s\0]/.test(x))) {
        warn(`${u}: a field holds ':' or white space, which passwd-file cannot: skipped`);
        continue;
      }
      if (!password) warn(`${u}: no stored password (e.g. LDAP auth_bind): exported without one`);
      out.push(`${fields.join(':')}:${extra.join(' ')}`);
    }
  } finally {
    await dir.close();
  }
  return out;
}

/** Add the users of passwd-file `text` to the writable directory; returns [added, skipped]. */
export function importUsers(conf: DovecotConfig, text: string, source: string, warn: (m: string) => void): [number, number] {
  const parsed = parsePasswdFile(text, source);
  for (const w of parsed.warnings) warn(w);
  const writer = openUserWriter(conf);
  let added = 0, skipped = 0;
  try {
    for (const u of parsed.users.values()) {
      if (!u.password) { warn(`${source}, line ${u.line}: ${u.user} has no password: skipped`); skipped++; continue; }
      try {
        writer.add({ user: u.user, password: u.password, home: u.home, quotaRule: u.extra.userdb_quota_rule, uid: u.uid, gid: u.gid });
        added++;
      } catch (err) {
        if (!(err instanceof UserWriteError)) throw err;
        warn(`${source}, line ${u.line}: ${u.user}: ${err.message}: skipped`);
        skipped++;
      }
    }
  } finally {
    writer.close();
  }
  return [added, skipped];
}
