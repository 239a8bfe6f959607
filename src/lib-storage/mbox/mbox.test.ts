/**
 * Read-only mbox + mbox delivery: Postfix's format on delivery (From_ line, ">From " quoting,
 * empty separator line), Dovecot's mbox (X-IMAPbase/X-UID/Status/X-Keywords/Content-Length)
 * read with Dovecot's UIDs and flags, both directions with the real doveadm, hostile files.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirStore } from '../maildir/maildir-storage.ts';
import { MailError } from '../mail-error.ts';
import { parseMbox, formatMboxMessage } from './mbox-format.ts';
import { mboxDeliver } from './mbox-deliver.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const NOBODY = 65534;
const have = existsSync('/usr/bin/doveadm');

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'postern-mbox-'));
  dirs.push(dir);
  chmodSync(dir, 0o755);
  const home = join(dir, 'home');
  mkdirSync(join(home, 'mail'), { recursive: true });
  const conf = join(dir, 'dovecot.conf');
  writeFileSync(conf, [`base_dir = ${dir}/run`, `state_dir = ${dir}/state`, 'log_path = /dev/stderr', 'info_log_path = /dev/null',
    'mail_location = mbox:~/mail:INBOX=~/mail/inbox', `mail_uid = ${NOBODY}`, `mail_gid = ${NOBODY}`, 'first_valid_uid = 1', 'first_valid_gid = 1', ''].join('\n'));
  const doveadm = (args: string[], input?: string): string => {
    const chownR = (p: string): void => { chownSync(p, NOBODY, NOBODY); if (lstatSync(p).isDirectory()) for (const e of readdirSync(p)) chownR(join(p, e)); };
    chownR(home);
    const r = spawnSync('/usr/bin/doveadm', ['-c', conf, ...args], { env: { ...process.env, USER: 'u1', HOME: home }, input, encoding: 'utf8' });
    assert.deepEqual(r.stderr.split('\n').filter((l) => /(Error|Warning|Panic|Fatal):/.test(l)), [], r.stderr);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  return { dir, home, doveadm };
}

test('format: From_ line, >From quoting, CRLF → LF, separator line; parse finds the messages back', () => {
  const m = formatMboxMessage(Buffer.from('Subject: x\r\n\r\nFrom me\r\nbye'), 'a@b.example', new Date('2026-11-27T19:13:13Z'));
  assert.equal(m.toString(), 'From a@b.example  Fri Nov 27 19:13:13 2026\nSubject: x\n\n>From me\nbye\n\n');
  const two = Buffer.concat([m, formatMboxMessage(Buffer.from('Subject: y\n\nz\n'), '', new Date(0))]);
  const p = parseMbox(two);
  assert.equal(p.messages.length, 2);
  assert.equal(two.subarray(p.messages[1]!.offset, p.messages[1]!.offset + p.messages[1]!.length).toString(), 'Subject: y\n\nz\n');
  assert.match(p.messages[1]!.fromLine, /^From MAILER-DAEMON  Thu Jan  1 00:00:00 1970$/);
  for (const junk of ['', 'no from line at all\n', '\0\0\0From \n', 'From \n\nFrom \n', 'From x\nContent-Length: 99999999\n\nshort\n']) {
    assert.doesNotThrow(() => parseMbox(Buffer.from(junk)));
  }
});

test('Postern delivers into mbox; the read-only Mailbox serves it; Dovecot reads the same', async () => {
  const { home, doveadm } = setup();
  const u = await new MaildirStore({ separator: '/' }).forUser({ user: 'u1', uid: NOBODY, gid: NOBODY, home, mail: 'mbox:~/mail:INBOX=~/mail/inbox' });
  writeFileSync(join(home, 'mail', 'inbox'), '');
  const r1 = await u.deliver('INBOX', 'Subject: one\r\n\r\nFrom the start\r\n');
  const r2 = await u.deliver('INBOX', 'Subject: two\n\nbody\n');
  assert.deepEqual([r1.uid, r2.uid], [1, 2]);
  const box = await u.open('INBOX');
  assert.equal(box.readOnly, true);
  assert.equal((await box.readContent(1)).toString(), 'Subject: one\n\n>From the start\n');
  await assert.rejects(box.setFlags([1], 'add', ['\\Seen']), (e: MailError) => e.code === 'PERM');
  await assert.rejects(box.expunge(), (e: MailError) => e.code === 'PERM');
  await u.deliver('INBOX', 'Subject: three\n\nx\n');
  const ch = await box.sync();
  assert.deepEqual(ch.added.map((m) => m.uid), [3]);
  if (!have) return;
  const out = doveadm(['fetch', 'uid hdr.subject', 'mailbox', 'INBOX', 'all']);
  assert.deepEqual([...out.matchAll(/uid: (\d+)/g)].map((m) => Number(m[1])), [1, 2, 3]);
  assert.match(out, /subject: one[\s\S]*subject: two[\s\S]*subject: three/);
  await box.close();
});

test('Dovecot writes an mbox (X-IMAPbase, X-UID, Status, X-Keywords, unquoted From in bodies); Postern reads its UIDs and flags', { skip: !have && 'doveadm not installed' }, async () => {
  const { home, doveadm } = setup();
  for (const s of ['a', 'b', 'c']) doveadm(['save'], `Subject: ${s}\n\nFrom here, no quoting\n`);
  doveadm(['flags', 'add', '\\Seen $Forwarded', 'mailbox', 'INBOX', 'uid', '2']);
  doveadm(['expunge', 'mailbox', 'INBOX', 'uid', '1']);
  doveadm(['save'], 'Subject: d\n\nx\n');
  const uv = Number(/uidvalidity=(\d+)/.exec(doveadm(['mailbox', 'status', 'uidvalidity', 'INBOX']))![1]);
  const u = await new MaildirStore({ separator: '/' }).forUser({ user: 'u1', uid: NOBODY, gid: NOBODY, home, mail: 'mbox:~/mail:INBOX=~/mail/inbox' });
  const box = await u.open('INBOX');
  assert.equal(box.uidValidity, uv);
  assert.deepEqual(box.messages().map((m) => [m.uid, m.flags, m.keywords]), [[2, ['\\Seen'], ['$Forwarded']], [3, [], []], [4, [], []]]);
  assert.equal(box.uidNext, 5);
  assert.equal((await box.readContent(2)).toString(), 'Subject: b\n\nFrom here, no quoting\n');
  await box.close();
});

test('mbox delivery refuses a symlinked mailbox and waits for the dotlock', async () => {
  const { dir } = setup();
  const target = join(dir, 'target');
  writeFileSync(target, '');
  symlinkSync(target, join(dir, 'link'));
  await assert.rejects(mboxDeliver(join(dir, 'link'), Buffer.from('x')), (e: MailError) => e.code === 'PERM');
  assert.equal(readFileSync(target, 'utf8'), '');
  writeFileSync(join(dir, 'mb.lock'), `1:${(await import('node:os')).hostname()}`);
  let done = false;
  const p = mboxDeliver(join(dir, 'mb'), Buffer.from('Subject: l\n\n')).then(() => { done = true; });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(done, false);
  rmSync(join(dir, 'mb.lock'));
  await p;
  assert.match(readFileSync(join(dir, 'mb'), 'utf8'), /^From MAILER-DAEMON {2}\w{3} \w{3} [ \d]\d [\d:]{8} \d{4}\nSubject: l\n\n\n$/);
});
