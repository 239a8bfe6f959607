/**
 * mysql: tables against a private MariaDB: Postfix's own mysql_table(5) files answered the
 * same by `postern map -q` as by real `postmap -q` (postfix-mysql), hostile keys, failover, a
 * database that hangs or is gone (temporary error, never "not found"), 10,000 concurrent lookups.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MariaDbServer } from '../../test/harness/mariadb-server.ts';
import { HAVE_POSTMAP, tempDir } from '../../test/harness/dict-testkit.ts';
import { HOSTILE_KEYS, SCHEMA_ROWS, SQL_MAP_FILES, postfixMapQuery, posternMapQuery, sameAnswers, sqlTableBehaviourTests } from '../../test/harness/sql-table-kit.ts';

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
  ...SQL_MAP_FILES,
  'labels.cf': "query = SELECT '%1.%2' FROM DUAL WHERE '%3' <> ''\n",
  'binary.cf': "query = SELECT goto FROM alias WHERE BINARY address='%s'\n",
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

sqlTableBehaviourTests({ type: 'mysql', skip, server: () => db, aliasRows: async () => Number((await db.sql('SELECT count(*) AS n FROM alias') as { n: number }[])[0]!.n), cf, aliasCf: FILES['alias.cf']! });
