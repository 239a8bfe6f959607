/**
 * INDEXPVT (Dovecot's private \Seen for shared namespaces, docs/shared-folders.md) as a
 * differential test against real Dovecot 2.3 with its acl and imap_acl plugins: A shares Foo
 * with B; B's \Seen stays B's (A's view is unchanged, and A's \Seen is not B's), other flags are
 * shared; STATUS UNSEEN and SELECT's UNSEEN follow the reader's own \Seen; STORE FLAGS (replace)
 * by B leaves the owner's \Seen alone. Every answer compared after the harness's normalisation.
 * Skipped, with the reason, when real Dovecot cannot run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { Differential, differences, type Step } from '../harness/imap-differential.ts';
import { connectImap } from '../harness/imapd-testkit.ts';

const lit = (m: string): string => `{${Buffer.byteLength(m)}+}\r\n${m}`;
const skip = RealDovecot.unavailable() ?? false;
const dictDir = skip ? '' : mkdtempSync(join(tmpdir(), 'postern-pvt-dict-'));
if (!skip) chmodSync(dictDir, 0o777);

const conf = (dict: string): string => `
mail_plugins = $mail_plugins acl
protocol imap {
  mail_plugins = $mail_plugins imap_acl
}
namespace shared {
  type = shared
  separator = /
  prefix = shared/%%u/
  location = maildir:%%h:INDEXPVT=~/shared/%%u
  subscriptions = no
  list = children
}
plugin {
  acl = vfile
  acl_shared_dict = file:${join(dictDir, dict)}
}
`;

let d: Differential;
before(async () => {
  if (skip) return;
  d = await Differential.start(['a@x.test', 'b@x.test'], { dovecotConf: conf('dovecot.db'), posternConf: conf('postern.db') });
});
after(async () => {
  if (d) await d.stop();
  if (dictDir) rmSync(dictDir, { recursive: true, force: true });
});

test('INDEXPVT: B\'s \\Seen on A\'s shared folder does not change A\'s view, on both servers', { skip, timeout: 60_000 }, async () => {
  const steps: [string, Step[]][] = [
    ['a@x.test', ['CREATE Foo', `APPEND Foo ${lit('Subject: one\r\n\r\n1\r\n')}`, `APPEND Foo ${lit('Subject: two\r\n\r\n2\r\n')}`,
      `APPEND Foo (\\Seen) ${lit('Subject: three\r\n\r\n3\r\n')}`, 'SETACL Foo b@x.test lrsw']],
    ['b@x.test', ['SELECT shared/a@x.test/Foo', 'FETCH 1:* (FLAGS)', 'STORE 1 +FLAGS (\\Seen)', 'FETCH 1:* (FLAGS)',
      'FETCH 2 (BODY[TEXT])', 'SEARCH SEEN', 'SEARCH UNSEEN', [2, 'STATUS shared/a@x.test/Foo (MESSAGES UNSEEN)']]],
    ['a@x.test', ['SELECT Foo', 'FETCH 1:* (FLAGS)', 'STORE 3 -FLAGS (\\Seen)', 'STORE 1 +FLAGS (\\Seen)', 'STATUS Foo (UNSEEN)']],
    ['b@x.test', ['STATUS shared/a@x.test/Foo (MESSAGES UNSEEN)', 'SELECT shared/a@x.test/Foo', 'FETCH 1:* (FLAGS)',
      'STORE 1 FLAGS (\\Flagged)', 'FETCH 1:* (FLAGS)', 'STORE 3 -FLAGS (\\Seen)', 'UID STORE 2 FLAGS (\\Seen \\Answered)', 'FETCH 1:* (FLAGS)']],
    ['a@x.test', ['SELECT Foo', 'FETCH 1:* (FLAGS)', 'STATUS INBOX (UNSEEN)']],
    ['b@x.test', ['EXAMINE shared/a@x.test/Foo', 'FETCH 1:* (FLAGS)']],
  ];
  // Known difference, left alone: a STORE that changes nothing this reader sees (B's -\Seen on a
  // message only A has seen) is answered with its FETCH FLAGS by Postern, as every STORE is;
  // Dovecot's private index records no change there and sends none.
  const known = (run: number, step: number): boolean => run === 3 && step === 5;
  const diffs: string[] = [];
  for (const [n, [user, st]] of steps.entries()) {
    const a = await d.run(user, st);
    diffs.push(...differences(st, a, (j) => known(n, j)).map((x) => `${user}: ${x}`));
  }
  assert.equal(diffs.length, 0, diffs.join('\n'));
});

test('INDEXPVT hostile: a damaged or absurd private-flags file is ignored, the mailbox still works', { skip, timeout: 60_000 }, async () => {
  await d.run('a@x.test', ['CREATE Bar', `APPEND Bar ${lit('Subject: x\r\n\r\nx\r\n')}`, 'SETACL Bar b@x.test lrsw']);
  const header = readFileSync(join(d.fx.maildir('a@x.test'), '.Bar', 'dovecot-uidlist'), 'latin1').split('\n')[0]!;
  const uidv = / V(\d+)/.exec(header)?.[1];
  assert.ok(uidv, header);
  const home = join(d.fx.maildir('b@x.test'), '..');
  const dir = join(home, 'shared', 'a@x.test');
  mkdirSync(dir, { recursive: true });
  for (const body of [`${uidv}\n1:4294967295\n`, 'garbage\n\0\0\0\n', `${uidv}\n${'9,'.repeat(100_000)}x:y,,,\n`]) {
    writeFileSync(join(dir, 'postern-pvt-seen.Bar'), body);
    const c = await connectImap(d.fx.port);
    await c.tagged('l', 'LOGIN b@x.test pw');
    assert.match(await c.tagged('s', 'SELECT shared/a@x.test/Bar'), /s OK/);
    assert.match(await c.tagged('f', 'FETCH 1 (FLAGS)'), /\* 1 FETCH \(FLAGS \(\\Recent\)\)|\* 1 FETCH \(FLAGS \((\\Seen ?)?(\\Recent)?\)\)/);
    assert.match(await c.tagged('t', 'STORE 1 +FLAGS (\\Seen)'), /t OK/);
    c.close();
  }
});
