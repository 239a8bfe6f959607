/**
 * ACL (RFC 4314; issue 19 item 2) against real Dovecot 2.3 with its acl and imap_acl plugins
 * (`acl = vfile`): the same MYRIGHTS / GETACL / SETACL / DELETEACL / LISTRIGHTS steps on both
 * (test/harness/imap-differential.ts) get the same answers and leave the same `dovecot-acl`
 * files; a table of (owner rights, command) cases gets the same answers on both (SELECT,
 * EXAMINE, STATUS, STORE of each flag kind, FETCH, EXPUNGE, COPY, MOVE, APPEND, CREATE,
 * RENAME, DELETE, LIST); each server honours the ACL file the other wrote. Hostile input:
 * identifiers with `../`, NUL, control characters, 1,000-byte identifiers, huge rights strings,
 * `anyone`, 10,000 entries; another session is served meanwhile.
 * Skipped, with the reason, when real Dovecot cannot run (needs root and dovecot-imapd).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { Differential, differences, type Step } from '../harness/imap-differential.ts';

const CONF = `
mail_plugins = $mail_plugins acl
protocol imap {
  mail_plugins = $mail_plugins imap_acl
}
plugin {
  acl = vfile
}
`;

const lit = (m: string): string => `{${Buffer.byteLength(m)}+}\r\n${m}`;

const CASES: { name: string; steps: Step[] }[] = [
  {
    name: 'MYRIGHTS, GETACL, SETACL (+, -, c, d), DELETEACL, LISTRIGHTS; the owner keeps a',
    steps: [
      'CREATE Foo', 'MYRIGHTS Foo', 'GETACL Foo', 'LISTRIGHTS Foo b@x.test', 'LISTRIGHTS Foo owner',
      'SETACL Foo b@x.test lr', 'GETACL Foo', 'MYRIGHTS Foo', 'SETACL Foo b@x.test +w', 'SETACL Foo b@x.test -r', 'GETACL Foo',
      'SETACL Foo -b@x.test r', 'SETACL Foo c@x.test k', 'SETACL Foo d@x.test x', 'SETACL Foo e@x.test e', 'SETACL Foo f@x.test t',
      'SETACL Foo $grp lr', 'SETACL Foo -$grp l', 'GETACL Foo', 'SETACL Foo b@x.test lrc', 'SETACL Foo b@x.test lrd', 'GETACL Foo',
      'SETACL Foo owner lr', 'GETACL Foo', 'MYRIGHTS Foo', 'SETACL Foo owner ""', 'MYRIGHTS Foo', 'GETACL Foo', 'SETACL Foo owner +x',
      'SETACL Foo owner -a', 'GETACL Foo', 'DELETEACL Foo owner', 'MYRIGHTS Foo', 'GETACL Foo', 'DELETEACL Foo b@x.test', 'DELETEACL Foo nobody',
      'DELETEACL Foo -b@x.test', 'GETACL Foo', 'SETACL Foo g@x.test ""', 'GETACL Nope', 'SETACL Nope b@x.test lr', 'DELETEACL Nope b@x.test',
      'MYRIGHTS INBOX', 'GETACL INBOX', 'SETACL INBOX b@x.test lrs', 'GETACL INBOX', 'SETACL Foo user=zz lr', 'GETACL Foo',
    ],
  },
  {
    name: 'the owner named as a user; the owner entry shown as "owner" then; group entries',
    steps: [
      'CREATE Foo', 'SETACL Foo owner l', 'GETACL Foo', 'SETACL Foo acl1@x.test lr', 'GETACL Foo', 'MYRIGHTS Foo',
      'SETACL Foo acl1@x.test ""', 'GETACL Foo', 'DELETEACL Foo acl1@x.test', 'MYRIGHTS Foo', 'SETACL Foo owner lra', 'GETACL Foo',
      'DELETEACL Foo owner', 'GETACL Foo', 'SETACL Foo $staff lrw', 'SETACL Foo -$staff w', 'GETACL Foo',
    ],
  },
  {
    name: 'bad ACL commands: anyone, authenticated, empty identifier, unknown rights, missing arguments',
    steps: [
      'CREATE Foo', 'SETACL Foo anyone r', 'SETACL Foo authenticated lr', 'SETACL Foo "" lr', 'DELETEACL Foo ""', 'SETACL Foo b@x.test lrZ',
      'SETACL Foo b@x.test', 'GETACL', 'MYRIGHTS', 'LISTRIGHTS Foo', 'DELETEACL Foo', 'SETACL Foo b@x.test (l)', 'GETACL Foo',
    ],
  },
];

/** The enforcement table: each rights string of the owner on Foo, then every command once. */
const RIGHTS = ['', 'l', 'lr', 'lrs', 'lrst', 'lrw', 'lri', 'lrk', 'lrx', 'lre', 'lrwstie', 'lrwstipekxa'];
function enforcement(rights: string): Step[] {
  return [
    'CREATE Foo', 'CREATE Foo/Sub', `APPEND Foo ${lit('Subject: one\r\n\r\nbody 1\r\n')}`, `APPEND Foo ${lit('Subject: two\r\n\r\nbody 2\r\n')}`,
    `SETACL Foo owner "${rights}"`, 'MYRIGHTS Foo', 'LIST "" *', 'STATUS Foo (MESSAGES UNSEEN)', 'SELECT Foo',
    'STORE 1 +FLAGS (\\Seen)', 'STORE 1 +FLAGS (\\Deleted)', 'STORE 1 +FLAGS (\\Flagged kw1)', 'STORE 2 +FLAGS (\\Seen \\Deleted \\Answered)',
    'FETCH 1:2 (FLAGS)', 'FETCH 2 (BODY[TEXT])', 'STORE 2 -FLAGS (\\Seen)', 'FETCH 1:2 (FLAGS)', 'COPY 1 INBOX', 'EXPUNGE', 'MOVE 1 INBOX', 'FETCH 1:* (FLAGS)',
    'UNSELECT', 'EXAMINE Foo', 'STORE 1 +FLAGS (\\Seen)', 'UNSELECT', `APPEND Foo (\\Seen \\Deleted) ${lit('Subject: three\r\n\r\nbody 3\r\n')}`,
    'SELECT INBOX', 'STORE 1 +FLAGS.SILENT (\\Seen \\Flagged \\Deleted)', 'COPY 1 Foo', 'UNSELECT', 'STATUS Foo (MESSAGES RECENT)', 'EXAMINE Foo', 'FETCH 1:* (FLAGS)', 'UNSELECT',
    // LIST-STATUS: no STATUS without r (Dovecot's answer for a hidden parent, \NonExistent, is not copied)
    ...(rights.includes('l') ? ['LIST "" Foo RETURN (STATUS (MESSAGES))'] : []), 'CREATE Foo/New', 'RENAME Foo/Sub Foo/Sub2', 'RENAME Foo Bar', 'LIST "" *', 'DELETE Foo', 'LIST "" *',
  ];
}
for (const r of RIGHTS) CASES.push({ name: `rights enforced for owner rights "${r}"`, steps: enforcement(r) });

const skip = RealDovecot.unavailable() ?? false;
let d: Differential;
const userOf = (i: number): string => `acl${i}@x.test`;

before(async () => {
  if (skip) return;
  d = await Differential.start([...CASES.map((_, i) => userOf(i)), 'cross@x.test', 'hostile@x.test'], { dovecotConf: CONF, posternConf: CONF });
});

after(async () => {
  if (d) await d.stop();
});

function aclFile(maildir: string, box: string): string {
  const f = join(maildir, box === 'INBOX' ? '' : `.${box}`, 'dovecot-acl');
  if (!existsSync(f)) return '(none)';
  const t = readFileSync(f, 'utf8');
  return t === '' ? '(none)' : t;
}

for (const [i, c] of CASES.entries()) {
  test(c.name, { skip, timeout: 60_000 }, async () => {
    const user = userOf(i);
    const a = await d.run(user, c.steps);
    const diffs = differences(c.steps, a);
    const m = d.maildirs(user);
    for (const box of ['INBOX', 'Foo', 'Bar']) {
      const theirs = aclFile(m.dovecot, box);
      const mine = aclFile(m.postern, box);
      if (theirs !== mine) diffs.push(`${box}/dovecot-acl\n--- Dovecot\n${theirs}--- Postern\n${mine}`);
    }
    assert.equal(diffs.length, 0, diffs.join('\n'));
  });
}

/** Replaces a file in a Dovecot-owned Maildir, keeping its owner. */
function writeAs(target: string, likeDir: string, text: string): void {
  writeFileSync(target, text);
  const st = statSync(likeDir);
  chownSync(target, st.uid, st.gid);
}

test('each server honours the dovecot-acl file the other wrote', { skip, timeout: 60_000 }, async () => {
  const user = 'cross@x.test';
  const setup: Step[] = ['CREATE Mine', 'CREATE Theirs', `APPEND Mine ${lit('Subject: m\r\n\r\nm\r\n')}`, `APPEND Theirs ${lit('Subject: t\r\n\r\nt\r\n')}`];
  await d.run(user, setup);
  const m = d.maildirs(user);
  // Postern writes; the file goes to Dovecot
  await d.run(user, ['SETACL Mine owner lrs', 'SETACL Mine friend@x.test lrwi', 'SETACL Mine -friend@x.test w', 'SETACL Mine $team lr']);
  writeAs(join(m.dovecot, '.Mine', 'dovecot-acl'), join(m.dovecot, '.Mine'), readFileSync(join(m.postern, '.Mine', 'dovecot-acl'), 'utf8'));
  // Dovecot writes; the file goes to Postern
  await d.run(user, ['SETACL Theirs owner lrt', 'SETACL Theirs other@x.test lk', 'SETACL Theirs $team -r']);
  copyFileSync(join(m.dovecot, '.Theirs', 'dovecot-acl'), join(m.postern, '.Theirs', 'dovecot-acl'));
  const check: Step[] = ['GETACL Mine', 'MYRIGHTS Mine', 'GETACL Theirs', 'MYRIGHTS Theirs', 'SELECT Mine', 'STORE 1 +FLAGS (\\Seen \\Flagged)',
    'SELECT Theirs', 'STORE 1 +FLAGS (\\Seen \\Deleted)', 'EXPUNGE'];
  const a = await d.run(user, check);
  const diffs = differences(check, a);
  assert.equal(diffs.length, 0, diffs.join('\n'));
  assert.match(a.dovecot[0]!, /friend@x\.test ilrw -friend@x\.test w/);
  assert.match(a.postern[3]!, /MYRIGHTS Theirs lrtad/);
});

test('hostile ACL input: ../ and NUL identifiers, huge rights, 10,000 entries; others are served', { skip, timeout: 60_000 }, async () => {
  const user = 'hostile@x.test';
  const steps: Step[] = [
    'CREATE Foo', 'SETACL Foo ../../etc lr', 'SETACL Foo ../x/../../y lrw', 'GETACL Foo',
    Buffer.from('SETACL Foo {5+}\r\nb\x00c@x lr', 'latin1'), 'SETACL Foo "a\\"b" lr', `SETACL Foo b@x.test ${'l'.repeat(5000)}`,
    `SETACL Foo b@x.test ${'lrwstipekxacd'.repeat(400)}Q`, [2, 'NOOP'], 'GETACL Foo', 'SETACL INBOX owner lrwstipekxa',
  ];
  const a = await d.run(user, steps);
  // the identifiers with ../ are names, stored in the mailbox's own file, never paths
  const diffs = differences(steps, a, (i) => i === 4 || i === 9);
  assert.equal(diffs.length, 0, diffs.join('\n'));
  const m = d.maildirs(user);
  assert.equal(aclFile(m.postern, 'Foo'), aclFile(m.dovecot, 'Foo').replace(/^user=b lr\n/m, ''));
  // a NUL in an identifier is refused (Dovecot stores the name cut at the NUL)
  assert.match(a.postern[4]!, /BAD/);
  assert.doesNotMatch(aclFile(m.postern, 'Foo'), /\x00/);
  // 10,000 entries: Postern refuses the one after its limit; the file stays readable
  const { connectImap, stripTiming } = await import('../harness/imapd-testkit.ts');
  const c = await connectImap(d.fx.port);
  const other = await connectImap(d.fx.port);
  try {
    await c.tagged('l', `LOGIN ${user} pw`);
    await other.tagged('l', `LOGIN ${user} pw`);
    const { ACL_MAX_ENTRIES } = await import('../../src/lib-storage/mail-acl.ts');
    const lines = Array.from({ length: ACL_MAX_ENTRIES }, (_, i) => `user=u${i}@x.test lr\n`).join('');
    writeFileSync(join(m.postern, '.Foo', 'dovecot-acl'), lines);
    assert.match(stripTiming(await c.tagged('g', 'MYRIGHTS Foo')), /^\* MYRIGHTS Foo lrwstipekxacd\r\ng OK Myrights completed/);
    assert.match(stripTiming(await c.tagged('s', 'SETACL Foo one-more@x.test lr')), /^s NO \[LIMIT\] /);
    assert.equal(stripTiming(await other.tagged('n', 'NOOP')), 'n OK NOOP completed\r\n');
    writeFileSync(join(m.postern, '.Foo', 'dovecot-acl'), lines + lines);
    assert.match(stripTiming(await c.tagged('h', 'GETACL Foo')), /^h NO \[LIMIT\] /);
    assert.match(stripTiming(await other.tagged('m', 'SELECT INBOX')), /OK \[READ-WRITE\]/);
  } finally { c.close(); other.close(); }
});

test('SETACL from two sessions at once on one mailbox: every entry kept (dovecot-acl.lock)', { skip, timeout: 60_000 }, async () => {
  const { connectImap } = await import('../harness/imapd-testkit.ts');
  const user = 'cross@x.test';
  const conns = await Promise.all([0, 1].map(() => connectImap(d.fx.port)));
  try {
    await Promise.all(conns.map((c) => c.tagged('l', `LOGIN ${user} pw`)));
    await conns[0]!.tagged('c', 'CREATE Busy');
    await Promise.all(conns.flatMap((c, i) => Array.from({ length: 10 }, (_, k) => c.tagged(`s${k}`, `SETACL Busy u${i}-${k}@x.test lr`))));
  } finally { for (const c of conns) c.close(); }
  const text = aclFile(d.maildirs(user).postern, 'Busy');
  for (let i = 0; i < 2; i++) for (let k = 0; k < 10; k++) assert.match(text, new RegExp(`^user=u${i}-${k}@x\\.test lr$`, 'm'));
  assert.equal(existsSync(join(d.maildirs(user).postern, '.Busy', 'dovecot-acl.lock')), false);
});

test('global ACL file (acl = vfile:FILE): patterns, applied after the mailbox\'s own, shown with #, not changeable', { skip, timeout: 60_000 }, async () => {
  const { mkdtempSync, chmodSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'postern-global-acl-'));
  chmodSync(dir, 0o755);
  const file = join(dir, 'dovecot-acl');
  writeFileSync(file, '# global\nFoo owner lr\nFoo user=b@x.test lrw\n* user=c@x.test l\nBar* owner lrwstipekx\nLoc? anyone lr\n');
  chmodSync(file, 0o644);
  const conf = CONF.replace('acl = vfile', `acl = vfile:${file}`);
  const g = await Differential.start(['global@x.test'], { dovecotConf: conf, posternConf: conf });
  try {
    const steps: Step[] = [
      'CREATE Foo', 'CREATE Bar', 'CREATE Bar2', 'CREATE Other', 'CREATE Loc1', 'MYRIGHTS Foo', 'GETACL Foo', 'SETACL Foo b@x.test lr', 'MYRIGHTS Bar',
      'MYRIGHTS Bar2', 'GETACL Bar', 'GETACL Other', 'SETACL Other c@x.test lrw', 'GETACL Other', 'DELETEACL Other c@x.test', 'GETACL Other',
      'MYRIGHTS INBOX', 'GETACL INBOX', 'GETACL Loc1', 'SELECT Foo', 'APPEND Foo {3+}\r\nabc', 'LIST "" *',
    ];
    const a = await g.run('global@x.test', steps);
    const diffs = differences(steps, a);
    assert.equal(diffs.length, 0, diffs.join('\n'));
    const m = g.maildirs('global@x.test');
    assert.equal(aclFile(m.postern, 'Other'), aclFile(m.dovecot, 'Other'));
  } finally {
    await g.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
