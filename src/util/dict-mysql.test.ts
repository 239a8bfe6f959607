/**
 * mysql: tables against a private MariaDB: Postfix's own mysql_table(5) files answered the
 * same by `postern map -q` as by real `postmap -q` (postfix-mysql), hostile keys, failover, a
 * database that hangs or is gone (temporary error, never "not found"), 10,000 concurrent lookups.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dictOpen } from './dict-registry.ts';
import { DictError } from './dict.ts';
import { MariaDbServer } from '../../test/harness/mariadb-server.ts';
import { freePort } from '../../test/harness/free-port.ts';
import { HAVE_POSTMAP, tempDir } from '../../test/harness/dict-testkit.ts';
import { ALIAS_ROWS, HOSTILE_KEYS, SCHEMA_ROWS, postfixMapQuery, posternMapQuery, sameAnswers } from '../../test/harness/sql-table-kit.ts';

const skip = MariaDbServer.unavailable();
let db: MariaDbServer;

before(async () => {
  if (skip) return;
  db = await MariaDbServer.start();
  await db.sql(`CREATE TABLE alias (address VARCHAR(255), goto VARCHAR(255), active BOOLEAN);
    CREATE TABLE mailbox (username VARCHAR(255) PRIMARY KEY, domain VARCHAR(255), local_part VARCHAR(255), maildir VARCHAR(255), active BOOLEAN, quota BIGINT);
    CREATE TABLE domain (domain VARCHAR(255) PRIMARY KEY, active BOOLEAN);
    CREATE USER postfix@'127.0.0.1' IDENTIFIED BY 'pfpass';
    GRANT SELECT ON mail.* TO postfix@'127.0.0.1';
    CREATE USER postfix@localhost IDENTIFIED BY 'pfpass';
    GRANT SELECT ON mail.* TO postfix@localhost;
    ${SCHEMA_ROWS}`);
});
after(async () => { await db?.stop(); });

function cf(dir: string, file: string, body: string, host = `127.0.0.1:${db.port}`): string {
  const path = join(dir, file);
  writeFileSync(path, `hosts = ${host}\nuser = postfix\npassword = pfpass\ndbname = mail\n${body}`);
  return path;
}

const FILES: Record<string, string> = {
  'alias.cf': "query = SELECT goto FROM alias WHERE address='%s' AND active = '1'\n",
  'mailbox.cf': "query = SELECT maildir FROM mailbox WHERE username='%s' AND active = '1'\n",
  'domains.cf': "query = SELECT domain FROM domain WHERE domain='%s' AND active = '1'\n",
  'parts.cf': "query = SELECT local_part, domain FROM mailbox WHERE local_part='%u' AND domain='%d'\nresult_format = %d/%u/ <%S> %U@%D %1\n",
  'labels.cf': "query = SELECT '%1.%2' FROM DUAL WHERE '%3' <> ''\n",
  'domainlist.cf': "query = SELECT goto FROM alias WHERE address='%s'\ndomain = example.com, !example.net\n",
  // LIKE: the key's % and _ are wildcards, in Postfix too (it escapes quotes, not patterns).
  'like.cf': "query = SELECT goto FROM alias WHERE address LIKE '%s' AND address NOT LIKE 'utf8%%'\n",
  'old.cf': "table = alias\nselect_field = goto\nwhere_field = address\nadditional_conditions = AND active = '1'\n",
  'binary.cf': "query = SELECT goto FROM alias WHERE BINARY address='%s'\n",
  'limit.cf': "query = SELECT goto FROM alias WHERE address='%s'\nexpansion_limit = 1\n",
  'quota.cf': "query = SELECT quota FROM mailbox WHERE username='%s'\n",
};

test('mysql: postern map -q answers as real postmap -q (postfix-mysql) for Postfix map files', { skip: skip ?? (!HAVE_POSTMAP && 'postmap missing') }, async (t) => {
  const dir = tempDir(t);
  for (const [file, body] of Object.entries(FILES)) {
    const spec = `mysql:${cf(dir, file, body)}`;
    const keys = HOSTILE_KEYS;
    sameAnswers(posternMapQuery(spec, keys), postfixMapQuery(dir, spec, keys), `${file}: postern map -q - vs postmap -q -`);
  }
  // The same table through the unix socket.
  const spec = `mysql:${cf(dir, 'sock.cf', FILES['alias.cf']!, `unix:${db.socket}`)}`;
  assert.deepEqual(posternMapQuery(spec, ['info@example.com']).get('info@example.com'), 'joe@example.com,ann@example.com');
});

test('mysql: hostile keys are data, never SQL', { skip }, async (t) => {
  const dir = tempDir(t);
  const d = await dictOpen(`mysql:${cf(dir, 'a.cf', FILES['alias.cf']!)}`);
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
  assert.equal(Number((await db.sql('SELECT count(*) AS n FROM alias') as { n: number }[])[0]!.n), ALIAS_ROWS);
});

test('mysql: failover to the next host; all hosts down is a temporary error, never "not found"', { skip }, async (t) => {
  const dir = tempDir(t);
  const dead = await freePort();
  const warnings: string[] = [];
  const d = await dictOpen(`mysql:${cf(dir, 'f.cf', FILES['alias.cf']!, `127.0.0.1:${dead}, 127.0.0.1:${db.port}`)}`, { warn: (m) => warnings.push(m) });
  for (let i = 0; i < 5; i++) assert.equal(await d.lookup('sales@example.com'), 'jane@example.com');
  await d.close();

  const gone = await dictOpen(`mysql:${cf(dir, 'g.cf', FILES['alias.cf']!, `127.0.0.1:${dead}`)}`, { warn: (m) => warnings.push(m) });
  await assert.rejects(gone.lookup('sales@example.com'), (e: unknown) => e instanceof DictError && e.kind === 'retry'
    && !/ECONNREFUSED|connect/i.test(e.message));
  await gone.close();
  assert.ok(warnings.some((w) => /ECONNREFUSED/.test(w)), 'the reason is logged');
});

test('mysql: a database that hangs times out (temporary error) and the table recovers', { skip }, async (t) => {
  const dir = tempDir(t);
  const d = await dictOpen(`mysql:${cf(dir, 'h.cf', FILES['alias.cf']! + 'timeout = 1\nretry_interval = 1\n')}`, { warn: () => {} });
  t.after(() => d.close());
  assert.equal(await d.lookup('sales@example.com'), 'jane@example.com');
  db.pause();
  try {
    const started = Date.now();
    await assert.rejects(d.lookup('info@example.com'), (e: unknown) => e instanceof DictError && e.kind === 'retry');
    assert.ok(Date.now() - started < 15_000);
  } finally {
    db.resume();
  }
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await d.lookup('info@example.com'), 'joe@example.com,ann@example.com');
});

test('mysql: 10,000 concurrent lookups through one table, none lost', { skip }, async (t) => {
  const dir = tempDir(t);
  const d = await dictOpen(`mysql:${cf(dir, 'c.cf', FILES['alias.cf']!)}`);
  t.after(() => d.close());
  const keys = Array.from({ length: 10_000 }, (_, i) => (i % 3 === 0 ? 'sales@example.com' : `nobody${i}@example.com`));
  const results = await Promise.all(keys.map((k) => d.lookup(k)));
  results.forEach((v, i) => assert.equal(v, i % 3 === 0 ? 'jane@example.com' : undefined));
});

test('mysql: configuration errors name the file', { skip }, async (t) => {
  const dir = tempDir(t);
  const bad = join(dir, 'bad.cf');
  writeFileSync(bad, `hosts = 127.0.0.1:${db.port}\nquery = SELECT x WHERE y='%z'\ndbname = mail\n`);
  await assert.rejects(dictOpen(`mysql:${bad}`), (e: unknown) => e instanceof DictError && e.kind === 'config' && e.message.includes(bad));
  const r = spawnSync(join(import.meta.dirname, '../../bin/postern'), ['map', '-q', 'x', `mysql:${join(dir, 'missing.cf')}`], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /missing\.cf/);
});
