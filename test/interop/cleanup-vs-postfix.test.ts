/**
 * cleanup(8) golden cases against real Postfix 3.7: the same main.cf lines and the same tables
 * (texthash:, inline:, regexp: need no postmap) for a private real Postfix and for Postern's
 * CleanupSession. Postfix gets the message over SMTP from 127.0.0.1 (a local client: headers are
 * rewritten in the local context) and keeps it in the hold queue (smtpd HOLD action), where
 * postcat shows its envelope and headers after cleanup; ours is read back with QueueFile.
 * Asserted equal: the envelope sender, the recipients with their original recipients (virtual
 * alias expansion, duplicate filter, canonical maps, BCC), the header block after header_checks
 * and header address rewriting (Received:, added by Postfix's smtpd, not cleanup, is left out),
 * and the SMTP reply of refused messages.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RealPostfix } from '../harness/real-postfix.ts';
import { freePort } from '../harness/free-port.ts';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { QueueFile } from '../../src/global/queue-file-reader.ts';
import { setLogSink } from '../../src/util/msg.ts';
import { CleanupSession } from '../../src/cleanup/cleanup.ts';
import { TrivialRewrite } from '../../src/trivial-rewrite/trivial-rewrite.ts';

const run = promisify(execFile);
setLogSink(() => {});
const skip = RealPostfix.unavailable();

const tables = mkdtempSync(join(tmpdir(), 'postern-cleanup-cmp-'));
chmodSync(tables, 0o755);
const FILES: Record<string, string> = {
  virtual: [
    'postmaster@example.com postmaster', 'info@example.com joe', 'sales@example.com jane',
    'team@example.com joe, jane, ext@example.org', 'both@example.com team@example.com, sales@example.com',
    'self@example.com self@example.com, joe', 'loop1@example.com loop2@example.com', 'loop2@example.com loop1@example.com',
    'plus@example.com plustarget@example.org', '@example.com jim', '',
  ].join('\n'),
  canonical: 'olduser@example.org newuser@example.org\n@legacy.example @modern.example\nbare@example.org @elsewhere.example\n',
  sender_canonical: 'sender@example.org Sender.Name@example.org\n',
  recipient_canonical: 'rcpt-old@example.net rcpt-new@example.net\n',
  header_checks: [
    '/^X-Mailer:/ REPLACE X-Mailer: hidden', '/^Subject: prepend/ PREPEND X-Tag: tagged', '/^X-Drop:/ IGNORE',
    '/^Subject: reject me/ REJECT Not wanted here', '/^Subject: bcc action/ BCC hc-copy@example.net', '/^Subject: temp reject/ REJECT 4.7.1 Try later', '',
  ].join('\n'),
  body_checks: '/^forbidden body line$/ REJECT 5.7.0 Body rejected\n',
};
for (const [f, t] of Object.entries(FILES)) writeFileSync(join(tables, f), t);

const MAIN = `myhostname = mx.example.test
mydomain = example.test
myorigin = $myhostname
mydestination = $myhostname, localhost
recipient_delimiter = +
virtual_alias_domains = example.com
virtual_alias_maps = texthash:${tables}/virtual
canonical_maps = texthash:${tables}/canonical
sender_canonical_maps = texthash:${tables}/sender_canonical
recipient_canonical_maps = texthash:${tables}/recipient_canonical
header_checks = regexp:${tables}/header_checks
body_checks = regexp:${tables}/body_checks
virtual_alias_recursion_limit = 50
always_bcc = archive@example.net
sender_bcc_maps = inline:{sender@example.org=sent-copy@example.net}
recipient_bcc_maps = inline:{x@remote.example=x-copy@example.net}
masquerade_domains = !keep.example.org, example.org
masquerade_exceptions = root
`;

let pf: RealPostfix | undefined;
let port = 0;
let ours: { config: MainConfig; queue: MailQueue; dir: string } | undefined;

before(async () => {
  if (skip) return;
  port = await freePort();
  pf = await RealPostfix.start({
    mainCf: `${MAIN}smtpd_sender_restrictions = check_sender_access inline:{{sender@example.org=HOLD}, {olduser@example.org=HOLD}}\nsmtpd_delay_reject = no\n`,
    masterCf: `127.0.0.1:${port} inet n - n - - smtpd`,
  });
  const dir = mkdtempSync(join(tmpdir(), 'postern-cleanup-ours-'));
  // SRS is Postern's own (Postfix needs postsrsd for it): off, so the forwards compare as they are
  writeFileSync(join(dir, 'main.cf'), `queue_directory = ${dir}/queue\npostern_srs = no\n${MAIN}`);
  mkdirSync(join(dir, 'queue'));
  const config = MainConfig.load(dir);
  const queue = new MailQueue(join(dir, 'queue'));
  queue.ensureDirs();
  ours = { config, queue, dir };
});

after(async () => {
  await pf?.stop();
  if (ours) rmSync(ours.dir, { recursive: true, force: true });
  rmSync(tables, { recursive: true, force: true });
});

/** recipients: [address, original recipient, DSN NOTIFY flags] */
interface Outcome { reply?: string; sender?: string; recipients?: [string, string, number][]; headers?: string }

/** Header block without Received: (smtpd's, not cleanup's). */
function headerBlock(content: string): string {
  const head = content.slice(0, content.indexOf('\n\n') + 1);
  const out: string[] = [];
  let skipping = false;
  for (const line of head.split('\n')) {
    if (line === '') continue;
    if (/^[ \t]/.test(line)) { if (!skipping) out.push(line); continue; }
    skipping = /^Received:/i.test(line);
    if (!skipping) out.push(line);
  }
  return out.join('\n');
}

async function viaPostfix(sender: string, rcpts: string[], message: string): Promise<Outcome> {
  const py = `
import smtplib, sys
c = smtplib.SMTP("127.0.0.1", ${port}); c.ehlo("client.example.org")
c.mail(${JSON.stringify(sender)})
for r in ${JSON.stringify(rcpts)}:
    c.rcpt(r)
code, text = c.data(${JSON.stringify(message.replace(/\n/g, '\r\n'))}.encode())
print(code, text.decode())
c.quit()
`;
  const reply = (await run('python3', ['-c', py])).stdout.trim();
  const m = /^250 .*queued as ([0-9A-F]+)$/.exec(reply);
  if (!m) return { reply };
  const { stdout } = await run('/usr/sbin/postcat', ['-c', pf!.configDir, '-q', m[1]!]);
  const recipients: [string, string, number][] = [];
  let orig: string | undefined;
  let notify = 0;
  let envSender = '';
  for (const line of stdout.split('\n')) {
    const n = /^named_attribute: notify_flags=(\d+)$/.exec(line);
    if (n) { notify = Number(n[1]); continue; }
    const r = /^(sender|original_recipient|recipient): ?(.*)$/.exec(line);
    if (!r) continue;
    if (r[1] === 'sender') envSender = r[2]!;
    else if (r[1] === 'original_recipient') orig = r[2]!;
    else { recipients.push([r[2]!, orig ?? r[2]!, notify]); orig = undefined; notify = 0; }
  }
  const content = stdout.slice(stdout.indexOf('*** MESSAGE CONTENTS'));
  const body = content.slice(content.indexOf('\n') + 1);
  return { sender: envSender, recipients, headers: headerBlock(body) };
}

async function viaPostern(sender: string, rcpts: string[], message: string): Promise<Outcome> {
  const { config, queue } = ours!;
  const c = await CleanupSession.open({
    myhostname: 'mx.example.test', myorigin: 'mx.example.test', headerSizeLimit: 102400, messageSizeLimit: 0,
    alwaysAddMissingHeaders: false, config,
  }, queue, {
    sender, addMissingHeaders: true,
    attrs: { client_name: 'localhost', client_address: '127.0.0.1', protocol_name: 'ESMTP', helo_name: 'client.example.org' },
  }, TrivialRewrite.open);
  for (const r of rcpts) c.addRecipient({ address: r, orig: r });
  await c.write(Buffer.from(message));
  const r = await c.finish();
  if ('reject' in r) return { reply: `${r.reject.code} ${r.reject.enh} ${r.reject.text}` };
  const qf = await QueueFile.open(queue.path('incoming', r.queueId), r.queueId);
  const content = (await qf.content()).toString('latin1');
  return { sender: qf.sender, recipients: qf.recipients.map((x) => [x.address, x.orig ?? x.address, x.notify ?? 0]), headers: headerBlock(content) };
}

const HDRS = 'From: Sender <sender@example.org>\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <cmp@example.org>\n';

async function compare(name: string, sender: string, rcpts: string[], message: string): Promise<Outcome> {
  const [theirs, mine] = [await viaPostfix(sender, rcpts, message), await viaPostern(sender, rcpts, message)];
  if (process.env.SHOW_GOLDEN) console.log(name, JSON.stringify(theirs, null, 1));
  assert.deepEqual(mine, theirs, `${name}: Postern (actual) vs Postfix (expected)`);
  return mine;
}

test('virtual alias expansion: seed table, catch-all, one-to-many, self-expansion, duplicates, extension', { skip }, async () => {
  const o = await compare('virtual', 'sender@example.org',
    ['info@example.com', 'sales@example.com', 'postmaster@example.com', 'nobody@example.com', 'team@example.com',
      'both@example.com', 'self@example.com', 'plus+tag@example.com', 'info@example.com'],
    `${HDRS}To: info@example.com\nSubject: virtual\n\nbody\n`);
  assert.ok(o.recipients!.length > 8, JSON.stringify(o.recipients));
});

test('an alias loop: the same reply as Postfix', { skip }, async () => {
  const o = await compare('loop', 'sender@example.org', ['loop1@example.com'], `${HDRS}To: x@example.com\nSubject: loop\n\nbody\n`);
  assert.match(o.reply ?? '', /^451 /);
});

test('canonical maps: envelope and header addresses, @domain forms, unqualified header addresses', { skip }, async () => {
  await compare('canonical', 'olduser@example.org', ['rcpt-old@example.net', 'someone@legacy.example', 'olduser+x@example.org', 'bare+tag@example.org', 'some+tag@legacy.example'],
    'From: Old User <olduser@example.org>\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <c@example.org>\n'
    + 'To: rcpt-old@example.net, "Some One" <someone@legacy.example>\nCc: localuser, other@legacy.example (comment)\n'
    + 'Reply-To: sender@example.org\nSubject: canonical\n\nbody\n');
});

test('masquerading of envelope sender and header addresses, with exceptions', { skip }, async () => {
  const o = await compare('masquerade', 'sender@example.org', ['rcpt@host.example.org'],
    `From: Joe <joe@host.example.org>\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <m@example.org>\n`
    + `To: root@host.example.org, ann@box.keep.example.org, rcpt@host.example.org\nSubject: masq\n\nbody\n`);
  assert.match(o.headers ?? '', /From: Joe <joe@example\.org>/);
});

test('header_checks REPLACE, PREPEND, IGNORE keep the other headers byte for byte', { skip }, async () => {
  await compare('header_checks', 'sender@example.org', ['x@remote.example'],
    `Return-Path: <bogus@example.org>\n${HDRS}To: x@remote.example\nX-Mailer: Foo\nContent-Length: 5\nSubject: prepend this\nX-Drop: gone\nX-Keep:  two  spaces\n\tfolded\n\nbody\n`);
});

test('the BCC action adds a recipient like Postfix', { skip }, async () => {
  const o = await compare('bcc action', 'sender@example.org', ['x@remote.example'], `${HDRS}To: x@remote.example\nSubject: bcc action\n\nbody\n`);
  assert.ok(o.recipients!.some((r) => r[0] === 'hc-copy@example.net'), JSON.stringify(o.recipients));
});

test('header_checks and body_checks REJECT: the same SMTP replies as Postfix', { skip }, async () => {
  const a = await compare('reject', 'sender@example.org', ['x@remote.example'], `${HDRS}To: x@remote.example\nSubject: reject me\n\nbody\n`);
  assert.equal(a.reply, '550 5.7.1 Not wanted here');
  const b = await compare('temp reject', 'sender@example.org', ['x@remote.example'], `${HDRS}To: x@remote.example\nSubject: temp reject\n\nbody\n`);
  assert.match(b.reply ?? '', /^4\d\d 4\.7\.1 Try later$/);
  const c = await compare('body reject', 'sender@example.org', ['x@remote.example'], `${HDRS}To: x@remote.example\nSubject: b\n\nok\nforbidden body line\n`);
  assert.equal(c.reply, '550 5.7.0 Body rejected');
});
