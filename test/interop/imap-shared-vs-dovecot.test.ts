/**
 * Shared folders (issue 19 item 2) against real Dovecot 2.3: a `type = shared` namespace with
 * prefix `shared/%%u/`, the acl plugin (`acl = vfile`) and `acl_shared_dict`. User A shares
 * mailboxes with B through SETACL; B's NAMESPACE, LIST, MYRIGHTS, SELECT, FETCH, STORE, STATUS,
 * APPEND, CREATE, DELETE, RENAME, COPY and SUBSCRIBE on shared/A/... get the same answers from
 * both servers (test/harness/imap-differential.ts), and the acl_shared_dict files hold the same
 * entries. A public namespace (`type = public`, prefix `Public/`) with an `anyone` ACL the same way.
 * Then real clients use the shared folder on Postern: imapflow (Node) and Python's
 * imaplib. Hostile: B granting itself rights on A's mailbox, a path-like owner name.
 * Skipped, with the reason, when real Dovecot cannot run (needs root and dovecot-imapd).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { DOVECOT_MAIL_UID, RealDovecot } from '../harness/real-dovecot.ts';
import { Differential, differences, type Step } from '../harness/imap-differential.ts';
import { aclConf } from '../harness/dovecot-acl-conf.ts';

const run = promisify(execFile);
const lit = (m: string): string => `{${Buffer.byteLength(m)}+}\r\n${m}`;

const skip = RealDovecot.unavailable() ?? false;
const dictDir = skip ? '' : mkdtempSync(join(tmpdir(), 'postern-acl-dict-'));
if (!skip) chmodSync(dictDir, 0o777);

const conf = (dict: string, pub: string): string => aclConf({ dict: join(dictDir, dict), publicDir: join(dictDir, pub) });

let d: Differential;
before(async () => {
  if (skip) return;
  // a public namespace for each server: .Team open to anyone (lrwsi), .Locked to nobody
  for (const pub of ['public-dovecot', 'public-postern']) {
    for (const box of ['.Team', '.Locked']) for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(dictDir, pub, box, sub), { recursive: true });
    writeFileSync(join(dictDir, pub, '.Team', 'dovecot-acl'), 'anyone lrwsi\n');
  }
  await run('chown', ['-R', `${DOVECOT_MAIL_UID}:${DOVECOT_MAIL_UID}`, join(dictDir, 'public-dovecot')]);
  d = await Differential.start(['a@x.test', 'b@x.test', 'c@x.test', { user: 'd@x.test', extra: 'userdb_acl_groups=team,other' }], { dovecotConf: conf('dovecot.db', 'public-dovecot'), posternConf: conf('postern.db', 'public-postern') });
});
after(async () => {
  if (d) await d.stop();
  if (dictDir) rmSync(dictDir, { recursive: true, force: true });
});

test('A shares a folder with B: B sees shared/A/ with only the rights given, on both servers', { skip, timeout: 60_000 }, async () => {
  const stepsA: Step[] = [
    'CREATE Foo', 'CREATE Foo/Sub', 'CREATE Other', `APPEND Foo ${lit('Subject: shared one\r\n\r\nhello B\r\n')}`,
    'SETACL Foo b@x.test lrs', 'SETACL Foo/Sub b@x.test l', 'NAMESPACE', 'LIST "" *',
  ];
  const stepsB: Step[] = [
    'NAMESPACE', 'LIST "" *', 'LIST "" %', 'LIST "" shared/%', 'LIST "" shared/a@x.test/%', 'LIST "" shared/a@x.test/*',
    'MYRIGHTS shared/a@x.test/Foo', 'GETACL shared/a@x.test/Foo', 'SELECT shared/a@x.test/Foo', 'FETCH 1 (FLAGS BODY[HEADER.FIELDS (SUBJECT)])',
    'STORE 1 +FLAGS (\\Seen \\Flagged)', 'STATUS shared/a@x.test/Foo (MESSAGES)', 'STATUS shared/a@x.test/Foo/Sub (MESSAGES)',
    'COPY 1 INBOX', 'SELECT shared/a@x.test/Other', 'SELECT shared/a@x.test/Nope', `APPEND shared/a@x.test/Foo ${lit('Subject: x\r\n\r\nx\r\n')}`,
    'CREATE shared/a@x.test/New', 'CREATE shared/a@x.test/Foo/New', 'DELETE shared/a@x.test/Foo', 'RENAME shared/a@x.test/Foo X',
    'SETACL shared/a@x.test/Foo b@x.test lrwstipekxa', 'MYRIGHTS shared/a@x.test/Foo', 'MYRIGHTS shared/a@x.test/Other',
    'LIST "" shared/c@x.test/*', 'SUBSCRIBE shared/a@x.test/Foo', 'LSUB "" *', 'LIST (SUBSCRIBED) "" *', 'SELECT shared/a@x.test/Foo/Sub', 'MYRIGHTS shared',
    'SELECT INBOX', 'FETCH 1 (FLAGS BODY[HEADER.FIELDS (SUBJECT)])',
  ];
  const a = await d.run('a@x.test', stepsA);
  const b = await d.run('b@x.test', stepsB);
  // A sees B's \Seen (flags are shared without INDEXPVT)
  const again: Step[] = ['SELECT Foo', 'FETCH 1 (FLAGS)', 'SETACL Foo b@x.test ""', 'LIST "" *'];
  const a2 = await d.run('a@x.test', again);
  const b2 = await d.run('b@x.test', ['LIST "" *', 'SELECT shared/a@x.test/Foo']);
  const diffs = [...differences(stepsA, a), ...differences(stepsB, b), ...differences(again, a2), ...differences(['LIST "" *', 'SELECT shared/a@x.test/Foo'], b2)];
  assert.equal(diffs.length, 0, diffs.join('\n'));
  assert.match(b.postern[1]!, /shared\/a@x\.test\/Foo\r\n/);
  assert.match(a2.postern[1]!, /FLAGS \(\\Seen\)/);
  const dictOf = (f: string): string => { try { return readFileSync(join(dictDir, f), 'utf8'); } catch { return '(none)'; } };
  assert.equal(dictOf('postern.db'), dictOf('dovecot.db'));
  // B's subscription of the shared mailbox is in B's own subscriptions file, as Dovecot writes it
  const mb = d.maildirs('b@x.test');
  // (Postern also writes the auto = subscribe Sent there; Dovecot keeps that one virtual)
  assert.equal(readFileSync(join(mb.postern, 'subscriptions'), 'utf8').replace('Sent\n', ''), readFileSync(join(mb.dovecot, 'subscriptions'), 'utf8'));
});

test('real clients use a shared folder on Postern: imapflow and Python imaplib', { skip, timeout: 60_000 }, async () => {
  await d.run('a@x.test', ['CREATE Team', `APPEND Team ${lit('Subject: for the team\r\n\r\nplan\r\n')}`, 'SETACL Team c@x.test lrswi']);
  const client = new ImapFlow({ host: '127.0.0.1', port: d.fx.port, secure: false, auth: { user: 'c@x.test', pass: 'pw' }, logger: false });
  await client.connect();
  try {
    const boxes = (await client.list()).map((m) => m.path);
    assert.ok(boxes.includes('shared/a@x.test/Team'), boxes.join(','));
    const lock = await client.getMailboxLock('shared/a@x.test/Team');
    try {
      const msg = await client.fetchOne('1', { envelope: true, flags: true });
      assert.ok(msg);
      assert.equal(msg.envelope?.subject, 'for the team');
      await client.messageFlagsAdd('1', ['\\Seen']);
      await client.append('shared/a@x.test/Team', 'Subject: reply\r\n\r\nok\r\n');
      const st = await client.status('shared/a@x.test/Team', { messages: true });
      assert.equal(st && st.messages, 2);
    } finally { lock.release(); }
  } finally { await client.logout(); }
  const py = `
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', ${d.fx.port})
m.login('c@x.test', 'pw')
typ, data = m.select('shared/a@x.test/Team')
assert typ == 'OK', (typ, data)
typ, data = m.fetch('1:*', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
print(typ, [d for d in data if isinstance(d, tuple)][1][1].decode().strip())
typ, data = m.store('2', '+FLAGS', '(\\\\Deleted)')
print('store', typ)
typ, data = m.expunge()
print('expunge', typ, data)
typ, data = m.delete('shared/a@x.test/Team')
print('delete', typ, data[0].decode())
m.logout()
`;
  const { stdout } = await run('python3', ['-c', py], { timeout: 30_000 });
  assert.match(stdout, /^OK Subject: reply/m);
  // no e right: the message marked \Deleted stays (Dovecot's answer: Expunge ignored)
  assert.match(stdout, /^expunge OK \[None\]/m);
  assert.match(stdout, /^delete NO \[NOPERM\] Permission denied/m);
});

test('hostile: B grants itself rights on A\'s mailbox, path-like owner names', { skip, timeout: 60_000 }, async () => {
  await d.run('a@x.test', ['CREATE Private', 'SETACL Private b@x.test lr']);
  const steps: Step[] = [
    'SETACL shared/a@x.test/Private b@x.test lrwstipekxa', 'SETACL shared/a@x.test/Private owner lrwstipekxa', 'DELETEACL shared/a@x.test/Private b@x.test',
    'MYRIGHTS shared/a@x.test/Private', 'SELECT shared/../a@x.test/Private', 'SELECT shared/a@x.test/../b@x.test/INBOX', 'LIST "" shared/../*',
  ];
  const b = await d.run('b@x.test', steps);
  const diffs = differences(steps, b, (i) => i === 4 || i === 5); // Dovecot: internal errors for these names
  assert.equal(diffs.length, 0, diffs.join('\n'));
  assert.match(b.postern[3]!, /MYRIGHTS shared\/a@x\.test\/Private lr\r\n/);
  assert.match(b.postern[4]!, /NO /);
  assert.match(b.postern[5]!, /NO /);
});

test('public namespace: a Maildir of nobody\'s, its dovecot-acl giving anyone rights', { skip, timeout: 60_000 }, async () => {
  const steps: Step[] = [
    'NAMESPACE', 'LIST "" *', 'LIST "" %', 'LIST "" Public/%', 'MYRIGHTS Public/Team', 'MYRIGHTS Public/Locked', 'GETACL Public/Team',
    `APPEND Public/Team ${lit('Subject: team\r\n\r\nfor all\r\n')}`, 'SELECT Public/Team', 'STORE 1 +FLAGS (\\Seen \\Deleted)', 'EXPUNGE',
    'SELECT Public/Locked', 'CREATE Public/New', 'STATUS Public/Team (MESSAGES)', 'MYRIGHTS Public', 'SELECT Public', 'SETACL Public/Team b@x.test lrwstipekxa',
  ];
  const a = await d.run('c@x.test', steps);
  const diffs = differences(steps, a);
  assert.equal(diffs.length, 0, diffs.join('\n'));
  assert.match(a.postern[0]!, /\* NAMESPACE \(\("" "\/"\)\) \(\("shared\/" "\/"\)\) \(\("Public\/" "\/"\)\)/);
});

test('groups: the userdb acl_groups field; A shares with $team, a member lists and reads it', { skip, timeout: 60_000 }, async () => {
  const stepsA: Step[] = ['CREATE Plans', `APPEND Plans ${lit('Subject: plan\r\n\r\nq1\r\n')}`, 'SETACL Plans $team lr', 'SETACL Plans -$other r', 'GETACL Plans'];
  const stepsD: Step[] = ['LIST "" shared/a@x.test/*', 'MYRIGHTS shared/a@x.test/Plans', 'SELECT shared/a@x.test/Plans', 'SETACL Plans $team lrs'];
  const stepsB: Step[] = ['LIST "" shared/a@x.test/P*', 'MYRIGHTS shared/a@x.test/Plans'];
  const a = await d.run('a@x.test', stepsA);
  const dd = await d.run('d@x.test', stepsD);
  const b = await d.run('b@x.test', stepsB);
  const diffs = [...differences(stepsA, a), ...differences(stepsD, dd), ...differences(stepsB, b)];
  assert.equal(diffs.length, 0, diffs.join('\n'));
  assert.match(dd.postern[1]!, /MYRIGHTS shared\/a@x\.test\/Plans l\r\n/);
});

test('two owners sharing at the same moment: both reach acl_shared_dict', { skip, timeout: 60_000 }, async () => {
  const { connectImap } = await import('../harness/imapd-testkit.ts');
  const owners = ['a@x.test', 'c@x.test'];
  const conns = await Promise.all(owners.map(() => connectImap(d.fx.port)));
  try {
    await Promise.all(conns.map((c, i) => c.tagged('l', `LOGIN ${owners[i]} pw`)));
    await Promise.all(conns.map((c, i) => c.tagged('c', `CREATE Race${i}`)));
    await Promise.all(conns.map((c, i) => Promise.all(Array.from({ length: 5 }, (_, k) => c.tagged(`s${k}`, `SETACL Race${i} r${k}@x.test lr`)))));
  } finally { for (const c of conns) c.close(); }
  const text = readFileSync(join(dictDir, 'postern.db'), 'utf8');
  for (const [i, o] of owners.entries()) for (let k = 0; k < 5; k++) assert.ok(text.includes(`shared/shared-boxes/user/r${k}@x.test/${o}\n1\n`), `owner ${i} grantee ${k}\n${text}`);
});
