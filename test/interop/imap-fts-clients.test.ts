/**
 * Full-text search (docs/fts.md) with a real client, Python's imaplib: one session APPENDs,
 * COPYs and EXPUNGEs while four others search the same mailbox concurrently; every answer must
 * be a set the mailbox really had (never a message without the word), and after the writer is
 * done every session finds exactly the messages that contain it. The index file exists, grew at
 * APPEND, and `postern index rebuild USER` (the command line, against the same dovecot.conf)
 * rewrites it without changing an answer.
 * Skipped, with the reason, when python3 is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFixture } from '../harness/imapd-testkit.ts';

const PY = spawnSync('python3', ['-c', 'import imaplib'], { stdio: 'ignore' }).status === 0 ? 'python3' : undefined;
const CLI = fileURLToPath(new URL('../../src/cli/postern.ts', import.meta.url));

const PY_SCRIPT = String.raw`
import imaplib, sys, threading, base64, time
port = int(sys.argv[1])
phase = sys.argv[2]
def login():
    M = imaplib.IMAP4('127.0.0.1', port)
    M.login('alice@example.test', 'secret')
    return M
def uids(M, *q):
    typ, d = M.uid('SEARCH', *q)
    assert typ == 'OK', (typ, d)
    return set(int(x) for x in d[0].split())
def msg(i, word):
    if i % 3 == 0:
        body = base64.encodebytes(('message %d says %s in base64\r\n' % (i, word)).encode()).decode()
        return ('Subject: m%d\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n%s' % (i, body)).encode()
    return ('Subject: m%d\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nmessage %d says %s=\r\n tail\r\n' % (i, i, word)).encode()
if phase == 'load':
    M = login()
    for i in range(120):
        M.append('INBOX', None, None, msg(i, 'walrus' if i % 10 == 0 else 'otter'))
    M.create('Archive')
    M.select('INBOX')
    print('first', sorted(uids(M, 'BODY', 'walrus')))
    M.select('Archive')
    print('archive', sorted(uids(M, 'TEXT', 'walrus')))
    M.logout()
    sys.exit(0)
if phase == 'check':
    M = login()
    M.select('INBOX')
    print('inbox', sorted(uids(M, 'BODY', 'walrus')), sorted(uids(M, 'TEXT', '"says walrus"')))
    M.select('Archive')
    print('archive', sorted(uids(M, 'BODY', 'walrus')))
    M.logout()
    sys.exit(0)
# phase 'concurrent': searchers record every answer, the writer changes the mailbox
allowed = set()
lock = threading.Lock()
stop = threading.Event()
bad = []
answers = [0]
def searcher():
    S = login()
    S.select('INBOX', readonly=True)
    while not stop.is_set():
        got = uids(S, 'BODY', 'walrus')
        stop.wait(0.01)  # not time.sleep: EINVAL under test:clock (scripts/test-clock.sh)
        with lock:
            answers[0] += 1
            if not got <= allowed:
                bad.append(sorted(got - allowed))
    S.noop()
    final = uids(S, 'BODY', 'walrus') | set()
    S.logout()
    with lock:
        finals.append(sorted(final))
finals = []
W = login()
W.select('INBOX')
allowed |= uids(W, 'BODY', 'walrus')
threads = [threading.Thread(target=searcher) for _ in range(4)]
for t in threads: t.start()
for i in range(120, 180):
    word = 'walrus' if i % 4 == 0 else 'otter'
    if word == 'walrus':
        with lock: allowed.add(i + 1)   # its UID: a searcher may see it before APPEND returns
    typ, d = W.append('INBOX', None, None, msg(i, word))
    uid = int(d[0].split()[2].rstrip(b']'))
    assert uid == i + 1, d
    if i % 5 == 0:
        W.uid('COPY', str(uid), 'Archive')
    if i % 7 == 0:
        gone = sorted(uids(W, 'BODY', 'walrus'))[0]
        W.uid('STORE', str(gone), '+FLAGS', '(\\Deleted)')
        W.expunge()
stop.set()
for t in threads: t.join()
expect = sorted(uids(W, 'BODY', 'walrus'))
W.logout()
print('bad', bad)
print('answers', answers[0])
print('finals', all(f == expect for f in finals), len(expect))
`;

function py(dir: string, port: number, phase: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(PY!, [join(dir, 'fts.py'), String(port), phase], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (c) => (c === 0 ? resolve(out) : reject(new Error(`python exited ${c}: ${err}`))));
  });
}

function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (c) => resolve({ code: c ?? -1, out, err }));
  });
}

test('Python imaplib: concurrent searches while another session appends, copies and expunges; postern index rebuild', { skip: PY ? false : 'python3 with imaplib is not installed' }, async () => {
  const f = await startFixture();
  try {
    writeFileSync(join(f.dir, 'fts.py'), PY_SCRIPT);
    const first = await py(f.dir, f.port, 'load');
    assert.match(first, /^first \[1, 11, 21, 31, 41, 51, 61, 71, 81, 91, 101, 111\]$/m);
    const idx = join(f.maildir('alice@example.test'), 'postern-fts');
    const archiveIdx = join(f.maildir('alice@example.test'), '.Archive', 'postern-fts');
    assert.ok(existsSync(idx) && existsSync(archiveIdx), 'the searches made the indexes');
    const size0 = statSync(idx).size;

    const out = await py(f.dir, f.port, 'concurrent');
    assert.match(out, /^bad \[\]$/m, 'a search answered a message without the word');
    assert.match(out, /^finals True \d+$/m);
    assert.ok(Number(/^answers (\d+)/m.exec(out)![1]) >= 4);
    assert.ok(statSync(idx).size > size0, 'APPEND added to the index');

    const before = await py(f.dir, f.port, 'check');
    const r = await cli(['-c', f.dir, 'index', 'rebuild', 'alice@example.test']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^INBOX: \d+ messages indexed$/m);
    assert.match(r.out, /^Archive: \d+ messages indexed$/m);
    assert.equal(await py(f.dir, f.port, 'check'), before);
    const one = await cli(['-c', f.dir, 'index', 'rebuild', 'alice@example.test', 'Archive']);
    assert.equal(one.code, 0, one.err);
    assert.match(one.out, /^Archive: \d+ messages indexed\n$/);
    const nouser = await cli(['-c', f.dir, 'index', 'rebuild', 'nobody@example.test']);
    assert.equal(nouser.code, 67);
    const usage = await cli(['-c', f.dir, 'index']);
    assert.equal(usage.code, 64);
  } finally { await f.stop(); }
});
