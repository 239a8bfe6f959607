import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddressList, type MailAddress } from './mail-address.ts';
import { decodeRfc2047 } from './mail-rfc2047.ts';
import { decodeBase64, decodeQuotedPrintable, decodeCte, decodeCharset, UnknownCteError } from './mail-decode.ts';
import { parseMailDate } from './mail-date.ts';
import { parseContentType } from './mail-content-type.ts';

const show = (l: MailAddress[]): string[] => l.map((a) =>
  [a.name, a.route, a.mailbox, a.domain].map((x) => (x === undefined ? 'NIL' : x.toString())).join('|'));

test('addresses like Dovecot message-address.c (ENVELOPE)', () => {
  assert.deepEqual(show(parseAddressList(Buffer.from('"Doe, John" <john@example.com>, jane@example.com (Jane D)'))),
    ['Doe, John|NIL|john|example.com', 'Jane D|NIL|jane|example.com']);
  assert.deepEqual(show(parseAddressList(Buffer.from('Team: a@b, "C" <c@d>;, e@f'))),
    ['NIL|NIL|Team|NIL', 'NIL|NIL|a|b', 'C|NIL|c|d', 'NIL|NIL|NIL|NIL', 'NIL|NIL|e|f']);
  assert.deepEqual(show(parseAddressList(Buffer.from('<@r1,@r2:u@h>'))), ['NIL|@r1,@r2|u|h']);
  assert.deepEqual(show(parseAddressList(Buffer.from('nodomain'))), ['NIL|NIL|nodomain|MISSING_DOMAIN']);
  assert.deepEqual(show(parseAddressList(Buffer.from('Name <broken'))), ['Name|NIL|broken|SYNTAX_ERROR']);
  assert.deepEqual(show(parseAddressList(Buffer.from('"quoted local"@example.com'))), ['NIL|NIL|quoted local|example.com']);
  assert.deepEqual(show(parseAddressList(Buffer.from('=?UTF-8?B?SsO2cmc=?= <j@x>'))), ['=?UTF-8?B?SsO2cmc=?=|NIL|j|x']);
  assert.deepEqual(parseAddressList(Buffer.from('   ')), []);
  assert.deepEqual(show(parseAddressList(Buffer.from('a@[127.0.0.1]'))), ['NIL|NIL|a|[127.0.0.1]']);
});

test('hostile address headers are bounded and never throw', () => {
  const many = parseAddressList(Buffer.from('a@b, '.repeat(50_000)));
  assert.ok(many.length <= 10_001);
  parseAddressList(Buffer.from('('.repeat(100_000)));
  parseAddressList(Buffer.from('<'.repeat(10_000) + '>'.repeat(10_000)));
  parseAddressList(Buffer.from('"unterminated'));
  parseAddressList(Buffer.from('g:'.repeat(10_000)));
});

test('RFC 2047 encoded words (for SEARCH), adjacent words joined', () => {
  assert.equal(decodeRfc2047(Buffer.from('=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= =?UTF-8?B?IGF1cyBNw7xuY2hlbg==?= and plain')), 'Grüße aus München and plain');
  assert.equal(decodeRfc2047(Buffer.from('=?ISO-8859-1?Q?Andr=E9?= Pirard')), 'André Pirard');
  assert.equal(decodeRfc2047(Buffer.from('=?us-ascii*en?q?Keith_Moore?=')), 'Keith Moore');
  assert.equal(decodeRfc2047(Buffer.from('=?x-unknown?q?abc?=')), 'abc');
  assert.equal(decodeRfc2047(Buffer.from('no =?broken')), 'no =?broken');
});

test('content-transfer-encoding and charset decoding', () => {
  assert.equal(decodeBase64(Buffer.from('aGVs\r\nbG8=')).toString(), 'hello');
  assert.equal(decodeBase64(Buffer.from('!!aGVsbG8')).toString(), 'hello', 'junk skipped');
  assert.equal(decodeQuotedPrintable(Buffer.from('a=3Db=\r\nc  \r\nd=ZZ')).toString(), 'a=bc\r\nd=ZZ');
  assert.throws(() => decodeCte(Buffer.from('x'), 'x-uuencode'), UnknownCteError);
  assert.equal(decodeCte(Buffer.from('x'), '8BIT').toString(), 'x');
  assert.equal(decodeCharset(Buffer.from([0xe9]), 'iso-8859-1'), 'é');
  assert.equal(decodeCharset(Buffer.from([0xf0, 0xd2]), 'koi8-r'), 'Пр');
  assert.equal(decodeCharset(Buffer.from('ok'), 'no-such-charset'), 'ok');
});

test('Date headers (SENT* keys): own-zone calendar day', () => {
  const d = parseMailDate('Mon, 7 Feb 1994 21:52:25 -0800 (PST)')!;
  assert.equal(d.date.toISOString(), '1994-02-08T05:52:25.000Z');
  assert.equal(d.day.toISOString().slice(0, 10), '1994-02-07');
  assert.equal(parseMailDate('12 Feb 1994 00:00 GMT')!.date.toISOString(), '1994-02-12T00:00:00.000Z');
  assert.equal(parseMailDate('1 Jan 99 10:00:00 EST')!.date.toISOString(), '1999-01-01T15:00:00.000Z');
  assert.equal(parseMailDate('garbage'), undefined);
});

test('Content-Type parsing: comments, quoted values, RFC 2231 continuations, invalid', () => {
  const ct = parseContentType(Buffer.from('MULTIPART/Mixed; (comment) BOUNDARY="=_p1";\r\n x-extra = "a \\"b\\""'));
  assert.equal(ct.type, 'MULTIPART');
  assert.deepEqual(ct.params.map(([k, v]) => `${k}=${v}`), ['BOUNDARY==_p1', 'x-extra=a "b"']);
  const c2 = parseContentType(Buffer.from("application/x; name*0*=UTF-8''%E2; name*1=\" x\""));
  assert.deepEqual(c2.params.map(([k, v]) => `${k}=${v}`), ["name*=UTF-8''%E2 x"]);
  assert.deepEqual(parseContentType(Buffer.from('text; charset=')), { type: '', subtype: '', params: [] });
});
