/**
 * master-thread - run a service that has no listening sockets (qmgr, pickup) in a worker thread
 * of its own, so that delivery and reception use both cores of the machine while the service
 * contract stays the same (DESIGN.md §2 "master": in-process where speed matters, separate
 * threads or processes to use every core).
 *
 *   SERVICES.qmgr = threaded('qmgr', './master-agents.ts')
 *
 * The worker loads the configuration directory itself (main.cf with this master.cf entry's -o
 * overrides, dovecot.conf), starts the module's `service`, and obeys "stop"/"wakeup" messages.
 * It shares nothing with the main thread but files and triggers (mail-trigger.ts): a trigger
 * for the service's name in the main thread (cleanup's new queue ID for qmgr) is posted to the
 * worker, and a trigger in the worker that nobody there listens to is posted back to the main
 * thread (never back to this worker: a trigger for its own name ends there). A failure
 * inside the worker (or the worker dying) is reported through ctx.failed(), so the master
 * restarts it with its usual backoff. Log lines reach the master's stderr through Node's worker
 * stdio forwarding; with maillog_file, through the master (master-maillog.ts) into the file too.
 */
import { addTlsReloadForwarder } from '../lib-tls/tls-provider.ts';
import { Worker } from 'node:worker_threads';
import { onTrigger, trigger } from '../global/mail-trigger.ts';
import type { RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import { forwardLogLines } from './master-maillog.ts';
import { metrics, type MetricsSnapshot } from '../util/metrics.ts';

/** How long a scrape waits for a thread's metrics snapshot. */
const METRICS_WAIT_MS = 2000;

const WORKER = new URL('./master-thread-worker.ts', import.meta.url);
/**
 * V8 young generation of a service thread (3 × the semi-space: 3 → two 1 MB semi-spaces, as
 * bin/node-flags sets for the main thread; docs/memory.md). Each 8 MB semi-space pair held
 * 16 MB per thread at idle; 1 MB semi-spaces measured no throughput loss on the SMTP and
 * end-to-end benchmarks.
 */
const YOUNG_GENERATION_MB = 3;

export interface ThreadRequest {
  configDir: string;
  /** Module path relative to src/master/, exporting `service: ServiceImpl`. */
  module: string;
  entry: ServiceContext['entry'];
  /** master.cf as the master parsed it: the thread does not read it again. */
  masterCf: ServiceContext['masterCf'];
  protocol?: string;
}

export function threaded(name: string, module: string): ServiceImpl {
  return {
    name,
    async start(ctx: ServiceContext): Promise<RunningService> {
      // Sockets the master bound for the entry (qmgr's private/qmgr) stay unused: triggers reach
      // the service through files it watches.
      const req: ThreadRequest = { configDir: ctx.config.configDir, module, entry: ctx.entry, masterCf: ctx.masterCf, ...(ctx.protocol ? { protocol: ctx.protocol } : {}) };
      // A small young generation: V8 otherwise grows it to 128 MB under a steady allocation
      // rate (qmgr under load) and keeps it, though the live heap stays ~15 MB (issue 4: memory
      // flat however many messages pass through the queue).
      // With maillog_file, the worker's log lines come here to go to the file as well.
      const toFile = ctx.config.get('maillog_file').trim() !== '';
      const w = new Worker(WORKER, { workerData: req, execArgv: ['--disable-warning=ExperimentalWarning'], resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB }, stderr: toFile });
      if (toFile) forwardLogLines(w.stderr);
      let stopping = false;
      // Triggers of one turn of the event loop travel in one message (each message wakes the
      // worker: under load, smtpd commits several queue files per turn).
      let batch: string[] = [];
      const post = () => { const what = batch; batch = []; w.postMessage({ type: 'trigger', what }); };
      const offTrigger = onTrigger(name, (what) => { if (batch.push(what) === 1) setImmediate(post); });
      w.once('exit', offTrigger);
      // The metrics of the thread, asked for at each scrape (util/metrics.ts sources).
      let asked = 0;
      const waiting = new Map<number, (s: MetricsSnapshot | undefined) => void>();
      // The last snapshot seen (the thread sends a final one when it stops) is retired when the
      // thread ends, so a restart does not take its counts away.
      let last: MetricsSnapshot | undefined;
      const offMetrics = metrics.addSource(() => new Promise((resolve) => {
        const id = ++asked;
        const t = setTimeout(() => { waiting.delete(id); resolve(undefined); }, METRICS_WAIT_MS);
        waiting.set(id, (s) => { clearTimeout(t); waiting.delete(id); if (s) last = s; resolve(s); });
        w.postMessage({ type: 'metrics', id });
      }));
      // New certificates (postern reload, ACME): the thread re-reads its own (tls-provider.ts).
      const offTls = addTlsReloadForwarder(() => w.postMessage({ type: 'tls-reload' }));
      w.once('exit', () => {
        offTls();
        offMetrics();
        for (const f of [...waiting.values()]) f(undefined);
        if (last) metrics.retire(last);
      });
      const started = new Promise<void>((resolve, reject) => {
        w.on('message', (m: { type: string; error?: string; service?: string; what?: string; id?: number; snap?: MetricsSnapshot }) => {
          if (m.type === 'metrics') { if (m.id === 0) last = m.snap; else waiting.get(m.id ?? -1)?.(m.snap); return; }
          if (m.type === 'started') resolve();
          else if (m.type === 'trigger') { if (m.service !== name) trigger(m.service!, m.what!); }
          else if (m.type === 'failed') {
            const err = new Error(m.error ?? 'worker failed');
            reject(err);
            if (!stopping) ctx.failed(err);
          }
        });
        w.once('error', (e) => { reject(e); if (!stopping) ctx.failed(e); });
        w.once('exit', (code) => {
          const err = new Error(`${name} worker thread exited with status ${code}`);
          reject(err);
          if (!stopping) ctx.failed(err);
        });
      });
      await started;
      return {
        async stop() {
          stopping = true;
          const exited = new Promise<void>((r) => w.once('exit', () => r()));
          w.postMessage({ type: 'stop' });
          const t = setTimeout(() => { void w.terminate(); }, 30_000);
          await exited;
          clearTimeout(t);
        },
        wakeup() { w.postMessage({ type: 'wakeup' }); },
      };
    },
  };
}
