/**
 * spawn - run a non-Postfix command for each connection to a master.cf service (Postfix
 * spawn(8)): how Postfix sites start policy servers that speak on stdin/stdout, e.g.
 *
 *   policyd-spf  unix  -  n  n  -  0  spawn
 *     user=policyd-spf argv=/usr/bin/policyd-spf
 *
 * and point smtpd at it with `check_policy_service unix:private/policyd-spf`.
 *
 * SUMMARY
 *   master.cf `NAME unix - n n - MAXPROC spawn user=USER[:GROUP] argv=COMMAND ARGS...`
 *
 * DESCRIPTION
 *   The master binds $queue_directory/private/NAME (master-plan.ts); for every connection this
 *   service starts COMMAND with the connection as its standard input and output, and ends the
 *   connection when the command exits (the command ends when it reads end-of-file, as a policy
 *   server does when smtpd closes an idle connection). The bytes are relayed through pipes (the
 *   command sees pipes, not the socket: nothing the master may already have read is lost).
 *   Standard error is logged, one warning per line, naming the command (Postfix connects it to
 *   the socket too, where it would corrupt the protocol). At most MAXPROC commands run at once
 *   (0: no limit); further connections wait. A command that runs longer than NAME_time_limit
 *   (default $command_time_limit) is killed, with its process group.
 *
 * SECURITY
 *   The command runs as user= (never root: refused at start, as Postfix does), in a new session,
 *   with the environment of export_environment (and PATH=/usr/bin:/bin). When Postern itself
 *   does not run as root it cannot change user: the command then runs as Postern's own user and
 *   a warning says so once.
 *
 * DIAGNOSTICS
 *   `warning: command /usr/bin/x exit status N`, `... killed by signal N`, `... time limit
 *   exceeded`, `warning: command /usr/bin/x: <stderr line>`.
 *
 * PARAMETERS
 *   command_time_limit, export_environment, <service>_time_limit
 */
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { ConfigError } from '../global/config-error.ts';
import type { MasterEntry } from '../global/master-cf.ts';
import { commandEnv, cleanOutput } from '../global/pipe-command.ts';
import { getgrnam, getpwnam } from '../util/dict-unix.ts';
import type { MainConfig } from '../global/mail-conf.ts';
import type { RunningService, ServiceImpl } from '../lib-master/master-service.ts';

/** Longest stderr line logged (the rest of the line is dropped). */
const STDERR_LINE = 1000;

export interface SpawnAttrs { user: string; group?: string; argv: string[] }

/** The user= and argv= attributes of a spawn entry (Postfix spawn.c get_service_attr()). Throws ConfigError. */
export function spawnAttrs(e: MasterEntry): SpawnAttrs {
  let user: string | undefined;
  let argv: string[] | undefined;
  const args = e.args;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('user=')) user = a.slice(5);
    else if (a.startsWith('argv=')) { argv = [a.slice(5), ...args.slice(i + 1)]; break; }
    else throw new ConfigError(e.file, e.line, `spawn: unknown attribute name: ${a.slice(0, 60)} (expected user= argv=)`);
  }
  if (!user) throw new ConfigError(e.file, e.line, 'spawn: missing user= command-line attribute');
  if (!argv || !argv[0]) throw new ConfigError(e.file, e.line, 'spawn: missing argv= command-line attribute');
  const [name, group] = user.split(':', 2) as [string, string | undefined];
  if (name === 'root' || name === '0') throw new ConfigError(e.file, e.line, 'spawn: user= command-line attribute specifies root privileges');
  return { user: name, group, argv };
}

function timeLimitMs(config: MainConfig, service: string): number {
  try { return config.time(`${service}_time_limit`) * 1000; } catch { return config.time('command_time_limit') * 1000; }
}

export const service: ServiceImpl = {
  name: 'spawn',
  async start(ctx): Promise<RunningService> {
    const e = ctx.entry;
    const log = ctx.log;
    const attrs = spawnAttrs(e);
    const prog = attrs.argv[0]!;
    let uid: number | undefined;
    let gid: number | undefined;
    const pw = /^\d+$/.test(attrs.user) ? { uid: Number(attrs.user), gid: Number(attrs.user) } : getpwnam(attrs.user);
    if (!pw) throw new ConfigError(e.file, e.line, `spawn: unknown user name: ${attrs.user}`);
    if (pw.uid === 0) throw new ConfigError(e.file, e.line, `spawn: user=${attrs.user} has root privileges (uid 0): name an unprivileged user`);
    if (process.getuid?.() === 0) {
      uid = pw.uid;
      gid = attrs.group ? getgrnam(attrs.group)?.gid : pw.gid;
      if (gid === undefined) throw new ConfigError(e.file, e.line, `spawn: unknown group name: ${attrs.group}`);
    } else if (pw.uid !== process.getuid?.()) {
      log.warn(`${e.service}: not running as root: ${prog} runs as this process's user, not as user=${attrs.user}`);
    }
    const limitMs = timeLimitMs(ctx.config, e.service);
    const env = commandEnv(ctx.config.get('export_environment'), {});
    const maxproc = e.maxproc;
    const children = new Set<ChildProcess>();
    const waiting: Socket[] = [];
    let stopping = false;

    const next = (): void => {
      while (!stopping && waiting.length && (maxproc <= 0 || children.size < maxproc)) {
        const s = waiting.shift()!;
        if (!s.destroyed) run(s);
      }
    };

    const run = (sock: Socket): void => {
      let child: ChildProcess;
      try {
        child = spawnChild(prog, attrs.argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], uid, gid, env, cwd: '/', detached: true });
      } catch (err) {
        log.warn(`command ${prog}: ${(err as Error).message}`);
        sock.destroy();
        return;
      }
      children.add(child);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try { process.kill(-child.pid!, 'SIGKILL'); } catch { child.kill('SIGKILL'); }
      }, limitMs);
      timer.unref();
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        children.delete(child);
        sock.end();
        next();
      };
      // A command that cannot be started (no such file, no permission) reports only 'error'.
      child.on('error', (err) => { log.warn(`command ${prog}: ${err.message}`); if (child.pid === undefined) { sock.destroy(); end(); } });
      child.stdin!.on('error', () => { /* the command stopped reading */ });
      sock.on('error', () => { /* the client left */ });
      sock.pipe(child.stdin!);
      child.stdout!.pipe(sock);
      sock.resume();
      // stderr: the first lines, each cut at STDERR_LINE, logged when the command ends.
      let errBuf = Buffer.alloc(0);
      child.stderr!.on('data', (d: Buffer) => {
        if (errBuf.length < 8 * STDERR_LINE) errBuf = Buffer.concat([errBuf, d.subarray(0, 8 * STDERR_LINE - errBuf.length)]);
      });
      child.stderr!.on('end', () => {
        const lines = errBuf.toString('latin1').split('\n').map((l) => cleanOutput(Buffer.from(l, 'latin1')).trim()).filter(Boolean);
        for (const line of lines.slice(0, 20)) log.warn(`command ${prog}: ${line.slice(0, STDERR_LINE)}`);
      });
      child.once('close', (code, signal) => {
        if (timedOut) log.warn(`command ${prog} time limit exceeded`);
        else if (signal) log.warn(`command ${prog} killed by signal ${signal}`);
        else if (code) log.warn(`command ${prog} exit status ${code}`);
        end();
      });
    };

    for (const l of ctx.listeners) {
      l.accept((sock) => {
        sock.pause();
        if (stopping) { sock.destroy(); return; }
        waiting.push(sock);
        next();
      });
    }

    return {
      async stop() {
        stopping = true;
        for (const s of waiting.splice(0)) s.destroy();
        const done = [...children].map((c) => new Promise((r) => c.once('close', r)));
        for (const c of children) c.stdin?.end();
        const t = setTimeout(() => { for (const c of children) { try { process.kill(-c.pid!, 'SIGKILL'); } catch { c.kill('SIGKILL'); } } }, 5000);
        await Promise.all(done);
        clearTimeout(t);
      },
    };
  },
};
