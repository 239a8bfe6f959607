/**
 * LMTP against real peers:
 *  - a real Postfix 3.7 (Debian) with `virtual_transport = lmtp:inet:127.0.0.1:PORT` (and a
 *    transport_maps entry `lmtp:unix:PATH`) delivers into Postern's lmtpd: the messages land
 *    in the Maildirs, an unknown user is bounced with Postern's 550 5.1.1 text in Postfix's log,
 *    an over-quota user gets Dovecot's 552 5.2.2;
 *  - the same LMTP conversation is held with a private real Dovecot 2.3 lmtp and with Postern;
 *    the replies must be the same (session ids and host name normalised).
 * Skipped with the reason when Postfix/Dovecot are not installed or we are not root.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setLogSink } from '../../src/util/msg.ts';
import { PosternMailAccess } from '../harness/postern-mail-access.ts';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { LineChat } from '../harness/line-chat.ts';
import { freePort } from '../harness/free-port.ts';

setLogSink(() => {});
const cleanup: (() => Promise<void> | void)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f(); });

async function waitFor<T>(what: string, f: () => Promise<T | undefined>, ms = 20_000, diag = () => ''): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}\n${diag()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('real Postfix delivers into Postern lmtpd over lmtp:inet and lmtp:unix', { skip: RealPostfix.unavailable() }, async () => {
  const pm = await PosternMailAccess.start({ users: [
    { user: 'alice@x.test', pass: 'pw' }, { user: 'carol@u.test', pass: 'pw' },
    { user: 'full@x.test', pass: 'pw', extra: 'userdb_quota_rule=*:storage=1K' },
  ] });
  cleanup.push(() => pm.stop());
  const dir = mkdtempSync(join(tmpdir(), 'postern-lmtp-pf-'));
  chmodSync(dir, 0o755);
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'vmailbox'), 'alice@x.test ok\nghost@x.test ok\nfull@x.test ok\ncarol@u.test ok\n');
  writeFileSync(join(dir, 'transport'), `u.test lmtp:unix:${pm.lmtpSocket}\n`);
  const smtpPort = await freePort();
  const pf = await RealPostfix.start({
    mainCf: [
      'mydestination =',
      'virtual_mailbox_domains = x.test u.test',
      `virtual_mailbox_maps = texthash:${join(dir, 'vmailbox')}`,
      `virtual_transport = lmtp:inet:127.0.0.1:${pm.ports.lmtp}`,
      `transport_maps = texthash:${join(dir, 'transport')}`,
      'notify_classes =',
    ].join('\n'),
    masterCf: `127.0.0.1:${smtpPort} inet n - n - - smtpd`,
  });
  cleanup.push(() => pf.stop());
  const c = await LineChat.open(smtpPort);
  assert.match(await c.reply(), /^220 /);
  await c.cmd('EHLO client.y.test');
  assert.match(await c.cmd('MAIL FROM:<sender@y.test>'), /^250 /);
  for (const r of ['alice@x.test', 'ghost@x.test', 'carol@u.test', 'full@x.test']) assert.match(await c.cmd(`RCPT TO:<${r}>`), /^250 /, r);
  assert.match(await c.cmd('DATA'), /^354 /);
  assert.match(await c.cmd('Subject: via postfix\r\nMessage-ID: <pf1@y.test>\r\n\r\n' + 'z'.repeat(2000) + '\r\n..dot\r\n.'), /^250 /);
  await c.cmd('QUIT');
  const [alice] = await waitFor('alice@x.test delivery', async () => { const m = await pm.messages('alice@x.test'); return m.length > 0 ? m : undefined; }, 20_000, () => pf.log());
  assert.match(alice!, /^Return-Path: <sender@y\.test>\nDelivered-To: alice@x\.test\nReceived: from mx\.example\.test \(\[127\.0\.0\.1\]\)\n\tby \S+ with LMTP/);
  assert.match(alice!, /\nSubject: via postfix\n/);
  assert.match(alice!, /\n\.dot\n$/, 'dot-stuffing undone');
  const [carol] = await waitFor('carol@u.test delivery (unix socket)', async () => { const m = await pm.messages('carol@u.test'); return m.length > 0 ? m : undefined; }, 20_000, () => pf.log());
  assert.match(carol!, /Delivered-To: carol@u\.test/);
  const log = await waitFor('Postfix log lines', async () => {
    const l = pf.log();
    return /to=<ghost@x\.test>.*status=bounced/.test(l) && /to=<full@x\.test>.*status=bounced/.test(l) && /to=<alice@x\.test>.*status=sent/.test(l) ? l : undefined;
  }, 20_000, () => pf.log());
  assert.match(log, /to=<alice@x\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*dsn=2\.0\.0, status=sent \(250 2\.0\.0 <alice@x\.test> \S+ Saved\)/);
  assert.match(log, /to=<ghost@x\.test>.*dsn=5\.1\.1, status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.1\.1 <ghost@x\.test> User doesn't exist: ghost@x\.test \(in reply to RCPT TO command\)\)/);
  assert.match(log, /to=<full@x\.test>.*dsn=5\.2\.2, status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 552 5\.2\.2 <full@x\.test> Quota exceeded \(mailbox for user is full\) \(in reply to end of DATA command\)\)/);
  assert.match(log, /to=<carol@u\.test>, relay=\S+lmtp\]?, .*status=sent/);
});

test('the same LMTP conversation gives the same replies from Postern and real Dovecot 2.3', { skip: RealDovecot.unavailable() }, async () => {
  const users = [{ user: 'alice@x.test', pass: 'pw' }, { user: 'bob@x.test', pass: 'pw', extra: 'userdb_quota_rule=*:storage=1K' }];
  const conf = 'login_greeting = Mail ready.\nprotocol lmtp {\n  lmtp_save_to_detail_mailbox = yes\n}\n';
  const dc = await RealDovecot.start({ protocols: ['lmtp'], users, mailPlugins: 'quota', extraConf: conf + 'plugin {\n  quota = maildir:User quota\n}\n' });
  cleanup.push(() => dc.stop());
  const pm = await PosternMailAccess.start({ users, conf });
  cleanup.push(() => pm.stop());
  const transcripts: string[][] = [];
  for (const port of [dc.ports.lmtp!, pm.ports.lmtp]) {
    const c = await LineChat.open(port);
    const t = [await c.reply()];
    const say = async (l: string, replies = 1) => {
      c.send(l + '\r\n');
      const rs: string[] = [];
      for (let i = 0; i < replies; i++) rs.push(await c.reply());
      t.push(`C: ${l.slice(0, 40)}\n${rs.join('\n')}`);
    };
    await say('RCPT TO:<alice@x.test>');
    await say('DATA');
    await say('HELO x');
    await say('EHLO x');
    await say('VRFY alice');
    await say('LHLO mta.y.test');
    await say('MAIL FROM:<s@y.test> FOO=BAR');
    await say('MAIL FROM:<s@y.test> BODY=8BITMIME');
    await say('DATA');
    await say('RCPT TO:<nobody@x.test>');
    await say('RCPT TO:<nobody+ext@x.test>');
    await say('RCPT TO:<alice@x.test>');
    await say('RCPT TO:<alice@x.test>');
    await say('RCPT TO:<alice+Missing@x.test>');
    await say('RCPT TO:<"alice+../x"@x.test>');
    await say('RCPT TO:<bob@x.test>');
    await say('DATA');
    await say('Subject: t\r\n\r\n' + 'x'.repeat(3000) + '\r\n.', 5);
    await say('NOOP');
    await say('RSET');
    await say('MAIL FROM:<>');
    await say('RCPT TO:<alice@x.test>');
    await say('RSET');
    await say('RCPT TO:<alice@x.test>');
    await say('QUIT');
    c.close();
    transcripts.push(t.map((s) => s
      .replace(/^220 \S+/, '220 HOST')
      .replace(/(LHLO[^\n]*\n250-)\S+/, '$1HOST')
      .replace(/\n250-CHUNKING/, '') // Dovecot offers BDAT; Postern does not (docs/lmtpd.md)
      .replace(/> [A-Za-z0-9+/]{22}(:T\d+)?(:R\d+)? Saved/g, '> ID$1$2 Saved')));
  }
  assert.deepEqual(transcripts[1], transcripts[0]);
});
