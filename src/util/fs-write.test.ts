import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writevFullySync } from './fs-write.ts';

test('writevFullySync writes the buffers one after another from the position', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-write-'));
  try {
    const p = join(dir, 'f');
    const fd = openSync(p, 'w+');
    try {
      writevFullySync(fd, [Buffer.from('head\n'), Buffer.alloc(0), Buffer.from('body'), Buffer.from('!\n')], 0);
      writevFullySync(fd, [Buffer.from('one')], 12);
      writevFullySync(fd, [], 15);
    } finally { closeSync(fd); }
    assert.equal(readFileSync(p, 'utf8'), 'head\nbody!\n\0one');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
