/**
 * postern-script - `postern start|stop|reload|status`, the postfix(1) commands of postfix-script:
 *
 *   start    run the mail system in the foreground (`postfix start-fg`). With no configuration
 *            in CONFIG_DIR, write the embedded default first (master/default-config.ts). SIGTERM or
 *            SIGINT stop it gracefully (exit 0); SIGHUP reloads the configuration.
 *   stop     SIGTERM to the master named in the pid file; wait until it has exited.
 *   reload   SIGHUP to the master.
 *   status   exit 0 when the master runs, 1 when not. When it runs, stdout lists its services,
 *            one a line (master/master-status.ts): `smtp/inet smtpd process running 4321`, i.e. the
 *            master.cf service/type (or dovecot/PROTOCOL), the implementation, where it runs
 *            (postern_process_mode), running or down, and its pids.
 *
 * Messages are postfix-script's, with Postern's name, on stderr:
 *   postern/postern-script: the Postern mail system is running: PID: 1234
 *   postern/postern-script: the Postern mail system is not running
 *   postern/postern-script: fatal: the Postern mail system is already running
 * The pid file is $queue_directory/pid/master.pid (master/master-pid.ts).
 */
import { existsSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CliContext } from './cli-context.ts';
import { ConfigError } from '../global/config-error.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { FatalError, logger, setSyslogName } from '../util/msg.ts';
import { defaultDataDir, writeDefaultConfig } from '../master/default-config.ts';
import { Master } from '../master/master.ts';
import { hasConfig, loadConfigSet, type MasterConfigSet } from '../master/master-config.ts';
import { ListenError } from '../master/master-listen.ts';
import { AlreadyRunningError, acquirePidFile, pidFilePath, runningMasterPid } from '../master/master-pid.ts';
import { formatServiceStatus, readServiceStatus, statusFilePath } from '../master/master-status.ts';
import { spawnSync } from 'node:child_process';
import { rotateMaillog } from '../master/master-maillog.ts';

const SCRIPT = 'postern/postern-script';
/** How long `postern stop` waits for the master to exit. */
const STOP_WAIT_MS = 60_000;

function say(line: string): void {
  process.stderr.write(`${SCRIPT}: ${line}\n`);
}

export async function main(args: string[], ctx: CliContext): Promise<number> {
  if (args.length > 0) {
    process.stderr.write(`usage: postern [-c CONFIG_DIR] ${ctx.command}\n`);
    return 64;   // EX_USAGE
  }
  switch (ctx.command) {
    case 'start': return start(ctx);
    case 'stop': return stop(ctx);
    case 'reload': return reload(ctx);
    case 'logrotate': return logrotate(ctx);
    case 'status': return status(ctx);
    default: throw new FatalError(`postern-script: unknown command "${ctx.command}"`);
  }
}

/** The pid file this configuration's master uses (main.cf queue_directory). */
function pidFileOf(configDir: string): string {
  try {
    const main = MainConfig.load(configDir);
    return pidFilePath(main.get('queue_directory'), main.get('process_id_directory'));
  } catch (err) {
    if (err instanceof ConfigError) throw new FatalError(err.message);
    throw err;
  }
}

function runningPid(ctx: CliContext): number | undefined {
  const dir = resolve(ctx.configDir);
  if (!hasConfig(dir)) return undefined;
  return runningMasterPid(pidFileOf(dir));
}

async function status(ctx: CliContext): Promise<number> {
  const pid = runningPid(ctx);
  if (pid === undefined) { say('the Postern mail system is not running'); return 1; }
  say(`the Postern mail system is running: PID: ${pid}`);
  process.stdout.write(formatServiceStatus(readServiceStatus(statusFilePath(pidFileOf(resolve(ctx.configDir))))));
  return 0;
}

async function reload(ctx: CliContext): Promise<number> {
  const pid = runningPid(ctx);
  if (pid === undefined) { say('fatal: the Postern mail system is not running'); return 1; }
  say('refreshing the Postern mail system');
  process.kill(pid, 'SIGHUP');
  return 0;
}

/**
 * `postfix logrotate`: rename maillog_file to NAME.$maillog_file_rotate_suffix, reload the
 * master (it reopens the file), wait a second, run $maillog_file_compressor on the old file.
 */
async function logrotate(ctx: CliContext): Promise<number> {
  const main = MainConfig.load(resolve(ctx.configDir));
  let rotated: string;
  try { rotated = rotateMaillog(main); } catch (e) {
    const m = (e as Error).message;
    say(`fatal: ${m.includes('rotation failed') || m.startsWith('not rotating') ? m : `logfile '${main.get('maillog_file')}' rotation failed: ${m}`}`);
    return 1;
  }
  const pid = runningPid(ctx);
  if (pid !== undefined) process.kill(pid, 'SIGHUP');
  await new Promise((r) => setTimeout(r, 1000));
  const r = spawnSync(main.get('maillog_file_compressor'), [rotated], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) {
    say(`fatal: logfile '${main.get('maillog_file')}' rotation failed: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
    return 1;
  }
  return 0;
}

async function stop(ctx: CliContext): Promise<number> {
  const pid = runningPid(ctx);
  if (pid === undefined) { say('fatal: the Postern mail system is not running'); return 1; }
  say('stopping the Postern mail system');
  process.kill(pid, 'SIGTERM');
  const file = pidFileOf(resolve(ctx.configDir));
  const deadline = Date.now() + STOP_WAIT_MS;
  let nextNotice = Date.now() + 5000;
  while (runningMasterPid(file) === pid) {
    if (Date.now() > deadline) {
      say(`fatal: the Postern mail system did not stop within ${STOP_WAIT_MS / 1000}s (PID: ${pid})`);
      return 1;
    }
    if (Date.now() > nextNotice) { say('waiting for the Postern mail system to terminate'); nextNotice += 5000; }
    await new Promise((r) => setTimeout(r, 100));
  }
  return 0;
}

function failText(err: unknown): string {
  if (err instanceof ConfigError || err instanceof ListenError || err instanceof FatalError) return err.message;
  if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string') return err.message;  // EACCES, ENOSPC...
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

async function start(ctx: CliContext): Promise<number> {
  const configDir = resolve(ctx.configDir);
  const log = logger('master');
  if (existsSync(configDir) && !statSync(configDir).isDirectory()) {
    process.stderr.write(`postern: fatal: ${configDir} is not a directory; name a configuration directory with -c DIR\n`);
    return 1;
  }
  if (hasConfig(configDir) && !existsSync(join(configDir, 'master.cf'))) {
    // main.cf and dovecot.conf may be missing (defaults), but without master.cf nothing runs.
    process.stderr.write(`postern: fatal: ${join(configDir, 'master.cf')}: no such file; a configuration directory needs master.cf `
      + '(or move main.cf and dovecot.conf away to have postern start write a working default)\n');
    return 1;
  }
  if (!hasConfig(configDir)) {
    try {
      await writeDefaultConfig({
        configDir,
        dataDir: defaultDataDir(configDir, ctx.configDirExplicit),
        portBase: portBaseFromEnv(),
        say: (l) => process.stdout.write(l + '\n'),
      });
    } catch (err) {
      process.stderr.write(`postern: fatal: cannot write the default configuration in ${configDir}: ${failText(err)}\n`);
      return 1;
    }
  }

  let first: MasterConfigSet | undefined;
  try {
    first = loadConfigSet(configDir);
  } catch (err) {
    process.stderr.write(`postern: fatal: ${failText(err)}\n`);
    return 1;
  }
  if (first.main.isSet('syslog_name')) setSyslogName(first.main.get('syslog_name'));

  const queueDir = first.main.get('queue_directory');
  let lock;
  try {
    mkdirSync(queueDir, { recursive: true, mode: 0o755 });
    lock = acquirePidFile(pidFilePath(queueDir, first.main.get('process_id_directory')));
  } catch (err) {
    if (err instanceof AlreadyRunningError) { say('fatal: the Postern mail system is already running'); return 1; }
    process.stderr.write(`postern: fatal: ${queueDir}: ${failText(err)}\n`);
    return 1;
  }

  const statusFile = statusFilePath(pidFilePath(queueDir, first.main.get('process_id_directory')));
  const master = new Master({
    configDir,
    statusFile,
    load: () => {
      if (first) { const f = first; first = undefined; return f; }
      return loadConfigSet(configDir);
    },
  });

  // A bug in one service must not take the whole mail system down: log it and go on.
  const onUncaught = (err: unknown) => log.error(`uncaught exception: ${failText(err)}`);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  const keepAlive = setInterval(() => undefined, 1 << 30);

  let stopped!: (code: number) => void;
  const done = new Promise<number>((r) => { stopped = r; });
  let terminating = false;
  const terminate = (signo: number) => {
    if (terminating) return;
    terminating = true;
    log.info(`terminating on signal ${signo}`);
    void master.stop().finally(() => finish(0)).catch(() => undefined);
  };
  const onTerm = () => terminate(15);
  const onInt = () => terminate(2);
  const onHup = () => { if (!terminating) void master.reload(); };
  const finish = (code: number) => {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    process.off('SIGHUP', onHup);
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    clearInterval(keepAlive);
    try { unlinkSync(statusFile); } catch { /* never written */ }
    lock.release();
    // Services may hold sockets of unfinished sessions; do not let them keep the process alive.
    setTimeout(() => process.exit(code), 2000).unref();
    stopped(code);
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  process.on('SIGHUP', onHup);

  try {
    await master.start();
  } catch (err) {
    process.stderr.write(`postern: fatal: ${failText(err)}\n`);
    terminating = true;
    await master.stop();
    finish(1);
  }
  return done;
}

/** POSTERN_PORT_BASE: a test aid, see default-config.ts. */
function portBaseFromEnv(): number | undefined {
  const v = process.env.POSTERN_PORT_BASE;
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535 - 9) throw new FatalError(`POSTERN_PORT_BASE=${v}: not a port number between 1 and 65526`);
  return n;
}
