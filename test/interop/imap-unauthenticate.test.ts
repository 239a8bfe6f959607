/**
 * UNAUTHENTICATE (RFC 8437), which Dovecot 2.3 does not have, from a real client nobody here
 * wrote: Python's imaplib (Debian's python3) against Postern's imapd. alice logs in, selects
 * INBOX, marks a message \Deleted, UNAUTHENTICATEs: the message is not expunged (RFC 8437 §3),
 * CAPABILITY is the pre-login one, SELECT is refused, bob logs in on the same connection and
 * sees only his own mail. 50 login/UNAUTHENTICATE rounds under mail_max_userip_connections = 2
 * leave the user+IP count where it was. Hostile: arguments, UNAUTHENTICATE before login, NUL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startFixture } from '../harness/imapd-testkit.ts';

const PY = spawnSync('python3', ['-c', 'import imaplib'], { stdio: 'ignore' }).status === 0 ? 'python3' : undefined;

const SCRIPT = String.raw`
import imaplib, sys
port = int(sys.argv[1])
imaplib.Commands['UNAUTHENTICATE'] = ('AUTH', 'SELECTED')
M = imaplib.IMAP4('127.0.0.1', port)
def raw(name, *args):
    try:
        return M._simple_command(name, *args)
    except M.error as e:
        return ('BAD', [str(e).encode()])
print('PRECAP', M.capabilities)
M.literal = None
print('UNAUTH0', raw('UNAUTHENTICATE'))
M.login('alice@example.test', 'secret')
print('CAP', M.capability())
M.append('INBOX', None, None, b'Subject: alice mail\r\n\r\nfor alice\r\n')
M.select('INBOX')
M.store('1', '+FLAGS', '(\\Deleted)')
print('UNAUTHARGS', raw('UNAUTHENTICATE', 'now'))
print('UNAUTHNUL', raw('UNAUTHENTICATE', '{1+}\r\n\x00'))
print('UNAUTH', raw('UNAUTHENTICATE'))
M.state = 'NONAUTH'
print('CAPAFTER', M.capability())
M.state = 'SELECTED'
print('SELECTAFTER', raw('SELECT', 'INBOX'))
M.state = 'NONAUTH'
M.login('bob@example.test', 'secret2')
M.select('INBOX')
print('BOBSEARCH', M.search(None, 'ALL'))
raw('UNAUTHENTICATE')
M.state = 'NONAUTH'
M.login('alice@example.test', 'secret')
print('ALICE', M.select('INBOX'), M.fetch('1', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])'))
for i in range(50):
    assert raw('UNAUTHENTICATE')[0] == 'OK'
    M.state = 'NONAUTH'
    M.login('alice@example.test', 'secret')
# mail_max_userip_connections = 2: one more connection still fits
N = imaplib.IMAP4('127.0.0.1', port)
print('SECOND', N.login('alice@example.test', 'secret'))
N.logout()
print('NOOP', M.noop())
M.logout()
`;

test('Python imaplib: UNAUTHENTICATE, then a login as another user on the same connection', { skip: PY ? false : 'python3 with imaplib is not installed', timeout: 60_000 }, async () => {
  const f = await startFixture({ users: [['alice@example.test', 'secret'], ['bob@example.test', 'secret2']], conf: 'mail_max_userip_connections = 2' });
  try {
    const script = join(f.dir, 't.py');
    writeFileSync(script, SCRIPT);
    const p = spawn(PY!, [script, String(f.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => p.kill(), 45_000);
    const code = await new Promise<number | null>((r) => p.once('exit', r));
    clearTimeout(timer);
    assert.equal(code, 0, out);
    const line = (l: string): string => out.split('\n').find((x) => x.startsWith(l + ' ')) ?? assert.fail(`no ${l} in\n${out}`);
    assert.ok(!line('PRECAP').includes('UNAUTHENTICATE'), 'not announced before login');
    assert.match(line('CAP'), /UNAUTHENTICATE/);
    assert.match(line('UNAUTH0'), /^UNAUTH0 \('BAD', \[b'command UNAUTHENTICATE illegal in state NONAUTH/); // imaplib refuses locally
    assert.match(line('UNAUTHARGS'), /^UNAUTHARGS \('BAD', .*Invalid arguments/);
    assert.match(line('UNAUTHNUL'), /^UNAUTHNUL \('BAD'/);
    assert.match(line('UNAUTH'), /^UNAUTH \('OK', \[b'Unauthenticate completed/);
    assert.match(line('CAPAFTER'), /AUTH=PLAIN/);
    assert.ok(!line('CAPAFTER').includes('UNAUTHENTICATE'), line('CAPAFTER'));
    assert.match(line('SELECTAFTER'), /^SELECTAFTER \('BAD'/);
    assert.match(line('BOBSEARCH'), /^BOBSEARCH \('OK', \[b''\]\)/);
    // not expunged, \Deleted kept
    assert.match(line('ALICE'), /\\\\Deleted.*Subject: alice mail/);
    assert.match(line('SECOND'), /^SECOND \('OK'/);
    assert.match(line('NOOP'), /^NOOP \('OK'/);
  } finally { await f.stop(); }
});
