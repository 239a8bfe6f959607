/**
 * INDEXPVT (Dovecot's private \Seen for shared namespaces, docs/shared-folders.md) as a
 * differential test against real Dovecot 2.3 with its acl and imap_acl plugins: A shares Foo
 * with B; B's \Seen stays B's (A's view is unchanged, and A's \Seen is not B's), other flags are
 * shared; STATUS UNSEEN and SELECT's UNSEEN follow the reader's own \Seen; STORE FLAGS (replace)
 * by B leaves the owner's \Seen alone. Every answer compared after the harness's normalisation.
 * CONDSTORE (RFC 7162) with private flags: B's \Seen change gets a new MODSEQ above the
 * mailbox's HIGHESTMODSEQ, later shared changes get higher ones still, B's other sessions see the
 * change at NOOP and during IDLE (without a new SELECT), FETCH CHANGEDSINCE, SEARCH MODSEQ,
 * STATUS and a new SELECT agree - the numbers checked on each server, the answers compared.
 * Only \Seen is private, as Dovecot 2.3 (keywords and other flags stay shared, checked too).
 * imapflow (CONDSTORE) sees a private change made in another session in FETCH CHANGEDSINCE, on both.
 * Skipped, with the reason, when real Dovecot cannot run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { Differential, differences, loggedInSessions, normalise, runSteps, type Step } from '../harness/imap-differential.ts';
import { aclConf } from '../harness/dovecot-acl-conf.ts';
import { connectImap } from '../harness/imapd-testkit.ts';

const lit = (m: string): string => `{${Buffer.byteLength(m)}+}\r\n${m}`;
const skip = RealDovecot.unavailable() ?? false;
const dictDir = skip ? '' : mkdtempSync(join(tmpdir(), 'postern-pvt-dict-'));
if (!skip) chmodSync(dictDir, 0o777);

const conf = (dict: string): string => aclConf({ dict: join(dictDir, dict), sharedLocation: 'maildir:%%h:INDEXPVT=~/shared/%%u' });

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
  for (const body of [`${uidv}\n1:4294967295\n`, 'garbage\n\0\0\0\n', `${uidv}\n${'9,'.repeat(100_000)}x:y,,,\n`,
    `${uidv}\n1\n99999999999999999999999 1=5,x=y\n`, `${uidv}\n1\n5 1=999999,2=-3,=,${'7=1,'.repeat(50_000)}\n`]) {
    writeFileSync(join(dir, 'postern-pvt-seen.Bar'), body);
    const c = await connectImap(d.fx.port);
    await c.tagged('l', 'LOGIN b@x.test pw');
    assert.match(await c.tagged('s', 'SELECT shared/a@x.test/Bar'), /s OK/);
    assert.match(await c.tagged('f', 'FETCH 1 (FLAGS)'), /\* 1 FETCH \(FLAGS \(\\Recent\)\)|\* 1 FETCH \(FLAGS \((\\Seen ?)?(\\Recent)?\)\)/);
    assert.match(await c.tagged('t', 'STORE 1 +FLAGS (\\Seen)'), /t OK/);
    c.close();
  }
});

/** Every mod-sequence number of the answers, in order of appearance. */
const modseqs = (a: string): number[] => [...a.matchAll(/MODSEQ \(?(\d+)/g)].map((m) => Number(m[1]));

test('INDEXPVT with CONDSTORE: a private \\Seen change gets a new MODSEQ, B\'s other sessions see it at NOOP, as Dovecot', { skip, timeout: 60_000 }, async () => {
  await d.run('a@x.test', ['CREATE Ms', `APPEND Ms ${lit('Subject: one\r\n\r\n1\r\n')}`, `APPEND Ms ${lit('Subject: two\r\n\r\n2\r\n')}`, 'SETACL Ms b@x.test lrswi']);
  const box = 'shared/a@x.test/Ms';
  const steps: Step[] = [
    'ENABLE CONDSTORE', `SELECT ${box}`, [2, 'ENABLE CONDSTORE'], [2, `SELECT ${box}`],           // 0-3
    'STORE 1 +FLAGS (\\Seen)', 'FETCH 1:* (FLAGS MODSEQ)', [2, 'NOOP'], [2, 'FETCH 1:* (FLAGS MODSEQ)'], // 4-7
    'STORE 2 +FLAGS (\\Flagged $Work)', [2, 'NOOP'], [3, `STATUS ${box} (HIGHESTMODSEQ UNSEEN)`],    // 8-10
    'STORE 1 -FLAGS (\\Seen)', [2, 'NOOP'], [3, `STATUS ${box} (HIGHESTMODSEQ UNSEEN)`], [3, `SELECT ${box}`], // 11-14
    [3, 'FETCH 1:* (FLAGS MODSEQ)'], 'STORE 2 +FLAGS (\\Seen)', [2, 'NOOP'],                           // 15-17
  ];
  const a = await d.run('b@x.test', steps);
  const diffs = differences(steps, a);
  assert.equal(diffs.length, 0, diffs.join('\n'));
  // the numbers, on each server (the comparison above writes them all as M)
  for (const [who, port] of [['Dovecot', d.dc.ports.imap!], ['Postern', d.fx.port]] as const) {
    await runSteps(port, 'a@x.test', ['CREATE Ms2', `APPEND Ms2 ${lit('Subject: one\r\n\r\n1\r\n')}`, `APPEND Ms2 ${lit('Subject: two\r\n\r\n2\r\n')}`, 'SETACL Ms2 b@x.test lrswi']);
    const r = await runSteps(port, 'b@x.test', steps.map((st) => (Array.isArray(st) ? [st[0], st[1].toString().replace(/\/Ms\b/, '/Ms2')] : st.toString().replace(/\/Ms\b/, '/Ms2'))));
    const highest0 = modseqs(r[1]!)[0]!;
    const seen1 = modseqs(r[4]!)[0]!;
    assert.ok(seen1 > highest0, `${who}: a private \\Seen change gets a MODSEQ above HIGHESTMODSEQ: ${r[1]}${r[4]}`);
    assert.match(r[6]!, new RegExp(`^\\* 1 FETCH \\(MODSEQ \\(${seen1}\\) FLAGS \\(\\\\Seen\\)\\)`, 'm'), `${who}: the other session hears it at NOOP`);
    const flagged2 = modseqs(r[8]!)[0]!;
    assert.ok(flagged2 > seen1, `${who}: a later shared change gets a higher MODSEQ`);
    const unseen1 = modseqs(r[11]!)[0]!;
    assert.ok(unseen1 > flagged2, `${who}: so does a later private one`);
    assert.equal(modseqs(r[14]!)[0], Math.max(...modseqs(r[15]!)), `${who}: a new SELECT's HIGHESTMODSEQ is the highest message MODSEQ`);
    assert.equal(modseqs(r[15]!)[0], unseen1, `${who}: FETCH MODSEQ keeps the private one`);
  }
});

test('INDEXPVT with CONDSTORE: CHANGEDSINCE and SEARCH MODSEQ see private changes; IDLE hears them', { skip, timeout: 60_000 }, async () => {
  const results: Record<string, string[]> = {};
  for (const [who, port] of [['dovecot', d.dc.ports.imap!], ['postern', d.fx.port]] as const) {
    await runSteps(port, 'a@x.test', ['CREATE Idle', `APPEND Idle ${lit('Subject: one\r\n\r\n1\r\n')}`, `APPEND Idle ${lit('Subject: two\r\n\r\n2\r\n')}`, 'SETACL Idle b@x.test lrswi']);
    const pool = loggedInSessions(port, 'b@x.test');
    const out: string[] = [];
    try {
      const s1 = await pool.session(1);
      const s2 = await pool.session(2);
      await s1.command('e', 'ENABLE CONDSTORE');
      await s2.command('e', 'ENABLE CONDSTORE');
      const sel = await s1.command('s', 'SELECT shared/a@x.test/Idle');
      const before = modseqs(sel)[0]!;
      await s2.command('s', 'SELECT shared/a@x.test/Idle');
      // session 2 idles while session 1 changes its \Seen
      s2.write('i IDLE\r\n');
      out.push(await s2.wait(/^\+ [^\n]*\n/m));
      await new Promise((res) => setTimeout(res, 300));
      const st = await s1.command('t', 'STORE 2 +FLAGS (\\Seen)');
      out.push(st);
      // Dovecot 2.3 does not wake IDLE for a private change (its IDLE watches the shared mailbox,
      // not the private index): it sends the FETCH at the next command; Postern at once
      out.push(await s2.wait(/^\* 2 FETCH [^\n]*\n/m, who === 'dovecot' ? 1500 : 10_000));
      s2.write('DONE\r\n');
      out.push(await s2.wait(/^i (OK|NO|BAD)[^\n]*\n/m));
      out.push(await s1.command('c', `FETCH 1:* (FLAGS) (CHANGEDSINCE ${before})`));
      out.push(await s1.command('m', `UID SEARCH MODSEQ ${before + 1}`));
      out.push(await s2.command('n', 'NOOP'));
      out.push(await s1.command('k', 'STORE 1 +FLAGS ($Private)'));
      out.push(await runSteps(port, 'a@x.test', ['SELECT Idle', 'FETCH 1:* (FLAGS)']).then((x) => x[1]!));
    } finally { pool.close(); }
    results[who] = out.map(normalise);
  }
  assert.match(results.postern![2]!, /^\* 2 FETCH \(MODSEQ M FLAGS \(\\Seen\)\)/m, 'IDLE hears the private change');
  assert.match(results.postern![4]!, /^\* 2 FETCH \(FLAGS \(\\Seen( \\Recent)?\) MODSEQ M\)/m, 'CHANGEDSINCE returns it');
  assert.match(results.postern![5]!, /^\* SEARCH 2 \(MODSEQ M\r?$/m, 'SEARCH MODSEQ finds it');
  assert.match(results.postern![8]!, /^\* 1 FETCH \(FLAGS \(\$Private\)\)/m, 'keywords are not private: the owner sees B\'s');
  assert.equal(results.dovecot![2], '<timeout>\n', 'Dovecot does not wake IDLE for a private change');
  assert.match(results.dovecot![6]!, /^\* 2 FETCH \(MODSEQ M FLAGS \(\\Seen\)\)/m, 'Dovecot sends it at the next command');
  assert.equal(results.postern![6], 'n OK NOOP completed\r\n', 'Postern sent it during IDLE, once');
  const rest = (x: string[]): string[] => x.filter((_, i) => i !== 2 && i !== 6);
  assert.deepEqual(rest(results.postern!), rest(results.dovecot!));
});

test('INDEXPVT: a private change written by another process is seen at the next command (Postern alone)', { skip, timeout: 60_000 }, async () => {
  await d.run('a@x.test', ['CREATE Ext', `APPEND Ext ${lit('Subject: x\r\n\r\nx\r\n')}`, `APPEND Ext ${lit('Subject: y\r\n\r\ny\r\n')}`, 'SETACL Ext b@x.test lrsw']);
  const c = await connectImap(d.fx.port);
  try {
    await c.tagged('l', 'LOGIN b@x.test pw');
    await c.tagged('e', 'ENABLE CONDSTORE');
    const sel = await c.tagged('s', 'SELECT shared/a@x.test/Ext');
    const highest = Number(/HIGHESTMODSEQ (\d+)/.exec(sel)?.[1]);
    const uidv = /UIDVALIDITY (\d+)/.exec(sel)?.[1];
    assert.ok(highest > 0 && uidv, sel);
    // what another Postern process serving B writes when B marks message 2 seen there
    const file = join(d.fx.maildir('b@x.test'), '..', 'shared', 'a@x.test', 'postern-pvt-seen.Ext');
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(`${file}.tmp`, `${uidv}\n2\n${highest + 10} 2=${highest + 10}\n`);
    const { renameSync } = await import('node:fs');
    renameSync(`${file}.tmp`, file);
    assert.match(await c.tagged('n', 'NOOP'), new RegExp(`^\\* 2 FETCH \\(MODSEQ \\(${highest + 10}\\) FLAGS \\(\\\\Seen( \\\\Recent)?\\)\\)\r\n`, 'm'));
    assert.match(await c.tagged('f', 'FETCH 1:* (FLAGS MODSEQ)'), new RegExp(`\\* 2 FETCH \\(FLAGS \\(\\\\Seen( \\\\Recent)?\\) MODSEQ \\(${highest + 10}\\)\\)`));
    assert.match(await c.tagged('t', 'STATUS shared/a@x.test/Ext (UNSEEN HIGHESTMODSEQ)'), new RegExp(`UNSEEN 1 HIGHESTMODSEQ ${highest + 10}`));
  } finally { c.close(); }
});

test('INDEXPVT with imapflow (CONDSTORE): a private \\Seen change made elsewhere is in FETCH CHANGEDSINCE, on both servers', { skip, timeout: 60_000 }, async () => {
  const { ImapFlow } = await import('imapflow');
  const seen: Record<string, unknown> = {};
  for (const [who, port] of [['dovecot', d.dc.ports.imap!], ['postern', d.fx.port]] as const) {
    await runSteps(port, 'a@x.test', ['CREATE Flow', `APPEND Flow ${lit('Subject: f1\r\n\r\n1\r\n')}`, `APPEND Flow ${lit('Subject: f2\r\n\r\n2\r\n')}`, 'SETACL Flow b@x.test lrsw']);
    const client = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user: 'b@x.test', pass: 'pw' }, logger: false });
    await client.connect();
    try {
      const lock = await client.getMailboxLock('shared/a@x.test/Flow');
      try {
        const mb = client.mailbox as { highestModseq?: bigint };
        const before = mb.highestModseq;
        assert.ok(before !== undefined, `${who}: HIGHESTMODSEQ announced`);
        // B marks message 2 seen in another session (another device)
        await runSteps(port, 'b@x.test', ['SELECT shared/a@x.test/Flow', 'UID STORE 2 +FLAGS (\\Seen)']);
        await client.noop();
        const changed: { uid: number; flags: string[] }[] = [];
        for await (const m of client.fetch('1:*', { uid: true, flags: true }, { uid: true, changedSince: before! })) {
          changed.push({ uid: m.uid, flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort() });
        }
        seen[who] = changed;
        assert.deepEqual(changed, [{ uid: 2, flags: ['\\Seen'] }], `${who}: only the privately changed message, seen`);
      } finally { lock.release(); }
    } finally { await client.logout(); }
    // the owner's view is unchanged
    const [, , owner] = await runSteps(port, 'a@x.test', ['SELECT Flow', 'NOOP', 'FETCH 2 (FLAGS)']);
    assert.match(owner!, /^\* 2 FETCH \(FLAGS \((\\Recent)?\)\)/m, `${who}: A does not see B's \\Seen`);
  }
  assert.deepEqual(seen.postern, seen.dovecot);
});
