/**
 * master-pid - the master's pid file, `$queue_directory/pid/master.pid` (Postfix's place and
 * format: the pid right-aligned in 10 columns and a newline, global/pid_file.c), which is also the
 * lock that keeps a second master from starting.
 *
 * Node has no flock(2), so the lock is an atomic create plus a liveness check: the new pid file is
 * written under a temporary name and hard-linked to master.pid; link(2) fails with EEXIST when a
 * pid file is there, and only one of two racing masters can win. An existing file is stale (and
 * replaced) when its process is gone, when it is our own pid (a container restarted with the same
 * pid 1), or when /proc shows the pid now belongs to a program that is not Postern.
 */
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** $queue_directory/$process_id_directory/master.pid (process_id_directory defaults to "pid"). */
export function pidFilePath(queueDirectory: string, processIdDirectory = 'pid'): string {
  return join(queueDirectory, processIdDirectory || 'pid', 'master.pid');
}

/** The pid in a pid file, or undefined when the file is missing or does not hold one. */
export function readPidFile(file: string): number | undefined {
  let text: string;
  try { text = readFileSync(file, 'latin1'); } catch { return undefined; }
  const m = /^\s*(\d{1,10})\s*$/.exec(text);
  if (!m) return undefined;
  const pid = Number(m[1]);
  return pid > 0 ? pid : undefined;
}

/** kill(pid, 0): the process exists (EPERM = exists, owned by someone else). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Does /proc say `pid` runs Postern? Without /proc (not Linux), assume it does. */
function looksLikePostern(pid: number): boolean {
  let cmdline: string;
  try { cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1'); } catch { return !existsProc(); }
  return cmdline.includes('postern');
}

function existsProc(): boolean {
  try { readFileSync('/proc/self/cmdline'); return true; } catch { return false; }
}

/** The pid of the running master, or undefined when the pid file is missing or stale. */
export function runningMasterPid(file: string): number | undefined {
  const pid = readPidFile(file);
  if (pid === undefined || pid === process.pid) return undefined;
  if (!processExists(pid) || !looksLikePostern(pid)) return undefined;
  return pid;
}

export class AlreadyRunningError extends Error {
  readonly pid: number;
  constructor(pid: number) {
    super(`the Postern mail system is already running (PID: ${pid})`);
    this.name = 'AlreadyRunningError';
    this.pid = pid;
  }
}

export interface PidLock {
  readonly file: string;
  /** Remove the pid file if it is still ours. */
  release(): void;
}

/** Create the pid file for this process, or throw AlreadyRunningError. */
export function acquirePidFile(file: string): PidLock {
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${String(process.pid).padStart(10)}\n`, { mode: 0o644 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, file);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw err;
      }
      const other = runningMasterPid(file);
      if (other !== undefined) throw new AlreadyRunningError(other);
      // Stale: remove it, unless another starting master replaced it meanwhile.
      const stalePid = readPidFile(file);
      if (stalePid !== undefined && stalePid !== process.pid && processExists(stalePid) && looksLikePostern(stalePid)) {
        throw new AlreadyRunningError(stalePid);
      }
      try { unlinkSync(file); } catch { /* someone else removed it */ }
    }
  } finally {
    try { unlinkSync(tmp); } catch { /* ignore */ }
  }
  return {
    file,
    release(): void {
      if (readPidFile(file) === process.pid) {
        try { unlinkSync(file); } catch { /* ignore */ }
      }
    },
  };
}
