/**
 * Beyond one machine (docs/proxy.md): a front Postern and two mailbox backend Postern
 * instances on loopback, as a Dovecot director-less proxy site runs them.
 *
 * The front's passdb is one passwd-file per protocol (`args = .../proxy.%s`, Dovecot's %s)
 * whose extra fields say `proxy=y host=127.0.0.1 port=...` for each user; its main.cf sends each
 * user's mail to their backend's LMTP with `transport_maps = texthash:` (`lmtp:inet:...`). The
 * backends trust the front (`login_trusted_networks`), so they log the client's own address
 * (IMAP ID x-originating-ip, POP3 XCLIENT).
 *
 * Real clients: Python's smtplib/imaplib/poplib and imapflow. What a client sees through the
 * proxy is compared with what it sees directly on the backend. A backend killed mid-test: the
 * front's IMAP answers NO [UNAVAILABLE], its mail waits in the front's queue and is delivered
 * after the backend returns and the queue is flushed; the other backend's users are served all
 * along. Hostile backends (one that never answers, one that sends garbage) and a client that
 * floods during the proxy login are bounded, and the log names the backend.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { scriptedChat } from '../harness/line-chat.ts';

const run = promisify(execFile);
let front: PosternSystem, backA: PosternSystem, backB: PosternSystem;
let hang: Server, garbage: Server;
const sockets = new Set<Socket>();

const USERS = {
  alice: 'alice-pw', bob: 'bob-pw', hang: 'hang-pw', junk: 'junk-pw', nobody: 'nobody-pw',
  alicessl: 'alice-pw', alicestarttls: 'alice-pw', aliceverify: 'alice-pw', local: 'local-pw',
};

function listen(onConn: (s: Socket) => void): Promise<Server> {
  return new Promise((resolve) => {
    const srv = createServer((s) => { sockets.add(s); s.on('error', () => {}); s.on('close', () => sockets.delete(s)); onConn(s); });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}
const portOf = (s: Server) => (s.address() as { port: number }).port;

function writeFrontConfig(): void {
  const conf = front.configDir;
  const line = (u: string, proto: 'imap' | 'pop3' | 'sieve', extra: string) => `${u}@example.test:{PLAIN}${USERS[u as keyof typeof USERS]}::::::${extra}`;
  for (const proto of ['imap', 'pop3', 'sieve'] as const) {
    const lines = [
      line('alice', proto, `proxy=y host=127.0.0.1 port=${backA.ports[proto]}`),
      line('bob', proto, `proxy=y host=127.0.0.1 port=${backB.ports[proto]}`),
      line('hang', proto, `proxy=y host=127.0.0.1 port=${portOf(hang)} proxy_timeout=2`),
      line('junk', proto, `proxy=y host=127.0.0.1 port=${portOf(garbage)}`),
      line('nobody', proto, 'nologin=y reason=Account_moved_to_the_new_server'),
      // TLS to the backend: from the first byte (imaps/pop3s), or STARTTLS/STLS; the backend's
      // certificate is self-signed, so only any-cert gets through
      line('alicessl', proto, `proxy=y host=127.0.0.1 port=${proto === 'imap' ? backA.ports.imaps : proto === 'pop3' ? backA.ports.pop3s : backA.ports.sieve} ssl=any-cert destuser=alice@example.test`),
      line('alicestarttls', proto, `proxy=y host=127.0.0.1 port=${backA.ports[proto]} starttls=any-cert destuser=alice@example.test`),
      line('aliceverify', proto, `proxy=y host=127.0.0.1 port=${backA.ports[proto]} starttls=yes destuser=alice@example.test`),
      // proxy_maybe pointing at the front itself: a local login there
      line('local', proto, `proxy_maybe=y host=127.0.0.1 port=${front.ports[proto]}`),
    ];
    writeFileSync(join(conf, `proxy.${proto}`), lines.join('\n') + '\n');
  }
  writeFileSync(join(conf, 'users'), ['alice', 'bob', 'local'].map((u) => `${u}@example.test::::::`).join('\n') + '\n');
  let dc = readFileSync(join(conf, 'dovecot.conf'), 'utf8');
  dc = dc.replace(/passdb \{[^}]*\}/, `passdb {\n  driver = passwd-file\n  args = ${conf}/proxy.%s\n}`)
    .replace(/userdb \{[^}]*\}/, `userdb {\n  driver = passwd-file\n  args = ${conf}/users\n}`)
    // the address-forwarding tests connect from 127.0.0.7/.9 without TLS
    .replace(/^disable_plaintext_auth = yes$/m, 'disable_plaintext_auth = no');
  writeFileSync(join(conf, 'dovecot.conf'), dc);
  writeFileSync(join(conf, 'transport'), [
    `alice@example.test lmtp:inet:127.0.0.1:${backA.ports.lmtp}`,
    `bob@example.test lmtp:inet:127.0.0.1:${backB.ports.lmtp}`,
  ].join('\n') + '\n');
  const mc = readFileSync(join(conf, 'main.cf'), 'utf8');
  writeFileSync(join(conf, 'main.cf'), `${mc}\ntransport_maps = texthash:${conf}/transport\nminimal_backoff_time = 300s\nqueue_run_delay = 300s\n`);
}

async function trustFront(b: PosternSystem, user: string): Promise<void> {
  assert.equal((await b.cli('user', 'add', `${user}@example.test`, '-p', USERS[user as keyof typeof USERS])).status, 0);
  const f = join(b.configDir, 'dovecot.conf');
  writeFileSync(f, `${readFileSync(f, 'utf8')}\nlogin_trusted_networks = 127.0.0.0/8\n`);
}

before(async () => {
  hang = await listen(() => { /* accepts, never says a word */ });
  garbage = await listen((s) => { s.write(Buffer.alloc(20_000, 0x41)); });
  [backA, backB, front] = await Promise.all([PosternSystem.start(), PosternSystem.start(), PosternSystem.start()]);
  await trustFront(backA, 'alice');
  await trustFront(backB, 'bob');
  writeFrontConfig();
  await Promise.all([backA.stop(), backB.stop(), front.stop()]);
  await Promise.all([PosternSystem.start(backA), PosternSystem.start(backB), PosternSystem.start(front)]);
});

after(async () => {
  for (const s of sockets) s.destroy();
  hang?.close();
  garbage?.close();
  await Promise.all([front?.destroy(), backA?.destroy(), backB?.destroy()]);
});

function messages(sys: PosternSystem, user: string): string[] {
  const d = sys.maildir(user);
  const out: string[] = [];
  for (const sub of ['new', 'cur']) {
    const p = join(d, sub);
    if (existsSync(p)) for (const f of readdirSync(p)) out.push(readFileSync(join(p, f), 'utf8'));
  }
  return out;
}

async function waitFor(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\nfront log:\n${front.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


async function smtpSend(to: string, subject: string): Promise<void> {
  await run('python3', ['-c', `
import smtplib
with smtplib.SMTP("127.0.0.1", ${front.ports.smtp}) as c:
    c.sendmail("sender@example.org", ["${to}"], b"Subject: ${subject}\\r\\nFrom: sender@example.org\\r\\n\\r\\nbody of ${subject}\\r\\n")
`], { timeout: 30_000 });
}

/** One imaplib session: LOGIN, CAPABILITY, LIST, SELECT, SEARCH, FETCH; printed as JSON. */
async function imapView(port: number, user: string): Promise<Record<string, unknown>> {
  const { stdout } = await run('python3', ['-c', `
import imaplib, json, re
m = imaplib.IMAP4("127.0.0.1", ${port})
typ, login = m.login("${user}@example.test", "${USERS[user as keyof typeof USERS]}")
norm = lambda b: re.sub(r" \\(\\d+\\.\\d+ \\+ \\d+\\.\\d+ secs\\)\\.", "", b.decode() if isinstance(b, bytes) else b)
out = {"login": [typ] + [norm(x) for x in login]}
typ, cap = m.capability(); out["capability"] = [norm(x) for x in cap]
typ, lst = m.list(); out["list"] = [norm(x) for x in lst]
typ, sel = m.select("INBOX"); out["select"] = [norm(x) for x in sel]
typ, srch = m.uid("SEARCH", "SUBJECT", "for"); out["search"] = [norm(x) for x in srch]
typ, f = m.uid("FETCH", "1:*", "(UID RFC822.SIZE INTERNALDATE ENVELOPE BODY.PEEK[])")
out["fetch"] = [[norm(p) for p in x] if isinstance(x, tuple) else norm(x) for x in f]
m.logout()
print(json.dumps(out))
`], { timeout: 30_000 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

test('SMTP at the front lands in each user\'s own backend over LMTP (transport_maps texthash:)', async () => {
  await smtpSend('alice@example.test', 'for alice');
  await smtpSend('bob@example.test', 'for bob');
  await waitFor('alice\'s mail on backend A', () => messages(backA, 'alice@example.test').length === 1);
  await waitFor('bob\'s mail on backend B', () => messages(backB, 'bob@example.test').length === 1);
  assert.match(messages(backA, 'alice@example.test')[0]!, /Subject: for alice/);
  assert.match(messages(backB, 'bob@example.test')[0]!, /Subject: for bob/);
  assert.equal(messages(backB, 'alice@example.test').length, 0, 'alice has nothing on backend B');
  assert.equal(messages(backA, 'bob@example.test').length, 0, 'bob has nothing on backend A');
  assert.match(front.log, new RegExp(`to=<alice@example\\.test>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${backA.ports.lmtp}.*status=sent`));
});

test('imaplib through the front sees exactly what it sees on the backend', async () => {
  await waitFor('alice\'s mail', () => messages(backA, 'alice@example.test').length >= 1);
  const direct = await imapView(backA.ports.imap, 'alice');
  const proxied = await imapView(front.ports.imap, 'alice');
  assert.deepEqual(proxied, direct);
  assert.match(JSON.stringify(proxied.fetch), /body of for alice/);
  assert.match(front.log, new RegExp(`proxy\\(alice@example\\.test\\): started proxying to 127\\.0\\.0\\.1:${backA.ports.imap}`));
  const bob = await imapView(front.ports.imap, 'bob');
  assert.match(JSON.stringify(bob.fetch), /body of for bob/);
});

test('imapflow (STARTTLS to the front, then proxied) lists and fetches the same as directly', async () => {
  const script = `
import { ImapFlow } from 'imapflow';
const view = async (port) => {
  const c = new ImapFlow({ host: '127.0.0.1', port, secure: false, tls: { rejectUnauthorized: false }, logger: false,
    auth: { user: 'bob@example.test', pass: 'bob-pw' } });
  await c.connect();
  const list = (await c.list()).map((m) => [m.path, [...m.flags].sort(), m.specialUse ?? null]);
  const lock = await c.getMailboxLock('INBOX');
  const msgs = [];
  try {
    for await (const m of c.fetch('1:*', { uid: true, envelope: true, source: true, size: true })) msgs.push([m.uid, m.size, m.envelope.subject, m.source.toString()]);
    msgs.push(['search', await c.search({ subject: 'bob' }, { uid: true })]);
  } finally { lock.release(); }
  const secure = c.secureConnection;
  await c.logout();
  return { list, msgs, secure };
};
console.log(JSON.stringify({ direct: await view(${backB.ports.imap}), proxied: await view(${front.ports.imap}) }));
`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000, cwd: join(import.meta.dirname, '..', '..') });
  const r = JSON.parse(stdout) as { direct: { list: unknown; msgs: unknown; secure: boolean }; proxied: { list: unknown; msgs: unknown; secure: boolean } };
  assert.deepEqual(r.proxied.list, r.direct.list);
  assert.deepEqual(r.proxied.msgs, r.direct.msgs);
  assert.match(JSON.stringify(r.proxied.msgs), /body of for bob/);
});

test('POP3 through the front (USER/PASS and AUTH PLAIN) reads the backend; XCLIENT carries the client address', async () => {
  const { stdout } = await run('python3', ['-c', `
import poplib, socket
def view(port, sasl):
    p = poplib.POP3("127.0.0.1", port)
    if sasl:
        import base64
        r = p._shortcmd("AUTH PLAIN " + base64.b64encode(b"\\0bob@example.test\\0bob-pw").decode())
    else:
        p.user("bob@example.test"); r = p.pass_("bob-pw")
    out = [r.decode(), p.stat(), [l.decode() for l in p.uidl()[1]], [l.decode() for l in p.retr(1)[1]]]
    p.quit()
    return out
d = view(${backB.ports.pop3}, False)
print("same-user", view(${front.ports.pop3}, False) == d)
print("same-sasl", view(${front.ports.pop3}, True) == d)
print("direct", d)
`], { timeout: 30_000 });
  assert.match(stdout, /same-user True/);
  assert.match(stdout, /same-sasl True/);
  assert.match(stdout, /body of for bob/);
  // the backend was told the client's own address and port (not the front's connection)
  const pop = await scriptedChat(front.ports.pop3, '127.0.0.7', ['USER bob@example.test', 'PASS bob-pw', 'QUIT'], /^(\+OK|-ERR)/);
  assert.match(pop, /\+OK Logged in\./, pop);
  await backB.waitLog(/pop3-login: Login: user=<bob@example\.test>, method=PLAIN, rip=127\.0\.0\.7/);
});

test('IMAP ID forwards the client address to a backend that trusts the front', async () => {
  const imap = await scriptedChat(front.ports.imap, '127.0.0.9', ['a LOGIN alice@example.test alice-pw', 'b LOGOUT'], /^[ab] /);
  assert.match(imap, /a OK \[CAPABILITY [^\]]+\] Logged in/, imap);
  await backA.waitLog(/imap-login: Login: user=<alice@example\.test>, method=PLAIN, rip=127\.0\.0\.9/);
});

test('ManageSieve through the front: PUTSCRIPT and LISTSCRIPTS answer as the backend does', async () => {
  const py = `
import socket, base64
def view(port):
    s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
    def until_ok():
        out = []
        while True:
            l = f.readline().decode().rstrip("\\r\\n"); out.append(l)
            if l.startswith(("OK", "NO", "BYE")): return out
    until_ok()
    s.sendall(b'AUTHENTICATE "PLAIN" "' + base64.b64encode(b"\\0alice@example.test\\0alice-pw") + b'"\\r\\n')
    login = until_ok()
    s.sendall(b'PUTSCRIPT "s1" {25+}\\r\\nkeep;\\r\\n# proxied script\\r\\n\\r\\n'); put = until_ok()
    s.sendall(b"LISTSCRIPTS\\r\\n"); lst = until_ok()
    s.sendall(b"LOGOUT\\r\\n"); until_ok()
    return login, lst
print("front", view(${front.ports.sieve}))
print("back", view(${backA.ports.sieve}))
`;
  const { stdout } = await run('python3', ['-c', py], { timeout: 30_000 });
  const f = /front (.*)/.exec(stdout)![1], b = /back (.*)/.exec(stdout)![1];
  assert.equal(f, b);
  assert.match(f!, /"s1"/);
  // the backend trusts the front: it offers XCLIENT, and the client's own address reaches it
  const auth = `AUTHENTICATE "PLAIN" "${Buffer.from('\0alice@example.test\0alice-pw').toString('base64')}"`;
  const t = await scriptedChat(front.ports.sieve, '127.0.0.8', [auth, 'LOGOUT'], /^(OK|NO|BYE)/);
  assert.match(t, /OK "Logged in\."/, t);
  await backA.waitLog(/managesieve-login: Login: user=<alice@example\.test>, method=PLAIN, rip=127\.0\.0\.8/);
});

test('nologin + reason: the client is told why', async () => {
  const { stdout } = await run('python3', ['-c', `
import imaplib
m = imaplib.IMAP4("127.0.0.1", ${front.ports.imap})
try: m.login("nobody@example.test", "nobody-pw")
except imaplib.IMAP4.error as e: print("err", e)
`], { timeout: 30_000 });
  assert.match(stdout, /err .*\[CONTACTADMIN\] Account_moved_to_the_new_server/);
});

test('hostile backends: one that hangs (proxy_timeout), one that sends garbage; a flooding client; others served', async () => {
  const t0 = Date.now();
  const { stdout } = await run('python3', ['-c', `
import imaplib, poplib, socket, threading
def imap(user, pw):
    m = imaplib.IMAP4("127.0.0.1", ${front.ports.imap})
    try: m.login(user, pw); return "ok"
    except imaplib.IMAP4.error as e: return str(e)
res = {}
def flood():
    s = socket.create_connection(("127.0.0.1", ${front.ports.imap})); s.recv(1000)
    s.sendall(b"a LOGIN hang@example.test hang-pw\\r\\n")
    sent = 0
    try:
        s.settimeout(5)
        while sent < 8 * 1024 * 1024: s.sendall(b"x" * 65536); sent += 65536
    except Exception: pass
    res["flood-sent"] = sent
    s.close()
th = threading.Thread(target=flood); th.start()
res["hang"] = imap("hang@example.test", "hang-pw")
res["junk"] = imap("junk@example.test", "junk-pw")
res["bob"] = imap("bob@example.test", "bob-pw")
p = poplib.POP3("127.0.0.1", ${front.ports.pop3}); p.user("junk@example.test")
try: p.pass_("junk-pw")
except poplib.error_proto as e: res["pop3-junk"] = e.args[0].decode()
th.join()
for k in sorted(res): print(k, res[k])
`], { timeout: 60_000 });
  assert.match(stdout, /hang .*\[UNAVAILABLE\] Account is temporarily unavailable\./);
  assert.match(stdout, /junk .*\[UNAVAILABLE\] Account is temporarily unavailable\./);
  assert.match(stdout, /bob ok/);
  assert.match(stdout, /pop3-junk -ERR \[SYS\/TEMP\] Account is temporarily unavailable\./);
  const flooded = Number(/flood-sent (\d+)/.exec(stdout)![1]);
  assert.ok(flooded < 8 * 1024 * 1024, `the front stops reading a client during its proxy login (it took ${flooded} bytes)`);
  assert.ok(Date.now() - t0 < 45_000);
  assert.match(front.log, new RegExp(`proxy\\(hang@example\\.test\\): Login for 127\\.0\\.0\\.1:${portOf(hang)} timed out`));
  assert.match(front.log, new RegExp(`proxy\\(junk@example\\.test\\): 127\\.0\\.0\\.1:${portOf(garbage)}: backend sent a line over 8192 bytes`));
});

test('a backend killed: NO [UNAVAILABLE] for its users, mail deferred in the front\'s queue, delivered after it returns', async () => {
  await backA.kill();
  const login = async (user: string) => (await run('python3', ['-c', `
import imaplib
m = imaplib.IMAP4("127.0.0.1", ${front.ports.imap})
try: m.login("${user}@example.test", "${USERS[user as keyof typeof USERS]}"); print("ok"); m.logout()
except imaplib.IMAP4.error as e: print("err", e)
`], { timeout: 30_000 })).stdout;
  assert.match(await login('alice'), /err .*\[UNAVAILABLE\] Account is temporarily unavailable\./);
  assert.match(await login('bob'), /^ok/, 'the other backend\'s users are served');
  assert.match(front.log, new RegExp(`proxy\\(alice@example\\.test\\): connect\\(127\\.0\\.0\\.1, ${backA.ports.imap}\\) failed`));
  const before = messages(backA, 'alice@example.test').length;
  await smtpSend('alice@example.test', 'while down');
  await front.waitLog(/to=<alice@example\.test>, relay=.*status=deferred/);
  const q = (await front.cli('queue'));
  assert.match(q.stdout, /alice@example\.test/, 'the message waits in the front\'s queue');
  await PosternSystem.start(backA);
  assert.equal((await front.cli('queue', 'flush')).status, 0);
  await waitFor('the deferred mail on backend A', () => messages(backA, 'alice@example.test').length === before + 1);
  assert.ok(messages(backA, 'alice@example.test').some((m) => /Subject: while down/.test(m)));
  assert.match(await login('alice'), /^ok/);
});

test('TLS to the backend: ssl=any-cert and starttls=any-cert work; starttls=yes refuses a certificate it cannot verify', async () => {
  const { stdout } = await run('python3', ['-c', `
import imaplib, poplib
def imap(user):
    m = imaplib.IMAP4("127.0.0.1", ${front.ports.imap})
    try:
        m.login(user, "alice-pw"); typ, d = m.select("INBOX"); m.logout(); return "ok %s" % d[0].decode()
    except imaplib.IMAP4.error as e: return "err %s" % e
def pop(user):
    p = poplib.POP3("127.0.0.1", ${front.ports.pop3}); p.user(user)
    try: p.pass_("alice-pw"); n = p.stat()[0]; p.quit(); return "ok %d" % n
    except poplib.error_proto as e: return "err %s" % e.args[0].decode()
for u in ("alicessl", "alicestarttls", "aliceverify"):
    print(u, "imap", imap(u + "@example.test"))
    print(u, "pop3", pop(u + "@example.test"))
`], { timeout: 60_000 });
  assert.match(stdout, /alicessl imap ok \d+/);
  assert.match(stdout, /alicessl pop3 ok \d+/);
  assert.match(stdout, /alicestarttls imap ok \d+/);
  assert.match(stdout, /alicestarttls pop3 ok \d+/);
  assert.match(stdout, /aliceverify imap err .*\[UNAVAILABLE\] Account is temporarily unavailable\./);
  assert.match(stdout, /aliceverify pop3 err -ERR \[SYS\/TEMP\] Account is temporarily unavailable\./);
  assert.match(front.log, new RegExp(`proxy\\(aliceverify@example\\.test\\): 127\\.0\\.0\\.1:${backA.ports.imap}: TLS handshake with 127\\.0\\.0\\.1:${backA.ports.imap} failed`));
  assert.match(backA.log, /imap-login: Login: user=<alice@example\.test>, method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.1, TLS/);
});

test('proxy_maybe to the front itself logs in locally; commands pipelined after LOGIN reach the backend', async () => {
  const local = await scriptedChat(front.ports.imap, '127.0.0.1', ['a LOGIN local@example.test local-pw', 'b LOGOUT'], /^[ab] /);
  assert.match(local, /a OK \[CAPABILITY [^\]]+\] Logged in/);
  assert.match(front.log, /imap-login: Login: user=<local@example\.test>/);
  assert.doesNotMatch(front.log, /proxy\(local@example\.test\)/);
  const piped = await new Promise<string>((resolve) => {
    const s = connect({ host: '127.0.0.1', port: front.ports.imap });
    let buf = '';
    s.once('data', () => s.write('a LOGIN bob@example.test bob-pw\r\nb SELECT INBOX\r\nc LOGOUT\r\n'));
    s.on('data', (d) => { buf += d; });
    s.on('error', () => {});
    const t = setTimeout(() => s.destroy(), 20_000);
    s.on('close', () => { clearTimeout(t); resolve(buf); });
  });
  assert.match(piped, /a OK \[CAPABILITY[^\]]*\] Logged in\r\n/);
  assert.match(piped, /\* \d+ EXISTS\r\n/);
  assert.match(piped, /b OK \[READ-WRITE\] Select completed/);
  assert.match(piped, /c OK Logout completed/);
});
