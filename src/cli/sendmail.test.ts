/**
 * sendmail(1) tests: bin/sendmail run as scripts run it, with MAIL_CONFIG pointing at a temp
 * configuration; what lands in maildrop is read back with the queue-file reader. The mail
 * system is not running: sendmail must work without it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailQueue } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { DSN_NOTIFY } from '../global/rec-type.ts';
import { parseSendmailArgs, UsageError } from './sendmail-args.ts';
import { extractAddresses } from './sendmail-input.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SENDMAIL = join(ROOT, 'bin', 'sendmail');

interface Cfg { dir: string; queue: string; close(): void }

function cfg(mainCf = ''): Cfg {
  const dir = mkdtempSync(join(tmpdir(), 'postern-sendmail-'));
  const queue = join(dir, 'queue');
  writeFileSync(join(dir, 'main.cf'), `queue_directory = ${queue}\nmyhostname = mx.example.test\nmydomain = example.test\n${mainCf}`);
  new MailQueue(queue).ensureDirs();
  return { dir, queue, close: () => rmSync(dir, { recursive: true, force: true }) };
}

function sendmail(c: Cfg, args: string[], input: string | Buffer, env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(SENDMAIL, args, { input, env: { ...process.env, MAIL_CONFIG: c.dir, ...env }, timeout: 20_000 });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

async function maildrop(c: Cfg): Promise<QueueFile[]> {
  const out: QueueFile[] = [];
  for (const id of readdirSync(join(c.queue, 'maildrop')).sort()) out.push(await QueueFile.open(join(c.queue, 'maildrop', id), id));
  return out;
}

test('printf ... | sendmail -t -i: recipients from To/Cc/Bcc added to the command line ones, Bcc removed, exit 0, file in maildrop', async () => {
  const c = cfg();
  try {
    const r = sendmail(c, ['-t', '-i', 'extra@cmd.test'], 'From: a@b.test\nTo: x@y.test, "Doe, Jane" <jane@z.test>\nCc: team: c@d.test, e@f.test;\nBcc: secret@s.test,\n  more@s.test\nSubject: hi\n\nbody\n.\nafter dot\n');
    assert.equal(r.status, 0, r.stderr);
    const [f] = await maildrop(c);
    assert.ok(f);
    assert.deepEqual(f.recipients.map((x) => x.address), ['extra@cmd.test', 'x@y.test', 'jane@z.test', 'c@d.test', 'e@f.test', 'secret@s.test', 'more@s.test']);
    assert.equal((await f.content()).toString(), 'From: a@b.test\nTo: x@y.test, "Doe, Jane" <jane@z.test>\nCc: team: c@d.test, e@f.test;\nSubject: hi\n\nbody\n.\nafter dot\n');
  } finally { c.close(); }
});

test('Resent- headers take precedence for -t (RFC 5322 §3.6.6)', async () => {
  const c = cfg();
  try {
    const r = sendmail(c, ['-t'], 'To: old@x.test\nResent-To: new@x.test\nResent-Bcc: hidden@x.test\n\nb\n');
    assert.equal(r.status, 0, r.stderr);
    const [f] = await maildrop(c);
    assert.deepEqual(f!.recipients.map((x) => x.address), ['new@x.test', 'hidden@x.test']);
    assert.doesNotMatch((await f!.content()).toString(), /Resent-Bcc/);
  } finally { c.close(); }
});

test('without -i a lone "." ends the input; CRLF becomes LF; a leading From_ line is dropped; 8-bit bytes kept', async () => {
  const c = cfg();
  try {
    const body = Buffer.concat([Buffer.from('From joe Fri Nov 27 10:00:00 2026\r\nSubject: x\r\n\r\n\xe9t\xe9\r\n..stuffed stays\r\n', 'latin1'), Buffer.from('.\r\nnot read\r\n')]);
    const r = sendmail(c, ['rcpt@x.test'], body);
    assert.equal(r.status, 0, r.stderr);
    const [f] = await maildrop(c);
    assert.deepEqual(await f!.content(), Buffer.from('Subject: x\n\n\xe9t\xe9\n..stuffed stays\n', 'latin1'));
  } finally { c.close(); }
});

test('-f, -r, -F, -N, -R, -V and -B end up in the envelope', async () => {
  const c = cfg();
  try {
    const r = sendmail(c, ['-f', '<bounce@x.test>', '-F', 'Joe Q. Public', '-N', 'success,delay', '-R', 'hdrs', '-V', 'ENV42', '-B', '8BITMIME', 'a@x.test', 'b@x.test, c@x.test'], 'x\n');
    assert.equal(r.status, 0, r.stderr);
    const [f] = await maildrop(c);
    assert.equal(f!.sender, 'bounce@x.test');
    assert.equal(f!.attr('full_name'), 'Joe Q. Public');
    assert.equal(f!.attr('dsn_ret'), 'HDRS');
    assert.equal(f!.attr('dsn_envid'), 'ENV42');
    assert.equal(f!.attr('encoding'), '8BITMIME');
    const sd = DSN_NOTIFY.SUCCESS | DSN_NOTIFY.DELAY;
    assert.deepEqual(f!.recipients.map((x) => [x.address, x.notify]), [['a@x.test', sd], ['b@x.test', sd], ['c@x.test', sd]]);
    const r2 = sendmail(c, ['-r', '', '-oi', 'a@x.test'], 'x\n');
    assert.equal(r2.status, 0, r2.stderr);
    const files = await maildrop(c);
    assert.ok(files.some((x) => x.sender === ''), 'null sender with -r ""');
  } finally { c.close(); }
});

test('usage errors exit 64 (EX_USAGE) with a message, and write nothing', async () => {
  const c = cfg();
  try {
    for (const [args, input, re] of [
      [[], 'x\n', /Recipient addresses must be specified on the command line or via the -t option/],
      [['-t'], 'Subject: none\n\nx\n', /No recipient addresses found in message header/],
      [['-N', 'sometimes', 'a@x.test'], 'x\n', /bad -N option value/],
      [['-N', 'never,success', 'a@x.test'], 'x\n', /never/],
      [['-R', 'all', 'a@x.test'], 'x\n', /bad -R option value/],
      [['-bz'], '', /unknown mode/],
      [['-f'], '', /option requires an argument -- 'f'/],
      [['-k', 'a@x.test'], '', /invalid option -- 'k'/],
    ] as [string[], string, RegExp][]) {
      const r = sendmail(c, args, input);
      assert.equal(r.status, 64, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^sendmail: fatal: /);
      assert.match(r.stderr, re);
    }
    assert.deepEqual(readdirSync(join(c.queue, 'maildrop')), []);
  } finally { c.close(); }
});

test('a missing maildrop directory is EX_TEMPFAIL (75) with the directory named; message_size_limit is EX_DATAERR (65)', async () => {
  const c = cfg('message_size_limit = 100');
  try {
    const big = sendmail(c, ['a@x.test'], 'x'.repeat(500) + '\n');
    assert.equal(big.status, 65, big.stderr);
    assert.match(big.stderr, /message file too big \(message_size_limit = 100\)/);
    rmSync(join(c.queue, 'maildrop'), { recursive: true });
    const r = sendmail(c, ['a@x.test'], 'x\n');
    assert.equal(r.status, 75, r.stderr);
    assert.match(r.stderr, new RegExp(`cannot create a file in the maildrop queue ${join(c.queue, 'maildrop').replace(/[/.]/g, '\\$&')}`));
    assert.deepEqual(readdirSync(c.queue).filter((n) => n === 'maildrop'), []);
  } finally { c.close(); }
});

test('-bs: an SMTP session on stdin/stdout (smtpd\'s own session code); accepted mail lands in maildrop', async () => {
  const c = cfg('smtpd_banner = $myhostname ESMTP $mail_name');
  try {
    const r = sendmail(c, ['-bs'], 'EHLO client.test\r\nMAIL FROM:<joe@x.test>\r\nRCPT TO:<a@y.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: via -bs\r\n\r\nhello\r\n..dot\r\n.\r\nQUIT\r\n');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\r\n');
    assert.equal(lines[0], '220 mx.example.test ESMTP Postern');
    assert.ok(lines.includes('354 End data with <CR><LF>.<CR><LF>'), r.stdout);
    const q = lines.find((l) => l.startsWith('250 2.0.0 Ok: queued as '));
    assert.ok(q, r.stdout);
    assert.ok(lines.includes('221 2.0.0 Bye'), r.stdout);
    const [f] = await maildrop(c);
    assert.equal(q, `250 2.0.0 Ok: queued as ${f!.queueId}`);
    assert.equal(f!.sender, 'joe@x.test');
    assert.deepEqual(f!.recipients.map((x) => x.address), ['a@y.test', 'b@y.test']);
    assert.equal(f!.attr('client_address'), undefined, 'no client attributes in a maildrop file');
    const text = (await f!.content()).toString();
    assert.match(text, /^Received: from client\.test \(localhost \[127\.0\.0\.1\]\)\n/);
    assert.match(text, /\nSubject: via -bs\n\nhello\n\.dot\n$/);
  } finally { c.close(); }
});

test('-bv queues a verification request (trace_flags=512, Postfix\'s headers, no input read) and says where the report goes', async () => {
  const c = cfg('mydestination = localhost\n');
  try {
    const r = sendmail(c, ['-f', 'joe@example.test', '-bv', 'a@example.test', 'b@example.test'], 'ignored input\n');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'Mail Delivery Status Report will be mailed to <joe@example.test>.\n');
    const files = readdirSync(join(c.queue, 'maildrop'));
    assert.equal(files.length, 1);
    const raw = readFileSync(join(c.queue, 'maildrop', files[0]!), 'latin1');
    assert.ok(raw.includes('trace_flags=512'), 'the request is marked DEL_REQ_FLAG_USR_VRFY');
    assert.ok(raw.includes('From: joe@example.test') && raw.includes('Subject: probe') && raw.includes('To:\ta@example.test,') && raw.includes('\tb@example.test'), raw);
    assert.ok(!raw.includes('ignored input'), 'standard input is not read');
    assert.equal(sendmail(c, ['-bv'], '').status, 64, 'no recipients');
    assert.match(sendmail(c, ['-bv', '-t'], '').stderr, /-t option cannot be used with -bv/);
    assert.match(sendmail(c, ['-bv', '-R', 'hdrs', 'a@example.test'], '').stderr, /-R option cannot be used with -bv/);
  } finally { c.close(); }
});

test('sendmail -bp (mailq) lists the queue as postern queue list does; sendmail -q flushes it', () => {
  const c = cfg();
  try {
    assert.deepEqual(sendmail(c, ['-bp'], ''), { status: 0, stdout: 'Mail queue is empty\n', stderr: '' });
    const q = sendmail(c, ['-q'], '');
    assert.equal(q.status, 0, q.stderr);
  } finally { c.close(); }
});

test('parseSendmailArgs: grouped flags, attached values, -oi, -q, --', () => {
  const o = parseSendmailArgs(['-tioi', '-fme@x', '-F', 'Me', '-oem', '-q1h', '--', '-notanoption@x']);
  assert.equal(o.extract, true);
  assert.equal(o.dotEnds, false);
  assert.equal(o.sender, 'me@x');
  assert.equal(o.fullname, 'Me');
  assert.equal(o.mode, 'flush');
  assert.deepEqual(o.recipients, ['-notanoption@x']);
  assert.equal(parseSendmailArgs(['-bs']).mode, 'smtp');
  assert.equal(parseSendmailArgs(['-N', 'never', 'a']).notify, DSN_NOTIFY.NEVER);
  assert.throws(() => parseSendmailArgs(['-V', 'a b']), UsageError);
  assert.throws(() => parseSendmailArgs(['-V', 'x'.repeat(101)]), UsageError);
});

test('extractAddresses: display names, comments, groups, quoted local parts, routes, hostile input', () => {
  assert.deepEqual(extractAddresses('a@x'), ['a@x']);
  assert.deepEqual(extractAddresses('"Doe, J." <j@x>, b@y (Bee, B.)'), ['j@x', 'b@y']);
  assert.deepEqual(extractAddresses('undisclosed-recipients:;'), []);
  assert.deepEqual(extractAddresses('list: a@x, b@y; c@z'), ['a@x', 'b@y', 'c@z']);
  assert.deepEqual(extractAddresses('<@relay.x,@r2:u@h>'), ['u@h']);
  assert.deepEqual(extractAddresses('"john doe"@x'), ['"john doe"@x']);
  assert.deepEqual(extractAddresses('<>'), []);
  assert.deepEqual(extractAddresses('root'), ['root']);
  assert.deepEqual(extractAddresses('a@[192.0.2.1], "unterminated'), ['a@[192.0.2.1]', '"unterminated']);
  assert.deepEqual(extractAddresses('(((((((( nested'), []);
  const many = Array.from({ length: 5000 }, (_, i) => `u${i}@x`).join(', ');
  assert.equal(extractAddresses(many).length, 5000);
});

test('the queue directory comes from -C FILE (or DIR), as Postfix sendmail -C', async () => {
  const c = cfg();
  const other = cfg();
  try {
    const r = sendmail(c, ['-C', join(other.dir, 'main.cf'), 'a@x.test'], 'x\n');
    assert.equal(r.status, 0, r.stderr);
    assert.equal((await maildrop(other)).length, 1);
    assert.equal((await maildrop(c)).length, 0);
  } finally { c.close(); other.close(); }
});
