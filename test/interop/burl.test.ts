/**
 * BURL (RFC 4468) in the submission server with URLAUTH (RFC 4467) from Postern's IMAP server:
 * Python imaplib APPENDs a message and asks GENURLAUTH for a submit+alice URL; Python smtplib
 * logs in to smtpd as alice and sends `BURL <url> LAST` (raw command); smtpd fetches it with
 * URLFETCH as the submission login (submit@example.test); the message in the queue
 * is the IMAP message byte for byte (after our Received: header, in the queue's LF form).
 * Refused: BURL before AUTH (530), a URL with a wrong token (554 5.6.6), a URL for another
 * login's submit+ (554 5.6.6); an IMAP server that is down is a temporary 451 4.4.1.
 * The replies compared with Dovecot's submission service: test/interop/burl-vs-dovecot.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { startFixture } from '../harness/imapd-testkit.ts';
import { startSmtpd } from '../harness/anvil-testkit.ts';
import { freePort } from '../harness/free-port.ts';
import { directoryAuth } from '../../src/smtpd/smtpd-sasl.ts';
import { QueueFile } from '../../src/global/queue-file-reader.ts';

const PY = spawnSync('python3', ['-c', 'import imaplib, smtplib'], { stdio: 'ignore' }).status === 0 ? 'python3' : undefined;

const SCRIPT = String.raw`
import imaplib, smtplib, sys, json
imap_port, smtp_port = int(sys.argv[1]), int(sys.argv[2])
msg = open(sys.argv[3], 'rb').read()
imaplib.Commands['GENURLAUTH'] = ('AUTH', 'SELECTED')
out = {}
a = imaplib.IMAP4('127.0.0.1', imap_port)
a.login('alice@example.test', 'secret')
typ, dat = a.append('INBOX', None, None, msg)
uid = dat[0].decode().split()[2].rstrip(']')
a.select('INBOX')
uv = a.untagged_responses['UIDVALIDITY'][0].decode()
def gen(access):
    rump = 'imap://alice%40example.test@localhost/INBOX;UIDVALIDITY=' + uv + '/;UID=' + uid + ';URLAUTH=' + access
    typ, dat = a._simple_command('GENURLAUTH', '"' + rump + '"', 'INTERNAL')
    typ, dat = a._untagged_response(typ, dat, 'GENURLAUTH')
    return dat[0].decode().strip('"')
url = gen('submit+alice%40example.test')
url_bob = gen('submit+bob%40example.test')
out['url'] = url
s = smtplib.SMTP('127.0.0.1', smtp_port)
s.ehlo('client.example.test')
out['ehlo_before'] = s.esmtp_features.get('burl')
out['burl_noauth'] = list(s.docmd('BURL', url + ' LAST'))
s.login('alice@example.test', 'secret')
s.ehlo('client.example.test')
out['ehlo_after'] = s.esmtp_features.get('burl')
s.mail('alice@example.test')
s.rcpt('carol@example.test')
out['burl_bad_token'] = list(s.docmd('BURL', url[:-6] + '000000 LAST'))
out['burl_other'] = list(s.docmd('BURL', url_bob + ' LAST'))
out['burl'] = list(s.docmd('BURL', url + ' LAST'))
s.quit()
print(json.dumps(out, default=lambda b: b.decode()))
`;

test('BURL after GENURLAUTH: the message arrives byte for byte; wrong URLs are refused', { skip: PY ? false : 'python3 is not installed' }, async () => {
  const f = await startFixture({
    users: [['alice@example.test', 'secret'], ['bob@example.test', 'secret'], ['submit@example.test', 'subm1t']],
    conf: 'mail_attribute_dict = file:%h/dovecot-attributes\nimap_urlauth_host = localhost\nplugin {\n  urlauth_submit_user = submit@example.test\n}\n',
  });
  writeFileSync(join(f.dir, 'burl-pass'), 'subm1t\n', { mode: 0o600 });
  const s = await startSmtpd(`postern_burl_imap_server = 127.0.0.1:${f.port}\npostern_burl_submit_user = submit@example.test\npostern_burl_submit_password_file = ${join(f.dir, 'burl-pass')}`, { auth: () => directoryAuth(f.imapd.shared.directory) });
  try {
    const msg = Buffer.from('From: alice@example.test\r\nTo: carol@example.test\r\nSubject: sent by reference\r\nMessage-ID: <burl-1@example.test>\r\nDate: Tue, 08 Dec 2026 03:00:00 +0000\r\n\r\nfirst line\r\n.\r\n..dots stay\r\n\tlast line \xe9\r\n', 'latin1');
    writeFileSync(join(f.dir, 'msg.eml'), msg);
    writeFileSync(join(f.dir, 'c.py'), SCRIPT);
    const p = spawn(PY!, [join(f.dir, 'c.py'), String(f.port), String(s.port), join(f.dir, 'msg.eml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    assert.equal(await new Promise((r) => p.once('exit', r)), 0, err);
    const o = JSON.parse(out) as Record<string, unknown>;
    assert.equal(o.ehlo_before, '');
    assert.equal(o.ehlo_after, 'imap');
    assert.deepEqual(o.burl_noauth, [530, '5.7.0 Authentication required']);
    assert.deepEqual(o.burl_bad_token, [554, '5.6.6 IMAP URL resolution failed']);
    assert.deepEqual(o.burl_other, [554, "5.6.6 IMAP URL resolution failed: No 'submit+bob@example.test' access allowed for user alice@example.test"]);
    assert.match(String((o.burl as unknown[])[1]), /^2\.0\.0 Ok: \d+ bytes queued as \w+$/);
    assert.equal((o.burl as unknown[])[0], 250);
    const ids: string[] = [];
    for await (const id of s.queue.list('incoming')) ids.push(id);
    assert.equal(ids.length, 1);
    const qf = await QueueFile.open(s.queue.path('incoming', ids[0]!), ids[0]!);
    const content = await qf.content();
    const body = content.subarray(content.indexOf('\nFrom: ') + 1);
    assert.ok(content.subarray(0, 10).toString() === 'Received: ');
    assert.equal(body.toString('latin1'), msg.toString('latin1').replace(/\r\n/g, '\n'), 'the IMAP message byte for byte');
  } finally {
    s.close();
    await f.stop();
  }
});

test('BURL when the IMAP server is down: 451 4.4.1, the transaction stays open', { skip: PY ? false : 'python3 is not installed' }, async () => {
  const f = await startFixture({ users: [['alice@example.test', 'secret']] });
  const dead = await freePort();
  writeFileSync(join(f.dir, 'burl-pass'), 'x\n');
  const s = await startSmtpd(`postern_burl_imap_server = 127.0.0.1:${dead}\npostern_burl_submit_user = submit@example.test\npostern_burl_submit_password_file = ${join(f.dir, 'burl-pass')}`, { auth: () => directoryAuth(f.imapd.shared.directory) });
  try {
    const script = String.raw`
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
s.login('alice@example.test', 'secret')
s.mail('alice@example.test')
s.rcpt('carol@example.test')
print(s.docmd('BURL', 'imap://alice%40example.test@localhost/INBOX/;UID=1;URLAUTH=submit+alice%40example.test:internal:' + '0' * 40 + ' LAST'))
print(s.docmd('RSET'))
s.quit()
`;
    writeFileSync(join(f.dir, 'd.py'), script);
    // not spawnSync: the smtpd runs in this process
    const p = spawn(PY!, [join(f.dir, 'd.py'), String(s.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const r = { stdout: '', stderr: '' };
    p.stdout.on('data', (d) => { r.stdout += d; });
    p.stderr.on('data', (d) => { r.stderr += d; });
    assert.equal(await new Promise((res) => p.once('exit', res)), 0, r.stderr);
    assert.match(r.stdout, /^\(451, b'4\.4\.1 IMAP server unavailable: try again later'\)$/m);
    assert.match(r.stdout, /^\(250, b'2\.0\.0 Ok'\)$/m);
  } finally {
    s.close();
    await f.stop();
  }
});

test('hostile: an IMAP server that accepts and never answers gives 451 after postern_burl_timeout; other sessions go on; BDAT + BURL mix', { skip: PY ? false : 'python3 is not installed' }, async () => {
  const f = await startFixture({
    users: [['alice@example.test', 'secret'], ['submit@example.test', 'subm1t']],
    conf: 'mail_attribute_dict = file:%h/dovecot-attributes\nimap_urlauth_host = localhost\nplugin {\n  urlauth_submit_user = submit@example.test\n}\n',
  });
  const silent = createServer(() => { /* accepts, never greets */ });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  writeFileSync(join(f.dir, 'burl-pass'), 'subm1t\n', { mode: 0o600 });
  const common = `postern_burl_submit_user = submit@example.test\npostern_burl_submit_password_file = ${join(f.dir, 'burl-pass')}\npostern_burl_timeout = 2s`;
  const hang = await startSmtpd(`postern_burl_imap_server = 127.0.0.1:${(silent.address() as AddressInfo).port}\n${common}`, { auth: () => directoryAuth(f.imapd.shared.directory) });
  const good = await startSmtpd(`postern_burl_imap_server = 127.0.0.1:${f.port}\n${common}`, { auth: () => directoryAuth(f.imapd.shared.directory) });
  try {
    const msg = 'From: alice@example.test\r\nSubject: part two\r\nMessage-ID: <burl-2@example.test>\r\nDate: Tue, 08 Dec 2026 03:00:00 +0000\r\n\r\nfrom IMAP\r\n';
    writeFileSync(join(f.dir, 'msg2.eml'), msg);
    writeFileSync(join(f.dir, 'h.py'), String.raw`
import imaplib, smtplib, sys, time, threading
imap_port, hang_port, good_port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
imaplib.Commands['GENURLAUTH'] = ('AUTH', 'SELECTED')
a = imaplib.IMAP4('127.0.0.1', imap_port)
a.login('alice@example.test', 'secret')
a.append('INBOX', None, None, open(sys.argv[4], 'rb').read())
a.select('INBOX')
uv = a.untagged_responses['UIDVALIDITY'][0].decode()
typ, dat = a._simple_command('GENURLAUTH', '"imap://alice%40example.test@localhost/INBOX;UIDVALIDITY=' + uv + '/;UID=1;URLAUTH=submit+alice%40example.test"', 'INTERNAL')
url = a._untagged_response(typ, dat, 'GENURLAUTH')[1][0].decode().strip('"')
res = {}
def hung():
    s = smtplib.SMTP('127.0.0.1', hang_port)
    s.login('alice@example.test', 'secret')
    s.mail('alice@example.test'); s.rcpt('carol@example.test')
    t0 = time.time()
    res['hang'] = s.docmd('BURL', url + ' LAST')
    res['hang_secs'] = time.time() - t0
    s.quit()
t = threading.Thread(target=hung); t.start()
threading.Event().wait(0.2)  # not time.sleep: EINVAL under test:clock (scripts/test-clock.sh)
s = smtplib.SMTP('127.0.0.1', hang_port)
res['meanwhile'] = s.noop()
s.quit()
t.join()
print('hang', res['hang'], res['hang_secs'] >= 1.5)
print('meanwhile', res['meanwhile'])
s = smtplib.SMTP('127.0.0.1', good_port)
s.login('alice@example.test', 'secret')
s.mail('alice@example.test'); s.rcpt('carol@example.test')
head = b'X-Chunk: first, by BDAT\r\n'
s.send(b'BDAT ' + str(len(head)).encode() + b'\r\n' + head)
print('bdat', s.getreply())
print('burl', s.docmd('BURL', url + ' LAST'))
s.quit()
`);
    const p = spawn(PY!, [join(f.dir, 'h.py'), String(f.port), String(hang.port), String(good.port), join(f.dir, 'msg2.eml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    assert.equal(await new Promise((r) => p.once('exit', r)), 0, err);
    assert.match(out, /^hang \(451, b'4\.4\.1 IMAP server unavailable: try again later'\) True$/m);
    assert.match(out, /^meanwhile \(250, b'2\.0\.0 Ok'\)$/m);
    assert.match(out, /^bdat \(250, b'2\.0\.0 Ok: 25 bytes'\)$/m);
    assert.match(out, /^burl \(250, b'2\.0\.0 Ok: \d+ bytes queued as \w+'\)$/m);
    const ids: string[] = [];
    for await (const id of good.queue.list('incoming')) ids.push(id);
    assert.equal(ids.length, 1);
    const content = (await (await QueueFile.open(good.queue.path('incoming', ids[0]!), ids[0]!)).content()).toString('latin1');
    assert.ok(content.endsWith(`\nX-Chunk: first, by BDAT\n${msg.replace(/\r\n/g, '\n')}`), content);
  } finally {
    hang.close();
    good.close();
    silent.close();
    await f.stop();
  }
});
