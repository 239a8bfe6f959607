/**
 * End to end with smtpd, imapd, pop3d and lmtpd spread over two worker processes (main.cf
 * `postern_process_count = 2`, applied by `postern reload`; every service runs in both
 * workers, src/master/master-pool.ts), real clients on loopback
 * (Python's smtplib and imaplib, raw sockets):
 *  - connections land on both processes of a service (the pids of the log lines), and /metrics
 *    (curl) adds up both workers' counts;
 *  - smtpd_client_connection_count_limit holds across the processes (the master's one anvil
 *    table): of four concurrent connections spread over both, two are greeted and two get 421;
 *  - mail_max_userip_connections (3) holds across the processes: the fourth login is refused;
 *  - the auth penalty holds across the processes: a second failed IMAP LOGIN, in the other
 *    process, is held for the penalty the first one earned (2 s + 4 s, not 2 s);
 *  - a TLS session made with one worker resumes in the other (one set of ticket keys);
 *  - postscreen's allowlist is the master's: PASS NEW with one worker, PASS OLD with the other;
 *  - an IMAP IDLE in one process sees an APPEND made through the other promptly;
 *  - SIGKILL of one worker while messages are being sent: the other keeps answering, the
 *    dead one is replaced alone, and every message that got 250 is delivered;
 *  - `postern reload` reaches every worker (a new smtpd_banner on every connection, from both);
 *  - `postern stop` lets an open session finish (221 to its QUIT) and ends both workers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PosternSystem } from '../harness/postern-system.ts';
import { freePort } from '../harness/free-port.ts';

const run = promisify(execFile);
let sys: PosternSystem;
const USER = 'postmaster@example.test';

/** The services that spread, by `postern status` key. */
const spreadKeys = () => [`${sys.ports.smtp}/inet`, `${sys.ports.submission}/inet`, 'dovecot/imap', 'dovecot/pop3', 'dovecot/lmtp'];

async function waitSpread(exclude: number[] = []): Promise<Map<string, number[]>> {
  const end = Date.now() + 40_000;
  for (;;) {
    const list = await sys.services();
    const out = new Map<string, number[]>();
    for (const k of spreadKeys()) {
      const s = list.find((x) => x.key.startsWith(k));
      if (s && s.running && s.mode === 'process' && s.pids.length === 2 && !s.pids.some((p) => exclude.includes(p))) out.set(k, s.pids);
    }
    if (out.size === spreadKeys().length) return out;
    if (Date.now() > end) throw new Error(`services not spread over two processes: ${JSON.stringify(list)}\n${sys.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let pids: Map<string, number[]>;
/** An smtpd entry with postscreen's greet test enforced (1 s wait). */
let screened = 0;
/** The HTTP listener of /metrics. */
let httpPort = 0;

before(async () => {
  sys = await PosternSystem.start();
  httpPort = await freePort();
  appendFileSync(join(sys.configDir, 'main.cf'), `\npostern_process_count = 2\npostern_http_listen = 127.0.0.1:${httpPort}\npostern_metrics = yes\n`);
  // The submission entry: no exemption for loopback clients, and at most 2 connections per client.
  const mc = join(sys.configDir, 'master.cf');
  writeFileSync(mc, readFileSync(mc, 'utf8').replace(new RegExp(`^(${sys.ports.submission}\\s+inet.*)$`, 'm'),
    '$1\n  -o smtpd_client_connection_count_limit=2\n  -o smtpd_client_event_limit_exceptions='));
  screened = await freePort();
  appendFileSync(mc, `127.0.0.1:${screened} inet n - n - - smtpd\n  -o postscreen_greet_action=enforce\n  -o postscreen_greet_wait=1s\n`);
  // At most 3 IMAP connections per user and address (Dovecot's mail_max_userip_connections).
  appendFileSync(join(sys.configDir, 'dovecot.conf'), '\nmail_max_userip_connections = 3\n');
  assert.equal((await sys.cli('reload')).status, 0);
  pids = await waitSpread();
});
after(async () => { await sys?.destroy(); });

/** Wait until the log written since `mark` matches `re` `n` times. */
async function waitSince(mark: number, re: RegExp, n = 1): Promise<void> {
  const g = new RegExp(re.source, 'g');
  const end = Date.now() + 20_000;
  while ([...sys.log.slice(mark).matchAll(g)].length < n) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${n} x ${re} in the log:\n${sys.log.slice(mark).slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const py = async (script: string, timeout = 60_000): Promise<string> => (await run('python3', ['-c', script], { timeout })).stdout;

test('connections land on both processes of smtpd and imapd', async () => {
  const mark = sys.log.length;
  await py(`
import smtplib
for i in range(4):
    with smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}) as c: c.noop()
`);
  const smtpPids = pids.get(`${sys.ports.smtp}/inet`)!;
  await waitSince(mark, /postern\/smtpd\[\d+\]: connect from/, 4);
  const seen = new Set([...sys.log.slice(mark).matchAll(/postern\/smtpd\[(\d+)\]: connect from/g)].map((m) => Number(m[1])));
  assert.deepEqual([...seen].sort(), [...smtpPids].sort(), `both smtpd children served (log pids ${[...seen]})`);
  assert.ok(!smtpPids.includes(sys.pid!), 'not the master');

  const m2 = sys.log.length;
  await py(`
import imaplib, ssl
for i in range(4):
    c = imaplib.IMAP4_SSL("127.0.0.1", ${sys.ports.imaps}, ssl_context=ssl._create_unverified_context())
    c.login(${JSON.stringify(USER)}, ${JSON.stringify(sys.password)}); c.logout()
`);
  await waitSince(m2, /imap-login: Login/, 4);
  const imapSeen = new Set([...sys.log.slice(m2).matchAll(/postern\/imapd\[(\d+)\]: imap-login: Login/g)].map((m) => Number(m[1])));
  assert.deepEqual([...imapSeen].sort(), [...pids.get('dovecot/imap')!].sort(), 'both imapd children served');
});

test('/metrics adds up the workers\' counts', async () => {
  const smtpPids = pids.get(`${sys.ports.smtp}/inet`)!;
  const page = (await run('curl', ['-s', '--max-time', '20', `http://127.0.0.1:${httpPort}/metrics`])).stdout;
  // Each worker's runtime gauges are there under its own name...
  for (const p of smtpPids) assert.match(page, new RegExp(`^postern_memory_bytes\\{thread="worker-${p}",kind="rss"\\} \\d+`, 'm'));
  // ...and the first test's four SMTP connections, two per worker, are counted once each.
  const m = new RegExp(`^postern_connections_total\\{daemon="smtpd",service="[^"]*${sys.ports.smtp}",result="accepted"\\} (\\d+)`, 'm').exec(page);
  assert.ok(m, page.split('\n').filter((l) => l.startsWith('postern_connections_total')).join('\n'));
  assert.ok(Number(m[1]) >= 4, `accepted ${m[1]}`);
});

test('smtpd_client_connection_count_limit holds across the processes (one anvil table)', async () => {
  const out = await py(`
import socket
socks, greet = [], []
for i in range(4):
    s = socket.create_connection(("127.0.0.1", ${sys.ports.submission}), timeout=20)
    socks.append(s)
    greet.append(s.makefile("rb").readline().decode().strip())
for g in greet: print(g)
for s in socks: s.close()
`);
  const lines = out.trim().split('\n');
  assert.equal(lines.filter((l) => l.startsWith('220 ')).length, 2, out);
  const refused = lines.filter((l) => /^421 4\.7\.0 \S+ Error: too many connections from 127\.0\.0\.1$/.test(l));
  assert.equal(refused.length, 2, out);
  // The four connections went to both workers: a per-process count would have let all four in.
  assert.match(sys.log, /warning: Connection concurrency limit exceeded: 3 from \S+\[127\.0\.0\.1\] for service \d+/);
});

test('the auth penalty holds across the processes: the second failure, in the other process, waits for the first one\'s penalty', async () => {
  const mark = sys.log.length;
  const out = await py(`
import imaplib, ssl, time
ctx = ssl._create_unverified_context()
for i in range(2):
    c = imaplib.IMAP4_SSL("127.0.0.1", ${sys.ports.imaps}, ssl_context=ctx)
    t0 = time.monotonic()
    try:
        c.login(${JSON.stringify(USER)}, "wrong-password-%d" % i); print("logged in?!")
    except imaplib.IMAP4.error as e:
        print("failed %.1f" % (time.monotonic() - t0))
    c.logout()
`);
  const times = [...out.matchAll(/failed (\d+\.\d)/g)].map((m) => Number(m[1]));
  assert.equal(times.length, 2, out);
  // Dovecot's numbers: auth_failure_delay (2 s) alone, then 2 s + penalty 1 (4 s) = 6 s.
  assert.ok(times[1]! >= 5.5, `the second failure waited ${times[1]} s: the penalty of the first reached the other process`);
  await waitSince(mark, /auth failed/, 2);
  const failPids = [...sys.log.slice(mark).matchAll(/postern\/imapd\[(\d+)\]: imap-login: Disconnected\.\.\. auth failed/g)].map((m) => Number(m[1]));
  assert.equal(failPids.length, 2);
  assert.notEqual(failPids[0], failPids[1], 'the two failures were answered by different processes');
});

test('mail_max_userip_connections holds across the processes (the master\'s anvil table)', async () => {
  const mark = sys.log.length;
  const out = await py(`
import imaplib, ssl
ctx = ssl._create_unverified_context()
cs = []
for i in range(4):
    c = imaplib.IMAP4_SSL("127.0.0.1", ${sys.ports.imaps}, ssl_context=ctx)
    try:
        c.login(${JSON.stringify(USER)}, ${JSON.stringify(sys.password)}); print("ok"); cs.append(c)
    except imaplib.IMAP4.error as e:
        print("no", e)
for c in cs: c.logout()
`);
  const lines = out.trim().split('\n');
  assert.deepEqual(lines.slice(0, 3), ['ok', 'ok', 'ok'], out);
  assert.match(lines[3]!, /^no .*\[LIMIT\] Maximum number of connections from user\+IP exceeded \(mail_max_userip_connections=3\)/, out);
  await waitSince(mark, /imap-login: Login/, 3);
  const loginPids = new Set([...sys.log.slice(mark).matchAll(/postern\/imapd\[(\d+)\]: imap-login: Login/g)].map((x) => Number(x[1])));
  assert.equal(loginPids.size, 2, 'the three sessions were spread over both processes');
});

test('a TLS session from one worker resumes in the other (shared ticket keys)', async () => {
  const out = await py(`
import socket, ssl
ctx = ssl._create_unverified_context()
ctx.maximum_version = ssl.TLSVersion.TLSv1_2   # the session is there right after the handshake
def greet(session=None):
    t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", ${sys.ports.imaps}), timeout=20), session=session)
    f = t.makefile("rb"); f.readline()
    t.sendall(b"a LOGOUT\\r\\n")
    while not f.readline().startswith(b"a "): pass
    s, r = t.session, t.session_reused
    t.close()
    return s, r
first, _ = greet()
print(" ".join(str(greet(first)[1]) for i in range(4)))
`);
  // Connections alternate between the workers: two of the four resumptions are in the other one.
  assert.equal(out.trim(), 'True True True True', out);
});

test('postscreen\'s allowlist is one for the system: a client that passed with one worker is PASS OLD with the other', async () => {
  const mark = sys.log.length;
  const out = await py(`
import socket
for i in range(3):
    s = socket.create_connection(("127.0.0.1", ${screened}), timeout=20)
    f = s.makefile("rb")
    l = f.readline().decode().strip()
    while l.startswith("220-"): l = f.readline().decode().strip()
    print(l[:4]); s.sendall(b"QUIT\\r\\n"); f.readline(); s.close()
`);
  assert.deepEqual(out.trim().split('\n').map((l) => l.trim()), ['220', '220', '220'], out);
  await waitSince(mark, /postern\/postscreen\[\d+\]: PASS (NEW|OLD)/, 3);
  const passes = [...sys.log.slice(mark).matchAll(/postern\/postscreen\[(\d+)\]: PASS (NEW|OLD)/g)].map((m) => `${m[2]} ${m[1]}`);
  assert.equal(passes.filter((p) => p.startsWith('NEW')).length, 1, passes.join(', '));
  const oldPids = new Set(passes.filter((p) => p.startsWith('OLD')).map((p) => p.split(' ')[1]));
  const newPid = passes.find((p) => p.startsWith('NEW'))!.split(' ')[1];
  assert.ok([...oldPids].some((p) => p !== newPid), `PASS OLD in the other worker too: ${passes.join(', ')}`);
});

test('an IMAP IDLE in one process sees an APPEND made through the other', async () => {
  const mark = sys.log.length;
  const out = await py(`
import imaplib, socket, ssl, time
user, pw = ${JSON.stringify(USER)}, ${JSON.stringify(sys.password)}
ctx = ssl._create_unverified_context()
t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", ${sys.ports.imaps})))
f = t.makefile("rb"); f.readline()
t.sendall(("a LOGIN %s %s\\r\\n" % (user, pw)).encode())
while not f.readline().startswith(b"a "): pass
t.sendall(b"b SELECT INBOX\\r\\n")
n = 0
while True:
    l = f.readline()
    if l.endswith(b"EXISTS\\r\\n"): n = int(l.split()[1])
    if l.startswith(b"b "): break
t.settimeout(20)
t.sendall(b"c IDLE\\r\\n"); f.readline()
b = imaplib.IMAP4_SSL("127.0.0.1", ${sys.ports.imaps}, ssl_context=ctx)
b.login(user, pw)
t0 = time.monotonic()
print("append", b.append("INBOX", None, None, b"Subject: appended elsewhere\\r\\n\\r\\nhello\\r\\n")[0])
got = ""
for i in range(5):
    l = f.readline().decode().strip()
    if l.endswith("EXISTS"): got = l; break
print("before", n, "idle", got, "after %.1f" % (time.monotonic() - t0))
t.sendall(b"DONE\\r\\n")
while not f.readline().startswith(b"c "): pass
b.logout()
`);
  const m = /before (\d+) idle \* (\d+) EXISTS after/.exec(out);
  assert.ok(m, out);
  assert.equal(Number(m[2]), Number(m[1]) + 1, out);
  await waitSince(mark, /imap-login: Login/, 2);
  const loginPids = [...sys.log.slice(mark).matchAll(/postern\/imapd\[(\d+)\]: imap-login: Login/g)].map((x) => Number(x[1]));
  assert.equal(loginPids.length, 2);
  assert.notEqual(loginPids[0], loginPids[1], 'the IDLE and the APPEND were in different processes');
});

test('SIGKILL of one worker under load: the other answers, the dead one is replaced alone, nothing acknowledged is lost', async () => {
  const smtpPids = pids.get(`${sys.ports.smtp}/inet`)!;
  const victim = smtpPids[0]!;
  const script = `
import smtplib, threading, sys
acked, lock = [], threading.Lock()
def sender(k):
    for i in range(15):
        subj = "multi-%d-%d" % (k, i)
        try:
            with smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}, timeout=30) as c:
                c.sendmail("a@example.org", [${JSON.stringify(USER)}], ("Subject: %s\\r\\nMessage-ID: <%s@example.org>\\r\\n\\r\\nbody\\r\\n" % (subj, subj)).encode())
            with lock: acked.append(subj)
        except Exception as e:
            pass
ts = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
for t in ts: t.start()
sys.stdout.write("started\\n"); sys.stdout.flush()
for t in ts: t.join()
print("acked", " ".join(acked))
`;
  const child = execFile('python3', ['-c', script], { timeout: 120_000 });
  let stdout = '';
  child.stdout!.on('data', (d) => { stdout += d; });
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  while (!stdout.includes('started')) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300));
  process.kill(victim, 'SIGKILL');
  await done;
  const acked = (/acked (.*)/.exec(stdout)?.[1] ?? '').split(' ').filter(Boolean);
  assert.ok(acked.length >= 30, `most messages were acknowledged (${acked.length} of 60): ${stdout}`);
  await sys.waitLog(new RegExp(`warning: process postern/smtpd pid ${victim} killed by signal 9`));
  assert.match(sys.log, /warning: postern\/worker: restarting one of 2 processes in/);

  // The service answers; the survivor was never restarted and a new child replaced the victim.
  await py(`
import smtplib
with smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}, timeout=20) as c: c.noop()
`);
  const after = (await waitSpread([victim])).get(`${sys.ports.smtp}/inet`)!;
  assert.ok(after.includes(smtpPids[1]!), 'the other worker kept running');
  assert.deepEqual([...(await waitSpread()).get('dovecot/imap')!].sort(), [...after].sort(), 'the new worker runs imapd too');

  // Every acknowledged message reaches the mailbox.
  const box = sys.maildir(USER);
  const subjects = () => {
    const got = new Set<string>();
    for (const sub of ['new', 'cur']) {
      let names: string[] = [];
      try { names = readdirSync(join(box, sub)); } catch { continue; }
      for (const n of names) {
        const m = /^Subject: (multi-\d+-\d+)/m.exec(readFileSync(join(box, sub, n), 'latin1'));
        if (m) got.add(m[1]!);
      }
    }
    return got;
  };
  const end = Date.now() + 45_000;
  let missing = acked;
  while (Date.now() < end) {
    const got = subjects();
    missing = acked.filter((s) => !got.has(s));
    if (missing.length === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(missing, [], 'every message that got 250 was delivered');
  pids = await waitSpread();
});

test('postern reload reaches every worker: a new smtpd_banner on connections to both', async () => {
  const before = pids.get(`${sys.ports.smtp}/inet`)!;
  const m0 = sys.log.length;
  appendFileSync(join(sys.configDir, 'main.cf'), 'smtpd_banner = $myhostname ESMTP spread-over-processes\n');
  assert.equal((await sys.cli('reload')).status, 0);
  await waitSince(m0, /reload -- version/);
  // The same worker processes run the new smtpd instance (master-pool.ts): its connections are
  // routed to it once every worker has started it.
  await py(`
import socket, threading, time
end = time.monotonic() + 30
while time.monotonic() < end:
    s = socket.create_connection(("127.0.0.1", ${sys.ports.smtp}), timeout=20)
    l = s.makefile("rb").readline().decode(); s.close()
    if "spread-over-processes" in l: break
    threading.Event().wait(0.2)  # not time.sleep: EINVAL under a moved clock
`);
  pids = await waitSpread();
  assert.deepEqual([...pids.get(`${sys.ports.smtp}/inet`)!].sort(), [...before].sort(), 'the same worker processes');
  const mark = sys.log.length;
  const out = await py(`
import socket
for i in range(4):
    s = socket.create_connection(("127.0.0.1", ${sys.ports.smtp}), timeout=20)
    print(s.makefile("rb").readline().decode().strip()); s.sendall(b"QUIT\\r\\n"); s.close()
`);
  const lines = out.trim().split('\n');
  assert.equal(lines.length, 4);
  for (const l of lines) assert.match(l, /^220 \S+ ESMTP spread-over-processes$/);
  await waitSince(mark, /postern\/smtpd\[\d+\]: connect from/, 4);
  const seen = new Set([...sys.log.slice(mark).matchAll(/postern\/smtpd\[(\d+)\]: connect from/g)].map((m) => Number(m[1])));
  assert.equal(seen.size, 2, 'both new children greeted with the new banner');
});

test('postern stop ends every worker after its sessions', async () => {
  const workers = [...new Set([...pids.values()].flat())];
  assert.equal(workers.length, 2, `one pool of two workers for every spread service: ${JSON.stringify([...pids])}`);
  // A session open at the stop is let finish: QUIT is answered, then the workers exit.
  const child = execFile('python3', ['-c', `
import socket, threading
s = socket.create_connection(("127.0.0.1", ${sys.ports.smtp}), timeout=30)
f = s.makefile("rb"); f.readline()
print("greeted", flush=True)
threading.Event().wait(1.5)
s.sendall(b"QUIT\\r\\n"); print(f.readline().decode().strip(), flush=True)
`], { timeout: 60_000 });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const until = Date.now() + 20_000;
  while (!out.includes('greeted') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  await sys.stop();
  await exited;
  assert.match(out, /greeted\n221 /);
  const alive = (p: number) => { try { process.kill(p, 0); return true; } catch { return false; } };
  const end = Date.now() + 10_000;
  while (workers.some(alive) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(workers.filter(alive), [], 'no worker outlives the master');
});
