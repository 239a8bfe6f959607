/**
 * Base subject extraction (RFC 5256 §2.1, Dovecot imap-base-subject.c): the prefixes and
 * trailers an administrator sees in real mail, and hostile 10 MB subjects in bounded time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseSubject, compareKeys, foldForSort } from './imap-base-subject.ts';

const cases: [raw: string, base: string, reply: boolean][] = [
  ['Hello world', 'HELLO WORLD', false],
  ['Re: Hello world', 'HELLO WORLD', true],
  ['RE: [list] Hello world ', 'HELLO WORLD', true],
  ['[list] Re: Hello world', 'HELLO WORLD', true],
  ['Fwd: Hello world (fwd)', 'HELLO WORLD', true],
  ['Hello world (fwd) (FWD)', 'HELLO WORLD', true],
  ['Fw: Hello', 'HELLO', true],
  ['[fwd: Hello world]', 'HELLO WORLD', true],
  ['[Fwd: Re: [x] Hello]', 'HELLO', true],
  ['Re: Fwd: Re: [x] chain', 'CHAIN', true],
  ['Re: [ab] [cd] Fw: topic', 'TOPIC', true],
  ['Re [x]: y', 'Y', true],
  ['[a][b] c', 'C', false],
  ['[a] [b]', '[B]', false],
  ['[blob only]', '[BLOB ONLY]', false],
  ['Re:', '', true],
  ['', '', false],
  ['   Re:    spaced \t  out   ', 'SPACED OUT', true],
  ['Folded\t subject  here', 'FOLDED SUBJECT HERE', false],
  ['Reply to this', 'REPLY TO THIS', false],
  ['Re : not a prefix? yes it is', 'NOT A PREFIX? YES IT IS', true],
  ['Re:  Re: Re: meeting NOTES', 'MEETING NOTES', true],
];

for (const [raw, base, reply] of cases) {
  test(`base subject of ${JSON.stringify(raw)} is ${JSON.stringify(base)}`, () => {
    assert.deepEqual(baseSubject(raw), { subject: base, isReplyOrForward: reply });
  });
}

test('encoded words are decoded and folded the way Dovecot folds (titlecase, compat decomposition)', () => {
  const b = baseSubject(Buffer.from('Re: =?UTF-8?B?w4lsw6hu?= report'));
  assert.equal(b.subject, foldForSort('Élèn report'));
  assert.equal(b.subject, 'E\u0301LE\u0300N REPORT');
  // Raw UTF-8 and the encoded form give the same key, so they sort and thread together.
  assert.equal(baseSubject(Buffer.from('Élèn report', 'utf8')).subject, b.subject);
  assert.equal(baseSubject(Buffer.from('=?ISO-8859-1?Q?Stra=DFe?=')).subject, 'STRAßE');
});

test('foldForSort copies Dovecot uni_utf8_to_decomposed_titlecase character by character', () => {
  assert.equal(foldForSort('abc xyz'), 'ABC XYZ');
  assert.equal(foldForSort('\u01c6ungla'), '\u01c5UNGLA'); // dž → titlecase Dž, not upper DŽ
  assert.equal(foldForSort('stra\u00dfe'), 'STRA\u00dfE'); // ß has no simple titlecase
  assert.equal(foldForSort('\ufb01x'), 'fiX'); // ligature: one compat level, not folded again
  assert.equal(foldForSort('\uff41\u00aa'), 'Aa'); // fullwidth a → Ａ → A; ª → a
  assert.equal(foldForSort('\ud55c'), '\u1112\u1161\u11ab'); // Hangul syllable → jamo
  assert.equal(foldForSort('\u10d0'), '\u10d0'); // Georgian: titlecase is itself
  assert.equal(foldForSort('\u1f80'), '\u1f08\u0345'); // ᾀ → ᾈ → Ἀ + ypogegrammeni
  assert.equal(foldForSort('a\ufffd\ufffdb'), 'A\ufffdB');
  // One level of decomposition only, as Dovecot's table holds UnicodeData's mapping as is.
  assert.equal(foldForSort('\u01d6'), '\u00dc\u0304'); // ǖ → Ǖ → Ü + macron (Ü not split)
  assert.equal(foldForSort('\u00dc'), 'U\u0308');
  assert.equal(foldForSort('\u212b'), '\u00c5'); // ANGSTROM SIGN → Å
  assert.equal(foldForSort('\u3300'), '\u30a2\u30d1\u30fc\u30c8'); // ㌀ → アパート, パ precomposed
});

test('compareKeys orders like strcmp on UTF-8 (U+E000 before U+1F600), unlike JS <', () => {
  assert.equal(compareKeys('\ue000', '\u{1F600}'), -1);
  assert.ok('\ue000' > '\u{1F600}');
  assert.equal(compareKeys('A', 'B'), -1);
  assert.equal(compareKeys('AB', 'A'), 1);
  assert.equal(compareKeys('', ''), 0);
});

test('hostile 10 MB subjects finish in bounded time', () => {
  const mb10 = 10 * 1024 * 1024;
  const t0 = performance.now();
  const blobs = '[a]'.repeat(mb10 / 3) + 'x';
  assert.equal(baseSubject(blobs).subject, 'X');
  assert.equal(baseSubject('[a]'.repeat(mb10 / 3)).subject, '[A]');
  assert.equal(baseSubject('Re: '.repeat(mb10 / 4) + 'x').subject, 'X');
  assert.equal(baseSubject('x' + ' (fwd)'.repeat(mb10 / 6)).subject, 'X');
  const n = Math.floor(mb10 / 12);
  assert.equal(baseSubject('[fwd: '.repeat(n) + 'x' + ']'.repeat(n)).subject, 'X');
  assert.equal(baseSubject('[' + 'a'.repeat(mb10)).subject.length, mb10 + 1);
  assert.equal(baseSubject('[a'.repeat(mb10 / 2)).subject.length, mb10);
  const ms = performance.now() - t0;
  assert.ok(ms < 20_000, `took ${ms} ms`);
});
