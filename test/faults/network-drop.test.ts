/**
 * Network drop in mid-transfer (issue 8 item 2): clients that vanish in the middle of DATA, of
 * a BDAT chunk, after a complete non-LAST BDAT chunk, and right after the final "." before the
 * reply could be read. Afterwards: no message file left anywhere in the queue for the dropped
 * transactions, nothing partial delivered, smtpd logged "lost connection after DATA|BDAT",
 * the server kept serving a normal client sending at the same time, and real Dovecot opens
 * the Maildir cleanly. The one case where the server had the whole message ("." received)
 * must end either delivered exactly once or not at all — never truncated.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { LineChat } from '../harness/line-chat.ts';
import { countKinds, queueFiles, scanMaildir, sleep, startLoad, waitQueueEmpty, warmMaildirs } from '../harness/fault-kit.ts';
import { haveDoveadm, verifyMaildirs } from '../harness/dovecot-verify.ts';

const USER = 'postmaster@example.test';
let sys: PosternSystem;
before(async () => { sys = await PosternSystem.start(); await warmMaildirs(sys, [USER]); });
after(async () => { await sys?.destroy(); });

const headers = (token: string) => `From: drop@example.org\r\nTo: ${USER}\r\nSubject: fault ${token}\r\n\r\n`;
const filler = ('y'.repeat(70) + '\r\n').repeat(1500);   // ~108 KB

async function transaction(): Promise<LineChat> {
  const { c } = await LineChat.greet(sys.ports.smtp);
  assert.match(await c.cmd('EHLO drop.example.org'), /CHUNKING/);
  assert.match(await c.cmd('MAIL FROM:<drop@example.org>'), /^250/);
  assert.match(await c.cmd(`RCPT TO:<${USER}>`), /^250/);
  return c;
}

test('clients dropping mid-DATA and mid-BDAT leave no queue file and deliver nothing partial', async (t) => {
  // A normal client keeps sending the whole time: the server must keep serving it.
  const load = startLoad({ port: sys.ports.smtp, threads: 2, count: 1000, tag: 'ok', size: 2000, rcpts: [USER] });
  let drops = 0;
  for (let i = 0; i < 10; i++) {
    // 1. in the middle of DATA (a large body, cut half-way, no final dot)
    let c = await transaction();
    assert.match(await c.cmd('DATA'), /^354/);
    c.send(headers(`data-${i}`) + filler.slice(0, 50_000 + i * 1000));
    await sleep(20);
    c.close(); drops++;
    // 2. in the middle of a BDAT chunk (announced 100000 bytes, 30000 sent)
    c = await transaction();
    c.send(`BDAT 100000 LAST\r\n${(headers(`bdat-${i}`) + filler).slice(0, 30_000)}`);
    await sleep(20);
    c.close(); drops++;
    // 3. after a complete, acknowledged non-LAST chunk, before the LAST one
    c = await transaction();
    const part = headers(`bdat2-${i}`) + 'first chunk\r\n';
    c.send(`BDAT ${Buffer.byteLength(part)}\r\n${part}`);
    assert.match(await c.reply(), /^250/);
    c.send('BDAT 5000 LAST\r\nonly a little');
    await sleep(20);
    c.close(); drops++;
  }
  // 4. the whole message with its final dot, then gone before reading the reply
  const c = await transaction();
  assert.match(await c.cmd('DATA'), /^354/);
  c.send(headers('dot-0') + 'complete body\r\nEND dot-0\r\n.\r\n');
  c.close(); drops++;

  load.stop();
  const out = await load.done();
  await waitQueueEmpty(sys);
  await sleep(300);
  const k = countKinds(out);
  const scan = scanMaildir(sys.maildir(USER));
  const lost = (sys.log.match(/lost connection after (DATA|BDAT)/g) ?? []).length;
  t.diagnostic(`${drops} dropped transactions, smtpd logged ${lost} "lost connection after DATA/BDAT"; meanwhile the normal client got ${k.ACK} x 250, ${k.TEMP} x 4xx, ${k.DROP} drops; the dot-then-drop message delivered ${scan.copies.get('dot-0') ?? 0} time(s)`);
  assert.deepEqual(queueFiles(sys), [], 'no queue file left behind');
  const partial = [...scan.copies.keys()].filter((tk) => /^(data|bdat|bdat2)-/.test(tk));
  assert.deepEqual(partial, [], 'no dropped transaction delivered');
  assert.deepEqual(scan.truncated, [], 'nothing truncated');
  assert.ok((scan.copies.get('dot-0') ?? 0) <= 1, 'the complete message at most once');
  assert.ok(k.ACK > 0 && k.DROP === 0 && k.TEMP === 0, `the other client was served throughout (${JSON.stringify(k)})`);
  for (const [tk, o] of out) if (o.kind === 'ACK') assert.equal(scan.copies.get(tk), 1, `${tk} delivered once`);
  assert.ok(lost >= drops - 1, `smtpd logs the lost connections (${lost} of ${drops})`);
  if (haveDoveadm) assert.deepEqual(verifyMaildirs(join(sys.configDir, 'data', 'vmail')).problems, []);
  assert.equal((await sys.cli('status')).status, 0, 'the system is still running');
});
