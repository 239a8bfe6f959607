/**
 * OBJECTID (RFC 8474) and CREATE-SPECIAL-USE (RFC 6154 §3), which Dovecot 2.3 does not have, seen
 * by a real client nobody here wrote: Python's imaplib (Debian's python3) against Postern's imapd.
 *  - MAILBOXID from CREATE, SELECT, STATUS and LIST-STATUS is one value, the `G` of the mailbox's
 *    dovecot-uidlist, kept across RENAME; real Dovecot, given the same Maildir, reports the same
 *    GUID (`doveadm mailbox status guid`), so both servers agree;
 *  - EMAILID survives a flag change and a new session, SEARCH EMAILID finds the message, THREADID
 *    is NIL and SEARCH THREADID finds nothing;
 *  - CREATE (USE (\Drafts)) makes LIST show \Drafts (also after RENAME), \All, \Flagged and
 *    unknown attributes are NO [USEATTR] and create nothing;
 *  - hostile input: over-long and malformed USE lists, NUL, over-long or invalid objectids are
 *    BAD, and the session goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync, readdirSync, chownSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startFixture } from '../harness/imapd-testkit.ts';
import { RealDovecot, DOVECOT_MAIL_UID } from '../harness/real-dovecot.ts';

const PY = spawnSync('python3', ['-c', 'import imaplib'], { stdio: 'ignore' }).status === 0 ? 'python3' : undefined;

const SCRIPT = String.raw`
import imaplib, sys, socket
port = int(sys.argv[1])
M = imaplib.IMAP4('127.0.0.1', port)
M.login('alice@example.test', 'secret')
def cmd(name, *args):
    try:
        typ, data = M._simple_command(name, *args)
    except M.error as e:
        typ, data = 'BAD', [str(e).encode()]
    if name in ('SELECT', 'EXAMINE') and typ == 'OK':
        M.state = 'SELECTED'
    if name in ('UNSELECT', 'CLOSE') and typ == 'OK':
        M.state = 'AUTH'
    out = {}
    for k in ('CAPABILITY', 'MAILBOXID', 'STATUS', 'LIST', 'FETCH', 'SEARCH', 'ESEARCH'):
        if k in M.untagged_responses:
            out[k] = M.untagged_responses.pop(k)
    if 'OK' in M.untagged_responses:
        out['OK'] = M.untagged_responses.pop('OK')
    return typ, data, out
def show(label, r):
    print(label, repr(r))
imaplib.Commands['ENABLE'] = ('AUTH', 'SELECTED')
show('CAP', cmd('CAPABILITY'))
show('CREATE', cmd('CREATE', 'Box'))
show('SELECT', cmd('SELECT', 'Box'))
show('STATUS', cmd('STATUS', 'Box', '(MESSAGES MAILBOXID)'))
M.literal = b'Subject: one\r\n\r\nbody\r\n'
show('APPEND', cmd('APPEND', 'Box'))
show('NOOP', cmd('NOOP'))
show('FETCH1', cmd('FETCH', '1', '(EMAILID THREADID)'))
show('STORE', cmd('STORE', '1', '+FLAGS', '(\\Seen)'))
show('FETCH2', cmd('FETCH', '1', '(UID EMAILID)'))
show('UNSELECT', cmd('UNSELECT'))
show('RENAME', cmd('RENAME', 'Box', 'Box2'))
show('LISTSTATUS', cmd('LIST', '""', 'Box2', 'RETURN', '(STATUS (MAILBOXID))'))
show('SELECT2', cmd('SELECT', 'Box2'))
show('FETCH3', cmd('FETCH', '1', '(EMAILID THREADID)'))
show('SEARCHTHREAD', cmd('UID', 'SEARCH', 'THREADID', 'T123'))
show('SEARCHLONG', cmd('SEARCH', 'EMAILID', 'a' * 256))
show('SEARCHBADID', cmd('SEARCH', 'EMAILID', '"a.b"'))
show('SEARCHNUL', cmd('SEARCH', 'EMAILID', '{3+}\r\na\x00b'))
show('CREATEUSE', cmd('CREATE', 'Drafts2', '(USE (\\Drafts))'))
show('CREATEDUP', cmd('CREATE', 'Arch', '(USE (\\Archive \\archive \\Junk))'))
show('CREATEALL', cmd('CREATE', 'AllMail', '(USE (\\All))'))
show('CREATEFLAGGED', cmd('CREATE', 'Flag', '(USE (\\Flagged))'))
show('CREATEBOGUS', cmd('CREATE', 'Bogus', '(USE (\\Bogus))'))
show('CREATEMANY', cmd('CREATE', 'Many', '(USE (' + ' '.join(['\\Sent'] * 40) + '))'))
show('CREATEHUGE', cmd('CREATE', 'Huge', '(USE (' + ' '.join(['\\X' + str(i) for i in range(3000)]) + '))'))
show('CREATEUNKNOWN', cmd('CREATE', 'Unk', '(FOO (BAR))'))
show('CREATETWICE', cmd('CREATE', 'Twice', '(USE (\\Sent) USE (\\Sent))'))
show('CREATENOLIST', cmd('CREATE', 'NoList', '(USE \\Sent)'))
show('CREATESTRING', cmd('CREATE', 'Str', '(USE ("\\Sent"))'))
show('CREATEEMPTY', cmd('CREATE', 'Empty', '(USE ())'))
show('LISTSU', cmd('LIST', '(SPECIAL-USE)', '""', '*'))
show('RENAME2', cmd('RENAME', 'Drafts2', 'Drafts3'))
show('LISTSU2', cmd('LIST', '""', '*', 'RETURN', '(SPECIAL-USE)'))
show('LISTPLAIN', cmd('LIST', '""', '%'))
show('FINALNOOP', cmd('NOOP'))
M.logout()
# a new session: the same ids
M = imaplib.IMAP4('127.0.0.1', port)
M.login('alice@example.test', 'secret')
show('SELECT3', cmd('SELECT', 'Box2'))
show('FETCH4', cmd('FETCH', '1', '(EMAILID)'))
M.logout()
`;

async function runPy(script: string, port: number): Promise<string> {
  const p = spawn(PY!, [script, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  const timer = setTimeout(() => p.kill(), 45_000);
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  clearTimeout(timer);
  assert.equal(code, 0, out);
  return out;
}

function line(out: string, label: string): string {
  const l = out.split('\n').find((x) => x.startsWith(label + ' '));
  assert.ok(l, `no ${label} in\n${out}`);
  return l!;
}

test('Python imaplib: OBJECTID and CREATE-SPECIAL-USE; Dovecot reads the same mailbox GUID', { skip: PY ? false : 'python3 with imaplib is not installed', timeout: 90_000 }, async () => {
  const f = await startFixture();
  try {
    const script = join(f.dir, 't.py');
    writeFileSync(script, SCRIPT);
    const out = await runPy(script, f.port);
    if (process.env.SHOW) console.log(out);
    assert.match(line(out, 'CAP'), /OBJECTID/);
    assert.match(line(out, 'CAP'), /CREATE-SPECIAL-USE/);
    const id = /MAILBOXID \(([0-9a-f]{32})\)\] Create completed/.exec(line(out, 'CREATE'))?.[1];
    assert.ok(id, line(out, 'CREATE'));
    // on disk: the G of dovecot-uidlist
    const uidlist = readFileSync(join(f.maildir('alice@example.test'), '.Box2', 'dovecot-uidlist'), 'latin1');
    assert.match(uidlist.split('\n')[0]!, new RegExp(` G${id}`));
    assert.ok(line(out, 'SELECT').includes(`[MAILBOXID (${id})] Ok`), line(out, 'SELECT'));
    assert.ok(line(out, 'STATUS').includes(`(MESSAGES 0 MAILBOXID (${id}))`), line(out, 'STATUS'));
    const emailId = /EMAILID \(([A-Za-z0-9_-]+)\) THREADID NIL/.exec(line(out, 'FETCH1'))?.[1];
    assert.ok(emailId, line(out, 'FETCH1'));
    assert.ok(line(out, 'FETCH2').includes(`EMAILID (${emailId})`), 'EMAILID kept across a flag change');
    // RENAME keeps MAILBOXID (RFC 8474 §4.1)
    assert.ok(line(out, 'LISTSTATUS').includes(`Box2 (MAILBOXID (${id}))`), line(out, 'LISTSTATUS'));
    assert.ok(line(out, 'SELECT2').includes(`[MAILBOXID (${id})]`), line(out, 'SELECT2'));
    assert.ok(line(out, 'FETCH3').includes(`EMAILID (${emailId}) THREADID NIL`), line(out, 'FETCH3'));
    assert.ok(line(out, 'SELECT3').includes(`[MAILBOXID (${id})]`), 'same MAILBOXID in a new session');
    assert.ok(line(out, 'FETCH4').includes(`EMAILID (${emailId})`), 'same EMAILID in a new session');
    assert.match(line(out, 'SEARCHTHREAD'), /^SEARCHTHREAD \('OK', .*'SEARCH': \[b''\]|^SEARCHTHREAD \('OK', .*'SEARCH': \[None\]/);
    for (const l of ['SEARCHLONG', 'SEARCHBADID', 'SEARCHNUL', 'CREATEMANY', 'CREATEHUGE', 'CREATEUNKNOWN', 'CREATETWICE', 'CREATENOLIST', 'CREATESTRING']) {
      assert.match(line(out, l), new RegExp(`^${l} \\('BAD'`), line(out, l));
    }
    assert.match(line(out, 'CREATEUSE'), /'OK', \[b'\[MAILBOXID \([0-9a-f]{32}\)\] Create completed/);
    assert.match(line(out, 'CREATEDUP'), /'OK'/);
    assert.match(line(out, 'CREATEEMPTY'), /'OK'/);
    for (const l of ['CREATEALL', 'CREATEFLAGGED', 'CREATEBOGUS']) assert.match(line(out, l), new RegExp(`^${l} \\('NO', \\[b'\\[USEATTR\\] `), line(out, l));
    const su = line(out, 'LISTSU');
    assert.ok(su.includes('(\\\\Drafts) "/" Drafts2'), su);
    assert.ok(su.includes('(\\\\Archive \\\\Junk) "/" Arch'), su);
    assert.ok(su.includes('\\\\Sent) "/" Sent'), su);
    assert.ok(!su.includes('Box2'), 'only special-use mailboxes');
    assert.ok(line(out, 'LISTSU2').includes('(\\\\Drafts) "/" Drafts3'), 'kept across RENAME');
    const plain = line(out, 'LISTPLAIN');
    for (const n of ['AllMail', 'Flag', 'Bogus', 'Many', 'Huge', 'Unk', 'Twice', 'NoList', 'Str']) assert.ok(!plain.includes(`"/" ${n}'`), `${n} must not be created: ${plain}`);
    assert.match(line(out, 'FINALNOOP'), /'OK'/);

    // real Dovecot on a copy of this Maildir: the same mailbox GUID
    if (RealDovecot.unavailable()) return;
    const dc = await RealDovecot.start({ protocols: ['imap'], users: [{ user: 'alice@example.test', pass: 'pw' }], extraConf: 'namespace inbox {\n  inbox = yes\n  separator = /\n}\n' });
    try {
      const dst = dc.maildir('alice@example.test');
      cpSync(f.maildir('alice@example.test'), dst, { recursive: true });
      const chownAll = (p: string): void => {
        chownSync(p, DOVECOT_MAIL_UID, DOVECOT_MAIL_UID);
        if (statSync(p).isDirectory()) for (const e of readdirSync(p)) chownAll(join(p, e));
      };
      chownAll(join(dst, '..'));
      const guid = (await dc.doveadm('mailbox', 'status', '-u', 'alice@example.test', 'guid', 'Box2')).trim();
      assert.equal(guid, `Box2 guid=${id}`);
    } finally { await dc.stop(); }
  } finally { await f.stop(); }
});
