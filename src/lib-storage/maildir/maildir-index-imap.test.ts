/**
 * postern-index seen from an IMAP client (RFC 7162 CONDSTORE): after the store forgets its
 * in-memory state (as at a restart of imapd), `FETCH 1:* (FLAGS) (CHANGEDSINCE x)` returns only
 * the message an outside writer (mutt, Dovecot) changed meanwhile, and HIGHESTMODSEQ did not
 * go backwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { fileOfUid } from '../../../test/harness/maildir-testkit.ts';
import { startFixture, connectImap, stripTiming } from '../../../test/harness/imapd-testkit.ts';
import { LineChat } from '../../../test/harness/line-chat.ts';
import { dropIdleStates } from './maildir-storage.ts';
import { flushMailboxIndexes } from './maildir-state.ts';

const MSG = (n: number) => `From: a@example.test\r\nSubject: ${n}\r\n\r\nbody ${n}\r\n`;

async function login(port: number): Promise<LineChat> {
  const c = await connectImap(port);
  assert.match(await c.tagged('l', 'LOGIN alice@example.test secret'), /^l OK /m);
  return c;
}

function highestOf(selectReply: string): number {
  const m = /\[HIGHESTMODSEQ (\d+)\]/.exec(selectReply);
  assert.ok(m, selectReply);
  return Number(m[1]);
}

test('CONDSTORE across a restart: CHANGEDSINCE returns only what changed while the store was down', async () => {
  const f = await startFixture();
  try {
    const c = await login(f.port);
    for (let i = 1; i <= 3; i++) assert.match(await c.tagged('a', `APPEND INBOX {${MSG(i).length}+}\r\n${MSG(i)}`), /a OK/);
    await c.tagged('s', 'SELECT INBOX (CONDSTORE)');
    assert.match(stripTiming(await c.tagged('t', 'STORE 2 +FLAGS.SILENT (\\Seen)')), /t OK/);
    const hm = highestOf(await c.tagged('s2', 'SELECT INBOX (CONDSTORE)'));
    await c.tagged('o', 'LOGOUT');
    c.close();
    // "restart": pending index written (process stop), every in-memory state forgotten
    await flushMailboxIndexes();
    dropIdleStates();
    // while Postern is "down", mutt flags UID 3 by renaming its file in cur/
    const root = f.maildir('alice@example.test');
    const name = fileOfUid(root, 3);
    renameSync(join(root, 'cur', name), join(root, 'cur', name.replace(/:2,.*$/, ':2,F')));

    const c2 = await login(f.port);
    const hm2 = highestOf(await c2.tagged('s', 'SELECT INBOX (CONDSTORE)'));
    assert.ok(hm2 > hm, `HIGHESTMODSEQ ${hm2} > ${hm}`);
    const r = stripTiming(await c2.tagged('f', `FETCH 1:* (FLAGS) (CHANGEDSINCE ${hm})`));
    assert.match(r, /^\* 3 FETCH \(FLAGS \(\\Flagged( \\Recent)?\) MODSEQ \(\d+\)\)\r\nf OK Fetch completed\r\n$/);
    await c2.tagged('o', 'LOGOUT');
    c2.close();
  } finally { await f.stop(); }
});
