import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maillogPrefixError, postlogLines, rotateSuffix } from './master-maillog.ts';

test('lines in postlogd\'s shape: zero-padded day, $myhostname\'s first label (Postfix 3.7.11\'s maillog_file)', () => {
  const batch = 'Dec  7 21:17:58 vm postern/master[18855]: daemon started -- version 1\nDec 17 01:02:03 vm postern/smtpd[1]: x  y\n';
  assert.equal(postlogLines(batch, 'mx'),
    'Dec 07 21:17:58 mx postern/master[18855]: daemon started -- version 1\nDec 17 01:02:03 mx postern/smtpd[1]: x  y\n');
});

test('maillog_file_prefixes: a plain string prefix, as Postfix allowed_prefix(); Postfix\'s error text', () => {
  assert.equal(maillogPrefixError('/var/log/postern.log', ['/var', '/dev/stdout']), undefined);
  assert.equal(maillogPrefixError('/dev/stdout', ['/var', '/dev/stdout']), undefined);
  assert.equal(maillogPrefixError('/home/x/maillog', ['/var', '/dev/stdout']),
    "maillog_file value '/home/x/maillog' does not match any prefix in maillog_file_prefixes");
  assert.equal(maillogPrefixError('', ['/var']), undefined, 'empty: no file');
});

test('maillog_file_rotate_suffix: the default %Y%m%d-%H%M%S', () => {
  assert.equal(rotateSuffix('%Y%m%d-%H%M%S', new Date(2026, 11, 7, 9, 5, 3)), '20261207-090503');
  assert.equal(rotateSuffix('%%x%Q'), '%x%Q');
});
