import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSeqSet, resolveSeqSet, seqSetHas, formatSeqSet, numbersToSeqSet, SEQ_STAR } from './imap-seqset.ts';
import { ImapParseError } from './imap-parser.ts';

test('sequence sets: ranges, *, lists, reversed ranges (RFC 3501 §9)', () => {
  assert.deepEqual(parseSeqSet('1:*'), { kind: 'ranges', ranges: [[1, SEQ_STAR]] });
  assert.deepEqual(resolveSeqSet(parseSeqSet('1,3:5,*'), 10), [[1, 1], [3, 5], [10, 10]]);
  assert.deepEqual(resolveSeqSet(parseSeqSet('5:2'), 10), [[2, 5]]);
  assert.deepEqual(resolveSeqSet(parseSeqSet('*:4'), 3), [[3, 4]]);
  assert.deepEqual(resolveSeqSet(parseSeqSet('1:3,2:6,8,7'), 10), [[1, 8]]);
  assert.deepEqual(resolveSeqSet(parseSeqSet('1:*'), 0), [], 'empty mailbox: * is 0, nothing matches');
});

test('$ is SEARCHRES (RFC 5182) and resolves to the saved result', () => {
  const s = parseSeqSet('$');
  assert.deepEqual(s, { kind: 'searchres' });
  assert.deepEqual(resolveSeqSet(s, 9, [4, 2, 3, 9]), [[2, 4], [9, 9]]);
  assert.throws(() => parseSeqSet('$', { allowSearchRes: false }), ImapParseError);
});

test('a huge range is one range, not 4 billion numbers', () => {
  const r = resolveSeqSet(parseSeqSet('1:4294967295'), 4294967295);
  assert.deepEqual(r, [[1, 4294967295]]);
  assert.ok(seqSetHas(r, 4000000000));
  assert.ok(!seqSetHas(resolveSeqSet(parseSeqSet('1:5,10:20'), 100), 7));
  assert.equal(formatSeqSet(r), '1:4294967295');
});

test('invalid sequence sets give a clear error', () => {
  for (const bad of ['', '0', '1:0', 'a', '1,,2', '1:2:3', '-1', '4294967296', ':5', '1,', '01', '1:*x', ' 1']) {
    assert.throws(() => parseSeqSet(bad), (e: unknown) => e instanceof ImapParseError && /sequence set/i.test(e.message), bad);
  }
});

test('numbersToSeqSet compacts for ESEARCH/COPYUID', () => {
  assert.equal(numbersToSeqSet([5, 1, 2, 3, 9, 10]), '1:3,5,9:10');
  assert.equal(numbersToSeqSet([]), '');
});
