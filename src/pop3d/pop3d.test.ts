/**
 * pop3d on real sockets, a real passwd-file directory and a real Maildir: the RFC 1939 state
 * machine with Dovecot's reply texts, UIDLs in %08Xu%08Xv, DELE/RSET/QUIT semantics, a client
 * vanishing before QUIT, two sessions of one user (with and without pop3_lock_session),
 * hostile input (1 MB lines, NUL bytes, bad message numbers), the growing auth failure delay,
 * disable_plaintext_auth and the idle timeout.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDovecotConf } from '../global/dovecot-conf.ts';
import { openUserDirectory } from '../lib-auth/user-directory-open.ts';
import { MaildirStore } from '../lib-storage/maildir/maildir-storage.ts';
import { pop3Uidl } from '../lib-storage/mail-storage.ts';
import { logger, setLogSink } from '../util/msg.ts';
import { createPop3d } from './pop3d.ts';
import { pop3dSettings, formatUidl } from './pop3d-settings.ts';
import { parseDovecotTime } from '../global/dovecot-units.ts';
import { topOf } from './pop3d-commands.ts';
import { LineChat } from '../../test/harness/line-chat.ts';
import { DovecotFixture } from '../../test/harness/dovecot-fixture.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); });
const cleanup: (() => Promise<void> | void)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f(); });

/** Close a test server and every connection still open on it. */
function closeServer(server: Server): Promise<void> {
  const socks: Socket[] = (server as Server & { _socks?: Socket[] })._socks ?? [];
  for (const s of socks) s.destroy();
  return new Promise<void>((r) => { server.close(() => r()); });
}
function track(server: Server): Server {
  const socks: Socket[] = [];
  (server as Server & { _socks?: Socket[] })._socks = socks;
  server.on('connection', (s) => { socks.push(s); });
  return server;
}

interface Env { port: number; dir: string; store: MaildirStore; rec: (u: string) => Promise<import('../lib-auth/user-directory.ts').UserRecord> }

async function startPop3(conf = '', lockWaitMs?: number, host = '127.0.0.1'): Promise<Env> {
  const fx = new DovecotFixture('postern-pop3d-');
  cleanup.push(() => fx.stop());
  const dc = fx.configure({
    users: [{ user: 'alice@x.test', pass: 'pw', home: 'alice' }, { user: 'bob@x.test', pass: 'pw', home: 'bob' }],
    settings: 'mail_location = maildir:~/Maildir\nauth_failure_delay = 0',
    conf,
  });
  const directory = await fx.directory();
  const store = new MaildirStore();
  const settings = { ...pop3dSettings(dc), lockWaitMs: lockWaitMs ?? 30_000 };
  const pop3d = createPop3d({ directory, store, settings, log: logger('pop3d') });
  const port = await fx.listen((s) => { void pop3d.handle(s); }, host);
  const rec = async (u: string) => (await directory.lookup(u))!;
  return { port, dir: fx.dir, store, rec };
}

async function login(port: number, user = 'alice@x.test'): Promise<LineChat> {
  const c = await LineChat.open(port, { protocol: 'pop3' });
  assert.match(await c.line(), /^\+OK /);
  assert.equal(await c.cmd(`USER ${user}`), '+OK');
  assert.equal(await c.cmd('PASS pw'), '+OK Logged in.');
  return c;
}

const MSG1 = 'Subject: one\n\nline 1\n.starts with a dot\nline 3\n';
const MSG2 = 'Subject: two\r\n\r\nsecond\r\n';

test('settings: time values and pop3_uidl_format forms', () => {
  assert.equal(parseDovecotTime('2 secs', 'x'), 2000);
  assert.equal(parseDovecotTime('500 ms', 'x'), 500);
  assert.equal(parseDovecotTime('1 min', 'x'), 60000);
  assert.throws(() => parseDovecotTime('soon', 'auth_failure_delay'), /auth_failure_delay = soon/);
  // Dovecot 2.3 writes %X in lower case (checked against real Dovecot in test/interop).
  assert.equal(formatUidl('%08Xu%08Xv', 26, 0x6b09d921, 'g'), '0000001a6b09d921');
  assert.equal(formatUidl('%u.%v', 3, 7, 'g'), '3.7');
  assert.equal(formatUidl('%g', 3, 7, '1700000000.M1P2.host'), '1700000000.M1P2.host');
  assert.equal(topOf(Buffer.from('A: b\r\n\r\n1\r\n2\r\n3\r\n'), 2).toString(), 'A: b\r\n\r\n1\r\n2\r\n');
  assert.equal(topOf(Buffer.from('A: b\n\n1\n'), 0).toString(), 'A: b\n\n');
  assert.equal(topOf(Buffer.from('A: b\n'), 5).toString(), 'A: b\n');
});

test('login, STAT/LIST/UIDL in CRLF octets, RETR dot-stuffed, TOP, DELE/RSET, QUIT expunges', async () => {
  const env = await startPop3();
  const u = await env.store.forUser(await env.rec('alice@x.test'));
  const r1 = await u.deliver('INBOX', MSG1);
  await u.deliver('INBOX', MSG2);
  const c = await LineChat.open(env.port, { protocol: 'pop3' });
  assert.equal(await c.line(), '+OK Postern ready.');
  c.send('CAPA\r\n');
  assert.equal(await c.multi(), '+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN\r\n.\r\n');
  assert.equal(await c.cmd('STAT'), '-ERR Unknown command.', 'no TRANSACTION command before login');
  assert.equal(await c.cmd('PASS pw'), '-ERR No username given.');
  assert.equal(await c.cmd('APOP alice@x.test 0123'), '-ERR APOP not enabled.');
  assert.equal(await c.cmd('STLS'), "-ERR TLS support isn't enabled.");
  assert.equal(await c.cmd('USER alice@x.test'), '+OK');
  assert.equal(await c.cmd('PASS pw'), '+OK Logged in.');
  const size1 = Buffer.byteLength(MSG1.replace(/\n/g, '\r\n'));
  const size2 = Buffer.byteLength(MSG2);
  assert.equal(await c.cmd('STAT'), `+OK 2 ${size1 + size2}`);
  c.send('LIST\r\n');
  assert.equal(await c.multi(), `+OK 2 messages:\r\n1 ${size1}\r\n2 ${size2}\r\n.\r\n`);
  c.send('UIDL\r\n');
  const uidl = (uid: number) => pop3Uidl(uid, r1.uidValidity).toLowerCase();
  const uidl1 = uidl(r1.uid);
  assert.match(uidl1, /^[0-9a-f]{16}$/);
  assert.equal(await c.multi(), `+OK\r\n1 ${uidl1}\r\n2 ${uidl(r1.uid + 1)}\r\n.\r\n`);
  assert.equal(await c.cmd('UIDL 1'), `+OK 1 ${uidl1}`);
  c.send('RETR 1\r\n');
  assert.equal(await c.multi(), `+OK ${size1} octets\r\nSubject: one\r\n\r\nline 1\r\n..starts with a dot\r\nline 3\r\n.\r\n`);
  c.send('TOP 1 1\r\n');
  assert.equal(await c.multi(), '+OK\r\nSubject: one\r\n\r\nline 1\r\n.\r\n');
  assert.equal(await c.cmd('TOP 1'), '-ERR Noise after message number: ');
  assert.equal(await c.cmd('TOP 1 x'), '-ERR Invalid size: x');
  assert.equal(await c.cmd('LIST 9'), "-ERR There's no message 9.");
  assert.equal(await c.cmd('LIST 0'), "-ERR There's no message 0.");
  assert.equal(await c.cmd('LIST x'), '-ERR Invalid message number: x');
  assert.equal(await c.cmd('RETR 1 2'), '-ERR Noise after message number:  2');
  assert.equal(await c.cmd('DELE 99999999999'), '-ERR Message number too large: ');
  assert.equal(await c.cmd('DELE'), '-ERR Invalid message number: ');
  assert.equal(await c.cmd('DELE 1'), '+OK Marked to be deleted.');
  assert.equal(await c.cmd('DELE 1'), '-ERR Message is deleted.');
  assert.equal(await c.cmd('RETR 1'), '-ERR Message is deleted.');
  assert.equal(await c.cmd('STAT'), `+OK 1 ${size2}`);
  assert.equal(await c.cmd('RSET'), '+OK');
  assert.equal(await c.cmd('STAT'), `+OK 2 ${size1 + size2}`);
  assert.equal(await c.cmd('DELE 2'), '+OK Marked to be deleted.');
  assert.equal(await c.cmd('NOOP'), '+OK');
  assert.equal(await c.cmd('LAST'), '-ERR Unknown command: LAST');
  assert.equal(await c.cmd('USER bob@x.test'), '-ERR Unknown command: USER');
  assert.equal(await c.cmd('QUIT'), '+OK Logging out, messages deleted.');
  await c.waitClose();
  // Message 2 is gone; message 1 (retrieved) is now \Seen.
  const box = await u.open('INBOX');
  assert.deepEqual(box.messages().map((m) => [m.uid, m.flags]), [[r1.uid, ['\\Seen']]]);
  await box.close();
  assert.match(logs.join('\n'), /pop3\(alice@x\.test\)<\w+>: Disconnected: Logged out top=1\/\d+, retr=1\/\d+, del=1\/2, size=\d+/);
  const again = await login(env.port);
  assert.equal(await again.cmd('QUIT'), '+OK Logging out.');
  await u.close();
});

test('a client vanishing before QUIT deletes nothing (idle clients: see the idle timeout test)', async () => {
  const env = await startPop3();
  const u = await env.store.forUser(await env.rec('alice@x.test'));
  await u.deliver('INBOX', MSG1);
  const c = await login(env.port);
  assert.equal(await c.cmd('DELE 1'), '+OK Marked to be deleted.');
  c.close();
  await new Promise((r) => setTimeout(r, 100));
  const d = await login(env.port);
  assert.equal(await d.cmd('STAT'), `+OK 1 ${Buffer.byteLength(MSG1.replace(/\n/g, '\r\n'))}`);
  d.close();
  await u.close();
});

test('two sessions of one user: both log in; an expunged message is reported, not re-served', async () => {
  const env = await startPop3();
  const u = await env.store.forUser(await env.rec('alice@x.test'));
  await u.deliver('INBOX', MSG1);
  await u.deliver('INBOX', MSG2);
  const a = await login(env.port);
  const b = await login(env.port);
  assert.equal(await a.cmd('DELE 1'), '+OK Marked to be deleted.');
  assert.equal(await b.cmd('DELE 2'), '+OK Marked to be deleted.');
  assert.equal(await a.cmd('QUIT'), '+OK Logging out, messages deleted.');
  // b keeps its snapshot (Dovecot): message 1 is listed but its content is gone.
  assert.match(await b.cmd('STAT'), /^\+OK 1 \d+$/);
  assert.equal(await b.cmd('RETR 1'), '-ERR Message 1 expunged.');
  assert.equal(await b.cmd('QUIT'), '+OK Logging out, messages deleted.');
  const c = await login(env.port);
  assert.equal(await c.cmd('STAT'), '+OK 0 0');
  c.close();
  await u.close();
});

test('pop3_lock_session = yes: the second session waits for the first, or gets [IN-USE]', async () => {
  const env = await startPop3('pop3_lock_session = yes', 300);
  const u = await env.store.forUser(await env.rec('alice@x.test'));
  await u.deliver('INBOX', MSG1);
  const a = await login(env.port);
  const b = await LineChat.open(env.port, { protocol: 'pop3' });
  await b.line();
  assert.equal(await b.cmd('USER alice@x.test'), '+OK');
  assert.equal(await b.cmd('PASS pw'), "-ERR [IN-USE] Couldn't open INBOX: Timeout while waiting for lock");
  b.send('USER alice@x.test\r\nPASS pw\r\n');
  assert.equal(await b.line(), '+OK');
  assert.equal(await a.cmd('DELE 1'), '+OK Marked to be deleted.');
  assert.equal(await a.cmd('QUIT'), '+OK Logging out, messages deleted.');
  assert.equal(await b.line(), '+OK Logged in.');
  assert.equal(await b.cmd('STAT'), '+OK 0 0', 'the waiting session sees the maildrop as the first left it');
  b.close();
  // Another user is not blocked.
  const bob = await login(env.port, 'bob@x.test');
  bob.close();
  await u.close();
});

test('AUTH PLAIN (SASL-IR and continuation), LOGIN, failures with Dovecot texts and a growing delay', async () => {
  const env = await startPop3('auth_mechanisms = plain login\nauth_failure_delay = 100 ms');
  const c = await LineChat.open(env.port, { protocol: 'pop3' });
  await c.line();
  c.send('AUTH\r\n');
  assert.equal(await c.multi(), '+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n');
  assert.equal(await c.cmd('AUTH CRAM-MD5'), '-ERR [AUTH] Unsupported authentication mechanism.');
  assert.equal(await c.cmd('AUTH PLAIN !!!'), '-ERR [AUTH] Invalid base64 data in initial response');
  let t = Date.now();
  assert.equal(await c.cmd('AUTH PLAIN ' + Buffer.from('\0alice@x.test\0bad').toString('base64')), '-ERR [AUTH] Authentication failed.');
  const d1 = Date.now() - t;
  t = Date.now();
  assert.equal(await c.cmd('USER nobody@x.test'), '+OK');
  assert.equal(await c.cmd('PASS pw'), '-ERR [AUTH] Authentication failed.');
  const d2 = Date.now() - t;
  assert.ok(d1 >= 90 && d2 >= 190, `delays grow: ${d1} ms then ${d2} ms`);
  assert.equal(await c.cmd('AUTH LOGIN'), '+ VXNlcm5hbWU6');
  assert.equal(await c.cmd('*'), '-ERR Authentication aborted by client.');
  assert.equal(await c.cmd('AUTH PLAIN'), '+ ');
  assert.equal(await c.cmd(Buffer.from('\0alice@x.test\0pw').toString('base64')), '+OK Logged in.');
  assert.equal(await c.cmd('QUIT'), '+OK Logging out.');
  const l = await LineChat.open(env.port, { protocol: 'pop3' });
  await l.line();
  assert.equal(await l.cmd('AUTH LOGIN ' + Buffer.from('bob@x.test').toString('base64')), '+ UGFzc3dvcmQ6');
  assert.equal(await l.cmd(Buffer.from('pw').toString('base64')), '+OK Logged in.');
  l.close();
  assert.match(logs.join('\n'), /pop3-login: Login: user=<bob@x\.test>, method=LOGIN/);
  assert.doesNotMatch(logs.join('\n'), /PASS pw|\bpw\b.*Login/);
});

test('hostile input: 1 MB lines, NUL bytes, pipelined commands', async () => {
  const env = await startPop3();
  const u = await env.store.forUser(await env.rec('alice@x.test'));
  await u.deliver('INBOX', MSG1);
  const pre = await LineChat.open(env.port, { protocol: 'pop3' });
  await pre.line();
  pre.send('USER ' + 'x'.repeat(1 << 20) + '\r\n');
  assert.equal(await pre.line(), '-ERR Input buffer full, aborting');
  await pre.waitClose();
  const post = await login(env.port);
  post.send('NOOP ' + 'y'.repeat(1 << 20) + '\r\n');
  assert.equal(await post.line(), '-ERR Input line too long.');
  await post.waitClose();
  const n = await LineChat.open(env.port, { protocol: 'pop3' });
  await n.line();
  assert.equal(await n.cmd('NOOP\0x'), '-ERR Unknown command.');
  assert.equal(await n.cmd('USER ali\0ce@x.test'), '+OK');
  assert.equal(await n.cmd('PASS pw'), '-ERR [AUTH] Authentication failed.');
  // RFC 2449 PIPELINING: many commands in one write, answered in order.
  n.send('USER alice@x.test\r\nPASS pw\r\nSTAT\r\nDELE 5\r\nNOOP\r\nQUIT\r\n');
  assert.equal(await n.line(), '+OK');
  assert.equal(await n.line(), '+OK Logged in.');
  assert.match(await n.line(), /^\+OK 1 \d+$/);
  assert.equal(await n.line(), "-ERR There's no message 5.");
  assert.equal(await n.line(), '+OK');
  assert.equal(await n.line(), '+OK Logging out.');
  await n.waitClose();
  // Nothing was deleted by any of this.
  const box = await u.open('INBOX');
  assert.equal(box.messages().length, 1);
  await box.close();
  await u.close();
  assert.equal(readdirSync(env.dir).includes('alice'), true);
});

test('disable_plaintext_auth = yes refuses USER/PASS and AUTH from another address, allows same-address', async () => {
  const env = await startPop3('disable_plaintext_auth = yes', undefined, '127.0.0.1');
  const c = await LineChat.open(env.port, { protocol: 'pop3', localAddress: '127.0.0.2' });
  await c.line();
  c.send('CAPA\r\n');
  const capa = await c.multi();
  assert.doesNotMatch(capa, /\r\nUSER\r\n/);
  assert.match(capa, /\r\nSASL\r\n/);
  assert.equal(await c.cmd('USER alice@x.test'), '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.');
  assert.equal(await c.cmd('AUTH PLAIN ' + Buffer.from('\0alice@x.test\0pw').toString('base64')), '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.');
  c.close();
  const same = await login(env.port);
  same.close();
});

test('idle timeout: "-ERR Disconnected for inactivity."', async () => {
  const env = await startPop3();
  const dir = mkdtempSync(join(tmpdir(), 'postern-pop3d-idle-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  // A session with a short login timeout, on its own server.
  const dc = parseDovecotConf('', join(dir, 'dovecot.conf'));
  const settings = { ...pop3dSettings(dc), loginTimeoutMs: 150 };
  const pop3d = createPop3d({ directory: { lookup: async () => undefined, verifyPlain: async () => ({ result: 'unknown' }), iterate: async function* () {}, close: async () => {} }, store: env.store, settings, log: logger('pop3d') });
  const server = track(createServer((s) => { void pop3d.handle(s); }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => closeServer(server));
  const c = await LineChat.open((server.address() as { port: number }).port, { protocol: 'pop3' });
  assert.equal(await c.line(), '+OK Postern ready.');
  assert.equal(await c.line(), '-ERR Disconnected for inactivity.');
  await c.waitClose();
});

test('the STLS hook (for the TLS issue): CAPA lists STLS, the session goes on over TLS', async () => {
  const { generateSelfSigned } = await import('../lib-tls/self-signed.ts');
  const tls = await import('node:tls');
  const cert = generateSelfSigned({ hostname: 'pop.x.test', keyType: 'ec' });
  const ctx = tls.createSecureContext({ cert: cert.certPem, key: cert.keyPem });
  const env = await startPop3('disable_plaintext_auth = yes');
  const dir = mkdtempSync(join(tmpdir(), 'postern-pop3d-tls-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const dc = parseDovecotConf(`auth_failure_delay = 0\npassdb {\n  driver = passwd-file\n  args = scheme=PLAIN ${dir}/users\n}\nuserdb {\n  driver = static\n  args = uid=${process.getuid!()} gid=${process.getgid!()} home=${dir}/%n mail=maildir:~/Maildir\n}\n`, join(dir, 'dovecot.conf'));
  writeFileSync(join(dir, 'users'), 'carol@x.test:{PLAIN}pw\n');
  const directory = await openUserDirectory(dc);
  cleanup.push(() => directory.close());
  const pop3d = createPop3d({ directory, store: env.store, settings: pop3dSettings(dc), log: logger('pop3d') });
  const startTls = async (sock: Socket) => {
    const t = new tls.TLSSocket(sock, { isServer: true, secureContext: ctx });
    await new Promise<void>((r) => t.once('secure', () => r()));
    return t as unknown as Socket;
  };
  const server = track(createServer((s) => { void pop3d.handle(s, { startTls }); }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => closeServer(server));
  // Connect from 127.0.0.2 so that the connection is not "secure" before STLS.
  const c = await LineChat.open((server.address() as { port: number }).port, { protocol: 'pop3', localAddress: '127.0.0.2' });
  await c.line();
  c.send('CAPA\r\n');
  assert.match(await c.multi(), /\r\nSTLS\r\nSASL\r\n/);
  assert.equal(await c.cmd('USER carol@x.test'), '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.');
  assert.equal(await c.cmd('STLS'), '+OK Begin TLS negotiation now.');
  const t = tls.connect({ socket: c.sock, rejectUnauthorized: false, servername: 'pop.x.test' });
  await new Promise((r) => t.once('secureConnect', r));
  const s = LineChat.over(t as unknown as Socket, 'pop3');
  s.send('CAPA\r\n');
  const capa = await s.multi();
  assert.doesNotMatch(capa, /STLS/);
  assert.match(capa, /\r\nUSER\r\nSASL PLAIN\r\n/);
  assert.equal(await s.cmd('STLS'), '-ERR TLS is already active.');
  assert.equal(await s.cmd('USER carol@x.test'), '+OK');
  assert.equal(await s.cmd('PASS pw'), '+OK Logged in.');
  assert.equal(await s.cmd('STAT'), '+OK 0 0');
  assert.equal(await s.cmd('QUIT'), '+OK Logging out.');
  t.destroy();
});

test('the master service: ServiceImpl pop3d on a bound listener, stop() ends sessions', async () => {
  const { service } = await import('./pop3d.ts');
  const dir = mkdtempSync(join(tmpdir(), 'postern-pop3d-svc-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'users'), `dave@x.test:{PLAIN}pw:${process.getuid!()}:${process.getgid!()}::${dir}/dave::\n`);
  const dc = parseDovecotConf(`mail_location = maildir:~/Maildir\nlogin_greeting = Hello there.\npassdb {\n  driver = passwd-file\n  args = scheme=PLAIN ${dir}/users\n}\nuserdb {\n  driver = passwd-file\n  args = ${dir}/users\n}\n`, join(dir, 'dovecot.conf'));
  let route: ((s: Socket) => void) | undefined;
  const server = track(createServer((s) => route?.(s)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => closeServer(server));
  const port = (server.address() as { port: number }).port;
  const ctx = {
    config: {} as never, masterCf: [], dovecot: dc, protocol: 'pop3', log: logger('pop3d'), failed: () => {},
    entry: { service: 'pop3', maxproc: 0 } as never,
    listeners: [{ kind: 'inet' as const, name: 'pop3', ssl: false, address: `127.0.0.1:${port}`, server, accept: (h: (s: Socket) => void) => { route = h; } }],
  };
  const running = await service.start(ctx);
  const c = await LineChat.open(port, { protocol: 'pop3' });
  assert.equal(await c.line(), '+OK Hello there.');
  assert.equal(await c.cmd('USER dave@x.test'), '+OK');
  assert.equal(await c.cmd('PASS pw'), '+OK Logged in.');
  assert.equal(await c.cmd('QUIT'), '+OK Logging out.');
  await running.stop();
});

test('RETR/TOP streaming: DotStuffer and TopCutter give dotStuff()/topOf() bytes for any chunking', async () => {
  const { DotStuffer, TopCutter } = await import('./pop3d-stream.ts');
  const { dotStuff } = await import('../lib-smtp/smtp-data-stream.ts');
  const { topOf } = await import('./pop3d-commands.ts');
  let seed = 7;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const alphabet = Buffer.from('..\r\n\n\r ab');
  for (let round = 0; round < 400; round++) {
    const msg = Buffer.alloc(rnd(300));
    for (let i = 0; i < msg.length; i++) msg[i] = alphabet[rnd(alphabet.length)]!;
    const chunks: Buffer[] = [];
    for (let off = 0; off < msg.length;) { const n = 1 + rnd(9); chunks.push(msg.subarray(off, off + n)); off += n; }
    const ds = new DotStuffer();
    const wire = Buffer.concat([...chunks.map((c) => ds.push(c)), ds.end()]);
    assert.deepEqual(wire, dotStuff(msg), `dot-stuffing of ${JSON.stringify(msg.toString('latin1'))}`);
    const lines = rnd(4);
    const tc = new TopCutter(lines);
    const parts: Buffer[] = [];
    for (const c of chunks) { parts.push(tc.cut(c)); if (tc.done) break; }
    assert.deepEqual(Buffer.concat(parts), topOf(msg, lines), `TOP ${lines} of ${JSON.stringify(msg.toString('latin1'))}`);
  }
});

test('XCLIENT (Dovecot pop3-login): only from login_trusted_networks, whose greeting says [XCLIENT]', async () => {
  const env = await startPop3('login_trusted_networks = 127.0.0.3/32');
  // an untrusted peer: a plain greeting, XCLIENT is an unknown command, its address stays
  const u = await LineChat.open(env.port, { protocol: 'pop3', localAddress: '127.0.0.1' });
  assert.doesNotMatch(await u.line(), /XCLIENT/);
  assert.equal(await u.cmd('XCLIENT ADDR=192.0.2.66 PORT=4000'), '-ERR Unknown command.');
  assert.equal(await u.cmd('USER alice@x.test'), '+OK');
  assert.equal(await u.cmd('PASS pw'), '+OK Logged in.');
  await u.cmd('QUIT');
  assert.ok(logs.some((l) => /pop3-login: Login: user=<alice@x\.test>, method=PLAIN, rip=127\.0\.0\.1,/.test(l)));
  // the trusted proxy: the client's address from XCLIENT is the one logged (and penalised)
  const t = await LineChat.open(env.port, { protocol: 'pop3', localAddress: '127.0.0.3' });
  assert.match(await t.line(), /^\+OK \[XCLIENT\] /);
  assert.equal(await t.cmd('XCLIENT ADDR=192.0.2.66 PORT=4000 SESSION=abc TTL=4'), '+OK');
  assert.equal(await t.cmd('USER bob@x.test'), '+OK');
  assert.equal(await t.cmd('PASS pw'), '+OK Logged in.');
  await t.cmd('QUIT');
  assert.ok(logs.some((l) => /pop3-login: Login: user=<bob@x\.test>, method=PLAIN, rip=192\.0\.2\.66,/.test(l)), logs.join('\n'));
});
