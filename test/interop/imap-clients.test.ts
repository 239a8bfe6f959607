/**
 * imapd against real IMAP clients nobody here wrote: Python's imaplib (login, select, append
 * with a literal, fetch, store, search CHARSET UTF-8, copy, move, expunge, IDLE over its raw
 * socket), imapflow (npm, the library behind many Node mail apps: CONDSTORE, QRESYNC-aware
 * sync, IDLE, append, move) and Debian's isync (mbsync) synchronising a Maildir both ways.
 * Each is skipped with the reason when the client is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startFixture } from '../harness/imapd-testkit.ts';

const PY = spawnSync('python3', ['-c', 'import imaplib'], { stdio: 'ignore' }).status === 0 ? 'python3' : undefined;
const MBSYNC = existsSync('/usr/bin/mbsync') ? '/usr/bin/mbsync' : undefined;
const IMAPFLOW = existsSync(new URL('../../node_modules/imapflow/package.json', import.meta.url)) ? true : undefined;

const PY_SCRIPT = String.raw`
import imaplib, sys, time, socket
port = int(sys.argv[1])
M = imaplib.IMAP4('127.0.0.1', port)
out = []
def chk(r):
    typ, data = r
    assert typ == 'OK', (typ, data)
    return data
chk(M.login('alice@example.test', 'secret'))
msg = b'From: a@example.test\r\nSubject: caf\xc3\xa9 test\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n'
d = chk(M.append('INBOX', '(\\Flagged)', imaplib.Time2Internaldate(time.time()), msg))
out.append('append ' + d[0].decode())
d = chk(M.select('INBOX'))
out.append('select ' + d[0].decode())
d = chk(M.fetch('1', '(FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])'))
out.append('fetch ' + repr(d[0][0].decode()) + ' ' + repr(d[0][1]))
d = chk(M.fetch('1', '(BODY[])'))
out.append('body ' + str(d[0][1] == msg))
chk(M.store('1', '+FLAGS', '(\\Answered)'))
d = chk(M.fetch('1', '(FLAGS)'))
out.append('flags ' + d[0].decode())
M._encoding = 'utf-8'
typ, d = M.uid('SEARCH', 'CHARSET', 'UTF-8', 'BODY', '"Grüße"'.encode('utf-8'))
out.append('search ' + typ + ' ' + d[0].decode())
typ, d = M.search('UTF-8', 'SUBJECT', '"café"'.encode('utf-8'))
out.append('search2 ' + typ + ' ' + d[0].decode())
chk(M.create('Archive'))
d = chk(M.copy('1', 'Archive'))
out.append('copy ok')
typ, d = M.uid('MOVE', '1', 'Trash')
out.append('move ' + typ)
chk(M.append('INBOX', None, None, b'Subject: x\r\n\r\ny\r\n'))
chk(M.store('1', '+FLAGS', '(\\Deleted)'))
typ, d = M.expunge()
out.append('expunge ' + typ + ' ' + repr(d))
# IDLE through the raw socket
tag = M._new_tag()
M.send(tag + b' IDLE\r\n')
line = M.readline()
out.append('idle ' + line.decode().strip())
sys.stdout.write('\n'.join(out) + '\n')
sys.stdout.flush()
# wait for the test to deliver a message
sock = M.sock
sock.settimeout(5)
line = M.readline()
out2 = 'pushed ' + line.decode().strip()
M.send(b'DONE\r\n')
while True:
    l = M.readline()
    if l.startswith(tag):
        break
sys.stdout.write(out2 + ' ' + l.decode().strip() + '\n')
M.logout()
`;

test('Python imaplib', { skip: PY ? false : 'python3 with imaplib is not installed' }, async () => {
  const f = await startFixture();
  try {
    writeFileSync(join(f.dir, 'client.py'), PY_SCRIPT);
    const p = spawn(PY!, [join(f.dir, 'client.py'), String(f.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const deadline = Date.now() + 10_000;
    while (!/^idle /m.test(out) && Date.now() < deadline && p.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    assert.match(out, /^idle \+ idling$/m, err);
    const rec = await f.imapd.shared.directory.lookup('alice@example.test');
    const u = await f.imapd.shared.store.forUser(rec!);
    await u.deliver('INBOX', Buffer.from('Subject: pushed\r\n\r\nhi\r\n'));
    const code = await new Promise<number | null>((r) => p.once('exit', r));
    assert.equal(code, 0, err);
    assert.match(out, /^append \[APPENDUID \d+ 1\] Append completed/m);
    assert.match(out, /^select 1$/m);
    assert.match(out, /^fetch '1 \(FLAGS \(\\\\Flagged \\\\Recent\) RFC822.SIZE \d+ BODY\[HEADER.FIELDS \(SUBJECT\)\] \{\d+\}' b'Subject: caf\\xc3\\xa9 test\\r\\n\\r\\n'$/m);
    assert.match(out, /^body True$/m);
    assert.match(out, /^flags 1 \(FLAGS \(\\Answered \\Flagged \\Seen \\Recent\)\)$/m);   // BODY[] set \Seen
    assert.match(out, /^search OK 1$/m);
    assert.match(out, /^search2 OK 1$/m);
    assert.match(out, /^move OK$/m);
    // imaplib returns every EXPUNGE since the last call: the MOVE's and the EXPUNGE's
    assert.match(out, /^expunge OK \[b'1', b'1'\]$/m);
    assert.match(out, /^pushed \* 1 EXISTS [A-Z]+\d+ OK Idle completed/m);
    await u.close();
  } finally { await f.stop(); }
});

test('imapflow (npm)', { skip: IMAPFLOW ? false : 'imapflow is not installed (npm install --save-dev imapflow)' }, async () => {
  const f = await startFixture();
  try {
    const { ImapFlow } = await import('imapflow');
    const client = new ImapFlow({ host: '127.0.0.1', port: f.port, secure: false, auth: { user: 'alice@example.test', pass: 'secret' }, logger: false, disableAutoIdle: false });
    await client.connect();
    assert.ok(client.capabilities.has('CONDSTORE') && client.capabilities.has('MOVE'));
    const r = await client.append('INBOX', 'From: x@example.test\r\nSubject: flow\r\n\r\nbody text\r\n', ['\\Seen']);
    assert.ok(r && r.uid === 1);
    const lock = await client.getMailboxLock('INBOX');
    try {
      const exists = new Promise<number>((resolve) => client.on('exists', (d: { count: number }) => resolve(d.count)));
      const m = await client.fetchOne('1', { envelope: true, flags: true, source: true, bodyStructure: true, uid: true });
      assert.ok(m);
      assert.equal(m.envelope?.subject, 'flow');
      assert.ok(m.flags?.has('\\Seen'));
      assert.match(String(m.source), /body text/);
      assert.equal(m.bodyStructure?.type, 'text/plain');
      await client.messageFlagsAdd('1', ['$Important']);
      const list = [];
      for await (const x of client.fetch('1:*', { flags: true })) list.push(x);
      assert.ok(list[0]?.flags?.has('$Important'));
      const found = await client.search({ body: 'text' });
      assert.deepEqual(found, [1]);
      // a delivery while imapflow IDLEs
      const rec = await f.imapd.shared.directory.lookup('alice@example.test');
      const u = await f.imapd.shared.store.forUser(rec!);
      const idling = client.idle();
      await new Promise((res) => setTimeout(res, 100));
      await u.deliver('INBOX', Buffer.from('Subject: second\r\n\r\nx\r\n'));
      assert.equal(await Promise.race([exists, new Promise<number>((res) => setTimeout(() => res(-1), 1000))]), 2);
      await u.close();
      void idling;
      const mv = await client.messageMove('1', 'Trash');
      assert.ok(mv && mv.uidMap && mv.uidMap.get(1) === 1);
      const st = await client.status('Trash', { messages: true, uidNext: true, highestModseq: true });
      assert.ok(st && st.messages === 1);
      const boxes = await client.list();
      assert.ok(boxes.some((b: { path: string; specialUse?: string }) => b.path === 'Sent' && b.specialUse === '\\Sent'));
    } finally { lock.release(); }
    await client.logout();
  } finally { await f.stop(); }
});

function mbsyncConf(f: { port: number; dir: string }, local: string): string {
  return `IMAPAccount postern
Host 127.0.0.1
Port ${f.port}
User alice@example.test
Pass secret
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account postern

MaildirStore local
Path ${local}/
Inbox ${local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
`;
}

test('isync (mbsync) synchronises both ways', { skip: MBSYNC ? false : 'Debian package isync is not installed' }, async () => {
  const f = await startFixture();
  try {
    const rec = await f.imapd.shared.directory.lookup('alice@example.test');
    const u = await f.imapd.shared.store.forUser(rec!);
    await u.deliver('INBOX', Buffer.from('Subject: from server\r\n\r\none\r\n'));
    await u.deliver('INBOX', Buffer.from('Subject: to be flagged\r\n\r\ntwo\r\n'));
    const local = join(f.dir, 'local');
    mkdirSync(local);
    const rc = join(f.dir, 'mbsyncrc');
    writeFileSync(rc, mbsyncConf(f, local));
    // async: the server runs in this process, spawnSync would block it
    const run = async (): Promise<string> => {
      const p = spawn(MBSYNC!, ['-c', rc, '-a'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d) => { out += d; });
      p.stderr.on('data', (d) => { out += d; });
      const timer = setTimeout(() => p.kill(), 20_000);
      const code = await new Promise<number | null>((r) => p.once('exit', r));
      clearTimeout(timer);
      assert.equal(code, 0, `mbsync failed: ${out}`);
      return out;
    };
    await run();
    const curNew = (d: string) => [...readdirSync(join(d, 'cur')), ...readdirSync(join(d, 'new'))];
    const inbox = join(local, 'INBOX');
    assert.equal(curNew(inbox).length, 2, 'server → local');
    assert.ok(existsSync(join(local, 'Sent')), 'folders are created locally');
    // local changes: a new message and a flag on the second
    writeFileSync(join(inbox, 'new', `${Math.floor(Date.now() / 1000)}.local.host`), 'Subject: from local\r\n\r\nthree\r\n');
    const second = curNew(inbox).map((n) => ({ n, d: readdirSync(join(inbox, 'cur')).includes(n) ? 'cur' : 'new' }))
      .find(({ n, d }) => readFileSync(join(inbox, d, n), 'utf8').includes('to be flagged'))!;
    const { renameSync } = await import('node:fs');
    renameSync(join(inbox, second.d, second.n), join(inbox, 'cur', second.n.replace(/:2,.*$/, '') + ':2,F'));
    await run();
    const st = await u.status('INBOX');
    assert.equal(st.messages, 3, 'local → server');
    const box = await u.open('INBOX');
    const flagged = box.messages().filter((m) => m.flags.includes('\\Flagged'));
    assert.equal(flagged.length, 1);
    assert.match((await box.readContent(flagged[0]!.uid)).toString(), /to be flagged/);
    await box.close();
    await u.close();
  } finally { await f.stop(); }
});
