/**
 * Interop with the real Dovecot 2.3 on this machine, both directions, on one Maildir:
 * (a) Postern writes → `doveadm` reads the same UIDs, UIDVALIDITY, flags, keywords, folders,
 * subscriptions; (b) Dovecot writes (save, flags, expunge, create) → Postern's open handle
 * learns it through sync(); then Postern changes the mailbox again and Dovecot, whose index
 * is now out of date, must open it with nothing on stderr (no corruption, no force-resync).
 * Dovecot runs with a private dovecot.conf (mail_uid nobody); no service is started.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync, readdirSync, lstatSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirStore } from './maildir-storage.ts';
import { flushMailboxIndexes } from './maildir-state.ts';
import { INDEX_NAME } from './maildir-index.ts';
import type { MailUser, Mailbox } from '../mail-storage.ts';

const DOVEADM = '/usr/bin/doveadm';
const have = existsSync(DOVEADM);
const NOBODY = 65534;
let dir = '';
let home = '';
let conf = '';

function chownR(p: string): void {
  chownSync(p, NOBODY, NOBODY);
  if (lstatSync(p).isDirectory()) for (const e of readdirSync(p)) chownR(join(p, e));
}

/** Run doveadm; fail the test on any Error/Warning/Panic/Fatal line (Dovecot must be happy). */
function doveadm(args: string[], input?: string): string {
  const r = spawnSync(DOVEADM, ['-c', conf, ...args], { env: { ...process.env, USER: 'u1', HOME: home }, input, encoding: 'utf8' });
  const bad = r.stderr.split('\n').filter((l) => /(Error|Warning|Panic|Fatal):/.test(l));
  assert.deepEqual(bad, [], `doveadm ${args.join(' ')} complained:\n${r.stderr}`);
  assert.equal(r.status, 0, `doveadm ${args.join(' ')} exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function fetchInbox(box = 'INBOX'): Map<number, string[]> {
  const out = doveadm(['fetch', 'uid flags', 'mailbox', box, 'all']);
  const m = new Map<number, string[]>();
  for (const block of out.split(/\n(?=uid: )/)) {
    const u = /uid: (\d+)/.exec(block); const f = /flags: ?(.*)/.exec(block);
    if (u) m.set(Number(u[1]), (f?.[1] ?? '').split(' ').filter((x) => x !== '' && x !== '\\Recent').sort());
  }
  return m;
}

function statusAll(): Map<string, { messages: number; uidnext: number; uidvalidity: number }> {
  const out = doveadm(['mailbox', 'status', 'messages uidnext uidvalidity', '*']);
  const m = new Map<string, { messages: number; uidnext: number; uidvalidity: number }>();
  for (const line of out.trim().split('\n')) {
    const r = /^(.*) messages=(\d+) uidnext=(\d+) uidvalidity=(\d+)$/.exec(line);
    if (r) m.set(r[1]!, { messages: Number(r[2]), uidnext: Number(r[3]), uidvalidity: Number(r[4]) });
  }
  return m;
}

function posternView(box: Mailbox): Map<number, string[]> {
  return new Map(box.messages().map((x) => [x.uid, [...x.flags, ...x.keywords].sort()]));
}

let user: MailUser;

before(async () => {
  if (!have) return;
  dir = mkdtempSync(join(tmpdir(), 'postern-dovecot-'));
  chmodSync(dir, 0o755);
  home = join(dir, 'home');
  conf = join(dir, 'dovecot.conf');
  writeFileSync(conf, [
    `base_dir = ${dir}/run`, `state_dir = ${dir}/state`, 'log_path = /dev/stderr', 'info_log_path = /dev/null',
    `mail_location = maildir:~/Maildir`, `mail_uid = ${NOBODY}`, `mail_gid = ${NOBODY}`, 'first_valid_uid = 1', 'first_valid_gid = 1',
    'namespace inbox {', '  inbox = yes', '  separator = /', '}',
    `passdb {`, `  driver = static`, `  args = password=x`, `}`, `userdb {`, `  driver = static`, `  args = uid=${NOBODY} gid=${NOBODY} home=${home}`, `}`, '',
  ].join('\n'));
  execFileSync('mkdir', ['-p', home]);
  chownR(home);   // the user's home; everything Postern creates below inherits its owner
  user = await new MaildirStore({ separator: '/' }).forUser({ user: 'u1', uid: NOBODY, gid: NOBODY, home, mail: 'maildir:~/Maildir' });
});

after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

const MSG = (s: string) => `From: a@example.org\r\nTo: b@example.org\r\nSubject: ${s}\r\n\r\nbody ${s}\r\n`;

test('(a) Dovecot reads what Postern wrote: UIDs, UIDVALIDITY, flags, keywords, folders, subscriptions', { skip: !have && 'doveadm not installed' }, async () => {
  const r1 = await user.deliver('INBOX', MSG('one'), { flags: ['\\Seen'], keywords: ['$Forwarded', 'Junk'] });
  const r2 = await user.deliver('INBOX', MSG('two'), { flags: ['\\Answered', '\\Flagged', '\\Deleted', '\\Draft'] });
  const r3 = await user.deliver('INBOX', Buffer.from('Subject: three\n\nbare LF body\n'));
  assert.deepEqual([r1.uid, r2.uid, r3.uid], [1, 2, 3]);
  await user.create('Sent');
  await user.create('Archive/2024');
  await user.setSubscribed('Sent', true);
  await user.setSubscribed('Archive/2024', true);
  const s1 = await user.deliver('Sent', MSG('sent'), { flags: ['\\Seen'] });
  assert.equal(s1.uid, 1);
  // Postern's own cache file (postern-index) sits next to dovecot-uidlist: Dovecot must ignore it
  // (written once a state is loaded: STATUS/SELECT, not by delivery alone)
  await user.status('INBOX'); await user.status('Sent');
  await flushMailboxIndexes();
  assert.ok(existsSync(join(home, 'Maildir', INDEX_NAME)) && existsSync(join(home, 'Maildir', '.Sent', INDEX_NAME)));
  // and imapd's postern-cache (Mailbox.cacheFile), the same way
  for (const name of ['INBOX', 'Sent']) {
    const box = await user.open(name, { readOnly: true });
    await box.cacheFile!.write(Buffer.from('postern-cache 1\n'));
    await box.close();
  }
  assert.ok(existsSync(join(home, 'Maildir', 'postern-cache')) && existsSync(join(home, 'Maildir', '.Sent', 'postern-cache')));

  const flags = fetchInbox();
  assert.deepEqual([...flags.entries()], [
    [1, ['$Forwarded', 'Junk', '\\Seen']],
    [2, ['\\Answered', '\\Deleted', '\\Draft', '\\Flagged']],
    [3, []],
  ]);
  const st = statusAll();
  assert.deepEqual(st.get('INBOX'), { messages: 3, uidnext: 4, uidvalidity: r1.uidValidity });
  assert.deepEqual(st.get('Sent'), { messages: 1, uidnext: 2, uidvalidity: s1.uidValidity });
  assert.equal(st.get('Archive/2024')?.messages, 0);
  assert.equal(st.get('Archive/2024')?.uidvalidity, (await user.status('Archive/2024')).uidValidity);
  assert.deepEqual(doveadm(['mailbox', 'list', '-s']).trim().split('\n').sort(), ['Archive/2024', 'Sent']);
  // Dovecot lists the missing parent "Archive" too (\Noselect), as Postern's list() does
  assert.deepEqual(doveadm(['mailbox', 'list']).trim().split('\n').sort(), ['Archive', 'Archive/2024', 'INBOX', 'Sent']);
  assert.deepEqual((await user.list()).map((i) => i.name).sort(), ['Archive', 'Archive/2024', 'INBOX', 'Sent']);
  // sizes: RFC822.SIZE Dovecot computes = our vsize (W=)
  const sizes = doveadm(['fetch', 'uid size.virtual', 'mailbox', 'INBOX', 'uid', '3']);
  assert.match(sizes, /size\.virtual: 32/);
});

test('(b) Postern sees what Dovecot wrote; then Dovecot opens Postern\'s changes cleanly', { skip: !have && 'doveadm not installed' }, async () => {
  const box = await user.open('INBOX');
  const before = posternView(box);
  assert.equal(before.size, 3);
  const uv = box.uidValidity;

  doveadm(['save', '-m', 'INBOX'], MSG('from dovecot'));
  doveadm(['flags', 'add', '\\Seen Junk', 'mailbox', 'INBOX', 'uid', '3']);
  doveadm(['flags', 'add', 'NewKeyword', 'mailbox', 'INBOX', 'uid', '4']);
  doveadm(['flags', 'remove', '\\Seen', 'mailbox', 'INBOX', 'uid', '1']);
  doveadm(['expunge', 'mailbox', 'INBOX', 'uid', '2']);
  doveadm(['mailbox', 'create', 'Neu/Unter', 'Entwürfe']);
  doveadm(['mailbox', 'subscribe', 'Entwürfe']);

  const ch = await box.sync();
  assert.equal(ch.uidValidityChanged, false);
  assert.deepEqual(ch.added.map((m) => m.uid), [4]);
  assert.deepEqual(ch.expunged, [2]);
  assert.deepEqual(ch.flagsChanged.map((m) => m.uid).sort(), [1, 3]);
  assert.equal(box.uidValidity, uv);
  assert.deepEqual(posternView(box), fetchInbox());
  assert.deepEqual(box.byUid(4)?.keywords, ['NewKeyword']);

  const names = (await user.list()).map((i) => i.name);
  for (const n of ['Neu/Unter', 'Entwürfe', 'Sent', 'Archive/2024']) assert.ok(names.includes(n), `${n} listed: ${names.join(', ')}`);
  assert.ok((await user.subscriptions()).includes('Entwürfe'));

  // Postern changes the mailbox behind Dovecot's index; Dovecot must follow without errors
  await box.setFlags([4], 'add', ['\\Flagged'], ['$Forwarded']);
  await box.setFlags([1], 'replace', ['\\Answered']);
  await box.expunge([3]);
  const r5 = await user.deliver('INBOX', MSG('five'), { keywords: ['Junk'] });
  assert.equal(r5.uid, 5);
  await box.sync();
  await flushMailboxIndexes();
  assert.deepEqual(fetchInbox(), posternView(box));
  assert.deepEqual(statusAll().get('INBOX'), { messages: 3, uidnext: 6, uidvalidity: uv });
  await user.setSubscribed('Sent', false);
  await user.setSubscribed('Neu/Unter', true);
  assert.deepEqual(doveadm(['mailbox', 'list', '-s']).trim().split('\n').sort(), ['Archive/2024', 'Entwürfe', 'Neu/Unter']);
  await user.rename('Archive/2024', 'Archive/2023');
  await user.delete('Neu/Unter');
  const dl = doveadm(['mailbox', 'list']).trim().split('\n');
  assert.ok(dl.includes('Archive/2023') && !dl.includes('Archive/2024') && !dl.includes('Neu/Unter'), dl.join(','));
  // and the other way once more: Dovecot saves after Postern, UIDs keep increasing
  doveadm(['save', '-m', 'INBOX'], MSG('six'));
  const ch2 = await box.sync();
  assert.deepEqual(ch2.added.map((m) => m.uid), [6]);
  await box.close();
});

test('(c) Dovecot and Postern deliver at the same time: one UID per message, both agree', { skip: !have && 'doveadm not installed' }, async () => {
  const runSave = (n: number) => new Promise<string>((res, rej) => {
    const p = spawn(DOVEADM, ['-c', conf, 'save', '-m', 'Sent'], { env: { ...process.env, USER: 'u1', HOME: home } });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', rej);
    p.on('close', (code) => (code === 0 && !/(Error|Warning|Panic|Fatal):/.test(err) ? res(err) : rej(new Error(`doveadm save ${n}: exit ${code} ${err}`))));
    p.stdin.end(MSG(`dovecot ${n}`));
  });
  const before = (await user.status('Sent')).messages;
  const jobs: Promise<unknown>[] = [];
  for (let i = 0; i < 8; i++) jobs.push(runSave(i));
  for (let i = 0; i < 30; i++) jobs.push(user.deliver('Sent', MSG(`postern ${i}`)));
  const res = await Promise.all(jobs);
  const ours = res.slice(8).map((r) => (r as { uid: number }).uid);
  assert.equal(new Set(ours).size, 30);
  const dv = fetchInbox('Sent');
  assert.equal(dv.size, before + 38, 'Dovecot sees every message once');
  for (const u of ours) assert.ok(dv.has(u), `Postern's UID ${u} is the one Dovecot shows`);
  const box = await user.open('Sent');
  assert.deepEqual(box.messages().map((m) => m.uid), [...dv.keys()].sort((a, b) => a - b));
  await box.close();
});
