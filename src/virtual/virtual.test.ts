import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs, { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../global/mail-conf.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { CleanupSession } from '../cleanup/cleanup.ts';
import { MaildirStore, dropIdleStates } from '../lib-storage/maildir/maildir-storage.ts';
import { createVirtualAgent, virtualSettings, mailboxPath } from './virtual.ts';
import { setLogSink } from '../util/msg.ts';
import { sieveSettings } from '../lib-sieve/sieve-settings.ts';

setLogSink(() => {});

async function queueMessage(dir: string, rcpts: string[], body: string, sender = 'a@example.org'): Promise<QueueFile> {
  const q = new MailQueue(join(dir, 'queue'));
  q.ensureDirs();
  const c = await CleanupSession.open({ myhostname: 'mx.example.test', myorigin: 'example.test', headerSizeLimit: 102400, messageSizeLimit: 0, alwaysAddMissingHeaders: false }, q, { sender, attrs: {}, addMissingHeaders: false });
  for (const r of rcpts) c.addRecipient({ address: r });
  await c.write(Buffer.from(body));
  const r = await c.finish();
  assert.ok('queueId' in r);
  return QueueFile.open(q.path('incoming', r.queueId), r.queueId);
}

test('virtual delivers into Maildir under virtual_mailbox_base, catch-all included; unknown users bounce', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-virtual-'));
  try {
    const base = join(dir, 'vmail');
    const cfg = MainConfig.parse([
      `virtual_mailbox_base = ${base}`,
      'virtual_mailbox_maps = inline:{ alice@example.test=example.test/alice/, @catch.test=catch.test/all/, bob@example.test=example.test/bob.mbox, evil@example.test=../../etc/x/, abs@example.test=/tmp/x/ }',
      'virtual_minimum_uid = 0',
    ].join('\n'), 'main.cf', dir);
    const agent = createVirtualAgent(await virtualSettings(cfg));
    const body = 'Subject: hello\n\nFrom the start\nline 2\n';
    const qf = await queueMessage(dir, ['alice@example.test', 'anyone@catch.test', 'nobody@example.test', 'bob@example.test', 'evil@example.test', 'abs@example.test'], body);
    const results = await agent.deliver({ qf, transport: 'virtual', nexthop: 'example.test', recipients: qf.recipients, activeSince: Date.now() });
    assert.deepEqual(results.map((r) => [r.recipient.address, r.status, r.dsn]), [
      ['alice@example.test', 'sent', '2.0.0'],
      ['anyone@catch.test', 'sent', '2.0.0'],
      ['nobody@example.test', 'bounced', '5.1.1'],
      ['bob@example.test', 'sent', '2.0.0'],
      ['evil@example.test', 'deferred', '4.3.5'],
      ['abs@example.test', 'deferred', '4.3.5'],
    ]);
    assert.equal(results[2]!.text, 'unknown user: "nobody@example.test"');
    const newDir = join(base, 'example.test/alice/new');
    const files = readdirSync(newDir);
    assert.equal(files.length, 1);
    assert.match(files[0]!, /^\d+\.M\d+P\d+Q\d+\.[^,]+,S=\d+(,W=\d+)?$/, 'Dovecot-style unique name with size');
    assert.equal(readFileSync(join(newDir, files[0]!), 'utf8'), `Return-Path: <a@example.org>\nDelivered-To: alice@example.test\n${body}`);
    assert.equal(readdirSync(join(base, 'catch.test/all/new')).length, 1);
    const mbox = readFileSync(join(base, 'example.test/bob.mbox'), 'utf8');
    assert.match(mbox, /^From a@example\.org  \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\nReturn-Path: <a@example\.org>\nDelivered-To: bob@example\.test\nSubject: hello\n\n>From the start\nline 2\n\n$/);
    assert.ok(!existsSync(join(dir, 'etc')), 'nothing written outside the base');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('Maildir delivery takes no uidlist lock; the reader numbers new/ mail in delivery order, and UIDs stay', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-virtual-'));
  try {
    const base = join(dir, 'vmail');
    const cfg = MainConfig.parse(`virtual_mailbox_base = ${base}\nvirtual_mailbox_maps = inline:{ a@example.test=d/a/ }\nvirtual_minimum_uid = 0`, 'main.cf', dir);
    const agent = createVirtualAgent(await virtualSettings(cfg));
    const deliver = async (subject: string) => {
      const qf = await queueMessage(dir, ['a@example.test'], `Subject: ${subject}\n\nbody\n`);
      const [r] = await agent.deliver({ qf, transport: 'virtual', nexthop: 'example.test', recipients: qf.recipients, activeSince: Date.now() });
      assert.equal(r!.status, 'sent');
    };
    // concurrent first deliveries create the Maildir once, and none is lost
    await Promise.all(['m1', 'm2', 'm3'].map(deliver));
    const mdir = join(base, 'd/a');
    assert.deepEqual(readdirSync(mdir).sort(), ['cur', 'new', 'tmp']);
    assert.equal(readdirSync(join(mdir, 'new')).length, 3);
    assert.equal(readdirSync(join(mdir, 'tmp')).length, 0);
    assert.ok(!existsSync(join(mdir, 'dovecot-uidlist')), 'delivery does not touch dovecot-uidlist');
    const store = new MaildirStore();
    const user = await store.forUser({ user: 'a@example.test', uid: 0, gid: 0, home: mdir, mail: `maildir:${mdir}` });
    const subjects = async (): Promise<[number, string][]> => {
      const box = await user.open('INBOX');
      try {
        const uids = box.messages().map((m) => m.uid);
        const out: [number, string][] = uids.map((u) => [u, '']);
        await box.readMany(uids, (i, content) => { out[i]![1] = /Subject: (\S+)/.exec(content.toString('latin1'))![1]!; });
        return out;
      } finally { await box.close(); }
    };
    const first = await subjects();
    assert.deepEqual(first.map(([u]) => u), [1, 2, 3], 'the first sync numbers the three messages');
    assert.equal(readdirSync(join(mdir, 'new')).length, 0, 'moved to cur/ by the sync');
    await deliver('m4');
    const second = await subjects();
    assert.deepEqual(second.slice(0, 3), first, 'UIDs of synced messages do not change');
    assert.deepEqual(second[3], [4, 'm4'], 'a later delivery gets the next UID');
    dropIdleStates();
    assert.deepEqual(await subjects(), second, 'the same UIDs from dovecot-uidlist in a fresh state');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a message already delivered to the recipient bounces as a forwarding loop', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-virtual-'));
  try {
    const cfg = MainConfig.parse(`virtual_mailbox_base = ${join(dir, 'vmail')}\nvirtual_mailbox_maps = inline:{ a@example.test=a/ }\nvirtual_minimum_uid = 0`, 'main.cf', dir);
    const agent = createVirtualAgent(await virtualSettings(cfg));
    const qf = await queueMessage(dir, ['a@example.test'], 'Delivered-To: A@example.test\nSubject: x\n\nbody\n');
    const [r] = await agent.deliver({ qf, transport: 'virtual', nexthop: 'example.test', recipients: qf.recipients, activeSince: Date.now() });
    assert.equal(r!.status, 'bounced');
    assert.equal(r!.text, 'mail forwarding loop for a@example.test');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('mailboxPath never leaves the base', () => {
  assert.deepEqual(mailboxPath('/var/vmail', 'd/u/'), { path: '/var/vmail/d/u/' });
  for (const bad of ['../x/', 'd/../../x', '/etc/', 'a/\0/']) assert.ok('error' in mailboxPath('/var/vmail', bad), bad);
  assert.ok('error' in mailboxPath('', 'x/'));
});

test('virtual_minimum_uid is enforced', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-virtual-'));
  try {
    const cfg = MainConfig.parse(`virtual_mailbox_base = ${join(dir, 'vmail')}\nvirtual_mailbox_maps = inline:{ a@example.test=a/ }\nvirtual_uid_maps = static:5\nvirtual_gid_maps = static:5\nvirtual_minimum_uid = 100`, 'main.cf', dir);
    const agent = createVirtualAgent(await virtualSettings(cfg));
    const qf = await queueMessage(dir, ['a@example.test'], 'Subject: x\n\nbody\n');
    const [r] = await agent.deliver({ qf, transport: 'virtual', nexthop: 'example.test', recipients: qf.recipients, activeSince: Date.now() });
    assert.equal(r!.status, 'deferred');
    assert.equal(r!.dsn, '4.3.5');
    assert.ok(!existsSync(join(dir, 'vmail', 'a')));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('Sieve at virtual(8) delivery: the user scripts are loaded once (a broken script logged once), and the result says when it is durable as the plain path does', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-virtual-'));
  try {
    const base = join(dir, 'vmail');
    const cfg = MainConfig.parse(`virtual_mailbox_base = ${base}\nvirtual_mailbox_maps = inline:{ a@example.test=d/a/, b@example.test=d/b/ }\nvirtual_minimum_uid = 0`, 'main.cf', dir);
    const sieve = sieveSettings({ get: (n) => (n === 'mail_plugins' ? 'sieve' : undefined) }, 'lda');
    const agent = createVirtualAgent({ ...(await virtualSettings(cfg)), sieve });
    mkdirSync(join(base, 'd/a'), { recursive: true });
    writeFileSync(join(base, 'd/a/.dovecot.sieve'), 'require ["fileinto", "mailbox"];\nfileinto :create "Lists";\n');
    mkdirSync(join(base, 'd/b'), { recursive: true });
    writeFileSync(join(base, 'd/b/.dovecot.sieve'), 'if foo { keep; }\n');
    const logWrites: string[] = [];
    const real = fs.writeFileSync;
    t.mock.method(fs, 'writeFileSync', (...a: Parameters<typeof fs.writeFileSync>) => {
      if (typeof a[0] === 'string' && a[0].endsWith('.sieve.log')) logWrites.push(a[0]);
      return real(...a);
    });
    syncBuiltinESMExports();
    t.after(() => { t.mock.restoreAll(); syncBuiltinESMExports(); });
    const qf = await queueMessage(dir, ['a@example.test', 'b@example.test'], 'Subject: x\n\nbody\n');
    const results = await agent.deliver({ qf, transport: 'virtual', nexthop: 'example.test', recipients: qf.recipients, activeSince: Date.now() });
    assert.deepEqual(results.map((r) => [r.recipient.address, r.status, r.text]), [
      ['a@example.test', 'sent', 'delivered to maildir (Lists)'],
      ['b@example.test', 'sent', 'delivered to maildir'],
    ]);
    for (const r of results) {
      assert.ok(r.durable instanceof Promise, `${r.recipient.address}: durable`);
      await r.durable;
    }
    assert.equal(readdirSync(join(base, 'd/a/.Lists/new')).length, 1);
    assert.equal(readdirSync(join(base, 'd/b/new')).length, 1, 'a broken script: INBOX');
    assert.deepEqual(logWrites, [join(base, 'd/b/.dovecot.sieve.log')], 'the broken script is reported once per delivery');
    assert.match(readFileSync(join(base, 'd/b/.dovecot.sieve.log'), 'utf8'), /unknown test 'foo'/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
