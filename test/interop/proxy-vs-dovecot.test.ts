/**
 * The login proxy against real Dovecot's: the same passwd-file passdbs (`args = proxy.%s`, one
 * per protocol, `proxy=y host=127.0.0.1 port=...`) serve a private real Dovecot 2.3 and a Postern
 * front, both pointed at one Postern backend. A raw client (Python sockets) logs in through each
 * and records what it is answered: the login replies (success forwarded from the backend, a
 * backend that is down, nologin + reason, a wrong password, a backend that refuses the proxied
 * password), then what the backend serves. Every reply must be the same through both proxies.
 * Real Dovecot as a proxy also shows that Postern's imapd/pop3d answer Dovecot's ID and XCLIENT;
 * and a Postern front in front of a real Dovecot backend (a site moving its fronts first) shows
 * that real Dovecot takes Postern's ID and XCLIENT: it logs the client's own address.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { scriptedChat } from '../harness/line-chat.ts';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { freePort } from '../harness/free-port.ts';
import { appendFileSync } from 'node:fs';

const run = promisify(execFile);
const skip = RealDovecot.unavailable();
let backend: PosternSystem, front: PosternSystem, dovecot: RealDovecot, dcBackend: RealDovecot | undefined, dir: string;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'postern-proxydc-'));
  chmodSync(dir, 0o755);
  [backend, front] = await Promise.all([PosternSystem.start(), PosternSystem.start()]);
  assert.equal((await backend.cli('user', 'add', 'alice@example.test', '-p', 'alice-pw')).status, 0);
  const bconf = join(backend.configDir, 'dovecot.conf');
  writeFileSync(bconf, `${readFileSync(bconf, 'utf8')}\nlogin_trusted_networks = 127.0.0.0/8\n`);
  const dead = await freePort();
  for (const proto of ['imap', 'pop3', 'sieve'] as const) {
    const port = backend.ports[proto];
    writeFileSync(join(dir, `proxy.${proto}`), [
      `alice@example.test:{PLAIN}alice-pw::::::proxy=y host=127.0.0.1 port=${port}`,
      `down@example.test:{PLAIN}down-pw::::::proxy=y host=127.0.0.1 port=${dead}`,
      `moved@example.test:{PLAIN}moved-pw::::::nologin=y reason=Moved_to_another_server`,
      `badpass@example.test:{PLAIN}bp-pw::::::proxy=y host=127.0.0.1 port=${port} destuser=alice@example.test pass=wrong`,
    ].join('\n') + '\n', { mode: 0o644 });
  }
  const fconf = join(front.configDir, 'dovecot.conf');
  writeFileSync(fconf, readFileSync(fconf, 'utf8')
    .replace(/passdb \{[^}]*\}/, `passdb {\n  driver = passwd-file\n  args = ${dir}/proxy.%s\n}`)
    .replace(/userdb \{[^}]*\}/, 'userdb {\n  driver = static\n  args = uid=5000 gid=5000 home=/nonexistent\n}')
    .replace(/^disable_plaintext_auth = yes$/m, 'disable_plaintext_auth = no')
    .concat('\nauth_failure_delay = 0\n'));
  await Promise.all([backend.stop(), front.stop()]);
  await Promise.all([PosternSystem.start(backend), PosternSystem.start(front)]);
  dovecot = await RealDovecot.start({
    protocols: ['imap', 'pop3', 'sieve'], users: [],
    extraConf: `passdb {\n  driver = passwd-file\n  args = ${dir}/proxy.%s\n}\n`,
  });
  await run('python3', ['-c', `
import smtplib
l = smtplib.LMTP("127.0.0.1", ${backend.ports.lmtp}); l.ehlo("front")
l.sendmail("a@example.org", ["alice@example.test"], b"Subject: hello\\r\\nFrom: a@example.org\\r\\n\\r\\nproxied body\\r\\n"); l.quit()
`]);
});

after(async () => {
  await dcBackend?.stop();
  await dovecot?.stop();
  await Promise.all([front?.destroy(), backend?.destroy()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const CLIENT = `
import socket, json, re, sys
def norm(l): return re.sub(r" \\(\\d+\\.\\d+ \\+ \\d+\\.\\d+ secs\\)\\.", "", l.decode("utf-8", "replace").rstrip("\\r\\n"))
def imap(port, cmds):
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(20); f = s.makefile("rb")
    f.readline()
    out = []
    for i, c in enumerate(cmds):
        tag = "t%d" % i
        s.sendall((tag + " " + c + "\\r\\n").encode())
        while True:
            l = f.readline()
            if not l: out.append("EOF"); return out
            if l.startswith(b"* OK [CAPABILITY") or l.startswith(b"* CAPABILITY"): l = b"* CAPABILITY..."
            out.append(norm(l))
            if l.startswith(tag.encode() + b" "): break
    s.close()
    return out
def pop3(port, cmds, multi=()):
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(20); f = s.makefile("rb")
    f.readline()
    out = []
    for c in cmds:
        s.sendall((c + "\\r\\n").encode())
        l = f.readline()
        if not l: out.append("EOF"); return out
        out.append(norm(l))
        if c.split(" ")[0] in multi and l.startswith(b"+OK"):
            while True:
                l = f.readline(); out.append(norm(l))
                if l in (b".\\r\\n", b""): break
    s.close()
    return out
def sieve(port, cmds):
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(20); f = s.makefile("rb")
    while not f.readline().startswith(b"OK"): pass
    out = []
    for c in cmds:
        s.sendall((c + "\\r\\n").encode())
        while True:
            l = f.readline()
            if not l: out.append("EOF"); return out
            out.append(norm(l))
            if l.startswith((b"OK", b"NO", b"BYE")): break
    s.close()
    return out
import base64
def plain(u, p): return 'AUTHENTICATE "PLAIN" "%s"' % base64.b64encode(("\\0%s\\0%s" % (u, p)).encode()).decode()
ip, pp, sp = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
r = {}
r["imap-alice"] = imap(ip, ["LOGIN alice@example.test alice-pw", "SELECT INBOX", "UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[])", "LOGOUT"])
r["imap-down"] = imap(ip, ["LOGIN down@example.test down-pw"])
r["imap-moved"] = imap(ip, ["LOGIN moved@example.test moved-pw"])
r["imap-wrongpw"] = imap(ip, ["LOGIN alice@example.test nope"])
r["imap-badpass"] = imap(ip, ["LOGIN badpass@example.test bp-pw"])
r["pop3-alice"] = pop3(pp, ["USER alice@example.test", "PASS alice-pw", "STAT", "RETR 1", "QUIT"], multi=("RETR",))
r["pop3-down"] = pop3(pp, ["USER down@example.test", "PASS down-pw"])
r["pop3-moved"] = pop3(pp, ["USER moved@example.test", "PASS moved-pw"])
r["pop3-wrongpw"] = pop3(pp, ["USER alice@example.test", "PASS nope"])
r["sieve-alice"] = sieve(sp, [plain("alice@example.test", "alice-pw"), "LISTSCRIPTS", "LOGOUT"])
r["sieve-down"] = sieve(sp, [plain("down@example.test", "down-pw")])
r["sieve-wrongpw"] = sieve(sp, [plain("alice@example.test", "nope")])
print(json.dumps(r))
`;

async function replies(imapPort: number, pop3Port: number, sievePort: number): Promise<Record<string, string[]>> {
  const { stdout } = await run('python3', ['-c', CLIENT, String(imapPort), String(pop3Port), String(sievePort)], { timeout: 60_000 });
  return JSON.parse(stdout) as Record<string, string[]>;
}

test('a client sees the same replies through Postern\'s proxy as through real Dovecot\'s', { skip }, async () => {
  // A first round takes \Recent and POP3 RETR sets \Seen: compare two later rounds, in the same state.
  await replies(dovecot.ports.imap!, dovecot.ports.pop3!, dovecot.ports.sieve!);
  const viaPostern = await replies(front.ports.imap, front.ports.pop3, front.ports.sieve);
  const viaDovecot = await replies(dovecot.ports.imap!, dovecot.ports.pop3!, dovecot.ports.sieve!);
  const diffs: string[] = [];
  for (const k of Object.keys(viaDovecot)) if (JSON.stringify(viaPostern[k]) !== JSON.stringify(viaDovecot[k])) diffs.push(`${k}\n  Dovecot: ${JSON.stringify(viaDovecot[k])}\n  Postern: ${JSON.stringify(viaPostern[k])}`);
  assert.deepEqual(diffs, []);
  for (const k of Object.keys(viaDovecot)) assert.deepEqual(viaPostern[k], viaDovecot[k], `${k}\nDovecot: ${JSON.stringify(viaDovecot[k])}\nPostern: ${JSON.stringify(viaPostern[k])}`);
  assert.match(JSON.stringify(viaPostern['imap-alice']), /proxied body/);
  // the backend logged the client's address that real Dovecot forwarded (ID / XCLIENT)
  assert.match(backend.log, /imap-login: Login: user=<alice@example\.test>, method=PLAIN, rip=127\.0\.0\.1/);
});


test('a Postern front in front of a real Dovecot backend: logins relayed, the client address reaches Dovecot (ID, XCLIENT)', { skip }, async () => {
  dcBackend = await RealDovecot.start({
    protocols: ['imap', 'pop3'], users: [{ user: 'dcuser@example.test', pass: 'dc-pw' }],
    extraConf: 'login_trusted_networks = 127.0.0.0/8\n',
  });
  appendFileSync(join(dir, 'proxy.imap'), `dcuser@example.test:{PLAIN}dc-pw::::::proxy=y host=127.0.0.1 port=${dcBackend.ports.imap}\n`);
  appendFileSync(join(dir, 'proxy.pop3'), `dcuser@example.test:{PLAIN}dc-pw::::::proxy=y host=127.0.0.1 port=${dcBackend.ports.pop3}\n`);
  const imap = await scriptedChat(front.ports.imap, '127.0.0.5', ['a LOGIN dcuser@example.test dc-pw', 'b SELECT INBOX', 'c LOGOUT'], /^[abc] /);
  assert.match(imap, /a OK \[CAPABILITY [^\]]+\] Logged in/, imap);
  assert.match(imap, /b OK \[READ-WRITE\] Select completed/);
  const pop = await scriptedChat(front.ports.pop3, '127.0.0.6', ['USER dcuser@example.test', 'PASS dc-pw', 'STAT', 'QUIT'], /^(\+OK|-ERR)/);
  assert.match(pop, /\+OK Logged in\.\r\n\+OK 0 0\r\n/, pop);
  const deadline = Date.now() + 10_000;
  while (!/pop3-login: (?:Info: )?Login: user=<dcuser@example\.test>/.test(dcBackend.log()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.match(dcBackend.log(), /imap-login: (?:Info: )?Login: user=<dcuser@example\.test>, method=PLAIN, rip=127\.0\.0\.5/, dcBackend.log());
  assert.match(dcBackend.log(), /pop3-login: (?:Info: )?Login: user=<dcuser@example\.test>, method=PLAIN, rip=127\.0\.0\.6/, dcBackend.log());
});
