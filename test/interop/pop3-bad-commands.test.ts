/**
 * Issue 13 item 8 (POP3): the bad-command limits of Dovecot 2.3, compared line for line with a
 * private real Dovecot. The same scripts go to both servers; each transcript ends with whether
 * the server closed the connection:
 *  - before login (pop3-login): unknown commands (an empty line too) are answered
 *    `-ERR Unknown command.`; the 3rd in a row is followed by `-ERR Too many invalid bad
 *    commands.` and the close; a known command (USER) starts the count again;
 *  - after login (pop3): every -ERR reply counts (unknown verbs, bad arguments, a missing
 *    message); the 21st in a row is followed by `-ERR Too many bad commands.` and the close;
 *    a command answered +OK (NOOP) starts the count again.
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

const LOGIN = ['USER alice@x.test', 'PASS secret'];
const SCRIPTS: Record<string, string[]> = {
  'three unknown commands before login': ['FOO', '', 'NOOP'],
  'USER starts the count again': ['FOO', 'FOO', 'USER x', 'FOO', 'FOO', 'FOO'],
  'PASS without USER is not a bad command': ['FOO', 'PASS x', 'PASS x', 'PASS x', 'FOO'],
  '21 failed commands after login, NOOP starts the count again': [
    ...LOGIN, ...Array<string>(20).fill('FOO'), 'NOOP', ...Array<string>(10).fill('LIST x'), '', ...Array<string>(8).fill('DELE 9'), 'TOP 1', 'RETR 99'],
};

/** Send each line and read its one reply; then what else comes until the server closes (or not). */
async function transcript(port: number, lines: string[]): Promise<string[]> {
  const c = await LineChat.open(port, { protocol: 'pop3' });
  const t = [await c.line(10_000)];
  for (const l of lines) {
    c.send(l + '\r\n');
    try { t.push(`C: ${l} S: ${await c.line(10_000)}`); } catch { t.push(`C: ${l} S: <${c.closed ? 'closed' : 'timeout'}>`); break; }
  }
  try { for (;;) t.push(`S: ${await c.line(1500)}`); } catch { t.push(c.closed ? '<closed>' : '<open>'); }
  c.close();
  return t;
}

test('bad commands before and after login: the same replies and closes as real Dovecot 2.3', { skip: RealDovecot.unavailable() ?? (!existsSync('/usr/lib/dovecot/pop3') && 'dovecot-pop3d missing') }, async () => {
  const users = [{ user: 'alice@x.test', pass: 'secret' }];
  const greeting = 'login_greeting = Mail ready.\n';
  const dc = await RealDovecot.start({ protocols: ['pop3'], users, extraConf: greeting });
  cleanup.push(() => dc.stop());
  const pm = await PosternMailAccess.start({ users, conf: greeting });
  cleanup.push(() => pm.stop());
  for (const [name, lines] of Object.entries(SCRIPTS)) {
    const [ref, ours] = await Promise.all([transcript(dc.ports.pop3!, lines), transcript(pm.ports.pop3, lines)]);
    assert.deepEqual(ours, ref, name);
  }
  // What the reference did, so a change of Dovecot's limits shows here too.
  const pre = await transcript(pm.ports.pop3, SCRIPTS['three unknown commands before login']!);
  assert.deepEqual(pre.slice(-3), ['C: NOOP S: -ERR Unknown command.', 'S: -ERR Too many invalid bad commands.', '<closed>']);
  const post = await transcript(pm.ports.pop3, SCRIPTS['21 failed commands after login, NOOP starts the count again']!);
  assert.deepEqual(post.slice(-3), ["C: RETR 99 S: -ERR There's no message 99.", 'S: -ERR Too many bad commands.', '<closed>']);
});
