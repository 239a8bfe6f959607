import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imapString, imapAstring, imapNstring, imapStringForHumans, imapList, imapFetchResponse, imapLiteral8 } from './imap-compose.ts';

const s = (b: Buffer): string => b.toString('latin1');

test('quoted vs literal, like Dovecot imap-quote.c', () => {
  assert.equal(s(imapString('hello world')), '"hello world"');
  assert.equal(s(imapString('a "b" \\c')), '"a \\"b\\" \\\\c"');
  assert.equal(s(imapString('""""""')), '{6}\r\n""""""', 'more than 4 quoted-specials → literal');
  assert.equal(s(imapString('line\r\nbreak')), '{11}\r\nline\r\nbreak');
  assert.equal(s(imapString(Buffer.from('Grüße'))), '{7}\r\nGr\xc3\xbc\xc3\x9fe');
  assert.equal(s(imapNstring(undefined)), 'NIL');
  assert.equal(s(imapNstring('')), '""');
});

test('astring never writes a bare NIL or empty atom', () => {
  assert.equal(s(imapAstring('INBOX')), 'INBOX');
  assert.equal(s(imapAstring('nil')), '"nil"');
  assert.equal(s(imapAstring('')), '""');
  assert.equal(s(imapAstring('a b')), '"a b"');
  assert.equal(s(imapAstring('a]b')), 'a]b');
  assert.equal(s(imapAstring('a%')), '"a%"');
});

test('strings for humans: tabs, runs of white space, CR/LF', () => {
  assert.equal(s(imapStringForHumans(Buffer.from('plain'))), '"plain"');
  assert.equal(s(imapStringForHumans(Buffer.from('a\tb'))), '{3}\r\na b');
  assert.equal(s(imapStringForHumans(Buffer.from('  a   b  '))), '{3}\r\na b');
  assert.equal(s(imapStringForHumans(Buffer.from('   '))), '""');
});

test('lists (deep ones without recursion) and FETCH responses', () => {
  assert.equal(s(imapList([Buffer.from('A'), [Buffer.from('B'), []], Buffer.from('C')])), '(A (B ()) C)');
  let deep: Buffer | Buffer[] | unknown[] = [];
  for (let i = 0; i < 50000; i++) deep = [deep];
  assert.equal(imapList(deep as never).length, 100002);
  assert.equal(s(imapFetchResponse(3, [['UID', Buffer.from('7')], ['FLAGS', Buffer.from('(\\Seen)')]])), '* 3 FETCH (UID 7 FLAGS (\\Seen))\r\n');
  assert.equal(s(imapLiteral8(Buffer.from('a\0'))), '~{2}\r\na\0');
});
