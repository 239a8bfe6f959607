/**
 * pgsql: tables against a private PostgreSQL: Postfix's own pgsql_table(5) files answered the
 * same by `postern map -q` as by real `postmap -q` (postfix-pgsql), hostile keys, failover, a
 * database that hangs or is gone (temporary error, never "not found"), 10,000 concurrent lookups.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dictOpen } from './dict-registry.ts';
import { DictError } from './dict.ts';
import { PgServer } from '../../test/harness/pg-server.ts';
import { freePort } from '../../test/harness/free-port.ts';
import { HAVE_POSTMAP, tempDir } from '../../test/harness/dict-testkit.ts';
import { ALIAS_ROWS, HOSTILE_KEYS, SCHEMA_ROWS, postfixMapQuery, posternMapQuery, sameAnswers } from '../../test/harness/sql-table-kit.ts';

const skip = PgServer.unavailable();
let pg: PgServer;

before(async () => {
  if (skip) return;
  pg = await PgServer.start();
  await pg.sql(`CREATE TABLE alias (address TEXT, goto TEXT, active BOOLEAN);
    CREATE TABLE mailbox (username TEXT PRIMARY KEY, domain TEXT, local_part TEXT, maildir TEXT, active BOOLEAN, quota BIGINT);
    CREATE TABLE domain (domain TEXT PRIMARY KEY, active BOOLEAN);
    CREATE USER postfix PASSWORD 'pfpass';
    GRANT SELECT ON alias, mailbox, domain TO postfix;
    ${SCHEMA_ROWS}`);
});
after(async () => { await pg?.stop(); });

function cf(dir: string, file: string, body: string, host = `127.0.0.1:${pg.port}`): string {
  const path = join(dir, file);
  writeFileSync(path, `hosts = ${host}\nuser = postfix\npassword = pfpass\ndbname = mail\nencoding = UTF8\n${body}`);
  return path;
}

const FILES: Record<string, string> = {
  'alias.cf': "query = SELECT goto FROM alias WHERE address='%s' AND active = '1'\n",
  'mailbox.cf': "query = SELECT maildir FROM mailbox WHERE username='%s' AND active = '1'\n",
  'domains.cf': "query = SELECT domain FROM domain WHERE domain='%s' AND active = '1'\n",
  'parts.cf': "query = SELECT local_part, domain FROM mailbox WHERE local_part='%u' AND domain='%d'\nresult_format = %d/%u/ <%S> %U@%D %1\n",
  'labels.cf': "query = SELECT '%1.%2' WHERE '%3' <> ''\n",
  'domainlist.cf': "query = SELECT goto FROM alias WHERE address='%s'\ndomain = example.com, !example.net\n",
  // LIKE: the key's % and _ are wildcards, in Postfix too (it escapes quotes, not patterns).
  'like.cf': "query = SELECT goto FROM alias WHERE address LIKE '%s' AND address NOT LIKE 'utf8%%'\n",
  'old.cf': "table = alias\nselect_field = goto\nwhere_field = address\nadditional_conditions = AND active = '1'\n",
  'limit.cf': "query = SELECT goto FROM alias WHERE address='%s'\nexpansion_limit = 1\n",
  'quota.cf': "query = SELECT quota FROM mailbox WHERE username='%s'\n",
};

test('pgsql: postern map -q answers as real postmap -q (postfix-pgsql) for Postfix map files', { skip: skip ?? (!HAVE_POSTMAP && 'postmap missing') }, async (t) => {
  const dir = tempDir(t);
  for (const [file, body] of Object.entries(FILES)) {
    const spec = `pgsql:${cf(dir, file, body)}`;
    // Postfix before 3.8 always talks LATIN1 to PostgreSQL (no `encoding`): compare ASCII keys.
    const keys = HOSTILE_KEYS.filter((k) => /^[\x20-\x7e]*$/.test(k));
    sameAnswers(posternMapQuery(spec, keys), postfixMapQuery(dir, spec, keys), `${file}: postern map -q - vs postmap -q -`);
  }
  // The same table through the unix socket, named by a connection URI (a unix: host has no port).
  const uri = `postgresql://postfix:pfpass@${encodeURIComponent(pg.socketDir)}:${pg.port}/mail`;
  const spec = `pgsql:${cf(dir, 'sock.cf', FILES['alias.cf']!, uri)}`;
  assert.deepEqual(posternMapQuery(spec, ['info@example.com']).get('info@example.com'), 'joe@example.com,ann@example.com');
});

test('pgsql: hostile keys are data, never SQL', { skip }, async (t) => {
  const dir = tempDir(t);
  const d = await dictOpen(`pgsql:${cf(dir, 'a.cf', FILES['alias.cf']!)}`);
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
  assert.equal(Number((await pg.sql('SELECT count(*) AS n FROM alias'))[0]!.n), ALIAS_ROWS);
});

test('pgsql: failover to the next host; all hosts down is a temporary error, never "not found"', { skip }, async (t) => {
  const dir = tempDir(t);
  const dead = await freePort();
  const warnings: string[] = [];
  const d = await dictOpen(`pgsql:${cf(dir, 'f.cf', FILES['alias.cf']!, `127.0.0.1:${dead}, 127.0.0.1:${pg.port}`)}`, { warn: (m) => warnings.push(m) });
  for (let i = 0; i < 5; i++) assert.equal(await d.lookup('sales@example.com'), 'jane@example.com');
  await d.close();

  const gone = await dictOpen(`pgsql:${cf(dir, 'g.cf', FILES['alias.cf']!, `127.0.0.1:${dead}`)}`, { warn: (m) => warnings.push(m) });
  await assert.rejects(gone.lookup('sales@example.com'), (e: unknown) => e instanceof DictError && e.kind === 'retry'
    && !/ECONNREFUSED|connect/i.test(e.message));
  await gone.close();
  assert.ok(warnings.some((w) => /ECONNREFUSED/.test(w)), 'the reason is logged');
});

test('pgsql: a database that hangs times out (temporary error) and the table recovers', { skip }, async (t) => {
  const dir = tempDir(t);
  const d = await dictOpen(`pgsql:${cf(dir, 'h.cf', FILES['alias.cf']! + 'timeout = 1\nretry_interval = 1\n')}`, { warn: () => {} });
  t.after(() => d.close());
  assert.equal(await d.lookup('sales@example.com'), 'jane@example.com');
  pg.pause();
  try {
    const started = Date.now();
    await assert.rejects(d.lookup('info@example.com'), (e: unknown) => e instanceof DictError && e.kind === 'retry');
    assert.ok(Date.now() - started < 15_000);
  } finally {
    pg.resume();
  }
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await d.lookup('info@example.com'), 'joe@example.com,ann@example.com');
});

test('pgsql: 10,000 concurrent lookups through one table, none lost', { skip }, async (t) => {
  const dir = tempDir(t);
  const d = await dictOpen(`pgsql:${cf(dir, 'c.cf', FILES['alias.cf']!)}`);
  t.after(() => d.close());
  const keys = Array.from({ length: 10_000 }, (_, i) => (i % 3 === 0 ? 'sales@example.com' : `nobody${i}@example.com`));
  const results = await Promise.all(keys.map((k) => d.lookup(k)));
  results.forEach((v, i) => assert.equal(v, i % 3 === 0 ? 'jane@example.com' : undefined));
});

test('pgsql: configuration errors name the file', { skip }, async (t) => {
  const dir = tempDir(t);
  const bad = join(dir, 'bad.cf');
  writeFileSync(bad, `hosts = 127.0.0.1:${pg.port}\nquery = SELECT x WHERE y='%z'\ndbname = mail\n`);
  await assert.rejects(dictOpen(`pgsql:${bad}`), (e: unknown) => e instanceof DictError && e.kind === 'config' && e.message.includes(bad));
  writeFileSync(bad, `hosts = 127.0.0.1:${pg.port}\nquery = SELECT 1\ndbname = mail\ndomain = hash:/etc/postfix/domains\n`);
  await assert.rejects(dictOpen(`pgsql:${bad}`), /only domain names .* are supported/);
  const r = spawnSync(join(import.meta.dirname, '../../bin/postern'), ['map', '-q', 'x', `pgsql:${join(dir, 'missing.cf')}`], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /missing\.cf/);
});
