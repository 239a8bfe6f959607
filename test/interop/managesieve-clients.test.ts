/**
 * ManageSieve with real clients: Debian's `sieve-connect` (STARTTLS verified against the test CA,
 * SASL PLAIN) uploads, lists, activates and downloads a script; a Python ManageSieve exchange
 * (socket + ssl, written here) drives every command and every response code of RFC 5804 with
 * Pigeonhole's texts, and the files land where Pigeonhole keeps them (~/sieve/NAME.sieve,
 * ~/.dovecot.sieve -> sieve/NAME.sieve).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { DovecotFixture } from '../harness/dovecot-fixture.ts';
import { TestCa } from '../harness/test-ca.ts';
import { createManageSieve } from '../../src/managesieve/managesieve.ts';
import { managesieveSettings } from '../../src/managesieve/managesieve-settings.ts';
import { startServerTls } from '../../src/lib-tls/tls-server.ts';
import { logger, setLogSink } from '../../src/util/msg.ts';
import { MANAGESIEVE_PY_READER } from '../harness/managesieve-py.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); });

let fx: DovecotFixture;
let port = 0;
let caFile = '';
const HOST = '127.0.0.2'; // not the server's own address: plaintext needs TLS first

before(async () => {
  fx = new DovecotFixture('postern-ms-clients-');
  mkdirSync(join(fx.dir, 'ca'));
  const ca = TestCa.create(join(fx.dir, 'ca'));
  caFile = ca.certFile;
  const leaf = ca.issue('sieve', ['localhost']);
  const dc = fx.configure({
    users: [{ user: 'alice@x.test', pass: 'secret' }, { user: 'badloc@x.test', pass: 'secret', extra: 'userdb_sieve=file:relative/sieve' }],
    settings: 'auth_failure_delay = 0\ndisable_plaintext_auth = yes\nauth_mechanisms = plain login',
    conf: `plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
  sieve_quota_max_scripts = 3
  sieve_quota_max_storage = 500
  sieve_max_script_size = 1000
}
`,
  });
  const ctx = createSecureContext({ cert: readFileSync(leaf.certFile), key: readFileSync(leaf.keyFile) });
  const ms = createManageSieve({ directory: await fx.directory(), settings: managesieveSettings(dc), log: logger('managesieve') });
  port = await fx.listen((s) => { void ms.handle(s, { startTls: (x) => startServerTls(x, ctx, 10_000) }); }, HOST);
});
after(async () => { await fx.stop(); });

function run(cmd: string, args: string[], o: { stdin?: string; fd3?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d) => { stdout += d; });
    p.stderr!.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('error', reject);
    p.on('close', (code) => { clearTimeout(t); resolve({ code: code ?? -1, stdout, stderr }); });
    const fd3 = p.stdio[3] as import('node:stream').Writable;
    fd3.on('error', () => {});
    fd3.end(o.fd3 ?? '');
    p.stdin!.end(o.stdin ?? '');
  });
}

const home = () => join(fx.dir, 'mail', 'x.test', 'alice');

test('sieve-connect uploads, lists, activates and downloads a script over STARTTLS', async (t) => {
  if (!existsSync('/usr/bin/sieve-connect')) { t.skip('Debian package sieve-connect is not installed'); return; }
  const common = ['--server', HOST, '--port', String(port), '--user', 'alice@x.test', '--passwordfd', '3', '--tlscafile', caFile, '--tlshostname', 'localhost'];
  const script = 'require ["fileinto"];\r\nif header :contains "subject" "[list]" {\r\n  fileinto "Lists";\r\n}\r\n';
  const local = join(fx.dir, 'filter.sieve');
  writeFileSync(local, script);
  const up = await run('sieve-connect', [...common, '--upload', '--localsieve', local, '--remotesieve', 'lists'], { fd3: 'secret\n' });
  assert.equal(up.code, 0, up.stderr);
  const act = await run('sieve-connect', [...common, '--activate', '--remotesieve', 'lists'], { fd3: 'secret\n' });
  assert.equal(act.code, 0, act.stderr);
  const list = await run('sieve-connect', [...common, '--list'], { fd3: 'secret\n' });
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /"lists"\s+ACTIVE/);
  const back = join(fx.dir, 'back.sieve');
  const down = await run('sieve-connect', [...common, '--download', '--remotesieve', 'lists', '--localsieve', back], { fd3: 'secret\n' });
  assert.equal(down.code, 0, down.stderr);
  assert.equal(readFileSync(back, 'utf8'), script);
  // Pigeonhole's layout: the script file and the relative symlink.
  assert.equal(readFileSync(join(home(), 'sieve', 'lists.sieve'), 'utf8'), script);
  assert.equal(readlinkSync(join(home(), '.dovecot.sieve')), 'sieve/lists.sieve');
  // A script that does not compile is refused with sievec's report.
  writeFileSync(local, 'fileinto "x";\r\n');
  const bad = await run('sieve-connect', [...common, '--upload', '--localsieve', local, '--remotesieve', 'bad'], { fd3: 'secret\n' });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stdout + bad.stderr, /unknown command 'fileinto'/);
  assert.ok(!existsSync(join(home(), 'sieve', 'bad.sieve')));
  // Clean up for the next test.
  const deact = await run('sieve-connect', [...common, '--deactivate'], { fd3: 'secret\n' });
  assert.equal(deact.code, 0, deact.stderr);
  const del = await run('sieve-connect', [...common, '--delete', '--remotesieve', 'lists'], { fd3: 'secret\n' });
  assert.equal(del.code, 0, del.stderr);
});

/** The Python client: each step sends raw bytes and records the complete response. */
const PY = String.raw`
import json, socket, ssl, sys, base64, re
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=8)
${MANAGESIEVE_PY_READER}
steps = json.loads(sys.stdin.read())
log = [response()]
def main():
  global s, buf
  for st in steps:
    if st == '@starttls':
        s.sendall(b'STARTTLS\r\n'); log.append(response())
        ctx = ssl.create_default_context(cafile=ca)
        s = ctx.wrap_socket(s, server_hostname='localhost'); buf = b''
        log.append(response()); continue
    data = eval(st)  # a bytes expression built by the test
    s.sendall(data + b'\r\n')
    log.append(response())
try:
    main()
except Exception as e:
    log.append('CLIENT ERROR: %r' % e)
print(json.dumps(log))
`;

async function exchange(steps: string[]): Promise<string[]> {
  const r = await run('python3', ['-c', PY, HOST, String(port), caFile], { stdin: JSON.stringify(steps) });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

const PLAIN = (u: string, p: string) => `b'AUTHENTICATE "PLAIN" "${Buffer.from(`\0${u}\0${p}`).toString('base64')}"'`;

test('Python ManageSieve exchange: every command and response code, Pigeonhole texts', async () => {
  const caps = (sasl: string, tls: boolean) => `"IMPLEMENTATION" "Postern"\r\n"SIEVE" "fileinto reject envelope encoded-character vacation subaddress comparator-i;ascii-numeric relational regex imap4flags copy include variables body enotify environment mailbox date index ihave duplicate mime foreverypart extracttext"\r\n"NOTIFY" "mailto"\r\n"SASL" "${sasl}"\r\n${tls ? '"STARTTLS"\r\n' : ''}"VERSION" "1.0"\r\n`;
  const steps = [
    String.raw`b'AUTHENTICATE "PLAIN" "AGFsaWNlQHgudGVzdABzZWNyZXQ="'`,
    '@starttls',
    String.raw`b'CAPABILITY'`,
    PLAIN('alice@x.test', 'wrong'),
    String.raw`b'AUTHENTICATE "FOO"'`,
    PLAIN('alice@x.test', 'secret'),
    String.raw`b'CAPABILITY'`,
    String.raw`b'PUTSCRIPT "one" ' + lit(b'require "fileinto";\r\nfileinto "A";\r\n')`,
    String.raw`b'PUTSCRIPT "two" ' + lit(b'require "date"; if date :is "date" "foo" "x" {keep;}')`,
    String.raw`b'PUTSCRIPT "bad" ' + lit(b'foo bar;\r\n')`,
    String.raw`b'CHECKSCRIPT ' + lit(b'keep;\r\n')`,
    String.raw`b'CHECKSCRIPT "if true {"'`,
    String.raw`b'LISTSCRIPTS'`,
    String.raw`b'SETACTIVE "one"'`,
    String.raw`b'SETACTIVE "one"'`,
    String.raw`b'SETACTIVE "nope"'`,
    String.raw`b'LISTSCRIPTS'`,
    String.raw`b'GETSCRIPT "one"'`,
    String.raw`b'DELETESCRIPT "one"'`,
    String.raw`b'DELETESCRIPT "nope"'`,
    String.raw`b'RENAMESCRIPT "two" "one"'`,
    String.raw`b'RENAMESCRIPT "one" "uno"'`,
    String.raw`b'PUTSCRIPT "three" "keep;"'`,
    String.raw`b'HAVESPACE "four" 10'`,
    String.raw`b'HAVESPACE "three" 480'`,
    String.raw`b'HAVESPACE "three" 5000'`,
    String.raw`b'HAVESPACE "three" 10'`,
    String.raw`b'DELETESCRIPT "three"'`,
    String.raw`b'PUTSCRIPT "../etc" "keep;"'`,
    String.raw`b'GETSCRIPT "a/b"'`,
    String.raw`b'PUTSCRIPT ' + lit(b'x\x00y') + b' "keep;"'`,
    String.raw`b'NOOP "tag\\"1"'`,
    String.raw`b'FROB'`,
    String.raw`b'GETSCRIPT'`,
    String.raw`b'SETACTIVE ""'`,
    String.raw`b'UNAUTHENTICATE'`,
    String.raw`b'LISTSCRIPTS'`,
    PLAIN('badloc@x.test', 'secret'),
    String.raw`b'LOGOUT'`,
  ];
  const log = await exchange(steps);
  const want = [
    caps('', true) + 'OK "Postern ready."\r\n',
    'NO (ENCRYPT-NEEDED) "Plaintext authentication disallowed on non-secure (SSL/TLS) connections."\r\n',
    'OK "Begin TLS negotiation now."\r\n',
    caps('PLAIN LOGIN', false) + 'OK "TLS negotiation successful."\r\n',
    caps('PLAIN LOGIN', false) + 'OK "Capability completed."\r\n',
    'NO "Authentication failed."\r\n',
    'NO "Unsupported authentication mechanism."\r\n',
    'OK "Logged in."\r\n',
    '"IMPLEMENTATION" "Postern"\r\n"SIEVE" "fileinto reject envelope encoded-character vacation subaddress comparator-i;ascii-numeric relational regex imap4flags copy include variables body enotify environment mailbox date index ihave duplicate mime foreverypart extracttext"\r\n"MAXREDIRECTS" "4"\r\n"NOTIFY" "mailto"\r\n"UNAUTHENTICATE"\r\n"VERSION" "1.0"\r\nOK "Capability completed."\r\n',
    'OK "PUTSCRIPT completed."\r\n',
    'OK (WARNINGS) {63}\r\ntwo: line 1: warning: specified date part `foo\' is not known.\r\n\r\n',
    "NO {117}\r\nbad: line 1: error: unknown command 'foo' (only reported once at first occurrence).\r\nbad: error: validation failed.\r\n\r\n",
    'OK "Script checked successfully."\r\n',
    "NO {97}\r\nline 1: error: expected end of compound block '}', but found end of file.\r\nerror: parse failed.\r\n\r\n",
    null, // LISTSCRIPTS (readdir order): checked below
    'OK "Setactive completed."\r\n',
    'OK "Script is already active."\r\n',
    "NO (NONEXISTENT) \"Sieve script `nope' not found\"\r\n",
    null,
    '{36}\r\nrequire "fileinto";\r\nfileinto "A";\r\n\r\nOK "Getscript completed."\r\n',
    'NO (ACTIVE) "Cannot delete the active Sieve script."\r\n',
    "NO (NONEXISTENT) \"Sieve script `nope' not found\"\r\n",
    'NO (ALREADYEXISTS) "A sieve script with that name already exists."\r\n',
    'OK "Renamescript completed."\r\n',
    'OK "PUTSCRIPT completed."\r\n',
    'NO (QUOTA/MAXSCRIPTS) "Script count quota exceeded (max 3 scripts)."\r\n',
    'NO (QUOTA/MAXSTORAGE) "Script storage quota exceeded (max 500 bytes)."\r\n',
    'NO (QUOTA/MAXSIZE) "Script is too large (max 1000 bytes)."\r\n',
    'OK "Putscript would succeed."\r\n',
    'OK "Deletescript completed."\r\n',
    "NO \"Invalid Sieve script name `../etc'.\"\r\n",
    "NO \"Invalid script name `a/b'.\"\r\n",
    "NO \"Invalid Sieve script name `x?y'.\"\r\n",
    'OK (TAG "tag\\"1") "Done"\r\n',
    'NO "Error in MANAGESIEVE command FROB: Unknown command."\r\n',
    'NO "Error in MANAGESIEVE command GETSCRIPT: Missing arguments."\r\n',
    'OK "Active script is now deactivated."\r\n',
    'OK "Unauthenticate completed."\r\n',
    'NO "Error in MANAGESIEVE command received by server."\r\n',
    'NO (TRYLATER) "Failed to open Sieve storage."\r\n',
    'OK "Logout completed."\r\n',
  ];
  assert.equal(log.length, want.length, JSON.stringify(log, null, 1));
  for (let i = 0; i < want.length; i++) {
    if (want[i] === null) continue;
    assert.equal(log[i], want[i], `step ${i}: ${i > 0 ? steps[i - 1] : 'greeting'}`);
  }
  const names = (r: string) => r.split('\r\n').filter((l) => l.startsWith('"')).sort();
  assert.deepEqual(names(log[14]!), ['"one"', '"two"']);
  assert.deepEqual(names(log[18]!), ['"one" ACTIVE', '"two"']);
  // The files, as Pigeonhole lays them out; nothing escaped the script directory.
  assert.equal(readFileSync(join(home(), 'sieve', 'uno.sieve'), 'utf8'), 'require "fileinto";\r\nfileinto "A";\r\n');
  assert.ok(!existsSync(join(home(), '.dovecot.sieve')));
  assert.ok(!existsSync(join(home(), 'etc.sieve')) && !existsSync(join(fx.dir, 'mail', 'x.test', 'etc.sieve')));
  assert.ok(logs.some((l) => /managesieve-login: Login: user=<alice@x\.test>, method=PLAIN, .*secured/.test(l)), logs.join('\n'));
});

test('a renamed active script stays active; the link follows it', async () => {
  const log = await exchange(['@starttls', PLAIN('alice@x.test', 'secret'), String.raw`b'PUTSCRIPT "uno" "keep;"'`,
    String.raw`b'SETACTIVE "uno"'`, String.raw`b'RENAMESCRIPT "uno" "eins"'`, String.raw`b'LISTSCRIPTS'`, String.raw`b'LOGOUT'`]);
  assert.equal(log[4], 'OK "PUTSCRIPT completed."\r\n');
  assert.equal(log[5], 'OK "Setactive completed."\r\n');
  assert.equal(log[6], 'OK "Renamescript completed."\r\n');
  assert.match(log[7]!, /"eins" ACTIVE\r\n/);
  assert.equal(readlinkSync(join(home(), '.dovecot.sieve')), 'sieve/eins.sieve');
});

void execFile;
