/**
 * metrics-runtime - the Node runtime's own gauges for the metrics registry (util/metrics.ts), per
 * thread or process: event-loop delay (perf_hooks monitorEventLoopDelay: mean, p99 and max since
 * the previous scrape) and memory (V8 heap of this thread; the resident set of the process).
 *
 *   startRuntimeMetrics('master')   // once per thread; `thread` labels its series
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { isMainThread } from 'node:worker_threads';
import { metrics } from './metrics.ts';

let started: ReturnType<typeof monitorEventLoopDelay> | undefined;

export function startRuntimeMetrics(thread: string): void {
  if (started) return;
  const h = monitorEventLoopDelay({ resolution: 20 });
  h.enable();
  started = h;
  metrics.gauge('postern_eventloop_lag_seconds', 'Event-loop delay of a thread since the previous scrape (stat: mean, p99, max)', ['thread', 'stat'], (g) => {
    const ns = (v: number) => (Number.isFinite(v) ? v / 1e9 : 0);
    g.labels(thread, 'mean').set(h.count ? ns(h.mean) : 0);
    g.labels(thread, 'p99').set(h.count ? ns(h.percentile(99)) : 0);
    g.labels(thread, 'max').set(h.count ? ns(h.max) : 0);
    h.reset();
  });
  metrics.gauge('postern_memory_bytes', 'Memory of a thread (V8 heap_used, heap_total) and of its process (rss, for the main thread of each process)', ['thread', 'kind'], (g) => {
    const v8 = getHeapStatistics();
    g.labels(thread, 'heap_used').set(v8.used_heap_size);
    g.labels(thread, 'heap_total').set(v8.total_heap_size);
    if (isMainThread) g.labels(thread, 'rss').set(process.memoryUsage.rss());
  });
}
