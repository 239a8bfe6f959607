/**
 * SASL OAUTHBEARER (RFC 7628) and XOAUTH2 against a token introspection endpoint (RFC 7662), as
 * `passdb { driver = oauth2 }` configures it: the same dovecot-oauth2.conf.ext and the same
 * loopback endpoint (node:http, in this test) for real Dovecot 2.3 and Postern; the IMAP
 * exchanges (error challenge, dummy response, tagged reply) must match line for line for valid, inactive,
 * wrong-user, out-of-scope and malformed tokens and for a broken endpoint. Real clients:
 * imapflow (accessToken), Python imaplib.authenticate, Python smtplib against Postern's smtpd,
 * Python poplib against pop3d. Hostile: a hanging endpoint (timeout; other logins go on), a huge token,
 * garbage answers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ImapFlow } from 'imapflow';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { startFixture, stripTiming, type Fixture } from '../harness/imapd-testkit.ts';
import { LineChat } from '../harness/line-chat.ts';
import { startSmtpd, type TestSmtpd } from '../harness/anvil-testkit.ts';
import { directoryAuth } from '../../src/smtpd/smtpd-sasl.ts';
import { PosternMailAccess } from '../harness/postern-mail-access.ts';

const ALICE = 'alice@example.test';
const BOB = 'bob@example.test';
const HOUR = Math.floor(Date.now() / 1000) + 3600;

const answers: Record<string, { status?: number; body: string } | 'hang'> = {
  'tok-alice': { body: JSON.stringify({ active: true, email: ALICE, scope: 'openid mail', exp: HOUR, token_type: 'Bearer' }) },
  'tok-bob': { body: JSON.stringify({ active: true, email: BOB, scope: 'mail', exp: HOUR }) },
  'tok-ALICE-case': { body: JSON.stringify({ active: true, email: 'Alice@Example.TEST', scope: 'mail' }) },
  'tok-inactive': { body: JSON.stringify({ active: false }) },
  'tok-inactive-named': { body: JSON.stringify({ active: false, email: ALICE, scope: 'mail' }) },
  'tok-noscope': { body: JSON.stringify({ active: true, email: ALICE, scope: 'openid profile' }) },
  'tok-garbage': { body: '<html>this is not JSON' },
  'tok-array': { body: '[1,2,3]' },
  'tok-500': { status: 500, body: 'oops' },
  'tok-401': { status: 401, body: JSON.stringify({ error: 'invalid_token' }) },
  'tok-error': { body: JSON.stringify({ error: 'invalid_request', error_description: 'bad' }) },
  'tok-hang': 'hang',
};
const seen: string[] = [];
const hung: ServerResponse[] = [];

let endpoint: Server;
let dir: string;
let dc: RealDovecot | undefined;
let px: Fixture;
let confFile: string;

const why = RealDovecot.unavailable();

function oauthConf(port: number): string {
  return `# the site's token introspection endpoint (RFC 7662)
introspection_url = http://127.0.0.1:${port}/introspect
introspection_mode = post
username_attribute = email
active_attribute = active
active_value = true
scope = mail
timeout_msecs = 1500
`;
}

function extraConf(file: string): string {
  return `auth_mechanisms = plain login oauthbearer xoauth2
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer plain login
  args = ${file}
}
`;
}

before(async () => {
  endpoint = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const q = new URL(req.url ?? '/', 'http://x');
      const auth = /^Bearer (.*)$/.exec(req.headers.authorization ?? '')?.[1];
      const token = req.method === 'GET' ? (auth ?? q.searchParams.get('access_token') ?? q.searchParams.get('token') ?? '') : decodeURIComponent(new URLSearchParams(body).get('token') ?? '');
      if (q.pathname === '/tokeninfo' && !answers[token]) { res.writeHead(401); res.end('{"error":"invalid_token"}'); return; }
      seen.push(`${req.method} ${req.url} ${req.headers['content-type'] ?? ''} ${token.slice(0, 40)}`);
      const a = answers[token] ?? { body: JSON.stringify({ active: false }) };
      if (a === 'hang') { hung.push(res); return; }
      res.writeHead(a.status ?? 200, { 'content-type': 'application/json' });
      res.end(a.body);
    });
  });
  await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r));
  const port = (endpoint.address() as AddressInfo).port;
  dir = mkdtempSync(join(tmpdir(), 'postern-oauth2-'));
  chmodSync(dir, 0o755);
  confFile = join(dir, 'dovecot-oauth2.conf.ext');
  writeFileSync(confFile, oauthConf(port), { mode: 0o644 });
  px = await startFixture({ users: [[ALICE, 'secret'], [BOB, 'secret']], conf: extraConf(confFile) });
  if (!why) {
    dc = await RealDovecot.start({ protocols: ['imap'], users: [{ user: ALICE, pass: 'secret' }, { user: BOB, pass: 'secret' }], extraConf: extraConf(confFile) });
  }
});

after(async () => {
  for (const r of hung) r.destroy();
  endpoint.closeAllConnections();
  endpoint.close();
  await px?.stop();
  await dc?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const xoauth2 = (user: string, token: string) => b64(`user=${user}\x01auth=Bearer ${token}\x01\x01`);
const bearer = (user: string, token: string) => b64(`n,a=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},\x01host=127.0.0.1\x01port=143\x01auth=Bearer ${token}\x01\x01`);

/** One AUTHENTICATE exchange: the lines the server sent, the tagged reply normalised (capabilities dropped). */
let nextAddr = 0;
/** A client address of its own for each connection: both servers' per-IP auth penalty stays out of the way. */
async function connectFrom(port: number): Promise<LineChat> {
  nextAddr++;
  const c = await LineChat.open(port, { protocol: 'imap', localAddress: `127.0.${(nextAddr >> 8) + 10}.${(nextAddr & 255) || 1}` });
  await c.waitFor(/^\* (OK|BYE|PREAUTH).*\r\n/m);
  return c;
}

/** Dovecot's reply to an internal failure ends with " [host:time]". */
const stripHostTime = (l: string) => l.replace(/ \[[^\]]*:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]$/, '');

async function exchange(port: number, mech: string, ir: string | undefined, dummy = 'AQ=='): Promise<string[]> {
  const c = await connectFrom(port);
  const out: string[] = [];
  try {
    c.send(`a AUTHENTICATE ${mech}${ir !== undefined ? ` ${ir}` : ''}\r\n`);
    for (let i = 0; i < 4; i++) {
      const l = await c.line(15_000);
      if (l.startsWith('+')) {
        out.push(l);
        c.send(`${dummy}\r\n`);
        continue;
      }
      if (l.startsWith('* ')) continue;
      out.push(stripHostTime(stripTiming(l)).replace(/^a OK \[CAPABILITY [^\]]*\] Logged in$/, 'a OK Logged in'));
      break;
    }
  } finally {
    c.close();
  }
  return out;
}

async function both(mech: string, ir: string | undefined): Promise<{ postern: string[]; dovecot: string[] | undefined }> {
  const postern = await exchange(px.port, mech, ir);
  const dovecot = dc ? await exchange(dc.ports.imap!, mech, ir) : undefined;
  return { postern, dovecot };
}

const TEMP = 'a NO [UNAVAILABLE] Temporary authentication failure.';
const FAILED = 'a NO [AUTHENTICATIONFAILED] Authentication failed.';
const CH_BEARER = `+ ${b64('{"status":"invalid_token"}')}`;
const CH_X = `+ ${b64('{"status":"401","schemes":"bearer","scope":"mail"}')}`;

test('capabilities offer AUTH=OAUTHBEARER and AUTH=XOAUTH2 when auth_mechanisms lists them', async () => {
  const c = await connectFrom(px.port);
  const caps = await c.cmd('c CAPABILITY');
  c.close();
  assert.match(caps, /AUTH=PLAIN AUTH=LOGIN AUTH=OAUTHBEARER AUTH=XOAUTH2/);
});

const CASES: [string, string, string, string[]][] = [
  ['valid XOAUTH2', 'XOAUTH2', xoauth2(ALICE, 'tok-alice'), ['a OK Logged in']],
  ['valid OAUTHBEARER', 'OAUTHBEARER', bearer(ALICE, 'tok-alice'), ['a OK Logged in']],
  ['user name case differs from the token (username_format %Lu)', 'XOAUTH2', xoauth2('ALICE@example.test', 'tok-ALICE-case'), ['a OK Logged in']],
  ['inactive (expired) token, XOAUTH2', 'XOAUTH2', xoauth2(ALICE, 'tok-inactive-named'), [CH_X, FAILED]],
  ['inactive (expired) token, OAUTHBEARER', 'OAUTHBEARER', bearer(ALICE, 'tok-inactive-named'), [CH_BEARER, FAILED]],
  ['another user\'s token', 'OAUTHBEARER', bearer(ALICE, 'tok-bob'), [CH_BEARER, FAILED]],
  ['token without the mail scope', 'XOAUTH2', xoauth2(ALICE, 'tok-noscope'), [CH_X, FAILED]],
  ['malformed: no auth=', 'XOAUTH2', b64(`user=${ALICE}\x01\x01`), [FAILED]],
  ['malformed: not a bearer token', 'OAUTHBEARER', b64(`n,a=${ALICE},\x01auth=Bearer bad token!\x01\x01`), [CH_BEARER, FAILED]],
  ['malformed: channel binding asked', 'OAUTHBEARER', b64(`p=tls-unique,a=${ALICE},\x01auth=Bearer tok-alice\x01\x01`), [FAILED]],
  ['malformed: no authzid', 'OAUTHBEARER', b64('n,,\x01auth=Bearer tok-alice\x01\x01'), [FAILED]],
  ['unknown token ({"active":false} without a name)', 'XOAUTH2', xoauth2(ALICE, 'tok-inactive'), [CH_X, FAILED]],
  ['endpoint answers garbage', 'XOAUTH2', xoauth2(ALICE, 'tok-garbage'), [TEMP]],
  ['endpoint answers HTTP 500', 'OAUTHBEARER', bearer(ALICE, 'tok-500'), [TEMP]],
  ['endpoint answers HTTP 401', 'OAUTHBEARER', bearer(ALICE, 'tok-401'), [TEMP]],
  ['endpoint answers an error object', 'XOAUTH2', xoauth2(ALICE, 'tok-error'), [TEMP]],
  ['endpoint answers a JSON array', 'XOAUTH2', xoauth2(ALICE, 'tok-array'), [TEMP]],
];

for (const [name, mech, ir, expected] of CASES) {
  test(`IMAP AUTHENTICATE: ${name}`, async () => {
    const r = await both(mech, ir);
    assert.deepEqual(r.postern, expected);
    if (r.dovecot) assert.deepEqual(r.postern, r.dovecot, `Postern ${JSON.stringify(r.postern)} vs Dovecot ${JSON.stringify(r.dovecot)}`);
  });
}

test('IMAP AUTHENTICATE without an initial response: empty challenge first, as Dovecot', async () => {
  for (const port of [px.port, ...(dc ? [dc.ports.imap!] : [])]) {
    const c = await connectFrom(port);
    c.send('a AUTHENTICATE XOAUTH2\r\n');
    assert.equal(await c.line(), '+ ');
    c.send(`${xoauth2(ALICE, 'tok-alice')}\r\n`);
    assert.match(await c.line(), /^a OK \[CAPABILITY .*\] Logged in$/);
    c.close();
  }
});

test('IMAP LOGIN with the token as the password works through the oauth2 passdb (as Dovecot)', async () => {
  for (const port of [px.port, ...(dc ? [dc.ports.imap!] : [])]) {
    const c = await connectFrom(port);
    assert.match(await c.cmd(`a LOGIN ${ALICE} tok-alice`), /^a OK \[CAPABILITY .*\] Logged in/);
    c.close();
  }
});

test('the endpoint is asked with POST token=... (introspection_mode = post)', () => {
  assert.ok(seen.some((l) => /^POST \/introspect application\/x-www-form-urlencoded tok-alice$/.test(l)), seen.join('\n'));
});

test('hostile: an endpoint that hangs times out (timeout_msecs) with a temporary failure; other logins go on meanwhile', async () => {
  const t0 = Date.now();
  const pending = exchange(px.port, 'XOAUTH2', xoauth2(ALICE, 'tok-hang'));
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(await exchange(px.port, 'OAUTHBEARER', bearer(BOB, 'tok-bob')), ['a OK Logged in']);
  const r = await pending;
  assert.ok(Date.now() - t0 >= 1400, 'answered before the timeout');
  assert.deepEqual(r, [TEMP]);
  if (dc) assert.deepEqual(await exchange(dc.ports.imap!, 'XOAUTH2', xoauth2(ALICE, 'tok-hang')), r);
});

test('hostile: a 100 kB token never reaches the endpoint; the server keeps serving', async () => {
  const huge = xoauth2(ALICE, 'A'.repeat(100_000));
  const before = seen.length;
  const c = await connectFrom(px.port);
  c.send('a AUTHENTICATE XOAUTH2\r\n');
  assert.equal(await c.line(), '+ ');
  c.send(`${huge}\r\n`);
  const rest = await c.waitFor(/\r\n|$/, 5000).catch(() => '');
  assert.doesNotMatch(rest, /OK/);
  c.close();
  assert.equal(seen.length, before);
  assert.deepEqual(await exchange(px.port, 'XOAUTH2', xoauth2(ALICE, 'tok-alice')), ['a OK Logged in']);
});

test('imapflow logs in with auth.accessToken', async () => {
  const client = new ImapFlow({ host: '127.0.0.1', port: px.port, secure: false, auth: { user: ALICE, accessToken: 'tok-alice' }, logger: false });
  await client.connect();
  const st = await client.status('INBOX', { messages: true });
  assert.equal(st && typeof st.messages, 'number');
  await client.logout();
  const bad = new ImapFlow({ host: '127.0.0.1', port: px.port, secure: false, auth: { user: ALICE, accessToken: 'tok-bob' }, logger: false });
  bad.on('error', () => {});
  await assert.rejects(bad.connect());
  bad.close();
});

const PY = spawnSync('python3', ['-c', 'import imaplib, smtplib, poplib'], { stdio: 'ignore' }).status === 0 ? 'python3' : undefined;

function python(script: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.py`);
  writeFileSync(file, script);
  const p = spawn(PY!, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  return new Promise((r) => p.once('exit', (code) => r({ code, out, err })));
}

test('Python imaplib.authenticate with XOAUTH2 and OAUTHBEARER', { skip: PY ? false : 'python3 is not installed' }, async () => {
  const r = await python(`
import imaplib, sys
port = int(sys.argv[1])
for mech, msg in (('XOAUTH2', 'user=${ALICE}\\x01auth=Bearer tok-alice\\x01\\x01'), ('OAUTHBEARER', 'n,a=${ALICE},\\x01auth=Bearer tok-alice\\x01\\x01')):
    m = imaplib.IMAP4('127.0.0.1', port)
    typ, data = m.authenticate(mech, lambda ch: msg.encode())
    print(mech, typ)
    m.logout()
m = imaplib.IMAP4('127.0.0.1', port)
try:
    m.authenticate('XOAUTH2', lambda ch: b'user=${ALICE}\\x01auth=Bearer tok-bob\\x01\\x01' if ch == b'' else b'\\x01')
    print('bad OK')
except imaplib.IMAP4.error as e:
    print('bad', e)
`, [String(px.port)]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^XOAUTH2 OK$/m);
  assert.match(r.out, /^OAUTHBEARER OK$/m);
  assert.match(r.out, /^bad .*Authentication failed\./m);
});

test('smtpd: AUTH XOAUTH2 / OAUTHBEARER with Python smtplib; failure is 334 challenge then 535', { skip: PY ? false : 'python3 is not installed' }, async () => {
  let s: TestSmtpd | undefined;
  try {
    s = await startSmtpd('', { auth: () => directoryAuth(px.imapd.shared.directory, ['PLAIN', 'LOGIN', 'OAUTHBEARER', 'XOAUTH2']) });
    const r = await python(`
import smtplib, sys, base64
port = int(sys.argv[1])
s = smtplib.SMTP('127.0.0.1', port)
s.ehlo('client.example.test')
print('ext', s.esmtp_features.get('auth'))
code, msg = s.auth('XOAUTH2', lambda ch=None: 'user=${ALICE}\\x01auth=Bearer tok-alice\\x01\\x01')
print('xoauth2', code)
s.quit()
s = smtplib.SMTP('127.0.0.1', port)
s.ehlo('client.example.test')
print('bearer', s.docmd('AUTH', 'OAUTHBEARER ' + base64.b64encode(b'n,a=${ALICE},\\x01auth=Bearer tok-alice\\x01\\x01').decode()))
s.quit()
s = smtplib.SMTP('127.0.0.1', port)
s.ehlo('client.example.test')
code, msg = s.docmd('AUTH', 'OAUTHBEARER ' + base64.b64encode(b'n,a=${ALICE},\\x01auth=Bearer tok-bob\\x01\\x01').decode())
print('bad1', code, base64.b64decode(msg).decode())
print('bad2', s.docmd('AQ=='))
s.quit()
`, [String(s.port)]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^ext +PLAIN LOGIN OAUTHBEARER XOAUTH2$/m);
    assert.match(r.out, /^xoauth2 235$/m);
    assert.match(r.out, /^bearer \(235, b'2\.7\.0 Authentication successful'\)$/m);
    assert.match(r.out, /^bad1 334 \{"status":"invalid_token"\}$/m);
    assert.match(r.out, /^bad2 \(535, b'5\.7\.8 Error: authentication failed: authentication failure'\)$/m);
  } finally {
    s?.close();
  }
});

test('pop3d: Python poplib AUTH XOAUTH2 / OAUTHBEARER; a refused token gets the error challenge, then -ERR', { skip: PY ? false : 'python3 is not installed' }, async () => {
  const pm = await PosternMailAccess.start({ users: [{ user: ALICE, pass: 'secret' }], conf: `auth_failure_delay = 0\n${extraConf(confFile)}` });
  try {
    const r = await python(`
import poplib, sys, base64
port = int(sys.argv[1])
p = poplib.POP3('127.0.0.1', port)
print('capa', sorted(p.capa().get('SASL', [])))
print('x', p._shortcmd('AUTH XOAUTH2 ' + base64.b64encode(b'user=${ALICE}\x01auth=Bearer tok-alice\x01\x01').decode()))
print('stat', p.stat()[0])
p.quit()
p = poplib.POP3('127.0.0.1', port)
print('b', p._shortcmd('AUTH OAUTHBEARER ' + base64.b64encode(b'n,a=${ALICE},\x01auth=Bearer tok-alice\x01\x01').decode()))
p.quit()
p = poplib.POP3('127.0.0.1', port)
print('bad1', p._shortcmd('AUTH OAUTHBEARER ' + base64.b64encode(b'n,a=${ALICE},\x01auth=Bearer tok-bob\x01\x01').decode()))
try:
    p._shortcmd('AQ==')
except poplib.error_proto as e:
    print('bad2', e)
`, [String(pm.ports.pop3)]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^capa \['LOGIN', 'OAUTHBEARER', 'PLAIN', 'XOAUTH2'\]$/m);
    assert.match(r.out, /^x b'\+OK Logged in\.'$/m);
    assert.match(r.out, /^stat 0$/m);
    assert.match(r.out, /^b b'\+OK Logged in\.'$/m);
    assert.match(r.out, new RegExp(`^bad1 b'${CH_BEARER.replace('+', '\\+')}'$`, 'm'));
    assert.match(r.out, /^bad2 b'-ERR \[AUTH\] Authentication failed\.'$/m);
  } finally {
    await pm.stop();
  }
});

test('tokeninfo_url (GET, token appended), introspection_mode = auth and get; config errors name the setting', async () => {
  const { parseOAuth2Conf, verifyToken } = await import('../../src/lib-auth/db-oauth2.ts');
  const port = (endpoint.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  const n = seen.length;
  const ti = parseOAuth2Conf(`tokeninfo_url = ${base}/tokeninfo?access_token=\nusername_attribute = email\n`, 'x.conf');
  assert.deepEqual(await verifyToken(ti, ALICE, 'tok-alice'), { result: 'ok' });
  assert.equal((await verifyToken(ti, ALICE, 'no-such-token')).result, 'mismatch');   // tokeninfo 401
  assert.equal((await verifyToken(ti, ALICE, 'tok-bob')).result, 'unknown');
  const au = parseOAuth2Conf(`introspection_url = ${base}/introspect\nintrospection_mode = auth\nactive_attribute = active\nactive_value = true\n`, 'x.conf');
  assert.deepEqual(await verifyToken(au, ALICE, 'tok-alice'), { result: 'ok' });
  assert.equal((await verifyToken(au, ALICE, 'tok-inactive-named')).result, 'disabled');
  const ge = parseOAuth2Conf(`introspection_url = ${base}/introspect?token=\nintrospection_mode = get\nclient_id = mail\n`, 'x.conf');
  assert.deepEqual(await verifyToken(ge, ALICE, 'tok-alice'), { result: 'ok' });
  const asked = seen.slice(n);
  assert.ok(asked.some((l) => l.startsWith('GET /tokeninfo?access_token=tok-alice ')), asked.join('\n'));
  assert.ok(asked.some((l) => l.startsWith('GET /introspect ') && l.endsWith(' tok-alice')), asked.join('\n'));
  assert.ok(asked.some((l) => l.startsWith('GET /introspect?token=tok-alice&client_id=mail ')), asked.join('\n'));
  assert.throws(() => parseOAuth2Conf('username_attribute = email\n', 'x.conf'), /tokeninfo_url, introspection_url or local_validation_key_dict must be given/);
  assert.throws(() => parseOAuth2Conf(`introspection_url = ${base}/i\nintrospection_mode = jwt\n`, 'x.conf'), /introspection_mode = jwt: must be auth, get, post or local/);
  assert.throws(() => parseOAuth2Conf('introspection_mode = local\nlocal_validation_key_dict = proxy::keys\n', 'x.conf'), /only fs:posix:prefix=\/DIRECTORY\/ is supported/);
  assert.throws(() => parseOAuth2Conf(`introspection_url = ${base}/i\ngrant_url = ${base}/g\n`, 'x.conf'), /"grant_url" is not supported/);
  assert.throws(() => parseOAuth2Conf(`introspection_url = ${base}/i\nintrospect_url = x\n`, 'x.conf'), /unknown setting "introspect_url"/);
});

test('managesieve: AUTHENTICATE "XOAUTH2" / "OAUTHBEARER"; a refused token gets the error challenge, then NO', async () => {
  const { DovecotFixture } = await import('../harness/dovecot-fixture.ts');
  const { createManageSieve } = await import('../../src/managesieve/managesieve.ts');
  const { managesieveSettings } = await import('../../src/managesieve/managesieve-settings.ts');
  const { Logger } = await import('../../src/util/msg.ts');
  const fx = new DovecotFixture('postern-ms-oauth-');
  try {
    const conf = fx.configure({ users: [{ user: ALICE, pass: 'secret' }], settings: 'auth_failure_delay = 0\ndisable_plaintext_auth = no', conf: `plugin {\n  sieve = file:~/sieve;active=~/.dovecot.sieve\n}\n${extraConf(confFile)}` });
    const ms = createManageSieve({ directory: await fx.directory(), settings: managesieveSettings(conf), log: new Logger('managesieve') });
    const port = await fx.listen((s) => { void ms.handle(s); });
    const greet = async () => {
      const c = await LineChat.open(port, { protocol: 'imap', localAddress: `127.2.0.${++nextAddr % 250 + 1}` });
      const g = await c.waitFor(/^OK .*\r\n/m);
      return { c, g };
    };
    const { c, g } = await greet();
    assert.match(g, /^"SASL" "PLAIN LOGIN OAUTHBEARER XOAUTH2"$/m);
    assert.match(await c.cmd(`AUTHENTICATE "XOAUTH2" "${xoauth2(ALICE, 'tok-alice')}"`), /^OK "Logged in\."$/);
    c.close();
    const b = await greet();
    assert.match(await b.c.cmd(`AUTHENTICATE "OAUTHBEARER" "${bearer(ALICE, 'tok-alice')}"`), /^OK "Logged in\."$/);
    b.c.close();
    const bad = await greet();
    bad.c.send(`AUTHENTICATE "OAUTHBEARER" "${bearer(ALICE, 'tok-bob')}"\r\n`);
    assert.equal(await bad.c.line(), `"${CH_BEARER.slice(2)}"`);
    assert.match(await bad.c.cmd('"AQ=="'), /^NO "Authentication failed\."$/);
    bad.c.close();
  } finally {
    await fx.stop();
  }
});
