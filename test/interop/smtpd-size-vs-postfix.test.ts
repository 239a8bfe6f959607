/**
 * message_size_limit against real Postfix 3.7 (issue 13 item 2): a DATA or BDAT message over the
 * limit is read to its end and answered "552 5.3.4 Error: message file too big", the session
 * goes on (the next transaction is accepted), and BDAT chunks after the one that crossed the
 * limit are read and answered as Postfix answers them. The same conversation runs on both
 * servers with the same main.cf limit; every reply must be identical.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RealPostfix } from '../harness/real-postfix.ts';
import { smtpdPairForFile } from '../harness/smtpd-pair.ts';
import { LineChat } from '../harness/line-chat.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});
const skip = RealPostfix.unavailable();
const SHARED = 'smtpd_discard_ehlo_keywords = etrn\nmydestination = example.test\nlocal_recipient_maps =\nsmtpd_error_sleep_time = 0\nmessage_size_limit = 20000\n';

const ports = smtpdPairForFile(SHARED, skip);

/** Each step: what to send and how many replies it gets. Queue IDs are masked. */
async function transcript(port: number, steps: [string, number][]): Promise<string[]> {
  const c = await LineChat.open(port);
  const out = [await c.reply()];
  for (const [send, n] of steps) {
    c.send(send);
    for (let k = 0; k < n; k++) {
      try { out.push((await c.reply(5000)).replace(/queued as [0-9A-F]+/, 'queued as QID')); } catch (e) { out.push(`(${(e as Error).message.split(';')[0]})`); }
    }
  }
  c.close();
  return out;
}

async function compare(name: string, steps: [string, number][]): Promise<void> {
  const ours = await transcript(ports.ourPort, steps);
  const theirs = await transcript(ports.pfPort, steps);
  assert.deepEqual(ours, theirs, `${name}: Postern (actual) vs Postfix (expected)`);
}

const LINE = 'x'.repeat(78) + '\r\n';
const big = (bytes: number) => LINE.repeat(Math.ceil(bytes / LINE.length));
const ENVELOPE = 'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\n';

test('DATA over message_size_limit: read to the end, 552 5.3.4, the session goes on, as Postfix', { skip }, async () => {
  await compare('data', [
    ['EHLO c\r\n', 1],
    [ENVELOPE + 'DATA\r\n', 3],
    ['Subject: big\r\n\r\n' + big(60_000) + '.\r\n', 1],
    [ENVELOPE + 'DATA\r\n', 3],
    ['Subject: small\r\n\r\nhello\r\n.\r\n', 1],
    ['QUIT\r\n', 1],
  ]);
});

test('one long line over message_size_limit, as Postfix', { skip }, async () => {
  await compare('long line', [
    ['EHLO c\r\n', 1],
    [ENVELOPE + 'DATA\r\n', 3],
    ['Subject: big\r\n\r\n' + 'y'.repeat(60_000) + '\r\n.\r\n', 1],
    ['NOOP\r\n', 1],
  ]);
});

test('BDAT over message_size_limit: the crossing chunk and those after it, then LAST, as Postfix', { skip }, async () => {
  const chunk = big(15_000);
  await compare('bdat', [
    ['EHLO c\r\n', 1],
    [ENVELOPE, 2],
    [`BDAT ${chunk.length}\r\n${chunk}`, 1],
    [`BDAT ${chunk.length}\r\n${chunk}`, 1],
    [`BDAT ${chunk.length}\r\n${chunk}`, 1],
    [`BDAT ${chunk.length} LAST\r\n${chunk}`, 1],
    [ENVELOPE + 'BDAT 5 LAST\r\nhello', 3],
    ['QUIT\r\n', 1],
  ]);
});

test('one BDAT LAST chunk over message_size_limit, as Postfix', { skip }, async () => {
  const chunk = big(60_000);
  await compare('bdat last', [
    ['EHLO c\r\n', 1],
    [ENVELOPE + `BDAT ${chunk.length} LAST\r\n${chunk}`, 3],
    ['NOOP\r\n', 1],
  ]);
});

test('BDAT chunks that fill message_size_limit exactly, and one byte more, as Postfix', { skip }, async () => {
  const a = 'x'.repeat(9998) + '\r\n';
  await compare('bdat boundary', [
    ['EHLO c\r\n', 1],
    [ENVELOPE + `BDAT ${a.length}\r\n${a}`, 3],
    [`BDAT ${a.length}\r\n${a}`, 1],
    [`BDAT 1 LAST\r\nz`, 1],
    ['NOOP\r\n', 1],
  ]);
});
