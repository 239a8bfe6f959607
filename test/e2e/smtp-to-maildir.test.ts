/**
 * End to end through the running system: Python smtplib → smtpd → cleanup → incoming → qmgr →
 * virtual(8) → the user's Maildir, byte for byte, in Dovecot's layout; an unknown user is
 * rejected at RCPT with Postfix's text; relaying from mynetworks (127.0.0.1) is allowed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { MaildirStore } from '../../src/lib-storage/maildir/maildir-storage.ts';

const run = promisify(execFile);
let sys: PosternSystem;
before(async () => { sys = await PosternSystem.start(); });
after(async () => { await sys?.destroy(); });

async function waitFiles(dir: string, n: number, ms = 15_000): Promise<string[]> {
  const end = Date.now() + ms;
  for (;;) {
    const files = existsSync(dir) ? readdirSync(dir) : [];
    if (files.length >= n) return files;
    if (Date.now() > end) throw new Error(`expected ${n} file(s) in ${dir}, have ${files.length}\n${sys.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a message sent with smtplib lands in the Maildir byte for byte', async () => {
  const body = 'From: a@example.org\r\nTo: postmaster@example.test\r\nSubject: e2e\r\nMessage-Id: <e2e-1@example.org>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\nhello \xc3\xa9\r\n.leading dot\r\n';
  const py = `
import smtplib, sys
body = ${JSON.stringify(body)}.encode("latin1")
with smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}) as c:
    c.ehlo("client.example.org")
    print(c.sendmail("a@example.org", ["postmaster@example.test"], body))
`;
  const { stdout } = await run('python3', ['-c', py]);
  assert.equal(stdout.trim(), '{}');
  const m = await sys.waitLog(/(\w+): to=<postmaster@example\.test>, relay=virtual, .*status=sent \(delivered to maildir\)/);
  const qid = m[1]!;
  await sys.waitLog(new RegExp(`${qid}: removed`));
  const newDir = join(sys.maildir('postmaster@example.test'), 'new');
  const [file] = await waitFiles(newDir, 1);
  const stored = readFileSync(join(newDir, file!));
  const text = stored.toString('latin1');
  assert.match(text, /^Return-Path: <a@example\.org>\nDelivered-To: postmaster@example\.test\nReceived: from client\.example\.org \(localhost \[127\.0\.0\.1\]\)\n\tby [^ ]+ \(Postern\) with ESMTP id [0-9A-F]+\n\tfor <postmaster@example\.test>; .+\n/);
  const original = Buffer.from(body.replace(/\r\n/g, '\n'), 'latin1');
  assert.ok(stored.subarray(stored.length - original.length).equals(original), 'the message body and headers are preserved byte for byte');
  assert.match(file!, new RegExp(`,S=${stored.length}(,W=\\d+)?$`), 'the file name carries the size like Dovecot');
  // virtual(8) writes tmp/ → new/ only, as Postfix's: the first reader's sync gives the UID and
  // writes Dovecot's dovecot-uidlist.
  const mdir = sys.maildir('postmaster@example.test');
  const user = await new MaildirStore().forUser({ user: 'postmaster@example.test', uid: 0, gid: 0, home: mdir, mail: `maildir:${mdir}` });
  const box = await user.open('INBOX');
  assert.deepEqual(box.messages().map((x) => x.uid), [1]);
  await box.close();
  assert.match(readFileSync(join(mdir, 'dovecot-uidlist'), 'utf8'), /^3 V\d+ N2 .*\n1 .*,S=\d+/s);
  assert.equal((await sys.cli('queue', 'list')).stdout.trim(), 'Mail queue is empty');
});

test('an unknown user is refused at RCPT with Postfix\'s text; relaying from mynetworks is allowed', async () => {
  const py = `
import smtplib
c = smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}); c.ehlo("client.example.org")
c.mail("a@example.org")
print(c.rcpt("nobody@example.test"))
print(c.rcpt("someone@elsewhere.example"))
c.quit()
`;
  const { stdout } = await run('python3', ['-c', py]);
  assert.match(stdout, /550, b'5\.1\.1 <nobody@example\.test>: Recipient address rejected: User unknown in virtual mailbox table'/);
  // 127.0.0.1 is in mynetworks in the embedded default: relaying from it is allowed, as in Postfix.
  assert.match(stdout, /\(250, b'2\.1\.5 Ok'\)/);
});
