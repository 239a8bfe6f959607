/**
 * lmtp(8) client against real Dovecot 2.3's LMTP server (Debian dovecot-lmtpd), started as a
 * private instance by test/harness/real-dovecot.ts: a message from a real queue file goes to
 * two known users and one unknown one; the unknown one bounces with Dovecot's own 550 at RCPT,
 * the others get their own reply after the final dot (RFC 2033 §4.2), and the message is in
 * each Maildir byte for byte after the Return-Path:/Received: headers Dovecot prepends.
 * A user over quota gets a per-recipient 552 after DATA while the other recipient succeeds.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { QueueFile } from '../../src/global/queue-file-reader.ts';
import { CleanupSession } from '../../src/cleanup/cleanup.ts';
import { createLmtpAgent } from '../../src/smtp/smtp.ts';
import { setLogSink } from '../../src/util/msg.ts';
import { RealDovecot } from '../harness/real-dovecot.ts';

setLogSink(() => {});
const skip = RealDovecot.unavailable();
const dir = mkdtempSync(join(tmpdir(), 'postern-lmtp-'));
const queue = new MailQueue(join(dir, 'queue'));
queue.ensureDirs();
let dc: RealDovecot | undefined;

before(async () => {
  if (skip) return;
  dc = await RealDovecot.start({
    protocols: ['lmtp'],
    users: [
      { user: 'alice@example.test', pass: 'x' },
      { user: 'bob@example.test', pass: 'x' },
      { user: 'full@example.test', pass: 'x', extra: 'userdb_quota_rule=*:storage=1K' },
    ],
    mailPlugins: 'quota',
    extraConf: 'plugin {\n  quota = maildir:User quota\n}\n',
  });
});
after(async () => {
  await dc?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function queued(rcpts: string[], content: string): Promise<QueueFile> {
  const c = await CleanupSession.open({ myhostname: 'mx.postern.test', myorigin: 'postern.test', headerSizeLimit: 102400, messageSizeLimit: 10240000, alwaysAddMissingHeaders: false }, queue,
    { sender: 'sender@postern.test', attrs: {}, addMissingHeaders: false });
  for (const r of rcpts) c.addRecipient({ address: r, orig: r });
  await c.write(Buffer.from(content, 'utf8'));
  const res = await c.finish();
  assert.ok('queueId' in res);
  return QueueFile.open(queue.path('incoming', res.queueId), res.queueId);
}

function maildirMessages(user: string): Buffer[] {
  const nd = join(dc!.maildir(user), 'Maildir', 'new');
  const base = (() => { try { readdirSync(nd); return nd; } catch { return join(dc!.maildir(user), 'new'); } })();
  return readdirSync(base).sort().map((f) => readFileSync(join(base, f)));
}

const MSG = 'From: Sender <sender@postern.test>\nTo: alice@example.test\nSubject: lmtp test\nMessage-ID: <lmtp1@postern.test>\n\nHello Dovecot.\n.dot line\n\nBye\n';

test('LMTP into real Dovecot: two users delivered byte for byte, unknown user 550 per recipient', { skip }, async () => {
  const agent = createLmtpAgent(MainConfig.parse('myhostname = mx.postern.test\n', join(dir, 'main.cf'), dir));
  const qf = await queued(['alice@example.test', 'nobody@example.test', 'bob@example.test'], MSG);
  const res = await agent.deliver({ qf, transport: 'lmtp', nexthop: `inet:127.0.0.1:${dc!.ports.lmtp}`, recipients: qf.recipients, activeSince: Date.now() });
  await agent.close();
  assert.deepEqual(res.map((r) => [r.recipient.address, r.status]), [['alice@example.test', 'sent'], ['nobody@example.test', 'bounced'], ['bob@example.test', 'sent']]);
  assert.equal(res[1]!.dsn, '5.1.1');
  assert.match(res[1]!.text, new RegExp(`^host 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\] said: 550 5\\.1\\.1 <nobody@example\\.test> User doesn't exist: nobody@example\\.test \\(in reply to RCPT TO command\\)$`));
  assert.match(res[0]!.text, /^250 2\.0\.0 <alice@example\.test> \S+ Saved$/);
  assert.equal(res[0]!.relay, `127.0.0.1[127.0.0.1]:${dc!.ports.lmtp}`);
  for (const user of ['alice@example.test', 'bob@example.test']) {
    const [m] = maildirMessages(user);
    assert.ok(m, `no message for ${user}:\n${dc!.log()}`);
    const s = m.toString('utf8');
    // Dovecot prepends Return-Path: and its Received: (from our LHLO name); Delivered-To: only
    // when the transaction has a single recipient, which is not the case here.
    assert.ok(s.startsWith('Return-Path: <sender@postern.test>\nReceived: from mx.postern.test ([127.0.0.1])\n'), s);
    assert.match(s, /\(envelope-from <sender@postern\.test>\)/);
    assert.ok(s.endsWith(MSG), `content differs:\n${s}`);
    const added = s.slice(0, s.length - MSG.length);
    assert.ok(!added.slice(added.indexOf('\n') + 1).split('\n').filter(Boolean).some((l) => !/^(Delivered-To|Received|\s)/.test(l)), `unexpected headers: ${added}`);
  }
});

test('LMTP over the UNIX socket: unix:/path nexthop; over-quota recipient gets its own 552 after DATA', { skip }, async () => {
  const agent = createLmtpAgent(MainConfig.parse('myhostname = mx.postern.test\n', join(dir, 'main.cf'), dir));
  const big = MSG + 'x'.repeat(4000) + '\n';
  const qf = await queued(['full@example.test', 'alice@example.test'], big);
  const res = await agent.deliver({ qf, transport: 'lmtp', nexthop: `unix:${dc!.lmtpSocket}`, recipients: qf.recipients, activeSince: Date.now() });
  await agent.close();
  assert.equal(res[1]!.status, 'sent', res[1]!.text);
  assert.equal(res[1]!.relay, `mx.postern.test[${dc!.lmtpSocket}]`);
  assert.equal(res[0]!.status, 'bounced', res[0]!.text);
  assert.equal(res[0]!.dsn, '5.2.2');
  assert.match(res[0]!.text, /said: 552 5\.2\.2 <full@example\.test> Quota exceeded.*\(in reply to end of DATA command\)$/);
  assert.equal(maildirMessages('alice@example.test').filter((m) => m.toString('utf8').endsWith(big)).length, 1);
});
