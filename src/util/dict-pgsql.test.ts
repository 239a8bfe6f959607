/**
 * pgsql: tables against a private PostgreSQL: Postfix's own pgsql_table(5) files answered the
 * same by `postern map -q` as by real `postmap -q` (postfix-pgsql), hostile keys, failover, a
 * database that hangs or is gone (temporary error, never "not found"), 10,000 concurrent lookups.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PgServer } from '../../test/harness/pg-server.ts';
import { HAVE_POSTMAP, tempDir } from '../../test/harness/dict-testkit.ts';
import { HOSTILE_KEYS, SCHEMA_ROWS, SQL_MAP_FILES, postfixMapQuery, posternMapQuery, sameAnswers, sqlTableBehaviourTests } from '../../test/harness/sql-table-kit.ts';

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
  ...SQL_MAP_FILES,
  'labels.cf': "query = SELECT '%1.%2' WHERE '%3' <> ''\n",
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

sqlTableBehaviourTests({ type: 'pgsql', skip, server: () => pg, aliasRows: async () => Number((await pg.sql('SELECT count(*) AS n FROM alias'))[0]!.n), cf, aliasCf: FILES['alias.cf']! });
