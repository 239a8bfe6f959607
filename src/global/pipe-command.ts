/**
 * pipe-command - run one external command for a delivery and turn its end into a delivery
 * status (Postfix global/pipe_command.c, shared by pipe(8) and local(8)'s `|command`,
 * mailbox_command and .forward commands).
 *
 * As Postfix:
 *  - the command runs with the given uid/gid (when we are root; libuv also drops supplementary
 *    groups), in its own session/process group (setsid) so a time limit kills its children too,
 *    with a clean environment (export_environment names + PATH=/usr/bin:/bin + the caller's);
 *  - stdin is the message; stdout and stderr are one capture of at most 4096 bytes, tabs and
 *    newlines turned into spaces, other non-printable bytes into `_` (translit + printable());
 *  - the command stopping reading early (EPIPE) is not an error;
 *  - status: exit 0 → sent; killed by a signal → deferred 4.3.0 "Command died with signal N";
 *    <sysexits.h> code → its sys_exits.c status; any other code → bounced 5.3.0 "Command died
 *    with status N"; time limit → SIGKILL to the group and bounced 5.3.0 "Command time limit
 *    exceeded" (pipe_command.c returns PIPE_STAT_BOUNCE for a timeout);
 *  - when the output starts with an RFC 3463 code (4.X.X or 5.X.X), that code and its class win
 *    over the exit status (pipe(8): "the status code takes precedence", Postfix 2.3+);
 *  - a command that cannot be started (no such file) is Postfix's child `msg_fatal` → exit 1
 *    → bounced "Command died with status 1".
 */
import { spawn } from 'node:child_process';
import { sysExit } from './sys-exits.ts';

export interface CommandSpec {
  /** argv, or a shell command line run as `/bin/sh -c` (local(8) with shell metacharacters). */
  argv?: string[];
  shellCommand?: string;
  /** Shell for shellCommand (local_command_shell); default /bin/sh. */
  shell?: string;
  uid?: number;
  gid?: number;
  cwd?: string;
  env: Record<string, string>;
  input: Buffer;
  timeLimitMs: number;
  signal?: AbortSignal;
}

export interface CommandOutcome {
  status: 'sent' | 'deferred' | 'bounced';
  dsn: string;
  /** Postfix's reason text, e.g. `temporary failure. Command output: try later`. */
  text: string;
  /** The captured output, cleaned as printable(). */
  output: string;
  exitCode?: number;
  signal?: string;
  timedOut?: boolean;
}

const LOG_BUF = 4096;
const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

/** Postfix translit(buf, "\t\n", "  ") + printable(buf, '_'). */
export function cleanOutput(b: Buffer): string {
  let s = '';
  for (const c of b) s += c === 9 || c === 10 ? ' ' : c >= 32 && c < 127 ? String.fromCharCode(c) : '_';
  return s;
}

/** The environment Postfix gives external commands: export_environment + PATH + extras. */
export function commandEnv(exportEnvironment: string, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of exportEnvironment.split(/[\s,]+/).filter(Boolean)) {
    const eq = name.indexOf('=');
    if (eq > 0) env[name.slice(0, eq)] = name.slice(eq + 1);
    else if (process.env[name] !== undefined) env[name] = process.env[name]!;
  }
  env.PATH = '/usr/bin:/bin';
  return { ...env, ...extra };
}

export function runCommand(spec: CommandSpec): Promise<CommandOutcome> {
  const label = spec.argv ? spec.argv[0]! : spec.shellCommand!;
  const [file, args] = spec.argv ? [spec.argv[0]!, spec.argv.slice(1)] : [spec.shell || '/bin/sh', ['-c', spec.shellCommand!]];
  return new Promise((resolveOnce) => {
    let settled = false;
    const resolve = (o: CommandOutcome) => { if (!settled) { settled = true; resolveOnce(o); } };
    let child;
    try {
      child = spawn(file, args, {
        stdio: ['pipe', 'pipe', 'pipe'], env: spec.env, cwd: spec.cwd, detached: true,
        ...(spec.uid !== undefined ? { uid: spec.uid } : {}), ...(spec.gid !== undefined ? { gid: spec.gid } : {}),
      });
    } catch (e) {
      resolve({ status: 'deferred', dsn: '4.3.0', text: `Delivery failed: ${(e as Error).message}`, output: '' });
      return;
    }
    const out: Buffer[] = [];
    let outLen = 0;
    const collect = (b: Buffer) => { if (outLen < LOG_BUF) { out.push(b.subarray(0, LOG_BUF - outLen)); outLen += Math.min(b.length, LOG_BUF - outLen); } };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    let timedOut = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    const killGroup = () => { try { if (child.pid) process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ } };
    const timer = setTimeout(() => { timedOut = true; killGroup(); }, spec.timeLimitMs);
    const onAbort = () => { killGroup(); };
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e;
      if (child.pid === undefined) { clearTimeout(timer); spec.signal?.removeEventListener('abort', onAbort); cannotStart(e); }
    });
    const cannotStart = (e: NodeJS.ErrnoException) => {
      // Postfix: the child's execvp (or set_ugid) fails, msg_fatal → exit status 1.
      const msg = `pipe: fatal: execvp ${label}: ${e.code === 'ENOENT' ? 'No such file or directory' : e.code === 'EACCES' ? 'Permission denied' : e.message}`;
      resolve({ status: 'bounced', dsn: '5.3.0', text: `Command died with status 1: "${label}". Command output: ${msg}`, output: msg, exitCode: 1 });
    };
    child.stdin!.on('error', () => { /* EPIPE: the command stopped reading, not an error */ });
    child.stdin!.end(spec.input);
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      spec.signal?.removeEventListener('abort', onAbort);
      const output = cleanOutput(Buffer.concat(out));
      const withOut = output ? `. Command output: ${output}` : '';
      const done = (o: Omit<CommandOutcome, 'output'>) => resolve(overrideDsn({ ...o, output }));
      if (spawnError && child.pid === undefined) return cannotStart(spawnError);
      if (timedOut) return done({ status: 'bounced', dsn: '5.3.0', text: `Command time limit exceeded: "${label}"${withOut}`, timedOut: true });
      if (spec.signal?.aborted) return done({ status: 'deferred', dsn: '4.3.0', text: `delivery interrupted: "${label}"` });
      if (sig) return done({ status: 'deferred', dsn: '4.3.0', text: `Command died with signal ${SIGNALS[sig] ?? sig}: "${label}"${withOut}`, signal: sig });
      if (code === 0) return done({ status: 'sent', dsn: '2.0.0', text: `delivered via ${label}`, exitCode: 0 });
      const sx = sysExit(code ?? -1);
      if (sx) return done({ status: sx.soft ? 'deferred' : 'bounced', dsn: sx.dsn, text: `${sx.text}${withOut}`, exitCode: code! });
      return done({ status: 'bounced', dsn: '5.3.0', text: `Command died with status ${code}: "${label}"${withOut}`, exitCode: code ?? undefined });
    });
  });
}

/** pipe(8): output beginning with 4.X.X / 5.X.X decides the status code and class. */
function overrideDsn(o: CommandOutcome): CommandOutcome {
  if (o.status === 'sent') return o;
  const m = /^([45])\.(\d{1,3})\.(\d{1,3})\b/.exec(o.output);
  if (!m) return o;
  return { ...o, dsn: `${m[1]}.${m[2]}.${m[3]}`, status: m[1] === '4' ? 'deferred' : 'bounced' };
}
