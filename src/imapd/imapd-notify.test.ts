/**
 * NOTIFY (RFC 5465) under hostile use, on Postern's imapd (test/harness/imapd-testkit.ts) with
 * raw clients: NOTIFY over 10,000 mailboxes (bounded memory, the others are served meanwhile,
 * an arrival in the last mailbox still reported), malformed NOTIFY commands (the session goes on),
 * and a client that stops reading while events pile up: no queue grows, the session is told
 * `* OK [NOTIFICATIONOVERFLOW]` and goes on as after NOTIFY NONE (§5.8). SELECTED-DELAYED under
 * a stream of expunges racing arrivals: no EXPUNGE ever reaches the client between commands.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectImap, startFixture, stripTiming, type Fixture } from '../../test/harness/imapd-testkit.ts';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { NOTIFY_MAX_PENDING } from './imapd-notify.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let fx: Fixture;
before(async () => { fx = await startFixture({ users: [['many@x.test', 'pw'], ['bad@x.test', 'pw'], ['slow@x.test', 'pw'], ['ext@x.test', 'pw'], ['delay@x.test', 'pw']] }); });
after(async () => { await fx?.stop(); });

/** Maildir++ folders made on disk, as a migration leaves them. */
function makeFolders(user: string, n: number, name: (i: number) => string = (i) => `f${String(i).padStart(5, '0')}`): void {
  const root = fx.maildir(user);
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(root, sub), { recursive: true });
  for (let i = 0; i < n; i++) {
    const d = join(root, '.' + name(i).replaceAll('/', '.'));
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(d, sub), { recursive: true });
    writeFileSync(join(d, 'maildirfolder'), '');
    // a uidlist as Dovecot leaves it (so STATUS only reads)
    writeFileSync(join(d, 'dovecot-uidlist'), `3 V${1_700_000_000 + i} N1 G${(0x1000000 + i).toString(16).padStart(32, '0')}\n`);
  }
}

const lit = (m: string): string => `{${Buffer.byteLength(m)}+}\r\n${m}`;
const M = 'Subject: x\r\n\r\nbody\r\n';

test('NOTIFY over 10,000 mailboxes: bounded memory and time, others served, the last one still reported', { timeout: 120_000 }, async (t) => {
  // g0/f00000 ... g9/f09999: ten subtrees of 1,000
  makeFolders('many@x.test', 10_000, (i) => `g${Math.floor(i / 1000)}/f${String(i).padStart(5, '0')}`);
  const a = await connectImap(fx.port);
  const b = await connectImap(fx.port);
  await a.tagged('l', 'LOGIN many@x.test pw');
  await b.tagged('l', 'LOGIN many@x.test pw');
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  // without STATUS: nothing is read for most of them now
  const q0 = performance.now();
  assert.match(stripTiming(await a.tagged('q', 'NOTIFY SET (personal (MessageNew MessageExpunge))', 60_000)).slice(-100), /q OK NOTIFY completed/);
  const quickMs = performance.now() - q0;
  const t0 = performance.now();
  // with STATUS: 1,000 STATUS lines for one subtree, while the other session is answered
  const set = a.tagged('n', 'NOTIFY SET STATUS (subtree g9 (MessageNew MessageExpunge))', 100_000);
  // another session is answered while the 10,000 STATUS lines are worked out
  const noop = stripTiming(await b.tagged('b1', 'NOOP', 30_000));
  const noopMs = performance.now() - t0;
  const out = await set;
  const setMs = performance.now() - t0;
  assert.match(noop, /b1 OK NOOP completed/);
  assert.match(out.slice(-100), /n OK NOTIFY completed/);
  const lines = out.split('\r\n').filter((l) => l.startsWith('* STATUS '));
  assert.equal(lines.filter((l) => /^\* STATUS g9\/f09\d{3} \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ UNSEEN 0\)$/.test(l)).length, 1000, 'every mailbox of the subtree');
  assert.equal(lines.length, 1000);
  gc();
  const heapMb = (process.memoryUsage().heapUsed - heap0) / 1e6; // what stays: the session's baselines
  t.diagnostic(`NOTIFY SET over 10,000 mailboxes: ${quickMs.toFixed(0)} ms; with STATUS over 1,000 of them: ${setMs.toFixed(0)} ms; other session's NOOP answered after ${noopMs.toFixed(0)} ms; heap +${heapMb.toFixed(1)} MB`);
  assert.ok(heapMb < 32, `heap grew ${heapMb} MB`);
  // the last mailbox is past any per-mailbox watch: the change bus still reports it
  assert.match(stripTiming(await b.tagged('b2', `APPEND g9/f09999 ${lit(M)}`)), /b2 OK/);
  assert.match(await a.waitFor(/\* STATUS g9\/f09999 [^\r]*\r\n/, 10_000), /\* STATUS g9\/f09999 \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)/);
  // and one outside that subtree, after NOTIFY over all 10,000 without STATUS
  assert.match(stripTiming(await a.tagged('r', 'NOTIFY SET (personal (MessageNew MessageExpunge))', 60_000)).slice(-100), /r OK NOTIFY completed/);
  assert.match(stripTiming(await b.tagged('b3', `APPEND g5/f05555 ${lit(M)}`)), /b3 OK/);
  assert.match(await a.waitFor(/\* STATUS g5\/f05555 [^\r]*\r\n/, 10_000), /\* STATUS g5\/f05555 \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)/);
  // Dovecot's limit on names in one filter
  const names = Array.from({ length: 101 }, (_, i) => `g0/f${String(i).padStart(5, '0')}`).join(' ');
  assert.match(stripTiming(await a.tagged('o', `NOTIFY SET (mailboxes (${names}) (MessageNew))`)), /o NO \[NOTIFICATIONOVERFLOW\] Too many mailbox names/);
  assert.match(stripTiming(await a.tagged('z', 'NOTIFY NONE')), /z OK NOTIFY completed/);
  a.close(); b.close();
});

test('changes made by another process (files written into the Maildir): reported through inotify', { timeout: 60_000 }, async () => {
  makeFolders('ext@x.test', 3);
  const a = await connectImap(fx.port);
  await a.tagged('l', 'LOGIN ext@x.test pw');
  assert.match(stripTiming(await a.tagged('n', 'NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))')), /n OK NOTIFY completed/);
  // a delivery as Dovecot's LDA or a shell would do it: tmp/ then new/
  const root = fx.maildir('ext@x.test');
  const m = 'Subject: from outside\n\nbody\n';
  writeFileSync(join(root, '.f00001', 'tmp', '1700000001.M1P99.other'), m);
  renameSync(join(root, '.f00001', 'tmp', '1700000001.M1P99.other'), join(root, '.f00001', 'new', '1700000001.M1P99.other'));
  assert.match(await a.waitFor(/\* STATUS f00001 [^\r]*\r\n/, 15_000), /\* STATUS f00001 \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)/);
  // a mailbox made by another program
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(root, '.Outside', sub), { recursive: true });
  assert.match(await a.waitFor(/\* LIST [^\r]*\r\n/, 15_000), /\* LIST \(\) "\/" Outside/);
  a.close();
});

test('malformed NOTIFY: each answered, the session and others go on', { timeout: 60_000 }, async () => {
  const a = await connectImap(fx.port);
  await a.tagged('l', 'LOGIN bad@x.test pw');
  const bad: (string | Buffer)[] = [
    'NOTIFY SET (', 'NOTIFY SET ' + '('.repeat(5000) + ')'.repeat(5000), 'NOTIFY SET (personal (' + 'MessageNew '.repeat(5000) + '))',
    Buffer.from('NOTIFY SET (mailboxes "a\0b" (MessageNew))', 'latin1'), Buffer.from('NOTIFY SET (mailboxes \xe4 (MessageNew))', 'latin1'),
    `NOTIFY SET (mailboxes "${'a'.repeat(60_000)}" (MessageNew))`, 'NOTIFY SET (selected (MessageNew (BODY[ MessageExpunge))',
    'NOTIFY SET (selected (MessageNew (FLAGS) (UID) MessageExpunge))', 'NOTIFY SET (subtree (a (b)) (MessageNew))',
    'NOTIFY SET (subtree NIL (MessageNew))', 'NOTIFY SET STATUS STATUS (personal (MessageNew))', 'NOTIFY SET (personal (MessageNew)) x',
    'NOTIFY SET (selected (MessageNew MessageExpunge)) (SELECTED (MessageNew MessageExpunge))', 'NOTIFY SET ((personal) (MessageNew))',
    'NOTIFY SET {5+}\r\n(((((', 'NOTIFY NONE NONE NONE',
  ];
  for (const [i, cmd] of bad.entries()) {
    const r = stripTiming(await a.tagged(`m${i}`, cmd));
    assert.match(r.slice(-300), new RegExp(`m${i} (OK|NO|BAD) `), `answer to ${cmd.toString().slice(0, 60)}: ${r.slice(0, 200)}`);
  }
  assert.match(stripTiming(await a.tagged('n', 'NOOP')), /n OK NOOP completed/);
  const b = await connectImap(fx.port);
  assert.match(stripTiming(await b.tagged('l', 'LOGIN bad@x.test pw')), /l OK/);
  a.close(); b.close();
});

test('a NOTIFY client that stops reading: no queue, NOTIFICATIONOVERFLOW, then as NOTIFY NONE', { timeout: 120_000 }, async (t) => {
  const n = NOTIFY_MAX_PENDING + 50;
  makeFolders('slow@x.test', n);
  // a message big enough that its FETCH fills every buffer between us and the paused client
  const big = 'Subject: big\r\n\r\n' + ('x'.repeat(998) + '\r\n').repeat(40_000);
  writeFileSync(join(fx.maildir('slow@x.test'), 'cur', `1700000000.M1P1.host,S=${big.length}:2,`), big);
  const a = await connectImap(fx.port);
  const b = await connectImap(fx.port);
  await a.tagged('l', 'LOGIN slow@x.test pw');
  await b.tagged('l', 'LOGIN slow@x.test pw');
  assert.match(stripTiming(await a.tagged('n', 'NOTIFY SET (personal (MessageNew MessageExpunge))', 60_000)), /n OK NOTIFY completed/);
  await a.tagged('s', 'SELECT INBOX');
  a.sock.pause();
  a.send('f FETCH 1 BODY.PEEK[]\r\n');
  await new Promise((r) => setTimeout(r, 500));
  // one arrival in each of more mailboxes than a session keeps pending
  let cmds = '';
  for (let i = 0; i < n; i++) cmds += `p${i} APPEND f${String(i).padStart(5, '0')} ${lit(M)}\r\n`;
  b.send(cmds);
  const last = await b.waitFor(new RegExp(`p${n - 1} (OK|NO|BAD)[^\\r]*\\r\\n`), 100_000);
  assert.equal((last.match(/^p\d+ OK/gm) ?? []).length, n, 'every APPEND of the other session answered');
  gc();
  const heap = process.memoryUsage().heapUsed / 1e6;
  t.diagnostic(`heap with the paused client: ${heap.toFixed(0)} MB`);
  a.sock.resume();
  const rest = await a.waitFor(/f OK [^\r]*\r\n/, 60_000);
  assert.match(rest, /\* OK \[NOTIFICATIONOVERFLOW\] [^\r]*\r\nf OK Fetch completed/);
  assert.equal((rest.match(/\* STATUS /g) ?? []).length, 0, 'nothing queued behind the FETCH');
  // NOTIFY is off now: a further arrival is not reported
  await b.tagged('q', `APPEND f00000 ${lit(M)}`);
  await new Promise((r) => setTimeout(r, 200));
  assert.doesNotMatch(stripTiming(await a.tagged('z', 'NOOP')), /STATUS/);
  a.close(); b.close();
});

test('SELECTED-DELAYED: expunges racing arrivals never push an EXPUNGE between commands (RFC 5465 §5.2)', { timeout: 60_000 }, async () => {
  const a = await connectImap(fx.port);
  const b = await connectImap(fx.port);
  await a.tagged('l', 'LOGIN delay@x.test pw');
  await b.tagged('l', 'LOGIN delay@x.test pw');
  for (let i = 0; i < 3; i++) await b.tagged(`s${i}`, `APPEND INBOX ${lit(M)}`);
  await a.tagged('s', 'SELECT INBOX');
  await b.tagged('s', 'SELECT INBOX');
  assert.match(stripTiming(await a.tagged('n', 'NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))')), /n OK NOTIFY completed/);
  let exists = 3;
  for (let round = 0; round < 20; round++) {
    // pipelined: the expunge and the arrival land while a's push of the previous change runs
    b.send(`d${round} STORE 1 +FLAGS \\Deleted\r\ne${round} EXPUNGE\r\np${round} APPEND INBOX ${lit(M)}\r\n`);
    await b.waitFor(new RegExp(`p${round} OK[^\\r]*\\r\\n`));
    exists++; // the expunged message is still counted until a command may report it
    const pushed = await a.waitFor(new RegExp(`\\* ${exists} EXISTS\\r\\n`), 15_000);
    assert.doesNotMatch(pushed, /EXPUNGE/, `round ${round}: ${pushed}`);
    // FETCH does not allow EXPUNGE either (RFC 3501 §7.4.1); NOOP does
    assert.doesNotMatch(await a.tagged(`f${round}`, 'FETCH 1:* (UID)'), /EXPUNGE/);
    const noop = await a.tagged(`o${round}`, 'NOOP');
    assert.match(noop, /^\* 1 EXPUNGE\r\n/m, `round ${round}: ${noop}`);
    exists--;
  }
  a.close(); b.close();
});
