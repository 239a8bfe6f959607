/**
 * URLAUTH (RFC 4467) with Python imaplib as the client: GENURLAUTH, URLFETCH by the owner and by
 * another user per access identifier, the message byte for byte, NIL for a wrong token, an
 * expired URL, a reset key, another user's access identifier; GENURLAUTH for another user is NO.
 * Checked per the RFC (Dovecot 2.3's imap-urlauth needs its own imap-urlauth service and worker
 * processes; not compared here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startFixture } from '../harness/imapd-testkit.ts';

const PY = spawnSync('python3', ['-c', 'import imaplib'], { stdio: 'ignore' }).status === 0 ? 'python3' : undefined;

const SCRIPT = String.raw`
import imaplib, sys, json
port = int(sys.argv[1])
msg = open(sys.argv[2], 'rb').read()
for c in ('GENURLAUTH', 'URLFETCH', 'RESETKEY'):
    imaplib.Commands[c] = ('AUTH', 'SELECTED')
out = {}
def gen(m, url):
    typ, dat = m._simple_command('GENURLAUTH', '"%s"' % url, 'INTERNAL')
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
out['gen_other'] = gen(a, 'imap://bob%40example.test@localhost/INBOX/;UID=1;URLAUTH=authuser')
out['owner_submit'] = fetch(a, out['gen_submit'][1])
url = out['gen_submit'][1]
out['wrong_token'] = fetch(a, url[:-4] + ('0000' if url[-4:] != '0000' else '1111'))
out['expired'] = fetch(a, out['gen_expired'][1])
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
    users: [['alice@example.test', 'secret'], ['bob@example.test', 'secret']],
    conf: 'mail_attribute_dict = file:%h/dovecot-attributes\nimap_urlauth_host = localhost\n',
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
    assert.match(url, /^imap:\/\/alice%40example\.test@localhost\/INBOX;UIDVALIDITY=\d+\/;UID=1;URLAUTH=submit\+alice%40example\.test:internal:[0-9a-f]{40}$/);
    assert.equal(o.owner_submit, msg.toString('latin1'), 'the message byte for byte');
    assert.equal(o.bob_authuser, msg.toString('latin1'));
    assert.equal(o.bob_user_bob, msg.toString('latin1'));
    for (const k of ['wrong_token', 'expired', 'bob_submit_alice', 'after_reset']) assert.match(o[k] as string, /^"imap:[^"]*" NIL$/, k);
    assert.equal((o.gen_other as string[])[0], 'NO');
    assert.equal(o.resetkey, 'OK');
    assert.equal(o.resetall, 'OK');
    // the key lives where Dovecot's imap-urlauth keeps it: a private mailbox attribute
    const attrs = readFileSync(join(f.dir, 'mail', 'example.test', 'alice', 'dovecot-attributes'), 'utf8');
    assert.doesNotMatch(attrs, /imap-urlauth/, 'RESETKEY without a mailbox removed every key');
  } finally {
    await f.stop();
  }
});
