import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseImapDateTime, parseImapDate, formatImapDateTime, formatImapDate } from './imap-date.ts';
import { ImapParseError } from './imap-parser.ts';

test('date-time both ways, zone kept (RFC 3501 §9 date-time)', () => {
  const d = parseImapDateTime('17-Jul-1996 02:44:25 -0700');
  assert.equal(d.date.toISOString(), '1996-07-17T09:44:25.000Z');
  assert.equal(d.tzOffset, -420);
  assert.equal(formatImapDateTime(d.date, d.tzOffset), '17-Jul-1996 02:44:25 -0700');
  assert.equal(parseImapDateTime(' 7-feb-1994 21:52:25 +0000').date.toISOString(), '1994-02-07T21:52:25.000Z');
  assert.equal(formatImapDateTime(new Date(Date.UTC(2024, 0, 5, 3, 4, 5)), 90), '05-Jan-2024 04:34:05 +0130');
});

test('date (SEARCH) both ways', () => {
  assert.equal(parseImapDate('1-Feb-1994').toISOString(), '1994-02-01T00:00:00.000Z');
  assert.equal(formatImapDate(new Date(Date.UTC(1994, 1, 1))), '1-Feb-1994');
});

test('invalid dates are clear errors', () => {
  for (const bad of ['32-Jan-2020 00:00:00 +0000', '29-Feb-2023 00:00:00 +0000', '01-Foo-2020 00:00:00 +0000',
    '01-Jan-2020 24:00:00 +0000', '01-Jan-2020 00:00:00', '01-Jan-2020 00:00:00 +0060', 'garbage']) {
    assert.throws(() => parseImapDateTime(bad), ImapParseError, bad);
  }
  for (const bad of ['30-Feb-2020', '1-Feb-94', 'Feb-1-1994', '']) assert.throws(() => parseImapDate(bad), ImapParseError, bad);
});
