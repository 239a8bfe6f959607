/**
 * mail-acl unit tests: Dovecot's dovecot-acl format (parse, order, write), the rights each kind
 * of user gets (defaults, type precedence, negative rights, groups), and the file limits. The
 * comparison with files real Dovecot writes is test/interop/imap-acl-vs-dovecot.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACL_FILE_MAX, ACL_MAX_ENTRIES, effectiveRights, formatAclFile, parseAclFile, sortRights, VfileAcl } from './mail-acl.ts';
import { MailError } from './mail-error.ts';

test('the file format: order of entries and letters as Dovecot writes them; comments, junk and unknown letters skipped', () => {
  const e = parseAclFile('# comment\n\nuser=b@x lrZ\nowner :alr\n-user=b@x w\ngroup=staff lr\nbogus lr\nanyone l\nnoletters\n');
  assert.equal(formatAclFile(e), 'anyone l\ngroup=staff lr\nowner alr\nuser=b@x lr\n-user=b@x w\n');
  assert.equal(sortRights('lrwsikxa'), 'akxilrws');
});

test('rights: owner defaults, type precedence (user over group over anyone), negative rights, groups', () => {
  const owner = { user: 'a@x', owner: true };
  assert.equal(effectiveRights(undefined, owner), 'lrwstipekxa');
  assert.equal(effectiveRights(parseAclFile('user=b@x lr\n'), owner), 'lrwstipekxa');
  assert.equal(effectiveRights(parseAclFile('owner lr\n'), owner), 'lr');
  assert.equal(effectiveRights(parseAclFile('user=a@x ilr\n'), owner), 'lri');
  assert.equal(effectiveRights(parseAclFile('anyone lrw\n'), owner), 'lrwstipekxa');
  const b = { user: 'b@x', owner: false };
  assert.equal(effectiveRights(undefined, b), '');
  assert.equal(effectiveRights(parseAclFile('anyone lrw\nuser=b@x l\n'), b), 'l');
  assert.equal(effectiveRights(parseAclFile('anyone lrw\n-user=b@x w\n'), b), 'lr');
  assert.equal(effectiveRights(parseAclFile('group=staff lrs\n'), { ...b, groups: ['staff'] }), 'lrs');
  assert.equal(effectiveRights(parseAclFile('group=staff lrs\n'), b), '');
  assert.equal(effectiveRights(parseAclFile('authenticated lr\n'), b), 'lr');
});

test('VfileAcl: read, write through a temporary file, dovecot-acl-list removed, limits', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-acl-'));
  try {
    writeFileSync(join(dir, 'dovecot-acl-list'), '1 Foo\n');
    const acl = new VfileAcl(() => dir, dir);
    assert.equal(await acl.read('Foo'), undefined);
    await acl.write('Foo', parseAclFile('user=b@x lr\nowner alr\n'));
    assert.equal(readFileSync(join(dir, 'dovecot-acl'), 'utf8'), 'owner alr\nuser=b@x lr\n');
    assert.equal(existsSync(join(dir, 'dovecot-acl-list')), false);
    await acl.write('Foo', []);
    assert.equal(existsSync(join(dir, 'dovecot-acl')), false);
    writeFileSync(join(dir, 'dovecot-acl'), Array.from({ length: ACL_MAX_ENTRIES + 1 }, (_, i) => `user=u${i} l\n`).join(''));
    await assert.rejects(acl.read('Foo'), (e: unknown) => e instanceof MailError && e.code === 'LIMIT');
    writeFileSync(join(dir, 'dovecot-acl'), 'x'.repeat(ACL_FILE_MAX + 1));
    await assert.rejects(acl.read('Foo'), (e: unknown) => e instanceof MailError && e.code === 'LIMIT');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
