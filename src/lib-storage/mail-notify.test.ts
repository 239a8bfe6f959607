/**
 * mail-notify: a change signalled in a worker thread (where the master runs the delivery
 * agents) reaches listeners of the main thread at once through the BroadcastChannel, for
 * watchMailbox (IDLE) and watchAnyMailbox (NOTIFY), and a trailing slash names the same mailbox.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { notifyMailboxListChanged, watchAnyMailbox, watchMailbox, type ListChange } from './mail-notify.ts';

test('a worker thread\'s change and list change reach the main thread; trailing slashes are one key', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mail-notify-')); // no new/ cur/: no inotify, only the channel
  try {
    const box = join(dir, '.Work');
    let idle = 0;
    const any: string[] = [];
    const lists: ListChange[] = [];
    const off1 = watchMailbox(box, () => { idle++; });
    const off2 = watchAnyMailbox((d) => { any.push(d); }, (l) => { lists.push(l); });
    const url = new URL('./mail-notify.ts', import.meta.url).href;
    const w = new Worker(`import(${JSON.stringify(url)}).then((m) => { m.notifyMailboxChanged(${JSON.stringify(box + '/')}); m.notifyMailboxListChanged(${JSON.stringify(dir)}, ['a', 'b']); });`, { eval: true });
    await new Promise<void>((resolve, reject) => { w.on('exit', () => resolve()); w.on('error', reject); });
    for (let i = 0; i < 200 && (idle === 0 || lists.length === 0); i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(idle, 1);
    assert.deepEqual(any, [box]);
    assert.deepEqual(lists, [{ root: dir, renamed: ['a', 'b'] }]);
    notifyMailboxListChanged(dir); // this thread's own signal: heard here once, not echoed back
    assert.equal(lists.length, 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(lists.length, 2);
    off1(); off2();
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
