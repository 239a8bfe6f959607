/** smtp-get: lines at LF without CR, long lines cut to the limit and the rest skipped, early or at LF. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpLineState, smtpGet } from './smtp-get.ts';

/** Feed the chunks one by one and collect every line. */
function lines(chunks: string[], limit: number, early: boolean): (string | '|')[] {
  const st = new SmtpLineState();
  let buf: Buffer = Buffer.alloc(0);
  const out: (string | '|')[] = [];
  for (const c of chunks) {
    buf = buf.length ? Buffer.concat([buf, Buffer.from(c, 'latin1')]) : Buffer.from(c, 'latin1');
    for (;;) {
      const l = smtpGet(buf, limit, st, early);
      buf = st.rest;
      if (l === undefined) break;
      out.push(l);
    }
    out.push('|');
  }
  return out;
}

test('smtpGet: CRLF or LF ends a line, a lone CR and NUL are data, a partial line waits', () => {
  assert.deepEqual(lines(['EHLO a\r\nNOOP\nQU', 'IT\r', '\n'], 100, true), ['EHLO a', 'NOOP', '|', '|', 'QUIT', '|']);
  assert.deepEqual(lines(['a\rb\0c\r\n'], 100, false), ['a\rb\0c', '|']);
});

test('smtpGet early (smtpd): a long line is handled as soon as limit bytes are exceeded, its rest skipped', () => {
  assert.deepEqual(lines(['abcdefgh', 'ijk\r\nNOOP\r\n'], 4, true), ['abcd', '|', 'NOOP', '|']);
  assert.deepEqual(lines(['abcdefgh\r\nNOOP\r\n'], 4, true), ['abcd', 'NOOP', '|']);
});

test('smtpGet at LF (smtp client): a long line comes out cut when its LF arrives', () => {
  assert.deepEqual(lines(['250-abcdefgh', 'ijk', 'l\r\n250 ok\r\n'], 6, false), ['|', '|', '250-ab', '250 ok', '|']);
  assert.deepEqual(lines(['250-abcdefgh\r\n'], 6, false), ['250-ab', '|']);
});
