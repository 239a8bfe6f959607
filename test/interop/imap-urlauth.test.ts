/**
 * URLAUTH (RFC 4467) with Python imaplib as the client: GENURLAUTH, URLFETCH by the owner and by
 * another user per access identifier, the message byte for byte, NIL for a wrong token, an
 * expired URL, a reset key, another user's access identifier; GENURLAUTH for another user is NO.
 * Against real Dovecot 2.3 on the same Maildir and attribute file: the same token for the same
 * rump URL, the same URLFETCH answers. (Fetching as ANOTHER user cannot be compared: Dovecot
 * 2.3.19's imap-urlauth-login aborts on a plaintext connection — "Panic: sasl_server_auth_begin:
 * assertion failed" — so the cross-user cases are checked per the RFC only.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startFixture } from '../harness/imapd-testkit.ts';
import { RealDovecot } from '../harness/real-dovecot.ts';

const PY = spawnSync('python3', ['-c', 'import imaplib'], { stdio: 'ignore' }).status === 0 ? 'python3' : undefined;

const SCRIPT = String.raw`
import imaplib, sys, json
port = int(sys.argv[1])
msg = open(sys.argv[2], 'rb').read()
for c in ('GENURLAUTH', 'URLFETCH', 'RESETKEY'):
    imaplib.Commands[c] = ('AUTH', 'SELECTED')
out = {}
def gen(m, url):
    try:
        typ, dat = m._simple_command('GENURLAUTH', '"%s"' % url, 'INTERNAL')
    except imaplib.IMAP4.error as e:
        return 'BAD', str(e)
    typ, dat = m._untagged_response(typ, dat, 'GENURLAUTH')
    return typ, (dat[0].decode().strip('"') if typ == 'OK' else dat[0].decode())
def fetch(m, url):
    typ, dat = m._simple_command('URLFETCH', '"%s"' % url)
    typ, dat = m._untagged_response(typ, dat, 'URLFETCH')
    d = dat[0]
    if isinstance(d, tuple):
        return d[1].decode('latin1')
    return d.decode()
a = imaplib.IMAP4('127.0.0.1', port)
a.login('alice@example.test', 'secret')
sub = imaplib.IMAP4('127.0.0.1', port)
sub.login('submit@example.test', 'secret')
out['caps'] = a.capability()[1][0].decode()
typ, dat = a.append('INBOX', None, None, msg)
uid = dat[0].decode().split()[2].rstrip(']')
typ, dat = a.select('INBOX')
uv = a.untagged_responses['UIDVALIDITY'][0].decode()
base = 'imap://alice%40example.test@localhost/INBOX;UIDVALIDITY=' + uv + '/;UID=' + uid
out['gen_submit'] = gen(a, base + ';URLAUTH=submit+alice%40example.test')
out['gen_user_bob'] = gen(a, base + ';URLAUTH=user+bob%40example.test')
out['gen_authuser'] = gen(a, base + ';URLAUTH=authuser')
out['gen_expired'] = gen(a, base + ';EXPIRE=2001-01-01T00:00:00Z;URLAUTH=authuser')
import datetime, threading
soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)).strftime('%Y-%m-%dT%H:%M:%SZ')
out['gen_soon'] = gen(a, base + ';EXPIRE=' + soon + ';URLAUTH=authuser')
out['gen_other'] = gen(a, 'imap://bob%40example.test@localhost/INBOX/;UID=1;URLAUTH=authuser')
out['owner_submit'] = fetch(a, out['gen_submit'][1])
out['submit_user_fetch'] = fetch(sub, out['gen_submit'][1])
url = out['gen_submit'][1]
out['wrong_token'] = fetch(a, url[:-4] + ('0000' if url[-4:] != '0000' else '1111'))
threading.Event().wait(3)
out['expired'] = fetch(a, out['gen_soon'][1])
b = imaplib.IMAP4('127.0.0.1', port)
b.login('bob@example.test', 'secret')
out['bob_submit_alice'] = fetch(b, out['gen_submit'][1])
out['bob_user_bob'] = fetch(b, out['gen_user_bob'][1])
out['bob_authuser'] = fetch(b, out['gen_authuser'][1])
typ, dat = a._simple_command('RESETKEY', 'INBOX', 'INTERNAL')
out['resetkey'] = typ
out['after_reset'] = fetch(b, out['gen_authuser'][1])
typ, dat = a._simple_command('RESETKEY')
out['resetall'] = typ
print(json.dumps(out))
`;

test('URLAUTH: GENURLAUTH / URLFETCH / RESETKEY with Python imaplib', { skip: PY ? false : 'python3 is not installed' }, async () => {
  const f = await startFixture({
    users: [['alice@example.test', 'secret'], ['bob@example.test', 'secret'], ['submit@example.test', 'secret']],
    conf: 'mail_attribute_dict = file:%h/dovecot-attributes\nimap_urlauth_host = localhost\nplugin {\n  urlauth_submit_user = submit@example.test\n}\n',
  });
  try {
    const msg = Buffer.from('From: alice@example.test\r\nTo: carol@example.test\r\nSubject: burl me\r\n\r\nline one\r\n\tline two \xe9\r\n', 'latin1');
    writeFileSync(join(f.dir, 'msg.eml'), msg);
    writeFileSync(join(f.dir, 'c.py'), SCRIPT);
    const p = spawn(PY!, [join(f.dir, 'c.py'), String(f.port), join(f.dir, 'msg.eml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const code = await new Promise((r) => p.once('exit', r));
    assert.equal(code, 0, err);
    const o = JSON.parse(out) as Record<string, unknown>;
    assert.match(o.caps as string, /\bURLAUTH\b/);
    const [typ, url] = o.gen_submit as [string, string];
    assert.equal(typ, "OK", JSON.stringify(o));
    assert.match(url, /^imap:\/\/alice%40example\.test@localhost\/INBOX;UIDVALIDITY=\d+\/;UID=1;URLAUTH=submit\+alice%40example\.test:internal:01[0-9a-f]{40}$/);
    assert.equal(o.submit_user_fetch, msg.toString('latin1'), 'the message byte for byte, to the submission login');
    assert.equal(o.bob_authuser, msg.toString('latin1'));
    assert.equal(o.bob_user_bob, msg.toString('latin1'));
    for (const k of ['owner_submit', 'wrong_token', 'expired', 'bob_submit_alice', 'after_reset']) assert.match(o[k] as string, /^"imap:[^"]*" NIL$/, k);
    assert.equal((o.gen_expired as string[])[0], 'BAD', 'already expired: refused at GENURLAUTH, as Dovecot');
    assert.match((o.gen_expired as string[])[1], /Error in IMAP command GENURLAUTH: URLAUTH has already expired/);
    assert.equal((o.gen_other as string[])[0], 'BAD');
    assert.match((o.gen_other as string[])[1], /Error in IMAP command GENURLAUTH: Not permitted to generate URLAUTH for user bob@example\.test/);
    assert.equal(o.resetkey, 'OK');
    assert.equal(o.resetall, 'OK');
    // the key lives where Dovecot's imap-urlauth keeps it: a private mailbox attribute
    const attrs = readFileSync(join(f.dir, 'mail', 'example.test', 'alice', 'dovecot-attributes'), 'utf8');
    assert.doesNotMatch(attrs, /imap-urlauth/, 'RESETKEY without a mailbox removed every key');
  } finally {
    await f.stop();
  }
});

const DIFF_SCRIPT = String.raw`
import imaplib, sys, json
for c in ('GENURLAUTH', 'URLFETCH'):
    imaplib.Commands[c] = ('AUTH', 'SELECTED')
port, mode = int(sys.argv[1]), sys.argv[2]
out = {}
def raw(m, cmd, *args):
    typ, dat = m._simple_command(cmd, *args)
    return typ, m.untagged_responses.pop(cmd, None)
a = imaplib.IMAP4('127.0.0.1', port)
a.login('alice@example.test', 'secret')
if mode == 'dovecot':
    a.append('INBOX', None, None, open(sys.argv[3], 'rb').read())
a.select('INBOX')
uv = a.untagged_responses['UIDVALIDITY'][0].decode()
rump = 'imap://alice%40example.test@localhost/INBOX;UIDVALIDITY=' + uv + '/;UID=1;URLAUTH=submit+alice%40example.test'
typ, dat = raw(a, 'GENURLAUTH', '"' + rump + '"', 'INTERNAL')
out['gen'] = [typ, dat[0].decode()]
url = dat[0].decode().strip('"')
typ, dat = raw(a, 'URLFETCH', '"' + url + '"')
out['fetch'] = [typ, [d if isinstance(d, bytes) else list(d) for d in dat]]
typ, dat = raw(a, 'URLFETCH', '"' + url[:-4] + '0000"')
out['wrong'] = [typ, dat]
typ, dat = raw(a, 'URLFETCH', 'imap://nonsense')
out['garbage'] = [typ, dat]
for sec in ('1', 'HEADER', 'TEXT'):
    r2 = 'imap://alice%40example.test@localhost/INBOX;UIDVALIDITY=' + uv + '/;UID=1/;SECTION=' + sec + ';URLAUTH=authuser'
    typ, dat = raw(a, 'GENURLAUTH', '"' + r2 + '"', 'INTERNAL')
    u2 = dat[0].decode().strip('"')
    typ, dat = raw(a, 'URLFETCH', '"' + u2 + '"')
    out['section_' + sec] = [typ, [d if isinstance(d, bytes) else list(d) for d in dat]]
a.logout()
print(json.dumps(out, default=lambda b: b.decode('latin1')))
`;

test('URLAUTH vs Dovecot 2.3 on the same files: the same key, the same token, the same URLFETCH answers', { skip: !PY ? 'python3 is not installed' : RealDovecot.unavailable() }, async () => {
  const dc = await RealDovecot.start({
    protocols: ['imap'], users: [{ user: 'alice@example.test', pass: 'secret' }],
    extraConf: 'imap_urlauth_host = localhost\nmail_attribute_dict = file:%h/dovecot-attributes\n',
  });
  const f = await startFixture({ users: [['alice@example.test', 'secret']], conf: 'mail_attribute_dict = file:%h/dovecot-attributes\nimap_urlauth_host = localhost\n' });
  try {
    writeFileSync(join(f.dir, 'msg.eml'), 'From: alice@example.test\r\nSubject: by reference\r\n\r\nhello\r\n');
    writeFileSync(join(f.dir, 'd.py'), DIFF_SCRIPT);
    const run = async (port: number, mode: string) => {
      const p = spawn(PY!, [join(f.dir, 'd.py'), String(port), mode, join(f.dir, 'msg.eml')], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      p.stdout.on('data', (d) => { out += d; });
      p.stderr.on('data', (d) => { err += d; });
      assert.equal(await new Promise((r) => p.once('exit', r)), 0, err);
      return JSON.parse(out) as Record<string, unknown>;
    };
    const d = await run(dc.ports.imap!, 'dovecot');
    // Postern opens the Maildir and attribute file Dovecot wrote (same mailbox GUID, same key)
    const home = join(f.dir, 'mail', 'example.test', 'alice');
    rmSync(join(home, 'Maildir'), { recursive: true, force: true });
    cpSync(dc.maildir('alice@example.test'), join(home, 'Maildir'), { recursive: true });
    cpSync(join(dc.maildir('alice@example.test'), 'dovecot-attributes'), join(home, 'dovecot-attributes'));
    const p = await run(f.port, 'postern');
    assert.match(String((d.gen as string[])[1]), /:internal:01[0-9a-f]{40}"$/);
    assert.deepEqual(p.gen, d.gen, 'the same token from the same key');
    assert.deepEqual(p.fetch, d.fetch, 'the same message');
    assert.deepEqual(p.wrong, d.wrong);
    assert.deepEqual(p.garbage, d.garbage);
    for (const k of ['section_1', 'section_HEADER', 'section_TEXT']) assert.deepEqual(p[k], d[k], k);
  } finally {
    await f.stop();
    await dc.stop();
  }
});

test('hostile URLFETCH / GENURLAUTH input: over-long URLs, too many URLs, NUL, non-URLs; the server keeps serving', async () => {
  const f = await startFixture({ users: [['alice@example.test', 'secret']], conf: 'mail_attribute_dict = file:%h/dovecot-attributes\nimap_urlauth_host = localhost\n' });
  try {
    const { LineChat } = await import('../harness/line-chat.ts');
    const c = await LineChat.open(f.port, { protocol: 'imap' });
    await c.line();
    assert.match(await c.cmd('a LOGIN alice@example.test secret'), /^a OK/);
    const long = `imap://alice%40example.test@localhost/INBOX/;UID=1;URLAUTH=authuser:internal:01${'a'.repeat(9000)}`;
    c.send(`b URLFETCH {${long.length}+}\r\n${long}\r\n`);
    assert.match(await c.line(), /^\* URLFETCH "imap:.*" NIL$|^\* URLFETCH imap:.* NIL$/);
    let next = await c.line();
    if (next.startsWith('* NO ')) next = await c.line(); // Dovecot's reason: not a full URLAUTH URL
    assert.match(next, /^b OK URLFETCH completed/);
    const many = Array.from({ length: 101 }, () => 'imap://x').join(' ');
    assert.match(await c.cmd(`c URLFETCH ${many}`), /^c BAD/);
    assert.match(await c.cmd('d GENURLAUTH "imap://alice%40example.test@localhost/INBOX/;UID=1;URLAUTH=authuser" PLAIN'), /^d BAD/);
    assert.match(await c.cmd('e GENURLAUTH "not a url;URLAUTH=authuser" INTERNAL'), /^e BAD/);
    assert.match(await c.cmd('f GENURLAUTH "imap://alice%40example.test@localhost/NoSuchBox/;UID=1;URLAUTH=anonymous" INTERNAL'), /^f NO \[NONEXISTENT\]/);
    assert.match(await c.cmd('g URLFETCH "imap://alice%40example.test@localhost/INBOX/;UID=99;URLAUTH=anonymous:internal:0100"'), /NIL/);
    await c.line();
    assert.match(await c.cmd('h RESETKEY NoSuchBox'), /^h NO \[NONEXISTENT\]/);
    assert.match(await c.cmd('i NOOP'), /^i OK/);
    c.close();
  } finally {
    await f.stop();
  }
});
