/**
 * Tests for master-pid.ts: Postfix's pid file format, refusing a second master, and taking over
 * stale pid files (dead process, garbage, our own pid, a pid reused by another program).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlreadyRunningError, acquirePidFile, pidFilePath, readPidFile, runningMasterPid } from './master-pid.ts';

const dir = mkdtempSync(join(tmpdir(), 'postern-pid-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A live process whose command line says "postern" (like a running master). */
function fakeMaster(): Promise<{ pid: number; kill: () => void }> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'postern-fake-master'], { stdio: 'ignore' });
  return new Promise((resolve) => child.once('spawn', () => resolve({ pid: child.pid!, kill: () => child.kill('SIGKILL') })));
}

test('pid file path and format are Postfix\'s', () => {
  assert.equal(pidFilePath('/var/spool/postern'), '/var/spool/postern/pid/master.pid');
  assert.equal(pidFilePath('/q', 'run'), '/q/run/master.pid');
  const file = pidFilePath(join(dir, 'q1'));
  const lock = acquirePidFile(file);
  assert.equal(readFileSync(file, 'latin1'), `${String(process.pid).padStart(10)}\n`);
  assert.equal(readPidFile(file), process.pid);
  lock.release();
  assert.equal(readPidFile(file), undefined);
});

test('a second master is refused while the first runs', async () => {
  const file = pidFilePath(join(dir, 'q2'));
  const m = await fakeMaster();
  try {
    acquirePidFile(file).release();
    writeFileSync(file, `${String(m.pid).padStart(10)}\n`);
    assert.equal(runningMasterPid(file), m.pid);
    assert.throws(() => acquirePidFile(file), (err: unknown) => err instanceof AlreadyRunningError && err.pid === m.pid);
    assert.equal(readPidFile(file), m.pid, 'the running master keeps its pid file');
  } finally {
    m.kill();
  }
});

test('stale pid files are taken over', async () => {
  const file = pidFilePath(join(dir, 'q3'));
  acquirePidFile(file).release();
  // A master that died (kill -9): its pid no longer exists.
  const m = await fakeMaster();
  const deadPid = m.pid;
  m.kill();
  await new Promise((r) => setTimeout(r, 100));
  for (const content of [`${String(deadPid).padStart(10)}\n`, 'garbage\n', '', `${process.pid}\n`, '1\n']) {
    // pid 1 exists but is not Postern (init), as after a reboot that reused the pid.
    writeFileSync(file, content);
    const lock = acquirePidFile(file);
    assert.equal(readPidFile(file), process.pid, `took over ${JSON.stringify(content)}`);
    lock.release();
  }
});

test('release leaves a pid file that is not ours alone', () => {
  const file = pidFilePath(join(dir, 'q4'));
  const lock = acquirePidFile(file);
  writeFileSync(file, '12345\n');
  lock.release();
  assert.equal(readPidFile(file), 12345);
});
