/**
 * mail-attribute: Dovecot's file dict format (tab-escaped key/value lines), all-or-nothing
 * updates under the dotlock, concurrent writers, the size cap, and mail_attribute_dict paths.
 * The format against real Dovecot: test/interop/imap-metadata-vs-dovecot.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ATTRIBUTE_FILE_MAX, FileDict, FileDictAttributes, attributeDictPath, formatFileDict, parseFileDict, tabEscape, tabUnescape } from './mail-attribute.ts';
import { MailError } from './mail-error.ts';

test('tab escaping and the file format round-trip (Dovecot str_tabescape)', () => {
  const v = 'a\tb\r\nc\x01d';
  assert.equal(tabEscape(v), 'a\x01tb\x01r\x01nc\x011d');
  assert.equal(tabUnescape(tabEscape(v)), v);
  const m = new Map([['priv/g/comment', 'x\ny'], ['shared/g/k', '']]);
  const text = formatFileDict(m);
  assert.equal(text, 'priv/g/comment\nx\x01ny\nshared/g/k\n\n');
  assert.deepEqual([...parseFileDict(text)], [...m]);
  assert.deepEqual([...parseFileDict('k\n')], []); // a key without its value line is dropped
});

test('attributes: keys lower-case per mailbox GUID, list by prefix, NIL removes; concurrent writers lose nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-attr-'));
  try {
    const a = new FileDictAttributes(join(dir, 'dovecot-attributes'), async (box) => (box === 'INBOX' ? 'g1' : 'g2'));
    await a.set('INBOX', [{ type: 'private', key: 'Comment', value: 'c' }, { type: 'shared', key: 'vendor/x', value: 'v' }]);
    assert.equal(await a.get('INBOX', 'private', 'COMMENT'), 'c');
    assert.deepEqual(await a.list('INBOX', 'shared', ''), [['vendor/x', 'v']]);
    assert.equal(await a.get('Other', 'private', 'comment'), undefined);
    await Promise.all(Array.from({ length: 20 }, (_, i) => a.set('Other', [{ type: 'private', key: `k${i}`, value: String(i) }])));
    assert.equal((await a.list('Other', 'private', 'k')).length, 20);
    await a.set('INBOX', [{ type: 'private', key: 'comment', value: undefined }]);
    assert.equal(await a.get('INBOX', 'private', 'comment'), undefined);
    assert.match(readFileSync(join(dir, 'dovecot-attributes'), 'utf8'), /^shared\/g1\/vendor\/x\nv\n/m);
    assert.ok(!existsSync(join(dir, 'dovecot-attributes.lock')));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('the file never grows past ATTRIBUTE_FILE_MAX; a refused update changes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-attr-'));
  try {
    const d = new FileDict(join(dir, 'f'));
    await d.update((m) => { m.set('a', 'b'); });
    await assert.rejects(d.update((m) => { m.set('big', 'x'.repeat(ATTRIBUTE_FILE_MAX)); }), (e: unknown) => e instanceof MailError && e.code === 'LIMIT');
    assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'a\nb\n');
    assert.ok(!existsSync(join(dir, 'f.lock')));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('mail_attribute_dict: file:%h/... and file:~/...; other dict types are refused', () => {
  assert.equal(attributeDictPath('file:%h/dovecot-attributes', '/home/u'), '/home/u/dovecot-attributes');
  assert.equal(attributeDictPath('file:~/Maildir/attrs', '/home/u'), '/home/u/Maildir/attrs');
  assert.throws(() => attributeDictPath('file:~/attrs:lock=fcntl', '/h'), /remove the :lock= parameter/);
  assert.throws(() => attributeDictPath('proxy::metadata', '/h'), (e: unknown) => e instanceof MailError && e.code === 'PARAMS');
  assert.throws(() => attributeDictPath('file:/var/%u/x', '/h'), /only %h/);
});
