/**
 * bench-machine - a description of the machine a benchmark ran on, printed above the table and
 * stored in the JSON result: CPU model (/proc/cpuinfo), cores, memory, kernel, Node version and
 * the reference programs' versions (asked from the installed binaries, not assumed), and the
 * load average at the start (a busy machine makes fsync-bound figures noisy).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  postfix: string;
  dovecot: string;
  /** 1-minute load average when the run started: other work on the machine skews the figures. */
  loadAverage: number;
}

function quiet(cmd: string, args: string[]): string {
  try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim(); } catch { return 'not installed'; }
}

export function describeMachine(): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1]!.trim();
  } catch { /* not Linux: os.cpus() model */ }
  // `postconf -d` prints compiled-in defaults only; it reads no site configuration.
  const pf = quiet('/usr/sbin/postconf', ['-d', 'mail_version']).replace(/^mail_version = /, '');
  const dv = quiet('dovecot', ['--version']);
  return {
    cpu,
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10,
    kernel: `${process.platform} ${release()}`,
    node: process.version,
    postfix: pf === 'not installed' ? pf : `Postfix ${pf}`,
    dovecot: dv === 'not installed' ? dv : `Dovecot ${dv}`,
    loadAverage: Math.round(loadavg()[0]! * 10) / 10,
  };
}

export function machineLine(m: Machine): string {
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.kernel}, Node ${m.node}, ${m.postfix}, ${m.dovecot}, load average ${m.loadAverage} at start`;
}
