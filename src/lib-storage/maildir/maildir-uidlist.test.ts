/** dovecot-uidlist and file-name codecs against the bytes Dovecot 2.3.19 wrote on this machine. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUidlist, formatUidlist } from './maildir-uidlist.ts';
import { parseInfo, withInfo, sizeField, maildirBase } from './maildir-filename.ts';
import { parseKeywords, formatKeywords } from './maildir-keywords.ts';

const DOVECOT = '3 V1795805811 N3 Ge0c74e0e73d2096b3327000083ecc375\n1 :1795805811.M240044P10035.vm,S=9,W=9\n2 :1795805814.M414286P10083.vm,S=28,W=32\n3 :1700000000.M1P1.x\n';

test('uidlist v3 as Dovecot writes it: header N may lag the records, round trip is byte-exact', () => {
  const p = parseUidlist(DOVECOT, 'f');
  assert.deepEqual(p.problems, []);
  assert.equal(p.data!.uidValidity, 1795805811);
  assert.equal(p.data!.nextUid, 4, 'next UID is max(N, last + 1)');
  assert.deepEqual(p.data!.records.map((r) => r.uid), [1, 2, 3]);
  assert.equal(formatUidlist({ ...p.data!, nextUid: 3 }), DOVECOT);
  const ext = parseUidlist('3 V1 N5 G0123456789abcdef0123456789abcdef X9\n4 W120 P0001 :base:2,S\n', 'f').data!;
  assert.deepEqual(ext.records[0], { uid: 4, base: 'base', ext: ['W120', 'P0001'] });
  assert.equal(formatUidlist(ext), '3 V1 N5 G0123456789abcdef0123456789abcdef X9\n4 W120 P0001 :base\n');
  assert.equal(parseUidlist('1 1234 10\n5 old.name\n', 'f').data!.records[0]!.base, 'old.name', 'version 1');
});

test('uidlist damage is reported by file:line and never throws', () => {
  const bad = parseUidlist('3 V7 N2 Gxx\n', 'u');
  assert.equal(bad.data, undefined);
  assert.match(bad.problems[0]!, /^u:1: invalid mailbox GUID/);
  const p = parseUidlist('3 V7 N2 G0123456789abcdef0123456789abcdef\n1 :a\n1 :b\nfoo\n0 :z\n2 :../../etc/passwd\n3 :\n5 :c\n6 :trunc', 'u');
  assert.deepEqual(p.data!.records.map((r) => [r.uid, r.base]), [[1, 'a'], [5, 'c']]);
  assert.deepEqual(p.problems.map((x) => x.split(':')[1]), ['9', '3', '4', '5', '6', '7']);
  for (const t of ['', '\0\0\0', 'x'.repeat(100000), '9 V1 N1\n', '3 V0 N0 G0123456789abcdef0123456789abcdef\n']) assert.equal(parseUidlist(t, 'u').data, undefined);
});

test('file names: info letters in Dovecot order, keywords a-z, sizes', () => {
  const n = '1795805814.M414286P10083.vm,S=28,W=32:2,DFRT';
  assert.deepEqual(parseInfo(n).flags, ['\\Answered', '\\Flagged', '\\Deleted', '\\Draft']);
  assert.equal(withInfo(maildirBase(n), ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'], [1, 0], 'P'), maildirBase(n) + ':2,DFPRSTab');
  assert.deepEqual(parseInfo('x:2,Sab').keywordIdx, [0, 1]);
  assert.equal(sizeField(n, 'S'), 28); assert.equal(sizeField(n, 'W'), 32); assert.equal(sizeField('x,S=abc', 'S'), undefined);
  assert.deepEqual(parseKeywords('0 $Forwarded\n1 Junk\nbad line\n99 X\n3 has space\n'), ['$Forwarded', 'Junk']);
  assert.equal(formatKeywords(['$Forwarded', 'Junk']), '0 $Forwarded\n1 Junk\n');
});
