/** mail_location parsing, modified UTF-7 and mailbox-name validation: table-driven, hostile input included. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMailLocation, expandMailVars } from './mail-location.ts';
import { mutf7ToUtf8 as mutf7Decode, mutf7Encode } from '../lib-imap/imap-utf7.ts';
import { decodeImapMailboxName, validateMailboxName } from './mailbox-name.ts';
import { MailError } from './mail-error.ts';

const V = { user: 'joe@example.org', home: '/home/joe' };

test('mail_location: format, ~, %u %n %d %h, options, :: escape', () => {
  assert.deepEqual(parseMailLocation('maildir:~/Maildir', V), { format: 'maildir', root: '/home/joe/Maildir', layout: 'maildir++', utf8: false });
  const l = parseMailLocation('maildir:/var/vmail/%d/%n/:LAYOUT=fs:INDEX=/idx/%u:CONTROL=~/ctl:UTF8', V);
  assert.equal(l.root, '/var/vmail/example.org/joe');
  assert.equal(l.layout, 'fs'); assert.equal(l.index, '/idx/joe@example.org'); assert.equal(l.control, '/home/joe/ctl'); assert.equal(l.utf8, true);
  assert.equal(parseMailLocation('maildir:/a::b', V).root, '/a:b');
  assert.equal(parseMailLocation('', V).root, '/home/joe/Maildir');
  assert.equal(expandMailVars('%Lu-%{domain}-%%', { user: 'Joe@X' }), 'joe@x-X-%');
});

test('mail_location: hostile or wrong values are PARAMS errors naming the problem', () => {
  for (const [spec, re] of [
    ['dbox:~/x', /unsupported mailbox format "dbox"/], ['maildir:', /missing path/], ['maildir:relative/dir', /not an absolute path/],
    ['maildir:~/M:LAYOUT=weird', /LAYOUT=weird/], ['maildir:~/M:BOGUS=1', /unknown option "BOGUS"/], ['maildir:/x/%z', /unknown or unset variable %z/],
    ['maildir:/x\0y', /NUL/],
  ] as const) {
    assert.throws(() => parseMailLocation(spec, V), (e: MailError) => e.code === 'PARAMS' && re.test(e.message), spec);
  }
  assert.throws(() => parseMailLocation('maildir:~/M', { user: 'x' }), /no home directory/);
});

test('modified UTF-7: RFC 3501 examples round-trip, non-canonical forms rejected', () => {
  for (const [u, m] of [['Entwürfe', 'Entw&APw-rfe'], ['~peter/mail/台北/日本語', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'], ['A&B', 'A&-B'], ['Gesendete Objekte', 'Gesendete Objekte'], ['😀', '&2D3eAA-']]) {
    assert.equal(mutf7Encode(u!), m);
    assert.equal(mutf7Decode(m!), u);
  }
  for (const bad of ['&', '&Jjo', '&AGE-', '&U,BTFw-&ZeVnLIqe-', '&2D0-', '&AAA-x', 'a\x01', '&ÿ-', '&U,BTF-']) assert.equal(mutf7Decode(bad), undefined, bad);
  assert.throws(() => decodeImapMailboxName('&Jjo'), (e: MailError) => e.code === 'PARAMS');
});

test('mailbox names: INBOX normalised; .., NUL, %, *, empty levels, over-long refused', () => {
  assert.deepEqual(validateMailboxName('inbox/Sub', '/'), ['INBOX', 'Sub']);
  assert.deepEqual(validateMailboxName('Archive.2024', '.'), ['Archive', '2024']);
  for (const n of ['', '..', 'a/../b', 'a//b', '/a', 'a/', 'x\0', '%', 'a*', '~x', 'a'.repeat(1025), 'a/.']) {
    assert.throws(() => validateMailboxName(n, '/'), (e: MailError) => e.code === 'PARAMS', JSON.stringify(n.slice(0, 10)));
  }
  assert.throws(() => validateMailboxName('a/b', '.'), /'\/'/);
});
