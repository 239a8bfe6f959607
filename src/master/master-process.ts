/**
 * master-process - run a service in a child process of its own (Postfix's model: every daemon
 * is a process of master(8)), so that it uses another core, and so that it can be killed, crash
 * or run out of memory alone (DESIGN.md §2 "master": in-process where speed matters, separate
 * processes to use every core and to drop privileges). Selected per master.cf entry with
 * `-o postern_process_mode=process` (master-mode.ts); the service's code does not change.
 *
 *   processed('smtpd', '../smtpd/smtpd-service.ts').start(ctx) → RunningService
 *
 * (one child; `-o postern_process_count=N` for N, see below).
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
 *    (`child.send({type: 'conn', l: i}, socket)`: SCM_RIGHTS under Node's handle passing). The
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
 *    the service's name to every live child ({type: 'trigger', what}), and a child's trigger
 *    that nobody in it listens to (an smtpd child's new queue ID for qmgr) comes to the master
 *    ({type: 'trigger', service, what}), which passes it on unless it names the child's own
 *    service.
 *  - wakeup() is forwarded; reload() is not offered, so a changed configuration starts a new
 *    child and then stops the old one (which finishes its sessions). New certificate files
 *    (`postern reload`, the ACME client) reach every child as {type: 'tls-reload'}: the child
 *    re-reads its TLS contexts as the master's own services do (lib-tls/tls-provider.ts).
 *  - The child's stderr (its log lines, `postern/smtpd[CHILD PID]: ...`) is read by the master
 *    and written to the master's stderr in whole lines, so two processes never interleave
 *    parts of lines in the log.
 *  - postern_process_count=N (master-mode.ts processCount(): default CPUs - 1, at most maxproc)
 *    forks N children: each accepted connection goes to the next live one (round robin), and
 *    each child gets maxproc/N (rounded up) of the session limit. With N > 1, a child that dies
 *    (or calls ctx.failed()) is replaced alone, as Postfix's master replaces a dead smtpd: the
 *    master logs "warning: process postern/smtpd pid 4321 killed by signal 9" and forks a new
 *    one after a backoff (1 s, doubling per consecutive failure up to service_throttle_time),
 *    while the other children keep serving and take every connection. When no child is left
 *    (all restarting), connections wait in the master up to 10 s for the first one back. With
 *    N = 1, the child's death is the service failing (the master's own restart and backoff).
 *  - pids() lists the live children's pids, for `postern status`.
 *  - anvil's per-client counts and the auth penalty are the master's one table, which every
 *    child asks over its IPC channel (master-anvil.ts: {type: 'anvil', id, op, a} answered by
 *    {type: 'anvil', id, r}), so N children do not let a client reach N times a limit.
 */
import { addTlsReloadForwarder } from '../lib-tls/tls-provider.ts';
import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { onTrigger, trigger } from '../global/mail-trigger.ts';
import { handOff } from './master-listen.ts';
import type { RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import { forwardLogLines } from './master-maillog.ts';
import { metrics, type MetricsSnapshot } from '../util/metrics.ts';
import { answerAnvil, type AnvilRequest } from './master-anvil.ts';
import { processCount } from './master-mode.ts';
import { logger } from '../util/msg.ts';

const CHILD = new URL('./master-process-child.ts', import.meta.url);
/** How long stop() waits for the child to finish its sessions before SIGKILL. */
const STOP_KILL_MS = 35_000;
/** How long a connection waits while every child is restarting, and how many may wait (as master-listen.ts). */
const HOLD_MS = 10_000;
const HOLD_MAX = 256;
const masterLog = logger('master');

/** The first IPC message: what the child runs. */
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
}

/** Messages child → master. */
export type ChildMessage =
  | { type: 'started' }
  | { type: 'failed'; error: string }
  | { type: 'accept'; l: number }
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

/** Copy a child's stderr to ours (and maillog_file) in whole lines. */
function forwardLines(child: ChildProcess): void {
  forwardLogLines(child.stderr);
}

/** One forked child and what the master knows of it. */
interface Child {
  proc: ChildProcess;
  pid: number;
  /** Listener indexes this child accepts on. */
  accepts: Set<number>;
  exited: Promise<void>;
  /** performance.now() at fork, for the restart backoff. */
  startedAt: number;
  alive(): boolean;
}

export function processed(name: string, module: string): ServiceImpl {
  return {
    name,
    async start(ctx: ServiceContext): Promise<RunningService> {
      const count = processCount(name, ctx.entry.maxproc, ctx.config);
      // maxproc limits the sessions of the service: shared out among its children.
      const maxproc = ctx.entry.maxproc === 0 ? 0 : Math.max(1, Math.ceil(ctx.entry.maxproc / count));
      const req: ProcessRequest = {
        configDir: ctx.config.configDir, module, entry: { ...ctx.entry, maxproc }, masterCf: ctx.masterCf, logName: ctx.log.service,
        ...(ctx.protocol ? { protocol: ctx.protocol } : {}),
        listeners: ctx.listeners.map((l) => ({ kind: l.kind, name: l.name, ssl: l.ssl, address: l.address })),
      };
      let running = false;
      let stopping = false;
      let reported = false;
      const report = (err: ProcessExitError) => {
        if (!running || stopping || reported) return;
        reported = true;
        ctx.failed(err);
      };
      const children: Child[] = [];
      /** Round-robin position per listener. */
      const next = new Map<number, number>();
      /** Connections that found no live child (all restarting): held until one accepts. */
      const pending = new Map<number, { sock: Socket; timer: NodeJS.Timeout }[]>();
      const pass = (c: Child, l: number, sock: Socket) => {
        // The handle goes to the child; on a send error (the child just died) the connection
        // is closed: the client retries, as after any daemon crash.
        try {
          c.proc.send({ type: 'conn', l }, sock, (err) => { if (err) sock.destroy(); });
        } catch {
          sock.destroy();
        }
      };
      const able = (l: number) => children.filter((c) => c.accepts.has(l) && c.alive() && c.proc.connected);
      const route = (l: number) => handOff((sock: Socket) => {
        const a = able(l);
        if (a.length === 0) {
          // Every child is down (a restart in progress): the connection waits, as in the master's
          // own listener (master-listen.ts), and goes to the first child that accepts again.
          const q = pending.get(l) ?? [];
          if (q.length >= HOLD_MAX || stopping) { sock.destroy(); return; }
          const timer = setTimeout(() => { pending.set(l, (pending.get(l) ?? []).filter((h) => h.sock !== sock)); sock.destroy(); }, HOLD_MS);
          timer.unref();
          q.push({ sock, timer });
          pending.set(l, q);
          return;
        }
        const i = (next.get(l) ?? 0) % a.length;
        next.set(l, i + 1);
        pass(a[i]!, l, sock);
      });
      const flushPending = (c: Child, l: number) => {
        const q = pending.get(l);
        if (!q?.length) return;
        pending.delete(l);
        for (const h of q) { clearTimeout(h.timer); if (!h.sock.destroyed) pass(c, l, h.sock); }
      };
      const routed = new Set<number>();

      const spawnChild = (): { child: Child; started: Promise<void> } => {
        const proc = fork(CHILD, [], {
          execArgv: ['--disable-warning=ExperimentalWarning'],
          stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
        });
        const pid = proc.pid ?? 0;
        forwardLines(proc);
        // IPC errors (a send to a child that just died) are reported through 'exit'.
        proc.on('error', (e) => { ctx.log.warn(`${name} process ${pid}: ${e.message}`); });
        proc.send({ type: 'request', req });
        let failure: string | undefined;
        const exited = new Promise<void>((resolve) => {
          proc.once('exit', (code, signal) => {
            const why = failure ?? (signal ? `${name} process ${pid} killed by ${signal}` : `${name} process ${pid} exited with status ${code}`);
            const err = new ProcessExitError(why, pid, failure && code === 0 ? 1 : code, signal);
            if (count > 1) respawn(child, err); else report(err);
            resolve();
          });
        });
        const child: Child = { proc, pid, accepts: new Set(), exited, startedAt: performance.now(), alive: () => proc.exitCode === null && proc.signalCode === null };
        // The child's metrics, asked for at each scrape (util/metrics.ts sources).
        let asked = 0;
        const waiting = new Map<number, (s: MetricsSnapshot | undefined) => void>();
        // The last snapshot seen (the child sends a final one when it stops) is retired when it
        // exits, so a restart does not take its counts away.
        let last: MetricsSnapshot | undefined;
        const offMetrics = metrics.addSource(() => new Promise((resolve) => {
          if (!proc.connected) { resolve(undefined); return; }
          const id = ++asked;
          const t = setTimeout(() => { waiting.delete(id); resolve(undefined); }, 2000);
          waiting.set(id, (s) => { clearTimeout(t); waiting.delete(id); if (s) last = s; resolve(s); });
          proc.send({ type: 'metrics', id }, () => undefined);
        }));
        // New certificates (postern reload, ACME): the child re-reads its own (tls-provider.ts).
        const offTls = addTlsReloadForwarder(() => { if (proc.connected) proc.send({ type: 'tls-reload' }, () => undefined); });
        proc.once('exit', () => {
          offTls();
          offMetrics();
          for (const f of [...waiting.values()]) f(undefined);
          if (last) metrics.retire(last);
        });
        const started = new Promise<void>((resolve, reject) => {
          proc.on('message', (m: ChildMessage) => {
            if (m.type === 'metrics') { if (m.id === 0) last = m.snap; else waiting.get(m.id)?.(m.snap); return; }
            if (m.type === 'anvil') {
              // The system's one anvil and auth penalty table (master-anvil.ts).
              const r = answerAnvil(m);
              if (m.id !== 0 && proc.connected) proc.send({ type: 'anvil', id: m.id, r }, () => undefined);
              return;
            }
            if (m.type === 'started') resolve();
            else if (m.type === 'accept') {
              child.accepts.add(m.l);
              if (!routed.has(m.l)) { routed.add(m.l); ctx.listeners[m.l]?.accept(route(m.l)); }
              flushPending(child, m.l);
            } else if (m.type === 'trigger') {
              if (m.service !== name) trigger(m.service, m.what);
            } else if (m.type === 'failed') {
              failure = m.error;
              const err = new ProcessExitError(m.error, pid, 1, null);
              reject(err);
              // One of N children cannot go on: it alone is stopped and replaced (respawn, on its exit).
              if (count > 1 && running && !stopping) { child.accepts.clear(); stopChild(child); } else report(err);
            }
          });
          void exited.then(() => reject(new Error(failure ?? `${name} process ${pid} exited during start-up`)));
        });
        children.push(child);
        return { child, started };
      };

      const offTrigger = onTrigger(name, (what) => {
        for (const c of children) if (c.alive() && c.proc.connected) c.proc.send({ type: 'trigger', what }, () => undefined);
      });
      /** Graceful: the child finishes its sessions and exits; SIGKILL after STOP_KILL_MS. */
      async function stopChild(c: Child): Promise<void> {
        if (!c.alive()) return;
        if (c.proc.connected) c.proc.send({ type: 'stop' }, (err) => { if (err) c.proc.kill('SIGTERM'); });
        else c.proc.kill('SIGTERM');
        const t = setTimeout(() => { c.proc.kill('SIGKILL'); }, STOP_KILL_MS);
        await c.exited;
        clearTimeout(t);
      }
      /**
       * One of N children ended on its own: Postfix's master logs the exit and starts another
       * process; the other children go on serving (and take the connections) meanwhile. The
       * delay doubles from 1 s per consecutive failure up to service_throttle_time, and starts
       * over once a child has run that long.
       */
      const throttleMs = (() => { try { const t = ctx.config.time('service_throttle_time'); return t > 0 ? t * 1000 : 60_000; } catch { return 60_000; } })();
      let failures = 0;
      const respawnTimers = new Set<NodeJS.Timeout>();
      function respawn(dead: Child, err: ProcessExitError): void {
        const i = children.indexOf(dead);
        if (i >= 0) children.splice(i, 1);
        if (!running || stopping) return;
        ctx.changed?.();
        const impl = `postern/${name}`;
        masterLog.warn(`process ${impl} pid ${err.pid} ${err.status}`);
        if (performance.now() - dead.startedAt >= throttleMs) failures = 0;
        failures++;
        const delay = Math.min(1000 * 2 ** (failures - 1), throttleMs);
        masterLog.warn(`${impl}: restarting one of ${count} processes in ${delay >= 1000 ? `${Math.round(delay / 1000)}s` : `${delay}ms`}`);
        const t = setTimeout(() => {
          respawnTimers.delete(t);
          if (!running || stopping) return;
          // A child that fails to start exits, which brings us back here with a longer delay.
          spawnChild().started.then(() => ctx.changed?.(), () => undefined);
        }, delay);
        respawnTimers.add(t);
      }
      const stopAll = async (): Promise<void> => {
        stopping = true;
        offTrigger();
        for (const t of respawnTimers) clearTimeout(t);
        respawnTimers.clear();
        for (const q of pending.values()) for (const h of q) { clearTimeout(h.timer); h.sock.destroy(); }
        pending.clear();
        await Promise.all(children.map(stopChild));
      };

      const starts = Array.from({ length: count }, () => spawnChild().started);
      try {
        await Promise.all(starts);
      } catch (err) {
        stopping = true;
        offTrigger();
        for (const c of children) if (c.alive()) c.proc.kill('SIGKILL');
        throw err;
      }
      running = true;
      return {
        pids: () => children.filter((c) => c.alive()).map((c) => c.pid),
        stop: stopAll,
        wakeup() { for (const c of children) if (c.proc.connected) c.proc.send({ type: 'wakeup' }, () => undefined); },
      };
    },
  };
}
