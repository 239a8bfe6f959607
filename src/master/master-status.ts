/**
 * master-status - the list of services the master runs, with where each runs and its pids, kept
 * in `$queue_directory/$process_id_directory/services` for `postern status` (a Postern addition:
 * Postfix's `postfix status` prints only the master's pid). An administrator (or a test) reads
 * it to find the process of one service, e.g. to kill it.
 *
 * The file is rewritten atomically (temporary file + rename) whenever an instance starts, fails
 * or stops, and at reload. One line per service, fields separated by one space:
 *
 *   KEY IMPL MODE STATE PIDS
 *   smtp/inet smtpd process running 4321
 *   qmgr/unix qmgr thread running 1234
 *   pickup/fifo pickup inline down -
 *
 * STATE is `running` or `down` (failed, waiting for its restart); PIDS is a comma-separated list
 * (`-` when none). An inline or thread service shows the master's pid.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface ServiceStatus {
  key: string;
  impl: string;
  mode: string;
  running: boolean;
  pids: number[];
}

/** The status file next to the pid file (pid/master.pid → pid/services). */
export function statusFilePath(pidFile: string): string {
  return join(dirname(pidFile), 'services');
}

export function formatServiceStatus(list: readonly ServiceStatus[]): string {
  return list.map((s) => `${s.key} ${s.impl} ${s.mode} ${s.running ? 'running' : 'down'} ${s.pids.length ? s.pids.join(',') : '-'}\n`).join('');
}

export function parseServiceStatus(text: string): ServiceStatus[] {
  const out: ServiceStatus[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length !== 5) continue;
    out.push({
      key: f[0]!, impl: f[1]!, mode: f[2]!, running: f[3] === 'running',
      pids: f[4] === '-' ? [] : f[4]!.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0),
    });
  }
  return out;
}

export function writeServiceStatus(file: string, list: readonly ServiceStatus[]): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, formatServiceStatus(list), { mode: 0o644 });
  renameSync(tmp, file);
}

/** The services of the file, or [] when it is missing. */
export function readServiceStatus(file: string): ServiceStatus[] {
  try { return parseServiceStatus(readFileSync(file, 'utf8')); } catch { return []; }
}
