/**
 * postern sieve: `compile` reports as the real sievec (Pigeonhole, when installed) does, line
 * for line; `test` prints sieve-test's "Performed actions" / "Implicit keep" for a script and a
 * message, stores and sends nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const POSTERN = resolve(import.meta.dirname, '..', '..', 'bin', 'postern');

const dir = mkdtempSync(join(tmpdir(), 'postern-sieve-cli-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function postern(...args: string[]) {
  return spawnSync(POSTERN, ['-c', join(dir, 'conf'), ...args], { encoding: 'utf8', timeout: 30_000 });
}

test('sieve compile: good script exits 0 silently; bad one prints sievec lines and exits 1', () => {
  const good = join(dir, 'good.sieve');
  writeFileSync(good, 'require "fileinto";\nif header :contains "subject" "x" { fileinto "X"; }\n');
  const g = postern('sieve', 'compile', good);
  assert.equal(g.status, 0, g.stderr);
  assert.equal(g.stderr, '');
  const bad = join(dir, 'bad.sieve');
  writeFileSync(bad, 'require "fileinto";\nfileinto 1;\nfoo;\n');
  const b = postern('sieve', 'compile', bad);
  assert.equal(b.status, 1);
  const ours = b.stderr.split('\n').filter((l) => /line \d+: error/.test(l));
  assert.deepEqual(ours, [
    'bad: line 2: error: the fileinto command expects a string as argument 1 (folder), but a number was found.',
    "bad: line 3: error: unknown command 'foo' (only reported once at first occurrence).",
  ]);
  if (existsSync('/usr/bin/sievec')) {
    const real = spawnSync('/usr/bin/sievec', [bad], { encoding: 'utf8' });
    assert.deepEqual(real.stderr.split('\n').filter((l) => /line \d+: error/.test(l)), ours);
  }
});

test('sieve test -s: performed actions and implicit keep, nothing stored or sent', () => {
  const s = join(dir, 't.sieve');
  writeFileSync(s, 'require ["fileinto","imap4flags","vacation"];\nif header :contains "subject" "report" { fileinto :flags "\\\\Seen" "Reports"; }\nvacation "away";\n');
  const m = join(dir, 'm.eml');
  writeFileSync(m, 'From: a@b.test\nTo: me@x.test\nSubject: weekly report\n\nbody\n');
  const r = postern('sieve', 'test', '-s', s, 'me@x.test', m);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Performed actions:\n\n \* store message in folder: Reports\n {8}\+ add IMAP flags: \\seen\n \* send vacation message:/);
  assert.match(r.stdout, /Implicit keep:\n\n {2}\(none\)/);
  assert.match(r.stdout, / \* vacation from <> to <a@b\.test>/);
  const u = postern('sieve');
  assert.equal(u.status, 64);
});
