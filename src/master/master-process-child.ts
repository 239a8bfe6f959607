/**
 * master-process-child - the body of a child process forked by master-process.ts (one service
 * in a process of its own) or master-pool.ts (a worker process running an instance of every
 * service that shares the pool); the contracts are there. It builds each instance's
 * ServiceContext (main.cf and dovecot.conf from the configuration directory; master.cf's
 * entries as the request carries them), starts the service, takes the connections the master
 * passes, obeys stop/wakeup, and exits when the master goes away (Postfix daemons' "master
 * disconnect").
 *
 * Every instance is named by `sid`, a number the master chose. Messages master → child:
 * {type: 'request', sid, req}, {type: 'conn', sid, l} with a socket handle, {type: 'stop', sid},
 * {type: 'wakeup', sid}, {type: 'trigger', service, what}, {type: 'tls-reload'},
 * {type: 'metrics', id}, {type: 'anvil', id, r}, {type: 'exit'}. Child → master:
 * {type: 'started', sid}, {type: 'accept', sid, l}, {type: 'failed', sid, error},
 * {type: 'stopped', sid}, {type: 'trigger', service, what}, {type: 'metrics', id, snap},
 * {type: 'anvil', id, op, a} (master-anvil.ts).
 *
 * A child forked for one service (the request says `single`) exits once that service has
 * stopped; a pool worker exits on {type: 'exit'}, after stopping what it runs.
 */
import { reloadTlsContexts } from '../lib-tls/tls-provider.ts';
import { setServerTicketKeys } from '../lib-tls/tls-server.ts';
import { flushCompileCache } from 'node:module';
import { createServer, type Socket } from 'node:net';
import { MainConfig } from '../global/mail-conf.ts';
import { loadDovecotConf, type DovecotConfig } from '../global/dovecot-conf.ts';
import { authDictTypesFor } from '../lib-auth/dict-auth.ts';
import { flushLogs, logger, setSyslogName } from '../util/msg.ts';
import { setTriggerForwarder, trigger } from '../global/mail-trigger.ts';
import type { BoundListener, RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import type { ChildMessage, ProcessRequest } from './master-process.ts';
import { installRemoteAnvil, onAnvilReply, processAnvil, processAuthPenalty, type AnvilReply } from './master-anvil.ts';
import { metrics } from '../util/metrics.ts';
import { startRuntimeMetrics } from '../util/metrics-runtime.ts';
import { idleMemoryRelease } from '../util/idle-gc.ts';

const errText = (e: unknown) => (e instanceof Error ? (e.stack ?? e.message) : String(e));
const send = (m: ChildMessage) => { if (process.connected) process.send!(m); };

/** One service instance in this process. */
interface Instance {
  sid: number;
  name: string;
  log: ReturnType<typeof logger>;
  running?: RunningService;
  stopping: boolean;
  /** Connection handlers per listener index, set by the service's accept(). */
  handlers: Map<number, (s: Socket) => void>;
}

const instances = new Map<number, Instance>();
let single = false;
let exiting = false;
let setUp = false;
let log = logger('master');

/** Process-wide set-up, once: anvil through the master, triggers to the master, runtime metrics. */
function setUpProcess(req: ProcessRequest, main: MainConfig): void {
  if (setUp) return;
  setUp = true;
  if (main.isSet('syslog_name')) setSyslogName(main.get('syslog_name'));
  single = !!req.single;
  // The same TLS session ticket keys in every child of this master (a ticket resumes anywhere).
  if (req.ticketKeys) setServerTicketKeys(Buffer.from(req.ticketKeys, 'base64'));
  log = logger(single ? req.logName : 'worker');
  // What ps and top show (the command line may truncate it).
  process.title = single ? `postern/${req.logName}` : 'postern/worker';
  // anvil's counts and the auth penalty are the master's one table (master-anvil.ts).
  installRemoteAnvil((m) => { if (process.connected) process.send!(m); });
  // Triggers nobody in this process listens to go to the master (mail-trigger.ts).
  setTriggerForwarder((service, what) => { send({ type: 'trigger', service, what }); return true; });
  startRuntimeMetrics(single ? `${req.entry.service}-${process.pid}` : `worker-${process.pid}`);
  idleMemoryRelease(main.time('postern_idle_memory_release') * 1000);
}

async function start(sid: number, req: ProcessRequest): Promise<void> {
  let dc: DovecotConfig | undefined;
  const dovecot = () => (dc ??= loadDovecotConf(req.configDir));
  const main = MainConfig.load(req.configDir).withDictTypes(authDictTypesFor(dovecot));
  setUpProcess(req, main);
  const config = main.withOverrides(req.entry.overrides);
  const mod = await import(new URL(req.module, import.meta.url).href) as { service: ServiceImpl };
  const inst: Instance = { sid, name: mod.service.name, log: logger(req.logName), stopping: false, handlers: new Map() };
  instances.set(sid, inst);
  // `server` is a placeholder: the master owns (and listens on) the real socket.
  const placeholder = createServer();
  const listeners: BoundListener[] = req.listeners.map((l, i) => ({
    ...l, server: placeholder,
    accept: (h: (s: Socket) => void) => { inst.handlers.set(i, h); send({ type: 'accept', sid, l: i }); },
  }));
  const ctx: ServiceContext = {
    config, entry: req.entry, masterCf: req.masterCf, dovecot: dovecot(), log: inst.log, listeners,
    ...(req.protocol ? { protocol: req.protocol } : {}),
    authPenalty: processAuthPenalty(),
    anvil: processAnvil(config),
    failed: (err) => send({ type: 'failed', sid, error: errText(err) }),
  };
  inst.running = await mod.service.start(ctx);
  // Stopped while it was starting (a reload or stop right after the start): stop it now.
  if (inst.stopping) { await inst.running.stop().catch(() => undefined); return; }
  send({ type: 'started', sid });
  flushCompileCache?.();   // this service's modules are loaded: keep them for the next start (bin/postern)
}

async function stopInstance(inst: Instance): Promise<void> {
  if (inst.stopping) return;
  inst.stopping = true;
  // An instance still starting is stopped by start() once it has started.
  try { await inst.running?.stop(); } catch { /* logged by the service */ }
  // The pool may have started this sid again meanwhile (after a failure, master-pool.ts): the
  // new instance is not the one that stopped, and the master must not forget its listeners.
  if (instances.get(inst.sid) !== inst) return;
  instances.delete(inst.sid);
  send({ type: 'stopped', sid: inst.sid });
}

/** Stop everything and exit; the final counts go to the master first (it retires them). */
function exit(code: number): void {
  if (exiting) return;
  exiting = true;
  void Promise.all([...instances.values()].map(stopInstance)).finally(() => {
    const done = () => { flushLogs(); process.exit(code); };
    if (!process.connected) { done(); return; }
    const t = setTimeout(done, 1000);
    process.send!({ type: 'metrics', id: 0, snap: metrics.snapshot() } satisfies ChildMessage, () => { clearTimeout(t); done(); });
  });
}

interface MasterMessage { type: string; sid?: number; req?: ProcessRequest; l?: number; service?: string; what?: string; id?: number; r?: unknown }

process.on('message', (m: MasterMessage, handle?: Socket) => {
  switch (m.type) {
    case 'anvil':
      onAnvilReply(m as AnvilReply);
      break;
    case 'metrics':
      send({ type: 'metrics', id: m.id ?? 0, snap: metrics.snapshot() });
      break;
    case 'trigger':
      // For every instance of the named service here (a trigger names a service, not an instance).
      if ([...instances.values()].some((i) => i.name === m.service)) trigger(m.service!, m.what ?? '');
      break;
    case 'request': {
      const sid = m.sid ?? 0;
      start(sid, m.req!).catch((e) => {
        send({ type: 'failed', sid, error: errText(e) });
        if (single) {
          flushLogs();
          // Give the message time to leave before exiting.
          setTimeout(() => process.exit(1), 50);
        }
      });
      break;
    }
    case 'conn': {
      if (!handle) break;
      const inst = instances.get(m.sid ?? 0);
      const h = inst?.handlers.get(m.l ?? -1);
      if (!inst || !h || inst.stopping || exiting) { handle.destroy(); break; }
      try { h(handle); } catch (e) { inst.log.error(`connection handler: ${errText(e)}`); handle.destroy(); }
      break;
    }
    case 'wakeup':
      instances.get(m.sid ?? 0)?.running?.wakeup?.();
      break;
    case 'tls-reload':
      reloadTlsContexts();
      break;
    case 'stop': {
      const inst = instances.get(m.sid ?? 0);
      if (single) { exit(0); break; }
      if (inst) void stopInstance(inst);
      else send({ type: 'stopped', sid: m.sid ?? 0 });
      break;
    }
    case 'exit':
      exit(0);
      break;
  }
});

// The master is gone (killed, or exited): so are we, at once, as Postfix daemons on
// "master disconnect" — sessions in flight end; nothing acknowledged is lost (it is on disk).
process.on('disconnect', () => { flushLogs(); process.exit(1); });
// The log pipe to the master breaks when the master dies: not worth an error (the exit follows).
process.stderr.on('error', () => undefined);

// As in the master's own process (cli/postern-script.ts): one bug in one session must not take the
// other sessions down. ctx.failed() is the service's way to say it cannot go on.
process.on('uncaughtException', (e) => { log.error(`uncaught exception: ${errText(e)}`); });
process.on('unhandledRejection', (e) => { log.error(`uncaught exception: ${errText(e)}`); });
