/**
 * End to end on the embedded default: mail delivered over SMTP and over LMTP is read back with
 * POP3 (plain, STLS and pop3s) by Python's poplib and by curl, as README tells a newcomer to.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PosternSystem } from '../harness/postern-system.ts';

const run = promisify(execFile);
let sys: PosternSystem;
before(async () => { sys = await PosternSystem.start(); });
after(async () => { await sys?.destroy(); });

test('SMTP and LMTP in, POP3/STLS/pop3s out, byte for byte; QUIT deletes', async () => {
  const py = `
import smtplib, poplib, ssl, socket, threading
user, pw = "postmaster@example.test", ${JSON.stringify(sys.password)}
with smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}) as c:
    c.sendmail("a@example.org", [user], b"Subject: via smtp\\r\\n\\r\\nbody one\\r\\n")
l = smtplib.LMTP("127.0.0.1", ${sys.ports.lmtp}); l.ehlo("mx.example.org")
print("lmtp", l.sendmail("b@example.org", [user, "ghost@example.test"], b"Subject: via lmtp\\r\\n\\r\\nbody two\\r\\n"))
l.quit()
for i in range(100):
    p = poplib.POP3("127.0.0.1", ${sys.ports.pop3}); p.user(user); p.pass_(pw)
    n = p.stat()[0]
    if n >= 2: break
    p.quit(); threading.Event().wait(0.1)  # not time.sleep: EINVAL under test:clock (scripts/test-clock.sh)
print("stat", n)
bodies = sorted(b"\\n".join(p.retr(i)[1]).decode() for i in (1, 2))
print("uidl", p.uidl()[1])
p.quit()
for b in bodies: print("msg", repr(b.split("\\n\\n", 1)[1] if "\\n\\n" in b else b))
ctx = ssl._create_unverified_context()
s = poplib.POP3("127.0.0.1", ${sys.ports.pop3}); s.stls(context=ctx); s.user(user); s.pass_(pw); print("stls", s.stat()[0]); s.quit()
t = poplib.POP3_SSL("127.0.0.1", ${sys.ports.pop3s}, context=ctx); t.user(user); t.pass_(pw)
t.dele(1); t.dele(2); t.quit()
u = poplib.POP3_SSL("127.0.0.1", ${sys.ports.pop3s}, context=ctx); u.user(user); u.pass_(pw); print("after-quit", u.stat()[0]); u.quit()
`;
  const { stdout } = await run('python3', ['-c', py], { timeout: 60_000 });
  assert.match(stdout, /lmtp \{'ghost@example\.test': \(550, b"5\.1\.1 <ghost@example\.test> User doesn't exist: ghost@example\.test"\)\}/);
  assert.match(stdout, /stat 2/);
  assert.match(stdout, /msg 'body one'/);
  assert.match(stdout, /msg 'body two'/);
  assert.match(stdout, /uidl \[b'1 [0-9a-f]{16}', b'2 [0-9a-f]{16}'\]/, 'Dovecot-style lower-case %08Xu%08Xv UIDLs');
  assert.match(stdout, /stls 2/);
  assert.match(stdout, /after-quit 0/);
});

test('curl reads a message over pop3s, as the start-up message suggests', async () => {
  await run('python3', ['-c', `import smtplib; smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}).sendmail("a@example.org", ["postmaster@example.test"], b"Subject: curl\\r\\n\\r\\nfor curl\\r\\n")`]);
  let out = '';
  for (let i = 0; i < 50 && !out.includes('for curl'); i++) {
    out = (await run('curl', ['-s', '--insecure', '--user', `postmaster@example.test:${sys.password}`, `pop3s://127.0.0.1:${sys.ports.pop3s}/1`]).catch((e: { stdout: string }) => e)).stdout;
    if (!out.includes('for curl')) await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(out, /Subject: curl/);
  assert.match(out, /for curl/);
});
