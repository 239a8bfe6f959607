/** dsn-split: only a well-formed leading code is taken; the text is left as given otherwise. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dsnSplit } from './dsn-split.ts';

test('dsnSplit: only a well-formed leading code is taken', () => {
  assert.deepEqual(dsnSplit('5.0.0', '4.4.1 later'), { dsn: '4.4.1', text: 'later' });
  assert.deepEqual(dsnSplit('5.0.0', '4.4.1'), { dsn: '4.4.1', text: '' });
  assert.deepEqual(dsnSplit('5.0.0', '9.9.9 bogus'), { dsn: '5.0.0', text: '9.9.9 bogus' });
  assert.deepEqual(dsnSplit('5.0.0', '5.1.1234 x'), { dsn: '5.0.0', text: '5.1.1234 x' });
  assert.deepEqual(dsnSplit('5.0.0', '5.1.1x y'), { dsn: '5.0.0', text: '5.1.1x y' });
  assert.deepEqual(dsnSplit('5.0.0', 'x'.repeat(5000)).dsn, '5.0.0');
});

test('dsnSplit: white space after the code is skipped, the rest is kept as is', () => {
  assert.deepEqual(dsnSplit('5.7.1', '4.7.0 \t try later '), { dsn: '4.7.0', text: 'try later ' });
  assert.deepEqual(dsnSplit('5.7.1', ' 4.7.0 x'), { dsn: '5.7.1', text: ' 4.7.0 x' });
});
