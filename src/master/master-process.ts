/**
 * master-process - run a service in a child process of its own (Postfix's model: every daemon
 * is a process of master(8)), so that it uses another core, and so that it can be killed, crash
 * or run out of memory alone (DESIGN.md §2 "master": in-process where speed matters, separate
 * processes to use every core and to drop privileges). Selected per master.cf entry with
 * `-o postern_process_mode=process` (master-mode.ts); the service's code does not change.
 *
 *   processed('smtpd', '../smtpd/smtpd-service.ts').start(ctx) → RunningService
 *
 * With postern_process_count above 1 the service runs in the N worker processes of
 * master-pool.ts instead, shared with the other services of that count; both fork the same
 * child program (master-process-child.ts) through forkChild() here.
 *
 * CONTRACT
 *  - The child (master-process-child.ts, forked with an IPC channel) loads the configuration
 *    directory itself (main.cf with this master.cf entry's -o overrides, dovecot.conf), as the
 *    worker of master-thread.ts does; master.cf's entries come in the request, as the master
 *    parsed them. It starts the module's `service` with a ServiceContext
 *    whose listeners mirror the master's (kind, name, ssl, address; `server` is a placeholder
 *    that does not listen). The first IPC message is the request; the child answers
 *    `started` once start() resolved, or `failed`.
 *  - Listening sockets stay the master's (a listener survives restarts and reloads, and privileged
 *    ports are bound once). When the child calls `accept()` on listener i, the master routes that
 *    socket's connections to the child: each accepted connection is passed over the IPC channel
 *    (`child.send({type: 'conn', sid, l: i}, socket)`: SCM_RIGHTS under Node's handle passing). The
 *    master's servers use `pauseOnConnect`, so the master never reads a byte of a connection it
 *    hands over (an implicit-TLS ClientHello stays in the kernel for the child). While no child
 *    accepts (during a restart) connections wait in the master, as for in-process services.
 *  - stop(): the master has already detached the routing; the child is told `stop`, runs the
 *    service's graceful stop (sessions finish, up to the service's own drain time) and exits 0.
 *    After 35 s it is killed (SIGKILL).
 *  - Failure: the child exiting on its own (crash, SIGKILL, out of memory) or calling
 *    ctx.failed() is reported through the master's ctx.failed() with a ProcessExitError that
 *    carries the CHILD's pid and its exit status or signal, so the master logs Postfix's
 *    "warning: process postern/smtpd pid 4321 exit status 1" / "... killed by signal 9" and
 *    restarts the service after its usual backoff.
 *  - The child exits at once when the master goes away (its IPC channel closes), as Postfix's
 *    daemons do on "master disconnect": a SIGKILLed master takes its services with it.
 *  - Triggers (mail-trigger.ts) cross the IPC channel both ways: the master passes a trigger for
 *    the service's name to every live child ({type: 'trigger', service, what}), and a child's
 *    trigger that nobody in it listens to (an smtpd child's new queue ID for qmgr) comes to the
 *    master ({type: 'trigger', service, what}), which passes it on unless it names the child's
 *    own service.
 *  - wakeup() is forwarded; reload() is not offered, so a changed configuration starts a new
 *    child and then stops the old one (which finishes its sessions). New certificate files
 *    (`postern reload`, the ACME client) reach every child as {type: 'tls-reload'}: the child
 *    re-reads its TLS contexts as the master's own services do (lib-tls/tls-provider.ts).
 *  - The child's stderr (its log lines, `postern/smtpd[CHILD PID]: ...`) is read by the master
 *    and written to the master's stderr in whole lines, so two processes never interleave
 *    parts of lines in the log.
 *  - The child's metrics are asked for at each scrape and added to the master's; the last
 *    snapshot of a child that ended is kept (util/metrics.ts retire).
 *  - anvil's per-client counts and the auth penalty are the master's one table, which every
 *    child asks over its IPC channel (master-anvil.ts: {type: 'anvil', id, op, a} answered by
 *    {type: 'anvil', id, r}), so N processes do not let a client reach N times a limit.
 *  - TLS session tickets: every child of one master encrypts them with the same keys (the
 *    request's `ticketKeys`, lib-tls setServerTicketKeys), so a session resumes in any child.
 *  - pids() lists the live child's pid, for `postern status`.
 */
import { addTlsReloadForwarder } from '../lib-tls/tls-provider.ts';
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { onTrigger, trigger } from '../global/mail-trigger.ts';
import { handOff } from './master-listen.ts';
import type { RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import { forwardLogLines } from './master-maillog.ts';
import { metrics, type MetricsSnapshot } from '../util/metrics.ts';
import { answerAnvil, type AnvilRequest } from './master-anvil.ts';

const CHILD = new URL('./master-process-child.ts', import.meta.url);
/**
 * The Node flags of every Postern process (bin/node-flags, which bin/postern passes to the
 * master): a child must run with the same ones (V8's young generation size among them: without
 * it a busy child's RSS grows by ~150 MB).
 */
function childExecArgv(): string[] {
  let flags: string[] = [];
  try {
    flags = readFileSync(new URL('../../bin/node-flags', import.meta.url), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  } catch { /* an installation without the file: Node's defaults */ }
  return [...new Set(['--disable-warning=ExperimentalWarning', ...flags])];
}
/** How long stop() waits for the child to finish its sessions before SIGKILL. */
export const STOP_KILL_MS = 35_000;

/** What a child runs: one such request per service instance. */
export interface ProcessRequest {
  configDir: string;
  /** Module path relative to src/master/, exporting `service: ServiceImpl`. */
  module: string;
  entry: ServiceContext['entry'];
  /** master.cf as the master parsed it: the child does not read it again. */
  masterCf: ServiceContext['masterCf'];
  protocol?: string;
  /** The service name the child logs as ("smtpd", "submission/smtpd"). */
  logName: string;
  listeners: { kind: 'inet' | 'unix'; name: string; ssl: boolean; address: string }[];
  /** A process of this service's own (exits when it stops); unset for a pool worker. */
  single?: boolean;
  /** TLS session ticket keys (base64 of 48 bytes), the same for every child of this master. */
  ticketKeys?: string;
}

/** Made once per master: every child's server contexts share them (lib-tls setServerTicketKeys). */
let ticketKeys: string | undefined;

/** Messages child → master. */
export type ChildMessage =
  | { type: 'started'; sid: number }
  | { type: 'failed'; sid: number; error: string }
  | { type: 'accept'; sid: number; l: number }
  | { type: 'stopped'; sid: number }
  | { type: 'trigger'; service: string; what: string }
  | { type: 'metrics'; id: number; snap: MetricsSnapshot }
  | AnvilRequest;

/** A child process ended (or gave up): what Postfix's master logs about a dead daemon. */
export class ProcessExitError extends Error {
  override name = 'ProcessExitError';
  readonly pid: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  constructor(message: string, pid: number, code: number | null, signal: NodeJS.Signals | null) {
    super(message);
    this.pid = pid;
    this.code = code;
    this.signal = signal;
  }

  /** Postfix master_spawn.c: "exit status N" or "killed by signal N". */
  get status(): string {
    if (this.signal) return `killed by signal ${signalNumber(this.signal)}`;
    return `exit status ${this.code ?? 1}`;
  }
}

const SIGNALS: Readonly<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };
function signalNumber(s: NodeJS.Signals): number | string { return SIGNALS[s] ?? s; }

/** A forked child and what every user of one needs. */
export interface ForkedChild {
  proc: ChildProcess;
  pid: number;
  /** Resolves when the process has exited (code, signal). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** performance.now() at fork. */
  startedAt: number;
  alive(): boolean;
  /** Send if the channel is open; false otherwise. */
  post(m: object, handle?: Socket, cb?: (err: Error | null) => void): boolean;
}

/**
 * Fork master-process-child.ts with everything a child needs from the master: its log lines
 * forwarded, its metrics asked for at each scrape (and its final ones kept), certificate
 * reloads passed on, anvil questions answered. Other messages go to `onMessage`.
 */
export function forkChild(name: string, log: { warn(s: string): void }, onMessage: (m: ChildMessage) => void): ForkedChild {
  const proc = fork(CHILD, [], {
    execArgv: childExecArgv(),
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  const pid = proc.pid ?? 0;
  forwardLogLines(proc.stderr);
  // IPC errors (a send to a child that just died) are reported through 'exit'.
  proc.on('error', (e) => { log.warn(`${name} process ${pid}: ${e.message}`); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const post = (m: object, handle?: Socket, cb?: (err: Error | null) => void): boolean => {
    if (!proc.connected) return false;
    try {
      if (handle) proc.send(m, handle, cb ?? (() => undefined));
      else proc.send(m, cb ?? (() => undefined));
      return true;
    } catch {
      return false;
    }
  };
  // The child's metrics, asked for at each scrape (util/metrics.ts sources). The last snapshot
  // seen (the child sends a final one when it stops) is retired when it exits, so a restart
  // does not take its counts away.
  let asked = 0;
  const waiting = new Map<number, (s: MetricsSnapshot | undefined) => void>();
  let last: MetricsSnapshot | undefined;
  const offMetrics = metrics.addSource(() => new Promise((resolve) => {
    if (!proc.connected) { resolve(undefined); return; }
    const id = ++asked;
    const t = setTimeout(() => { waiting.delete(id); resolve(undefined); }, 2000);
    waiting.set(id, (s) => { clearTimeout(t); waiting.delete(id); if (s) last = s; resolve(s); });
    post({ type: 'metrics', id });
  }));
  // New certificates (postern reload, ACME): the child re-reads its own (tls-provider.ts).
  const offTls = addTlsReloadForwarder(() => { post({ type: 'tls-reload' }); });
  proc.once('exit', () => {
    offTls();
    offMetrics();
    for (const f of [...waiting.values()]) f(undefined);
    if (last) metrics.retire(last);
  });
  proc.on('message', (m: ChildMessage) => {
    if (m.type === 'metrics') { if (m.id === 0) last = m.snap; else waiting.get(m.id)?.(m.snap); return; }
    if (m.type === 'anvil') {
      // The system's one anvil and auth penalty table (master-anvil.ts).
      const r = answerAnvil(m);
      if (m.id !== 0) post({ type: 'anvil', id: m.id, r });
      return;
    }
    onMessage(m);
  });
  return { proc, pid, exited, startedAt: performance.now(), alive: () => proc.exitCode === null && proc.signalCode === null, post };
}

/** The request for one instance of a service, from its context. */
export function processRequest(ctx: ServiceContext, module: string, maxproc: number): ProcessRequest {
  ticketKeys ??= randomBytes(48).toString('base64');
  return {
    ticketKeys,
    configDir: ctx.config.configDir, module, entry: { ...ctx.entry, maxproc }, masterCf: ctx.masterCf, logName: ctx.log.service,
    ...(ctx.protocol ? { protocol: ctx.protocol } : {}),
    listeners: ctx.listeners.map((l) => ({ kind: l.kind, name: l.name, ssl: l.ssl, address: l.address })),
  };
}

export function processed(name: string, module: string): ServiceImpl {
  return {
    name,
    async start(ctx: ServiceContext): Promise<RunningService> {
      const req: ProcessRequest = { ...processRequest(ctx, module, ctx.entry.maxproc), single: true };
      let running = false;
      let stopping = false;
      let reported = false;
      const report = (err: ProcessExitError) => {
        if (!running || stopping || reported) return;
        reported = true;
        ctx.failed(err);
      };
      let failure: string | undefined;
      const accepts = new Set<number>();
      let resolveStart: () => void = () => undefined;
      let rejectStart: (e: Error) => void = () => undefined;
      const started = new Promise<void>((res, rej) => { resolveStart = res; rejectStart = rej; });
      const child = forkChild(name, ctx.log, (m) => {
        if (m.type === 'started') resolveStart();
        else if (m.type === 'accept') {
          if (!accepts.has(m.l)) { accepts.add(m.l); ctx.listeners[m.l]?.accept(route(m.l)); }
        } else if (m.type === 'trigger') {
          if (m.service !== name) trigger(m.service, m.what);
        } else if (m.type === 'failed') {
          failure = m.error;
          const err = new ProcessExitError(m.error, child.pid, 1, null);
          rejectStart(err);
          report(err);
        }
      });
      const route = (l: number) => handOff((sock: Socket) => {
        // The handle goes to the child; on a send error (the child just died) the connection
        // is closed: the client retries, as after any daemon crash.
        if (!child.alive() || !child.post({ type: 'conn', sid: 0, l }, sock, (err) => { if (err) sock.destroy(); })) sock.destroy();
      });
      void child.exited.then(({ code, signal }) => {
        const why = failure ?? (signal ? `${name} process ${child.pid} killed by ${signal}` : `${name} process ${child.pid} exited with status ${code}`);
        report(new ProcessExitError(why, child.pid, failure && code === 0 ? 1 : code, signal));
        rejectStart(new Error(failure ?? `${name} process ${child.pid} exited during start-up`));
      });
      child.post({ type: 'request', sid: 0, req });
      const offTrigger = onTrigger(name, (what) => { child.post({ type: 'trigger', service: name, what }); });
      try {
        await started;
      } catch (err) {
        stopping = true;
        offTrigger();
        if (child.alive()) child.proc.kill('SIGKILL');
        throw err;
      }
      running = true;
      return {
        pids: () => (child.alive() ? [child.pid] : []),
        async stop() {
          stopping = true;
          offTrigger();
          if (!child.alive()) return;
          if (!child.post({ type: 'stop', sid: 0 }, undefined, (err) => { if (err) child.proc.kill('SIGTERM'); })) child.proc.kill('SIGTERM');
          const t = setTimeout(() => { child.proc.kill('SIGKILL'); }, STOP_KILL_MS);
          await child.exited;
          clearTimeout(t);
        },
        wakeup() { child.post({ type: 'wakeup', sid: 0 }); },
      };
    },
  };
}
