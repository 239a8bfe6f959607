/**
 * postern-index (maildir-index.ts): CONDSTORE modseqs survive a restart of the store for
 * messages nobody changed, changes made while Postern was down (an outside writer renaming in
 * cur/) get a higher modseq, HIGHESTMODSEQ never goes backwards, and a damaged, foreign or
 * deleted index is ignored safely. A "restart" is: close every handle, write pending indexes
 * (as at process stop), forget every in-memory state, open again with a new MaildirStore.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, renameSync, existsSync, unlinkSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileOfUid } from '../../../test/harness/maildir-testkit.ts';
import { setLogSink } from '../../util/msg.ts';
import { MaildirStore, dropIdleStates } from './maildir-storage.ts';
import { flushMailboxIndexes } from './maildir-state.ts';
import type { MaildirState } from './maildir-sync.ts';
import { INDEX_NAME, parseIndex, formatIndex, MODSEQ_MAX } from './maildir-index.ts';
import type { Mailbox, MailUser } from '../mail-storage.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const logs: string[] = [];
setLogSink((l) => { logs.push(l); });

const msg = (n: number) => `Subject: ${n}\r\n\r\nbody ${n}\r\n`;

async function userAt(home: string): Promise<MailUser> {
  return new MaildirStore({ separator: '/' }).forUser({ user: 'u@example.org', uid: 0, gid: 0, home, mail: 'maildir:~/Maildir' });
}

/** A mailbox with `n` messages, flags set on some, then "Postern stops". */
async function setup(n: number): Promise<{ home: string; root: string; before: Map<number, number>; highest: number }> {
  const home = mkdtempSync(join(tmpdir(), 'postern-index-'));
  dirs.push(home);
  const u = await userAt(home);
  for (let i = 1; i <= n; i++) await u.deliver('INBOX', msg(i));
  const box = await u.open('INBOX');
  await box.setFlags([2], 'add', ['\\Seen']);
  await box.sync();
  const before = modseqs(box);
  const highest = box.highestModseq;
  await box.close();
  await restart();
  return { home, root: join(home, 'Maildir'), before, highest };
}

async function restart(): Promise<void> {
  await flushMailboxIndexes();
  dropIdleStates();
}

function modseqs(box: Mailbox): Map<number, number> {
  return new Map(box.messages().map((m) => [m.uid, m.modseq]));
}

/** What `FETCH 1:* (FLAGS) (CHANGEDSINCE x)` returns: UIDs with modseq > x. */
function changedSince(box: Mailbox, x: number): number[] {
  return box.messages().filter((m) => m.modseq > x).map((m) => m.uid);
}

test('restart: unchanged messages keep their modseq; CHANGEDSINCE returns only what changed', async () => {
  const { home, root, before, highest } = await setup(4);
  assert.ok(existsSync(join(root, INDEX_NAME)), 'index written at stop');
  assert.match(readFileSync(join(root, INDEX_NAME), 'latin1'), /^postern-index 1 C\n/, 'clean: no writable handle open');
  const u = await userAt(home);
  const box = await u.open('INBOX');
  assert.deepEqual(modseqs(box), before, 'every modseq as before the restart');
  assert.ok(box.highestModseq >= highest, 'HIGHESTMODSEQ did not go backwards');
  assert.deepEqual(changedSince(box, highest), []);
  // a change after the restart is above everything a client saw before it
  await box.setFlags([3], 'add', ['\\Flagged']);
  await box.sync();
  assert.deepEqual(changedSince(box, highest), [3]);
  assert.ok(box.highestModseq > highest);
  await box.close();
});

test('a flag changed by an outside writer while Postern was down gets a higher modseq', async () => {
  const { home, root, before, highest } = await setup(3);
  // mutt/Dovecot: rename in cur/ adding F to the file of UID 1 (the first delivered)
  const f = fileOfUid(root, 1);
  renameSync(join(root, 'cur', f), join(root, 'cur', f.replace(/:2,.*$/, ':2,F')));
  // and one message removed while down: QRESYNC must learn it was expunged
  unlinkSync(join(root, 'cur', fileOfUid(root, 3)));
  const u = await userAt(home);
  const box = await u.open('INBOX');
  assert.deepEqual(changedSince(box, highest), [1]);
  assert.deepEqual(box.byUid(1)!.flags, ['\\Flagged']);
  assert.equal(box.byUid(2)!.modseq, before.get(2), 'untouched message kept its modseq');
  assert.equal(box.byUid(3), undefined);
  await box.close();
  await restart();
  const idx = parseIndex(readFileSync(join(root, INDEX_NAME), 'latin1'));
  assert.ok(typeof idx !== 'string', String(idx));
  assert.deepEqual(idx.expunges.map((e) => e.uid), [3], 'expunge while down recorded for QRESYNC');
  assert.ok(idx.expunges[0]!.modseq > highest);
});

test('expunges get modseqs (QRESYNC) that survive a restart', async () => {
  const { home, root, highest } = await setup(3);
  const u = await userAt(home);
  const box = await u.open('INBOX');
  await box.expunge([2]);
  await box.sync();
  const h2 = box.highestModseq;
  assert.ok(h2 > highest, 'EXPUNGE raises HIGHESTMODSEQ');
  await box.close();
  await restart();
  const idx = parseIndex(readFileSync(join(root, INDEX_NAME), 'latin1'));
  assert.ok(typeof idx !== 'string');
  assert.deepEqual(idx.expunges, [{ uid: 2, modseq: h2 }]);
  const box2 = await (await userAt(home)).open('INBOX');
  assert.ok(box2.highestModseq > h2);
  const state = (box2 as unknown as { state: MaildirState }).state;
  assert.deepEqual(state.expungedSince(highest), [2], 'QRESYNC: expunged since the client\'s modseq');
  assert.deepEqual(state.expungedSince(h2), []);
  assert.equal(state.expungedSince(0), undefined, 'before the history starts: unknown (answer a superset)');
  await box2.close();
});

test('crash while a writable handle was open and cur/ changed since: no persisted modseq is trusted', async () => {
  const { home, root, highest } = await setup(3);
  const u = await userAt(home);
  const box = await u.open('INBOX');
  assert.match(readFileSync(join(root, INDEX_NAME), 'latin1'), /^postern-index 1 D\n/, 'a writable open marks the index dirty');
  await box.setFlags([1], 'add', ['\\Answered']);
  await flushMailboxIndexes();
  const dirty = join(home, 'dirty-copy');
  copyFileSync(join(root, INDEX_NAME), dirty);
  assert.match(readFileSync(dirty, 'latin1'), /^postern-index 1 D\n/, 'written while the handle is open: dirty');
  // A→B→A after the last write, then a crash: the file still says A with an old modseq
  await box.setFlags([2], 'add', ['\\Flagged']);
  await box.setFlags([2], 'remove', ['\\Flagged']);
  const hCrash = box.highestModseq;
  await box.sync();
  const seen = box.highestModseq;
  await box.close();
  await restart();
  copyFileSync(dirty, join(root, INDEX_NAME));
  const box2 = await (await userAt(home)).open('INBOX');
  assert.deepEqual(changedSince(box2, Math.max(hCrash, seen)), [1, 2, 3], 'everything looks changed, as without an index');
  await box2.close();
});

test('damaged, foreign or absurd index files are ignored with a warning; HIGHESTMODSEQ never decreases', async () => {
  const { home, root, highest } = await setup(3);
  const path = join(root, INDEX_NAME);
  const good = readFileSync(path, 'latin1');
  const lines = good.split('\n');
  const uv = /^V(\d+)/.exec(lines[1]!)![1]!;
  const cases: Array<[string, string]> = [
    ['garbage', '\x00\x01binary junk\n\n'],
    ['truncated', good.slice(0, Math.floor(good.length * 0.6))],
    ['wrong version', good.replace('postern-index 1 ', 'postern-index 9 ')],
    ['wrong UIDVALIDITY', good.replace(`V${uv} `, `V${Number(uv) + 1} `)],
    ['huge HIGHESTMODSEQ', good.replace(/ H\d+ /, ` H${MODSEQ_MAX + 1} `)],
    ['huge number', good.replace(/ H\d+ /, ' H99999999999999999999 ')],
    ['UIDs out of order', [lines[0], lines[1], lines[3], lines[2], ...lines.slice(4)].join('\n')],
    ['empty', ''],
  ];
  let floor = highest;
  for (const [what, text] of cases) {
    writeFileSync(path, text, 'latin1');
    logs.length = 0;
    const box = await (await userAt(home)).open('INBOX');
    assert.equal(box.messages().length, 3, what);
    assert.ok(box.highestModseq > floor, `${what}: HIGHESTMODSEQ ${box.highestModseq} > ${floor}`);
    assert.deepEqual(changedSince(box, floor), [1, 2, 3], `${what}: all messages look changed`);
    assert.ok(logs.some((l) => l.includes(INDEX_NAME) && l.includes('ignored')), `${what}: warning logged: ${logs.join(' | ')}`);
    floor = box.highestModseq;
    await box.close();
    await restart();
  }
});

test('a persisted HIGHESTMODSEQ above the clock is respected (never backwards)', async () => {
  const { home, root } = await setup(2);
  const path = join(root, INDEX_NAME);
  const future = Date.now() * 1000 + 10 ** 12;
  writeFileSync(path, readFileSync(path, 'latin1').replace(/ H\d+ /, ` H${future} `), 'latin1');
  const box = await (await userAt(home)).open('INBOX');
  assert.ok(box.highestModseq > future);
  await box.close();
});

test('deleting the index is harmless: same messages and flags, modseqs restart above the old ones', async () => {
  const { home, root, highest } = await setup(3);
  unlinkSync(join(root, INDEX_NAME));
  logs.length = 0;
  const box = await (await userAt(home)).open('INBOX');
  assert.deepEqual(box.messages().map((m) => [m.uid, m.flags]), [[1, []], [2, ['\\Seen']], [3, []]]);
  assert.ok(box.highestModseq > highest);
  assert.deepEqual(changedSince(box, highest), [1, 2, 3]);
  assert.ok(!logs.some((l) => l.includes(INDEX_NAME)), 'a missing index is not a problem');
  await box.close();
  await restart();
  assert.ok(existsSync(join(root, INDEX_NAME)), 'rewritten');
});

test('format: round trip, and the per-message suffix is what decides', () => {
  const text = formatIndex({
    uidValidity: 1700000000, highestModseq: 1_700_000_000_000_010, clean: true, curMtimeNs: 5n, curCheckNs: 7n,
    expungesFrom: 1_700_000_000_000_001, expunges: [{ uid: 4, modseq: 1_700_000_000_000_009 }],
    recs: [
      { uid: 1, modseq: 1_700_000_000_000_000, base: '1.M1P1.h,S=10,W=11', fname: '1.M1P1.h,S=10,W=11:2,S' },
      { uid: 7, modseq: 1_700_000_000_000_010, base: '2.M1P1.h', fname: '2.M1P1.h' },
    ],
  });
  const d = parseIndex(text);
  assert.ok(typeof d !== 'string', String(d));
  assert.equal(d.clean, true);
  assert.deepEqual([...d.msgs], [[1, { modseq: 1_700_000_000_000_000, suffix: ':2,S' }], [7, { modseq: 1_700_000_000_000_010, suffix: '' }]]);
  assert.deepEqual(d.expunges, [{ uid: 4, modseq: 1_700_000_000_000_009 }]);
  assert.equal(d.expungesFrom, 1_700_000_000_000_001);
  assert.equal(typeof parseIndex(text.replace('\n.\n', '\n')), 'string', 'no end marker: truncated');
});
