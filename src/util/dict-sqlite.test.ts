import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { dictOpen } from './dict-registry.ts';
import { DictError } from './dict.ts';
import { expandTemplate } from './dict-sqlite.ts';
import { HAVE_POSTMAP, postfixQuery, posternQuery, tempDir } from '../../test/harness/dict-testkit.ts';

function makeDb(dir: string): string {
  const path = join(dir, 'mail.sqlite');
  const db = new DatabaseSync(path);
  db.exec(`CREATE TABLE alias (address TEXT, goto TEXT, active INTEGER);
    INSERT INTO alias VALUES ('info@example.com', 'joe@example.com', 1), ('info@example.com', 'ann@example.com', 1),
      ('sales@example.com', 'jane@example.com', 1), ('old@example.com', 'gone@example.com', 0),
      ('o''brien@example.com', 'quoted@example.com', 1), ('@example.org', 'catchall@example.org', 1),
      ('null@example.com', NULL, 1);
    CREATE TABLE mailbox (username TEXT, domain TEXT, local_part TEXT);
    INSERT INTO mailbox VALUES ('joe@example.com', 'example.com', 'joe');`);
  db.close();
  return path;
}

const KEYS = ['info@example.com', 'INFO@Example.com', 'sales@example.com', 'old@example.com', "o'brien@example.com",
  '@example.org', 'null@example.com', 'joe@example.com', 'nobody@example.com', 'example.com', "x' OR '1'='1"];

test('sqlite: query escapes, quoting, multiple rows, result_format, domain', async (t) => {
  const dir = tempDir(t);
  const db = makeDb(dir);
  const cf1 = join(dir, 'alias.cf');
  writeFileSync(cf1, `# aliases\ndbpath = ${db}\nquery = SELECT goto FROM alias\n  WHERE address='%s' AND active = 1\n`);
  const { answers } = await posternQuery(`sqlite:${cf1}`, KEYS);
  assert.equal(answers.get('info@example.com'), 'joe@example.com,ann@example.com');
  assert.equal(answers.get('INFO@Example.com'), 'joe@example.com,ann@example.com');
  assert.equal(answers.get("o'brien@example.com"), 'quoted@example.com');
  assert.equal(answers.has('old@example.com'), false);
  assert.equal(answers.has('null@example.com'), false);
  assert.equal(answers.has("x' OR '1'='1"), false, 'the key is SQL-quoted');

  const cf2 = join(dir, 'mailbox.cf');
  writeFileSync(cf2, `dbpath = ${db}\nquery = SELECT local_part FROM mailbox WHERE local_part='%u' AND domain='%d'\nresult_format = %D/%s/\ndomain = example.com\n`);
  const m = await posternQuery(`sqlite:${cf2}`, KEYS);
  assert.deepEqual([...m.answers], [['joe@example.com', 'example.com/joe/']]);
});

test('sqlite: expansion_limit, bad query and missing database are errors, not "not found"', async (t) => {
  const dir = tempDir(t);
  const db = makeDb(dir);
  const cf = join(dir, 'a.cf');
  writeFileSync(cf, `dbpath = ${db}\nquery = SELECT goto FROM alias WHERE address='%s'\nexpansion_limit = 1\n`);
  const d = await dictOpen(`sqlite:${cf}`);
  await assert.rejects(d.lookup('info@example.com'), (e: unknown) => e instanceof DictError && e.kind === 'retry');
  assert.equal(await d.lookup('sales@example.com'), 'jane@example.com');
  await d.close();
  writeFileSync(cf, `dbpath = ${db}\nquery = SELECT nosuchcolumn FROM alias WHERE address='%s'\n`);
  const bad = await dictOpen(`sqlite:${cf}`);
  await assert.rejects(bad.lookup('x'), (e: unknown) => e instanceof DictError && e.kind === 'config' && e.message.includes(cf));
  writeFileSync(cf, `dbpath = ${db}\nquery = SELECT goto FROM alias WHERE address='%x'\n`);
  await assert.rejects(dictOpen(`sqlite:${cf}`), /unknown escape "%x"/);
  writeFileSync(cf, `dbpath = ${join(dir, 'none.sqlite')}\nquery = SELECT 1\n`);
  await assert.rejects(dictOpen(`sqlite:${cf}`), /open database/);
  await assert.rejects(dictOpen(`sqlite:${join(dir, 'missing.cf')}`), /No such file or directory/);
});

test('sqlite: %d and %[1-9] suppress the query when the key has no such part', () => {
  const q = (s: string) => s;
  assert.equal(expandTemplate("x='%d'", 'user', undefined, q), undefined);
  assert.equal(expandTemplate("x='%u'", '@example.com', undefined, q), undefined);
  assert.equal(expandTemplate('%1.%2 %u', 'a@mail.example.com', undefined, q), 'com.example a');
  assert.equal(expandTemplate('%4', 'a@mail.example.com', undefined, q), undefined);
  assert.equal(expandTemplate('100%%', 'a', undefined, q), '100%');
});

test('sqlite: same answers as real postmap (postfix-sqlite)', { skip: !HAVE_POSTMAP && 'postmap not installed' }, async (t) => {
  const dir = tempDir(t);
  const db = makeDb(dir);
  const cf1 = join(dir, 'alias.cf');
  writeFileSync(cf1, `dbpath = ${db}\nquery = SELECT goto FROM alias WHERE address='%s' AND active = 1\n`);
  const cf2 = join(dir, 'mailbox.cf');
  writeFileSync(cf2, `dbpath = ${db}\nquery = SELECT local_part FROM mailbox WHERE local_part='%u' AND domain='%d'\nresult_format = %D/%s/\ndomain = example.com\n`);
  const cf3 = join(dir, 'domain.cf');
  writeFileSync(cf3, `dbpath = ${db}\nquery = SELECT '%2' || '|' || '%1' || '|' || '%U' FROM mailbox LIMIT 1\n`);
  for (const cf of [cf1, cf2, cf3]) {
    assert.deepEqual((await posternQuery(`sqlite:${cf}`, KEYS)).answers, postfixQuery(dir, `sqlite:${cf}`, KEYS), cf);
  }
});
