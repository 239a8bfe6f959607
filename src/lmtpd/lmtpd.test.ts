/**
 * lmtpd on real sockets (TCP and a unix socket), a real passwd-file directory and real
 * Maildirs: RFC 2033 per-recipient replies with Dovecot's texts, unknown users, quota (552 5.2.2
 * for one recipient while the other gets 250), lmtp_save_to_detail_mailbox with hostile details,
 * duplicate suppression, the added headers, dot-unstuffing, 10,000 recipients in one
 * transaction, a client lost in DATA, over-long lines.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDovecotConf } from '../global/dovecot-conf.ts';
import { openUserDirectory } from '../lib-auth/user-directory-open.ts';
import { MaildirStore } from '../lib-storage/maildir/maildir-storage.ts';
import { logger, setLogSink } from '../util/msg.ts';
import { LineChat } from '../../test/harness/line-chat.ts';
import { DovecotFixture } from '../../test/harness/dovecot-fixture.ts';
import { createLmtpd } from './lmtpd.ts';
import { lmtpdSettings } from './lmtpd-settings.ts';
import { splitDetail } from './lmtpd-session.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); if (process.env.SHOWLOG) console.error(l); });
const cleanup: (() => Promise<void> | void)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f(); });

function closeServer(server: Server, socks: Socket[]): Promise<void> {
  for (const s of socks) s.destroy();
  return new Promise<void>((r) => { server.close(() => r()); });
}

async function startLmtp(conf = '', unixPath?: string) {
  const fx = new DovecotFixture('postern-lmtpd-');
  cleanup.push(() => fx.stop());
  const dc = fx.configure({
    users: [
      { user: 'alice@x.test', pass: 'pw', home: 'alice' },
      { user: 'bob@x.test', pass: 'pw', home: 'bob', extra: 'userdb_quota_rule=*:storage=1K' },
    ],
    settings: 'mail_location = maildir:~/Maildir\nhostname = lmtp.x.test',
    conf,
  });
  const directory = await fx.directory();
  const store = new MaildirStore();
  const lmtpd = createLmtpd({ directory, store, settings: lmtpdSettings(dc), log: logger('lmtpd') });
  const handle = (s: Socket) => { void lmtpd.handle(s); };
  const socketPath = unixPath ? await fx.listenUnix(unixPath, handle) : join(fx.dir, '');
  const port = unixPath ? 0 : await fx.listen(handle);
  const messages = (user: string, box = 'INBOX') => fx.messages(user, store, box);
  return { dir: fx.dir, port, store, directory, messages, socketPath };
}

async function lhlo(port: number): Promise<LineChat> {
  const c = await LineChat.open(port);
  assert.equal(await c.reply(), '220 lmtp.x.test Postern ready.');
  assert.equal(await c.cmd('LHLO mta.x.test'), '250-lmtp.x.test\n250-8BITMIME\n250-ENHANCEDSTATUSCODES\n250 PIPELINING');
  return c;
}

test('splitDetail: first delimiter character of the set', () => {
  assert.deepEqual(splitDetail('alice+Foo@x.test', '+'), ['alice@x.test', 'Foo']);
  assert.deepEqual(splitDetail('alice-a+b@x.test', '+-'), ['alice@x.test', 'a+b']);
  assert.deepEqual(splitDetail('alice@x.test', '+'), ['alice@x.test', '']);
  assert.deepEqual(splitDetail('+x@x.test', '+'), ['+x@x.test', ''], 'an empty user part is not split');
  assert.deepEqual(splitDetail('a+b@x.test', ''), ['a+b@x.test', '']);
});

test('per-recipient replies: delivered, unknown user, over quota; headers and dot-unstuffing', async () => {
  const env = await startLmtp();
  const c = await lhlo(env.port);
  assert.equal(await c.cmd('MAIL FROM:<sender@y.test> BODY=8BITMIME SIZE=100'), '250 2.1.0 OK');
  assert.equal(await c.cmd('RCPT TO:<nobody@x.test>'), "550 5.1.1 <nobody@x.test> User doesn't exist: nobody@x.test");
  assert.equal(await c.cmd('RCPT TO:<alice@x.test>'), '250 2.1.5 OK');
  assert.equal(await c.cmd('RCPT TO:<bob@x.test>'), '250 2.1.5 OK');
  assert.equal(await c.cmd('DATA'), '354 OK');
  c.send('Subject: hello\r\nMessage-ID: <m1@y.test>\r\n\r\n' + 'x'.repeat(2000) + '\r\n..dot\r\n.\r\n');
  assert.match(await c.reply(), /^250 2\.0\.0 <alice@x\.test> [A-Za-z0-9+/]{22}:R2 Saved$/);
  assert.equal(await c.reply(), '552 5.2.2 <bob@x.test> Quota exceeded (mailbox for user is full)');
  assert.equal(await c.cmd('QUIT'), '221 2.0.0 Bye');
  const [m] = await env.messages('alice@x.test');
  assert.match(m!, /^Return-Path: <sender@y\.test>\nDelivered-To: alice@x\.test\nReceived: from mta\.x\.test \(\[127\.0\.0\.1\]\)\n\tby lmtp\.x\.test with LMTP\n\tid \S+:R2\n\t\(envelope-from <sender@y\.test>\)\n\tfor <alice@x\.test>; \w{3}, \d\d \w{3} \d{4} [\d:]{8} [+-]\d{4}\nSubject: hello\n/);
  assert.match(m!, /\n\.dot\n$/);
  assert.deepEqual(await env.messages('bob@x.test'), []);
  assert.match(logs.join('\n'), /lmtp\(alice@x\.test\)<\S+:R2>: msgid=<m1@y\.test>: saved mail to INBOX/);
});

test('command errors as Dovecot: order, unknown verbs, parameters, over-long lines', async () => {
  const env = await startLmtp();
  const c = await LineChat.open(env.port);
  await c.reply();
  assert.equal(await c.cmd('RCPT TO:<alice@x.test>'), '503 5.5.0 MAIL needed first');
  assert.equal(await c.cmd('DATA'), '503 5.5.0 MAIL needed first');
  assert.equal(await c.cmd('HELO x'), '500 5.5.1 Unknown command');
  assert.equal(await c.cmd('EHLO x'), '500 5.5.1 Unknown command');
  assert.equal(await c.cmd('VRFY alice'), '252 2.3.3 Try RCPT instead');
  assert.equal(await c.cmd('NOOP'), '250 2.0.0 OK');
  assert.equal(await c.cmd('MAIL FROM:<s@y.test> FOO=BAR'), '555 5.5.4 Unsupported parameters');
  assert.equal(await c.cmd('MAIL FROM:<>'), '250 2.1.0 OK', 'MAIL before LHLO is accepted, as Dovecot does');
  assert.equal(await c.cmd('MAIL FROM:<>'), '503 5.5.1 MAIL already given');
  assert.equal(await c.cmd('DATA'), '503 5.5.0 No valid recipients');
  assert.equal(await c.cmd('RCPT TO:<a b@x.test>'), '501 5.5.4 Invalid TO: bad local part');
  assert.equal(await c.cmd('X'.repeat(1 << 20)), '500 5.5.2 Line too long');
  assert.equal(await c.cmd('RSET'), '250 2.0.0 OK');
  assert.equal(await c.cmd('RCPT TO:<alice@x.test>'), '503 5.5.0 MAIL needed first');
  assert.equal(await c.cmd('QUIT'), '221 2.0.0 Bye');
  await c.waitClose();
});

test('lmtp_save_to_detail_mailbox: existing folder, missing folder and hostile details → INBOX', async () => {
  const env = await startLmtp('protocol lmtp {\n  lmtp_save_to_detail_mailbox = yes\n}');
  const u = await env.store.forUser((await env.directory.lookup('alice@x.test'))!);
  await u.create('Lists');
  await u.close();
  const c = await lhlo(env.port);
  const hostile = ['"alice+../../../etc"@x.test', '"alice+a/../../b"@x.test', '"alice+.."@x.test', '"alice+."@x.test', '"alice+\\\\x"@x.test', 'alice+Missing@x.test', 'alice+/tmp@x.test'];
  assert.equal(await c.cmd('MAIL FROM:<s@y.test>'), '250 2.1.0 OK');
  assert.equal(await c.cmd('RCPT TO:<alice+Lists@x.test>'), '250 2.1.5 OK');
  for (const h of hostile) assert.equal(await c.cmd(`RCPT TO:<${h}>`), '250 2.1.5 OK', h);
  assert.equal(await c.cmd('DATA'), '354 OK');
  c.send('Subject: detail\r\n\r\nbody\r\n.\r\n');
  assert.match(await c.reply(), /^250 2\.0\.0 <alice\+Lists@x\.test> \S+ Saved$/);
  for (const h of hostile) assert.match(await c.reply(), new RegExp(`^250 2\\.0\\.0 <${h.replace(/[.+*?()[\]/\\]/g, '\\$&')}> \\S+ Saved$`));
  assert.equal((await env.messages('alice@x.test', 'Lists')).length, 1);
  assert.equal((await env.messages('alice@x.test')).length, hostile.length, 'every hostile detail went to INBOX');
  // Nothing was created outside the user's Maildir.
  assert.deepEqual(readdirSync(env.dir).sort(), ['alice', 'dovecot.conf', 'users'].filter((f) => f !== 'dovecot.conf' || existsSync(join(env.dir, f))));
  assert.equal(existsSync('/etc/cur'), false);
  c.close();
});

test('duplicates are delivered once and answered for each RCPT; 10,000 recipients in one transaction', async () => {
  const env = await startLmtp();
  const c = await lhlo(env.port);
  assert.equal(await c.cmd('MAIL FROM:<s@y.test>'), '250 2.1.0 OK');
  const N = 10_000;
  const t0 = Date.now();
  c.send(Array.from({ length: N }, () => 'RCPT TO:<alice@x.test>\r\n').join(''));
  for (let i = 0; i < N; i++) assert.equal(await c.reply(), '250 2.1.5 OK');
  assert.equal(await c.cmd('DATA'), '354 OK');
  c.send('Subject: many\r\n\r\nbody\r\n.\r\n');
  const first = await c.reply();
  assert.match(first, /^250 2\.0\.0 <alice@x\.test> \S+ Saved$/);
  for (let i = 1; i < N; i++) assert.equal(await c.reply(), first);
  assert.ok(Date.now() - t0 < 20_000, `10,000 recipients took ${Date.now() - t0} ms`);
  assert.equal((await env.messages('alice@x.test')).length, 1);
  c.close();
});

test('a client lost during DATA delivers nothing; the unix socket listener works', async () => {
  const env = await startLmtp('', 'lmtp');
  const { connect } = await import('node:net');
  const s = connect(env.socketPath);
  await new Promise((r) => s.once('connect', r));
  s.write('LHLO x\r\nMAIL FROM:<s@y.test>\r\nRCPT TO:<alice@x.test>\r\nDATA\r\nSubject: cut\r\n\r\npartial');
  await new Promise((r) => setTimeout(r, 100));
  s.destroy();
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(await env.messages('alice@x.test'), []);
  // Over the unix socket, a full delivery.
  const u = connect(env.socketPath);
  let out = '';
  u.on('data', (d) => { out += d.toString(); });
  u.write('LHLO x\r\nMAIL FROM:<s@y.test>\r\nRCPT TO:<alice@x.test>\r\nDATA\r\n');
  await new Promise((r) => setTimeout(r, 100));
  u.write('Subject: unix\r\n\r\nbody\r\n.\r\nQUIT\r\n');
  await new Promise((r) => u.once('close', r));
  assert.match(out, /354 OK\r\n250 2\.0\.0 <alice@x\.test> \S+ Saved\r\n221 2\.0\.0 Bye\r\n$/);
  const [m] = await env.messages('alice@x.test');
  assert.match(m!, /^Return-Path: <s@y\.test>\nDelivered-To: alice@x\.test\nReceived: from x\n\tby lmtp\.x\.test with LMTP/);
});

test('slow clients: idle timeout 421; NUL bytes in addresses are syntax errors', async () => {
  const env = await startLmtp();
  const c = await lhlo(env.port);
  assert.equal(await c.cmd('MAIL FROM:<s@y.test>'), '250 2.1.0 OK');
  assert.equal(await c.cmd('RCPT TO:<al\0ice@x.test>'), '501 5.5.4 Invalid TO: bad local part');
  assert.equal(await c.cmd('NO\0OP'), '500 5.5.1 Unknown command');
  c.close();
  const dir = mkdtempSync(join(tmpdir(), 'postern-lmtpd-idle-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const settings = { ...lmtpdSettings(parseDovecotConf('hostname = lmtp.x.test', join(dir, 'dovecot.conf'))), idleTimeoutMs: 150 };
  const lmtpd = createLmtpd({ directory: env.directory, store: env.store, settings, log: logger('lmtpd') });
  const socks: Socket[] = [];
  const server = createServer((s) => { socks.push(s); void lmtpd.handle(s); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => closeServer(server, socks));
  const slow = await LineChat.open((server.address() as { port: number }).port);
  assert.equal(await slow.reply(), '220 lmtp.x.test Postern ready.');
  assert.equal(await slow.reply(), '421 4.4.2 lmtp.x.test Disconnected for inactivity');
  await slow.waitClose();
});

test('the master service: ServiceImpl lmtpd on a unix listener', async () => {
  const { service } = await import('./lmtpd.ts');
  const env = await startLmtp();
  const dc = parseDovecotConf(`mail_location = maildir:~/Maildir\nhostname = lmtp.x.test\npassdb {\n  driver = passwd-file\n  args = scheme=PLAIN ${env.dir}/users\n}\nuserdb {\n  driver = passwd-file\n  args = ${env.dir}/users\n}\n`, join(env.dir, 'dovecot.conf'));
  let route: ((s: Socket) => void) | undefined;
  const socks: Socket[] = [];
  const server = createServer((s) => { socks.push(s); route?.(s); });
  const path = join(env.dir, 'lmtp.sock');
  await new Promise<void>((r) => server.listen(path, r));
  cleanup.push(() => closeServer(server, socks));
  const running = await service.start({
    config: {} as never, masterCf: [], dovecot: dc, protocol: 'lmtp', log: logger('lmtpd'), failed: () => {},
    entry: { service: 'lmtp', maxproc: 0 } as never,
    listeners: [{ kind: 'unix', name: 'lmtp', ssl: false, address: path, server, accept: (h: (s: Socket) => void) => { route = h; } }],
  });
  const { connect } = await import('node:net');
  const u = connect(path);
  let out = '';
  u.on('data', (d) => { out += d.toString(); });
  u.write('LHLO x\r\nMAIL FROM:<s@y.test>\r\nRCPT TO:<alice@x.test>\r\nDATA\r\n');
  await new Promise((r) => setTimeout(r, 100));
  u.write('Subject: svc\r\n\r\nbody\r\n.\r\nQUIT\r\n');
  await new Promise((r) => u.once('close', r));
  assert.match(out, /^220 lmtp\.x\.test Postern ready\.\r\n[\s\S]*250 2\.0\.0 <alice@x\.test> \S+ Saved\r\n221 2\.0\.0 Bye\r\n$/);
  assert.equal((await env.messages('alice@x.test')).length, 1);
  await running.stop();
});

test('lmtp_rcpt_check_quota = yes: a full mailbox is refused at RCPT with 552 5.2.2, or 452 4.2.2 with quota_full_tempfail', async () => {
  for (const [conf, reply] of [['lmtp_rcpt_check_quota = yes', '552 5.2.2'], ['lmtp_rcpt_check_quota = yes\nquota_full_tempfail = yes', '452 4.2.2']] as const) {
    const env = await startLmtp(conf);
    const u = await env.store.forUser((await env.directory.lookup('bob@x.test'))!);
    await u.deliver('INBOX', 'Subject: big\n\n' + 'x'.repeat(2000) + '\n', { ignoreQuota: true });
    await u.close();
    const c = await lhlo(env.port);
    assert.equal(await c.cmd('MAIL FROM:<s@y.test>'), '250 2.1.0 OK');
    assert.equal(await c.cmd('RCPT TO:<bob@x.test>'), `${reply} <bob@x.test> Quota exceeded (mailbox for user is full)`);
    assert.equal(await c.cmd('RCPT TO:<alice@x.test>'), '250 2.1.5 OK');
    c.close();
  }
});

test('the DATA spool: small messages stay in memory, large ones go to an unlinked mail_temp_dir file, same bytes', async () => {
  const { LmtpSpool, SPOOL_MEMORY_MAX } = await import('./lmtpd-spool.ts');
  const dir = mkdtempSync(join(tmpdir(), 'postern-lmtp-spool-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  for (const total of [0, 1, SPOOL_MEMORY_MAX, SPOOL_MEMORY_MAX + 1, 3_000_017]) {
    const data = Buffer.alloc(total);
    for (let i = 0; i < total; i++) data[i] = (i * 7 + (i >> 9)) & 0xff;
    const sp = new LmtpSpool(dir);
    for (let off = 0, step = 1; off < total; off += step, step = (step * 3 + 1) % 70_001 + 1) sp.push(data.subarray(off, Math.min(total, off + step)));
    await sp.finish();
    assert.equal(sp.size, total);
    assert.deepEqual(readdirSync(dir), [], 'the spool file is unlinked at once');
    const mem = sp.inMemory();
    assert.equal(mem !== undefined, total <= SPOOL_MEMORY_MAX, `in memory at ${total}`);
    const parts: Buffer[] = [];
    if (!mem) for await (const c of sp.chunks()) parts.push(c);
    const got = mem ?? Buffer.concat(parts);
    assert.ok(got.equals(data), `${total} bytes read back`);
    assert.ok(sp.head.equals(data.subarray(0, 65536)));
    await sp.close();
  }
  // mail_temp_dir unusable: finish() fails (lmtpd answers 451 4.3.0 for every recipient).
  const bad = new LmtpSpool(join(dir, 'missing'));
  bad.push(Buffer.alloc(SPOOL_MEMORY_MAX * 3));
  await assert.rejects(bad.finish(), /ENOENT/);
  await bad.close();
});

test('mail_temp_dir unusable: a message past the memory window gets 451 4.3.0 per recipient, a small one is delivered', async () => {
  const env = await startLmtp('mail_temp_dir = /nonexistent/postern-test\n');
  const c = await lhlo(env.port);
  for (const [size, want] of [[300_000, /^451 4\.3\.0 <alice@x\.test> Temporary internal failure$/], [1000, /^250 2\.0\.0 <alice@x\.test> \S+ Saved$/]] as const) {
    assert.equal(await c.cmd('MAIL FROM:<s@y.test>'), '250 2.1.0 OK');
    assert.equal(await c.cmd('RCPT TO:<alice@x.test>'), '250 2.1.5 OK');
    assert.equal(await c.cmd('DATA'), '354 OK');
    c.send(`Subject: ${size}\r\n\r\n` + ('y'.repeat(98) + '\r\n').repeat(size / 100) + '.\r\n');
    assert.match(await c.reply(), want);
  }
  assert.equal((await env.messages('alice@x.test')).length, 1);
  assert.match(logs.join('\n'), /write\(\/nonexistent\/postern-test\/dovecot\.lmtp\.\*\) failed: ENOENT/);
  c.close();
});

test('DMARC quarantine (docs/authres.md): Python\'s smtplib.LMTP delivers a message with our Authentication-Results mark into Junk (created); another authserv-id or no mark stays in INBOX', async () => {
  const env = await startLmtp();
  const { spawn } = await import('node:child_process');
  const py = `
import smtplib, sys
s = smtplib.LMTP('127.0.0.1', int(sys.argv[1]))
s.ehlo_or_helo_if_needed()
for id, subj in (('lmtp.x.test', 'junked'), ('other.example', 'kept-other'), ('', 'kept-plain')):
    mark = ('Authentication-Results: %s;\\r\\n\\tdmarc=fail (p=QUARANTINE) header.from=quar.test policy.dmarc=quarantine\\r\\n' % id) if id else ''
    s.sendmail('a@quar.test', ['alice@x.test'], (mark + 'Subject: %s\\r\\n\\r\\nbody\\r\\n' % subj).encode())
s.quit()
`;
  const p = spawn('python3', ['-c', py, String(env.port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  assert.equal(await new Promise((r) => p.once('close', r)), 0, err);
  const subjects = (msgs: string[]) => msgs.join('\n');
  const junk = await env.messages('alice@x.test', 'Junk');
  const inbox = await env.messages('alice@x.test');
  assert.match(subjects(junk), /Subject: junked/);
  assert.doesNotMatch(subjects(junk), /kept-/);
  assert.match(subjects(inbox), /Subject: kept-other/);
  assert.match(subjects(inbox), /Subject: kept-plain/);
  assert.doesNotMatch(subjects(inbox), /junked/);
  assert.ok(logs.some((l) => /msgid=unspecified: saved mail to Junk/.test(l)), logs.slice(-5).join('\n'));
});
