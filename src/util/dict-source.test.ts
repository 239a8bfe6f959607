import { test } from 'node:test';
import assert from 'node:assert/strict';
import { logicalLines, parseKeyValueSource, readSourceFile, splitBraceList } from './dict-source.ts';
import { DictError } from './dict.ts';

test('comments, blank lines and continuation lines as Postfix readllines', () => {
  const w: string[] = [];
  const lines = logicalLines('# comment\n\nk1 v1\n   more  \n  # not a continuation\nk2 v2\n', 'F', (m) => w.push(m));
  assert.deepEqual(lines, [{ line: 3, text: 'k1 v1   more' }, { line: 6, text: 'k2 v2' }]);
  assert.deepEqual(w, []);
});

test('a first line starting with white space is dropped with Postfix\'s warning', () => {
  const w: string[] = [];
  const lines = logicalLines('  lead x\nk v\n', '/etc/t', (m) => w.push(m));
  assert.deepEqual(lines.map((l) => l.text), ['k v']);
  assert.deepEqual(w, ['/etc/t: logical line must not start with whitespace: "  lead x"']);
});

test('CRLF files: the CR is trailing white space', () => {
  const e = parseKeyValueSource('a@b.c x\r\nd y z\r\n', 'F', () => {});
  assert.deepEqual(e.map((x) => [x.key, x.value]), [['a@b.c', 'x'], ['d', 'y z']]);
});

test('key without value: warning naming file and line, line skipped', () => {
  const w: string[] = [];
  const e = parseKeyValueSource('a 1\nlonely\r\nb 2\n', '/t', (m) => w.push(m));
  assert.deepEqual(e.map((x) => x.key), ['a', 'b']);
  assert.deepEqual(w, ['/t, line 2: expected format: key whitespace value']);
});

test('NUL byte: text after it is ignored (as Postfix C strings), with a warning', () => {
  const w: string[] = [];
  const e = parseKeyValueSource('k a\0b\n', '/t', (m) => w.push(m));
  assert.deepEqual(e.map((x) => x.value), ['a']);
  assert.match(w[0]!, /^\/t, line 1: NUL byte/);
});

test('a 10 MB line is one entry, not a crash', () => {
  const big = 'x'.repeat(10 * 1024 * 1024);
  const e = parseKeyValueSource(`big ${big}\nsmall 1\n`, 'F', () => {});
  assert.equal(e.length, 2);
  assert.equal(e[0]!.value.length, big.length);
});

test('missing file: DictError naming the file', () => {
  assert.throws(() => readSourceFile('/nonexistent/x'), (err: unknown) =>
    err instanceof DictError && err.kind === 'config' && err.message === 'open /nonexistent/x: No such file or directory');
});

test('brace lists keep {...} groups whole', () => {
  assert.deepEqual(splitBraceList('hash:/a, inline:{ a=b, {c = d e} } static:{x y}').items,
    ['hash:/a', 'inline:{ a=b, {c = d e} }', 'static:{x y}']);
  assert.match(splitBraceList('inline:{a=b').error!, /missing '}'/);
});
