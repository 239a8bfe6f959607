import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mutf7Encode, mutf7Decode, mutf7ToUtf8, decodeMailboxName } from './imap-utf7.ts';
import { ImapParseError } from './imap-parser.ts';

test('modified UTF-7 round trips (RFC 3501 §5.1.3 examples)', () => {
  const cases: [string, string][] = [
    ['~peter/mail/台北/日本語', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'],
    ['&', '&-'],
    ['Entwürfe', 'Entw&APw-rfe'],
    ['Отправленные', '&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-'],
    ['a & b', 'a &- b'],
    ['😀', '&2D3eAA-'],
    ['INBOX', 'INBOX'],
  ];
  for (const [utf8, utf7] of cases) {
    assert.equal(mutf7Encode(utf8), utf7);
    assert.equal(mutf7Decode(utf7), utf8);
  }
});

test('invalid modified UTF-7 is rejected with a reason', () => {
  const bad: [string, RegExp][] = [
    ['&U,BTFw', /terminating/], // no '-'
    ['&U/BTFw-', /base64/], // '/' instead of ','
    ['&AGE-', /printable ASCII/], // "a" encoded
    ['&APw-&APw-', /adjacent/],
    ['&2D0-', /surrogate/], // lone high surrogate
    ['&AP-', /padding|length/],
    ['caf\xe9', /8-bit/],
  ];
  for (const [s, re] of bad) {
    assert.throws(() => mutf7Decode(s), (e: unknown) => e instanceof ImapParseError && re.test(e.message), s);
  }
});

test('mailbox names with UTF8=ACCEPT are UTF-8; invalid UTF-8 or NUL rejected', () => {
  assert.equal(decodeMailboxName(Buffer.from('Entwürfe'), true), 'Entwürfe');
  assert.equal(decodeMailboxName(Buffer.from('Entw&APw-rfe'), false), 'Entwürfe');
  assert.throws(() => decodeMailboxName(Buffer.from([0x61, 0xff]), true), ImapParseError);
  assert.throws(() => decodeMailboxName(Buffer.from('a\0b'), true), ImapParseError);
});

test('fuzz: random strings decode or throw ImapParseError, never anything else', () => {
  let seed = 7;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const alpha = '&-,+/AZaz09 ~\x7f\x00';
  for (let i = 0; i < 5000; i++) {
    let s = '';
    for (let j = rnd(12); j > 0; j--) s += alpha[rnd(alpha.length)];
    try {
      const d = mutf7Decode(s);
      assert.equal(mutf7Encode(d), s, 'valid input has exactly one encoding');
    } catch (e) {
      assert.ok(e instanceof ImapParseError, String(e));
    }
  }
});

test('mutf7ToUtf8: undefined where mutf7Decode throws, and for encoded control characters', () => {
  assert.equal(mutf7ToUtf8('Entw&APw-rfe'), 'Entwürfe');
  assert.equal(mutf7ToUtf8('&-x'), '&x');
  for (const bad of ['&', '&Jjo', '&AGE-', '&U,BTFw-&ZeVnLIqe-', '&2D0-', 'a\x01', '&U,BTF-']) {
    assert.equal(mutf7ToUtf8(bad), undefined, bad);
    assert.throws(() => mutf7Decode(bad), ImapParseError, bad);
  }
  assert.equal(mutf7Decode('&AAE-'), '\x01');
  assert.equal(mutf7ToUtf8('&AAE-'), undefined);
  assert.equal(mutf7ToUtf8('&AH8-'), undefined);
});
