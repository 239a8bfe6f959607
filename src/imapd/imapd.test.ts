/**
 * imapd tests over real sockets on 127.0.0.1: the session state machine, Dovecot's reply texts,
 * every command family, IDLE woken by a delivery through MailUser.deliver() (as virtual(8) and
 * lmtpd deliver), login policy (PRIVACYREQUIRED, growing failure delay, user+IP limit),
 * STARTTLS / imaps, COMPRESS=DEFLATE, and hostile input (4 GB literal, 100,000-deep
 * parentheses, bad mailbox names, bad sequence sets, commands before login, a client vanishing
 * mid-literal).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createDeflateRaw, createInflateRaw, constants as zc } from 'node:zlib';
import { startFixture, connectImap, stripTiming } from '../../test/harness/imapd-testkit.ts';
import { LineChat } from '../../test/harness/line-chat.ts';

const MSG1 = 'From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: hello\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\nMessage-ID: <m1@example.test>\r\n\r\nfirst body\r\n';
const MSG2 = 'From: Bob <bob@example.test>\r\nSubject: Re: hello\r\nDate: Tue, 3 Jan 2023 10:00:00 +0000\r\nMessage-ID: <m2@example.test>\r\nIn-Reply-To: <m1@example.test>\r\nReferences: <m1@example.test>\r\n\r\nsecond body caf\xc3\xa9\r\n';

async function login(port: number): Promise<LineChat> {
  const c = await connectImap(port);
  const r = await c.tagged('l', 'LOGIN alice@example.test secret');
  assert.match(r, /^l OK \[CAPABILITY IMAP4rev1 [^\]]*\] Logged in\r\n$/m);
  return c;
}

async function deliver(f: Awaited<ReturnType<typeof startFixture>>, mailbox: string, msg: string, flags: string[] = []): Promise<number> {
  const rec = await f.imapd.shared.directory.lookup('alice@example.test');
  const u = await f.imapd.shared.store.forUser(rec!);
  const r = await u.deliver(mailbox, Buffer.from(msg, 'latin1'), { flags });
  await u.close();
  return r.uid;
}

/** RFC 8474 MAILBOXID values (mailbox GUIDs) as ID. */
const ids = (s: string): string => s.replace(/MAILBOXID \([0-9a-f]{32}\)/g, 'MAILBOXID (ID)');

test('greeting, capabilities before and after login, Dovecot texts', async () => {
  const f = await startFixture({ conf: 'login_greeting = Mail ready.' });
  try {
    const c = await connectImap(f.port);
    // greeting was consumed by connect(); check it on a second connection
    const c2 = connect(f.port, '127.0.0.1');
    const greet = await new Promise<string>((r) => c2.once('data', (d) => r(d.toString())));
    c2.destroy();
    assert.equal(greet, '* OK [CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN] Mail ready.\r\n');
    assert.equal(await c.tagged('a', 'CAPABILITY'), '* CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN\r\na OK Pre-login capabilities listed, post-login capabilities have more.\r\n');
    assert.equal(await c.tagged('b', 'SELECT INBOX'), 'b BAD Error in IMAP command received by server.\r\n');
    assert.equal(await c.tagged('b2', 'LIST "" *'), 'b2 BAD Error in IMAP command received by server.\r\n');
    assert.equal(await c.tagged('c', 'LOGIN alice@example.test wrong'), 'c NO [AUTHENTICATIONFAILED] Authentication failed.\r\n');
    assert.equal(await c.tagged('c2', 'LOGIN nobody@example.test secret'), 'c2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n');
    const ok = await c.tagged('d', 'LOGIN "alice@example.test" {6}\r\nsecret'.replace('{6}\r\nsecret', 'secret'));
    assert.match(ok, /^d OK \[CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE SORT .* MOVE .*SPECIAL-USE .*COMPRESS=DEFLATE\] Logged in\r\n$/);
    assert.match(stripTiming(await c.tagged('e', 'CAPABILITY')), /^\* CAPABILITY IMAP4rev1 .*\r\ne OK Capability completed\r\n$/);
    assert.match(await c.tagged('f', 'NOOP'), /^f OK NOOP completed \(\d\.\d{3} \+ 0\.000 secs\)\.\r\n$/);
    assert.equal(stripTiming(await c.tagged('g', 'FETCH 1 FLAGS')), 'g BAD No mailbox selected\r\n');
    assert.equal(stripTiming(await c.tagged('h', 'FOO bar')), 'h BAD Error in IMAP command FOO: Unknown command\r\n');
    assert.equal(stripTiming(await c.tagged('i', 'NAMESPACE')), '* NAMESPACE (("" "/")) NIL NIL\r\ni OK Namespace completed\r\n');
    assert.equal(stripTiming(await c.tagged('j', 'LOGOUT')), '* BYE Logging out\r\nj OK Logout completed\r\n');
    c.close();
  } finally { await f.stop(); }
});

test('SELECT, APPEND, FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE as Dovecot answers them', async () => {
  const f = await startFixture();
  try {
    const c = await login(f.port);
    let r = stripTiming(await c.tagged('a', `APPEND INBOX (\\Seen) {${MSG1.length}+}\r\n${MSG1}`));
    assert.match(r, /^a OK \[APPENDUID (\d+) 1\] Append completed\r\n$/);
    const uidv = /APPENDUID (\d+)/.exec(r)![1];
    // synchronising literal: "+ OK" first
    c.send(`a2 APPEND INBOX {${Buffer.byteLength(MSG2, 'latin1')}}\r\n`);
    await c.waitFor(/^\+ OK\r\n/);
    c.send(Buffer.concat([Buffer.from(MSG2, 'latin1'), Buffer.from('\r\n')]));
    r = stripTiming(await c.waitFor(/a2 (OK|NO|BAD)[^\n]*\n/));
    assert.equal(r, `a2 OK [APPENDUID ${uidv} 2] Append completed\r\n`);
    r = ids(stripTiming(await c.tagged('s', 'SELECT INBOX')));
    assert.equal(r, [
      '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)',
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.',
      '* 2 EXISTS', '* 2 RECENT', '* OK [UNSEEN 2] First unseen.',
      `* OK [UIDVALIDITY ${uidv}] UIDs valid`, '* OK [UIDNEXT 3] Predicted next UID', '* OK [MAILBOXID (ID)] Ok',
      's OK [READ-WRITE] Select completed', ''].join('\r\n'));
    r = stripTiming(await c.tagged('f', 'FETCH 1:* (FLAGS UID RFC822.SIZE)'));
    assert.equal(r, `* 1 FETCH (FLAGS (\\Seen \\Recent) UID 1 RFC822.SIZE ${MSG1.length})\r\n* 2 FETCH (FLAGS (\\Recent) UID 2 RFC822.SIZE ${Buffer.byteLength(MSG2, 'latin1')})\r\nf OK Fetch completed\r\n`);
    // non-PEEK body fetch sets \Seen and adds FLAGS first
    r = stripTiming(await c.tagged('f2', 'FETCH 2 BODY[TEXT]'));
    assert.equal(r, `* 2 FETCH (FLAGS (\\Seen \\Recent) BODY[TEXT] {19}\r\nsecond body caf\xc3\xa9\r\n)\r\nf2 OK Fetch completed\r\n`);
    // Dovecot's item order: UID, quick items as asked, then content items as asked
    r = stripTiming(await c.tagged('f3', 'UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] ENVELOPE FLAGS RFC822.SIZE)'));
    assert.match(r, /^\* 1 FETCH \(UID 1 FLAGS \(\\Seen \\Recent\) RFC822\.SIZE \d+ BODY\[HEADER\.FIELDS \(SUBJECT\)\] \{18\}\r\nSubject: hello\r\n\r\n ENVELOPE \("Mon, 2 Jan 2023 10:00:00 \+0000" "hello" \(\("Alice" NIL "alice" "example\.test"\)\)/);
    r = stripTiming(await c.tagged('f4', 'FETCH 1 (BODYSTRUCTURE BINARY.SIZE[1] BODY[]<0.4>)'));
    assert.equal(r, '* 1 FETCH (BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1 NIL NIL NIL NIL) BINARY.SIZE[1] 12 BODY[]<0> {4}\r\nFrom)\r\nf4 OK Fetch completed\r\n');
    assert.equal(stripTiming(await c.tagged('f5', 'FETCH 3 FLAGS')), 'f5 BAD Error in IMAP command FETCH: Invalid messageset\r\n');
    assert.equal(stripTiming(await c.tagged('f6', 'UID FETCH 99 FLAGS')), 'f6 OK Fetch completed\r\n');
    // a new keyword: FLAGS and PERMANENTFLAGS again first, as Dovecot
    assert.equal(stripTiming(await c.tagged('st', 'STORE 1 +FLAGS (\\Deleted $Label1)')), '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)\r\n' +
      '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)] Flags permitted.\r\n* 1 FETCH (FLAGS (\\Deleted \\Seen \\Recent $Label1))\r\nst OK Store completed\r\n');
    assert.equal(stripTiming(await c.tagged('st2', 'UID STORE 1 -FLAGS.SILENT ($Label1)')), 'st2 OK Store completed\r\n');
    assert.equal(stripTiming(await c.tagged('se', 'SEARCH DELETED')), '* SEARCH 1\r\nse OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('se2', 'SEARCH CHARSET UTF-8 BODY CAFE')), '* SEARCH 2\r\nse2 OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('se3', 'UID SEARCH RETURN (MIN MAX COUNT ALL) OR FROM bob SUBJECT hello')), '* ESEARCH (TAG "se3") UID MIN 1 MAX 2 ALL 1:2 COUNT 2\r\nse3 OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('se4', 'SEARCH CHARSET KOI8-X ALL')), 'se4 NO [BADCHARSET] Unknown charset\r\n');
    assert.equal(stripTiming(await c.tagged('se5', 'SEARCH RETURN (SAVE) SENTSINCE 3-Jan-2023')), 'se5 OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('se6', 'FETCH $ UID')), '* 2 FETCH (UID 2)\r\nse6 OK Search completed\r\n'.replace('Search', 'Fetch'));
    assert.equal(stripTiming(await c.tagged('so', 'SORT (REVERSE DATE) UTF-8 ALL')), '* SORT 2 1\r\nso OK Sort completed\r\n');
    assert.equal(stripTiming(await c.tagged('th', 'THREAD REFERENCES UTF-8 ALL')), '* THREAD (1 2)\r\nth OK Thread completed\r\n');
    // lib-storage copies concurrently: the pairs are right, their order may vary
    assert.match(stripTiming(await c.tagged('cp', 'COPY 1:2 Trash')), /^cp OK \[COPYUID \d+ 1:2 1:2\] Copy completed\r\n$/);
    assert.equal(stripTiming(await c.tagged('cp2', 'COPY 1 Nope')), "cp2 NO [TRYCREATE] Mailbox doesn't exist: Nope\r\n");
    r = stripTiming(await c.tagged('mv', 'UID MOVE 2 Trash'));
    assert.match(r, /^\* OK \[COPYUID \d+ 2 3\] Moved UIDs\.\r\n\* 2 EXPUNGE\r\n\* 1 RECENT\r\nmv OK Move completed\r\n$/);
    assert.equal(stripTiming(await c.tagged('x', 'EXPUNGE')), '* 1 EXPUNGE\r\n* 0 RECENT\r\nx OK Expunge completed\r\n');
    assert.equal(stripTiming(await c.tagged('st', 'STATUS Trash (MESSAGES UNSEEN)')), '* STATUS Trash (MESSAGES 3 UNSEEN 0)\r\nst OK Status completed\r\n');
    assert.equal(stripTiming(await c.tagged('st2', 'STATUS Nope (MESSAGES)')), "st2 NO Mailbox doesn't exist: Nope\r\n");
    assert.equal(stripTiming(await c.tagged('un', 'UNSELECT')), 'un OK Unselect completed\r\n');
    c.close();
  } finally { await f.stop(); }
});

test('LIST, LSUB, LIST-EXTENDED, SPECIAL-USE, CREATE/RENAME/DELETE, mailbox name attacks', async () => {
  const f = await startFixture();
  try {
    const c = await login(f.port);
    assert.equal(ids(stripTiming(await c.tagged('a', 'CREATE Archive/2024/'))), 'a OK [MAILBOXID (ID)] Create completed\r\n');
    assert.equal(stripTiming(await c.tagged('a2', 'CREATE Archive/2024')), 'a2 NO [ALREADYEXISTS] Mailbox already exists\r\n');
    assert.equal(ids(stripTiming(await c.tagged('a3', 'CREATE "Entw&APw-rfe"'))), 'a3 OK [MAILBOXID (ID)] Create completed\r\n');
    assert.equal(stripTiming(await c.tagged('l', 'LIST "" "*"')), [
      '* LIST (\\HasNoChildren) "/" INBOX', '* LIST (\\Noselect \\HasChildren) "/" Archive', '* LIST (\\HasNoChildren) "/" Archive/2024',
      '* LIST (\\HasNoChildren) "/" Entw&APw-rfe', '* LIST (\\HasNoChildren \\Sent) "/" Sent', '* LIST (\\HasNoChildren \\Trash) "/" Trash',
      'l OK List completed', ''].join('\r\n'));
    assert.equal(stripTiming(await c.tagged('l2', 'LIST "" %')).split('\r\n').length, 7);
    assert.equal(stripTiming(await c.tagged('l3', 'LIST "" ""')), '* LIST (\\Noselect) "/" ""\r\nl3 OK List completed\r\n');
    assert.equal(stripTiming(await c.tagged('l4', 'LIST (SPECIAL-USE) "" "*"')), '* LIST (\\Sent) "/" Sent\r\n* LIST (\\Trash) "/" Trash\r\nl4 OK List completed\r\n');
    assert.equal(stripTiming(await c.tagged('l5', 'LSUB "" "*"')), '* LSUB (\\Sent) "/" Sent\r\nl5 OK Lsub completed\r\n');
    assert.equal(stripTiming(await c.tagged('l6', 'LIST "" "Archive/*" RETURN (STATUS (MESSAGES UIDNEXT))')), '* LIST () "/" Archive/2024\r\n* STATUS Archive/2024 (MESSAGES 0 UIDNEXT 1)\r\nl6 OK List completed\r\n');
    assert.equal(stripTiming(await c.tagged('r', 'RENAME Archive/2024 Archive/2025')), 'r OK Rename completed\r\n');
    assert.equal(stripTiming(await c.tagged('r2', 'RENAME Nope X')), "r2 NO [NONEXISTENT] Mailbox doesn't exist: Nope\r\n");
    assert.equal(stripTiming(await c.tagged('d', 'DELETE Archive/2025')), 'd OK Delete completed\r\n');
    assert.equal(stripTiming(await c.tagged('d2', 'DELETE Archive/2025')), "d2 NO [NONEXISTENT] Mailbox doesn't exist: Archive/2025\r\n");
    assert.equal(stripTiming(await c.tagged('sb', 'SUBSCRIBE Trash')), 'sb OK Subscribe completed\r\n');
    // hostile names: never a file outside the mail root
    for (const [i, name] of ['"../../etc"', '"a/../../b"', '"x/.."', '"."', '"~root"', '"a//b"', '"&Jjo"', '"&AGEAYgBj-"'].entries()) {
      const r = stripTiming(await c.tagged(`h${i}`, `CREATE ${name}`));
      assert.match(r, new RegExp(`^h${i} NO `), `${name}: ${r}`);
    }
    assert.match(stripTiming(await c.tagged('h9', 'SELECT "a\\"b/../../x"')), /^h9 NO /);
    assert.match(await c.tagged('h10', 'CREATE "a\0b"'), /^h10 BAD /);
    assert.equal(readdirSync(join(f.dir)).filter((n) => !['users', 'dovecot.conf', 'mail'].includes(n)).length, 0);
    assert.ok(!existsSync(join(f.dir, 'mail', 'etc')) && !existsSync('/etc/.b'));
    c.close();
  } finally { await f.stop(); }
});

test('IDLE: a delivery through MailUser.deliver appears as * N EXISTS within a second; other sessions see flag changes and expunges', async () => {
  const f = await startFixture();
  try {
    await deliver(f, 'INBOX', MSG1);
    const a = await login(f.port);
    const b = await login(f.port);
    await a.tagged('s', 'SELECT INBOX');
    await b.tagged('s', 'SELECT INBOX');
    a.send('i IDLE\r\n');
    await a.waitFor(/^\+ idling\r\n/m);
    const t0 = Date.now();
    await deliver(f, 'INBOX', MSG2);
    await a.waitFor(/\* 2 EXISTS\r\n/, 1000);
    assert.ok(Date.now() - t0 < 1000);
    // another session's STORE and EXPUNGE are pushed too
    await b.tagged('st', 'STORE 1 +FLAGS (\\Deleted)');
    await a.waitFor(/\* 1 FETCH \(FLAGS \(\\Deleted[^)]*\)\)\r\n/, 1000);
    await b.tagged('x', 'EXPUNGE');
    await a.waitFor(/\* 1 EXPUNGE\r\n/, 1000);
    a.send('DONE\r\n');
    assert.match(await a.waitFor(/i OK[^\n]*\n/), /i OK Idle completed/);
    a.send('j IDLE\r\n');
    await a.waitFor(/^\+ idling\r\n/m);
    a.send('NOPE\r\n');
    assert.match(await a.waitFor(/j BAD[^\n]*\n/), /j BAD Expected DONE/);
    // NOOP in the other session reports the new message count
    assert.match(stripTiming(await b.tagged('n', 'NOOP')), /^(\* 1 EXISTS\r\n)?n OK NOOP completed\r\n$/);
    a.close(); b.close();
  } finally { await f.stop(); }
});

test('AUTHENTICATE PLAIN (SASL-IR and continuation), LOGIN mechanism, abort', async () => {
  const g = await startFixture();
  try {
    const plain = Buffer.from('\0alice@example.test\0secret').toString('base64');
    const c1 = await connectImap(g.port);
    assert.match(await c1.tagged('a', `AUTHENTICATE PLAIN ${plain}`), /^a OK \[CAPABILITY [^\]]+\] Logged in\r\n$/);
    c1.close();
    const c2 = await connectImap(g.port);
    c2.send('b AUTHENTICATE PLAIN\r\n');
    await c2.waitFor(/^\+ \r\n/m);
    c2.send(plain + '\r\n');
    assert.match(await c2.waitFor(/b (OK|NO|BAD)[^\n]*\n/), /^b OK \[CAPABILITY/);
    c2.close();
    const c3 = await connectImap(g.port);
    c3.send('c AUTHENTICATE LOGIN\r\n');
    await c3.waitFor(/^\+ VXNlcm5hbWU6\r\n/m);
    c3.send(Buffer.from('alice@example.test').toString('base64') + '\r\n');
    await c3.waitFor(/^\+ UGFzc3dvcmQ6\r\n/m);
    c3.send(Buffer.from('wrong').toString('base64') + '\r\n');
    assert.equal(await c3.waitFor(/c (OK|NO|BAD)[^\n]*\n/), 'c NO [AUTHENTICATIONFAILED] Authentication failed.\r\n');
    c3.send('d AUTHENTICATE PLAIN\r\n');
    await c3.waitFor(/^\+ \r\n/m);
    c3.send('*\r\n');
    assert.equal(await c3.waitFor(/d (OK|NO|BAD)[^\n]*\n/), 'd BAD Authentication aborted by client.\r\n');
    c3.close();
  } finally { await g.stop(); }
});

test('login policy: PRIVACYREQUIRED off-host without TLS, growing failure delay, mail_max_userip_connections', async () => {
  const f = await startFixture({ conf: 'disable_plaintext_auth = yes\nmail_max_userip_connections = 2', host: '127.0.0.2', settings: { authFailureDelayMs: 60 } });
  try {
    // 127.0.0.1 → 127.0.0.2: not the same IP, not TLS: Dovecot's client->secured is false
    const sock = connect({ port: f.port, host: '127.0.0.2', localAddress: '127.0.0.1' });
    const c = LineChat.over(sock, 'imap');
    const greet = await c.waitFor(/^\* OK[^\n]*\n/);
    assert.match(greet, /LOGINDISABLED\] Postern ready\./);
    assert.equal(await c.tagged('a', 'LOGIN alice@example.test secret'), 'a NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n');
    assert.equal(await c.tagged('b', `AUTHENTICATE PLAIN ${Buffer.from('\0alice@example.test\0secret').toString('base64')}`), 'b NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n');
    c.close();
  } finally { await f.stop(); }
  const g = await startFixture({ conf: 'mail_max_userip_connections = 2', settings: { authFailureDelayMs: 60 } });
  try {
    const c = await connectImap(g.port);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = Date.now();
      await c.tagged(`f${i}`, 'LOGIN alice@example.test bad');
      times.push(Date.now() - t);
    }
    assert.ok(times[0]! >= 55 && times[1]! >= 115 && times[2]! >= 235, `delays grow: ${times.join(',')}`);
    await c.tagged('ok', 'LOGIN alice@example.test secret');
    const d = await login(g.port);
    const e = await connectImap(g.port);
    assert.equal(await e.tagged('x', 'LOGIN alice@example.test secret'), 'x NO [LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=2)\r\n');
    d.close();
    await new Promise((r) => setTimeout(r, 100));
    assert.match(await e.tagged('y', 'LOGIN alice@example.test secret'), /^y OK /);
    c.close(); e.close();
  } finally { await g.stop(); }
});

test('STARTTLS, imaps and COMPRESS=DEFLATE', async () => {
  const f = await startFixture({ tls: true });
  try {
    const c = await connectImap(f.port);
    assert.match(await c.tagged('a', 'CAPABILITY'), /LITERAL\+ STARTTLS AUTH=PLAIN/);
    assert.equal(await c.tagged('b', 'STARTTLS'), 'b OK Begin TLS negotiation now.\r\n');
    const t = tlsConnect({ socket: c.sock, rejectUnauthorized: false });
    await new Promise<void>((r, j) => { t.once('secureConnect', r); t.once('error', j); });
    const tc = LineChat.over(t, 'imap');
    assert.doesNotMatch(await tc.tagged('c', 'CAPABILITY'), /STARTTLS/);
    assert.match(await tc.tagged('d', 'LOGIN alice@example.test secret'), /^d OK/);
    t.destroy();
    const s = tlsConnect({ port: f.tlsPort, host: '127.0.0.1', rejectUnauthorized: false });
    const sc = LineChat.over(s, 'imap');
    assert.match(await sc.waitFor(/^\* OK[^\n]*\n/), /AUTH=PLAIN/);
    assert.match(await sc.tagged('e', 'LOGIN alice@example.test secret'), /^e OK/);
    assert.equal(stripTiming(await sc.tagged('f', 'COMPRESS DEFLATE')), 'f OK Begin compression.\r\n');
    const def = createDeflateRaw();
    const inf = createInflateRaw();
    def.on('data', (d: Buffer) => s.write(d));
    s.removeAllListeners('data');
    let got = '';
    s.on('data', (d) => inf.write(d));
    inf.on('data', (d: Buffer) => { got += d.toString(); });
    def.write('g NAMESPACE\r\n');
    def.flush(zc.Z_SYNC_FLUSH);
    const deadline = Date.now() + 3000;
    while (!/g OK/.test(got) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.match(stripTiming(got), /^\* NAMESPACE \(\("" "\/"\)\) NIL NIL\r\ng OK Namespace completed\r\n$/);
    s.destroy();
  } finally { await f.stop(); }
});

test('hostile input: 4 GB literal, 100,000-deep parentheses, bad sets, vanishing client mid-literal', async () => {
  const f = await startFixture();
  try {
    const c = await login(f.port);
    await c.tagged('s', 'SELECT INBOX');
    const t = Date.now();
    assert.match(await c.tagged('a', 'APPEND INBOX {4294967296}'), /^a BAD \[TOOBIG\] /);
    assert.ok(Date.now() - t < 1000);
    assert.match(await c.tagged('b', 'SEARCH ' + '('.repeat(100_000) + 'ALL' + ')'.repeat(100_000), 10_000), /^b BAD /m);
    for (const [i, set] of ['0', '1:x', '4294967296', '1,,2', '*:', ''].entries()) {
      assert.match(await c.tagged(`c${i}`, `FETCH ${set} FLAGS`), new RegExp(`^c${i} BAD `, 'm'), set);
    }
    assert.match(await c.tagged('d', 'UID FETCH 1:* (FLAGS'), /^d BAD /m);
    assert.match(stripTiming(await c.tagged('e', 'NOOP')), /^e OK NOOP completed\r\n$/m);
    // a non-synchronising 4 GB literal cannot be skipped: BYE
    c.send('z APPEND INBOX {4294967296+}\r\nxxxx');
    await c.waitFor(/\* BYE [^\n]*\n/);
    c.close();
    // vanish mid-literal; the server goes on
    const v = await login(f.port);
    v.send('m APPEND INBOX {1000+}\r\nSubject: half\r\n\r\n');
    v.close();
    await new Promise((r) => setTimeout(r, 50));
    const w = await login(f.port);
    assert.match(stripTiming(await w.tagged('s', 'SELECT INBOX')), /\* 0 EXISTS/);
    w.close();
  } finally { await f.stop(); }
});

test('extensions: MULTIAPPEND, CATENATE, BINARY, CONDSTORE, QRESYNC, SEARCHRES, ESORT, QUOTA from the userdb', async () => {
  const f = await startFixture({ users: [['alice@example.test', 'secret', 'userdb_quota_rule=*:storage=1M']] });
  try {
    const c = await login(f.port);
    assert.match(stripTiming(await c.tagged('e', 'ENABLE QRESYNC')), /^\* ENABLED CONDSTORE QRESYNC\r\ne OK Enabled\r\n$/);
    const M = 'Subject: a\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n';
    let r = stripTiming(await c.tagged('a', `APPEND INBOX (\\Seen) {${M.length}+}\r\n${M} {18+}\r\nSubject: b\r\n\r\nxyz\r\n`));
    const m = /^a OK \[APPENDUID (\d+) 1:2\] Append completed\r\n$/.exec(r);
    assert.ok(m, r);
    const uidv = m[1];
    r = stripTiming(await c.tagged('c', `APPEND INBOX CATENATE (URL "/INBOX;UIDVALIDITY=${uidv}/;UID=1/;SECTION=HEADER" TEXT {6+}\r\nhello\n)`));
    assert.equal(r, `c OK [APPENDUID ${uidv} 3] Append completed\r\n`);
    assert.match(stripTiming(await c.tagged('c2', 'APPEND INBOX CATENATE (URL "/INBOX/;UID=99")')), /^c2 NO \[BADURL \/INBOX\/;UID=99\] /);
    r = stripTiming(await c.tagged('s', 'SELECT INBOX'));
    assert.match(r, /\* 3 EXISTS\r\n[\s\S]*\* OK \[HIGHESTMODSEQ \d+\] Highest\r\n/);
    const hi = /HIGHESTMODSEQ (\d+)/.exec(r)![1]!;
    assert.match(stripTiming(await c.tagged('f', 'FETCH 3 BODY.PEEK[]')), /^\* 3 FETCH \(BODY\[\] \{\d+\}\r\nSubject: a\r\nContent-Type: text\/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nhello\r\n\)\r\n/);   // served in CRLF form
    assert.match(stripTiming(await c.tagged('b', 'FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])')), /^\* 1 FETCH \(BINARY\[1\] ~\{11\}\r\nhello world BINARY\.SIZE\[1\] 11\)\r\n/);
    const hm = /MODSEQ \((\d+)\)/.exec(await c.tagged('m', 'FETCH 1 MODSEQ'))![1]!;
    assert.equal(stripTiming(await c.tagged('u', 'STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Flagged)')), 'u OK [MODIFIED 1] Conditional store failed\r\n');
    assert.match(stripTiming(await c.tagged('u2', `STORE 1 (UNCHANGEDSINCE ${hm}) +FLAGS (\\Flagged)`)), /^\* 1 FETCH \(MODSEQ \(\d+\) FLAGS \(\\Flagged \\Seen \\Recent\)\)\r\nu2 OK Store completed\r\n$/);
    assert.match(stripTiming(await c.tagged('cs', `FETCH 1:* (FLAGS) (CHANGEDSINCE ${hi})`)), /^\* 1 FETCH \(FLAGS \(\\Flagged \\Seen \\Recent\) MODSEQ \(\d+\)\)\r\ncs OK Fetch completed\r\n$/);
    await c.tagged('d', 'STORE 2 +FLAGS.SILENT (\\Deleted)');
    assert.match(stripTiming(await c.tagged('x', 'EXPUNGE')), /^\* VANISHED 2\r\n/);
    await c.tagged('cl', 'UNSELECT');
    r = stripTiming(await c.tagged('q', `SELECT INBOX (QRESYNC (${uidv} ${hi} 1:3))`));
    assert.match(r, /\* VANISHED \(EARLIER\) 2\r\n\* 1 FETCH \(UID 1 FLAGS \(\\Flagged \\Seen\) MODSEQ \(\d+\)\)\r\n/);
    // The expunge history makes VANISHED (EARLIER) exact: since a modseq after the expunge, UID 2
    // is not reported again (a superset would repeat it on every resync).
    const hi2 = /HIGHESTMODSEQ (\d+)/.exec(r)![1]!;
    assert.equal(stripTiming(await c.tagged('v1', `UID FETCH 1:3 (FLAGS) (CHANGEDSINCE ${hi} VANISHED)`)).split('\r\n')[0], '* VANISHED (EARLIER) 2');
    assert.equal(stripTiming(await c.tagged('v2', `UID FETCH 1:3 (FLAGS) (CHANGEDSINCE ${hi2} VANISHED)`)), 'v2 OK Fetch completed\r\n');
    await c.tagged('cl2', 'UNSELECT');
    assert.doesNotMatch(stripTiming(await c.tagged('q2', `SELECT INBOX (QRESYNC (${uidv} ${hi2} 1:3))`)), /VANISHED/);
    assert.equal(stripTiming(await c.tagged('sr', 'UID SEARCH RETURN (SAVE) FLAGGED')), 'sr OK Search completed\r\n');
    assert.equal(stripTiming(await c.tagged('sr2', 'UID FETCH $ (FLAGS)')), '* 1 FETCH (UID 1 FLAGS (\\Flagged \\Seen))\r\nsr2 OK Fetch completed\r\n');
    assert.equal(stripTiming(await c.tagged('es', 'UID SORT RETURN (MIN MAX COUNT ALL) (REVERSE SUBJECT) UTF-8 ALL')), '* ESEARCH (TAG "es") UID MIN 1 MAX 3 ALL 1,3 COUNT 2\r\nes OK Sort completed\r\n');
    assert.equal(stripTiming(await c.tagged('gq', 'GETQUOTAROOT INBOX')), '* QUOTAROOT INBOX "User quota"\r\n* QUOTA "User quota" (STORAGE 1 1024)\r\ngq OK Getquotaroot completed\r\n');
    assert.equal(stripTiming(await c.tagged('gq2', 'GETQUOTA "User quota"')), '* QUOTA "User quota" (STORAGE 1 1024)\r\ngq2 OK Getquota completed\r\n');
    assert.equal(stripTiming(await c.tagged('ex', 'EXAMINE INBOX')).split('\r\n').filter((l) => l.includes('PERMANENTFLAGS'))[0], '* OK [PERMANENTFLAGS ()] Read-only mailbox.');
    assert.equal(stripTiming(await c.tagged('ro', 'STORE 1 +FLAGS (\\Deleted)')), 'ro OK Store ignored with read-only mailbox\r\n');
    c.close();
  } finally { await f.stop(); }
});

test('the service contract: started by the master with its bound listeners, stopped gracefully', async () => {
  const { service } = await import('./imapd.ts');
  const { createServer } = await import('node:net');
  const { parseDovecotConf } = await import('../global/dovecot-conf.ts');
  const { Logger } = await import('../util/msg.ts');
  const f = await startFixture(); // for its users file and Maildirs
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  let handler: ((s: import('node:net').Socket) => void) | undefined;
  server.on('connection', (s) => handler?.(s));
  try {
    const { readFileSync } = await import('node:fs');
    const conf = parseDovecotConf(readFileSync(join(f.dir, 'dovecot.conf'), 'utf8'), join(f.dir, 'dovecot.conf'));
    const running = await service.start({
      config: undefined as never, masterCf: [], dovecot: conf, protocol: 'imap', log: new Logger('imap'), failed: () => {},
      entry: { service: 'imap', type: 'inet', private: false, unpriv: true, chroot: false, wakeup: 0, wakeupIfUsed: false, maxproc: 0, command: 'imapd', args: [], overrides: {} } as never,
      listeners: [{ kind: 'inet', name: 'imap', ssl: false, address: `127.0.0.1:${port}`, server, accept: (h) => { handler = h; } }],
    });
    const c = await login(port);
    assert.match(stripTiming(await c.tagged('n', 'NOOP')), /^n OK NOOP completed\r\n$/);
    await running.stop();
    assert.match(await c.waitFor(/\* BYE [^\n]*\n/), /^\* BYE Server shutting down\.\r\n$/);
    c.close();
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    await f.stop();
  }
});

test('300 IDLE sessions on one mailbox: one delivery reaches every one', async () => {
  const f = await startFixture({ conf: 'mail_max_userip_connections = 0' });
  try {
    const clients: LineChat[] = [];
    for (let i = 0; i < 300; i += 50) {
      clients.push(...await Promise.all(Array.from({ length: 50 }, async () => {
        const c = await login(f.port);
        await c.tagged('s', 'SELECT INBOX');
        c.send('i IDLE\r\n');
        await c.waitFor(/^\+ idling\r\n/m);
        return c;
      })));
    }
    assert.equal(f.imapd.sessionCount, 300);
    const t0 = Date.now();
    await deliver(f, 'INBOX', MSG1);
    // well under a second on an idle machine; the bound leaves room for a loaded CI host
    await Promise.all(clients.map((c) => c.waitFor(/\* 1 EXISTS\r\n/, 5000)));
    assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
    for (const c of clients) c.close();
  } finally { await f.stop(); }
});

test('one APPEND holds at most mail_max_size of messages together; the session goes on', async () => {
  const f = await startFixture({ settings: { maxLiteralSize: 1000 } });
  try {
    const c = await login(f.port);
    const m = 'Subject: x\r\n\r\n' + 'y'.repeat(584) + '\r\n';
    assert.equal(m.length, 600);
    // MULTIAPPEND (RFC 3502): the second 600-byte message would make 1200 > 1000
    c.send(`a APPEND INBOX {600+}\r\n${m} {600}\r\n`);
    assert.match(await c.waitFor(/a BAD[^\n]*\n/), /^a BAD \[TOOBIG\] Error in IMAP command APPEND: Literal size too large\r\n$/m);
    assert.match(stripTiming(await c.tagged('b', `APPEND INBOX {600+}\r\n${m}`)), /^b OK \[APPENDUID \d+ 1\] Append completed/m);
    assert.match(stripTiming(await c.tagged('n', 'NOOP')), /^n OK NOOP completed/m);
  } finally { await f.stop(); }
});
