import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actLog, parseCheckAction } from './cleanup-checks.ts';
import { setLogSink } from '../util/msg.ts';

test('header_checks(5) actions parse with their text and default DSN codes', () => {
  assert.deepEqual(parseCheckAction('REJECT', 'm'), { kind: 'reject', code: 550, enh: '5.7.1', text: 'Message content rejected' });
  assert.deepEqual(parseCheckAction('reject  Go away ', 'm'), { kind: 'reject', code: 550, enh: '5.7.1', text: 'Go away' });
  assert.deepEqual(parseCheckAction('REJECT 5.7.0 Bad', 'm'), { kind: 'reject', code: 550, enh: '5.7.0', text: 'Bad' });
  assert.deepEqual(parseCheckAction('REJECT 4.7.1 Later', 'm'), { kind: 'reject', code: 451, enh: '4.7.1', text: 'Later' });
  assert.deepEqual(parseCheckAction('HOLD', 'm'), { kind: 'hold', text: '' });
  assert.deepEqual(parseCheckAction('PREPEND X-A: b', 'm'), { kind: 'prepend', text: 'X-A: b' });
  assert.deepEqual(parseCheckAction('REPLACE X-A: b', 'm'), { kind: 'replace', text: 'X-A: b' });
  assert.deepEqual(parseCheckAction('IGNORE', 'm'), { kind: 'ignore' });
  assert.deepEqual(parseCheckAction('DUNNO', 'm'), { kind: 'none' });
  assert.deepEqual(parseCheckAction('OK', 'm'), { kind: 'none' });
  const logs: string[] = [];
  const old = setLogSink((l) => logs.push(l));
  try {
    assert.deepEqual(parseCheckAction('FROBNICATE now', 'header_checks'), { kind: 'none' });
    assert.deepEqual(parseCheckAction('PREPEND', 'header_checks'), { kind: 'none' });
  } finally { setLogSink(old); }
  assert.match(logs[0]!, /warning: unknown command in header_checks map: FROBNICATE now$/);
});

test('the log line has Postfix\'s cleanup_act_log shape', () => {
  const ctx = { queueId: 'ABC123', clientName: 'mail.example', clientAddr: '192.0.2.9', sender: 's@x', recipient: 'r@y', proto: 'ESMTP', helo: 'h' };
  assert.equal(actLog(ctx, 'reject', 'header', 'Subject: a\n b', '5.7.1 no'),
    'ABC123: reject: header Subject: a? b from mail.example[192.0.2.9]; from=<s@x> to=<r@y> proto=ESMTP helo=<h>: 5.7.1 no');
  assert.equal(actLog({ queueId: 'Q', sender: '' }, 'hold', 'body', 'x'.repeat(300)), `Q: hold: body ${'x'.repeat(200)} from local; from=<>`);
});
