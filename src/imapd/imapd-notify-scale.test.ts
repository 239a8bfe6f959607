/**
 * NOTIFY at scale (issue 19 item 3, hostile): 50 sessions of one user, each `NOTIFY SET
 * (personal ...)` over 10,000 mailboxes, on Postern's imapd (test/harness/imapd-testkit.ts).
 * Asserted: one inotify instance for the process (not one per session), at most two kernel
 * watches per mailbox however many sessions ask (lib-storage mail-notify-watch.ts), memory per
 * session bounded, a file delivered by another program into the last mailbox reported to all
 * 50, and every watch released when the sessions end.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connectImap, startFixture, stripTiming, type Fixture } from '../../test/harness/imapd-testkit.ts';
import { mailNotifyWatchStats } from '../lib-storage/mail-notify-watch.ts';
import { maildirWatchStats } from '../lib-storage/maildir/maildir-watch.ts';
import type { LineChat } from '../../test/harness/line-chat.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const N_BOXES = 10_000;
const N_SESSIONS = Number(process.env.N_SESSIONS ?? 50);

let fx: Fixture;
before(async () => { fx = await startFixture({ users: [['big@x.test', 'pw']], settings: { maxUserIpConnections: 0 } }); });
after(async () => { await fx?.stop(); });

function inotifyInstances(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try { if (readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:inotify') n++; } catch { /* closed meanwhile */ }
  }
  return n;
}

const until = async (f: () => boolean, what: string, ms = 30_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!f()) { if (Date.now() > end) throw new Error(`timeout: ${what}`); await new Promise((r) => setTimeout(r, 50)); }
};

test(`${N_SESSIONS} sessions of one user NOTIFY over ${N_BOXES} mailboxes: one inotify instance, two watches a mailbox, bounded memory, all told`, { timeout: 180_000 }, async (t) => {
  const root = fx.maildir('big@x.test');
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(root, sub), { recursive: true });
  for (let i = 0; i < N_BOXES; i++) {
    const d = join(root, `.f${String(i).padStart(5, '0')}`);
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(d, sub), { recursive: true });
    writeFileSync(join(d, 'dovecot-uidlist'), `3 V${1_700_000_000 + i} N1 G${(0x1000000 + i).toString(16).padStart(32, '0')}\n`);
  }
  const before0 = inotifyInstances();
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const rss0 = process.memoryUsage().rss;
  const sessions: LineChat[] = [];
  const t0 = performance.now();
  for (let i = 0; i < N_SESSIONS; i++) {
    const c = await connectImap(fx.port);
    await c.tagged('l', 'LOGIN big@x.test pw');
    sessions.push(c);
  }
  await Promise.all(sessions.map(async (c) => {
    assert.match(stripTiming(await c.tagged('n', 'NOTIFY SET (personal (MessageNew MessageExpunge FlagChange MailboxName))', 150_000)), /n OK NOTIFY completed/);
  }));
  const setMs = performance.now() - t0;
  // the watches are set up in time slices after the replies
  await until(() => maildirWatchStats().mailboxes >= N_BOXES + 1, 'every mailbox watched');
  const w = mailNotifyWatchStats();
  const instances = inotifyInstances();
  gc();
  const heapMb = (process.memoryUsage().heapUsed - heap0) / 1e6;
  const rssMb = (process.memoryUsage().rss - rss0) / 1e6;
  t.diagnostic(`${N_SESSIONS} x NOTIFY SET over ${N_BOXES} mailboxes: ${setMs.toFixed(0)} ms; watches ${w.watches} (budget ${w.budget}), polled ${w.polled}; inotify instances ${instances}; heap +${heapMb.toFixed(1)} MB, RSS +${rssMb.toFixed(1)} MB (${(heapMb * 1000 / N_SESSIONS).toFixed(0)} KB heap a session)`);
  assert.ok(instances <= Math.max(1, before0), `inotify instances: ${instances}`);
  assert.equal(maildirWatchStats().roots, 1, 'one watcher for the user\'s Maildir');
  // INBOX, Sent and Trash besides the folders made here
  assert.ok(w.dirs <= N_BOXES + 3 && w.watches + w.polled * 2 <= 2 * w.dirs, `dirs ${w.dirs}, watches ${w.watches}, polled ${w.polled}`);
  assert.ok(heapMb < 200, `heap grew ${heapMb} MB`);
  // another program delivers into the last mailbox (tmp/ then new/, as Dovecot's LDA)
  const box = join(root, `.f${String(N_BOXES - 1).padStart(5, '0')}`);
  writeFileSync(join(box, 'tmp', '1700000001.M1P1.elsewhere'), 'Subject: outside\n\nbody\n');
  renameSync(join(box, 'tmp', '1700000001.M1P1.elsewhere'), join(box, 'new', '1700000001.M1P1.elsewhere'));
  const re = new RegExp(`\\* STATUS f${String(N_BOXES - 1).padStart(5, '0')} \\(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \\d+ UNSEEN 1\\)\\r\\n`);
  await Promise.all(sessions.map((c) => c.waitFor(re, 60_000)));
  for (const c of sessions) c.close();
  await until(() => mailNotifyWatchStats().dirs === 0 && maildirWatchStats().roots === 0, 'every watch released');
  assert.equal(mailNotifyWatchStats().watches, 0);
});
