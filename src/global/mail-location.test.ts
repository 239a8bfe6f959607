/** mail_location parsing: table-driven, hostile input included. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandMailVars, MailLocationError, parseMailLocation } from './mail-location.ts';

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

test('mail_location: hostile or wrong values are MailLocationErrors naming the problem', () => {
  for (const [spec, re] of [
    ['dbox:~/x', /unsupported mailbox format "dbox"/], ['maildir:', /missing path/], ['maildir:relative/dir', /not an absolute path/],
    ['maildir:~/M:LAYOUT=weird', /LAYOUT=weird/], ['maildir:~/M:BOGUS=1', /unknown option "BOGUS"/], ['maildir:/x/%z', /unknown or unset variable %z/],
    ['maildir:/x\0y', /NUL/],
  ] as const) {
    assert.throws(() => parseMailLocation(spec, V), (e: Error) => e instanceof MailLocationError && re.test(e.message), spec);
  }
  assert.throws(() => parseMailLocation('maildir:~/M', { user: 'x' }), /no home directory/);
});
