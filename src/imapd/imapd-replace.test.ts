/**
 * REPLACE / UID REPLACE (RFC 8508, cmd-replace.ts) on imapd over a socket: the answer's order
 * (OK [APPENDUID], then the EXPUNGE and EXISTS of the sync), another mailbox as target, QRESYNC's VANISHED,
 * literal8, what is left when the save fails (TRYCREATE, read-only, a UID already gone), bad
 * arguments, an over-size literal refused before it is read while the session goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startFixture, connectImap, stripTiming } from '../../test/harness/imapd-testkit.ts';

const lit = (m: string): string => `{${Buffer.byteLength(m)}+}\r\n${m}`;
const V = /UIDVALIDITY \d+|APPENDUID \d+/g;
const norm = (s: string): string => stripTiming(s).replace(V, (m) => m.replace(/\d+/, 'V'));

test('REPLACE: new message saved first, then the old one expunged, in one answer', async () => {
  const f = await startFixture();
  try {
    const c = await connectImap(f.port);
    await c.tagged('l', 'LOGIN alice@example.test secret');
    assert.match(await c.tagged('c', 'CAPABILITY'), /\bREPLACE\b/);
    await c.tagged('d', 'CREATE Drafts');
    for (let i = 1; i <= 3; i++) await c.tagged(`a${i}`, `APPEND Drafts (\\Draft) ${lit(`Subject: draft ${i}\r\n\r\nv${i}\r\n`)}`);
    await c.tagged('s', 'SELECT Drafts');
    assert.equal(norm(await c.tagged('r', `REPLACE 2 Drafts (\\Seen \\Draft) ${lit('Subject: draft 2\r\n\r\nv2 edited\r\n')}`)),
      '* OK [APPENDUID V 4] Replacement Message ID\r\n* 2 EXPUNGE\r\n* 3 EXISTS\r\nr OK Replace completed\r\n');
    assert.equal(stripTiming(await c.tagged('f', 'FETCH 1:* (UID FLAGS)')),
      '* 1 FETCH (UID 1 FLAGS (\\Draft \\Recent))\r\n* 2 FETCH (UID 3 FLAGS (\\Draft \\Recent))\r\n* 3 FETCH (UID 4 FLAGS (\\Seen \\Draft \\Recent))\r\nf OK Fetch completed\r\n');
    // UID REPLACE into another mailbox, with QRESYNC: VANISHED instead of EXPUNGE
    await c.tagged('e', 'ENABLE QRESYNC');
    assert.equal(norm(await c.tagged('u', `UID REPLACE 3 INBOX ${lit('Subject: sent\r\n\r\nx\r\n')}`)),
      '* OK [APPENDUID V 1] Replacement Message ID\r\n* VANISHED 3\r\n* 2 RECENT\r\nu OK Replace completed\r\n');
    // the save fails: nothing is expunged
    assert.equal(stripTiming(await c.tagged('t', `REPLACE 1 Nope ${lit('Subject: x\r\n\r\nx\r\n')}`)), "t NO [TRYCREATE] Mailbox doesn't exist: Nope\r\n");
    assert.equal(stripTiming(await c.tagged('g', `UID REPLACE 3 Drafts ${lit('Subject: x\r\n\r\nx\r\n')}`)), 'g NO Message to be replaced no longer exists\r\n');
    assert.equal(stripTiming(await c.tagged('b', `REPLACE 9 Drafts ${lit('Subject: x\r\n\r\nx\r\n')}`)), 'b BAD Error in IMAP command REPLACE: Invalid messageset\r\n');
    assert.equal(stripTiming(await c.tagged('b2', `REPLACE 1:2 Drafts ${lit('Subject: x\r\n\r\nx\r\n')}`)), 'b2 BAD Error in IMAP command REPLACE: Invalid messageset\r\n');
    assert.match(stripTiming(await c.tagged('b3', `REPLACE 1 Drafts ${lit('a')} ${lit('b')}`)), /^b3 BAD .*exactly one message/);
    assert.equal(stripTiming(await c.tagged('n', 'NOOP')), 'n OK NOOP completed\r\n');
    assert.equal(stripTiming(await c.tagged('f2', 'FETCH 1:* (UID)')), '* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 4)\r\nf2 OK Fetch completed\r\n');
    // literal8 with a binary part: saved as APPEND saves it (base64, LF)
    const bin = Buffer.concat([Buffer.from('Subject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\n'), Buffer.from([0, 1, 2, 13, 10])]);
    c.send(Buffer.concat([Buffer.from(`r8 UID REPLACE 4 Drafts ~{${bin.length}+}\r\n`), bin, Buffer.from('\r\n')]));
    assert.match(norm(await c.waitFor(/r8 (OK|NO|BAD)[^\n]*\n/)), /APPENDUID V 5\] Replacement Message ID\r\n\* VANISHED 4\r\n\* 2 EXISTS\r\nr8 OK Replace completed/);
    const cur = join(f.maildir('alice@example.test'), '.Drafts', 'cur');
    const files = readdirSync(cur).map((n) => readFileSync(join(cur, n), 'latin1'));
    assert.ok(files.includes('Subject: bin\nContent-Transfer-Encoding: base64\n\nAAECDQo='), files.join('|'));
    // an over-size literal is refused before it is read; the session goes on
    assert.match(stripTiming(await c.tagged('big', 'REPLACE 1 Drafts {999999999999}')), /^big BAD \[TOOBIG\] Error in IMAP command REPLACE: Literal size .*too large/);
    assert.match(stripTiming(await c.tagged('big2', 'UID REPLACE 1 Drafts {999999999999}')), /^big2 BAD \[TOOBIG\] Error in IMAP command UID( REPLACE)?: Literal size .*too large/);
    assert.equal(stripTiming(await c.tagged('n2', 'NOOP')), 'n2 OK NOOP completed\r\n');
    // read-only: refused, nothing saved
    await c.tagged('x', 'EXAMINE Drafts');
    assert.equal(stripTiming(await c.tagged('ro', `REPLACE 1 Drafts ${lit('Subject: x\r\n\r\nx\r\n')}`)), 'ro NO [READ-ONLY] Mailbox is read-only\r\n');
    assert.match(stripTiming(await c.tagged('st', 'STATUS Drafts (MESSAGES UIDNEXT)')), /MESSAGES 2 UIDNEXT 6/);
    c.close();
  } finally { await f.stop(); }
});
