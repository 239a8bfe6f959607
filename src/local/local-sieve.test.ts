/**
 * local(8) with Sieve (dovecot.conf `protocol lda { mail_plugins = sieve }`): home_mailbox
 * Maildir/ delivery runs $HOME/.dovecot.sieve; as root the script runs and the Maildir is
 * written by a child with the user's uid; the vacation reply becomes a queue file through
 * cleanup with the null sender.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../global/mail-conf.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { CleanupSession } from '../cleanup/cleanup.ts';
import { UNIX_FILES } from '../util/dict-unix.ts';
import { setLogSink } from '../util/msg.ts';
import { createLocalAgent } from './local.ts';
import { cleanup } from '../master/master-clients.ts';
import { sieveSettings } from '../lib-sieve/sieve-settings.ts';

setLogSink(() => {});
const isRoot = process.getuid?.() === 0;
const BOB = 10;
let dir = '';
const savedPasswd = UNIX_FILES.passwd;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-local-sieve-'));
  chmodSync(dir, 0o755);
  for (const d of ['bob', 'queue']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'bob', '.dovecot.sieve'), 'require ["fileinto","mailbox","vacation"];\nif exists "list-id" { fileinto :create "Lists"; }\nvacation "Bob is away.";\n');
  if (isRoot) { chownSync(join(dir, 'bob'), BOB, BOB); chownSync(join(dir, 'bob', '.dovecot.sieve'), BOB, BOB); }
  writeFileSync(join(dir, 'passwd'), `bob:x:${BOB}:${BOB}:Bob:${dir}/bob:/bin/bash\n`);
  UNIX_FILES.passwd = join(dir, 'passwd');
  new MailQueue(join(dir, 'queue')).ensureDirs();
});
after(() => { UNIX_FILES.passwd = savedPasswd; rmSync(dir, { recursive: true, force: true }); });

async function queued(body: string): Promise<QueueFile> {
  const q = new MailQueue(join(dir, 'queue'));
  const c = await CleanupSession.open({ myhostname: 'mx.example.test', myorigin: 'example.test', headerSizeLimit: 102400, messageSizeLimit: 0, alwaysAddMissingHeaders: false }, q, { sender: 'sender@remote.test', attrs: {}, addMissingHeaders: false });
  c.addRecipient({ address: 'bob@example.test' });
  await c.write(Buffer.from(body));
  const r = await c.finish();
  assert.ok('queueId' in r);
  return QueueFile.open(q.path('incoming', r.queueId), r.queueId);
}

test('home_mailbox Maildir/ with Sieve: fileinto :create as the user, vacation queued with the null sender', async () => {
  const cfg = MainConfig.parse([
    'mydestination = example.test', 'myorigin = example.test', 'myhostname = mx.example.test', 'alias_maps =',
    `queue_directory = ${join(dir, 'queue')}`, 'home_mailbox = Maildir/', 'recipient_delimiter = +',
  ].join('\n'), join(dir, 'main.cf'), dir);
  const sieve = sieveSettings({ get: (n) => (n === 'mail_plugins' ? 'sieve' : undefined) }, 'lda');
  const agent = await createLocalAgent(cfg, { queue: new MailQueue(join(dir, 'queue')), cleanupClient: cleanup, sieve: { ...sieve, hostname: 'mx.example.test' } });
  const qf = await queued('From: sender@remote.test\nTo: bob@example.test\nSubject: news\nList-Id: <l.example>\nMessage-ID: <n1@remote.test>\n\nhello\n');
  const before = new Set(readdirSync(join(dir, 'queue', 'incoming')));
  const [res] = await agent.deliver({ qf, transport: 'local', nexthop: 'example.test', recipients: qf.recipients, activeSince: Date.now() });
  assert.equal(res!.status, 'sent', res!.text);
  assert.match(res!.text, /\(Lists\)/);
  const files = readdirSync(join(dir, 'bob', 'Maildir', '.Lists', 'new'));
  assert.equal(files.length, 1);
  if (isRoot) assert.equal(statSync(join(dir, 'bob', 'Maildir', '.Lists', 'new', files[0]!)).uid, BOB, "written with the user's uid");
  // A list message gets no vacation reply (RFC 3834 §2): nothing new queued.
  assert.deepEqual(readdirSync(join(dir, 'queue', 'incoming')).filter((f) => !before.has(f)), []);
  const qf2 = await queued('From: sender@remote.test\nTo: bob@example.test\nSubject: personal\nMessage-ID: <p1@remote.test>\n\nhi Bob\n');
  const before2 = new Set(readdirSync(join(dir, 'queue', 'incoming')));
  const [res2] = await agent.deliver({ qf: qf2, transport: 'local', nexthop: 'example.test', recipients: qf2.recipients, activeSince: Date.now() });
  assert.equal(res2!.status, 'sent', res2!.text);
  const fresh = readdirSync(join(dir, 'queue', 'incoming')).filter((f) => !before2.has(f) && f !== qf2.queueId);
  assert.equal(fresh.length, 1, 'one vacation reply queued');
  const reply = await QueueFile.open(join(dir, 'queue', 'incoming', fresh[0]!), fresh[0]!);
  assert.equal(reply.sender, '');
  assert.deepEqual(reply.recipients.map((r) => r.address), ['sender@remote.test']);
  const text = (await reply.content()).toString();
  assert.match(text, /^Auto-Submitted: auto-replied \(vacation\)$/m);
  assert.match(text, /Bob is away\./);
});
