/**
 * sql-table-kit - what the pgsql: and mysql: table tests share: a small Postfixadmin-like data
 * set that both PostgreSQL and MariaDB accept, the keys every map file is asked (ordinary ones and
 * hostile ones: quotes, backslashes, LIKE wildcards, comment markers, multibyte), and running
 * `postern map -q -` the way an administrator would.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const POSTERN = join(import.meta.dirname, '../../bin/postern');
export const POSTMAP = '/usr/sbin/postmap';

/** INSERTs for tables alias(address, goto, active), mailbox(...), domain(domain, active). */
export const SCHEMA_ROWS = `
INSERT INTO alias VALUES ('info@example.com', 'joe@example.com', TRUE), ('info@example.com', 'ann@example.com', TRUE),
  ('sales@example.com', 'jane@example.com', TRUE), ('old@example.com', 'gone@example.com', FALSE),
  ('o''brien@example.com', 'quoted@example.com', TRUE), ('@example.org', 'catchall@example.org', TRUE),
  ('null@example.com', NULL, TRUE), ('empty@example.com', '', TRUE), ('utf8-ü@example.com', 'ü@example.com', TRUE);
INSERT INTO mailbox VALUES ('joe@example.com', 'example.com', 'joe', 'example.com/joe/', TRUE, 1024000),
  ('ann@example.com', 'example.com', 'ann', 'example.com/ann/', TRUE, 0),
  ('off@example.com', 'example.com', 'off', 'example.com/off/', FALSE, 0),
  ('bob@sub.example.net', 'sub.example.net', 'bob', 'sub.example.net/bob/', TRUE, NULL);
INSERT INTO domain VALUES ('example.com', TRUE), ('example.net', TRUE), ('sub.example.net', TRUE), ('old.example', FALSE);
`;

/** Rows in alias after SCHEMA_ROWS (to prove nothing was deleted or added). */
export const ALIAS_ROWS = 9;

export const ORDINARY_KEYS = ['info@example.com', 'INFO@Example.com', 'sales@example.com', 'old@example.com',
  "o'brien@example.com", '@example.org', 'null@example.com', 'empty@example.com', 'joe@example.com', 'ann@example.com',
  'off@example.com', 'bob@sub.example.net', 'nobody@example.com', 'example.com', 'sub.example.net', 'old.example',
  'utf8-ü@example.com', 'user@', 'a@b', 'x@a.b.c.d.e', 'bob@sub..example.net'];

/** Injection attempts: each must be looked up as the literal string it is. */
export const INJECTION_KEYS = ["x' OR '1'='1", "' OR 1=1 --", "'; DROP TABLE alias; --", '" OR ""="', "\\' OR 1=1 #",
  'a\\', '%@example.com', '_nfo@example.com', '%', "info@example.com' --", "ü' OR 'a'='a", 'é́@example.com',
  '日本語@example.com', "info@example.com'||'", 'info@example.com\\', "\\'; SELECT pg_sleep(5); --", '*', ')(uid=*', '*)(|(mail=*'];

export const HOSTILE_KEYS = [...ORDINARY_KEYS, ...INJECTION_KEYS];

/**
 * `postern map -q - SPEC` with the keys on stdin → key → value. As postmap, it stops at the first
 * key whose lookup fails (a fatal error on stderr): `fatal` says so.
 */
export function posternMapQuery(spec: string, keys: string[], extra: string[] = []): Map<string, string> & { fatal?: string } {
  const r = spawnSync(POSTERN, ['map', ...extra, '-q', '-', spec], { input: keys.join('\n') + '\n', encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 1) throw new Error(`postern map failed (${r.status}): ${r.stderr}`);
  const out: Map<string, string> & { fatal?: string } = new Map<string, string>();
  const fatal = /fatal: (.*)/.exec(r.stderr);
  if (fatal) out.fatal = fatal[1];
  for (const line of r.stdout.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) out.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return out;
}

/** Real Postfix `postmap -c DIR -q - SPEC`, the same shape as posternMapQuery(). */
export function postfixMapQuery(dir: string, spec: string, keys: string[]): Map<string, string> & { fatal?: string } {
  const r = spawnSync(POSTMAP, ['-c', dir, '-q', '-', spec], { input: keys.join('\n') + '\n', encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 1) throw new Error(`postmap failed (${r.status}): ${r.stderr}`);
  const out: Map<string, string> & { fatal?: string } = new Map<string, string>();
  const fatal = /fatal: (.*)/.exec(r.stderr);
  if (fatal) out.fatal = fatal[1];
  for (const line of r.stdout.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) out.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return out;
}

/** Assert the two answers are the same: the values, and whether the run ended in a fatal error. */
export function sameAnswers(got: Map<string, string> & { fatal?: string }, want: Map<string, string> & { fatal?: string }, what: string): void {
  assert.deepEqual([...got].sort(), [...want].sort(), `${what}: values`);
  assert.equal(!!got.fatal, !!want.fatal, `${what}: postern fatal=${got.fatal ?? 'none'}, postmap fatal=${want.fatal ?? 'none'}`);
}
