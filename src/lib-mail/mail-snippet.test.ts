/**
 * mail-snippet: the PREVIEW text (Dovecot's message_snippet_generate; compared with real Dovecot
 * in test/interop/imap-conformance-vs-dovecot.test.ts), and hostile input: megabytes of HTML
 * without closing tags, deep nesting, NUL and byte-order marks, answered in bounded time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMime } from './mail-mime.ts';
import { htmlToText, messageSnippet } from './mail-snippet.ts';

const snip = (m: string): string => messageSnippet(parseMime(Buffer.from(m, 'utf8')));

test('plain text: white space collapsed, quoted lines out unless only quoted, 200 characters', () => {
  assert.equal(snip('Subject: a\r\n\r\n  Hello   world,\r\n\r\nthis\tis\r\n> quoted\r\nmore\r\n'), 'Hello world, this is more');
  assert.equal(snip('Subject: a\r\n\r\n> only\r\n> quoted\r\n'), '>only quoted');
  assert.equal(snip('Subject: a\r\n\r\n' + 'x'.repeat(300)), 'x'.repeat(200));
  assert.equal(snip('Subject: a\r\n\r\n' + 'a'.repeat(199) + ' b c'), 'a'.repeat(199));
  assert.equal(snip('Subject: a\r\n\r\n\ufeffwith bom\0 and nul\r\n'), 'with bom and nul');
  assert.equal(snip('Subject: a\r\nContent-Type: image/png\r\n\r\nxx'), '');
});

test('HTML: tags as spaces, style/script/blockquote/comments out, entities decoded, unknown ones dropped', () => {
  assert.equal(htmlToText('<p>a&amp;b</p><!-- c --><style>x{}</style>&#233;&#x41;&bogus;'), ' a&b   éA');
  assert.equal(snip('Subject: h\r\nContent-Type: text/html\r\n\r\n<b>bold</b>&nbsp;x<blockquote>q</blockquote>end'), 'bold \u00a0x end');
});

test('hostile: megabytes of unclosed tags and 2,000 nested multiparts stay bounded', () => {
  const t0 = performance.now();
  assert.equal(snip('Subject: h\r\nContent-Type: text/html\r\n\r\n' + '<style'.repeat(700_000)), '');
  assert.equal(snip('Subject: h\r\nContent-Type: text/html\r\n\r\n' + '<a href="'.repeat(400_000) + 'x'), '');
  const nested = 'Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n'.repeat(2000) + 'Content-Type: text/plain\r\n\r\ndeep\r\n';
  assert.equal(snip(nested), snip(nested)); // whatever the limits make of it, it returns
  assert.ok(performance.now() - t0 < 20_000);
});
