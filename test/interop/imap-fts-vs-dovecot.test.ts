/**
 * Full-text search (issue 19 item 4, docs/fts.md) against real Dovecot 2.3 without an FTS
 * plugin: the same corpus (test/harness/fts-corpus.ts: base64, quoted-printable, charsets,
 * RFC 2047 headers, attachments, embedded messages, split words, case, non-ASCII) APPENDed on
 * both, then SEARCH TEXT and BODY for every needle; Postern answers from its index (the file
 * `postern-fts` exists after the first search) and must answer exactly as Dovecot's scan.
 * Then the index is kept through APPEND, COPY and EXPUNGE, and deleted, truncated and replaced
 * by garbage between searches; a 1 MB search string is answered as Dovecot answers it while
 * another session is served.
 * Skipped, with the reason, when real Dovecot cannot run (needs root and dovecot-imapd).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, truncateSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { Differential, differences, normalise, runSteps, type Step } from '../harness/imap-differential.ts';
import { startFixture, type Fixture } from '../harness/imapd-testkit.ts';
import { ftsCorpus, NEEDLES } from '../harness/fts-corpus.ts';
import { NAMESPACE_CONF } from '../harness/imap-differential.ts';

const skip = RealDovecot.unavailable() ?? false;
let d: Differential;
/** Postern without its index (`plugin { postern_fts = no }`): the plain scan. */
let scan: Fixture;

before(async () => {
  if (skip) return;
  d = await Differential.start(['f1@x.test', 'f2@x.test', 'f3@x.test']);
  scan = await startFixture({ users: [['f1@x.test', 'pw']], settings: { ftsIndex: false }, conf: NAMESPACE_CONF });
});
after(async () => { await scan?.stop(); await d?.stop(); });

/**
 * Where Postern's scan itself differs from Dovecot 2.3 (not the index: the same answers come
 * with and without it, asserted below); left to the SEARCH conformance work of issue 19 item 1.
 */
const SCAN_DIFFERS = /"finance"|tab\there|only\nlines|"unknown cte"|TEXT "a"$|line\r\nsplit/;

/** An IMAP string for a needle: quoted when it can be, else a non-synchronising literal. */
function astr(n: string): string | Buffer {
  if (/^[\x20-\x7e]*$/.test(n) && !/["\\]/.test(n)) return `"${n}"`;
  return Buffer.concat([Buffer.from(`{${Buffer.byteLength(n)}+}\r\n`), Buffer.from(n)]);
}

function search(key: string, n: string): Buffer {
  const a = astr(n);
  return Buffer.concat([Buffer.from(`UID SEARCH CHARSET UTF-8 ${key} `), typeof a === 'string' ? Buffer.from(a) : a]);
}

function appendSteps(msgs: Buffer[], box = 'INBOX'): Step[] {
  return msgs.filter((m) => m.length > 0).map((m) => Buffer.concat([Buffer.from(`APPEND ${box} {${m.length}+}\r\n`), m]));
}

test('SEARCH TEXT/BODY from the index answers as Dovecot 2.3 scans, on every needle', { skip }, async () => {
  const steps: Step[] = [...appendSteps(ftsCorpus()), 'SELECT INBOX'];
  for (const n of NEEDLES) steps.push(search('TEXT', n), search('BODY', n), search('NOT BODY', n));
  steps.push(search('OR BODY zebra TEXT', 'attached'), 'UID SEARCH TEXT "subject: caf" BODY "report"');
  // a set and BODY/TEXT keys under NOT and OR beside ANDed ones (the index narrows the latter first)
  steps.push('UID SEARCH UID 10:40 TEXT report', 'SEARCH 5:* BODY caf', 'UID SEARCH OR TEXT zebra NOT BODY caf',
    'UID SEARCH TEXT caf NOT TEXT zebra', 'UID SEARCH TEXT report OR BODY inner BODY html', 'UID SEARCH NOT NOT TEXT attached');
  const a = await d.run('f1@x.test', steps);
  assert.ok(existsSync(join(d.maildirs('f1@x.test').postern, 'postern-fts')), 'the search made the index');
  const plain = (await runSteps(scan.port, 'f1@x.test', steps)).map((x) => normalise(x));
  assert.ok(!existsSync(join(scan.maildir('f1@x.test'), 'postern-fts')), 'no index when turned off');
  for (let i = 0; i < steps.length; i++) assert.equal(a.postern[i], plain[i], `with and without the index: ${steps[i]!.toString().slice(0, 80)}`);
  assert.deepEqual(differences(steps, a, (i) => SCAN_DIFFERS.test(steps[i]!.toString())), []);
});

test('the index follows APPEND, COPY and EXPUNGE, and survives being deleted, truncated or garbage', { skip }, async () => {
  const user = 'f2@x.test';
  const maildir = (): string => d.maildirs(user).postern;
  const idx = (): string => join(maildir(), 'postern-fts');
  const q = ['UID SEARCH TEXT walrus', 'UID SEARCH BODY "rare words"', 'UID SEARCH TEXT tapir'];
  const msg = (i: number, w: string) => `From: a@b.test\r\nSubject: m${i}\r\n\r\nbody ${i} ${w}\r\n`;
  const base = appendSteps(Array.from({ length: 30 }, (_, i) => Buffer.from(msg(i, i % 7 === 0 ? 'rare words walrus' : 'common'))));
  // the Postern side step by step, between which the index file is spoilt
  const stepsA: Step[] = [...base, 'CREATE Other', 'SELECT Other', 'UID SEARCH TEXT walrus', 'SELECT INBOX', ...q];
  const a1 = await d.run(user, stepsA);
  assert.deepEqual(differences(stepsA, a1), []);
  const size0 = statSync(idx()).size;
  const stepsB: Step[] = [
    ...appendSteps([Buffer.from(msg(100, 'tapir in an appended one'))]),
    'SELECT INBOX', ...Array.from({ length: 10 }, (_, i) => `UID COPY ${i + 1} Other`), 'UID STORE 8 +FLAGS (\\Deleted)', 'EXPUNGE', ...q,
    'SELECT Other', ...q, 'UID SEARCH BODY walrus',
  ];
  const otherIdx = join(maildir(), '.Other', 'postern-fts');
  const otherSize0 = statSync(otherIdx).size;
  const a2 = await d.run(user, stepsB);
  assert.deepEqual(differences(stepsB, a2), []);
  assert.ok(statSync(idx()).size > size0, 'APPEND added to the index');
  // COPY put the source's signatures in the target's index, before the search there
  assert.ok(statSync(otherIdx).size >= otherSize0, 'COPY added to the target index');
  const untagged = (xs: string[]): string[] => xs.map((x) => x.replace(/^t\d+ /m, ''));
  const expect = untagged(a2.postern.slice(-4));
  const again: Step[] = ['SELECT Other', ...q, 'UID SEARCH BODY walrus'];
  for (const spoil of [() => rmSync(otherIdx), () => truncateSync(otherIdx, statSync(otherIdx).size - 3), () => writeFileSync(otherIdx, 'garbage'), () => {
    const b = readFileSync(otherIdx); b[40] = (b[40]! ^ 0x55); writeFileSync(otherIdx, b);
  }]) {
    spoil();
    const r = await d.run(user, again);
    assert.deepEqual(untagged(r.postern.slice(1)), expect, `after ${spoil.toString()}`);
    assert.deepEqual(r.postern.slice(1), r.dovecot.slice(1));
    assert.ok(statSync(otherIdx).size > 16, 'rebuilt');
  }
});

test('a 1 MB search string: answered as Dovecot answers it, and another session is served', { skip }, async () => {
  const big = 'y'.repeat(1 << 20);
  const steps: Step[] = [
    ...appendSteps([Buffer.from('Subject: s\r\n\r\nyyyy\r\n')]), 'SELECT INBOX',
    Buffer.from(`UID SEARCH TEXT {${big.length}+}\r\n${big}`),
    [2, 'SELECT INBOX'], [2, 'UID SEARCH BODY yyy'],
    Buffer.from(`UID SEARCH BODY {${big.length}}\r\n${big}`), 'NOOP',
  ];
  const a = await d.run('f3@x.test', steps);
  assert.deepEqual(differences(steps, a), []);
});
