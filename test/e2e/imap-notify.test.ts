/**
 * NOTIFY (RFC 5465) end to end on the embedded default, with Python's imaplib socket and raw
 * commands (imaplib has no NOTIFY; imapflow neither): a client with another mailbox selected
 * is told of mail delivered to its INBOX without sending any command — by SMTP (the delivery
 * agent runs in the master's delivery thread) and by LMTP (lmtpd on the main thread) — gets
 * EXISTS and the FETCH of MessageNew for its selected mailbox when a second session APPENDs
 * there, STATUS for a \Seen change, LIST for a CREATE, and the same pushes during IDLE.
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

test('NOTIFY: deliveries by SMTP and LMTP, another session\'s APPEND/STORE/CREATE, all pushed without a command and during IDLE', { timeout: 60_000 }, async () => {
  const py = `
import smtplib, socket, time, threading
user, pw = "postmaster@example.test", ${JSON.stringify(sys.password)}
def msg(s): return ("From: a@example.org\\r\\nSubject: %s\\r\\n\\r\\nbody\\r\\n" % s).encode()
class C:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", ${sys.ports.imap})); self.f = self.s.makefile("rb"); self.f.readline(); self.n = 0
    def cmd(self, c):
        self.n += 1; t = "t%d" % self.n; self.s.sendall(("%s %s\\r\\n" % (t, c)).encode()); out = []
        while True:
            l = self.f.readline().decode().rstrip(); out.append(l)
            if l.startswith(t + " "): return out
    def wait(self, prefix, secs=15):
        self.s.settimeout(secs); got = []
        try:
            while True:
                l = self.f.readline().decode().rstrip(); got.append(l)
                if l.startswith(prefix): return got
        except socket.timeout: return got + ["<timeout>"]
        finally: self.s.settimeout(None)
a = C(); a.cmd("LOGIN %s %s" % (user, pw)); a.cmd("CREATE Work"); a.cmd("SELECT Work")
print("set", a.cmd("NOTIFY SET STATUS (selected (MessageNew (UID FLAGS) MessageExpunge)) (personal (MessageNew MessageExpunge FlagChange MailboxName))"))
with smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}) as c: c.sendmail("a@example.org", [user], msg("by smtp"))
print("smtp", a.wait("* STATUS INBOX"))
l = smtplib.LMTP("127.0.0.1", ${sys.ports.lmtp}); l.ehlo("mx.example.org"); l.sendmail("a@example.org", [user], msg("by lmtp")); l.quit()
print("lmtp", a.wait("* STATUS INBOX"))
b = C(); b.cmd("LOGIN %s %s" % (user, pw))
m = msg("appended"); b.s.sendall(("x APPEND Work {%d+}\\r\\n" % len(m)).encode() + m + b"\\r\\n")
while not b.f.readline().startswith(b"x "): pass
print("append", a.wait("* 1 FETCH"))
b.cmd("SELECT INBOX"); b.cmd("STORE 1 +FLAGS \\\\Seen")
print("seen", a.wait("* STATUS INBOX"))
b.cmd("CREATE Projects")
print("create", a.wait("* LIST"))
a.s.sendall(b"i IDLE\\r\\n"); a.f.readline()
with smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}) as c: c.sendmail("a@example.org", [user], msg("while idling"))
print("idle", a.wait("* STATUS INBOX"))
a.s.sendall(b"DONE\\r\\n"); print("done", a.wait("i "))
print("none", a.cmd("NOTIFY NONE"))
`;
  const { stdout } = await run('python3', ['-c', py], { timeout: 55_000 });
  const line = (k: string): string => stdout.split('\n').find((l) => l.startsWith(k + ' ')) ?? '';
  assert.match(line('set'), /\* STATUS INBOX \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ UNSEEN 0 HIGHESTMODSEQ \d+\)/);
  assert.doesNotMatch(line('set'), /STATUS Work/, 'no STATUS for the selected mailbox');
  assert.match(line('smtp'), /\* STATUS INBOX \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1 HIGHESTMODSEQ \d+\)/);
  assert.match(line('lmtp'), /\* STATUS INBOX \(MESSAGES 2 UIDNEXT 3 UNSEEN 2 HIGHESTMODSEQ \d+\)/);
  assert.match(line('append'), /\* 1 EXISTS.*\* 1 FETCH \(UID 1 FLAGS \(\\\\Recent\)\)/);
  assert.match(line('seen'), /\* STATUS INBOX \(UNSEEN 1 HIGHESTMODSEQ \d+\)/);
  assert.match(line('create'), /\* LIST \(\) "\/" Projects/);
  assert.match(line('idle'), /\* STATUS INBOX \(MESSAGES 3 UIDNEXT 4 UNSEEN 2 HIGHESTMODSEQ \d+\)/);
  assert.match(line('done'), /i OK Idle completed/);
  assert.match(line('none'), /OK NOTIFY completed/);
});
