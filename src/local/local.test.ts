import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { MainConfig } from '../global/mail-conf.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { CleanupSession } from '../cleanup/cleanup.ts';
import { isRedirect } from '../global/deliver-redirect.ts';
import type { RecipientResult } from '../global/deliver-request.ts';
import { MaildirStore } from '../lib-storage/maildir/maildir-storage.ts';
import { UNIX_FILES } from '../util/dict-unix.ts';
import { setLogSink } from '../util/msg.ts';
import { buildAliases } from '../cli/newaliases.ts';
import { createLocalAgent } from './local.ts';
import { cleanup } from '../master/master-clients.ts';
import { cleanupSettings } from '../global/cleanup-client.ts';

const warnings: string[] = [];
setLogSink((l) => { if (/warning/.test(l)) warnings.push(l); });
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
const BOB = 10; // a real unprivileged uid (Debian's uucp) standing in for a second user

let dir = '';
const savedPasswd = UNIX_FILES.passwd;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-local-'));
  chmodSync(dir, 0o755);
  for (const d of ['alice', 'bob', 'root', 'spool', 'out', 'queue']) mkdirSync(join(dir, d));
  chmodSync(join(dir, 'spool'), 0o1777);
  new MailQueue(join(dir, 'queue')).ensureDirs();
  chmodSync(join(dir, 'out'), 0o777);
  if (isRoot) { chownSync(join(dir, 'alice'), NOBODY, NOBODY); chownSync(join(dir, 'bob'), BOB, BOB); }
  writeFileSync(join(dir, 'passwd'), [
    `root:x:0:0:root:${dir}/root:/bin/sh`,
    `toor:x:0:0:root again:${dir}/root:/bin/sh`,
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
    `alice:x:${NOBODY}:${NOBODY}:Alice:${dir}/alice:/bin/sh`,
    `bob:x:${BOB}:${BOB}:Bob:${dir}/bob:/bin/bash`,
    'broken line without fields',
  ].join('\n') + '\n');
  UNIX_FILES.passwd = join(dir, 'passwd');
});
after(() => { UNIX_FILES.passwd = savedPasswd; rmSync(dir, { recursive: true, force: true }); });

async function queueMessage(rcpts: string[], body: string, sender = 'sender@remote.test'): Promise<QueueFile> {
  const q = new MailQueue(join(dir, 'queue'));
  q.ensureDirs();
  const c = await CleanupSession.open({ myhostname: 'mx.example.test', myorigin: 'example.test', headerSizeLimit: 102400, messageSizeLimit: 0, alwaysAddMissingHeaders: false }, q, { sender, attrs: { client_address: '192.0.2.9' }, addMissingHeaders: false });
  for (const r of rcpts) c.addRecipient({ address: r });
  await c.write(Buffer.from(body));
  const r = await c.finish();
  assert.ok('queueId' in r);
  return QueueFile.open(q.path('incoming', r.queueId), r.queueId);
}

function config(extra: string[] = []): MainConfig {
  return MainConfig.parse([
    `alias_maps = hash:${dir}/aliases`, `alias_database = hash:${dir}/aliases`,
    'mydestination = example.test, localhost', 'myorigin = example.test', 'myhostname = mx.example.test',
    `mail_spool_directory = ${dir}/spool`, `queue_directory = ${dir}/queue`, 'recipient_delimiter = +',
    ...extra,
  ].join('\n'), join(dir, 'main.cf'), dir);
}

async function deliver(cfg: MainConfig, rcpts: string[], body = 'Subject: hi\n\nFrom me\nbody\n', sender?: string): Promise<Record<string, RecipientResult>> {
  const agent = await createLocalAgent(cfg, { queue: new MailQueue(join(dir, 'queue')), cleanupClient: cleanup });
  const qf = await queueMessage(rcpts, body, sender);
  submitted.add(qf.queueId);
  const res = await agent.deliver({ qf, transport: 'local', nexthop: 'example.test', recipients: qf.recipients, activeSince: Date.now() });
  return Object.fromEntries(res.map((r) => [r.recipient.address, r]));
}

/** Queue files written by forwarding since `before`, as {sender, recipients, content}. */
async function forwarded(except: Set<string>): Promise<{ qid: string; sender: string; rcpts: string[]; content: string }[]> {
  const out = [];
  for (const qid of readdirSync(join(dir, 'queue', 'incoming'))) {
    if (except.has(qid) || submitted.has(qid) || qid.includes('.')) continue;
    const qf = await QueueFile.open(join(dir, 'queue', 'incoming', qid), qid);
    out.push({ qid, sender: qf.sender, rcpts: qf.recipients.map((r) => r.address), content: (await qf.content()).toString() });
  }
  return out;
}

const submitted = new Set<string>();
const spool = (u: string) => readFileSync(join(dir, 'spool', u), 'utf8');
const status = (r: RecipientResult | undefined) => [r!.status, r!.dsn];

test('aliases(5): addresses, files, commands, :include:, owner- aliases, loops, self-reference, unknown users', async () => {
  writeFileSync(join(dir, 'out', 'list.inc'), '# the list\nalice\nremote3@elsewhere.test\n', { mode: 0o644 });
  writeFileSync(join(dir, 'aliases'), [
    '# aliases(5)',
    'postmaster: root',
    'root: alice',
    'team: alice, bob,',
    '   remote@elsewhere.test',
    `archive: ${dir}/out/archive.mbox`,
    `maildirbox: ${dir}/out/md/`,
    `cmd: "|cat > ${dir}/out/cmd.msg; id -u > ${dir}/out/cmd.uid; env > ${dir}/out/cmd.env"`,
    `list: :include:${dir}/out/list.inc`,
    'owner-list: listadmin@elsewhere.test',
    'loop1: loop2',
    'loop2: loop1',
    'bob: bob, bobcopy@elsewhere.test',
    'ghost: ghost',
    'bad line',
  ].join('\n') + '\n');
  warnings.length = 0;
  assert.equal(buildAliases(`hash:${dir}/aliases`), false, 'the bad line is reported');
  const before = new Set(readdirSync(join(dir, 'queue', 'incoming')));
  const res = await deliver(config(), ['team@example.test', 'archive@example.test', 'maildirbox@example.test', 'cmd@example.test',
    'list@example.test', 'loop1@example.test', 'ghost@example.test', 'nosuch@example.test', 'Postmaster@example.test']);
  assert.deepEqual(status(res['team@example.test']), ['sent', '2.0.0']);
  assert.deepEqual(status(res['archive@example.test']), ['sent', '2.0.0']);
  assert.deepEqual(status(res['maildirbox@example.test']), ['sent', '2.0.0']);
  assert.deepEqual(status(res['cmd@example.test']), ['sent', '2.0.0']);
  assert.deepEqual(status(res['list@example.test']), ['sent', '2.0.0']);
  assert.deepEqual([...status(res['loop1@example.test']), res['loop1@example.test']!.text], ['bounced', '5.4.6', 'mail forwarding loop for loop1@example.test']);
  assert.deepEqual([...status(res['ghost@example.test']), res['ghost@example.test']!.text], ['bounced', '5.1.1', 'unknown user: "ghost"']);
  assert.deepEqual([...status(res['nosuch@example.test']), res['nosuch@example.test']!.text], ['bounced', '5.1.1', 'unknown user: "nosuch"']);
  assert.deepEqual(status(res['Postmaster@example.test']), ['sent', '2.0.0']);

  // alice got: team, list (via include), postmaster→root→alice = 3 messages; bob once (team → bob: bob → mailbox).
  const a = spool('alice');
  assert.equal(a.match(/^From sender@remote\.test  /gm)?.length, 2);
  assert.equal(a.match(/^From owner-list@example\.test  /gm)?.length, 1, 'the list copy carries the owner- sender');
  assert.match(a, /^Return-Path: <sender@remote\.test>\nX-Original-To: team@example\.test\nDelivered-To: team@example\.test\nSubject: hi\n\n>From me\nbody\n\n/m);
  assert.equal(spool('bob').match(/^From /gm)?.length, 1);
  if (isRoot) {
    assert.equal(statSync(join(dir, 'spool', 'alice')).uid, NOBODY, 'new spool file belongs to the user');
    assert.equal(statSync(join(dir, 'spool', 'bob')).uid, BOB);
    assert.equal(statSync(join(dir, 'out', 'archive.mbox')).uid, NOBODY, 'alias files are written as default_privs');
    assert.equal(readFileSync(join(dir, 'out', 'cmd.uid'), 'utf8').trim(), String(NOBODY), 'alias commands run as default_privs');
  }
  assert.match(readFileSync(join(dir, 'out', 'archive.mbox'), 'utf8'), /^From sender@remote\.test  .*\nReturn-Path: <sender@remote\.test>\nX-Original-To: archive@example\.test\nDelivered-To: archive@example\.test\n/);
  const md = new MaildirStore();
  const u = await md.forUser({ user: 'x', uid: NOBODY, gid: NOBODY, home: join(dir, 'out/md'), mail: `maildir:${dir}/out/md` } as never);
  const mb = await u.open('INBOX');
  assert.equal(mb.messages().length, 1);
  await mb.close?.();
  await u.close();
  assert.match(readFileSync(join(dir, 'out', 'cmd.msg'), 'utf8'), /^From sender@remote\.test  .*\nReturn-Path: <sender@remote\.test>\nX-Original-To: cmd@example\.test\nDelivered-To: cmd@example\.test\nSubject: hi\n\nFrom me\nbody\n$/);
  const env = readFileSync(join(dir, 'out', 'cmd.env'), 'utf8');
  assert.match(env, /^SENDER=sender@remote\.test$/m);
  assert.match(env, /^RECIPIENT=cmd@example\.test$/m);
  assert.match(env, /^USER=nobody$/m);

  // Remote addresses are re-submitted: one queue file per envelope sender, Delivered-To prepended.
  const fw = await forwarded(before);
  const bySender = (s: string, rc: string) => fw.find((f) => f.sender === s && f.rcpts.includes(rc));
  const t = bySender('sender@remote.test', 'remote@elsewhere.test');
  assert.ok(t, JSON.stringify(fw));
  assert.match(t.content, /^Delivered-To: team@example\.test\nSubject: hi\n/);
  assert.ok(bySender('sender@remote.test', 'bobcopy@elsewhere.test'));
  const l = bySender('owner-list@example.test', 'remote3@elsewhere.test');
  assert.ok(l, 'owner-list becomes the envelope sender of the list expansion');
  assert.match(res['team@example.test']!.text, /forwarded as [0-9A-F]+|delivered/);
});

test('~/.forward: commands run as the user, \\user keeps a copy; unsafe .forward files are ignored', async () => {
  writeFileSync(join(dir, 'aliases'), 'postmaster: root\n');
  buildAliases(`hash:${dir}/aliases`);
  const fwd = join(dir, 'alice', '.forward');
  writeFileSync(fwd, `# keep a copy\n\\alice, "|id -u > ${dir}/out/fwd.uid; cat > ${dir}/out/fwd.msg"\n`, { mode: 0o644 });
  if (isRoot) chownSync(fwd, NOBODY, NOBODY);
  rmSync(join(dir, 'spool', 'alice'), { force: true });
  let res = await deliver(config(), ['alice@example.test']);
  assert.deepEqual(status(res['alice@example.test']), ['sent', '2.0.0']);
  assert.equal(spool('alice').match(/^From /gm)?.length, 1);
  if (isRoot) assert.equal(readFileSync(join(dir, 'out', 'fwd.uid'), 'utf8').trim(), String(NOBODY));
  assert.match(readFileSync(join(dir, 'out', 'fwd.msg'), 'utf8'), /Delivered-To: alice@example\.test\n/);

  // recipient_delimiter: alice+ext first tries .forward+ext
  writeFileSync(join(dir, 'alice', '.forward+ext'), `"|cat > ${dir}/out/ext.msg"\n`, { mode: 0o644 });
  if (isRoot) chownSync(join(dir, 'alice', '.forward+ext'), NOBODY, NOBODY);
  res = await deliver(config(), ['alice+ext@example.test']);
  assert.equal(res['alice+ext@example.test']!.status, 'sent');
  assert.ok(existsSync(join(dir, 'out', 'ext.msg')));

  // Group-writable .forward: ignored with a warning, mail goes to the mailbox.
  rmSync(join(dir, 'spool', 'alice'));
  rmSync(join(dir, 'out', 'fwd.uid'));
  chmodSync(fwd, 0o664);
  warnings.length = 0;
  res = await deliver(config(), ['alice@example.test']);
  assert.equal(res['alice@example.test']!.status, 'sent');
  assert.ok(!existsSync(join(dir, 'out', 'fwd.uid')));
  assert.match(warnings.join('\n'), /\.forward: writable by group or others \(mode 664\): ignored/);
  if (isRoot) {
    // A .forward owned by someone else: ignored.
    chmodSync(fwd, 0o644);
    chownSync(fwd, BOB, BOB);
    warnings.length = 0;
    await deliver(config(), ['alice@example.test']);
    assert.ok(!existsSync(join(dir, 'out', 'fwd.uid')));
    assert.match(warnings.join('\n'), /not owned by the user/);
  }
  rmSync(fwd);
  rmSync(join(dir, 'alice', '.forward+ext'));
});

test('allow_mail_to_commands / allow_mail_to_files restrict alias and .forward targets', async () => {
  writeFileSync(join(dir, 'aliases'), `c: "|true"\nf: ${dir}/out/f.mbox\n`);
  buildAliases(`hash:${dir}/aliases`);
  const res = await deliver(config(['allow_mail_to_commands = forward', 'allow_mail_to_files = forward']), ['c@example.test', 'f@example.test']);
  assert.deepEqual([...status(res['c@example.test']), res['c@example.test']!.text], ['bounced', '5.7.1', 'mail to command is restricted']);
  assert.deepEqual([...status(res['f@example.test']), res['f@example.test']!.text], ['bounced', '5.7.1', 'mail to file is restricted']);
  assert.ok(!existsSync(join(dir, 'out', 'f.mbox')));
});

test('home_mailbox = Maildir/ delivers as the user into a Maildir that the store (and Dovecot) can read', async () => {
  writeFileSync(join(dir, 'aliases'), 'postmaster: root\n');
  buildAliases(`hash:${dir}/aliases`);
  const res = await deliver(config(['home_mailbox = Maildir/']), ['bob@example.test'], 'Subject: md\n\nhello\n');
  assert.deepEqual(status(res['bob@example.test']), ['sent', '2.0.0']);
  assert.equal(res['bob@example.test']!.text, 'delivered to maildir');
  const newDir = join(dir, 'bob', 'Maildir', 'new');
  const files = readdirSync(newDir);
  assert.equal(files.length, 1);
  if (isRoot) assert.equal(statSync(join(newDir, files[0]!)).uid, BOB, 'written with the user\'s uid');
  assert.equal(readFileSync(join(newDir, files[0]!), 'utf8'), 'Return-Path: <sender@remote.test>\nX-Original-To: bob@example.test\nDelivered-To: bob@example.test\nSubject: md\n\nhello\n');
  const u = await new MaildirStore().forUser({ user: 'bob', uid: BOB, gid: BOB, home: join(dir, 'bob'), mail: `maildir:${dir}/bob/Maildir` } as never);
  const st = await u.status('INBOX');
  assert.equal(st.messages, 1);
  await u.close();
  if (isRoot && existsSync('/usr/bin/doveadm')) {
    // Real Dovecot opens the Maildir local(8) wrote, as the user, and finds the message.
    const conf = join(dir, 'dovecot.conf');
    writeFileSync(conf, [
      `base_dir = ${dir}/dovecot-run`, `state_dir = ${dir}/dovecot-state`, 'log_path = /dev/stderr', 'info_log_path = /dev/null',
      `mail_location = maildir:${dir}/bob/Maildir`, `mail_uid = ${BOB}`, `mail_gid = ${BOB}`, 'first_valid_uid = 1', 'first_valid_gid = 1',
      'passdb {', '  driver = static', '  args = password=x', '}',
      'userdb {', '  driver = static', `  args = uid=${BOB} gid=${BOB} home=${dir}/bob`, '}', '',
    ].join('\n'));
    const r = spawnSync('/usr/bin/doveadm', ['-c', conf, 'fetch', 'hdr', 'mailbox', 'INBOX', 'all'], { env: { PATH: '/usr/bin:/bin', USER: 'bob', HOME: `${dir}/bob` }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /Error|Panic|Fatal/);
    assert.match(r.stdout, /Delivered-To: bob@example\.test\nSubject: md/);
  }
});

test('mailbox_size_limit limits the mailbox FILE, not the message (Postfix set_file_limit, as Postfix 3.7 does): past it, 5.2.2 "File too large" and the file unchanged', async () => {
  writeFileSync(join(dir, 'aliases'), 'postmaster: root\n');
  buildAliases(`hash:${dir}/aliases`);
  const cfg = (extra: string[] = []) => config(['mailbox_size_limit = 3000', 'message_size_limit = 2000', ...extra]);
  const old = 'From x Thu Jan  1 00:00:00 2026\nX: ' + 'a'.repeat(2500) + '\n\nbody\n\n';
  const body = 'Subject: t\n\n' + 'b'.repeat(300) + '\n';
  // The spool file (mail_spool_directory/bob): 2543 bytes + this message > 3000.
  const box = join(dir, 'spool', 'bob');
  writeFileSync(box, old);
  if (isRoot) chownSync(box, BOB, BOB);
  let res = await deliver(cfg(), ['bob@example.test'], body);
  assert.deepEqual(status(res['bob@example.test']), ['bounced', '5.2.2']);
  assert.equal(res['bob@example.test']!.text, `cannot update mailbox ${box} for user bob. error writing message: File too large`);
  assert.equal(readFileSync(box, 'utf8'), old);
  // The same message into an empty mailbox fits.
  rmSync(box);
  res = await deliver(cfg(), ['bob@example.test'], body);
  assert.deepEqual(status(res['bob@example.test']), ['sent', '2.0.0']);
  rmSync(box);
  // home_mailbox as a file: the same limit (through the child with the user's rights when root).
  const mbox = join(dir, 'alice', 'mbox');
  writeFileSync(mbox, old);
  if (isRoot) chownSync(mbox, NOBODY, NOBODY);
  res = await deliver(cfg(['home_mailbox = mbox']), ['alice@example.test'], body);
  assert.deepEqual(status(res['alice@example.test']), ['bounced', '5.2.2']);
  assert.equal(res['alice@example.test']!.text, `cannot append message to file ${mbox}: error writing message: File too large`);
  assert.equal(readFileSync(mbox, 'utf8'), old);
  rmSync(mbox);
});

test('mailbox_command gets the Postfix environment, runs as the user, and its exit status counts', async () => {
  writeFileSync(join(dir, 'aliases'), 'postmaster: root\n');
  buildAliases(`hash:${dir}/aliases`);
  const cmd = `env > ${dir}/out/mc.env; id -u > ${dir}/out/mc.uid; cat > ${dir}/out/mc.msg; echo "$user $HOME"; exit $EXIT_WITH`;
  // $user is expanded by local(8); $HOME is left to the shell.
  const res = await deliver(config([`mailbox_command = EXIT_WITH=0; ${cmd}`]), ['bob+tag@example.test']);
  assert.deepEqual(status(res['bob+tag@example.test']), ['sent', '2.0.0']);
  const env = readFileSync(join(dir, 'out', 'mc.env'), 'utf8');
  for (const [k, v] of Object.entries({ HOME: `${dir}/bob`, USER: 'bob', LOGNAME: 'bob', SHELL: '/bin/bash', SENDER: 'sender@remote.test', RECIPIENT: 'bob+tag@example.test', EXTENSION: 'tag', DOMAIN: 'example.test', LOCAL: 'bob+tag', ORIGINAL_RECIPIENT: 'bob+tag@example.test', PATH: '/usr/bin:/bin' })) {
    assert.match(env, new RegExp(`^${k}=${v.replace(/[.+]/g, '\\$&')}$`, 'm'), k);
  }
  if (isRoot) assert.equal(readFileSync(join(dir, 'out', 'mc.uid'), 'utf8').trim(), String(BOB));
  assert.match(readFileSync(join(dir, 'out', 'mc.msg'), 'utf8'), /^From sender@remote\.test  /);
  const r2 = await deliver(config([`mailbox_command = EXIT_WITH=75; ${cmd}`]), ['bob@example.test']);
  assert.deepEqual([...status(r2['bob@example.test']), r2['bob@example.test']!.text], ['deferred', '4.3.0', `temporary failure. Command output: bob ${dir}/bob `]);
  const r3 = await deliver(config([`mailbox_command = EXIT_WITH=67; ${cmd}`]), ['bob@example.test']);
  assert.deepEqual(status(r3['bob@example.test']), ['bounced', '5.1.1']);
});

test('mailbox_transport and fallback_transport hand the recipient back to qmgr; luser_relay catches unknown users', async () => {
  writeFileSync(join(dir, 'aliases'), 'staff: bob\n');
  buildAliases(`hash:${dir}/aliases`);
  let res = await deliver(config(['mailbox_transport = lmtp:unix:private/dovecot-lmtp']), ['bob@example.test', 'staff@example.test']);
  const r = res['bob@example.test']!;
  assert.ok(isRedirect(r));
  assert.deepEqual([r.status, r.redirect], ['deferred', { transport: 'lmtp', nexthop: 'unix:private/dovecot-lmtp' }]);
  // Reached through an alias: re-submitted as bob@example.test so qmgr redirects that recipient.
  assert.equal(res['staff@example.test']!.status, 'sent');
  assert.match(res['staff@example.test']!.text, /^forwarded as /);

  res = await deliver(config(['fallback_transport = dovecot']), ['nobody-here@example.test', 'bob@example.test']);
  assert.deepEqual((res['nobody-here@example.test'] as RecipientResult & { redirect?: unknown }).redirect, { transport: 'dovecot', nexthop: 'example.test' });
  assert.equal(res['bob@example.test']!.status, 'sent', 'known users still get their mailbox');

  const before = new Set(readdirSync(join(dir, 'queue', 'incoming')));
  res = await deliver(config(['luser_relay = catchall+$local@elsewhere.test']), ['whoever@example.test']);
  assert.equal(res['whoever@example.test']!.status, 'sent');
  const fw = await forwarded(before);
  assert.deepEqual(fw.map((f) => f.rcpts), [['catchall+whoever@elsewhere.test']]);
});

test('mail for root is never delivered as root: default_privs, and a missing default_privs defers', async () => {
  writeFileSync(join(dir, 'aliases'), `rootcmd: "|id -u > ${dir}/out/root.uid"\n`);
  buildAliases(`hash:${dir}/aliases`);
  rmSync(join(dir, 'spool', 'root'), { force: true });
  const res = await deliver(config(), ['root@example.test', 'rootcmd@example.test']);
  assert.equal(res['root@example.test']!.status, 'sent');
  if (isRoot) {
    assert.equal(statSync(join(dir, 'spool', 'root')).uid, NOBODY);
    assert.equal(readFileSync(join(dir, 'out', 'root.uid'), 'utf8').trim(), String(NOBODY));
  }
  const r2 = await deliver(config(['default_privs = toor']), ['rootcmd@example.test']);
  assert.deepEqual(status(r2['rootcmd@example.test']), ['deferred', '4.3.0']);
  assert.match(r2['rootcmd@example.test']!.text, /default_privs = toor/);
});

test('a Delivered-To loop bounces (5.4.6 mail forwarding loop); a broken alias table defers (4.3.0), never bounces', async () => {
  const res = await deliver(config(), ['bob@example.test'], 'Delivered-To: bob@example.test\nSubject: x\n\nbody\n');
  assert.deepEqual([...status(res['bob@example.test']), res['bob@example.test']!.text], ['bounced', '5.4.6', 'mail forwarding loop for bob@example.test']);
  const r2 = await deliver(config([`alias_maps = hash:${dir}/no-such-aliases`]), ['bob@example.test']);
  assert.deepEqual(status(r2['bob@example.test']), ['deferred', '4.3.0']);
});

test('DMARC quarantine (docs/authres.md): a message with our Authentication-Results mark goes to Maildir/.Junk, created and subscribed; a mark of another authserv-id does not', async () => {
  writeFileSync(join(dir, 'aliases'), 'postmaster: root\n');
  buildAliases(`hash:${dir}/aliases`);
  const mark = (id: string) => `Authentication-Results: ${id};\n\tspf=fail smtp.mailfrom=a@quar.test;\n\tdmarc=fail (p=QUARANTINE sp=QUARANTINE pct=100 dis=QUARANTINE) header.from=quar.test policy.dmarc=quarantine\n`;
  const res = await deliver(config(['home_mailbox = Maildir/']), ['bob@example.test'], `${mark('mx.example.test')}Subject: junk\n\nspam\n`);
  assert.deepEqual(status(res['bob@example.test']), ['sent', '2.0.0']);
  const junk = join(dir, 'bob', 'Maildir', '.Junk');
  const files = readdirSync(join(junk, 'new')).concat(readdirSync(join(junk, 'cur')));
  assert.equal(files.length, 1);
  if (isRoot) assert.equal(statSync(junk).uid, BOB, 'the folder belongs to the user');
  assert.ok(existsSync(join(junk, 'maildirfolder')));
  assert.match(readFileSync(join(dir, 'bob', 'Maildir', 'subscriptions'), 'utf8'), /^Junk$/m);
  const other = await deliver(config(['home_mailbox = Maildir/']), ['bob@example.test'], `${mark('elsewhere.example')}Subject: not ours\n\nx\n`);
  assert.deepEqual(status(other['bob@example.test']), ['sent', '2.0.0']);
  assert.ok(readdirSync(join(dir, 'bob', 'Maildir', 'new')).some((f) => readFileSync(join(dir, 'bob', 'Maildir', 'new', f), 'utf8').includes('Subject: not ours')));
});

test('SRS (docs/authres.md): an alias forwarding mail from outside to another domain re-submits it with an SRS0 sender; our own senders and bounces keep theirs', async () => {
  writeFileSync(join(dir, 'aliases'), 'postmaster: root\nfwd: someone@remote.test\n');
  buildAliases(`hash:${dir}/aliases`);
  const cfg = config([`postern_srs_secret_file = ${dir}/srs.secret`]);
  const agent = await createLocalAgent(cfg, { queue: new MailQueue(join(dir, 'queue')), cleanupClient: cleanup, cleanup: cleanupSettings(cfg) });
  const seen = new Set(readdirSync(join(dir, 'queue', 'incoming')));
  for (const sender of ['alice@origin.test', 'me@example.test', '']) {
    const qf = await queueMessage(['fwd@example.test'], 'Subject: fwd\n\nhello\n', sender);
    submitted.add(qf.queueId);
    const [r] = await agent.deliver({ qf, transport: 'local', nexthop: 'example.test', recipients: qf.recipients, activeSince: Date.now() });
    assert.equal(r!.status, 'sent', r!.text);
  }
  const out = (await forwarded(seen)).filter((f) => f.rcpts.includes('someone@remote.test')).map((f) => f.sender).sort();
  assert.equal(out.length, 3);
  assert.deepEqual(out.slice(0, 2), ['', 'SRS0'.concat(out[1]!.slice(4))]);
  assert.match(out[1]!, /^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=origin\.test=alice@mx\.example\.test$/);
  assert.equal(out[2], 'me@example.test');
  assert.ok(existsSync(join(dir, 'srs.secret')));
});

test('verification: an MTA probe is answered without expansion or delivery; sendmail -bv expands and reports each final address', async () => {
  writeFileSync(join(dir, 'aliases'), [
    'vteam: alice, vremote@elsewhere.test',
    `varchive: ${dir}/out/v-archive.mbox`,
    `vcmd: "|touch ${dir}/out/v-cmd-ran"`,
  ].join('\n') + '\n');
  buildAliases(join(dir, 'aliases'));
  writeFileSync(join(dir, 'bob', '.forward'), 'bob-elsewhere@elsewhere.test\n', { mode: 0o644 });
  if (isRoot) chownSync(join(dir, 'bob', '.forward'), BOB, BOB);
  const run = async (cfg: MainConfig, rcpts: string[], userVerify: boolean) => {
    const agent = await createLocalAgent(cfg, { queue: new MailQueue(join(dir, 'queue')), cleanupClient: cleanup });
    const qf = await queueMessage(rcpts, 'Subject: probe\n\n');
    submitted.add(qf.queueId);
    const res = await agent.deliver({ qf, transport: 'local', nexthop: 'example.test', recipients: qf.recipients, activeSince: Date.now(), verify: true, ...(userVerify ? { userVerify } : {}) });
    return Object.fromEntries(res.map((r) => [r.recipient.address, r]));
  };
  const before = new Set(readdirSync(join(dir, 'queue', 'incoming')));
  const spoolBefore = readdirSync(join(dir, 'spool')).sort();
  // MTA probe (Postfix DEL_REQ_FLAG_MTA_VRFY): one answer per recipient, nothing expanded.
  const p = await run(config(), ['vteam@example.test', 'alice@example.test', 'bob@example.test', 'nosuch@example.test', 'varchive@example.test'], false);
  assert.deepEqual(['vteam', 'alice', 'bob', 'nosuch', 'varchive'].map((u) => [p[`${u}@example.test`]!.status, p[`${u}@example.test`]!.text]), [
    ['sent', 'aliased to alice, vremote@elsewhere.test'],
    ['sent', 'delivers to mailbox'],
    ['sent', `forward via file: ${dir}/bob/.forward`],
    ['bounced', 'unknown user: "nosuch"'],
    ['sent', `aliased to ${dir}/out/v-archive.mbox`],
  ]);
  // mailbox_command, home_mailbox Maildir/, luser_relay to a remote address and to a local user.
  assert.equal((await run(config(['mailbox_command = /usr/bin/procmail -a "$EXTENSION"']), ['alice@example.test'], false))['alice@example.test']!.text, 'delivers to command: /usr/bin/procmail -a "$EXTENSION"');
  assert.equal((await run(config(['home_mailbox = Maildir/']), ['alice@example.test'], false))['alice@example.test']!.text, 'delivers to maildir');
  assert.equal((await run(config(['luser_relay = catchall@elsewhere.test']), ['nosuch@example.test'], false))['nosuch@example.test']!.text, 'forwards to catchall@elsewhere.test');
  assert.equal((await run(config(['luser_relay = alice']), ['nosuch@example.test'], false))['nosuch@example.test']!.text, 'delivers to mailbox');
  // sendmail -bv (DEL_REQ_FLAG_USR_VRFY): the expansion, one trace per final address.
  const u = await run(config(), ['vteam@example.test', 'varchive@example.test', 'vcmd@example.test', 'bob@example.test'], true);
  assert.deepEqual(u['vteam@example.test']!.traces, [
    { address: 'alice@example.test', status: 'sent', dsn: '2.0.0', text: 'delivers to mailbox' },
    { address: 'vremote@elsewhere.test', status: 'sent', dsn: '2.0.0', text: 'forwards to vremote@elsewhere.test' },
  ]);
  assert.equal(u['varchive@example.test']!.traces?.[0]?.text, `delivers to file: ${dir}/out/v-archive.mbox`);
  assert.equal(u['vcmd@example.test']!.traces?.[0]?.text, `delivers to command: touch ${dir}/out/v-cmd-ran`);
  assert.deepEqual(u['bob@example.test']!.traces, [{ address: 'bob-elsewhere@elsewhere.test', status: 'sent', dsn: '2.0.0', text: 'forwards to bob-elsewhere@elsewhere.test' }]);
  // Nothing was delivered, run, written or forwarded.
  assert.ok(!existsSync(join(dir, 'out', 'v-archive.mbox')) && !existsSync(join(dir, 'out', 'v-cmd-ran')));
  assert.deepEqual(readdirSync(join(dir, 'spool')).sort(), spoolBefore);
  assert.deepEqual(await forwarded(before), []);
  rmSync(join(dir, 'bob', '.forward'));
});
