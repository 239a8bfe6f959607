/**
 * qmgr start-up and files still being written (mode 0600) in incoming: a crash's incomplete
 * leftover is removed, a complete one (the crash came after its fsync, before its mode 0700
 * reached the disk) is committed and kept; a file whose writer still runs (an smtpd in another process that started before this
 * qmgr, postern_process_mode=process) is kept, whatever its age. Admission takes an hour-old
 * leftover, but never the file of a running writer (a clock stepped forward makes any file look
 * old).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setLogSink } from '../util/msg.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { newQueueId, queueIdWriterPid } from '../global/queue-file.ts';
import { admitMessage, removeUncommitted } from './qmgr-active.ts';
import { QueueFileWriter } from '../global/queue-file-writer.ts';

setLogSink(() => {});

/** A queue ID as newQueueId() makes, with another writer's pid. */
function idOfPid(pid: number): string {
  return newQueueId().slice(0, 13) + pid.toString(16).toUpperCase();
}

test('queue IDs carry their writer pid; other forms have none', () => {
  assert.equal(queueIdWriterPid(newQueueId()), process.pid);
  assert.equal(queueIdWriterPid(idOfPid(4321)), 4321);
  assert.equal(queueIdWriterPid('3F1A2B4C5D'), undefined, 'a Postfix short ID');
  assert.equal(queueIdWriterPid('4Xk2Ld0BqTz1rW'), undefined, 'a Postfix long ID');
});

test('an old 0600 file of a live writer stays; one of a dead writer, or of no known writer, goes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-uncommitted-'));
  try {
    const q = new MailQueue(dir);
    q.ensureDirs();
    // A pid that surely ran and ended: a child we waited for.
    const dead = spawnSync('true').pid!;
    const files = { live: idOfPid(process.pid), dead: idOfPid(dead), foreign: '3F1A2B4C5D' };
    const old = new Date(Date.now() - 600_000);
    for (const id of Object.values(files)) {
      const p = q.path('incoming', id);
      writeFileSync(p, 'partial', { mode: 0o600 });
      utimesSync(p, old, old);
    }
    const n = await removeUncommitted(q, Date.now() - 1000);
    assert.equal(n, 2);
    assert.ok(existsSync(q.path('incoming', files.live)), 'the live writer keeps its file');
    assert.ok(!existsSync(q.path('incoming', files.dead)));
    assert.ok(!existsSync(q.path('incoming', files.foreign)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('admission: a 0600 file of a live writer is not taken when the clock jumps ahead two hours; a dead writer\'s is', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-uncommitted-'));
  try {
    const q = new MailQueue(dir);
    q.ensureDirs();
    const dead = spawnSync('true').pid!;
    const files = { live: idOfPid(process.pid), dead: idOfPid(dead) };
    for (const id of Object.values(files)) writeFileSync(q.path('incoming', id), 'partial', { mode: 0o600 });
    // The wall clock stepped forward two hours (NTP at boot, a resumed VM) while both were written:
    // two hours after the files' own times (the kernel's clock, which `npm run test:clock` does not move).
    const now = Math.max(...Object.values(files).map((id) => statSync(q.path('incoming', id)).mtimeMs)) + 2 * 3600_000;
    for (const id of Object.values(files)) await admitMessage(q, id, 'incoming', { ignoreTime: false, now });
    assert.ok(existsSync(q.path('incoming', files.live)), 'a file its writer may still be writing stays in incoming');
    assert.ok(!existsSync(q.path('incoming', files.dead)), 'a dead writer\'s leftover is taken (and, incomplete, set aside as corrupt)');
    assert.ok(existsSync(q.path('corrupt', files.dead)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('start-up: a complete 0600 file of a dead writer (crash after its fsync, before the mode reached the disk) is committed, not removed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-uncommitted-'));
  try {
    const q = new MailQueue(dir);
    q.ensureDirs();
    const w = await QueueFileWriter.create(q);
    w.setSender('a@example.org');
    w.addRecipient({ address: 'b@example.test' });
    await w.writeContent(Buffer.from('Subject: x\n\nbody\n'));
    const written = await w.commit();
    // The same bytes under a dead writer's queue ID, mode 0600 as the crash left it.
    const dead = spawnSync('true').pid!;
    const id = idOfPid(dead);
    const { readFileSync } = await import('node:fs');
    writeFileSync(q.path('incoming', id), readFileSync(q.path('incoming', written)), { mode: 0o600 });
    rmSync(q.path('incoming', written));
    const old = new Date(Date.now() - 600_000);
    utimesSync(q.path('incoming', id), old, old);
    const n = await removeUncommitted(q, Date.now() - 1000);
    assert.equal(n, 0, 'nothing removed');
    assert.equal(statSync(q.path('incoming', id)).mode & 0o777, 0o700, 'committed: qmgr admits it');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
