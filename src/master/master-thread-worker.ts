/**
 * master-thread-worker - the body of a worker thread started by master-thread.ts: build the
 * ServiceContext (main.cf and dovecot.conf from the configuration directory, once; master.cf's
 * entries as the master passed them), start the service, obey stop/wakeup.
 */
import { reloadTlsContexts } from '../lib-tls/tls-provider.ts';
import { flushCompileCache } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import { MainConfig } from '../global/mail-conf.ts';
import { loadDovecotConf, type DovecotConfig } from '../global/dovecot-conf.ts';
import { authDictTypesFor } from '../lib-auth/dict-auth.ts';
import { logger } from '../util/msg.ts';
import { setTriggerForwarder, trigger } from '../global/mail-trigger.ts';
import type { RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import type { ThreadRequest } from './master-thread.ts';
import { sharedAuthPenalty } from '../anvil/auth-penalty.ts';
import { metrics } from '../util/metrics.ts';
import { startRuntimeMetrics } from '../util/metrics-runtime.ts';
import { idleMemoryRelease } from '../util/idle-gc.ts';

const req = workerData as ThreadRequest;
const port = parentPort!;
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

async function main(): Promise<void> {
  let dc: DovecotConfig | undefined;
  const dovecot = () => (dc ??= loadDovecotConf(req.configDir));
  const config = MainConfig.load(req.configDir).withDictTypes(authDictTypesFor(dovecot)).withOverrides(req.entry.overrides);
  const mod = await import(new URL(req.module, import.meta.url).href) as { service: ServiceImpl };
  const ctx: ServiceContext = {
    config, entry: req.entry, masterCf: req.masterCf, dovecot: dovecot(), log: logger(mod.service.name), listeners: [],
    ...(req.protocol ? { protocol: req.protocol } : {}),
    authPenalty: sharedAuthPenalty().configure(dovecot()),
    failed: (err) => port.postMessage({ type: 'failed', error: errText(err) }),
  };
  // Triggers nobody in this thread listens to go to the main thread (mail-trigger.ts).
  setTriggerForwarder((service, what) => { port.postMessage({ type: 'trigger', service, what }); return true; });
  startRuntimeMetrics(req.entry.service);
  idleMemoryRelease(config.time('postern_idle_memory_release') * 1000);
  const running: RunningService = await mod.service.start(ctx);
  port.on('message', (m: { type: string; what?: string[]; id?: number }) => {
    if (m.type === 'metrics') { port.postMessage({ type: 'metrics', id: m.id, snap: metrics.snapshot() }); return; }
    if (m.type === 'trigger') for (const what of m.what ?? []) trigger(mod.service.name, what);
    else if (m.type === 'wakeup') running.wakeup?.();
    else if (m.type === 'tls-reload') reloadTlsContexts();
    else if (m.type === 'stop') {
      void running.stop().catch(() => {}).finally(() => {
        port.postMessage({ type: 'metrics', id: 0, snap: metrics.snapshot() }); // the final counts
        port.close();
        process.exit(0);
      });
    }
  });
  port.postMessage({ type: 'started' });
  flushCompileCache?.();   // this service's modules are loaded: keep them for the next start (bin/postern)
}

process.on('uncaughtException', (e) => { port.postMessage({ type: 'failed', error: errText(e) }); });
process.on('unhandledRejection', (e) => { port.postMessage({ type: 'failed', error: errText(e) }); });
main().catch((e) => { port.postMessage({ type: 'failed', error: errText(e) }); });
