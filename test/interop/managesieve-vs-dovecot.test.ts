/**
 * Postern's ManageSieve against real Dovecot 2.3 + Pigeonhole's managesieve (Debian
 * dovecot-managesieved), a private instance on loopback:
 *  - the same command sequence (login, every command, quota codes, bad names, argument errors,
 *    compile errors and warnings, a 4 GB literal) sent to both; replies compared line by line,
 *    with the differences Postern makes on purpose normalised: its IMPLEMENTATION string and
 *    greeting, and the UNAUTHENTICATE capability (RFC 5804 §2.14.1, which this Pigeonhole
 *    version does not implement);
 *  - STARTTLS (both servers with the same test certificate): the replies before and after the
 *    handshake, the capabilities sent again, a login over TLS;
 *  - SASL exchanges (LOGIN challenges, PLAIN without an initial response, a literal response,
 *    "*" aborting);
 *  - one script directory for both servers (the Dovecot user's home): a script uploaded and
 *    activated through Postern is listed ACTIVE and returned byte for byte by Dovecot's
 *    managesieve, and real Dovecot's LMTP with the sieve plugin runs it (fileinto); a script
 *    activated through Dovecot is listed ACTIVE by Postern.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { createSecureContext } from 'node:tls';
import { TestCa } from '../harness/test-ca.ts';
import { startServerTls } from '../../src/lib-tls/tls-server.ts';
import { RealDovecot, DOVECOT_MAIL_UID } from '../harness/real-dovecot.ts';
import { parseDovecotConf } from '../../src/global/dovecot-conf.ts';
import { openUserDirectory } from '../../src/lib-auth/user-directory-open.ts';
import type { UserDirectory } from '../../src/lib-auth/user-directory.ts';
import { createManageSieve } from '../../src/managesieve/managesieve.ts';
import { managesieveSettings } from '../../src/managesieve/managesieve-settings.ts';
import { logger, setLogSink } from '../../src/util/msg.ts';
import { MANAGESIEVE_PY_READER } from '../harness/managesieve-py.ts';

setLogSink(() => {});

const why = RealDovecot.unavailable() ?? (existsSync('/usr/lib/dovecot/managesieve') ? undefined : 'Debian package dovecot-managesieved is not installed');

const PLUGIN = `plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
  sieve_quota_max_scripts = 4
  sieve_quota_max_storage = 600
}
`;

let dc: RealDovecot | undefined;
let directory: UserDirectory | undefined;
let server: Server | undefined;
let posternPort = 0;
let caDir = '';

before(async () => {
  if (why) return;
  // Both servers offer STARTTLS with the same certificate (plaintext stays allowed, so the
  // rest of the session is compared in clear as well).
  caDir = mkdtempSync(join(tmpdir(), 'postern-ms-ca-'));
  const leaf = TestCa.create(caDir).issue('sieve', ['localhost']);
  dc = await RealDovecot.start({
    protocols: ['sieve', 'lmtp'],
    users: [{ user: 'a@x.test', pass: 'pw' }, { user: 'b@x.test', pass: 'pw' }],
    extraConf: `ssl = yes\nssl_cert = <${leaf.certFile}\nssl_key = <${leaf.keyFile}\n${PLUGIN}protocol lmtp {\n  mail_plugins = $mail_plugins sieve\n}\n`,
  });
  // Postern's own users file, uid 5000 as Dovecot's: a@x.test shares its home (one script
  // directory for both servers), b@x.test has a home of its own so the compared sessions do
  // not see each other's scripts.
  const users = join(dc.dir, 'postern-users');
  writeFileSync(users, `a@x.test:{PLAIN}pw:${DOVECOT_MAIL_UID}:${DOVECOT_MAIL_UID}::${dc.maildir('a@x.test')}::\n` +
    `b@x.test:{PLAIN}pw:${DOVECOT_MAIL_UID}:${DOVECOT_MAIL_UID}::${join(dc.dir, 'postern-home', 'b')}::\n`);
  const confText = `auth_failure_delay = 0\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n` +
    `passdb {\n  driver = passwd-file\n  args = scheme=PLAIN ${users}\n}\nuserdb {\n  driver = passwd-file\n  args = ${users}\n}\n${PLUGIN}`;
  const file = join(dc.dir, 'postern-dovecot.conf');
  writeFileSync(file, confText);
  const conf = parseDovecotConf(confText, file);
  directory = await openUserDirectory(conf);
  const ms = createManageSieve({ directory, settings: managesieveSettings(conf), log: logger('managesieve') });
  const tlsCtx = createSecureContext({ cert: readFileSync(leaf.certFile), key: readFileSync(leaf.keyFile) });
  server = createServer((s) => { void ms.handle(s, { startTls: (x) => startServerTls(x, tlsCtx, 10_000) }); });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  posternPort = (server.address() as { port: number }).port;
});

after(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await directory?.close();
  await dc?.stop();
  if (caDir) rmSync(caDir, { recursive: true, force: true });
});

/** A plain-socket Python client: sends each step, records each complete response. */
const PY = String.raw`
import json, socket, ssl, sys, re, base64
port = int(sys.argv[1])
s = socket.create_connection(('127.0.0.1', port), timeout=6)
${MANAGESIEVE_PY_READER}
log = [response()]
try:
    for st in json.loads(sys.stdin.read()):
        if st == '@open?':
            # Is the connection still open (nothing more comes, no EOF) after a refusal?
            s.settimeout(1.5)
            try:
                d = s.recv(100)
                log.append('EOF' if not d else 'DATA ' + d.decode('latin1'))
            except socket.timeout:
                log.append('OPEN')
            continue
        if st == '@starttls':
            s.sendall(b'STARTTLS\r\n'); log.append(response())
            ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s); buf = b''
            log.append(response())
            log.append(s.version())
            continue
        if st.startswith('1:'):
            # A SASL step: the answer is one line (a challenge, or the final reply).
            s.sendall(eval(st[2:]) + b'\r\n')
            while b'\r\n' not in buf: fill()
            line, buf = buf.split(b'\r\n', 1)
            log.append(line.decode('latin1'))
            continue
        s.sendall(eval(st) + b'\r\n')
        log.append(response())
except Exception as e:
    log.append('CLIENT ERROR: %r' % e)
print(json.dumps(log))
`;

function exchange(port: number, steps: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', ['-c', PY, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) { reject(new Error(`python3 exited ${code}: ${err}`)); return; }
      resolve(JSON.parse(out) as string[]);
    });
    p.stdin.end(JSON.stringify(steps));
  });
}

/** What Postern changes on purpose (see the header). */
function normalise(r: string): string {
  return r
    // Dovecot closes with unread input pending (the client sees a reset), Postern reads it first.
    .replace(/^CLIENT ERROR: ConnectionResetError.*$/, 'EOF')
    .replace(/^"IMPLEMENTATION" ".*"\r\n/m, '"IMPLEMENTATION" "*"\r\n')
    .replace(/^"UNAUTHENTICATE"\r\n/m, '')
    .replace(/^OK "(Postern|Dovecot \(Debian\)) ready\."\r\n/m, 'OK "* ready."\r\n')
    // LISTSCRIPTS lists in readdir order: compare the set.
    .replace(/^((?:"[^"\r\n]*"(?: ACTIVE)?\r\n)+)(OK "Listscripts completed\.")/m, (_m, lines: string, ok: string) =>
      lines.split('\r\n').filter(Boolean).sort().map((l) => l + '\r\n').join('') + ok);
}

const PLAIN = (u: string, p: string) => `b'AUTHENTICATE "PLAIN" "${Buffer.from(`\0${u}\0${p}`).toString('base64')}"'`;

test('the same ManageSieve session, replies compared with real Pigeonhole', { skip: why }, async () => {
  const steps = [
    `b'CAPABILITY'`,
    `b'NOOP'`,
    `b'NOOP "t1"'`,
    `b'LISTSCRIPTS'`,
    `b'AUTHENTICATE "FOO"'`,
    `b'AUTHENTICATE "PLAIN" "!!!"'`,
    PLAIN('b@x.test', 'pw'),
    `b'CAPABILITY'`,
    `b'LISTSCRIPTS'`,
    `b'PUTSCRIPT "s1" ' + lit(b'require "fileinto";\\r\\nfileinto "Filed";\\r\\n')`,
    `b'PUTSCRIPT "s2" "keep;"'`,
    `b'PUTSCRIPT "w" ' + lit(b'require "date"; if date :is "date" "foo" "x" {keep;}')`,
    `b'PUTSCRIPT "bad" ' + lit(b'foo bar;\\r\\n')`,
    `b'PUTSCRIPT "bad2" ' + lit(b'require "fileinto";\\r\\nif true {\\r\\n  fileinto 1;\\r\\n}\\r\\nbar;\\r\\n')`,
    `b'PUTSCRIPT "p" ' + lit(b'foo')`,
    `b'CHECKSCRIPT ' + lit(b'keep;\\r\\n')`,
    `b'CHECKSCRIPT "require \\\\"nope\\\\";"'`,
    `b'CHECKSCRIPT "if true {"'`,
    `b'CHECKSCRIPT "require \\\\"date\\\\"; if date :is \\\\"foo\\\\" \\\\"x\\\\" {keep;}"'`,
    `b'LISTSCRIPTS'`,
    `b'SETACTIVE "s1"'`,
    `b'SETACTIVE "s1"'`,
    `b'SETACTIVE "zz"'`,
    `b'LISTSCRIPTS'`,
    `b'GETSCRIPT "s1"'`,
    `b'GETSCRIPT "zz"'`,
    `b'DELETESCRIPT "s1"'`,
    `b'DELETESCRIPT "zz"'`,
    `b'RENAMESCRIPT "s2" "s1"'`,
    `b'RENAMESCRIPT "zz" "yy"'`,
    `b'RENAMESCRIPT "s1" "one"'`,
    `b'LISTSCRIPTS'`,
    `b'HAVESPACE "new" 10'`,
    `b'HAVESPACE "new" 5000'`,
    `b'HAVESPACE "new" 2000000'`,
    `b'HAVESPACE "new" abc'`,
    `b'HAVESPACE "new"'`,
    `b'HAVESPACE "a/b" 10'`,
    `b'HAVESPACE "new" 0'`,
    `b'HAVESPACE new 10'`,
    `b'RENAMESCRIPT "one" "one"'`,
    `b'RENAMESCRIPT "one" "a/b"'`,
    `b'PUTSCRIPT "empty" {0+}\\r\\n'`,
    `b'GETSCRIPT "empty"'`,
    `b'DELETESCRIPT "empty"'`,
    `b'PUTSCRIPT "n2" "keep;"'`,
    `b'PUTSCRIPT "n3" "keep;"'`,
    `b'HAVESPACE "n4" 1'`,
    `b'HAVESPACE "n3" 1'`,
    `b'DELETESCRIPT "n3"'`,
    `b'DELETESCRIPT "n2"'`,
    `b'PUTSCRIPT "../x" "keep;"'`,
    `b'PUTSCRIPT "a/b" ' + lit(b'keep;')`,
    `b'PUTSCRIPT "" "keep;"'`,
    `b'PUTSCRIPT "a\\x01b" "keep;"'`,
    `b'GETSCRIPT "../x"'`,
    `b'DELETESCRIPT "a/b"'`,
    `b'GETSCRIPT'`,
    `b'GETSCRIPT "a" "b"'`,
    `b'PUTSCRIPT "x"'`,
    `b'DELETESCRIPT'`,
    `b'SETACTIVE'`,
    `b'RENAMESCRIPT "x"'`,
    `b'NOOP "a" "b"'`,
    `b'NOOP "x\\\\"y"'`,
    `b'LISTSCRIPTS x'`,
    `b'STARTTLS'`,
    `b'AUTHENTICATE "PLAIN"'`,
    `b'FROB'`,
    `b'NOOP "' + b'x' * 70000 + b'"'`,
    `b'NOOP'`,
    `b'SETACTIVE ""'`,
    `b'SETACTIVE ""'`,
    `b'PUTSCRIPT "big" {4294967296+}'`,
    '@open?',
  ];
  const [d, p] = await Promise.all([exchange(dc!.ports.sieve!, steps), exchange(posternPort, steps)]);
  assert.equal(p.length, d.length, `Dovecot:\n${JSON.stringify(d, null, 1)}\nPostern:\n${JSON.stringify(p, null, 1)}`);
  const diffs: string[] = [];
  for (let i = 0; i < d.length; i++) {
    if (normalise(p[i]!) !== normalise(d[i]!)) diffs.push(`step ${i} ${i ? steps[i - 1]!.slice(0, 80) : 'greeting'}\n  dovecot: ${JSON.stringify(d[i])}\n  postern: ${JSON.stringify(p[i])}`);
  }
  assert.deepEqual(diffs, []);
  // Both kept the connection open after refusing the 4 GB literal.
  assert.equal(p.at(-1), 'OPEN');
});

test('pre-login limits: three bad commands, an over-long line, a huge AUTHENTICATE literal', { skip: why }, async () => {
  for (const steps of [
    [`b'LISTSCRIPTS'`, `b'GETSCRIPT "x"'`, `b'PUTSCRIPT'`, '@open?'],
    [`b'NOOP "' + b'x' * 70000 + b'"'`, '@open?'],
    [`b'AUTHENTICATE "PLAIN" {4294967296+}'`, '@open?'],
  ]) {
    const [d, p] = await Promise.all([exchange(dc!.ports.sieve!, steps), exchange(posternPort, steps)]);
    assert.deepEqual(p.slice(1).map(normalise), d.slice(1).map(normalise), steps.join(' '));
  }
});

test('STARTTLS: the same replies before and after the handshake, then a login over TLS', { skip: why }, async () => {
  const steps = ['@starttls', `b'CAPABILITY'`, `b'STARTTLS'`, PLAIN('b@x.test', 'pw'), `b'CAPABILITY'`, `b'LOGOUT'`];
  const [d, p] = await Promise.all([exchange(dc!.ports.sieve!, steps), exchange(posternPort, steps)]);
  assert.deepEqual(p.map(normalise), d.map(normalise));
  assert.match(p[0]!, /"STARTTLS"\r\n/);
  assert.equal(p[1], 'OK "Begin TLS negotiation now."\r\n');
  assert.match(p[2]!, /"SASL" "PLAIN LOGIN"\r\n"VERSION" "1\.0"\r\nOK "TLS negotiation successful\."\r\n$/);
  assert.match(p[3]!, /^TLSv1\.[23]$/);
});

test('SASL exchanges: LOGIN with challenges, PLAIN without an initial response, "*" aborts', { skip: why }, async () => {
  const b64 = (t: string) => Buffer.from(t).toString('base64');
  const steps = [
    `1:b'AUTHENTICATE "PLAIN"'`, `1:b'"*"'`,
    `1:b'AUTHENTICATE "LOGIN"'`, `1:b'"${b64('b@x.test')}"'`, `1:b'"${b64('pw')}"'`,
    `b'LOGOUT'`,
  ];
  const [d, p] = await Promise.all([exchange(dc!.ports.sieve!, steps), exchange(posternPort, steps)]);
  assert.deepEqual(p.slice(1), d.slice(1));
  assert.deepEqual(p.slice(1), ['""', 'NO "Authentication aborted by client."', '"VXNlcm5hbWU6"', '"UGFzc3dvcmQ6"', 'OK "Logged in."', 'OK "Logout completed."\r\n']);
  const lit = [`1:b'AUTHENTICATE "PLAIN"'`, `1:b'{${b64('\0b@x.test\0pw').length}+}\\r\\n${b64('\0b@x.test\0pw')}'`, `b'LOGOUT'`];
  const [d2, p2] = await Promise.all([exchange(dc!.ports.sieve!, lit), exchange(posternPort, lit)]);
  assert.deepEqual(p2.slice(1), d2.slice(1));
  assert.deepEqual(p2.slice(1), ['""', 'OK "Logged in."', 'OK "Logout completed."\r\n']);
});

test('one script directory: Postern uploads and activates, real Dovecot lists it, fetches it and runs it at LMTP delivery', { skip: why }, async () => {
  // (imap4flags rather than fileinto: with the Maildir at the home, as in this Dovecot's
  // configuration, Dovecot cannot create folders beside the .dovecot.sieve link.)
  const script = 'require ["imap4flags"];\r\nif header :contains "subject" "sort me" {\r\n  addflag "\\\\Flagged";\r\n}\r\n';
  const lit = JSON.stringify(script).slice(1, -1).replace(/'/g, "\\'");
  const p = await exchange(posternPort, [PLAIN('a@x.test', 'pw'), `b'PUTSCRIPT "sorter" ' + lit(b'${lit}')`, `b'SETACTIVE "sorter"'`, `b'LOGOUT'`]);
  assert.deepEqual(p.slice(1), ['OK "Logged in."\r\n', 'OK "PUTSCRIPT completed."\r\n', 'OK "Setactive completed."\r\n', 'OK "Logout completed."\r\n']);
  const d = await exchange(dc!.ports.sieve!, [PLAIN('a@x.test', 'pw'), `b'LISTSCRIPTS'`, `b'GETSCRIPT "sorter"'`, `b'LOGOUT'`]);
  assert.equal(d[2], '"sorter" ACTIVE\r\nOK "Listscripts completed."\r\n');
  assert.equal(d[3], `{${Buffer.byteLength(script)}}\r\n${script}\r\nOK "Getscript completed."\r\n`);
  // Real Dovecot LMTP + Pigeonhole runs the script Postern stored.
  const lmtp = await new Promise<number>((resolve, reject) => {
    const py = spawn('python3', ['-c', `
import smtplib, sys
c = smtplib.LMTP('127.0.0.1', int(sys.argv[1]))
c.ehlo('test')
c.sendmail('s@y.test', ['a@x.test'], b'From: s@y.test\\r\\nTo: a@x.test\\r\\nSubject: please sort me\\r\\n\\r\\nbody\\r\\n')
c.quit()
`, String(dc!.ports.lmtp)], { stdio: 'inherit' });
    py.on('error', reject);
    py.on('close', (c) => resolve(c ?? -1));
  });
  assert.equal(lmtp, 0, dc!.log().slice(-3000));
  const cur = join(dc!.maildir('a@x.test'), 'cur');
  const flagged = () => (existsSync(cur) ? readdirSync(cur).filter((f) => /:2,[A-Z]*F/.test(f)) : []);
  const deadline = Date.now() + 5000;
  while (flagged().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(flagged().length, 1, `message flagged by Dovecot's sieve\n${dc!.log().slice(-2000)}`);
  // The files belong to the mail user, as Dovecot's managesieve would leave them.
  const { statSync } = await import('node:fs');
  assert.equal(statSync(join(dc!.maildir('a@x.test'), 'sieve', 'sorter.sieve')).uid, DOVECOT_MAIL_UID);
});

test('one script directory: Dovecot activates, Postern lists it ACTIVE and switches it', { skip: why }, async () => {
  const d = await exchange(dc!.ports.sieve!, [PLAIN('a@x.test', 'pw'), `b'PUTSCRIPT "fromdovecot" "keep;"'`, `b'SETACTIVE "fromdovecot"'`, `b'LOGOUT'`]);
  assert.equal(d[3], 'OK "Setactive completed."\r\n');
  const p = await exchange(posternPort, [PLAIN('a@x.test', 'pw'), `b'LISTSCRIPTS'`, `b'SETACTIVE "sorter"'`, `b'LOGOUT'`]);
  assert.match(p[2]!, /^"fromdovecot" ACTIVE\r\n|\r\n"fromdovecot" ACTIVE\r\n/);
  const d2 = await exchange(dc!.ports.sieve!, [PLAIN('a@x.test', 'pw'), `b'LISTSCRIPTS'`, `b'LOGOUT'`]);
  assert.match(d2[2]!, /"sorter" ACTIVE\r\n/);
});
