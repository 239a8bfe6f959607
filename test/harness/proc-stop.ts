/**
 * proc-stop - SIGSTOP a server process and wait until every one of its threads is really stopped.
 * kill() returns as soon as the signal is queued; the group stop reaches a multi-threaded server
 * (mariadbd, slapd) a moment later, and a query sent in that moment is still answered — a test of
 * "a database that hangs" then sees an answer. Bounded: at most `ms`, then it returns anyway.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const pause = new Int32Array(new SharedArrayBuffer(4));

function allStopped(pid: number): boolean {
  let tasks: string[];
  try { tasks = readdirSync(`/proc/${pid}/task`); } catch { return true; }   // gone
  for (const t of tasks) {
    let stat: string;
    try { stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8'); } catch { continue; }
    // state is the field after the ")" that ends the command name
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state !== 'T' && state !== 't') return false;
  }
  return true;
}

export function stopAndWait(pid: number | undefined, ms = 2000): void {
  if (pid === undefined) return;
  try { process.kill(pid, 'SIGSTOP'); } catch { return; }
  const end = Date.now() + ms;
  while (!allStopped(pid) && Date.now() < end) Atomics.wait(pause, 0, 0, 2);
}

/**
 * Stop a server child for good: let it run again if paused, ask with `signal` (SIGTERM; PostgreSQL's
 * fast shutdown is SIGINT), SIGKILL after `graceMs`; resolves when it has exited, or 5 s after
 * the SIGKILL in any case (a process stuck in the kernel must not hold the test run).
 */
export async function terminate(p: ChildProcess | undefined, graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill('SIGCONT');
  p.kill(signal);
  const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
  let giveUp: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise((r) => { giveUp = setTimeout(r, graceMs + 5000); })]);
  clearTimeout(t);
  clearTimeout(giveUp);
}

/**
 * Run a server's start-up; if it throws (did not come up in time, exited), stop what was started
 * (`cleanup`) before the error goes on, so a failed start leaves no process holding the test run.
 */
export async function startOrClean<T>(start: () => Promise<T>, cleanup: () => Promise<void>): Promise<T> {
  try {
    return await start();
  } catch (e) {
    await cleanup().catch(() => {});
    throw e;
  }
}
