/** Modified UTF-7 and mailbox-name validation: table-driven, hostile input included (mail_location: global/mail-location.test.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mutf7ToUtf8 as mutf7Decode, mutf7Encode } from '../lib-imap/imap-utf7.ts';
import { decodeImapMailboxName, validateMailboxName } from './mailbox-name.ts';
import { MailError } from './mail-error.ts';

test('modified UTF-7: RFC 3501 examples round-trip, non-canonical forms rejected', () => {
  for (const [u, m] of [['Entwürfe', 'Entw&APw-rfe'], ['~peter/mail/台北/日本語', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'], ['A&B', 'A&-B'], ['Gesendete Objekte', 'Gesendete Objekte'], ['😀', '&2D3eAA-']]) {
    assert.equal(mutf7Encode(u!), m);
    assert.equal(mutf7Decode(m!), u);
  }
  for (const bad of ['&', '&Jjo', '&AGE-', '&U,BTFw-&ZeVnLIqe-', '&2D0-', '&AAA-x', 'a\x01', '&ÿ-', '&U,BTF-']) assert.equal(mutf7Decode(bad), undefined, bad);
  assert.throws(() => decodeImapMailboxName('&Jjo'), (e: MailError) => e.code === 'PARAMS');
});

test('mailbox names: INBOX normalised; .., NUL, empty levels, over-long refused; %, * allowed as Dovecot allows them', () => {
  assert.deepEqual(validateMailboxName('inbox/Sub', '/'), ['INBOX', 'Sub']);
  assert.deepEqual(validateMailboxName('a%b/*', '/'), ['a%b', '*']);
  assert.deepEqual(validateMailboxName('Archive.2024', '.'), ['Archive', '2024']);
  for (const n of ['', '..', 'a/../b', 'a//b', '/a', 'a/', 'x\0', '~x', 'a'.repeat(1025), 'a/.']) {
    assert.throws(() => validateMailboxName(n, '/'), (e: MailError) => e.code === 'PARAMS', JSON.stringify(n.slice(0, 10)));
  }
  assert.throws(() => validateMailboxName('a/b', '.'), /'\/'/);
});
