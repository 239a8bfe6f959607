/**
 * proc-stop - SIGSTOP a server process and wait until every one of its threads is really stopped.
 * kill() returns as soon as the signal is queued; the group stop reaches a multi-threaded server
 * (mariadbd, slapd) a moment later, and a query sent in that moment is still answered — a test of
 * "a database that hangs" then sees an answer. Bounded: at most `ms`, then it returns anyway.
 */
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
