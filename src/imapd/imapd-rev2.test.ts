/**
 * IMAP4rev2 (RFC 9051) over real sockets on 127.0.0.1: both revisions announced, ENABLE
 * IMAP4rev2 switching one session (and not another), and each RFC 9051 Appendix E difference a
 * client can see: no RECENT / \Recent / [UNSEEN], the `* LIST` line of SELECT/EXAMINE,
 * ESEARCH for every SEARCH, STATUS DELETED, UTF-8 mailbox names, \NonExistent parents, deprecated
 * FETCH items still served; plus hostile ENABLEs (before login, twice, malformed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFixture, connectImap, stripTiming, type Fixture } from '../../test/harness/imapd-testkit.ts';
import { LineChat } from '../../test/harness/line-chat.ts';

async function login(port: number): Promise<LineChat> {
  const c = await connectImap(port);
  const r = await c.tagged('l', 'LOGIN alice@example.test secret');
  assert.match(r, /^l OK \[CAPABILITY IMAP4rev1 IMAP4rev2 [^\]]*\] Logged in\r\n$/m);
  return c;
}

async function deliver(f: Fixture, mailbox: string, msg: string, flags: string[] = []): Promise<number> {
  const rec = await f.imapd.shared.directory.lookup('alice@example.test');
  const u = await f.imapd.shared.store.forUser(rec!);
  try {
    return (await u.deliver(mailbox, Buffer.from(msg, 'latin1'), { flags })).uid;
  } finally {
    await u.close();
  }
}

const msg = (subject: string): string => `From: a@example.test\r\nSubject: ${subject}\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\nbody ${subject}\r\n`;
/** A UTF-8 name as the raw client (latin1) reads it off the wire. */
const wire = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

test('IMAP4rev2 is announced next to IMAP4rev1; ENABLE before login is refused, twice enables once', async () => {
  const f = await startFixture();
  try {
    const c = await connectImap(f.port);
    assert.match(await c.tagged('a', 'CAPABILITY'), /^\* CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR /);
    assert.equal(await c.tagged('b', 'ENABLE IMAP4rev2'), 'b BAD Error in IMAP command received by server.\r\n');
    c.close();
    const d = await login(f.port);
    assert.equal(stripTiming(await d.tagged('e', 'ENABLE IMAP4rev2')), '* ENABLED IMAP4rev2\r\ne OK Enabled\r\n');
    // RFC 5161 §3.1: ENABLED lists only what this command enabled
    assert.equal(stripTiming(await d.tagged('e2', 'ENABLE IMAP4rev2')), '* ENABLED\r\ne2 OK Enabled\r\n');
    assert.equal(stripTiming(await d.tagged('e3', 'ENABLE imap4rev2 CONDSTORE')), '* ENABLED CONDSTORE\r\ne3 OK Enabled\r\n');
    assert.match(await d.tagged('e4', 'ENABLE'), /^e4 BAD Error in IMAP command ENABLE: /);
    assert.match(await d.tagged('e5', 'ENABLE (IMAP4rev2)'), /^e5 BAD Error in IMAP command ENABLE: /);
    assert.equal(stripTiming(await d.tagged('e6', 'ENABLE X-UNKNOWN')), '* ENABLED\r\ne6 OK Enabled\r\n');
    d.close();
  } finally {
    await f.stop();
  }
});

test('IMAP4rev2 SELECT: no RECENT, no UNSEEN, a LIST line, no \\Recent; IMAP4rev1 sessions unchanged', async () => {
  const f = await startFixture();
  try {
    await deliver(f, 'INBOX', msg('one'), ['\\Seen']);
    await deliver(f, 'INBOX', msg('two'));
    const rev1 = await login(f.port);
    const rev2 = await login(f.port);
    await rev2.tagged('e', 'ENABLE IMAP4rev2');
    // the rev2 session selects first, so both messages are \Recent for it (RFC 3501 §2.3.2)
    const sel = stripTiming(await rev2.tagged('s', 'SELECT INBOX'));
    assert.match(sel, /^\* FLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft\)\r\n\* OK \[PERMANENTFLAGS [^\n]*\n\* 2 EXISTS\r\n\* OK \[UIDVALIDITY \d+\] UIDs valid\r\n\* OK \[UIDNEXT 3\] Predicted next UID\r\n\* OK \[MAILBOXID \([0-9a-f]{32}\)\] Ok\r\n\* LIST \(\\HasNoChildren\) "\/" INBOX\r\ns OK \[READ-WRITE\] Select completed\r\n$/);
    assert.doesNotMatch(sel, /RECENT|UNSEEN/);
    assert.equal(stripTiming(await rev2.tagged('f', 'FETCH 1:* (FLAGS)')), '* 1 FETCH (FLAGS (\\Seen))\r\n* 2 FETCH (FLAGS ())\r\nf OK Fetch completed\r\n');
    // a new message while selected: EXISTS but no RECENT
    await deliver(f, 'INBOX', msg('three'));
    const noop = stripTiming(await rev2.tagged('n', 'NOOP'));
    assert.equal(noop, '* 3 EXISTS\r\nn OK NOOP completed\r\n');
    assert.equal(stripTiming(await rev2.tagged('f2', 'UID STORE 3 +FLAGS (\\Flagged)')), '* 3 FETCH (UID 3 FLAGS (\\Flagged))\r\nf2 OK Store completed\r\n');
    // * OK [CLOSED] when a mailbox was selected; the LIST line carries special-use attributes
    const sent = stripTiming(await rev2.tagged('s2', 'EXAMINE Sent'));
    assert.match(sent, /^\* OK \[CLOSED\] Previous mailbox closed\.\r\n/);
    assert.match(sent, /\* LIST \(\\HasNoChildren \\Sent\) "\/" Sent\r\ns2 OK \[READ-ONLY\] Examine completed\r\n$/);
    // the same mailbox in an IMAP4rev1 session, where a new message is \Recent
    await deliver(f, 'INBOX', msg('four'));
    const sel1 = stripTiming(await rev1.tagged('s', 'SELECT INBOX'));
    assert.match(sel1, /\* 4 EXISTS\r\n\* 1 RECENT\r\n\* OK \[UNSEEN 2\] First unseen\.\r\n/);
    assert.doesNotMatch(sel1, /\* LIST/);
    assert.equal(stripTiming(await rev1.tagged('f', 'FETCH 4 (FLAGS)')), '* 4 FETCH (FLAGS (\\Recent))\r\nf OK Fetch completed\r\n');
    await deliver(f, 'INBOX', msg('five'));
    assert.equal(stripTiming(await rev1.tagged('n', 'NOOP')), '* 5 EXISTS\r\n* 2 RECENT\r\nn OK NOOP completed\r\n');
    rev1.close();
    rev2.close();
  } finally {
    await f.stop();
  }
});

test('IMAP4rev2 SEARCH answers ESEARCH; STATUS DELETED; deprecated FETCH items still served', async () => {
  const f = await startFixture();
  try {
    await deliver(f, 'INBOX', msg('one'), ['\\Seen']);
    await deliver(f, 'INBOX', msg('two'), ['\\Deleted']);
    await deliver(f, 'INBOX', msg('three'), ['\\Deleted', '\\Seen']);
    const c = await login(f.port);
    await c.tagged('x', 'LIST "" "*"'); // auto = create mailboxes (Trash) are made when first looked at
    await deliver(f, 'Trash', msg('gone'), ['\\Deleted']);
    await deliver(f, 'Trash', msg('kept'));
    // IMAP4rev1 first: the plain SEARCH response
    await c.tagged('s', 'SELECT INBOX');
    assert.equal(stripTiming(await c.tagged('a', 'SEARCH SEEN')), '* SEARCH 1 3\r\na OK Search completed\r\n');
    await c.tagged('e', 'ENABLE IMAP4rev2');
    assert.equal(stripTiming(await c.tagged('b', 'SEARCH SEEN')), '* ESEARCH (TAG "b") ALL 1,3\r\nb OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('b2', 'UID SEARCH ALL')), '* ESEARCH (TAG "b2") UID ALL 1:3\r\nb2 OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('b3', 'UID SEARCH FLAGGED')), '* ESEARCH (TAG "b3") UID\r\nb3 OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('b4', 'SEARCH RETURN (COUNT) DELETED')), '* ESEARCH (TAG "b4") COUNT 2\r\nb4 OK Search completed\r\n');
    // RECENT/NEW/OLD are gone from IMAP4rev2's grammar; still accepted (this session's recent set)
    assert.equal(stripTiming(await c.tagged('b5', 'SEARCH NEW')), '* ESEARCH (TAG "b5") ALL 2\r\nb5 OK Search completed\r\n');
    // STATUS DELETED: of the selected mailbox (with this session's own change) and of another
    assert.match(stripTiming(await c.tagged('d0', 'STORE 1 +FLAGS.SILENT (\\Deleted)')), /^d0 OK Store completed\r\n$/);
    assert.match(stripTiming(await c.tagged('d1', 'STATUS INBOX (MESSAGES DELETED)')), /^\* STATUS INBOX \(MESSAGES 3 DELETED 3\)\r\nd1 OK \[CLIENTBUG\] Status on selected mailbox completed\r\n$/);
    assert.match(stripTiming(await c.tagged('d2', 'STATUS Trash (DELETED SIZE UNSEEN)')), /^\* STATUS Trash \(UNSEEN 2 SIZE \d+ DELETED 1\)\r\nd2 OK Status completed\r\n$/);
    assert.equal(stripTiming(await c.tagged('d3', 'STATUS Nope (DELETED)')), 'd3 NO Mailbox doesn\'t exist: Nope\r\n');
    assert.match(stripTiming(await c.tagged('d4', 'LIST "" Trash RETURN (STATUS (DELETED))')), /\* STATUS Trash \(DELETED 1\)\r\nd4 OK List completed\r\n$/);
    // RFC822.* FETCH items are deprecated in IMAP4rev2 but kept (RFC 9051 §6.4.5)
    const r = stripTiming(await c.tagged('g', 'FETCH 1 (RFC822.SIZE RFC822.HEADER)'));
    assert.match(r, /^\* 1 FETCH \(RFC822\.SIZE \d+ RFC822\.HEADER \{\d+\}\r\nFrom: a@example\.test\r\n/);
    assert.match(r, /\r\ng OK Fetch completed\r\n$/);
    c.close();
  } finally {
    await f.stop();
  }
});

test('IMAP4rev2 mailbox names are UTF-8 on the wire; names that are not mailboxes are \\NonExistent', async () => {
  const f = await startFixture();
  try {
    const rev2 = await login(f.port);
    const rev1 = await login(f.port);
    await rev2.tagged('e', 'ENABLE IMAP4rev2');
    assert.match(stripTiming(await rev2.tagged('c', 'CREATE "Entwürfe"')), /^c OK \[MAILBOXID \([0-9a-f]{32}\)\] Create completed\r\n$/);
    assert.match(stripTiming(await rev2.tagged('c2', 'CREATE Parent/Child')), /^c2 OK \[MAILBOXID \([0-9a-f]{32}\)\] Create completed\r\n$/);
    assert.equal(stripTiming(await rev2.tagged('l', 'LIST "" "Entw*"')), `* LIST (\\HasNoChildren) "/" {9}\r\n${wire('Entwürfe')}\r\nl OK List completed\r\n`);
    // the IMAP4rev1 session sees the same mailbox in modified UTF-7 (RFC 3501 §5.1.3)
    assert.equal(stripTiming(await rev1.tagged('l', 'LIST "" "Entw*"')), '* LIST (\\HasNoChildren) "/" Entw&APw-rfe\r\nl OK List completed\r\n');
    assert.match(stripTiming(await rev2.tagged('s', 'SELECT "Entwürfe"')), new RegExp(`\\* LIST \\(\\\\HasNoChildren\\) "/" \\{9\\}\r\n${wire('Entwürfe')}\r\ns OK \\[READ-WRITE\\] Select completed\r\n$`));
    assert.equal(stripTiming(await rev2.tagged('st', 'STATUS "Entwürfe" (MESSAGES)')), `* STATUS {9}\r\n${wire('Entwürfe')} (MESSAGES 0)\r\nst OK [CLIENTBUG] Status on selected mailbox completed\r\n`);
    // a UTF-8 name from an IMAP4rev1 client is not valid modified UTF-7
    assert.equal(stripTiming(await rev1.tagged('x', 'SELECT "Entwürfe"')), 'x NO Mailbox name is not valid mUTF-7\r\n');
    assert.match(stripTiming(await rev1.tagged('y', 'SELECT Entw&APw-rfe')), /y OK \[READ-WRITE\] Select completed\r\n$/);
    assert.match(stripTiming(await rev2.tagged('p', 'LIST "" "Parent"')), /^\* LIST \(\\NonExistent \\HasChildren\) "\/" Parent\r\np OK/);
    assert.match(stripTiming(await rev1.tagged('p', 'LIST "" "Parent"')), /^\* LIST \(\\Noselect \\HasChildren\) "\/" Parent\r\np OK/);
    // invalid UTF-8 is still refused
    const bad = Buffer.concat([Buffer.from('b CREATE "x'), Buffer.from([0xff, 0xfe]), Buffer.from('"\r\n')]);
    rev2.send(bad);
    assert.match(await rev2.waitFor(/^b (OK|NO|BAD)[^\n]*\n/m), /^b (NO|BAD) /m);
    rev1.close();
    rev2.close();
  } finally {
    await f.stop();
  }
});
