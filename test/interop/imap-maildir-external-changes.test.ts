/**
 * Changes made to a selected Maildir by other programs are seen by the next IMAP command, now
 * that a command on an unchanged mailbox costs only a few stat() calls (src/lib-storage/maildir/
 * maildir-sync.ts: new/, cur/ and dovecot-uidlist compared by mtime; src/imapd/imapd-sync.ts:
 * no walk over the view when it did not change). A real client (Python's imaplib) keeps INBOX
 * selected on Postern's imapd while the test, between two of its commands and within the same
 * second (the mtimes of cur/ may not move):
 *   - drops a message into new/ (as an MDA does)         → `* n EXISTS`, found by SEARCH
 *   - renames a file in cur/ to add F (as a Maildir MUA) → `* n FETCH (FLAGS (\Flagged \Recent))`
 *   - has real Dovecot 2.3 (doveadm) set \Seen, expunge a message and save a new one, which
 *     rewrites dovecot-uidlist                           → FETCH, EXPUNGE, EXISTS; the new
 *     message has the UID Dovecot gave it
 * and flag searches answered from the in-memory view agree with the files after each change.
 * The doveadm steps are skipped, with the reason, when Dovecot is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chownSync, existsSync, lstatSync, readdirSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startFixture } from '../harness/imapd-testkit.ts';

const PY = spawnSync('python3', ['-c', 'import imaplib'], { stdio: 'ignore' }).status === 0 ? 'python3' : undefined;
const DOVEADM = existsSync('/usr/bin/doveadm') ? '/usr/bin/doveadm' : undefined;
const NOBODY = 65534;

/** One imaplib session; each stdin line is a command, answered by one stdout line: every response line joined by ' | '. */
const PY_SCRIPT = String.raw`
import imaplib, sys
M = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
M.login('alice@example.test', 'secret')
for i in range(3):
    M.append('INBOX', None, None, ('Subject: m%d\r\n\r\nbody %d\r\n' % (i + 1, i + 1)).encode())
M.select('INBOX')
sys.stdout.write('ready\n'); sys.stdout.flush()
for cmd in sys.stdin:
    cmd = cmd.strip()
    if not cmd:
        break
    tag = M._new_tag()
    M.send(tag + b' ' + cmd.encode() + b'\r\n')
    lines = []
    while True:
        l = M.readline().decode().rstrip('\r\n')
        lines.append(l)
        if l.startswith(tag.decode() + ' '):
            break
    sys.stdout.write(' | '.join(lines) + '\n'); sys.stdout.flush()
M.logout()
`;

class Client {
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private readonly p: ChildProcessWithoutNullStreams;
  constructor(p: ChildProcessWithoutNullStreams) {
    this.p = p;
    createInterface({ input: p.stdout }).on('line', (l) => { this.lines.push(l); this.waiter?.(); });
  }
  async next(): Promise<string> {
    const end = Date.now() + 20_000;
    while (this.lines.length === 0) {
      if (Date.now() > end || this.p.exitCode !== null) throw new Error(`imaplib gave no answer (exit ${this.p.exitCode})`);
      await new Promise<void>((r) => { this.waiter = r; setTimeout(r, 200); });
    }
    return this.lines.shift()!;
  }
  async cmd(c: string): Promise<string> {
    this.p.stdin.write(c + '\n');
    return this.next();
  }
}

function chownR(p: string, uid: number): void {
  chownSync(p, uid, uid);
  if (lstatSync(p).isDirectory()) for (const e of readdirSync(p)) chownR(join(p, e), uid);
}

test('Maildir changes by an MDA, a Maildir MUA and real Dovecot are seen by the next command', { skip: PY ? false : 'python3 with imaplib is not installed', timeout: 60_000 }, async (t) => {
  const f = await startFixture();
  const p = spawn(PY!, ['-c', PY_SCRIPT, String(f.port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d) => { stderr += d; });
  try {
    const c = new Client(p);
    assert.equal(await c.next(), 'ready', stderr);
    const md = f.maildir('alice@example.test');
    assert.match(await c.cmd('NOOP'), /^\S+ OK/);
    assert.match(await c.cmd('UID SEARCH ALL'), /^\* SEARCH 1 2 3 \|/);

    // an MDA delivers into new/
    writeFileSync(join(md, 'tmp', '1700000000.M1P1.mda'), 'Subject: m4\r\n\r\nfrom the MDA\r\n');
    renameSync(join(md, 'tmp', '1700000000.M1P1.mda'), join(md, 'new', '1700000000.M1P1.mda'));
    assert.match(await c.cmd('NOOP'), /\* 4 EXISTS/);
    assert.match(await c.cmd('UID SEARCH ALL'), /^\* SEARCH 1 2 3 4 \|/);

    // a Maildir MUA flags message 2 by renaming its file in cur/ (same second: mtime may not move)
    const two = readdirSync(join(md, 'cur')).filter((n) => !n.includes('mda')).sort()[1]!;
    renameSync(join(md, 'cur', two), join(md, 'cur', two.replace(/:2,.*$/, ':2,F')));
    assert.match(await c.cmd('NOOP'), /\* 2 FETCH \(FLAGS \(\\Flagged \\Recent\)\)/);
    assert.match(await c.cmd('SEARCH FLAGGED'), /^\* SEARCH 2 \|/);
    assert.match(await c.cmd('SEARCH NOT FLAGGED UNSEEN'), /^\* SEARCH 1 3 4 \|/);

    if (!DOVEADM) { t.diagnostic('doveadm not installed: the Dovecot steps were skipped'); return; }
    // real Dovecot works on the same Maildir (as user nobody) and rewrites dovecot-uidlist
    chownR(f.dir, NOBODY);
    const home = join(md, '..');
    const conf = join(f.dir, 'doveadm.conf');
    mkdirSync(join(f.dir, 'dv'), { recursive: true });
    chownR(join(f.dir, 'dv'), NOBODY);
    writeFileSync(conf, [
      `base_dir = ${f.dir}/dv/run`, `state_dir = ${f.dir}/dv/state`, 'log_path = /dev/stderr', 'info_log_path = /dev/null',
      'mail_location = maildir:~/Maildir', `mail_uid = ${NOBODY}`, `mail_gid = ${NOBODY}`, 'first_valid_uid = 1', 'first_valid_gid = 1',
      'namespace inbox {', '  inbox = yes', '  separator = /', '}',
      'passdb {', '  driver = static', '  args = password=x', '}', 'userdb {', '  driver = static', `  args = uid=${NOBODY} gid=${NOBODY} home=${home}`, '}', '',
    ].join('\n'));
    const doveadm = (args: string[], input?: string): string => {
      const r = spawnSync(DOVEADM, ['-c', conf, ...args], { env: { ...process.env, USER: 'alice', HOME: home }, input, encoding: 'utf8' });
      assert.equal(r.status, 0, `doveadm ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    doveadm(['flags', 'add', '\\Seen', 'mailbox', 'INBOX', 'uid', '1']);
    doveadm(['expunge', 'mailbox', 'INBOX', 'uid', '3']);
    doveadm(['save', '-m', 'INBOX'], 'Subject: m5\r\n\r\nsaved by Dovecot\r\n');
    const saved = doveadm(['fetch', 'uid', 'mailbox', 'INBOX', 'subject', 'm5']);
    const uid5 = Number(/uid: (\d+)/.exec(saved)?.[1]);
    assert.ok(uid5 >= 5, `Dovecot's UID for the new message: ${saved}`);
    const a = await c.cmd('NOOP');
    assert.match(a, /\* 1 FETCH \(FLAGS \(\\Seen \\Recent\)\)/);
    assert.match(a, /\* 3 EXPUNGE/);
    assert.match(a, /\* 4 EXISTS/);
    assert.match(await c.cmd('UID SEARCH ALL'), new RegExp(`^\\* SEARCH 1 2 4 ${uid5} \\|`));
    assert.match(await c.cmd('UID SEARCH SEEN'), /^\* SEARCH 1 \|/);
    assert.match(await c.cmd('UID SEARCH OR FLAGGED SEEN'), /^\* SEARCH 1 2 \|/);
    assert.match(await c.cmd(`UID FETCH ${uid5} BODY.PEEK[HEADER.FIELDS (SUBJECT)]`), /Subject: m5/);
  } finally {
    p.stdin.end();
    p.kill();
    await f.stop();
  }
});
