/**
 * sql-table-kit - what the pgsql: and mysql: table tests share: a small Postfixadmin-like data
 * set that both PostgreSQL and MariaDB accept, the keys every map file is asked (ordinary ones and
 * hostile ones: quotes, backslashes, LIKE wildcards, comment markers, multibyte), and running
 * `postern map -q -` the way an administrator would, and the behaviour tests both table types
 * must pass the same way (sqlTableBehaviourTests: hostile keys, failover, a hung database, 10,000
 * concurrent lookups, configuration errors).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dictOpen } from '../../src/util/dict-registry.ts';
import { DictError } from '../../src/util/dict.ts';
import { freePort } from './free-port.ts';
import { tempDir } from './dict-testkit.ts';

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

/** Postfix map files (the `query` part) both databases answer, compared with real postmap. */
export const SQL_MAP_FILES: Record<string, string> = {
  'alias.cf': "query = SELECT goto FROM alias WHERE address='%s' AND active = '1'\n",
  'mailbox.cf': "query = SELECT maildir FROM mailbox WHERE username='%s' AND active = '1'\n",
  'domains.cf': "query = SELECT domain FROM domain WHERE domain='%s' AND active = '1'\n",
  'parts.cf': "query = SELECT local_part, domain FROM mailbox WHERE local_part='%u' AND domain='%d'\nresult_format = %d/%u/ <%S> %U@%D %1\n",
  'domainlist.cf': "query = SELECT goto FROM alias WHERE address='%s'\ndomain = example.com, !example.net\n",
  // LIKE: the key's % and _ are wildcards, in Postfix too (it escapes quotes, not patterns).
  'like.cf': "query = SELECT goto FROM alias WHERE address LIKE '%s' AND address NOT LIKE 'utf8%%'\n",
  'old.cf': "table = alias\nselect_field = goto\nwhere_field = address\nadditional_conditions = AND active = '1'\n",
  'limit.cf': "query = SELECT goto FROM alias WHERE address='%s'\nexpansion_limit = 1\n",
  'quota.cf': "query = SELECT quota FROM mailbox WHERE username='%s'\n",
};

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

type Answers = Map<string, string> & { fatal?: string };

/** A postmap-style run's output: "key<TAB>value" lines, and the fatal error on stderr if any. */
function parseAnswers(r: { status: number | null; stdout: string; stderr: string }, what: string): Answers {
  if (r.status !== 0 && r.status !== 1) throw new Error(`${what} failed (${r.status}): ${r.stderr}`);
  const out: Answers = new Map<string, string>();
  const fatal = /fatal: (.*)/.exec(r.stderr);
  if (fatal) out.fatal = fatal[1];
  for (const line of r.stdout.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) out.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return out;
}

/**
 * `postern map -q - SPEC` with the keys on stdin → key → value. As postmap, it stops at the first
 * key whose lookup fails (a fatal error on stderr): `fatal` says so.
 */
export function posternMapQuery(spec: string, keys: string[], extra: string[] = []): Answers {
  return parseAnswers(spawnSync(POSTERN, ['map', ...extra, '-q', '-', spec], { input: keys.join('\n') + '\n', encoding: 'utf8' }), 'postern map');
}

/** Real Postfix `postmap -c DIR -q - SPEC`, the same shape as posternMapQuery(). */
export function postfixMapQuery(dir: string, spec: string, keys: string[]): Answers {
  return parseAnswers(spawnSync(POSTMAP, ['-c', dir, '-q', '-', spec], { input: keys.join('\n') + '\n', encoding: 'utf8' }), 'postmap');
}

/** Assert the two answers are the same: the values, and whether the run ended in a fatal error. */
export function sameAnswers(got: Answers, want: Answers, what: string): void {
  assert.deepEqual([...got].sort(), [...want].sort(), `${what}: values`);
  assert.equal(!!got.fatal, !!want.fatal, `${what}: postern fatal=${got.fatal ?? 'none'}, postmap fatal=${want.fatal ?? 'none'}`);
}

/** The private database a table test runs against (MariaDbServer or PgServer). */
export interface SqlTestServer { port: number; pause(): void; resume(): void }

/**
 * The tests every SQL table type passes the same way, registered for `type`: `server()` is the
 * running database, `aliasRows()` counts the alias table, `cf()` writes a map file that reaches it.
 */
export function sqlTableBehaviourTests(o: {
  type: 'mysql' | 'pgsql';
  skip: string | undefined;
  server: () => SqlTestServer;
  aliasRows: () => Promise<number>;
  cf: (dir: string, file: string, body: string, host?: string) => string;
  aliasCf: string;
}): void {
  const { type, skip, cf } = o;
  test(`${type}: hostile keys are data, never SQL`, { skip }, async (t) => {
    const dir = tempDir(t);
    const d = await dictOpen(`${type}:${cf(dir, 'a.cf', o.aliasCf)}`);
    t.after(() => d.close());
    for (const k of HOSTILE_KEYS) {
      const v = await d.lookup(k);
      if (k === "o'brien@example.com") assert.equal(v, 'quoted@example.com');
      else if (!['info@example.com', 'sales@example.com', 'INFO@Example.com', '@example.org', 'utf8-ü@example.com'].includes(k)) {
        assert.equal(v, undefined, `key ${JSON.stringify(k)}`);
      }
    }
    // NUL cannot be sent; it is simply not found.
    assert.equal(await d.lookup('info@example.com\0x'), undefined);
    // The table is still intact.
    assert.equal(await o.aliasRows(), ALIAS_ROWS);
  });

  test(`${type}: failover to the next host; all hosts down is a temporary error, never "not found"`, { skip }, async (t) => {
    const dir = tempDir(t);
    const dead = await freePort();
    const warnings: string[] = [];
    const d = await dictOpen(`${type}:${cf(dir, 'f.cf', o.aliasCf, `127.0.0.1:${dead}, 127.0.0.1:${o.server().port}`)}`, { warn: (m) => warnings.push(m) });
    for (let i = 0; i < 5; i++) assert.equal(await d.lookup('sales@example.com'), 'jane@example.com');
    await d.close();

    const gone = await dictOpen(`${type}:${cf(dir, 'g.cf', o.aliasCf, `127.0.0.1:${dead}`)}`, { warn: (m) => warnings.push(m) });
    await assert.rejects(gone.lookup('sales@example.com'), (e: unknown) => e instanceof DictError && e.kind === 'retry'
      && !/ECONNREFUSED|connect/i.test(e.message));
    await gone.close();
    assert.ok(warnings.some((w) => /ECONNREFUSED/.test(w)), 'the reason is logged');
  });

  test(`${type}: a database that hangs times out (temporary error) and the table recovers`, { skip }, async (t) => {
    const dir = tempDir(t);
    const d = await dictOpen(`${type}:${cf(dir, 'h.cf', o.aliasCf + 'timeout = 1\nretry_interval = 1\n')}`, { warn: () => {} });
    t.after(() => d.close());
    assert.equal(await d.lookup('sales@example.com'), 'jane@example.com');
    o.server().pause();
    try {
      const started = Date.now();
      await assert.rejects(d.lookup('info@example.com'), (e: unknown) => e instanceof DictError && e.kind === 'retry');
      assert.ok(Date.now() - started < 15_000);
    } finally {
      o.server().resume();
    }
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(await d.lookup('info@example.com'), 'joe@example.com,ann@example.com');
  });

  test(`${type}: 10,000 concurrent lookups through one table, none lost`, { skip }, async (t) => {
    const dir = tempDir(t);
    const d = await dictOpen(`${type}:${cf(dir, 'c.cf', o.aliasCf)}`);
    t.after(() => d.close());
    const keys = Array.from({ length: 10_000 }, (_, i) => (i % 3 === 0 ? 'sales@example.com' : `nobody${i}@example.com`));
    const results = await Promise.all(keys.map((k) => d.lookup(k)));
    results.forEach((v, i) => assert.equal(v, i % 3 === 0 ? 'jane@example.com' : undefined));
  });

  test(`${type}: configuration errors name the file`, { skip }, async (t) => {
    const dir = tempDir(t);
    const bad = join(dir, 'bad.cf');
    writeFileSync(bad, `hosts = 127.0.0.1:${o.server().port}\nquery = SELECT x WHERE y='%z'\ndbname = mail\n`);
    await assert.rejects(dictOpen(`${type}:${bad}`), (e: unknown) => e instanceof DictError && e.kind === 'config' && e.message.includes(bad));
    writeFileSync(bad, `hosts = 127.0.0.1:${o.server().port}\nquery = SELECT 1\ndbname = mail\ndomain = hash:/etc/postfix/domains\n`);
    await assert.rejects(dictOpen(`${type}:${bad}`), /only domain names .* are supported/);
    const r = spawnSync(POSTERN, ['map', '-q', 'x', `${type}:${join(dir, 'missing.cf')}`], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /missing\.cf/);
  });
}
