/**
 * ENVELOPE address parsing compared with real Dovecot 2.3.19 on a list of broken and unusual
 * address headers (goldens in testdata/golden/addresses.txt; UPDATE_GOLDEN=1 rewrites them, and
 * when Dovecot is installed a test checks they still hold).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMime } from './mail-mime.ts';
import { imapMessageEnvelope } from '../lib-imap/imap-bodystructure.ts';
import { dovecotAvailable, runDovecotSession } from '../../test/harness/dovecot-oracle.ts';

const GOLDEN = join(import.meta.dirname, 'testdata', 'golden', 'addresses.txt');
const HEADERS = [
  'Name <broken', 'Name <a@b', '<>', 'a@b c@d', '"x" <@r:a@b>, <@bad a@b>', '@', 'a@', ';', 'G: ;', 'G: a@b',
  'x (comment) <a@b>', 'a@b (c1) (c2)', 'A . B <a@b>', '"a\\"b" <x@y>', 'a@b,,c@d', ', a@b', 'a@b,', '(only comment)',
  'a@b.', '"unterminated <a@b>', 'Jörg <j@x>', 'a@[1.2.3.4]', 'a@b (nested (comment))', 'a.b.c@d.e.f', '<a@b> trailing',
  'g1: a@b;, g2: ;', 'Dan ,the, Man <d@x>', '=?utf-8?q?J=C3=B6rg?= <j@x>', '"" <a@b>', 'a @ b', 'a@b; c@d',
];

function msgFor(h: string): Buffer {
  return Buffer.from(`To: ${h}\r\nSubject: t\r\n\r\nb\r\n`);
}

function dovecotEnvelopes(): string[] {
  const out = runDovecotSession(HEADERS.map(msgFor), ['FETCH 1:* (ENVELOPE)']).toString('latin1');
  const res: string[] = [];
  const re = /\* (\d+) FETCH \(ENVELOPE ([\s\S]*?)\)\r\n(?=\* \d+ FETCH|t1 )/g;
  for (let m = re.exec(out); m; m = re.exec(out)) res[Number(m[1]) - 1] = m[2]!;
  return res;
}

if (process.env.UPDATE_GOLDEN === '1' && dovecotAvailable()) {
  const env = dovecotEnvelopes();
  writeFileSync(GOLDEN, HEADERS.map((h, i) => JSON.stringify([h, env[i]])).join('\n') + '\n');
}

const golden = new Map(readFileSync(GOLDEN, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as [string, string]));

for (const h of HEADERS) {
  test(`ENVELOPE for To: ${h}`, () => {
    assert.ok(golden.has(h), 'golden recorded (UPDATE_GOLDEN=1)');
    assert.equal(imapMessageEnvelope(parseMime(msgFor(h))).toString('latin1'), golden.get(h));
  });
}

test('stored address goldens still equal the installed Dovecot answers', { skip: !dovecotAvailable() }, () => {
  const env = dovecotEnvelopes();
  HEADERS.forEach((h, i) => assert.equal(env[i], golden.get(h), h));
});
