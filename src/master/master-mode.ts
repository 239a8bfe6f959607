/**
 * master-mode - where a service runs: `postern_process_mode` (a Postern parameter, set in main.cf
 * for every service or per master.cf entry with `-o postern_process_mode=...`):
 *
 *   inline   in the master's process (the fastest hand-off; one core for everything so placed)
 *   thread   in a worker thread of the master's process (master-thread.ts): its own core,
 *            shared memory limit, dies with the master
 *   process  in a child process of its own (master-process.ts): its own core, killable and
 *            restartable alone, its own pid in the log and in `postern status`
 *   (empty)  the service's default: qmgr `thread` (delivery on the second core); smtpd, imapd,
 *            pop3d and lmtpd `process` when postern_process_count (default: CPUs - 1) is above
 *            1, so that they use every core; every other service `inline`
 *
 * Only services that are a module of their own can move out of the master (SERVICE_MODULES);
 * cleanup, trivial-rewrite, bounce and the delivery agents are libraries of smtpd/pickup/qmgr
 * and run wherever those run: a mode set on them is refused with a ConfigError that says so.
 * A worker thread gets no connections (master-thread.ts): only the services that accept none
 * (THREAD_SERVICES: qmgr, pickup) may run in one. `thread` on smtpd, qmgr's neighbours that
 * serve clients (imapd, pop3d, lmtpd, managesieve, qmqpd) would start a service that never
 * answers: refused at start and at reload with a ConfigError naming the service and the setting.
 */
import { ConfigError } from '../global/config-error.ts';
import type { MainConfig } from '../global/mail-conf.ts';
import type { ServicePlan } from './master-plan.ts';
import type { ServiceImpl } from '../lib-master/master-service.ts';
import type { ServiceRegistry } from './master-services.ts';

export type ProcessMode = 'inline' | 'thread' | 'process';
export const PROCESS_MODES: readonly ProcessMode[] = ['inline', 'thread', 'process'];

/** Implementation name → its module, relative to src/master/, exporting `service`. */
export const SERVICE_MODULES: Readonly<Record<string, string>> = {
  smtpd: './master-smtpd.ts',
  qmgr: './master-agents.ts',
  pickup: './master-pickup.ts',
  qmqpd: './master-qmqpd.ts',
  imapd: '../imapd/imapd.ts',
  pop3d: '../pop3d/pop3d.ts',
  lmtpd: './master-lmtpd.ts',
  managesieve: '../managesieve/managesieve.ts',
};

/** The services that take no connections and so can run in a worker thread. */
export const THREAD_SERVICES: ReadonlySet<string> = new Set(['qmgr', 'pickup']);

/** Today's placement when postern_process_mode is empty. */
export const DEFAULT_MODES: Readonly<Record<string, ProcessMode>> = {
  qmgr: 'thread',
};

/**
 * The services spread over postern_process_count child processes by default (when the count is
 * above 1): the ones that serve clients and do the per-connection work.
 */
export const SPREAD_SERVICES: ReadonlySet<string> = new Set(['smtpd', 'imapd', 'pop3d', 'lmtpd']);
/** Upper bound of postern_process_count. */
export const MAX_PROCESS_COUNT = 64;

/**
 * How many child processes serve `impl` in process mode: postern_process_count (default from
 * the number of CPUs, mail-params-computed.ts), at most master.cf's maxproc (a process limit in
 * Postfix: qmgr's and pickup's 1), and 1 for the services that accept no connections.
 */
export function processCount(impl: string, maxproc: number, config: Pick<MainConfig, 'get'>): number {
  if (THREAD_SERVICES.has(impl)) return 1;
  const raw = config.get('postern_process_count').trim();
  let n = /^\d+$/.test(raw) ? Number(raw) : 1;
  n = Math.max(1, Math.min(MAX_PROCESS_COUNT, n));
  return maxproc > 0 ? Math.min(n, maxproc) : n;
}

/** The mode of one service; throws ConfigError for a bad value or an immovable service. */
export function serviceMode(plan: ServicePlan, config: MainConfig, modules: Readonly<Record<string, string>>): ProcessMode {
  const v = config.get('postern_process_mode').trim().toLowerCase();
  const perEntry = plan.entry.overrides['postern_process_mode'] !== undefined;
  const bad = (msg: string) => (perEntry
    ? new ConfigError(plan.entry.file, plan.entry.line, `-o postern_process_mode=${v}: ${msg}`)
    : new ConfigError(`${config.configDir}/main.cf`, 0, `postern_process_mode = ${v}: ${msg}`));
  const count = config.get('postern_process_count').trim();
  if (!/^\d+$/.test(count) || Number(count) < 1) {
    const msg = `not a number of processes (1 or more; at most ${MAX_PROCESS_COUNT} are used)`;
    throw plan.entry.overrides['postern_process_count'] !== undefined
      ? new ConfigError(plan.entry.file, plan.entry.line, `-o postern_process_count=${count}: ${msg}`)
      : new ConfigError(`${config.configDir}/main.cf`, 0, `postern_process_count = ${count}: ${msg}`);
  }
  if (v === '') {
    if (!modules[plan.impl]) return 'inline';
    // Spread over N children when N > 1; with N = 1 everything stays where it always ran.
    if (SPREAD_SERVICES.has(plan.impl) && processCount(plan.impl, plan.entry.maxproc, config) > 1) return 'process';
    return DEFAULT_MODES[plan.impl] ?? 'inline';
  }
  if (!(PROCESS_MODES as readonly string[]).includes(v)) {
    throw bad('not one of inline, thread, process');
  }
  if (v !== 'inline' && !modules[plan.impl]) {
    // main.cf's setting applies to the services that can move; an explicit -o on a library is an error.
    if (!perEntry) return 'inline';
    throw bad(`${plan.impl} cannot run in a ${v} of its own: it runs inside the smtpd, pickup or qmgr that uses it; remove the option`);
  }
  if (v === 'thread' && !THREAD_SERVICES.has(plan.impl)) {
    throw bad(`${plan.impl} cannot run in a worker thread: it accepts connections, which a thread is never given (only ${[...THREAD_SERVICES].join(' and ')} can); use process or inline`);
  }
  return v as ProcessMode;
}

/**
 * The implementation to start for `plan` in `mode`: in process mode, a process of its own when
 * processCount() is 1, else an instance in each of the N worker processes of master-pool.ts.
 */
export async function serviceImpl(plan: ServicePlan, mode: ProcessMode, registry: ServiceRegistry, modules: Readonly<Record<string, string>>,
  config: Pick<MainConfig, 'get'>): Promise<ServiceImpl> {
  if (mode === 'inline') return registry[plan.impl]!();
  const module = modules[plan.impl]!;
  if (mode === 'thread') return (await import('./master-thread.ts')).threaded(plan.impl, module);
  if (processCount(plan.impl, plan.entry.maxproc, config) > 1) return (await import('./master-pool.ts')).pooled(plan.impl, module);
  return (await import('./master-process.ts')).processed(plan.impl, module);
}
