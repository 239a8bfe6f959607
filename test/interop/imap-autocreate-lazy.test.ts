/**
 * dovecot.conf `mailbox X { auto = create | subscribe }` mailboxes are made when first needed,
 * as Dovecot 2.3 makes them ("created lazily to disk only when accessed for the first time"):
 * a new user's LOGIN + LOGOUT, or a session that only reads INBOX, writes no mailbox on either
 * server, and the first command that looks at other mailboxes (LIST) shows them on both, after
 * which Postern has made them on disk.
 * Driven by a real client (Python's imaplib) against Postern's imapd and real Dovecot with the
 * same namespace configuration (test/harness/imapd-testkit.ts NAMESPACE_CONF: Sent with
 * auto = subscribe, Trash with auto = create). Skipped, with the reason, when Python or Dovecot
 * cannot run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { NAMESPACE_CONF, startFixture } from '../harness/imapd-testkit.ts';

const PY = spawnSync('python3', ['-c', 'import imaplib'], { stdio: 'ignore' }).status === 0 ? 'python3' : undefined;
const skip = !PY ? 'python3 with imaplib is not installed' : RealDovecot.unavailable() ?? false;

/** LOGIN, the given commands (their untagged and tagged lines), LOGOUT, through imaplib. */
async function imaplib(port: number, user: string, cmds: string[]): Promise<string> {
  const script = String.raw`
import imaplib, sys
M = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
M.login(sys.argv[2], 'pw')
for cmd in sys.argv[3:]:
    tag = M._new_tag()
    M.send(tag + b' ' + cmd.encode() + b'\r\n')
    while True:
        l = M.readline().decode().rstrip('\r\n')
        if l.startswith(tag.decode() + ' '):
            print(l.split(' ', 1)[1].split(' (')[0])
            break
        print(l)
M.logout()
`;
  // not spawnSync: Postern's imapd runs in this process
  const p = spawn(PY!, ['-c', script, String(port), user, ...cmds], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  let out = '', err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  const code = await new Promise<number | null>((r) => p.on('close', r));
  assert.equal(code, 0, err);
  return out;
}

test('auto = create / subscribe mailboxes: not made by LOGIN + LOGOUT or by reading INBOX, listed and made on first use, as Dovecot', { skip, timeout: 60_000 }, async () => {
  const users = ['lazy1@x.test', 'lazy2@x.test'];
  const dc = await RealDovecot.start({ protocols: ['imap'], users: users.map((user) => ({ user, pass: 'pw' })), extraConf: NAMESPACE_CONF });
  const fx = await startFixture({ users: users.map((u) => [u, 'pw']) });
  try {
    const servers = [
      { name: 'Dovecot', port: dc.ports.imap!, maildir: (u: string) => dc.maildir(u) },
      { name: 'Postern', port: fx.port, maildir: (u: string) => fx.maildir(u) },
    ];
    const lists: string[] = [];
    for (const s of servers) {
      await imaplib(s.port, users[0]!, ['NOOP', 'CAPABILITY']);
      for (const box of ['.Sent', '.Trash']) assert.equal(existsSync(join(s.maildir(users[0]!), box)), false, `${s.name}: ${box} made by LOGIN + LOGOUT`);
      await imaplib(s.port, users[0]!, ['SELECT INBOX', 'FETCH 1:* FLAGS', 'UID SEARCH ALL', 'CLOSE']);
      for (const box of ['.Sent', '.Trash']) assert.equal(existsSync(join(s.maildir(users[0]!), box)), false, `${s.name}: ${box} made by a session that only read INBOX`);
      lists.push((await imaplib(s.port, users[1]!, ['LIST "" "*"', 'LSUB "" "*"', 'STATUS Trash (MESSAGES)'])).split('\n').sort().join('\n'));
    }
    assert.equal(lists[1], lists[0], 'LIST / LSUB / STATUS answers');
    assert.match(lists[1]!, /\* LIST \(\\HasNoChildren \\Sent\) "\/" Sent/);
    assert.match(lists[1]!, /\* LSUB \(\\Sent\) "\/" Sent/);
    for (const box of ['.Sent', '.Trash']) assert.ok(existsSync(join(fx.maildir(users[1]!), box, 'cur')), `Postern: ${box} made on first use`);
  } finally {
    await fx.stop();
    await dc.stop();
  }
});
