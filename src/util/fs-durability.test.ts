/** fs-durability: the file system type of a path from /proc/self/mountinfo, and the rule built on it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { fileSystemType, newNamesDurableWithFileFsync } from './fs-durability.ts';

test('the type matches what df reports for the same path; /proc is proc; a missing path is unknown', () => {
  for (const p of [tmpdir(), '/', '/proc/self', '/dev']) {
    const df = execFileSync('df', ['--output=fstype', p], { encoding: 'utf8' }).trim().split('\n').pop()!.trim();
    assert.equal(fileSystemType(p), df, p);
  }
  assert.equal(fileSystemType('/proc'), 'proc');
  assert.equal(newNamesDurableWithFileFsync('/proc'), false);
  assert.equal(fileSystemType('/no/such/dir/here'), '');
  assert.equal(newNamesDurableWithFileFsync('/no/such/dir/here'), false);
});
