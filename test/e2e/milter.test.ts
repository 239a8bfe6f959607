/**
 * End to end through the running system with a milter: `postern start`, then `-o
 * smtpd_milters=...` on the smtp entry of master.cf (as Postfix sites scope milters per
 * service) and a reload; a message from Python's smtplib reaches the user's Maildir with the
 * edits of the python3-milter test milter (an added header, a changed Subject, a replaced
 * body), and a message the milter quarantines stays in the hold queue.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { TestMilter } from '../harness/milter-kit.ts';

const run = promisify(execFile);
const skip = TestMilter.unavailable();
let sys: PosternSystem | undefined;
let milter: TestMilter | undefined;

before(async () => {
  if (skip) return;
  milter = await TestMilter.start({});
  sys = await PosternSystem.start();
  await sys.setMasterOption(['smtp'], 'smtpd_milters', milter.spec);
});
after(async () => {
  await sys?.destroy();
  await milter?.stop();
});

async function send(subject: string): Promise<void> {
  const body = `From: a@example.org\r\nTo: postmaster@example.test\r\nSubject: ${subject}\r\nMessage-Id: <${subject}@example.org>\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\noriginal body\r\n`;
  const py = `
import smtplib
with smtplib.SMTP("127.0.0.1", ${sys!.ports.smtp}) as c:
    c.ehlo("client.example.org")
    print(c.sendmail("a@example.org", ["postmaster@example.test"], ${JSON.stringify(body)}))
`;
  const { stdout } = await run('python3', ['-c', py]);
  assert.equal(stdout.trim(), '{}');
}

test('a message edited by the milter is delivered with the edits', { skip }, async () => {
  milter!.setPlan({ edits: [['addheader', 'X-Milter', 'was here'], ['chgheader', 'Subject', 1, 'changed by the milter'], ['replacebody', 'replaced body\r\n']] });
  await send('edited');
  const m = await sys!.waitLog(/(\w+): to=<postmaster@example\.test>, relay=virtual, .*status=sent/);
  await sys!.waitLog(new RegExp(`${m[1]}: removed`));
  const dir = join(sys!.maildir('postmaster@example.test'), 'new');
  const files = existsSync(dir) ? readdirSync(dir) : [];
  assert.equal(files.length, 1);
  const text = readFileSync(join(dir, files[0]!), 'utf8');
  assert.match(text, /\nSubject: changed by the milter\n/);
  assert.match(text, /\nX-Milter: was here\n\nreplaced body\n$/);
});

test('a message the milter quarantines waits in the hold queue', { skip }, async () => {
  milter!.setPlan({ edits: [['quarantine', 'needs a look']] });
  await send('quarantined');
  await sys!.waitLog(/milter-hold: END-OF-MESSAGE from .*: needs a look;/);
  const list = (await sys!.cli('queue', 'list')).stdout;
  assert.match(list, /^[0-9A-F]+!/m, list);
});
