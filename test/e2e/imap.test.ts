/**
 * End to end on the embedded default: mail delivered over SMTP is read over IMAP (plain with
 * STARTTLS, and imaps) by Python's imaplib and by curl, exactly as `postern start` tells a
 * newcomer; a delivery reaches an IDLEing client at once; the UID stays the same across sessions.
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

test('SMTP in, IMAP out (STARTTLS, imaps, IDLE); UIDs stable; curl as the banner says', async () => {
  const py = `
import smtplib, imaplib, ssl, threading, time, socket
user, pw = "postmaster@example.test", ${JSON.stringify(sys.password)}
ctx = ssl._create_unverified_context()
def send(subj):
    with smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}) as c:
        c.sendmail("a@example.org", [user], ("Subject: %s\\r\\n\\r\\nbody of %s\\r\\n" % (subj, subj)).encode())
send("first")
m = imaplib.IMAP4("127.0.0.1", ${sys.ports.imap}); m.starttls(ssl_context=ctx); m.login(user, pw)
for i in range(100):
    typ, d = m.select("INBOX")
    if int(d[0]) >= 1: break
    threading.Event().wait(0.1)  # not time.sleep: EINVAL under test:clock (scripts/test-clock.sh)
typ, d = m.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print("fetch1", d[0][0].decode(), d[0][1].decode().strip())
uid1 = d[0][0].decode().split("UID ")[1].split(" ")[0]
m.logout()
# IDLE on imaps, then deliver: the EXISTS arrives while idling.
s = socket.create_connection(("127.0.0.1", ${sys.ports.imaps})); t = ctx.wrap_socket(s); f = t.makefile("rb")
f.readline()
t.sendall(("a LOGIN %s %s\\r\\n" % (user, pw)).encode())
while not f.readline().startswith(b"a "): pass
t.sendall(b"b SELECT INBOX\\r\\n")
while not f.readline().startswith(b"b "): pass
t.sendall(b"c IDLE\\r\\n"); f.readline()
t0 = time.time(); send("second")
t.settimeout(10)
line = f.readline()
print("idle", line.decode().strip(), "%.1f" % (time.time() - t0))
t.sendall(b"DONE\\r\\n")
while not f.readline().startswith(b"c "): pass
t.sendall(b"d UID FETCH 1:* (UID FLAGS)\\r\\n")
out = []
while True:
    l = f.readline(); out.append(l.decode().strip())
    if l.startswith(b"d "): break
print("uids", out)
print("uid1", uid1)
`;
  const { stdout } = await run('python3', ['-c', py], { timeout: 60_000 });
  assert.match(stdout, /fetch1 1 \(UID (\d+) BODY\[HEADER\.FIELDS \(SUBJECT\)\] \{\d+\} Subject: first/);
  assert.match(stdout, /idle \* 2 EXISTS \d+\.\d/);
  const uid1 = /uid1 (\d+)/.exec(stdout)![1]!;
  assert.match(stdout, new RegExp(`\\* 1 FETCH \\(UID ${uid1} FLAGS \\(`), 'the first message keeps its UID in a later session');
  const curl = await run('curl', ['-s', '--insecure', '--user', `postmaster@example.test:${sys.password}`, `imaps://127.0.0.1:${sys.ports.imaps}/INBOX;UID=${uid1}`]);
  assert.match(curl.stdout, /Subject: first/);
  assert.match(curl.stdout, /body of first/);
});
