/**
 * UTF8=ACCEPT (RFC 6855), which Dovecot 2.3 does not have:
 *  - imapflow (npm; it ENABLEs UTF8=ACCEPT when offered) creates, lists, selects and appends to
 *    a mailbox named "Entwürfe/日本" and sees the name in UTF-8; on disk the folder is Dovecot's
 *    modified UTF-7 name, so Dovecot and older clients see the same mailbox;
 *  - raw protocol: ENABLE UTF8=ACCEPT → `* ENABLED UTF8=ACCEPT`; names in UTF-8 afterwards and in
 *    modified UTF-7 before; APPEND with `UTF8 (~{n} ...)` stores the 8-bit header message byte for
 *    byte; SEARCH with a UTF-8 quoted string finds it;
 *  - hostile input after ENABLE: invalid UTF-8 and NUL in names, UTF8 without a literal8, two
 *    literals, UTF8 with an empty list — refused, and the session goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startFixture, connectImap, stripTiming } from '../harness/imapd-testkit.ts';

const IMAPFLOW = existsSync(new URL('../../node_modules/imapflow/package.json', import.meta.url)) ? true : undefined;
const NAME = 'Entwürfe/日本';

test('imapflow: UTF-8 mailbox names after ENABLE UTF8=ACCEPT', { skip: IMAPFLOW ? false : 'imapflow is not installed', timeout: 60_000 }, async () => {
  const f = await startFixture();
  try {
    const { ImapFlow } = await import('imapflow');
    const client = new ImapFlow({ host: '127.0.0.1', port: f.port, secure: false, auth: { user: 'alice@example.test', pass: 'secret' }, logger: false });
    await client.connect();
    try {
      assert.ok(client.capabilities.has('UTF8=ACCEPT'));
      assert.ok(client.enabled.has('UTF8=ACCEPT'), 'imapflow enabled UTF8=ACCEPT');
      await client.mailboxCreate(NAME);
      const r = await client.append(NAME, 'Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n\r\nbody\r\n');
      assert.ok(r && r.uid === 1);
      const list = await client.list();
      assert.ok(list.some((m) => m.path === NAME), JSON.stringify(list.map((m) => m.path)));
      const st = await client.status(NAME, { messages: true });
      assert.ok(st && st.messages === 1, JSON.stringify(st));
    } finally { await client.logout(); }
    // on disk: Dovecot's Maildir++ name in modified UTF-7
    assert.ok(readdirSync(f.maildir('alice@example.test')).includes('.Entw&APw-rfe.&ZeVnLA-'), readdirSync(f.maildir('alice@example.test')).join(' '));
  } finally { await f.stop(); }
});

test('raw: ENABLE UTF8=ACCEPT, UTF8 APPEND, UTF-8 quoted strings, hostile names and literals', { timeout: 60_000 }, async () => {
  const f = await startFixture();
  try {
    const c = await connectImap(f.port);
    await c.tagged('l', 'LOGIN alice@example.test secret');
    assert.match(await c.tagged('c0', 'CREATE "Entw&APw-rfe"'), /c0 OK/);
    assert.ok((await c.tagged('l0', 'LIST "" Entw*')).includes('"/" Entw&APw-rfe\r\n'), 'modified UTF-7 before ENABLE');
    assert.equal(stripTiming(await c.tagged('e', 'ENABLE UTF8=ACCEPT')), '* ENABLED UTF8=ACCEPT\r\ne OK Enabled\r\n');
    assert.equal(stripTiming(await c.tagged('e2', 'ENABLE UTF8=ACCEPT')), '* ENABLED\r\ne2 OK Enabled\r\n');
    // UTF-8 on the wire (as a literal: 8-bit names are sent as literals, as in IMAP4rev2)
    const u8 = (s: string): string => Buffer.from(s, 'latin1').toString('utf8');
    const l1 = u8(await c.tagged('l1', 'LIST "" Entw*'));
    assert.ok(l1.includes('"/" {9}\r\nEntwürfe\r\n') || l1.includes('"/" "Entwürfe"\r\n'), l1);
    // a UTF-8 quoted name
    assert.match(await c.tagged('c1', 'CREATE "Отправленные"'), /c1 OK/);
    const s1 = u8(await c.tagged('s1', 'STATUS "Отправленные" (MESSAGES)'));
    assert.ok(s1.includes('}\r\nОтправленные (MESSAGES 0)') || s1.includes('"Отправленные" (MESSAGES 0)'), s1);
    assert.ok(readdirSync(f.maildir('alice@example.test')).includes('.&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-'));
    // RFC 6855 §4: UTF8 APPEND with a literal8, 8-bit UTF-8 header
    const msg = Buffer.from('From: Jörg <jörg@example.test>\r\nSubject: Grüße aus Köln\r\n\r\nHallo\r\n', 'utf8');
    c.send(Buffer.concat([Buffer.from(`a1 APPEND "Отправленные" UTF8 (~{${msg.length}+}\r\n`), msg, Buffer.from(')\r\n')]));
    assert.match(stripTiming(await c.waitFor(/a1 (OK|NO|BAD)[^\n]*\n/)), /^a1 OK \[APPENDUID \d+ 1\] Append completed\r\n$/);
    const dir = join(f.maildir('alice@example.test'), '.&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-', 'cur');
    const files = [...readdirSync(dir), ...readdirSync(join(dir, '..', 'new'))];
    assert.equal(files.length, 1);
    const file = existsSync(join(dir, files[0]!)) ? join(dir, files[0]!) : join(dir, '..', 'new', files[0]!);
    assert.equal(readFileSync(file, 'utf8'), msg.toString('utf8').replace(/\r\n/g, '\n'));
    assert.match(await c.tagged('x', 'SELECT "Отправленные"'), /x OK/);
    assert.equal(stripTiming(await c.tagged('s2', 'SEARCH SUBJECT "Grüße"')), '* SEARCH 1\r\ns2 OK Search completed\r\n');
    const fetched = await c.tagged('f', 'FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
    assert.ok(Buffer.from(fetched, 'latin1').toString('utf8').includes('Subject: Grüße aus Köln'), fetched);
    // hostile: invalid UTF-8 and NUL in names
    const bad = Buffer.concat([Buffer.from('h1 CREATE "a'), Buffer.from([0xff, 0xfe]), Buffer.from('b"\r\n')]);
    c.send(bad);
    assert.match(stripTiming(await c.waitFor(/h1 (OK|NO|BAD)[^\n]*\n/)), /^h1 NO Mailbox name is not valid UTF-8\r\n$/);
    const overlong = Buffer.concat([Buffer.from('h2 CREATE "a'), Buffer.from([0xc0, 0xaf]), Buffer.from('b"\r\n')]); // overlong '/'
    c.send(overlong);
    assert.match(stripTiming(await c.waitFor(/h2 (OK|NO|BAD)[^\n]*\n/)), /^h2 (NO|BAD) /);
    c.send(Buffer.from('h3 CREATE {3+}\r\na\0b\r\n'));
    assert.match(stripTiming(await c.waitFor(/h3 (OK|NO|BAD)[^\n]*\n/)), /^h3 (NO|BAD) /);
    c.send(Buffer.from('h4 APPEND INBOX UTF8 ({3+}\r\nabc)\r\n'));
    assert.match(await c.waitFor(/h4 (OK|NO|BAD)[^\n]*\n/), /^h4 BAD /m);
    c.send(Buffer.from('h5 APPEND INBOX UTF8 (~{3+}\r\nabc ~{3+}\r\nabc)\r\n'));
    assert.match(await c.waitFor(/h5 (OK|NO|BAD)[^\n]*\n/), /^h5 BAD /m);
    assert.match(await c.tagged('h6', 'APPEND INBOX UTF8 ()'), /^h6 BAD /m);
    assert.match(await c.tagged('h7', 'APPEND INBOX UTF8'), /^h7 BAD /m);
    const names = readdirSync(f.maildir('alice@example.test')).filter((n) => n.startsWith('.'));
    assert.ok(!names.some((n) => n.includes('\0') || /[\x80-\xff]/.test(n)), names.join(' '));
    assert.match(await c.tagged('n', 'NOOP'), /n OK/);
    assert.equal(stripTiming(await c.tagged('s3', 'STATUS INBOX (MESSAGES)')), '* STATUS INBOX (MESSAGES 0)\r\ns3 OK Status completed\r\n');
    c.close();
  } finally { await f.stop(); }
});
