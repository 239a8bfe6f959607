/**
 * CONTEXT=SORT (RFC 5267 §4 for SORT), which Dovecot 2.3 does not offer, from a real client
 * nobody here wrote: Python's imaplib (Debian's python3) with raw SORT commands, two sessions.
 *  - RETURN (PARTIAL lo:hi): the lo-th to hi-th messages in SORT order;
 *  - RETURN (UPDATE ALL): another session's APPEND, EXPUNGE and STORE are pushed at the next
 *    NOOP as `ADDTO (pos uid)` / `REMOVEFROM (pos uid)` with the real positions in the sorted
 *    result; applying them to the first answer gives what a new SORT answers;
 *  - CANCELUPDATE stops the pushes; hostile RETURN options (UPDATE twice, PARTIAL 0:1, PARTIAL
 *    with ALL, SAVE, unknown ones, 12 live updates) are refused and the session goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startFixture } from '../harness/imapd-testkit.ts';

const PY = spawnSync('python3', ['-c', 'import imaplib'], { stdio: 'ignore' }).status === 0 ? 'python3' : undefined;

const SCRIPT = String.raw`
import imaplib, sys, re
port = int(sys.argv[1])
imaplib.Commands['CANCELUPDATE'] = ('SELECTED',)
def login():
    M = imaplib.IMAP4('127.0.0.1', port)
    M.login('alice@example.test', 'secret')
    return M
A = login()
B = login()
for subj in ['c', 'a', 'e']:
    B.append('INBOX', None, None, ('Subject: %s\r\n\r\nbody %s\r\n' % (subj, subj)).encode())
A.select('INBOX')
B.select('INBOX')
def raw(M, *args):
    try:
        typ, data = M._simple_command(*args)
    except M.error as e:
        return ('BAD', str(e))
    return (typ, M.untagged_responses.pop('ESEARCH', []), M.untagged_responses.pop('NO', []))
print('CAP', b'CONTEXT=SORT' in A.capability()[1][0].split())
print('PARTIAL', raw(A, 'SORT', 'RETURN', '(PARTIAL 1:2)', '(SUBJECT)', 'UTF-8', 'ALL'))
print('PARTIAL2', raw(A, 'UID', 'SORT', 'RETURN', '(PARTIAL 2:9 COUNT)', '(REVERSE SUBJECT)', 'UTF-8', 'ALL'))
print('START', raw(A, 'UID', 'SORT', 'RETURN', '(UPDATE ALL)', '(SUBJECT)', 'UTF-8', 'UNSEEN'))
B.append('INBOX', None, None, b'Subject: b\r\n\r\nbody b\r\n')
B.append('INBOX', None, None, b'Subject: d\r\n\r\nbody d\r\n')
print('ADD', raw(A, 'NOOP'))
B.store('1', '+FLAGS', '(\\Seen)')
print('SEEN', raw(A, 'NOOP'))
B.store('3', '+FLAGS', '(\\Deleted)')
B.expunge()
print('EXPUNGE', raw(A, 'NOOP'))
print('NOW', raw(A, 'UID', 'SORT', '(SUBJECT)', 'UTF-8', 'UNSEEN'), A.untagged_responses.pop('SORT', None))
print('SEQUPD', raw(A, 'SORT', 'RETURN', '(UPDATE)', '(REVERSE SUBJECT)', 'UTF-8', 'ALL'))
B.append('INBOX', None, None, b'Subject: bb\r\n\r\nbody\r\n')
print('SEQADD', raw(A, 'NOOP'))
print('CANCEL', raw(A, 'CANCELUPDATE', '"%s"' % 'dummy'))
tags = []
for l in ('START', 'SEQUPD'):
    pass
print('HOSTILE1', raw(A, 'SORT', 'RETURN', '(UPDATE UPDATE)', '(SUBJECT)', 'UTF-8', 'ALL'))
print('HOSTILE2', raw(A, 'SORT', 'RETURN', '(PARTIAL 0:1)', '(SUBJECT)', 'UTF-8', 'ALL'))
print('HOSTILE3', raw(A, 'SORT', 'RETURN', '(PARTIAL 1:2 ALL)', '(SUBJECT)', 'UTF-8', 'ALL'))
print('HOSTILE4', raw(A, 'SORT', 'RETURN', '(SAVE)', '(SUBJECT)', 'UTF-8', 'ALL'))
print('HOSTILE5', raw(A, 'SORT', 'RETURN', '(' + 'CONTEXT ' * 3000 + 'ALL)', '(SUBJECT)', 'UTF-8', 'ALL'))
print('HOSTILE6', raw(A, 'SORT', 'RETURN', '(PARTIAL 1:99999999999)', '(SUBJECT)', 'UTF-8', 'ALL'))
for i in range(12):
    r = raw(A, 'SORT', 'RETURN', '(UPDATE)', '(SUBJECT)', 'UTF-8', 'ALL')
print('MANY', r)
print('NOOP', raw(A, 'NOOP')[0])
A.logout(); B.logout()
`;

test('Python imaplib: CONTEXT=SORT PARTIAL and UPDATE with positions', { skip: PY ? false : 'python3 with imaplib is not installed', timeout: 60_000 }, async () => {
  const f = await startFixture();
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
    if (process.env.SHOW) console.log(out);
    assert.equal(code, 0, out);
    const line = (l: string): string => out.split('\n').find((x) => x.startsWith(l + ' ')) ?? assert.fail(`no ${l} in\n${out}`);
    assert.equal(line('CAP'), 'CAP True');
    // subjects: 1 c, 2 a, 3 e → sorted a(2) c(1) e(3)
    assert.match(line('PARTIAL'), /PARTIAL \(1:2 2,1\)/);
    assert.match(line('PARTIAL2'), /UID PARTIAL \(2:9 1:2\) COUNT 3/);
    assert.match(line('START'), /TAG "[^"]+"\) UID ALL 2,1,3'/);
    // b (uid 4) and d (uid 5) arrive: order a b c d e → positions 2 and 4
    assert.match(line('ADD'), /UID ADDTO \(2 4 4 5\)'/);
    // uid 1 (c) seen: leaves the UNSEEN result at position 3
    assert.match(line('SEEN'), /UID REMOVEFROM \(3 1\)'/);
    // uid 3 (e) expunged: position 4 of a b d e
    assert.match(line('EXPUNGE'), /UID REMOVEFROM \(4 3\)'/);
    assert.match(line('NOW'), /\[b'2 4 5'\]/);
    // sequence numbers now: 1 a(2) 2 b(4) 3 d(5) 4 c(1); REVERSE SUBJECT: d b a... c? → d(3) c(4) b(2) a(1)
    assert.match(line('SEQUPD'), /'OK'/);
    // bb arrives as message 5: reverse order d c bb b a → position 3
    assert.match(line('SEQADD'), /ADDTO \(3 5\)'/);
    assert.match(line('CANCEL'), /^CANCEL \('NO'/);
    for (const h of ['HOSTILE1', 'HOSTILE2', 'HOSTILE3', 'HOSTILE4', 'HOSTILE6']) assert.match(line(h), new RegExp(`^${h} \\('BAD'`), line(h));
    assert.match(line('HOSTILE5'), /'OK'/);
    assert.match(line('MANY'), /NOUPDATE/);
    assert.equal(line('NOOP'), 'NOOP OK');
  } finally { await f.stop(); }
});
