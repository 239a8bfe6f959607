/**
 * master - the supervisor (Postfix master(8)): reads the configuration, binds every service's
 * sockets, starts the services, restarts the ones that fail, reloads on request and stops them
 * all gracefully.
 *
 * DESCRIPTION
 *   start()  plan the services (master-plan.ts), report the ones Postern does not run, bind all
 *            sockets first (so a port conflict stops the start before any service runs), then
 *            start each service with its ServiceContext (lib-master/master-service.ts).
 *   reload() re-read main.cf, master.cf and dovecot.conf (Postfix `postfix reload`). A service
 *            whose configuration did not change keeps running untouched. A changed one is given
 *            its new context through reload(ctx) when it has one; otherwise a new instance is
 *            started and the old one stopped (it finishes its sessions). Sockets whose address did
 *            not change stay bound throughout; new ones are bound before anything is torn down.
 *            A configuration error keeps the running configuration and is logged. Then every
 *            service's TLS certificate files are re-read (lib-tls/tls-provider.ts), changed
 *            configuration or not.
 *   stop()   stop routing connections, close the listening sockets, ask every service to stop,
 *            wait up to stopTimeout.
 *   failure  a service that calls ctx.failed(err) or whose start() rejects is logged as Postfix
 *            logs a daemon's exit ("warning: process postern/smtpd pid N exit status 1") and
 *            started again after a backoff that doubles from restartDelay up to
 *            service_throttle_time (Postfix's default 60s); after running that long without
 *            failing, the backoff starts over.
 *   wakeup   services with a master.cf wakeup time get wakeup() every that many seconds.
 *
 * PLACEMENT
 *   Each service runs in the master's process, a worker thread or a child process of its own
 *   (postern_process_mode, master-mode.ts; master-thread.ts, master-process.ts). The sockets
 *   stay the master's in every mode; a child gets each accepted connection over IPC.
 *   With `statusFile`, the list of services with their mode and pids is kept there for
 *   `postern status` (master-status.ts).
 *
 * SECURITY
 *   The master binds the sockets (privileged ports as root); privilege separation (running a
 *   service as another user, master.cf `unpriv`) is not done yet: children run as the master's user.
 *
 * PARAMETERS
 *   queue_directory, process_id_directory (pid file, unix sockets), inet_interfaces,
 *   inet_protocols (listening addresses), default_process_limit (maxproc "-"),
 *   service_throttle_time (longest restart delay), syslog_name, postern_process_mode and
 *   postern_process_count (where each service runs), postern_idle_memory_release (util/idle-gc.ts:
 *   memory given back when the master's thread is quiet).
 *
 * DIAGNOSTICS
 *   "daemon started -- version V, configuration DIR", "reload -- version V, configuration DIR",
 *   "terminating on signal 15" as Postfix's master logs them.
 */
import { flushCompileCache } from 'node:module';
import type { Socket } from 'node:net';
import { logger, type Logger } from '../util/msg.ts';
import { reloadTlsContexts } from '../lib-tls/tls-provider.ts';
import type { MainConfig } from '../global/mail-conf.ts';
import type { MasterConfigSet } from './master-config.ts';
import { bindListen, type BoundSocket } from './master-listen.ts';
import { listenIdentity, planServices, type Plan, type ServicePlan } from './master-plan.ts';
import type { BoundListener, RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import { SERVICES, type ServiceRegistry } from './master-services.ts';
import { SERVICE_MODULES, serviceImpl, serviceMode, type ProcessMode } from './master-mode.ts';
import { ProcessExitError } from './master-process.ts';
import { writeServiceStatus, type ServiceStatus } from './master-status.ts';
import { sharedAuthPenalty } from '../anvil/auth-penalty.ts';
import { configureSharedAnvil, sharedAnvil } from '../anvil/anvil.ts';
import { applyMaillog } from './master-maillog.ts';
import { idleMemoryRelease } from '../util/idle-gc.ts';

export const POSTERN_VERSION = '0.1.0';

export interface MasterOptions {
  configDir: string;
  /** Reads the configuration; called by start() and each reload(). */
  load: () => MasterConfigSet;
  registry?: ServiceRegistry;
  /**
   * Implementation → module path (relative to src/master/) for the thread and process modes;
   * default SERVICE_MODULES with the default registry, none with a custom one.
   */
  modules?: Readonly<Record<string, string>>;
  /** Where to keep the list of services and their pids for `postern status` (master-status.ts). */
  statusFile?: string;
  log?: Logger;
  /** First restart delay in ms (default 1000); doubles per consecutive failure. */
  restartDelay?: number;
  /** How long stop() waits for services to finish, in ms (default 30000). */
  stopTimeout?: number;
}

/** One running instance of a service (a "process" in Postfix terms). */
interface Instance {
  slot: Slot;
  ctx: ServiceContext;
  running?: RunningService;
  handlers: Map<BoundSocket, (s: Socket) => void>;
  /** performance.now() at start: a lifetime is an interval, on the monotonic clock (a wall clock may step). */
  startedAt: number;
  dead: boolean;
}

interface Slot {
  plan: ServicePlan;
  /** postern_process_mode resolved (master-mode.ts). */
  mode: ProcessMode;
  sockets: BoundSocket[];
  impl?: ServiceImpl;
  current?: Instance;
  failures: number;
  restartTimer?: NodeJS.Timeout;
  wakeupTimer?: NodeJS.Timeout;
  removed: boolean;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `-o syslog_name=postfix/submission` → logger 'submission/smtpd' (postern/submission/smtpd[pid]). */
function serviceLogger(plan: ServicePlan, config: MainConfig): Logger {
  const sn = plan.entry.overrides['syslog_name'];
  if (sn === undefined) return logger(plan.impl);
  const expanded = config.get('syslog_name');
  const rest = expanded.includes('/') ? expanded.slice(expanded.indexOf('/') + 1) : '';
  return logger(rest ? `${rest}/${plan.impl}` : plan.impl);
}

export class Master {
  private readonly o: Required<Omit<MasterOptions, 'log' | 'statusFile'>> & { log: Logger; statusFile?: string };
  private cfg: MasterConfigSet | undefined;
  private readonly slots = new Map<string, Slot>();
  private readonly sockets = new Map<string, BoundSocket>();
  private queue: Promise<unknown> = Promise.resolve();
  private stopping = false;

  constructor(o: MasterOptions) {
    this.o = {
      registry: SERVICES, modules: o.registry ? {} : SERVICE_MODULES, restartDelay: 1000, stopTimeout: 30_000, log: logger('master'), ...o,
    } as Required<Omit<MasterOptions, 'log' | 'statusFile'>> & { log: Logger; statusFile?: string };
  }

  /** Run `fn` after every earlier start/reload/stop has finished. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Start everything. Throws ConfigError / ListenError (nothing is left running then). */
  start(): Promise<void> {
    return this.serial(async () => {
      const cfg = this.o.load();
      const plan = planServices(cfg, this.o.registry);
      applyMaillog(cfg.main);               // maillog_file: the log lines from here on go there too
      configureSharedAnvil(cfg.main);       // anvil_rate_time_unit of the one table (master-anvil.ts)
      idleMemoryRelease(cfg.main.time('postern_idle_memory_release') * 1000);   // docs/memory.md
      this.report(plan);
      const slots: Slot[] = [];
      try {
        for (const p of plan.services) slots.push(await this.makeSlot(p, cfg));
      } catch (err) {
        await this.closeUnused(new Set());
        throw err;
      }
      this.cfg = cfg;
      for (const s of slots) this.slots.set(s.plan.key, s);
      await Promise.all(slots.map((s) => this.startInstance(s)));
      this.writeStatus();
      this.o.log.info(`daemon started -- version ${POSTERN_VERSION}, configuration ${cfg.configDir}`);
      flushCompileCache?.();   // the modules loaded so far, compiled, for the next start (bin/postern)
    });
  }

  /** Re-read the configuration and apply it (see the header). Never throws. */
  reload(): Promise<void> {
    return this.serial(async () => {
      if (this.stopping) return;
      let cfg: MasterConfigSet;
      let plan: Plan;
      try {
        cfg = this.o.load();
        plan = planServices(cfg, this.o.registry);
        applyMaillog(cfg.main);             // reopened: `postern logrotate` renamed the old one
        configureSharedAnvil(cfg.main);
        idleMemoryRelease(cfg.main.time('postern_idle_memory_release') * 1000);
      } catch (err) {
        this.o.log.error(`reload failed: ${errText(err)}; keeping the running configuration`);
        return;
      }
      this.o.log.info(`reload -- version ${POSTERN_VERSION}, configuration ${cfg.configDir}`);
      this.report(plan);
      this.cfg = cfg;
      const keep = new Set<string>();
      for (const p of plan.services) {
        keep.add(p.key);
        const old = this.slots.get(p.key);
        if (old && old.plan.fingerprint === p.fingerprint) continue;
        let slot: Slot;
        try {
          slot = await this.makeSlot(p, cfg);
        } catch (err) {
          this.o.log.error(`reload: ${p.key}: ${errText(err)}; ${old ? 'keeping the old service' : 'not started'}`);
          continue;
        }
        const oldInstance = old?.current;
        if (old) this.retire(old, false);
        this.slots.set(p.key, slot);
        if (oldInstance?.running?.reload && old && sameSockets(old, slot) && old.mode === slot.mode) {
          // Same sockets: hand the running instance its new context.
          slot.impl = old.impl;
          oldInstance.slot = slot;
          oldInstance.ctx = this.context(slot, oldInstance);
          slot.current = oldInstance;
          this.route(oldInstance);
          this.armWakeup(slot);
          try {
            await oldInstance.running.reload(oldInstance.ctx);
          } catch (err) {
            this.fail(oldInstance, err, false);
          }
          continue;
        }
        if (oldInstance && p.entry.maxproc === 1) {
          // A service master.cf limits to one process (qmgr, pickup, ...) owns its queue
          // state alone: the new one starts only after the old one stopped. (qmgr started
          // beside its predecessor moved active/ back to incoming/ while the old one was
          // delivering from it: a message delivered twice.)
          await this.stopInstance(oldInstance);
          await this.startInstance(slot);
        } else {
          await this.startInstance(slot);
          if (oldInstance) void this.stopInstance(oldInstance);
        }
      }
      for (const [key, slot] of this.slots) {
        if (keep.has(key)) continue;
        this.slots.delete(key);
        this.retire(slot, true);
      }
      await this.closeUnused(this.socketsInUse());
      this.writeStatus();
      // Certificates are files, not configuration: re-read them even for services whose
      // configuration did not change; new handshakes get the new certificate (tls-provider.ts).
      reloadTlsContexts();
    });
  }

  /** Stop every service gracefully; resolves when they have stopped or stopTimeout passed. */
  stop(): Promise<void> {
    return this.serial(async () => {
      if (this.stopping) return;
      this.stopping = true;
      const instances: Instance[] = [];
      for (const slot of this.slots.values()) {
        if (slot.current) instances.push(slot.current);
        this.retire(slot, false);
      }
      this.slots.clear();
      await this.closeUnused(new Set());
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), this.o.stopTimeout); });
      const pending = new Set(instances);
      const all = Promise.all(instances.map((i) => this.stopInstance(i).finally(() => pending.delete(i))));
      const r = await Promise.race([all, timeout]);
      clearTimeout(timer);
      if (r === 'timeout') {
        this.o.log.warn(`timeout waiting for services to stop: ${[...pending].map((i) => i.slot.plan.key).join(' ')}`);
      }
      this.writeStatus();
    });
  }

  /** What runs, for `postern status` (master-status.ts) and tests. */
  services(): (ServiceStatus & { failures: number; listeners: string[] })[] {
    return [...this.slots.values()].map((s) => {
      const r = s.current && !s.current.dead ? s.current.running : undefined;
      return {
        key: s.plan.key, impl: s.plan.impl, mode: s.mode, running: !!r,
        pids: r ? (r.pids ? r.pids() : [process.pid]) : [],
        failures: s.failures, listeners: s.sockets.flatMap((b) => b.servers.map((x) => x.address)),
      };
    });
  }

  /** Rewrite the status file (when configured); a failure is logged, never fatal. */
  private writeStatus(): void {
    if (!this.o.statusFile) return;
    try {
      writeServiceStatus(this.o.statusFile, this.stopping ? [] : this.services());
    } catch (err) {
      this.o.log.warn(`cannot write ${this.o.statusFile}: ${errText(err)}`);
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  private report(plan: Plan): void {
    if (plan.notImplemented.length) {
      this.o.log.warn(`master.cf: services not implemented by Postern, skipped: ${plan.notImplemented.join(' ')}`);
    }
    if (plan.notYetAvailable.length) {
      this.o.log.info(`services not available yet in this version of Postern, skipped: ${plan.notYetAvailable.join(' ')}`);
    }
  }

  /**
   * A slot with its sockets bound (reusing sockets already bound with the same identity).
   * Throws ConfigError for a bad postern_process_mode, before anything is bound.
   */
  private async makeSlot(plan: ServicePlan, cfg: MasterConfigSet): Promise<Slot> {
    const mode = serviceMode(plan, cfg.main.withOverrides(plan.entry.overrides), this.o.modules);
    const sockets: BoundSocket[] = [];
    for (const spec of plan.listens) {
      const id = listenIdentity(spec);
      let b = this.sockets.get(id);
      if (!b) {
        b = await bindListen(spec, this.o.log);
        this.sockets.set(id, b);
      }
      sockets.push(b);
    }
    return { plan, mode, sockets, failures: 0, removed: false };
  }

  private socketsInUse(): Set<BoundSocket> {
    const used = new Set<BoundSocket>();
    for (const s of this.slots.values()) for (const b of s.sockets) used.add(b);
    return used;
  }

  private async closeUnused(used: Set<BoundSocket>): Promise<void> {
    for (const [id, b] of this.sockets) {
      if (used.has(b)) continue;
      this.sockets.delete(id);
      await b.close();
    }
  }

  /** Detach a slot: no more restarts or wakeups; with `stopNow`, its instance is stopped too. */
  private retire(slot: Slot, stopNow: boolean): void {
    slot.removed = true;
    clearTimeout(slot.restartTimer);
    clearInterval(slot.wakeupTimer);
    for (const b of slot.sockets) b.setRoute(undefined);
    const inst = slot.current;
    slot.current = undefined;
    if (inst && stopNow) void this.stopInstance(inst);
  }

  private context(slot: Slot, inst: Instance): ServiceContext {
    const cfg = this.cfg!;
    const config = cfg.main.withOverrides(slot.plan.entry.overrides);
    const listeners: BoundListener[] = slot.sockets.flatMap((b) => b.servers.map(({ server, address }) => ({
      kind: b.spec.kind, name: b.spec.name, ssl: b.spec.ssl, address, server,
      accept: (handler: (s: Socket) => void) => {
        inst.handlers.set(b, handler);
        if (inst.slot.current === inst && !inst.dead) b.setRoute(handler);
      },
    })));
    return {
      config, entry: slot.plan.entry, masterCf: cfg.masterCf, dovecot: cfg.dovecot, log: serviceLogger(slot.plan, config), listeners,
      ...(slot.plan.protocol !== undefined ? { protocol: slot.plan.protocol } : {}),
      authPenalty: sharedAuthPenalty().configure(cfg.dovecot),
      anvil: sharedAnvil(),
      failed: (err: unknown) => this.fail(inst, err, false),
      changed: () => this.writeStatus(),
    };
  }

  /** Point the slot's sockets at this instance's handlers (held connections wait otherwise). */
  private route(inst: Instance): void {
    for (const b of inst.slot.sockets) b.setRoute(inst.handlers.get(b));
  }

  private async startInstance(slot: Slot): Promise<void> {
    if (slot.removed || this.stopping) return;
    const inst: Instance = { slot, ctx: undefined as unknown as ServiceContext, handlers: new Map(), startedAt: performance.now(), dead: false };
    inst.ctx = this.context(slot, inst);
    slot.current = inst;
    this.route(inst);
    try {
      slot.impl ??= await serviceImpl(slot.plan, slot.mode, this.o.registry, this.o.modules, inst.ctx.config);
      inst.running = await slot.impl.start(inst.ctx);
    } catch (err) {
      this.fail(inst, err, true);
      return;
    }
    if (inst.dead || slot.current !== inst) {   // failed() during start, or retired meanwhile
      void this.stopInstance(inst);
      return;
    }
    this.armWakeup(slot);
    this.writeStatus();
  }

  private armWakeup(slot: Slot): void {
    clearInterval(slot.wakeupTimer);
    const secs = slot.plan.entry.wakeup;
    if (secs > 0) {
      slot.wakeupTimer = setInterval(() => {
        const r = slot.current?.running;
        try { r?.wakeup?.(); } catch (err) { this.o.log.warn(`${slot.plan.key}: wakeup: ${errText(err)}`); }
      }, secs * 1000);
      slot.wakeupTimer.unref();
    }
  }

  private async stopInstance(inst: Instance): Promise<void> {
    inst.dead = true;
    try {
      await inst.running?.stop();
    } catch (err) {
      this.o.log.warn(`${inst.slot.plan.key}: stop: ${errText(err)}`);
    }
  }

  /** Postfix master_spawn.c: log the "exit", throttle, restart. */
  private fail(inst: Instance, err: unknown, startup: boolean): void {
    const slot = inst.slot;
    if (inst.dead || slot.current !== inst) return;
    inst.dead = true;
    slot.current = undefined;
    for (const b of slot.sockets) b.setRoute(undefined);
    clearInterval(slot.wakeupTimer);
    void this.stopInstance(inst);
    const impl = `postern/${slot.plan.impl}`;
    this.o.log.warn(`${slot.plan.key}: ${slot.plan.impl}: ${errText(err)}`);
    // A child process (master-process.ts) reports its own pid and how it ended; a service in
    // the master's process or a thread "exits" with the master's pid.
    if (err instanceof ProcessExitError) this.o.log.warn(`process ${impl} pid ${err.pid} ${err.status}`);
    else this.o.log.warn(`process ${impl} pid ${process.pid} exit status 1`);
    this.writeStatus();
    if (slot.removed || this.stopping) return;
    const throttleMs = this.throttleMs();
    if (performance.now() - inst.startedAt >= throttleMs) slot.failures = 0;
    slot.failures++;
    const delay = Math.min(this.o.restartDelay * 2 ** (slot.failures - 1), throttleMs);
    const secs = delay >= 1000 ? `${Math.round(delay / 1000)}s` : `${delay}ms`;
    if (startup) this.o.log.warn(`${impl}: bad command startup -- throttling for ${secs}`);
    else this.o.log.warn(`${impl}: restarting in ${secs}`);
    slot.restartTimer = setTimeout(() => { void this.startInstance(slot); }, delay);
  }

  private throttleMs(): number {
    try {
      const t = this.cfg?.main.time('service_throttle_time');
      if (t !== undefined && Number.isFinite(t) && t > 0) return t * 1000;
    } catch { /* unknown parameter: Postfix's default */ }
    return 60_000;
  }
}

function sameSockets(a: Slot, b: Slot): boolean {
  return a.sockets.length === b.sockets.length && a.sockets.every((s, i) => s === b.sockets[i]);
}
