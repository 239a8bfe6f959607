/**
 * metrics - a small metrics registry with Prometheus conventions (text exposition format 0.0.4,
 * https://prometheus.io/docs/instrumenting/exposition_formats/): counters, gauges and histograms
 * with labels, one registry per thread or process, snapshots that travel as plain JSON and add
 * up. Knows no mail: the names and labels are the callers'.
 *
 * SUMMARY
 *   const replies = metrics.counter('postern_smtpd_replies_total', 'SMTP replies sent', ['service', 'class']);
 *   replies.labels('smtp', '2xx').inc();
 *   const delay = metrics.histogram('postern_delivery_delay_seconds', '...', ['transport'], [1, 5, 60]);
 *   delay.labels('smtp').observe(12.5);
 *   metrics.gauge('postern_queue_messages', '...', ['queue'], (g) => g.labels('deferred').set(n));
 *   renderText(await collectMetrics())   → "# HELP ...\n# TYPE ...\npostern_...{...} 1\n"
 *
 * DESCRIPTION
 *   A child (`labels(...)`) is created once per distinct label values and kept, so the hot path
 *   is one Map lookup and an addition. Callers must keep label values bounded (service names,
 *   reply classes, restriction names — never addresses). A gauge may have a collect function,
 *   called when a snapshot is taken (queue sizes, memory).
 *
 *   Other threads and processes register a source (addMetricsSource) that returns their
 *   snapshot; collectMetrics() adds every source's series to this registry's: counters and
 *   histograms add, and so do gauges (sources give per-thread gauges a distinguishing label).
 *   A source that does not answer within its own time limit is left out of that scrape.
 *   When a thread or process ends (stop, reload, crash), its owner hands its last snapshot to
 *   retire(): its counters and histograms stay in every later scrape (its gauges do not), so
 *   a total never goes down because a service was restarted.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface SeriesSnapshot {
  labels: string[];
  /** counter, gauge */
  value?: number;
  /** histogram: per-bucket counts (not cumulative), the last one for +Inf; sum and count. */
  buckets?: number[];
  sum?: number;
  count?: number;
}

export interface FamilySnapshot {
  name: string;
  help: string;
  type: MetricType;
  labelNames: string[];
  /** histogram upper bounds (without +Inf) */
  bounds?: number[];
  series: SeriesSnapshot[];
}

export type MetricsSnapshot = FamilySnapshot[];

export class CounterChild {
  value = 0;
  readonly labels: string[];
  constructor(labels: string[]) { this.labels = labels; }
  inc(n = 1): void { this.value += n; }
}

export class GaugeChild extends CounterChild {
  set(v: number): void { this.value = v; }
  dec(n = 1): void { this.value -= n; }
}

export class HistogramChild {
  readonly labels: string[];
  readonly buckets: number[];
  sum = 0;
  count = 0;
  private readonly bounds: readonly number[];
  constructor(labels: string[], bounds: readonly number[]) {
    this.labels = labels;
    this.bounds = bounds;
    this.buckets = new Array<number>(bounds.length + 1).fill(0);
  }
  observe(v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    this.buckets[i]!++;
    this.sum += v;
    this.count++;
  }
}

abstract class Family<C> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: string[];
  protected readonly children = new Map<string, C>();
  constructor(name: string, help: string, labelNames: string[]) {
    this.name = name; this.help = help; this.labelNames = labelNames;
  }
  protected abstract make(labels: string[]): C;
  /** The series of these label values (in labelNames order), created on first use. */
  labels(...values: string[]): C {
    let key = values.length === 0 ? '' : values[0]!;
    for (let i = 1; i < values.length; i++) key += '\u0000' + values[i]!;
    let c = this.children.get(key);
    if (!c) {
      if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${this.labelNames.length} label values needed, got ${values.length}`);
      c = this.make(values);
      this.children.set(key, c);
    }
    return c;
  }
}

export class Counter extends Family<CounterChild> {
  readonly type = 'counter';
  protected make(l: string[]): CounterChild { return new CounterChild(l); }
  snapshot(): FamilySnapshot {
    return { name: this.name, help: this.help, type: 'counter', labelNames: this.labelNames, series: [...this.children.values()].map((c) => ({ labels: c.labels, value: c.value })) };
  }
}

export class Gauge extends Family<GaugeChild> {
  readonly type = 'gauge';
  readonly collect?: (g: Gauge) => void;
  constructor(name: string, help: string, labelNames: string[], collect?: (g: Gauge) => void) {
    super(name, help, labelNames);
    if (collect) this.collect = collect;
  }
  protected make(l: string[]): GaugeChild { return new GaugeChild(l); }
  /** Forget every series (a collect function that rebuilds the whole family). */
  reset(): void { this.children.clear(); }
  snapshot(): FamilySnapshot {
    try { this.collect?.(this); } catch { /* a failing collector leaves the last values */ }
    return { name: this.name, help: this.help, type: 'gauge', labelNames: this.labelNames, series: [...this.children.values()].map((c) => ({ labels: c.labels, value: c.value })) };
  }
}

export class Histogram extends Family<HistogramChild> {
  readonly type = 'histogram';
  readonly bounds: readonly number[];
  constructor(name: string, help: string, labelNames: string[], bounds: readonly number[]) {
    super(name, help, labelNames);
    this.bounds = [...bounds].sort((a, b) => a - b);
  }
  protected make(l: string[]): HistogramChild { return new HistogramChild(l, this.bounds); }
  snapshot(): FamilySnapshot {
    return { name: this.name, help: this.help, type: 'histogram', labelNames: this.labelNames, bounds: [...this.bounds],
             series: [...this.children.values()].map((c) => ({ labels: c.labels, buckets: [...c.buckets], sum: c.sum, count: c.count })) };
  }
}

type AnyFamily = Counter | Gauge | Histogram;

export class MetricsRegistry {
  private readonly families = new Map<string, AnyFamily>();
  private readonly sources = new Set<() => Promise<MetricsSnapshot | undefined>>();
  private retired: MetricsSnapshot = [];

  private get<T extends AnyFamily>(name: string, type: MetricType, make: () => T): T {
    const f = this.families.get(name);
    if (f) {
      if (f.type !== type) throw new Error(`metric ${name} is already a ${f.type}`);
      return f as T;
    }
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`bad metric name ${name}`);
    const n = make();
    this.families.set(name, n);
    return n;
  }

  counter(name: string, help: string, labelNames: string[] = []): Counter {
    return this.get(name, 'counter', () => new Counter(name, help, labelNames));
  }
  gauge(name: string, help: string, labelNames: string[] = [], collect?: (g: Gauge) => void): Gauge {
    return this.get(name, 'gauge', () => new Gauge(name, help, labelNames, collect));
  }
  histogram(name: string, help: string, labelNames: string[], bounds: readonly number[]): Histogram {
    return this.get(name, 'histogram', () => new Histogram(name, help, labelNames, bounds));
  }

  /** This registry's own series (gauge collectors run now). */
  snapshot(): MetricsSnapshot {
    return [...this.families.values()].map((f) => f.snapshot());
  }

  /** Another thread's or process's snapshots, added at each collect(); returns the remover. */
  addSource(fn: () => Promise<MetricsSnapshot | undefined>): () => void {
    this.sources.add(fn);
    return () => { this.sources.delete(fn); };
  }

  /** The last snapshot of a source that ended: its counters and histograms are kept. */
  retire(snap: MetricsSnapshot): void {
    this.retired = mergeSnapshots([this.retired, snap.filter((f) => f.type !== 'gauge')]);
  }

  /** This registry plus every source (and every retired one), added up. */
  async collect(): Promise<MetricsSnapshot> {
    const asked = [...this.sources];
    const answers = await Promise.all(asked.map((s) => s().catch(() => undefined)));
    // A source that ended while we waited is in `retired` now, with counts at least as high as
    // its answer: count it once, from there.
    const live = answers.filter((o, i): o is MetricsSnapshot => o !== undefined && this.sources.has(asked[i]!));
    return mergeSnapshots([this.snapshot(), this.retired, ...live]);
  }
}

/** Add snapshots: same family and label values → values, buckets, sums and counts added. */
export function mergeSnapshots(snaps: readonly MetricsSnapshot[]): MetricsSnapshot {
  const out = new Map<string, FamilySnapshot & { idx: Map<string, SeriesSnapshot> }>();
  for (const snap of snaps) {
    for (const f of snap) {
      let m = out.get(f.name);
      if (!m) {
        m = { ...f, series: [], idx: new Map() };
        out.set(f.name, m);
      } else if (m.type !== f.type || (f.bounds && m.bounds && f.bounds.join() !== m.bounds.join())) {
        continue; // inconsistent definitions: keep the first
      }
      for (const s of f.series) {
        const key = s.labels.join('\u0000');
        const have = m.idx.get(key);
        if (!have) {
          const copy: SeriesSnapshot = { ...s, ...(s.buckets ? { buckets: [...s.buckets] } : {}) };
          m.idx.set(key, copy);
          m.series.push(copy);
          continue;
        }
        if (s.value !== undefined) have.value = (have.value ?? 0) + s.value;
        if (s.buckets && have.buckets) for (let i = 0; i < s.buckets.length; i++) have.buckets[i] = (have.buckets[i] ?? 0) + s.buckets[i]!;
        if (s.sum !== undefined) have.sum = (have.sum ?? 0) + s.sum;
        if (s.count !== undefined) have.count = (have.count ?? 0) + s.count;
      }
    }
  }
  return [...out.values()].map(({ idx: _idx, ...f }) => f);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** The Prometheus text exposition format (version 0.0.4). */
export function renderText(snap: MetricsSnapshot): string {
  let out = '';
  for (const f of [...snap].sort((a, b) => a.name.localeCompare(b.name))) {
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.series) {
      if (f.type !== 'histogram') { out += `${f.name}${labelText(f.labelNames, s.labels)} ${num(s.value ?? 0)}\n`; continue; }
      let cum = 0;
      const bounds = f.bounds ?? [];
      for (let i = 0; i <= bounds.length; i++) {
        cum += s.buckets?.[i] ?? 0;
        out += `${f.name}_bucket${labelText(f.labelNames, s.labels, ['le', i < bounds.length ? num(bounds[i]!) : '+Inf'])} ${cum}\n`;
      }
      out += `${f.name}_sum${labelText(f.labelNames, s.labels)} ${num(s.sum ?? 0)}\n`;
      out += `${f.name}_count${labelText(f.labelNames, s.labels)} ${s.count ?? 0}\n`;
    }
  }
  return out;
}

/** This thread's (or process's) registry. */
export const metrics = new MetricsRegistry();

/** Bounds for latencies in seconds (1 ms .. 60 s). */
export const LATENCY_BOUNDS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
