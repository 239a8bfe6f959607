/**
 * Sieve at virtual(8) delivery, end to end through the running system: the default dovecot.conf
 * enables Pigeonhole for the LDA (`protocol lda { mail_plugins = $mail_plugins sieve }`), bob's
 * ~/.dovecot.sieve (his Maildir is his home) files mail into a folder it creates and answers
 * with a vacation reply; the reply goes through Postern's own queue (cleanup → qmgr → virtual)
 * into the sender's Maildir with the null sender and Auto-Submitted (RFC 3834); a second
 * message within :days gets no second reply; a redirect loop between two users and two users on
 * vacation answering each other end by themselves. Mail is sent with Python's smtplib.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';

const run = promisify(execFile);
let sys: PosternSystem;
before(async () => {
  sys = await PosternSystem.start();
  for (const u of ['bob', 'carol', 'dave', 'eve', 'frank']) assert.equal((await sys.cli('user', 'add', `${u}@example.test`, '-p', `${u}-pw`)).status, 0);
  const script = (u: string, text: string) => {
    const h = sys.maildir(`${u}@example.test`);
    mkdirSync(h, { recursive: true });
    writeFileSync(join(h, '.dovecot.sieve'), text);
  };
  script('carol', 'redirect "dave@example.test";\n');
  script('dave', 'redirect "carol@example.test";\n');
  script('eve', 'require "vacation";\nvacation :days 1 "Eve is away.";\n');
  script('frank', 'require "vacation";\nvacation :days 1 "Frank is away.";\n');
  // The default dovecot.conf enables Pigeonhole at delivery (protocol lda / lmtp).
  assert.match(readFileSync(join(sys.configDir, 'dovecot.conf'), 'utf8'), /protocol lda \{\n  mail_plugins = \$mail_plugins sieve\n\}/);
  const home = sys.maildir('bob@example.test');
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, '.dovecot.sieve'), 'require ["fileinto","mailbox","vacation","imap4flags"];\nvacation :days 1 :subject "Bob is away" "Back on Monday.";\nif header :contains "subject" "report" { fileinto :create :flags "\\\\Flagged" "Reports"; }\n');
});
after(async () => { await sys?.destroy(); });

async function files(dir: string, n: number, ms = 20_000): Promise<string[]> {
  const end = Date.now() + ms;
  for (;;) {
    const f = existsSync(dir) ? readdirSync(dir) : [];
    if (f.length >= n) return f;
    if (Date.now() > end) throw new Error(`expected ${n} file(s) in ${dir}, have ${f.length}\n${sys.log.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function send(subject: string, id: string, from = 'postmaster@example.test', to = 'bob@example.test'): Promise<void> {
  const py = `
import smtplib
msg = "From: <${from}>\\r\\nTo: ${to}\\r\\nSubject: ${subject}\\r\\nMessage-ID: <${id}@example.test>\\r\\n\\r\\nhello\\r\\n"
with smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}) as c:
    c.sendmail("${from}", ["${to}"], msg)
`;
  await run('python3', ['-c', py]);
}

test('virtual(8) runs the user script: fileinto :create with flags, vacation through the queue once per period', async () => {
  await send('monthly report', 'r1');
  const bob = sys.maildir('bob@example.test');
  const [f] = await files(join(bob, '.Reports', 'cur'), 1);
  assert.match(f!, /:2,F$/, 'stored with \\Flagged');
  assert.equal(existsSync(join(bob, 'new')) ? readdirSync(join(bob, 'new')).length : 0, 0, 'not in INBOX');
  const pm = join(sys.maildir('postmaster@example.test'), 'new');
  const [reply] = await files(pm, 1);
  const text = readFileSync(join(pm, reply!), 'utf8');
  assert.match(text, /^Return-Path: <>$/m, 'the reply has the null envelope sender');
  assert.match(text, /^Auto-Submitted: auto-replied \(vacation\)$/m);
  assert.match(text, /^Subject: Bob is away$/m);
  assert.match(text, /^In-Reply-To: <r1@example\.test>$/m);
  assert.match(text, /Back on Monday\./);
  // A second message from the same sender within :days: delivered, not answered again.
  await send('second', 'r2');
  await files(join(bob, 'new'), 1);
  await sys.waitLog(/discarded duplicate vacation response to <postmaster@example\.test>/);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(readdirSync(pm).length, 1, 'one reply per sender per period');
});

function count(user: string): number {
  const h = sys.maildir(user);
  let n = 0;
  for (const d of ['new', 'cur']) n += existsSync(join(h, d)) ? readdirSync(join(h, d)).length : 0;
  return n;
}

async function queueEmpty(ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while ((await sys.cli('queue', 'list')).stdout.trim() !== 'Mail queue is empty') {
    if (Date.now() > end) throw new Error(`queue not empty:\n${(await sys.cli('queue', 'list')).stdout}\n${sys.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a redirect loop between two users stops after one round; nothing is lost', async () => {
  await send('loop', 'l1', 'postmaster@example.test', 'carol@example.test');
  // virtual(8) sees its own Delivered-To: first (Postfix's forwarding-loop check: the message
  // bounces back to its sender with 5.4.6); Sieve's X-Sieve-Redirected-From and duplicate
  // checks stop loops that come back through other paths (src/lib-sieve/sieve-run.test.ts).
  await sys.waitLog(/indicates a mail loop|discarded duplicate forward|mail forwarding loop for (carol|dave)@example\.test/);
  await queueEmpty();
  const kept = count('carol@example.test') + count('dave@example.test');
  const bounced = /status=bounced \(mail forwarding loop/.test(sys.log);
  assert.ok((kept === 1 && !bounced) || (kept === 0 && bounced), `kept ${kept}, bounced ${bounced}`);
  if (bounced) await sys.waitLog(/sender non-delivery notification|to=<postmaster@example\.test>.*status=sent/);
});

test('two users on vacation answer each other once: the reply is never answered', async () => {
  await send('hello frank', 'v1', 'eve@example.test', 'frank@example.test');
  await sys.waitLog(/discarded vacation reply to <>/);
  await queueEmpty();
  assert.equal(count('frank@example.test'), 1, "frank has eve's message");
  assert.equal(count('eve@example.test'), 1, "eve has frank's one reply");
});
