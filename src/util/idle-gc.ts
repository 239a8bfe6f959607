/**
 * idle-gc - give memory back to the system when a thread goes quiet (docs/memory.md).
 *
 *   idleMemoryRelease(5000)   // once per thread (main thread, each worker, each child process);
 *                             // a later call changes the delay, 0 turns it off
 *
 * V8 collects its old generation only when that generation has grown to its limit, and its own
 * memory reducer starts only after such a collection: after a burst of mail (2,000 messages
 * through smtpd) the heap kept 20-40 MB of garbage and V8's pooled pages for as long as the
 * server stayed quiet, measured on Node 24. This is the memory reducer a server wants: once a
 * second it looks at how busy the thread's event loop was; after `delayMs` of a loop that was
 * busy less than 2 % of the time, and only if the heap has grown by GROWTH_BYTES since the last
 * such collection, it runs one full memory-reducing collection (V8's 'last-resort' flavour: it
 * compacts, returns free pages to the system and drops bytecode that has not run lately, which
 * is compiled again on its next use). A thread under load is never interrupted by it, and a
 * quiet one is not collected again until it has allocated again.
 *
 * The collection runs on the thread's own loop and takes tens of milliseconds for the heaps of
 * a mail server; a connection arriving meanwhile waits that long for its greeting.
 *
 * The `gc` function comes from V8's --expose-gc, switched on at run time for this isolate only
 * through a fresh context (`node:vm`), so no command-line flag is needed.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';

/** The heap must have grown this much since the last collection here to be collected again. */
const GROWTH_BYTES = 4 * 1024 * 1024;
/** Busy share of the event loop under which a second counts as quiet. */
const QUIET_UTILIZATION = 0.02;
const TICK_MS = 1000;

type GcFn = (o?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;

let timer: NodeJS.Timeout | undefined;
let delay = 0;
let quietMs = 0;
let baseline = 0;
let lastElu: EventLoopUtilization | undefined;
let gcFn: GcFn | undefined;
/** Collections run so far in this thread (for tests and the debug log). */
export let idleCollections = 0;

function gc(): GcFn {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as GcFn;
  }
  return gcFn;
}

/** Heap bytes that count towards "has grown": what V8 holds in memory for this isolate. */
function heapBytes(): number {
  const h = getHeapStatistics();
  return h.total_physical_size + h.malloced_memory;
}

function tick(): void {
  const now = performance.eventLoopUtilization();
  const busy = lastElu ? performance.eventLoopUtilization(now, lastElu).utilization : 1;
  lastElu = now;
  quietMs = busy < QUIET_UTILIZATION ? quietMs + TICK_MS : 0;
  if (quietMs < delay) return;
  if (heapBytes() < baseline + GROWTH_BYTES) return;
  gc()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  idleCollections++;
  baseline = heapBytes();
  quietMs = 0;
  lastElu = performance.eventLoopUtilization(); // the collection itself is not load
}

/**
 * Release memory after `delayMs` of quiet (see the header); 0 stops it. The first quiet period
 * after the call collects once whatever the heap's size: start-up (reading the configuration,
 * compiling the modules) leaves garbage too.
 */
export function idleMemoryRelease(delayMs: number): void {
  delay = Math.max(0, delayMs);
  if (delay === 0) {
    if (timer) clearInterval(timer);
    timer = undefined;
    return;
  }
  if (timer) return;
  baseline = 0;
  quietMs = 0;
  lastElu = undefined;
  timer = setInterval(tick, TICK_MS);
  timer.unref();
}
