/**
 * Issue 13 item 8 (LMTP side): the bad-command limit of Dovecot 2.3's lmtp (its smtp-server's
 * max_bad_commands), compared reply for reply with a private real Dovecot. The same scripts go
 * to both servers; each transcript ends with whether the server closed the connection:
 * protocol errors (500 unknown command, 501 bad parameters, also VRFY's, 503 bad sequence) count, a 2xx reply starts the count again, a 550 unknown user is not a bad command, and
 * the 11th in a row is answered `421 4.7.0 HOST Too many invalid commands.` and the close.
 * Skipped (with the reason) when Dovecot is not installed or the test is not root.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { setLogSink } from '../../src/util/msg.ts';
import { PosternMailAccess } from '../harness/postern-mail-access.ts';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { LineChat } from '../harness/line-chat.ts';

setLogSink(() => {});
const cleanup: (() => Promise<void> | void)[] = [];
after(async () => { for (const f of cleanup.reverse()) await f(); });

const n = (k: number, line: string): string[] => Array<string>(k).fill(line);
const SCRIPTS: Record<string, string[]> = {
  'eleven unknown commands': n(11, 'FOO'),
  'bad parameters and bad sequence count; NOOP and LHLO start again': [
    ...n(5, 'FOO'), 'NOOP', ...n(5, 'MAIL x'), 'LHLO client.test', ...n(4, 'RCPT TO:<a@x.test>'), ...n(3, 'DATA'), 'FOO', ...n(2, 'VRFY'), 'BAR'],
  'unknown users are not bad commands': ['LHLO client.test', 'MAIL FROM:<a@y.test>', ...n(12, 'RCPT TO:<nobody@x.test>'), 'RSET', ...n(10, 'FOO')],
};

async function transcript(port: number, lines: string[]): Promise<string[]> {
  const c = await LineChat.open(port);
  const t = [(await c.reply(10_000)).replace(/^220 \S+ .*/, '220 <greeting>')];
  for (const l of lines) {
    c.send(l + '\r\n');
    try { t.push(`C: ${l} S: ${await c.reply(10_000)}`); } catch { t.push(`C: ${l} S: <${c.closed ? 'closed' : 'timeout'}>`); break; }
  }
  try { for (;;) t.push(`S: ${await c.reply(1500)}`); } catch { t.push(c.closed ? '<closed>' : '<open>'); }
  c.close();
  return t;
}

test('bad LMTP commands: the same replies and closes as real Dovecot 2.3', { skip: RealDovecot.unavailable() ?? (!existsSync('/usr/lib/dovecot/lmtp') && 'dovecot-lmtpd missing') }, async () => {
  const users = [{ user: 'alice@x.test', pass: 'secret' }];
  const conf = 'hostname = lmtp.test\n';
  const dc = await RealDovecot.start({ protocols: ['lmtp'], users, extraConf: conf });
  cleanup.push(() => dc.stop());
  const pm = await PosternMailAccess.start({ users, conf });
  cleanup.push(() => pm.stop());
  for (const [name, lines] of Object.entries(SCRIPTS)) {
    const [ref, ours] = await Promise.all([transcript(dc.ports.lmtp!, lines), transcript(pm.ports.lmtp, lines)]);
    // LHLO's capability lists differ (Dovecot offers more extensions): compare its first line only.
    const norm = (t: string[]) => t.map((x) => x.replace(/^(C: LHLO \S+ S: 250-\S+)[\s\S]*$/, '$1'));
    assert.deepEqual(norm(ours), norm(ref), name);
  }
  const t = await transcript(pm.ports.lmtp, SCRIPTS['eleven unknown commands']!);
  assert.deepEqual(t.slice(-3), ['C: FOO S: 500 5.5.1 Unknown command', 'C: FOO S: 421 4.7.0 lmtp.test Too many invalid commands.', '<closed>']);
});
