/**
 * End to end with every service that can move in a child process of its own (main.cf
 * `postern_process_mode = process`, applied by `postern reload`): smtpd, qmgr (with its
 * delivery agents), imapd, pop3d, lmtpd and pickup each show their own pid in `postern status`;
 * mail sent over SMTP (smtpd's process → qmgr's process) and over LMTP on a unix socket
 * (dovecot.conf unix_listener, lmtpd's process) reaches an IMAP client IDLEing in imapd's
 * process at once (the Maildir's inotify notifications cross processes); a graceful stop ends
 * every child.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PosternSystem } from '../harness/postern-system.ts';

const run = promisify(execFile);
let sys: PosternSystem;
before(async () => { sys = await PosternSystem.start(); });
after(async () => { await sys?.destroy(); });

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

test('every service in its own process: SMTP and LMTP (unix socket) deliveries reach an IMAP IDLE client', async () => {
  // An LMTP unix socket under base_dir, and every service in a process of its own.
  const dc = join(sys.configDir, 'dovecot.conf');
  writeFileSync(dc, readFileSync(dc, 'utf8').replace(/service lmtp \{\n/, 'service lmtp {\n  unix_listener lmtp {\n    mode = 0666\n  }\n'));
  appendFileSync(join(sys.configDir, 'main.cf'), '\npostern_process_mode = process\n');
  const mark = sys.log.length;
  assert.equal((await sys.cli('reload')).status, 0);
  await sys.waitLog(/reload -- version/);
  const moved = ['2525/inet', 'qmgr/', 'pickup/', 'dovecot/imap', 'dovecot/pop3', 'dovecot/lmtp'];
  const keyOf = (k: string) => (k === '2525/inet' ? `${sys.ports.smtp}/inet` : k);
  // Bounded generously: on a loaded 2-core machine six Node processes starting one after another
  // took longer than 30 s.
  const end = Date.now() + 120_000;
  let list = (await sys.services());
  while (!moved.every((k) => list.some((s) => s.key.startsWith(keyOf(k)) && s.mode === 'process' && s.running))) {
    assert.ok(Date.now() < end, `services did not move to processes: ${JSON.stringify(list)}\n${sys.log.slice(mark).slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
    list = (await sys.services());
  }
  const pids = moved.map((k) => list.find((s) => s.key.startsWith(keyOf(k)))!.pids[0]!);
  assert.equal(new Set([...pids, sys.pid]).size, pids.length + 1, `each service has its own process: ${pids.join(' ')}, master ${sys.pid}`);
  assert.ok(list.filter((s) => s.impl === 'cleanup').every((s) => s.mode === 'inline'), 'libraries (cleanup) stay where their users are');

  const lmtpSock = join(sys.configDir, 'data', 'run', 'lmtp');
  const py = `
import smtplib, ssl, threading, time, socket
user, pw = "postmaster@example.test", ${JSON.stringify(sys.password)}
ctx = ssl._create_unverified_context()
def smtp(subj):
    with smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}) as c:
        c.sendmail("a@example.org", [user], ("Subject: %s\\r\\n\\r\\nbody of %s\\r\\n" % (subj, subj)).encode())
def lmtp(subj):
    l = smtplib.LMTP(${JSON.stringify(lmtpSock)}); l.ehlo("mx.example.org")
    r = l.sendmail("b@example.org", [user], ("Subject: %s\\r\\n\\r\\nbody of %s\\r\\n" % (subj, subj)).encode()); l.quit()
    return r
smtp("first")
s = socket.create_connection(("127.0.0.1", ${sys.ports.imaps})); t = ctx.wrap_socket(s); f = t.makefile("rb")
f.readline()
t.sendall(("a LOGIN %s %s\\r\\n" % (user, pw)).encode())
while not f.readline().startswith(b"a "): pass
for i in range(100):
    t.sendall(b"b SELECT INBOX\\r\\n")
    n = 0
    while True:
        l = f.readline()
        if l.endswith(b"EXISTS\\r\\n"): n = int(l.split()[1])
        if l.startswith(b"b "): break
    if n >= 1: break
    threading.Event().wait(0.1)  # not time.sleep: EINVAL under test:clock (scripts/test-clock.sh)
print("before", n)
t.settimeout(15)
t.sendall(b"c IDLE\\r\\n"); f.readline()
def exists():
    for i in range(5):
        l = f.readline().decode().strip()
        if l.endswith("EXISTS"): return l
    return l
t0 = time.time(); smtp("second")
print("idle-smtp", exists(), "%.1f" % (time.time() - t0))
t0 = time.time(); print("lmtp", lmtp("third"))
print("idle-lmtp", exists(), "%.1f" % (time.time() - t0))
t.sendall(b"DONE\\r\\n")
while not f.readline().startswith(b"c "): pass
t.sendall(b"z LOGOUT\\r\\n")
`;
  const { stdout } = await run('python3', ['-c', py], { timeout: 60_000 });
  assert.match(stdout, /before 1\n/);
  assert.match(stdout, /idle-smtp \* 2 EXISTS/, 'a delivery by qmgr\'s process wakes the IDLE in imapd\'s process');
  assert.match(stdout, /lmtp \{\}/, 'LMTP over the unix socket accepted the recipient');
  assert.match(stdout, /idle-lmtp \* 3 EXISTS/, 'a delivery by lmtpd\'s process wakes the IDLE');
  // The log shows each service's own pid.
  assert.match(sys.log, new RegExp(`postern/smtpd\\[${pids[0]}\\]: \\w+: client=`));
  assert.match(sys.log, new RegExp(`postern/qmgr\\[${pids[1]}\\]: \\w+: from=<a@example.org>`));

  await sys.stop();
  const gone = Date.now() + 10_000;
  while (pids.some(alive) && Date.now() < gone) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(pids.filter(alive), [], 'no service process outlives the master');
});
