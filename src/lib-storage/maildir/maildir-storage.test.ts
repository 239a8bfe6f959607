/**
 * The maildir store on real files: delivery, views and sync() between handles, concurrency
 * (50 deliveries + flag changes at once), Dovecot's uidlist lock, damaged uidlists, hostile
 * names and files. Dovecot itself is exercised in maildir-dovecot.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync, mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync, existsSync, utimesSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { setLogSink } from '../../util/msg.ts';
import { MaildirStore, cleanTmp, dropIdleStates } from './maildir-storage.ts';
import { MailError } from '../mail-error.ts';
import { setDotlockClock } from './maildir-dotlock.ts';
import type { MailUser } from '../mail-storage.ts';
import { pop3Uidl } from '../mail-storage.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const logs: string[] = [];
setLogSink((l) => { logs.push(l); });

async function newUser(sep = '/', extra = ''): Promise<{ u: MailUser; root: string; home: string }> {
  const home = mkdtempSync(join(tmpdir(), 'postern-store-'));
  dirs.push(home);
  const u = await new MaildirStore({ separator: sep }).forUser({ user: 'u@example.org', uid: 0, gid: 0, home, mail: `maildir:~/Maildir${extra}` });
  return { u, root: join(home, 'Maildir'), home };
}

const msg = (n: number | string) => `Subject: ${n}\r\n\r\nbody ${n}\r\n`;

test('deliver → open → sync between two handles: new, flags, expunge, \\Recent once', async () => {
  const { u } = await newUser();
  const a = await u.open('INBOX');
  const b = await u.open('INBOX');
  const r = await u.deliver('INBOX', msg(1));
  assert.equal(r.uid, 1);
  assert.equal(a.messages().length, 0, 'the view changes only in sync()');
  const ca = await a.sync();
  const cb = await b.sync();
  assert.deepEqual(ca.added.map((m) => m.uid), [1]);
  assert.deepEqual(cb.added.map((m) => m.uid), [1]);
  assert.equal(ca.added[0]!.recent !== cb.added[0]!.recent, true, '\\Recent in exactly one session');
  const ms0 = a.highestModseq;
  await a.setFlags([1], 'add', ['\\Seen'], ['Junk']);
  const cb2 = await b.sync();
  assert.deepEqual(cb2.flagsChanged.map((m) => [m.uid, m.flags, m.keywords]), [[1, ['\\Seen'], ['Junk']]]);
  assert.ok(b.byUid(1)!.modseq > ms0);
  await b.expunge([1]);
  assert.deepEqual((await a.sync()).expunged, [1]);
  assert.equal(a.status().messages, 0);
  assert.equal(a.status().uidNext, 2);
  await assert.rejects(a.readContent(1), (e: MailError) => e.code === 'EXPUNGED');
  await a.close(); await b.close();
});

test('content, sizes, INTERNALDATE, POP3 UIDL, copy and move keep flags (UIDPLUS map)', async () => {
  const { u } = await newUser();
  await u.create('Archive');
  const when = new Date('2024-02-03T04:05:06Z');
  const r = await u.deliver('INBOX', 'Subject: x\n\nline\n', { flags: ['\\Flagged'], keywords: ['$Forwarded'], internalDate: when });
  const box = await u.open('INBOX');
  const m = box.byUid(r.uid)!;
  assert.equal(m.size, 17);
  assert.equal(m.vsize, 20, 'RFC822.SIZE counts CRLF');
  assert.equal((await box.readContent(r.uid)).toString(), 'Subject: x\n\nline\n');
  assert.equal((await box.internalDate(r.uid)).getTime(), when.getTime());
  assert.equal(pop3Uidl(1, 0x6b09d276), '000000016b09d276', 'lower case, as Dovecot 2.3 prints it');
  const cp = await box.copy([r.uid], 'Archive');
  assert.deepEqual(cp.map, [[1, 1]]);
  const mv = await box.move([r.uid], 'Archive');
  assert.deepEqual(mv.map, [[1, 2]]);
  assert.deepEqual((await box.sync()).expunged, [1]);
  const arch = await u.open('Archive');
  assert.deepEqual(arch.messages().map((x) => [x.uid, x.flags, x.keywords]), [[1, ['\\Flagged'], ['$Forwarded']], [2, ['\\Flagged'], ['$Forwarded']]]);
  assert.equal((await arch.internalDate(2)).getTime(), when.getTime());
  await box.close(); await arch.close();
});

test('50 concurrent deliveries + flag changes on two handles: one UID each, strictly increasing, no lost flags', async () => {
  const { u, root } = await newUser();
  const a = await u.open('INBOX');
  const b = await u.open('INBOX');
  for (let i = 0; i < 10; i++) await u.deliver('INBOX', msg(`pre${i}`));
  await a.sync(); await b.sync();
  const ops: Promise<unknown>[] = [];
  for (let i = 0; i < 50; i++) ops.push(u.deliver('INBOX', msg(i)));
  for (let i = 1; i <= 10; i++) {
    ops.push(a.setFlags([i], 'add', ['\\Seen']));
    ops.push(b.setFlags([i], 'add', ['\\Flagged'], ['K' + (i % 3)]));
  }
  const res = await Promise.all(ops);
  const uids = res.slice(0, 50).map((x) => (x as { uid: number }).uid);
  assert.equal(new Set(uids).size, 50, 'every message got its own UID');
  assert.deepEqual([...uids].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => 11 + i));
  await a.sync();
  assert.equal(a.messages().length, 60);
  for (let i = 1; i <= 10; i++) assert.deepEqual(a.byUid(i)!.flags, ['\\Seen', '\\Flagged'], `uid ${i}`);
  const ul = readFileSync(join(root, 'dovecot-uidlist'), 'latin1').trim().split('\n').slice(1).map((l) => Number(l.split(' ')[0]));
  assert.deepEqual(ul, Array.from({ length: 60 }, (_, i) => i + 1), 'uidlist strictly increasing, no duplicates');
  assert.equal(readdirSync(join(root, 'tmp')).length, 0);
  await a.close(); await b.close();
});

test('dovecot-uidlist.lock held by another process: Postern waits, proceeds after release; stale lock is overridden', async () => {
  const { u, root } = await newUser();
  await u.deliver('INBOX', msg(1));
  const lock = join(root, 'dovecot-uidlist.lock');
  writeFileSync(lock, `1:${hostname()}`);   // pid 1 is alive: Dovecot would wait too
  let done = false;
  const p = u.deliver('INBOX', msg(2)).then((r) => { done = true; return r; });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(done, false, 'waits while the lock is held');
  rmSync(lock);
  assert.equal((await p).uid, 2);
  // stale: no pid, neither the lock nor dovecot-uidlist changed for more than 120 s. Dovecot
  // counts the lock's ctime, which a test cannot set back, so the clock moves forward instead.
  // The lock rules' clock follows the file system's (from the lock's own ctime), as on a real
  // server, even when the process clock disagrees (npm run test:clock).
  writeFileSync(lock, '');
  const fsNow = statSync(lock).ctimeMs;
  const t0 = performance.now();
  const fsClock = (ahead: number) => () => fsNow + (performance.now() - t0) + ahead;
  const old = new Date(fsNow - 200_000);
  utimesSync(lock, old, old);
  utimesSync(join(root, 'dovecot-uidlist'), old, old);
  const real = setDotlockClock(fsClock(0));
  try {
    let p3done = false;
    const p3 = u.deliver('INBOX', msg(3)).then((x) => { p3done = true; return x; });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(p3done, false, 'a fresh lock without pid is respected');
    setDotlockClock(fsClock(125_000));
    assert.equal((await p3).uid, 3, 'overridden once 120 s passed without change');
  } finally { setDotlockClock(real); }
  // a lock of a dead process on this host is overridden once it is 2 s old
  writeFileSync(lock, `999999999:${hostname()}`);
  const old2 = new Date(Date.now() - 5000);
  utimesSync(lock, old2, old2);
  assert.equal((await u.deliver('INBOX', msg(4))).uid, 4);
  assert.equal(existsSync(lock), false);
});

test('garbage or truncated dovecot-uidlist: UIDs and UIDVALIDITY kept when the header survives, warning logged', async () => {
  const { u, root } = await newUser();
  for (let i = 0; i < 3; i++) await u.deliver('INBOX', msg(i));
  const box = await u.open('INBOX');
  const uv = box.uidValidity;
  await box.close();
  const path = join(root, 'dovecot-uidlist');
  const lines = readFileSync(path, 'latin1').split('\n');
  // line 3 garbled, file truncated in the middle of the last record
  writeFileSync(path, [lines[0], lines[1], 'zz\0garbage', lines[3]!.slice(0, 5)].join('\n'));
  logs.length = 0;
  const b2 = await u.open('INBOX');
  assert.equal(b2.uidValidity, uv, 'UIDVALIDITY kept');
  // uid 1 kept; the two files whose lines were lost are numbered again: from this process's
  // next UID (4, 5) while it remembers it, else from the header / dovecot.index next UID
  const uids = b2.messages().map((m) => m.uid);
  assert.equal(uids.length, 3);
  assert.equal(uids[0], 1);
  assert.deepEqual(uids.slice(1), [4, 5]);
  assert.doesNotMatch(readFileSync(path, 'latin1'), /garbage/, 'rewritten without the bad lines');
  assert.ok(logs.some((l) => /warning: .*dovecot-uidlist:3: /.test(l)), logs.join('\n'));
  await b2.close();
  // unusable header: this process still knows the UIDVALIDITY, so it is kept
  writeFileSync(path, 'total garbage\n');
  const b2b = await u.open('INBOX');
  assert.equal(b2b.uidValidity, uv);
  await b2b.close();
  // unusable header, no Dovecot index, nothing remembered: new UIDVALIDITY, with a warning
  writeFileSync(path, 'total garbage\n');
  dropIdleStates();
  logs.length = 0;
  const b3 = await u.open('INBOX');
  assert.notEqual(b3.uidValidity, uv);
  assert.equal(b3.messages().length, 3);
  assert.ok(logs.some((l) => /new UIDVALIDITY/.test(l)));
  await b3.close();
});

test('odd files in new/ and cur/, a 0-byte message, files delivered by others without sizes', async () => {
  const { u, root } = await newUser();
  await u.deliver('INBOX', '');
  writeFileSync(join(root, 'new', '.hidden'), 'x');
  writeFileSync(join(root, 'new', '1700000000.V801I2M3.other'), 'Subject: pf\n\nfrom postfix virtual\n');
  writeFileSync(join(root, 'cur', 'weird name with spaces:2,S'), 'Subject: w\n\n');
  mkdirSync(join(root, 'new', 'adir'));
  const secret = join(root, '..', 'secret.txt');
  writeFileSync(secret, 'root password');
  symlinkSync(secret, join(root, 'cur', '1700000002.M1P1.link:2,S'));
  const box = await u.open('INBOX');
  const ms = box.messages();
  assert.equal(ms.length, 3);
  assert.equal(ms[0]!.size, 0);
  const pf = ms.find((m) => m.guid === '1700000000.V801I2M3.other')!;
  assert.equal(pf.size, 34); assert.equal(pf.vsize, 37);
  assert.ok(existsSync(join(root, 'cur', '1700000000.V801I2M3.other:2,')), 'moved new/ → cur/ with ":2,"');
  assert.ok(existsSync(join(root, 'new', '.hidden')));
  assert.ok(!ms.some((m) => m.guid.includes('link')), 'a symlink is never a message');
  await box.close();
  // tmp/ leftovers of a crash: removed after 36 h (Maildir spec), fresh ones kept
  writeFileSync(join(root, 'tmp', 'fresh'), 'x');
  writeFileSync(join(root, 'tmp', 'old'), 'x');
  // 37 h after the file's own mtime (set by the file system) AND after the process clock: the
  // two may disagree (a clock stepped, or the test run under faketime), the age is measured
  // against the first, the 8-hour scan interval (opening INBOX scanned already) on the second.
  const later = Math.max(statSync(join(root, 'tmp', 'old')).mtimeMs, Date.now()) + 37 * 3600 * 1000;
  utimesSync(join(root, 'tmp', 'fresh'), new Date(later), new Date(later));
  assert.equal(await cleanTmp(root + '-other'), 0);
  assert.equal(await cleanTmp(root, later), 1);
  assert.deepEqual(readdirSync(join(root, 'tmp')), ['fresh']);
});

test('hostile mailbox names are refused with PARAMS and nothing outside the root is touched', async () => {
  const { u, home } = await newUser();
  const bad = ['', '..', 'a/../../etc', '../x', 'a//b', '/abs', 'x\0y', 'x'.repeat(10000), 'tab\there', 'a/./b', '~root', 'a.b', '\ud800'];
  for (const n of bad) {
    for (const op of [() => u.create(n), () => u.deliver(n, msg(1)), () => u.open(n), () => u.delete(n), () => u.setSubscribed(n, true)]) {
      await assert.rejects(op(), (e: unknown) => e instanceof MailError && e.code === 'PARAMS' && !e.message.includes(home), `name ${JSON.stringify(n.slice(0, 20))}`);
    }
  }
  const { u: dotU } = await newUser('.');
  await assert.rejects(dotU.create('a/b'), (e: MailError) => e.code === 'PARAMS');
  await assert.rejects(u.open('Nope'), (e: MailError) => e.code === 'NOTFOUND');
  await assert.rejects(u.delete('INBOX'), (e: MailError) => e.code === 'PERM');
  await u.create('Ok');
  await assert.rejects(u.create('Ok'), (e: MailError) => e.code === 'EXISTS', 'creating an existing mailbox again');
  assert.deepEqual(readdirSync(home), ['Maildir']);
});

test('inbox name is case-insensitive, mUTF-7 on disk, LAYOUT=fs paths', async () => {
  const { u, root } = await newUser('/', ':LAYOUT=fs');
  await u.create('Entwürfe/2024');
  await u.deliver('inbox', msg(1));
  assert.ok(existsSync(join(root, 'Entw&APw-rfe', '2024', 'cur')));
  assert.equal((await u.status('INBOX')).messages, 1);
  const names = (await u.list()).map((i) => i.name);
  assert.deepEqual(names, ['INBOX', 'Entwürfe', 'Entwürfe/2024']);
});

test('watch(): an in-process delivery and an outside writer wake the session', async () => {
  const { u, root } = await newUser();
  const box = await u.open('INBOX');
  let n = 0;
  const wake = () => new Promise<void>((res) => { const off = box.watch(() => { n++; off(); res(); }); });
  let w = wake();
  await u.deliver('INBOX', msg(1));
  await w;
  w = wake();
  writeFileSync(join(root, 'new', '1700000001.M1P1.elsewhere'), msg(2));
  await w;
  assert.equal(n, 2);
  assert.deepEqual((await box.sync()).added.map((m) => m.uid), [1, 2]);
  await box.close();
});

test('quota usage and NOQUOTA, TOOBIG', async () => {
  const home = mkdtempSync(join(tmpdir(), 'postern-store-'));
  dirs.push(home);
  const u = await new MaildirStore().forUser({ user: 'q', uid: 0, gid: 0, home, mail: 'maildir:~/Maildir', quotaBytes: 50 });
  await u.deliver('INBOX', msg(1));
  const q = await u.quota();
  assert.deepEqual([q.bytes, q.messages, q.limitBytes], [22, 1, 50]);
  await u.deliver('INBOX', msg(2));
  await assert.rejects(u.deliver('INBOX', msg(3)), (e: MailError) => e.code === 'NOQUOTA');
  await assert.rejects(u.deliver('INBOX', 'x'.repeat(100), { maxSize: 50, ignoreQuota: true }), (e: MailError) => e.code === 'TOOBIG');
  assert.equal(readdirSync(join(home, 'Maildir', 'tmp')).length, 0);
});

test('concurrent first deliveries into a new user\'s INBOX all succeed (mkdir races tolerated)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-race-'));
  try {
    const u = await new MaildirStore().forUser({ user: 'race@example.test', uid: 0, gid: 0, home: dir, mail: `maildir:${dir}/Maildir` });
    const r = await Promise.all(Array.from({ length: 8 }, (_, i) => u.deliver('INBOX', `Subject: ${i}\n\nx\n`)));
    assert.equal(new Set(r.map((x) => x.uid)).size, 8);
    assert.equal(readdirSync(join(dir, 'Maildir', 'new')).length, 8);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('STORE on a whole mailbox: one batch of renames that another handle, the disk and a later outside change all agree with', async () => {
  const { u, root } = await newUser();
  for (let i = 0; i < 300; i++) await u.deliver('INBOX', msg(i));
  const a = await u.open('INBOX');
  const b = await u.open('INBOX');
  const uids = a.messages().map((m) => m.uid);
  const r = await a.setFlags(uids, 'add', ['\\Flagged']);
  assert.equal(r.changed.length, 300);
  const cb = await b.sync();
  assert.equal(cb.flagsChanged.length, 300, 'the other handle sees every change');
  const onDisk = readdirSync(join(root, 'cur'));
  assert.equal(onDisk.length, 300);
  assert.ok(onDisk.every((n) => /:2,F$/.test(n)), 'every file carries F, for Dovecot to read');
  assert.equal((await a.setFlags(uids, 'add', ['\\Flagged'])).changed.length, 0, 'nothing to rename twice');
  // an outside writer (a shell mv, Dovecot) renames a file right after our STORE, maybe inside
  // the same mtime tick: found at the latest by the re-read a second later (Dovecot's rule)
  const victim = onDisk.find((n) => n.includes(b.byUid(uids[7]!)!.guid))!;
  const { renameSync } = await import('node:fs');
  renameSync(join(root, 'cur', victim), join(root, 'cur', victim.replace(/:2,F$/, ':2,FS')));
  await a.sync();
  await new Promise((res) => setTimeout(res, 1100));
  const ca = await a.sync();
  assert.deepEqual(a.byUid(uids[7]!)!.flags, ['\\Seen', '\\Flagged'], `outside change found (${ca.flagsChanged.length} changes)`);
  // renamed behind our back right before the next STORE: found by one rescan, and the STORE's
  // change applies to the flags found there (the outside \Deleted stays), as Dovecot does
  const guid9 = b.byUid(uids[9]!)!.guid;
  const other = readdirSync(join(root, 'cur')).find((n) => n.includes(guid9))!;
  renameSync(join(root, 'cur', other), join(root, 'cur', other.replace(/:2,.*$/, ':2,FT')));
  const back = await a.setFlags(uids, 'remove', ['\\Flagged']);
  assert.equal(back.changed.length, 300);
  const after = readdirSync(join(root, 'cur'));
  assert.ok(after.find((n) => n.includes(guid9))!.endsWith(':2,T'), 'the outside change is kept');
  assert.ok(after.filter((n) => !n.includes(guid9)).every((n) => /:2,S?$/.test(n)));
  await a.close(); await b.close();
});

test('readMany: every message once, expunged ones skipped, a file renamed behind our back still found', async () => {
  const { u, root } = await newUser();
  for (let i = 0; i < 40; i++) await u.deliver('INBOX', msg(i));
  const a = await u.open('INBOX');
  const b = await u.open('INBOX');
  const uids = a.messages().map((m) => m.uid);
  await b.expunge([uids[3]!]);
  const name = readdirSync(join(root, 'cur')).find((n) => n.includes(a.byUid(uids[5]!)!.guid))!;
  const { renameSync } = await import('node:fs');
  renameSync(join(root, 'cur', name), join(root, 'cur', name.replace(/:2,.*$/, ':2,S')));
  const got = new Map<number, string>();
  await a.readMany(uids, (i, content) => { assert.ok(!got.has(i), 'once'); got.set(i, content.toString()); });
  assert.equal(got.size, 39);
  assert.ok(!got.has(3), 'the expunged message is skipped');
  for (const [i, text] of got) assert.equal(text, msg(i));
  await a.close(); await b.close();
});
