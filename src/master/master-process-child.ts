/**
 * master-process-child - the body of a service child process forked by master-process.ts (the
 * contract is there): wait for the request, build the ServiceContext (main.cf and dovecot.conf
 * from the configuration directory, once; master.cf's entries as the request carries them),
 * start the service, take the connections the master passes, obey stop/wakeup, and
 * exit when the master goes away (Postfix daemons' "master disconnect").
 *
 * Messages master → child: {type: 'request', req}, {type: 'conn', l} with a socket handle,
 * {type: 'stop'}, {type: 'wakeup'}, {type: 'trigger', what}, {type: 'tls-reload'}, {type: 'anvil', id, r}.
 * Child → master: {type: 'started'}, {type: 'accept', l}, {type: 'failed', error},
 * {type: 'trigger', service, what}, {type: 'anvil', id, op, a} (master-anvil.ts).
 */
import { reloadTlsContexts } from '../lib-tls/tls-provider.ts';
import { flushCompileCache } from 'node:module';
import { createServer, type Socket } from 'node:net';
import { MainConfig } from '../global/mail-conf.ts';
import { loadDovecotConf, type DovecotConfig } from '../global/dovecot-conf.ts';
import { authDictTypesFor } from '../lib-auth/dict-auth.ts';
import { flushLogs, logger, setSyslogName } from '../util/msg.ts';
import { setTriggerForwarder, trigger } from '../global/mail-trigger.ts';
import type { BoundListener, RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import type { ChildMessage, ProcessRequest } from './master-process.ts';
import { installRemoteAnvil, onAnvilReply, processAuthPenalty, type AnvilReply } from './master-anvil.ts';
import { metrics } from '../util/metrics.ts';
import { startRuntimeMetrics } from '../util/metrics-runtime.ts';
import { idleMemoryRelease } from '../util/idle-gc.ts';

const errText = (e: unknown) => (e instanceof Error ? (e.stack ?? e.message) : String(e));
const send = (m: ChildMessage) => { if (process.connected) process.send!(m); };

let running: RunningService | undefined;
let log = logger('master');
let stopping = false;
let serviceName = '';
/** Connection handlers per listener index, set by the service's accept(). */
const handlers = new Map<number, (s: Socket) => void>();

async function start(req: ProcessRequest): Promise<void> {
  let dc: DovecotConfig | undefined;
  const dovecot = () => (dc ??= loadDovecotConf(req.configDir));
  const main = MainConfig.load(req.configDir).withDictTypes(authDictTypesFor(dovecot));
  if (main.isSet('syslog_name')) setSyslogName(main.get('syslog_name'));
  log = logger(req.logName);
  process.title = `postern/${req.logName}`;   // what ps and top show (the command line may truncate it)
  const config = main.withOverrides(req.entry.overrides);
  // anvil's counts and the auth penalty are the master's one table (master-anvil.ts).
  installRemoteAnvil((m) => { if (process.connected) process.send!(m); });
  const mod = await import(new URL(req.module, import.meta.url).href) as { service: ServiceImpl };
  // `server` is a placeholder: the master owns (and listens on) the real socket.
  const placeholder = createServer();
  const listeners: BoundListener[] = req.listeners.map((l, i) => ({
    ...l, server: placeholder,
    accept: (h: (s: Socket) => void) => { handlers.set(i, h); send({ type: 'accept', l: i }); },
  }));
  const ctx: ServiceContext = {
    config, entry: req.entry, masterCf: req.masterCf, dovecot: dovecot(), log, listeners,
    ...(req.protocol ? { protocol: req.protocol } : {}),
    authPenalty: processAuthPenalty(),
    failed: (err) => send({ type: 'failed', error: errText(err) }),
  };
  // Triggers nobody in this process listens to go to the master (mail-trigger.ts).
  setTriggerForwarder((service, what) => { send({ type: 'trigger', service, what }); return true; });
  serviceName = mod.service.name;
  startRuntimeMetrics(`${req.entry.service}-${process.pid}`);
  idleMemoryRelease(config.time('postern_idle_memory_release') * 1000);
  running = await mod.service.start(ctx);
  send({ type: 'started' });
  flushCompileCache?.();   // this service's modules are loaded: keep them for the next start (bin/postern)
}

function stop(code: number): void {
  if (stopping) return;
  stopping = true;
  const r = running;
  void (r ? r.stop() : Promise.resolve()).catch(() => undefined).finally(() => {
    const exit = () => { flushLogs(); process.exit(code); };
    // The final counts go to the master before the exit (master-process.ts retires them).
    if (!process.connected) { exit(); return; }
    const t = setTimeout(exit, 1000);
    process.send!({ type: 'metrics', id: 0, snap: metrics.snapshot() } satisfies ChildMessage, () => { clearTimeout(t); exit(); });
  });
}

process.on('message', (m: { type: string; req?: ProcessRequest; l?: number; what?: string; id?: number; r?: unknown }, handle?: Socket) => {
  switch (m.type) {
    case 'anvil':
      onAnvilReply(m as AnvilReply);
      break;
    case 'metrics':
      send({ type: 'metrics', id: m.id ?? 0, snap: metrics.snapshot() });
      break;
    case 'trigger':
      if (serviceName) trigger(serviceName, m.what ?? '');
      break;
    case 'request':
      start(m.req!).catch((e) => {
        send({ type: 'failed', error: errText(e) });
        flushLogs();
        // Give the message time to leave before exiting.
        setTimeout(() => process.exit(1), 50);
      });
      break;
    case 'conn': {
      if (!handle) break;
      const h = handlers.get(m.l ?? -1);
      if (!h || stopping) { handle.destroy(); break; }
      try { h(handle); } catch (e) { log.error(`connection handler: ${errText(e)}`); handle.destroy(); }
      break;
    }
    case 'wakeup':
      running?.wakeup?.();
      break;
    case 'tls-reload':
      reloadTlsContexts();
      break;
    case 'stop':
      stop(0);
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
