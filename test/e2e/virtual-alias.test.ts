/**
 * The seed's "virtual alias domain" example end to end, as an administrator sets it up:
 *
 *   main.cf:  virtual_alias_domains = alias.test
 *             virtual_alias_maps = hash:CONFIG_DIR/virtual     (built with `postern map`)
 *   virtual:  postmaster@alias.test postmaster@example.test
 *             info@alias.test joe@example.test
 *             sales@alias.test jane@example.test
 *             @alias.test jim@example.test                      (the catch-all)
 *
 * Mail sent with Python's smtplib to the aliases arrives in the target users' Maildirs (the
 * embedded default's virtual mailbox domain example.test); a one-to-many alias reaches every
 * target; an alias loop and a chain deeper than virtual_alias_recursion_limit are refused at the
 * end of DATA with Postfix's "451 4.6.0 Alias expansion error" and nothing is queued; a
 * header_checks REJECT reaches the client as "550 5.7.1 text" with Postfix's cleanup log line.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readdirSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';

const run = promisify(execFile);
let sys: PosternSystem;

const VIRTUAL = `# the seed's table, for the hosted domain alias.test
postmaster@alias.test postmaster@example.test
info@alias.test joe@example.test
sales@alias.test jane@example.test
team@alias.test joe@example.test, jane@example.test
loop1@alias.test loop2@alias.test
loop2@alias.test loop1@alias.test
deep1@alias.test deep2@alias.test
deep2@alias.test deep3@alias.test
deep3@alias.test deep4@alias.test
deep4@alias.test joe@example.test
@alias.test jim@example.test
`;

before(async () => {
  sys = await PosternSystem.start();
  for (const u of ['joe', 'jane', 'jim']) {
    const r = (await sys.cli('user', 'add', `${u}@example.test`, '-p', `secret-${u}`));
    assert.equal(r.status, 0, r.stderr);
  }
  const table = join(sys.configDir, 'virtual');
  writeFileSync(table, VIRTUAL);
  const m = (await sys.cli('map', `hash:${table}`));
  assert.equal(m.status, 0, m.stderr);
  writeFileSync(join(sys.configDir, 'header_checks'), '/^Subject: spam/ REJECT No spam here\n');
  const e = (await sys.cli('conf', '-e', 'virtual_alias_domains = alias.test', `virtual_alias_maps = hash:${table}`,
    `header_checks = regexp:${join(sys.configDir, 'header_checks')}`));
  assert.equal(e.status, 0, e.stderr);
  await sys.stop();
  sys = await PosternSystem.start(sys);
});
after(async () => { await sys?.destroy(); });

async function send(rcpts: string[], subject: string): Promise<string> {
  const script = `
import smtplib
msg = "From: a@example.org\\r\\nTo: ${rcpts.join(', ')}\\r\\nSubject: ${subject}\\r\\n\\r\\nhello\\r\\n"
c = smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}); c.ehlo("client.example.org")
c.mail("a@example.org")
for r in ${JSON.stringify(rcpts)}:
    code, _ = c.rcpt(r)
    assert code == 250, (r, code)
code, text = c.data(msg.encode())
print(code, text.decode())
c.quit()
`;
  const { stdout } = await run('python3', ['-c', script]);
  return stdout.trim();
}

/** The messages in a user's Maildir/new that carry this subject. */
async function waitMail(user: string, subject: string, ms = 15_000): Promise<string[]> {
  const dir = join(sys.maildir(user), 'new');
  const end = Date.now() + ms;
  for (;;) {
    const found = existsSync(dir)
      ? readdirSync(dir).map((f) => readFileSync(join(dir, f), 'latin1')).filter((t) => t.includes(`\nSubject: ${subject}\n`))
      : [];
    if (found.length) return found;
    if (Date.now() > end) throw new Error(`no message "${subject}" for ${user}\n${sys.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a message to an alias arrives in the target user\'s Maildir, addressed as the alias', async () => {
  const reply = await send(['info@alias.test'], 'to info');
  assert.match(reply, /^250 2\.0\.0 Ok: queued as [0-9A-F]+$/);
  const [m] = await waitMail('joe@example.test', 'to info');
  assert.match(m!, /^Return-Path: <a@example\.org>\nDelivered-To: joe@example\.test\n/);
  assert.match(m!, /\nTo: info@alias\.test\n/, 'the header is not rewritten: virtual aliases change only the envelope');
  await sys.waitLog(/: to=<joe@example\.test>, orig_to=<info@alias\.test>, relay=virtual, .*status=sent/);
});

test('the catch-all takes every other address of the domain', async () => {
  assert.match(await send(['whoever@alias.test'], 'to catch-all'), /^250 /);
  await waitMail('jim@example.test', 'to catch-all');
});

test('a one-to-many alias reaches every target', async () => {
  assert.match(await send(['team@alias.test', 'sales@alias.test'], 'to team'), /^250 /);
  assert.equal((await waitMail('joe@example.test', 'to team')).length, 1);
  // jane is reached through team@ and sales@: two original recipients, so Postfix's duplicate
  // filter keeps both, and the virtual agent delivers one copy per recipient record.
  const jane = await waitMail('jane@example.test', 'to team');
  assert.ok(jane.length >= 1);
});

test('header_checks REJECT reaches the SMTP client at the end of DATA', async () => {
  assert.equal(await send(['info@alias.test'], 'spam offer'), '550 5.7.1 No spam here');
  await sys.waitLog(/: reject: header Subject: spam offer from localhost\[127\.0\.0\.1\]; from=<a@example\.org> to=<info@alias\.test> proto=ESMTP helo=<client\.example\.org>: 5\.7\.1 No spam here/);
  // to=<...> is the first recipient before virtual alias expansion, as Postfix logs it.
});

test('an alias loop is refused with 451 4.6.0 after the recursion limit, nothing queued', async () => {
  const reply = await send(['loop1@alias.test'], 'loop');
  assert.equal(reply, '451 4.6.0 Alias expansion error');
  await sys.waitLog(/warning: [0-9A-F]+: unreasonable virtual_alias_maps map nesting for loop1@alias\.test -- message not accepted, try again later/);
  assert.equal((await sys.cli('queue', 'list')).stdout.trim(), 'Mail queue is empty');
});

test('virtual_alias_recursion_limit: a chain within the limit delivers, a deeper one is refused', async () => {
  assert.match(await send(['deep1@alias.test'], 'deep ok'), /^250 /);
  await waitMail('joe@example.test', 'deep ok');
  const e = (await sys.cli('conf', '-e', 'virtual_alias_recursion_limit = 3'));
  assert.equal(e.status, 0, e.stderr);
  await sys.stop();
  sys = await PosternSystem.start(sys);
  assert.equal(await send(['deep1@alias.test'], 'too deep'), '451 4.6.0 Alias expansion error');
  await sys.waitLog(/unreasonable virtual_alias_maps map nesting for deep1@alias\.test/);
  // Two levels (deep3 → deep4 → joe) are within the limit of 3.
  assert.match(await send(['deep3@alias.test'], 'shallow'), /^250 /);
  await waitMail('joe@example.test', 'shallow');
});
