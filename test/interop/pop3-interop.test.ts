/**
 * POP3 against real peers:
 *  - Python's poplib fetches every message and deletes it from Postern's pop3d; the UIDLs are
 *    Dovecot's %08Xu%08Xv of the store's UIDs;
 *  - Debian's fetchmail (UIDL-based, `no keep`) fetches and deletes;
 *  - the same POP3 script is run against a private real Dovecot 2.3 and against Postern, and
 *    the reply lines must be the same (numbers and UIDLs normalised; the greeting set to the
 *    same login_greeting).
 * Skipped (with the reason) when python3, fetchmail or Dovecot are not installed / not root.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setLogSink } from '../../src/util/msg.ts';
import { pop3Uidl } from '../../src/lib-storage/mail-storage.ts';
import { PosternMailAccess } from '../harness/postern-mail-access.ts';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { LineChat } from '../harness/line-chat.ts';

const run = promisify(execFile);
setLogSink(() => {});
const cleanup: (() => Promise<void> | void)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f(); });

const hasPython = spawnSync('python3', ['-c', 'import poplib']).status === 0;
const hasFetchmail = existsSync('/usr/bin/fetchmail');

const MSG = (n: number) => `From: a@y.test\nTo: alice@x.test\nSubject: message ${n}\n\nbody ${n}\n.leading dot\n`;

test('Python poplib: STAT, LIST, UIDL, RETR, DELE, QUIT against Postern', { skip: !hasPython && 'python3 missing' }, async () => {
  const pm = await PosternMailAccess.start({ users: [{ user: 'alice@x.test', pass: 'secret' }] });
  cleanup.push(() => pm.stop());
  for (let i = 1; i <= 3; i++) await pm.deliver('alice@x.test', MSG(i));
  const script = `
import poplib, json, sys
p = poplib.POP3('127.0.0.1', ${pm.ports.pop3}, timeout=10)
out = {'welcome': p.getwelcome().decode()}
p.user('alice@x.test'); p.pass_('secret')
out['stat'] = list(p.stat())
out['list'] = [l.decode() for l in p.list()[1]]
out['uidl'] = [l.decode() for l in p.uidl()[1]]
out['bodies'] = []
for i in range(1, out['stat'][0] + 1):
    resp, lines, octets = p.retr(i)
    out['bodies'].append([l.decode() for l in lines])
    p.dele(i)
out['quit'] = p.quit().decode()
print(json.dumps(out))
`;
  const r = await run('python3', ['-c', script], { timeout: 20_000 });
  const out = JSON.parse(r.stdout) as { welcome: string; stat: number[]; list: string[]; uidl: string[]; bodies: string[][]; quit: string };
  assert.equal(out.welcome, '+OK Postern ready.');
  assert.equal(out.stat[0], 3);
  assert.equal(out.list.length, 3);
  // Dovecot's %08Xu%08Xv, in the lower case real Dovecot 2.3 writes.
  assert.match(out.uidl[0]!, /^1 [0-9a-f]{16}$/);
  const uidValidity = parseInt(out.uidl[0]!.slice(10), 16);
  assert.deepEqual(out.uidl, [1, 2, 3].map((i) => `${i} ${pop3Uidl(i, uidValidity).toLowerCase()}`));
  assert.deepEqual(out.bodies[1], ['From: a@y.test', 'To: alice@x.test', 'Subject: message 2', '', 'body 2', '.leading dot']);
  assert.equal(out.quit, '+OK Logging out, messages deleted.');
  assert.deepEqual(await pm.messages('alice@x.test'), [], 'QUIT expunged every message');
});

test('fetchmail (Debian) fetches over UIDL and deletes', { skip: !hasFetchmail && 'fetchmail missing (apt-get install fetchmail)' }, async () => {
  const pm = await PosternMailAccess.start({ users: [{ user: 'alice@x.test', pass: 'secret' }] });
  cleanup.push(() => pm.stop());
  for (let i = 1; i <= 2; i++) await pm.deliver('alice@x.test', MSG(i));
  const dir = mkdtempSync(join(tmpdir(), 'postern-fetchmail-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const rc = join(dir, 'fetchmailrc');
  writeFileSync(rc, `set no syslog
poll 127.0.0.1 protocol pop3 port ${pm.ports.pop3} uidl:
  user "alice@x.test" there with password "secret" is "root" here
  mda "/bin/sh -c 'cat >> ${join(dir, 'mbox')}'" no keep
  sslproto '' no sslcertck
`);
  chmodSync(rc, 0o600);
  const r = await run('fetchmail', ['-f', rc, '--nodetach', '-d0', '-i', join(dir, 'ids'), '--pidfile', join(dir, 'pid'), '-v'],
    { timeout: 30_000, env: { ...process.env, FETCHMAILHOME: dir, HOME: dir } }).catch((e: { stdout: string; stderr: string; code: number }) => e);
  const got = existsSync(join(dir, 'mbox')) ? readFileSync(join(dir, 'mbox'), 'utf8') : '';
  assert.match(got, /Subject: message 1\n[\s\S]*Subject: message 2\n/, `fetchmail output: ${r.stdout}\n${r.stderr}`);
  assert.match(`${r.stdout}${r.stderr}`, /2 messages for alice@x\.test/);
  assert.deepEqual(await pm.messages('alice@x.test'), [], 'fetchmail deleted what it fetched');
});

/**
 * A POP3 reply as the script compares it: the status line, or for a multi-line +OK reply the
 * whole of it up to the "." (no final CRLF); `<closed>` or `<timeout>` and what was left when
 * the server closed or went quiet.
 */
async function readReply(c: LineChat, multi: boolean): Promise<string> {
  try {
    const first = await c.line(5000);
    if (!multi || !first.startsWith('+OK')) return first;
    const rest = await c.waitFor(/^\.\r\n|\r\n\.\r\n/, 5000);
    return `${first}\r\n${rest.slice(0, -2)}`;
  } catch {
    return `${c.closed ? '<closed>' : '<timeout>'}${c.pending()}`;
  }
}

/** The script both servers get; `true` marks a multi-line reply. Message sizes are normalised. */
const SCRIPT: [string, boolean][] = [
  ['CAPA', true], ['STAT', false], ['LIST', true], ['USER alice@x.test', false], ['PASS wrong', false],
  ['APOP a b', false], ['STLS', false], ['AUTH', true], ['AUTH CRAM-MD5', false], ['AUTH PLAIN !!!', false],
  ['USER alice@x.test', false], ['PASS secret', false],
  ['CAPA', true], ['STAT', false], ['LIST', true], ['UIDL', true], ['LIST 1', false], ['LIST 9', false], ['LIST x', false],
  ['LIST 1 2', false], ['TOP 1', false], ['TOP 1 x', false], ['TOP 2 0', true], ['RETR 0', false], ['DELE', false],
  ['DELE 1', false], ['DELE 1', false], ['RETR 1', false], ['STAT', false], ['LIST', true], ['RSET', false], ['STAT', false],
  ['DELE 2', false], ['NOOP', false], ['LAST', false], ['USER bob', false], ['FOO bar', false], ['QUIT', false],
];

function normalise(reply: string): string {
  return reply
    // UIDVALIDITY differs; the form (width, lower-case hex) must not.
    .replace(/ ([0-9a-f]{8})[0-9a-f]{8}$/gm, ' $1<uidvalidity>')
    .replace(/^(\+OK \d+ )\d+/gm, '$1SIZE')
    .replace(/^(\d+ )\d+$/gm, '$1SIZE')
    .replace(/^\+OK \d+ octets/gm, '+OK SIZE octets')
    // TOP bodies: keep only the status line and the line count (headers differ: Received ids, dates).
    .replace(/^(\+OK)\r\n(?:(?!\r\n\.$)[\s\S])*?\r\n\.$/m, (all, ok: string) => (all.includes('Subject:') ? `${ok} <message>` : all));
}

test('the same POP3 script gives the same replies from Postern and real Dovecot 2.3', { skip: RealDovecot.unavailable() ?? (!existsSync('/usr/lib/dovecot/pop3') && 'dovecot-pop3d missing') }, async () => {
  const users = [{ user: 'alice@x.test', pass: 'secret' }];
  const greeting = 'login_greeting = Mail ready.\n';
  const dc = await RealDovecot.start({ protocols: ['pop3', 'lmtp'], users, extraConf: greeting });
  cleanup.push(() => dc.stop());
  const pm = await PosternMailAccess.start({ users, conf: greeting });
  cleanup.push(() => pm.stop());
  // The same two messages into both, through each one's own LMTP.
  for (const port of [dc.ports.lmtp!, pm.ports.lmtp]) {
    const l = await LineChat.open(port);
    await l.reply();
    await l.cmd('LHLO t');
    for (const n of [1, 2]) {
      await l.cmd('MAIL FROM:<a@y.test>'); await l.cmd('RCPT TO:<alice@x.test>'); await l.cmd('DATA');
      assert.match(await l.cmd(MSG(n).replace(/\n/g, '\r\n') + '.'), /^250 2\.0\.0 <alice@x\.test> \S+ Saved$/);
    }
    l.close();
  }
  const transcripts: string[][] = [];
  for (const port of [dc.ports.pop3!, pm.ports.pop3]) {
    const p = await LineChat.open(port, { protocol: 'pop3' });
    const t = [await readReply(p, false)];
    for (const [c, multi] of SCRIPT) {
      p.send(c + '\r\n');
      t.push(`C: ${c}\n${normalise(await readReply(p, multi))}`);
    }
    p.close();
    transcripts.push(t);
  }
  assert.deepEqual(transcripts[1], transcripts[0]);
});
