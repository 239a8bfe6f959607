/**
 * The issue 19 conformance fixes seen by a real client nobody here wrote: Python's imaplib
 * (Debian's python3) against Postern's imapd with METADATA configured as Dovecot sites do.
 * It creates and selects a mailbox named `[Archive]`, lists it with a `[%` pattern, searches
 * `SUBJECT NIL` and an address in `user @ host` form, APPENDs with CRLF (the file on disk is LF,
 * `,S=` and `,W=` as Dovecot writes them), and sets and reads METADATA through imaplib's generic
 * command path (it has no METADATA methods of its own), and replaces the message with REPLACE
 * (RFC 8508) the same way. Skipped when python3 is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startFixture } from '../harness/imapd-testkit.ts';

const PY = spawnSync('python3', ['-c', 'import imaplib'], { stdio: 'ignore' }).status === 0 ? 'python3' : undefined;

const SCRIPT = String.raw`
import imaplib, sys
port = int(sys.argv[1])
imaplib.Commands['GETMETADATA'] = ('AUTH', 'SELECTED')
imaplib.Commands['SETMETADATA'] = ('AUTH', 'SELECTED')
imaplib.Commands['REPLACE'] = ('SELECTED',)
M = imaplib.IMAP4('127.0.0.1', port)
def ok(r):
    assert r[0] == 'OK', r
    return r[1]
ok(M.login('alice@example.test', 'secret'))
assert b'METADATA' in ok(M.capability())[0].split(), 'METADATA not announced'
ok(M.create('[Archive]'))
print('LIST', ok(M.list('""', '[%')))
print('SELECT', ok(M.select('[Archive]')))
ok(M.append('[Archive]', None, None, b'From: Some One <user @ example.test>\r\nSubject: the NIL report\r\n\r\nline one\r\nline two\r\n'))
ok(M.select('[Archive]'))
print('SUBJECT', ok(M.search(None, 'SUBJECT', 'NIL')))
print('FROM', ok(M.search(None, 'FROM', 'user@example.test')))
print('FETCH', ok(M.fetch('1', '(RFC822.SIZE BODY.PEEK[TEXT])')))
ok(M._simple_command('SETMETADATA', '"[Archive]"', '(/private/comment "kept for the auditors")'))
typ, data = M._simple_command('GETMETADATA', '"[Archive]"', '/private/comment')
print('META', typ, M._untagged_response(typ, data, 'METADATA')[1])
ok(M.select('[Archive]'))
M.literal = b'Subject: replaced\r\n\r\nnew text\r\n'
typ, data = M._simple_command('REPLACE', '1', '"[Archive]"')
print('REPLACE', typ, data, M.untagged_responses.get('OK'))
print('AFTER', ok(M.fetch('1:*', '(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])')))
M.logout()
`;

test('Python imaplib: [Archive] names, SUBJECT NIL, address search, LF on disk, METADATA, REPLACE', { skip: PY ? false : 'python3 with imaplib is not installed', timeout: 60_000 }, async () => {
  const f = await startFixture({ conf: 'mail_attribute_dict = file:%h/dovecot-attributes\nprotocol imap {\n  imap_metadata = yes\n}\n' });
  try {
    const script = join(f.dir, 't.py');
    writeFileSync(script, SCRIPT);
    // async: the server runs in this process, spawnSync would block it
    const p = spawn(PY!, [script, String(f.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => p.kill(), 30_000);
    const code = await new Promise<number | null>((r) => p.once('exit', r));
    clearTimeout(timer);
    assert.equal(code, 0, out);
    assert.match(out, /LIST \[b'\(\\\\HasNoChildren\) "\/" \[Archive\]'\]/);
    assert.match(out, /SUBJECT \[b'1'\]/);
    assert.match(out, /FROM \[b'1'\]/);
    assert.match(out, /RFC822.SIZE 85 BODY\[TEXT\] \{20\}', b'line one\\r\\nline two\\r\\n'/);
    assert.match(out, /META OK \[\(b'\[Archive\] \(\/private\/comment \{21\}', b'kept for the auditors'\)/);
    assert.match(out, /REPLACE OK \[b'Replace completed[^']*'\] .*APPENDUID \d+ 2\] Replacement Message ID/);
    assert.match(out, /AFTER \[\(b'1 \(UID 2 BODY\[HEADER.FIELDS \(SUBJECT\)\] \{21\}', b'Subject: replaced\\r\\n\\r\\n'\), b'\)'\]/);
    // on disk as Dovecot writes it: LF line ends, S= the LF size, W= the CRLF size
    const cur = join(f.maildir('alice@example.test'), '.[Archive]', 'cur');
    const [file] = readdirSync(cur);
    // (the APPENDed message was replaced; the replacement is saved the same way)
    assert.match(file!, /,S=28,W=31/);
    assert.equal(readFileSync(join(cur, file!), 'latin1'), 'Subject: replaced\n\nnew text\n');
  } finally { await f.stop(); }
});
