/**
 * Header injection through envelope addresses (issue 8 item 3). MAIL FROM / RCPT TO carrying
 * CR, LF, NUL, '>' and quotes — and DSN ORCPT/ENVID whose xtext decodes to CRLF (RFC 3461
 * §4) — must never produce a new header line in what is delivered: Return-Path:,
 * Delivered-To:, Received: ... for <...> are written from the envelope by cleanup and
 * virtual(8), and a DSN (NOTIFY=SUCCESS) quotes ORCPT and ENVID. Every message that reaches
 * postmaster's Maildir (the test messages and the success notices, the envelope sender is
 * postmaster so they come back here) is checked: no "X-Injected" line anywhere in its header
 * section, no bare CR or NUL in it, every header line is "Name: value" or a continuation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { LineChat } from '../harness/line-chat.ts';
import { sleep, waitQueueEmpty } from '../harness/fault-kit.ts';

let sys: PosternSystem;
let badLines: string[] | undefined;
/** The reply to MAIL FROM of each case, in CASES order. */
const mailReplies: string[] = [];
before(async () => { sys = await PosternSystem.start(); });
after(async () => { await sys?.destroy(); });

const CASES: { sender: string; rcpt: string; params?: string; mailParams?: string }[] = [
  { sender: 'postmaster@example.test\r\nX-Injected: mail-crlf', rcpt: 'postmaster@example.test' },
  { sender: '"a\rX-Injected: mail-cr"@example.test', rcpt: 'postmaster@example.test' },
  { sender: '"a\nX-Injected: mail-lf"@example.test', rcpt: 'postmaster@example.test' },
  { sender: '"a\0X-Injected: mail-nul"@example.test', rcpt: 'postmaster@example.test' },
  { sender: '"a>\r\nX-Injected: mail-gt"@example.test', rcpt: 'postmaster@example.test' },
  { sender: '"a\\"\\\r\nX-Injected: quoted"@example.test', rcpt: 'postmaster@example.test' },
  { sender: 'a>X-Injected: gt@example.test', rcpt: 'postmaster@example.test' },
  { sender: 'postmaster@example.test', rcpt: 'postmaster@example.test>\r\nX-Injected: rcpt-crlf' },
  { sender: 'postmaster@example.test', rcpt: '"postmaster\rX-Injected: rcpt-cr"@example.test' },
  { sender: 'postmaster@example.test', rcpt: '"postmaster"@example.test' },
  { sender: 'postmaster@example.test', rcpt: 'postmaster@example.test', params: ' NOTIFY=SUCCESS ORCPT=rfc822;postmaster+0D+0AX-Injected:+20orcpt@example.test' },
  { sender: 'postmaster@example.test', rcpt: 'postmaster@example.test', params: ' NOTIFY=SUCCESS ORCPT=rfc822;a+0AX-Injected:+20orcpt-lf@example.test', mailParams: ' RET=HDRS ENVID=env+0D+0AX-Injected:+20envid' },
  { sender: 'postmaster@example.test', rcpt: 'postmaster@example.test', params: ' NOTIFY=SUCCESS ORCPT=rfc822;a+00X-Injected:+20orcpt-nul@example.test' },
  // legal xtext with '>' and '"' (a success DSN quotes them), to exercise the DSN path
  { sender: 'postmaster@example.test', rcpt: 'postmaster@example.test', params: ' NOTIFY=SUCCESS ORCPT=rfc822;x+3E+22X-Injected:+20legal@example.test', mailParams: ' RET=HDRS ENVID=env+3EX-Injected:' },
];

/** The header section of every file in the Maildir. */
function delivered(): { file: string; header: string }[] {
  const out: { file: string; header: string }[] = [];
  const md = sys.maildir('postmaster@example.test');
  for (const sub of ['new', 'cur']) {
    const d = join(md, sub);
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d)) {
      const text = readFileSync(join(d, f), 'latin1');
      const end = text.search(/\r?\n\r?\n/);
      out.push({ file: f, header: end < 0 ? text : text.slice(0, end) });
      // DSNs carry the original headers in a message/rfc822-headers or text/rfc822-headers part
      for (const m of text.matchAll(/\n(?:Original-Recipient|Final-Recipient|Original-Envelope-Id|X-Postfix-Sender|Reporting-MTA|Arrival-Date)[^\n]*(?:\n[ \t][^\n]*)*/g)) out.push({ file: `${f} (DSN field)`, header: m[0].slice(1) });
      for (const m of text.matchAll(/\n\n((?:[!-9;-~]+:[^\n]*\n(?:[ \t][^\n]*\n)*)+)/g)) out.push({ file: `${f} (body part headers)`, header: m[1]!.trimEnd() });
    }
  }
  return out;
}

async function runCases(t: { diagnostic(s: string): void }): Promise<string[]> {
  if (badLines) return badLines;
  const summary: string[] = [];
  for (const [i, k] of CASES.entries()) {
    const { c } = await LineChat.greet(sys.ports.smtp);
    const reply = () => c.reply(5000).catch(() => 'closed');
    try {
      await c.cmd('EHLO inject.example.org');
      c.send(`MAIL FROM:<${k.sender}>${k.mailParams ?? ''}\r\n`);
      const m = await reply();
      mailReplies[i] = m;
      let r = '';
      let d = '';
      // a command line split by an embedded CRLF makes the rest a separate (bad) command: read its reply too
      const extraLines = (k.sender.match(/\r\n/g) ?? []).length;
      for (let j = 0; j < extraLines; j++) await reply();
      if (m.startsWith('250')) {
        c.send(`RCPT TO:<${k.rcpt}>${k.params ?? ''}\r\n`);
        r = await reply();
        for (let j = 0; j < (k.rcpt.match(/\r\n/g) ?? []).length; j++) await reply();
        if (r.startsWith('250')) {
          c.send('DATA\r\n');
          const dr = await reply();
          if (dr.startsWith('354')) {
            c.send(`From: inject@example.org\r\nSubject: injection case ${i}\r\n\r\ncase ${i}\r\n.\r\n`);
            d = await reply();
          }
        }
      }
      summary.push(`case ${i}: MAIL ${m.slice(0, 6)} RCPT ${r.slice(0, 6) || '-'} DATA ${d.slice(0, 6) || '-'}`);
      c.send('QUIT\r\n');
    } finally {
      c.close();
    }
  }
  await waitQueueEmpty(sys, 15_000).catch(() => {});
  await sleep(500);
  const msgs = delivered();
  t.diagnostic(summary.join('; '));
  t.diagnostic(`${msgs.filter((m) => !m.file.includes('(')).length} messages delivered (test messages and success DSNs); ${msgs.length} header blocks checked`);
  const bad: string[] = [];
  for (const { file, header } of msgs) {
    for (const line of header.split('\n')) {
      if (/^X-Injected/i.test(line)) bad.push(`${file}: injected line ${JSON.stringify(line)}`);
      if (/[\r\0]/.test(line.replace(/\r$/, ''))) bad.push(`${file}: CR or NUL in ${JSON.stringify(line)}`);
    }
  }
  for (const { file, header } of msgs.filter((m) => !m.file.includes('('))) {
    for (const line of header.split('\n')) {
      if (!/^[!-9;-~]+:/.test(line) && !/^[ \t]/.test(line)) bad.push(`${file}: not a header line ${JSON.stringify(line)}`);
    }
  }
  assert.ok(msgs.filter((m) => !m.file.includes('(')).length >= 2, 'the benign cases were delivered, so the check looked at real messages');
  badLines = bad;
  return bad;
}

test('envelope addresses with CR, LF, NUL, > and quotes, and ORCPT xtext with CRLF, never add a header line to delivered mail or DSNs', async (t) => {
  const bad = await runCases(t);
  assert.deepEqual(bad.filter((b) => !/envid/i.test(b)), []);
});

test('an ENVID whose xtext decodes to CRLF is refused (Postfix: 501 5.5.4 Bad ENVID parameter syntax) and never reaches a DSN', {
}, async (t) => {
  const bad = await runCases(t);
  const crlfEnvid = CASES.findIndex((k) => k.mailParams?.includes('ENVID=env+0D+0A'));
  assert.equal(mailReplies[crlfEnvid], '501 5.5.4 Bad ENVID parameter syntax');
  assert.deepEqual(bad.filter((b) => /envid/i.test(b)), []);
});
