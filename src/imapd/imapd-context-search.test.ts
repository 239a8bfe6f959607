/**
 * CONTEXT=SEARCH (RFC 5267 §4) over real sockets on 127.0.0.1: RETURN (UPDATE) results kept
 * current with ESEARCH ADDTO / REMOVEFROM as messages arrive, change flags (this session's and
 * another's, also pushed during IDLE) and are expunged; frozen sequence sets; CANCELUPDATE; the
 * update limit (NOUPDATE); PARTIAL ranges; and hostile input (UPDATE without a selected
 * mailbox, duplicate tags and options, CANCELUPDATE of unknown tags, broken PARTIAL ranges).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFixture, connectImap, stripTiming, type Fixture } from '../../test/harness/imapd-testkit.ts';
import { LineChat } from '../../test/harness/line-chat.ts';

async function login(port: number): Promise<LineChat> {
  const c = await connectImap(port);
  const r = await c.tagged('l', 'LOGIN alice@example.test secret');
  // CONTEXT=SORT is offered too (test/interop/imap-context-sort.test.ts)
  assert.match(r, /^l OK \[CAPABILITY [^\]]* WITHIN CONTEXT=SEARCH CONTEXT=SORT LIST-STATUS [^\]]*\] Logged in\r\n$/m);
  return c;
}

async function deliver(f: Fixture, mailbox: string, body: string, flags: string[] = []): Promise<number> {
  const rec = await f.imapd.shared.directory.lookup('alice@example.test');
  const u = await f.imapd.shared.store.forUser(rec!);
  try {
    const msg = `From: a@example.test\r\nSubject: ${body}\r\n\r\n${body}\r\n`;
    return (await u.deliver(mailbox, Buffer.from(msg, 'latin1'), { flags })).uid;
  } finally {
    await u.close();
  }
}

test('UPDATE: ADDTO / REMOVEFROM for new mail, flag changes and expunges, in UID and sequence numbers', async () => {
  const f = await startFixture();
  try {
    for (let i = 1; i <= 4; i++) await deliver(f, 'INBOX', `m${i}`, i === 2 ? ['\\Flagged'] : []);
    const c = await login(f.port);
    // no mailbox selected: SEARCH (with or without UPDATE) is refused
    assert.equal(stripTiming(await c.tagged('u0', 'SEARCH RETURN (UPDATE) ALL')), 'u0 BAD No mailbox selected\r\n');
    await c.tagged('s', 'SELECT INBOX');
    assert.equal(stripTiming(await c.tagged('a', 'UID SEARCH RETURN (ALL UPDATE) FLAGGED')), '* ESEARCH (TAG "a") UID ALL 2\r\na OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('b', 'SEARCH RETURN (UPDATE COUNT CONTEXT) FLAGGED')), '* ESEARCH (TAG "b") COUNT 1\r\nb OK Search completed\r\n');
    // this session's own flag change
    assert.equal(stripTiming(await c.tagged('t1', 'UID STORE 3 +FLAGS (\\Flagged)')),
      '* 3 FETCH (UID 3 FLAGS (\\Flagged \\Recent))\r\n* ESEARCH (TAG "a") UID ADDTO (0 3)\r\n* ESEARCH (TAG "b") ADDTO (0 3)\r\nt1 OK Store completed\r\n');
    // a delivery
    await deliver(f, 'INBOX', 'm5', ['\\Flagged']);
    assert.equal(stripTiming(await c.tagged('n', 'NOOP')),
      '* 5 EXISTS\r\n* 5 RECENT\r\n* ESEARCH (TAG "a") UID ADDTO (0 5)\r\n* ESEARCH (TAG "b") ADDTO (0 5)\r\nn OK NOOP completed\r\n');
    // an expunge: REMOVEFROM comes before the EXPUNGE, numbered as the client still knows them
    await c.tagged('t2', 'UID STORE 2 +FLAGS.SILENT (\\Deleted)');
    const x = stripTiming(await c.tagged('x', 'EXPUNGE'));
    assert.match(x, /^\* ESEARCH \(TAG "a"\) UID REMOVEFROM \(0 2\)\r\n\* ESEARCH \(TAG "b"\) REMOVEFROM \(0 2\)\r\n\* 2 EXPUNGE\r\n/);
    // after renumbering: UID 3 is now message 2
    assert.equal(stripTiming(await c.tagged('t3', 'UID STORE 3 -FLAGS.SILENT (\\Flagged)')),
      '* ESEARCH (TAG "a") UID REMOVEFROM (0 3)\r\n* ESEARCH (TAG "b") REMOVEFROM (0 2)\r\nt3 OK Store completed\r\n');
    // a change that leaves the result as it was sends nothing
    assert.equal(stripTiming(await c.tagged('t4', 'UID STORE 5 +FLAGS.SILENT (\\Seen)')), 't4 OK Store completed\r\n');
    // CANCELUPDATE ends one; the other goes on
    assert.equal(stripTiming(await c.tagged('cu', 'CANCELUPDATE "a"')), 'cu OK Updates cancelled\r\n');
    assert.equal(stripTiming(await c.tagged('t5', 'UID STORE 4 +FLAGS.SILENT (\\Flagged)')),
      '* ESEARCH (TAG "b") ADDTO (0 3)\r\nt5 OK Store completed\r\n');
    // selecting a mailbox (even the same) ends every update
    await c.tagged('s2', 'SELECT INBOX');
    assert.equal(stripTiming(await c.tagged('cu2', 'CANCELUPDATE "b"')), 'cu2 NO Unknown tag.\r\n');
    assert.equal(stripTiming(await c.tagged('t6', 'UID STORE 1 +FLAGS.SILENT (\\Flagged)')), 't6 OK Store completed\r\n');
    c.close();
  } finally {
    await f.stop();
  }
});

test('UPDATE: another session\'s changes are pushed during IDLE; body searches; sequence sets are frozen', async () => {
  const f = await startFixture();
  try {
    await deliver(f, 'INBOX', 'alpha');
    await deliver(f, 'INBOX', 'beta');
    await deliver(f, 'INBOX', 'gamma');
    const c = await login(f.port);
    const other = await login(f.port);
    await c.tagged('s', 'SELECT INBOX');
    await other.tagged('s', 'SELECT INBOX');
    assert.equal(stripTiming(await c.tagged('k', 'UID SEARCH RETURN (UPDATE ALL) BODY needle')), '* ESEARCH (TAG "k") UID\r\nk OK Search completed\r\n');
    // sequence number 2 is UID 2 for as long as the update lives
    assert.equal(stripTiming(await c.tagged('q', 'SEARCH RETURN (UPDATE ALL) 2 SEEN')), '* ESEARCH (TAG "q")\r\nq OK Search completed\r\n');
    c.send('i IDLE\r\n');
    await c.waitFor(/^\+ idling\r\n/m);
    await deliver(f, 'INBOX', 'has a needle inside');
    const pushed = await c.waitFor(/ADDTO \(0 4\)\r\n/);
    assert.match(pushed, /^\* 4 EXISTS\r\n(?:\* \d+ RECENT\r\n)?\* ESEARCH \(TAG "k"\) UID ADDTO \(0 4\)\r\n$/);
    // another session expunges message 1: everything shifts down by one
    await other.tagged('d', 'STORE 1 +FLAGS.SILENT (\\Deleted)');
    await other.tagged('x', 'EXPUNGE');
    await c.waitFor(/^\* 1 EXPUNGE\r\n/m);
    // UID 3 is now message 2 but was not message 2 when the search ran: no ADDTO for q
    await other.tagged('f', 'UID STORE 3 +FLAGS.SILENT (\\Seen)');
    assert.doesNotMatch(await c.waitFor(/^\* 2 FETCH \(FLAGS \(\\Seen( \\Recent)?\)\)\r\n/m), /ESEARCH/);
    // UID 2 (now message 1) was: ADDTO with its current sequence number
    await other.tagged('g', 'UID STORE 2 +FLAGS.SILENT (\\Seen)');
    assert.match(await c.waitFor(/ADDTO \(0 1\)\r\n/), /^\* 1 FETCH \(FLAGS \(\\Seen( \\Recent)?\)\)\r\n\* ESEARCH \(TAG "q"\) ADDTO \(0 1\)\r\n$/);
    c.send('DONE\r\n');
    await c.waitFor(/^i OK Idle completed[^\n]*\n/m);
    assert.equal(c.buf, '');
    c.close();
    other.close();
  } finally {
    await f.stop();
  }
});

test('UPDATE limits and hostile input: duplicate tag or option, CANCELUPDATE of unknown tags, NOUPDATE', async () => {
  const f = await startFixture();
  try {
    await deliver(f, 'INBOX', 'one');
    const c = await login(f.port);
    await c.tagged('s', 'SELECT INBOX');
    assert.equal(stripTiming(await c.tagged('z', 'CANCELUPDATE "nothing"')), 'z NO Unknown tag.\r\n');
    assert.equal(stripTiming(await c.tagged('z2', 'CANCELUPDATE')), 'z2 BAD Error in IMAP command CANCELUPDATE: Invalid parameters.\r\n');
    assert.equal(stripTiming(await c.tagged('z3', 'CANCELUPDATE nothing')), 'z3 BAD Error in IMAP command CANCELUPDATE: Invalid parameters.\r\n');
    assert.equal(stripTiming(await c.tagged('z4', 'CANCELUPDATE ("a")')), 'z4 BAD Error in IMAP command CANCELUPDATE: Invalid parameters.\r\n');
    assert.equal(stripTiming(await c.tagged('d', 'SEARCH RETURN (UPDATE UPDATE) ALL')), 'd BAD Error in IMAP command SEARCH: SEARCH return options have duplicate UPDATE.\r\n');
    assert.equal(stripTiming(await c.tagged('d2', 'SEARCH RETURN (UPDATE BOGUS) ALL')), 'd2 BAD Error in IMAP command SEARCH: SEARCH RETURN: unknown option "BOGUS"\r\n');
    for (let i = 0; i < 10; i++) {
      assert.equal(stripTiming(await c.tagged(`u${i}`, 'SEARCH RETURN (UPDATE MIN) ALL')), `* ESEARCH (TAG "u${i}") MIN 1\r\nu${i} OK Search completed\r\n`);
    }
    assert.equal(stripTiming(await c.tagged('u3', 'SEARCH RETURN (UPDATE) ALL')), 'u3 BAD Error in IMAP command SEARCH: Duplicate search update tag\r\n');
    // the 11th is answered but not kept (Dovecot's limit of 10)
    assert.equal(stripTiming(await c.tagged('u10', 'SEARCH RETURN (UPDATE ALL) ALL')), '* ESEARCH (TAG "u10") ALL 1\r\n* NO [NOUPDATE "u10"] Too many search updates\r\nu10 OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('cx', 'CANCELUPDATE "u10"')), 'cx NO Unknown tag.\r\n');
    // cancelling several at once; an unknown one among them answers NO
    assert.equal(stripTiming(await c.tagged('c1', 'CANCELUPDATE "u0" "u1"')), 'c1 OK Updates cancelled\r\n');
    assert.equal(stripTiming(await c.tagged('c2', 'CANCELUPDATE "u2" "u1"')), 'c2 NO Unknown tag.\r\n');
    assert.equal(stripTiming(await c.tagged('u11', 'SEARCH RETURN (UPDATE) ALL')), '* ESEARCH (TAG "u11")\r\nu11 OK Search completed\r\n');
    // the remaining updates all report a change
    await deliver(f, 'INBOX', 'two');
    const n = stripTiming(await c.tagged('n', 'NOOP'));
    assert.equal((n.match(/ADDTO \(0 2\)/g) ?? []).length, 8);
    assert.doesNotMatch(n, /TAG "u[012]"/);
    // CANCELUPDATE is valid without a mailbox; nothing is updating there
    await c.tagged('un', 'UNSELECT');
    assert.equal(stripTiming(await c.tagged('c3', 'CANCELUPDATE "u5"')), 'c3 NO Unknown tag.\r\n');
    c.close();
  } finally {
    await f.stop();
  }
});

test('PARTIAL: result windows, reversed and out-of-range windows, broken ranges are BAD', async () => {
  const f = await startFixture();
  try {
    for (let i = 1; i <= 6; i++) await deliver(f, 'INBOX', `m${i}`, i % 2 === 0 ? ['\\Seen'] : []);
    const c = await login(f.port);
    await c.tagged('s', 'SELECT INBOX');
    assert.equal(stripTiming(await c.tagged('p', 'SEARCH RETURN (PARTIAL 2:4) ALL')), '* ESEARCH (TAG "p") PARTIAL (2:4 2:4)\r\np OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('p2', 'UID SEARCH RETURN (PARTIAL 1:2 COUNT MIN) UNSEEN')), '* ESEARCH (TAG "p2") UID MIN 1 PARTIAL (1:2 1,3) COUNT 3\r\np2 OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('p3', 'SEARCH RETURN (PARTIAL 3:1) SEEN')), '* ESEARCH (TAG "p3") PARTIAL (1:3 2,4,6)\r\np3 OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('p4', 'SEARCH RETURN (PARTIAL 5:100) SEEN')), '* ESEARCH (TAG "p4") PARTIAL (5:100 NIL)\r\np4 OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('p5', 'SEARCH RETURN (PARTIAL 1:1 SAVE) UNSEEN')), '* ESEARCH (TAG "p5") PARTIAL (1:1 1)\r\np5 OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('p6', 'SEARCH $')), '* SEARCH 1 3 5\r\np6 OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('p7', 'SEARCH RETURN (PARTIAL 2:3 UPDATE) UNSEEN')), '* ESEARCH (TAG "p7") PARTIAL (2:3 3,5)\r\np7 OK Search completed\r\n');
    const bad: [string, string][] = [
      ['PARTIAL 0:5', 'PARTIAL range broken.'],
      ['PARTIAL 1:0', 'PARTIAL range broken.'],
      ['PARTIAL -1:-5', 'PARTIAL range broken.'],
      ['PARTIAL 1', 'PARTIAL range broken.'],
      ['PARTIAL a:b', 'PARTIAL range broken.'],
      ['PARTIAL 1:4294967296', 'PARTIAL range broken.'],
      ['PARTIAL 1:2:3', 'PARTIAL range broken.'],
      ['PARTIAL 1:*', 'PARTIAL range broken.'],
      ['PARTIAL', 'PARTIAL range missing.'],
      ['PARTIAL "1:2"', 'PARTIAL range missing.'],
      ['PARTIAL 1:2 PARTIAL 3:4', 'PARTIAL can be used only once.'],
      ['PARTIAL 1:2 ALL', 'PARTIAL conflicts with ALL'],
      ['ALL PARTIAL 1:2', 'PARTIAL conflicts with ALL'],
    ];
    let i = 0;
    for (const [opts, text] of bad) {
      const tag = `b${i++}`;
      assert.equal(stripTiming(await c.tagged(tag, `SEARCH RETURN (${opts}) ALL`)), `${tag} BAD Error in IMAP command SEARCH: ${text}\r\n`, opts);
    }
    // the session still works
    assert.equal(stripTiming(await c.tagged('ok', 'SEARCH RETURN (PARTIAL 4294967295:4294967295) ALL')), '* ESEARCH (TAG "ok") PARTIAL (4294967295:4294967295 NIL)\r\nok OK Search completed\r\n');
    c.close();
  } finally {
    await f.stop();
  }
});
