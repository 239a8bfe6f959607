/**
 * mail-notify-watch: the per-process bound of inotify watches (a small budget set for the test):
 * directories past it are polled by mtime and still signalled; when watches are released the
 * polled ones move back to inotify; a directory removed and made again under a watch is
 * watched again (its new files signalled); releasing everything leaves no watch behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { holdMailboxDir, mailNotifyWatchStats, pollOnce, setInotifyBudgetForTest } from './mail-notify-watch.ts';

const until = async (f: () => boolean, what: string, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!f()) { if (Date.now() > end) throw new Error(`timeout: ${what}`); await new Promise((r) => setTimeout(r, 20)); }
};

function mailbox(root: string, name: string): string {
  const d = join(root, name);
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(d, sub), { recursive: true });
  return d;
}

test('past the budget: polled by mtime and signalled; back to inotify when watches are freed; a re-created directory is followed', { timeout: 30_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'mail-notify-watch-'));
  setInotifyBudgetForTest(4, 200);
  try {
    const fired = new Map<string, number>();
    const fire = (d: string): void => { fired.set(d, (fired.get(d) ?? 0) + 1); };
    const [a, b, c] = ['.a', '.b', '.c'].map((n) => mailbox(root, n)) as [string, string, string];
    const offA = holdMailboxDir(a, fire);
    const offB = holdMailboxDir(b, fire);
    const offC = holdMailboxDir(c, fire);
    assert.deepEqual({ ...mailNotifyWatchStats(), budget: 0 }, { dirs: 3, watches: 4, polled: 1, budget: 0 });
    // the polled one: a delivery seen at the next look
    writeFileSync(join(c, 'new', '1.M1P1.x'), 'x');
    await until(() => (fired.get(c) ?? 0) > 0, 'the polled directory signalled');
    // the watched one: at once
    writeFileSync(join(a, 'new', '1.M1P1.x'), 'x');
    await until(() => (fired.get(a) ?? 0) > 0, 'the watched directory signalled');
    // watches freed: the polled directory moves back to inotify
    offA();
    await pollOnce();
    assert.equal(mailNotifyWatchStats().polled, 0);
    assert.equal(mailNotifyWatchStats().watches, 4);
    const before = fired.get(c) ?? 0;
    writeFileSync(join(c, 'cur', '2.M2P2.x:2,S'), 'x');
    await until(() => (fired.get(c) ?? 0) > before, 'signalled through inotify now');
    // removed and made again under the watch
    rmSync(b, { recursive: true, force: true });
    mailbox(root, '.b');
    await new Promise((r) => setTimeout(r, 300));
    const n = fired.get(b) ?? 0;
    writeFileSync(join(b, 'new', '3.M3P3.x'), 'x');
    await until(() => (fired.get(b) ?? 0) > n, 'the re-created directory signalled');
    offB(); offC();
    assert.deepEqual({ ...mailNotifyWatchStats(), budget: 0 }, { dirs: 0, watches: 0, polled: 0, budget: 0 });
  } finally {
    setInotifyBudgetForTest(undefined, 30_000);
    rmSync(root, { recursive: true, force: true });
  }
});
