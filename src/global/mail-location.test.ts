/** mail_location parsing and the mailbox virtual(8) is told from it: table-driven, hostile input included. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandMailVars, MailLocationError, parseMailLocation, virtualMailboxPath, virtualMailLocation } from './mail-location.ts';

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

test('mail_location: the format name in any case, as Dovecot', () => {
  assert.equal(parseMailLocation('MAILDIR:/var/vmail/%d/%n', V).format, 'maildir');
});

test('virtualMailboxPath: the root the store opens, relative to virtual_mailbox_base; else domain/user/ and a warning', () => {
  const u = { user: 'u@d.test', home: '/h' };
  const at = (mail: string, base = '/var/vmail') => virtualMailboxPath({ ...u, mail }, base);
  assert.deepEqual(at('maildir:/var/vmail/d.test/u', '/var/vmail/'), { path: 'd.test/u/' });
  assert.deepEqual(at('maildir:/var/vmail/d.test/u/:LAYOUT=fs'), { path: 'd.test/u/' });
  assert.deepEqual(at('maildir:/var//vmail/./d.test/u', '/var/vmail'), { path: 'd.test/u/' });
  assert.deepEqual(at('maildir:/var/vmail/a::b'), { path: 'a:b/' });
  assert.deepEqual(at('maildir:~/Maildir', '/h'), { path: 'Maildir/' });
  // Never outside the base: a root elsewhere, the base itself, or an unusable location.
  for (const [mail, why] of [['maildir:/var/vmail/../etc', /maildir \/var\/etc is not below virtual_mailbox_base/], ['maildir:/var/vmail', /not below/],
    ['maildir:/elsewhere/u', /not below/], ['maildir:relative', /not an absolute path/], ['maildir:/var/vmail/x:BOGUS', /unknown option/]] as const) {
    const r = at(mail);
    assert.equal(r.path, 'd.test/u/', mail);
    assert.match(r.warning ?? '', why, mail);
  }
  assert.equal(at('maildir:/elsewhere/u', '').warning, 'maildir /elsewhere/u is not below virtual_mailbox_base (unset); answering d.test/u/');
  assert.deepEqual(virtualMailboxPath({ user: 'u', mail: 'maildir:/x/u' }, '/y'), { path: 'u/', warning: 'maildir /x/u is not below virtual_mailbox_base /y; answering u/' });
  // Other formats: as written.
  assert.deepEqual(at('mbox:~/mail:INBOX=/var/mail/u'), { path: 'mbox:~/mail:INBOX=/var/mail/u' });
});

test('virtualMailLocation: the default configuration\'s mail_location is the base\'s %d/%n, and reaches back to it', () => {
  assert.equal(virtualMailLocation('/data/vmail'), 'maildir:/data/vmail/%d/%n');
  assert.equal(virtualMailLocation('/data/vmail/'), 'maildir:/data/vmail/%d/%n');
  const root = parseMailLocation(virtualMailLocation('/data/vmail'), { user: 'alice@example.test' }).root;
  assert.equal(root, '/data/vmail/example.test/alice');
  assert.deepEqual(virtualMailboxPath({ user: 'alice@example.test', mail: `maildir:${root}` }, '/data/vmail'), { path: 'example.test/alice/' });
});
