/**
 * The same SMTP conversations against real Postfix 3.7 (Debian) and against Postern's smtpd, with
 * the same main.cf settings: every reply must be identical (codes, enhanced codes and texts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RealPostfix } from '../harness/real-postfix.ts';
import { smtpdPairForFile } from '../harness/smtpd-pair.ts';
import { LineChat } from '../harness/line-chat.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});
const skip = RealPostfix.unavailable();
const SHARED = 'smtpd_discard_ehlo_keywords = etrn\nmydestination = example.test\nlocal_recipient_maps =\nsmtpd_error_sleep_time = 0\nsmtpd_authorized_xclient_hosts = 127.0.0.1\nsmtpd_authorized_xforward_hosts = 127.0.0.1\n';

const ports = smtpdPairForFile(SHARED, skip);

/** Run a script of raw sends on one server; returns every reply (queue IDs masked). */
async function transcript(port: number, sends: string[]): Promise<string[]> {
  const c = await LineChat.open(port);
  const out = [await c.reply()];
  for (const s of sends) {
    c.send(s);
    // A send may produce several replies (pipelining): one per CRLF-terminated command line
    // unless it is DATA content; the script says how many with a "#n" suffix.
    const m = /#(\d+)$/.exec(s);
    const n = m ? Number(m[1]) : 1;
    if (m) { /* the marker is not sent: see send() below */ }
    for (let i = 0; i < n; i++) {
      try { out.push((await c.reply(3000)).replace(/queued as [0-9A-F]+/, 'queued as QID')); } catch (e) { out.push(`(${(e as Error).message.split(';')[0]})`); }
    }
  }
  c.close();
  return out;
}

function script(...lines: [string, number?][]): string[] {
  return lines.map(([l, n]) => l + (n !== undefined ? `#${n}` : ''));
}

async function compare(name: string, sends: string[]): Promise<void> {
  const wire = (s: string) => s.replace(/#\d+$/, '');
  const rewrap = sends.map(wire);
  const counts = sends.map((s) => s);
  const ours = await transcriptRaw(ports.ourPort, rewrap, counts);
  const theirs = await transcriptRaw(ports.pfPort, rewrap, counts);
  assert.deepEqual(ours, theirs, `${name}: Postern (actual) vs Postfix (expected)`);
}

async function transcriptRaw(port: number, wire: string[], withCounts: string[]): Promise<string[]> {
  const c = await LineChat.open(port);
  const out = [await c.reply()];
  for (let i = 0; i < wire.length; i++) {
    c.send(wire[i]!);
    const m = /#(\d+)$/.exec(withCounts[i]!);
    const n = m ? Number(m[1]) : 1;
    for (let k = 0; k < n; k++) {
      try { out.push((await c.reply(3000)).replace(/queued as [0-9A-F]+/, 'queued as QID')); } catch (e) { out.push(`(${(e as Error).message.split(';')[0]})`); }
    }
  }
  c.close();
  return out;
}
void transcript;

test('EHLO, HELO and the transaction commands answer exactly as Postfix', { skip }, async () => {
  await compare('basic', script(
    ['EHLO client.example.org\r\n'], ['HELO client.example.org\r\n'], ['NOOP\r\n'], ['NOOP x\r\n'],
    ['MAIL FROM:<a@example.org>\r\n'], ['RCPT TO:<b@example.test>\r\n'], ['DATA\r\n'],
    ['Subject: x\r\n\r\nbody\r\n.\r\n'], ['RSET\r\n'], ['RSET x\r\n'], ['QUIT\r\n'],
  ));
});

test('sequence and syntax errors answer exactly as Postfix', { skip }, async () => {
  await compare('errors', script(
    ['VRFY\r\n'], ['VRFY a@b\r\n'], ['FOO\r\n'], ['HELO\r\n'], ['EHLO\r\n'], ['DATA\r\n'],
    ['RCPT TO:<c@example.test>\r\n'], ['MAIL FROM:<a@b>\r\n'], ['MAIL FROM:<a@b>\r\n'],
    ['RCPT TO:<>\r\n'], ['RCPT FROM:<a>\r\n'], ['RCPT TO:<a b@c>\r\n'], ['RCPT TO:<c@example.test> FOO=bar\r\n'],
    ['DATA x\r\n'], ['RSET\r\n'], ['DATA x\r\n'], ['MAIL FROM:<a@b> BODY=FOO\r\n'],
    ['MAIL FROM:<a@b> RET=XYZ\r\n'], ['MAIL FROM:<a@b>\r\n'], ['RCPT TO:<c@example.test> NOTIFY=BOGUS\r\n'],
    ['RCPT TO:<c@example.test> NOTIFY=NEVER,SUCCESS\r\n'], ['RCPT TO:<c@example.test> ORCPT=rfc822;c+40example.test\r\n'],
    ['RSET\r\n'], ['MAIL FROM:<a@b> SIZE=999999999\r\n'], ['BDAT x\r\n'],
  ));
});

test('pipelined commands get their replies in order, as Postfix', { skip }, async () => {
  await compare('pipelining', script(
    ['EHLO c\r\n'],
    ['MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n', 4],
    ['Subject: p\r\n\r\nx\r\n.\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\nBDAT 3 LAST\r\nabc', 4],
    ['NOOP\r\nQUIT\r\n', 2],
  ));
});

test('hostile lines answer as Postfix: over-long command, HTTP request', { skip }, async () => {
  await compare('long line', script(['EHLO c\r\n'], ['A'.repeat(5000) + '\r\n'], ['NOOP\r\n']));
  await compare('http', script(['GET / HTTP/1.0\r\n']));
});

test('XCLIENT and XFORWARD from an authorized proxy, as Postfix', { skip }, async () => {
  await compare('xclient', script(
    ['EHLO proxy.example.org\r\n'], ['XCLIENT\r\n'], ['XCLIENT FOO=bar\r\n'], ['XCLIENT ADDR=999.1.1.1\r\n'],
    ['XFORWARD NAME=spike.example.org ADDR=192.0.2.7 PROTO=ESMTP HELO=spike\r\n'],
    ['MAIL FROM:<a@example.org>\r\n'], ['XCLIENT NAME=x\r\n'], ['XFORWARD NAME=x\r\n'], ['RSET\r\n'],
    ['XCLIENT NAME=spike.example.org ADDR=192.0.2.7 HELO=spike.example.org\r\n'],
    ['EHLO spike.example.org\r\n'], ['MAIL FROM:<a@example.org>\r\n'], ['RCPT TO:<b@example.test>\r\n'], ['QUIT\r\n'],
  ));
});
