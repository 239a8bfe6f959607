/**
 * non_smtpd_milters: mail that does not come through smtpd (sendmail → pickup) goes through the
 * milters in cleanup, which emulates the SMTP stages (a connection from localhost [127.0.0.1],
 * HELO, MAIL, RCPT, DATA) before the message, as Postfix's cleanup_milter_emul_*() do. Real
 * Postfix 3.7 gets a message with its sendmail(1); Postern's cleanup gets the same message as
 * pickup hands it over; the python3-milter test milter records what each shows it, and edits it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealPostfix } from '../harness/real-postfix.ts';
import { TestMilter, type MilterEvent } from '../harness/milter-kit.ts';
import { freePort } from '../harness/free-port.ts';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { QueueFile } from '../../src/global/queue-file-reader.ts';
import { CleanupSession } from '../../src/cleanup/cleanup.ts';
import { TrivialRewrite } from '../../src/trivial-rewrite/trivial-rewrite.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});
const skip = RealPostfix.unavailable() ?? TestMilter.unavailable();

let pf: RealPostfix | undefined;
const milters: { postfix?: TestMilter; postern?: TestMilter } = {};
let dir = '';

const PLAN = { edits: [['addheader', 'X-Local-Milter', 'seen'], ['addrcpt', '<added@example.net>']] };
const MESSAGE = 'From: root@mx.example.test\nTo: rcpt@example.net\nSubject: local mail\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <local@example.org>\n\nlocal body\n';

before(async () => {
  if (skip) return;
  milters.postfix = await TestMilter.start(PLAN);
  milters.postern = await TestMilter.start(PLAN);
  pf = await RealPostfix.start({
    mainCf: `non_smtpd_milters = ${milters.postfix.spec}\nmyorigin = mx.example.test\ndefer_transports = smtp\n`,
    masterCf: `127.0.0.1:${await freePort()} inet n - n - - smtpd`,
  });
  dir = mkdtempSync(join(tmpdir(), 'postern-nonsmtpd-'));
  mkdirSync(join(dir, 'queue'));
  writeFileSync(join(dir, 'main.cf'), `queue_directory = ${dir}/queue\nmyhostname = mx.example.test\nmyorigin = mx.example.test\nnon_smtpd_milters = ${milters.postern.spec}\n`);
});

after(async () => {
  await pf?.stop();
  await milters.postfix?.stop();
  await milters.postern?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function seen(ev: MilterEvent[]): string[] {
  return ev.filter((e) => !['close', 'abort', 'body'].includes(e.ev)).map((e) => {
    if (e.ev === 'connect') return `connect ${String(e.hostname)} ${String(e.addr)}`;
    if (e.ev === 'helo') return `helo ${String(e.name)}`;
    if (e.ev === 'mail' || e.ev === 'rcpt') return `${e.ev} ${String(e.addr)}`;
    if (e.ev === 'header') return `header ${String(e.name)}`;
    return e.ev;
  });
}

test('sendmail/pickup mail goes through non_smtpd_milters with emulated SMTP stages, as in Postfix', { skip }, async () => {
  // Real Postfix: sendmail(1) → maildrop → pickup → cleanup → the milter.
  await new Promise<void>((res, rej) => {
    const p = execFile('/usr/sbin/sendmail', ['-C', pf!.configDir, '-f', 'root@mx.example.test', 'rcpt@example.net'], (e) => (e ? rej(e) : res()));
    p.stdin!.end(MESSAGE);
  });
  const theirs = seen(await milters.postfix!.waitFor('eom', 20_000));

  // Postern: the message as pickup hands it to cleanup.
  const config = MainConfig.load(dir);
  const queue = new MailQueue(join(dir, 'queue'));
  queue.ensureDirs();
  const c = await CleanupSession.open({
    myhostname: 'mx.example.test', myorigin: 'mx.example.test', headerSizeLimit: 102400, messageSizeLimit: 10240000,
    alwaysAddMissingHeaders: false, config,
  }, queue, { sender: 'root@mx.example.test', attrs: { rewrite_context: 'local' }, addMissingHeaders: true, nonSmtpdMilters: true }, TrivialRewrite.open);
  c.addRecipient({ address: 'rcpt@example.net' });
  await c.write(Buffer.from(`Received: by mx.example.test (Postfix, from userid 0)\n\tid ${c.queueId}; Fri, 27 Nov 2026 10:00:00 +0000 (UTC)\n${MESSAGE}`));
  const r = await c.finish();
  assert.ok('queueId' in r, JSON.stringify(r));
  const mine = seen(await milters.postern!.waitFor('close'));
  assert.deepEqual(mine, theirs, 'what the milter saw (Postern vs Postfix)');
  assert.deepEqual(mine.slice(0, 3), ['connect localhost 127.0.0.1', 'helo localhost', 'mail root@mx.example.test']);
  const qf = await QueueFile.open(queue.path('incoming', r.queueId), r.queueId);
  assert.deepEqual(qf.recipients.map((x) => x.address).sort(), ['added@example.net', 'rcpt@example.net']);
  assert.match((await qf.content()).toString(), /\nX-Local-Milter: seen\n/);
});

test('receive_override_options = no_milters turns non_smtpd_milters off', { skip }, async () => {
  writeFileSync(join(dir, 'main2.cf'), '');
  const config = MainConfig.parse(`queue_directory = ${dir}/queue\nmyhostname = mx.example.test\nnon_smtpd_milters = ${milters.postern!.spec}\nreceive_override_options = no_milters\n`, 'main.cf', dir);
  const queue = new MailQueue(join(dir, 'queue'));
  milters.postern!.clear();
  const c = await CleanupSession.open({
    myhostname: 'mx.example.test', myorigin: 'mx.example.test', headerSizeLimit: 102400, messageSizeLimit: 10240000,
    alwaysAddMissingHeaders: false, config,
  }, queue, { sender: 'root@mx.example.test', attrs: {}, addMissingHeaders: true, nonSmtpdMilters: true }, TrivialRewrite.open);
  c.addRecipient({ address: 'rcpt@example.net' });
  await c.write(Buffer.from(MESSAGE));
  const r = await c.finish();
  assert.ok('queueId' in r);
  await new Promise((res) => setTimeout(res, 200));
  assert.deepEqual(milters.postern!.events(), []);
});
