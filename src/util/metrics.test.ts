/**
 * metrics: the registry, snapshot merging and the text exposition format, checked by
 * Prometheus's own `promtool check metrics` when it is installed (Debian's prometheus package).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { MetricsRegistry, mergeSnapshots, renderText } from './metrics.ts';

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;

function registry(): MetricsRegistry {
  const r = new MetricsRegistry();
  const c = r.counter('postern_test_replies_total', 'Replies sent, by class', ['service', 'class']);
  c.labels('smtp', '2xx').inc();
  c.labels('smtp', '2xx').inc(2);
  c.labels('submission', '5xx').inc();
  r.gauge('postern_test_queue_messages', 'Messages per queue', ['queue'], (g) => { g.labels('deferred').set(7); });
  const h = r.histogram('postern_test_delay_seconds', 'Delay', ['transport'], [1, 10, 0.1]);
  h.labels('smtp').observe(0.05);
  h.labels('smtp').observe(5);
  h.labels('smtp').observe(100);
  return r;
}

test('text exposition: counters, gauges, cumulative histogram buckets with +Inf, _sum and _count', () => {
  const text = renderText(registry().snapshot());
  assert.match(text, /^# HELP postern_test_delay_seconds Delay\n# TYPE postern_test_delay_seconds histogram\n/m);
  assert.match(text, /^postern_test_replies_total\{service="smtp",class="2xx"\} 3$/m);
  assert.match(text, /^postern_test_replies_total\{service="submission",class="5xx"\} 1$/m);
  assert.match(text, /^postern_test_queue_messages\{queue="deferred"\} 7$/m);
  assert.match(text, /^postern_test_delay_seconds_bucket\{transport="smtp",le="0.1"\} 1$/m);
  assert.match(text, /^postern_test_delay_seconds_bucket\{transport="smtp",le="1"\} 1$/m);
  assert.match(text, /^postern_test_delay_seconds_bucket\{transport="smtp",le="10"\} 2$/m);
  assert.match(text, /^postern_test_delay_seconds_bucket\{transport="smtp",le="\+Inf"\} 3$/m);
  assert.match(text, /^postern_test_delay_seconds_sum\{transport="smtp"\} 105.05$/m);
  assert.match(text, /^postern_test_delay_seconds_count\{transport="smtp"\} 3$/m);
});

test('label values are escaped (backslash, quote, newline) and names are checked', () => {
  const r = new MetricsRegistry();
  r.counter('postern_test_total', 'help with \\ and\nnewline', ['v']).labels('a"b\\c\nd').inc();
  const text = renderText(r.snapshot());
  assert.match(text, /^# HELP postern_test_total help with \\\\ and\\nnewline$/m);
  assert.ok(text.includes('postern_test_total{v="a\\"b\\\\c\\nd"} 1\n'));
  assert.throws(() => r.counter('bad-name', 'x'), /bad metric name/);
  assert.throws(() => r.gauge('postern_test_total', 'x'), /already a counter/);
  assert.throws(() => r.counter('postern_test_total', 'x', ['v']).labels('a', 'b'), /1 label values needed/);
});

test('snapshots from several threads add up; sources are collected', async () => {
  const a = registry();
  const b = registry();
  const merged = renderText(mergeSnapshots([a.snapshot(), b.snapshot()]));
  assert.match(merged, /^postern_test_replies_total\{service="smtp",class="2xx"\} 6$/m);
  assert.match(merged, /^postern_test_delay_seconds_bucket\{transport="smtp",le="\+Inf"\} 6$/m);
  assert.match(merged, /^postern_test_delay_seconds_count\{transport="smtp"\} 6$/m);
  // A source that fails or never answers is left out, the others are counted.
  a.addSource(async () => b.snapshot());
  a.addSource(async () => { throw new Error('gone'); });
  const off = a.addSource(async () => undefined);
  off();
  const collected = renderText(await a.collect());
  assert.match(collected, /^postern_test_replies_total\{service="submission",class="5xx"\} 2$/m);
  // JSON round trip (what crosses a worker or process channel).
  const rt = renderText(mergeSnapshots([JSON.parse(JSON.stringify(b.snapshot()))]));
  assert.equal(rt, renderText(b.snapshot()));
});

test('promtool check metrics finds nothing to complain about', { skip: !promtool && 'promtool not installed (Debian package prometheus)' }, () => {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: renderText(registry().snapshot()), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal((r.stdout + r.stderr).trim(), '');
});

test('a source that ends is retired: its counters and histograms stay, its gauges go, nothing counted twice', async () => {
  const master = new MetricsRegistry();
  const worker = registry();
  let off: () => void = () => {};
  // The worker ends while the scrape waits for its answer: counted once, from the retired counts.
  off = master.addSource(async () => {
    const snap = worker.snapshot();
    off();
    master.retire(snap);
    return snap;
  });
  let text = renderText(await master.collect());
  assert.match(text, /^postern_test_replies_total\{service="smtp",class="2xx"\} 3$/m);
  assert.match(text, /^postern_test_delay_seconds_count\{transport="smtp"\} 3$/m);
  assert.doesNotMatch(text, /postern_test_queue_messages\{/);
  // Later scrapes still have them; a new instance of the worker adds to them.
  master.addSource(async () => registry().snapshot());
  text = renderText(await master.collect());
  assert.match(text, /^postern_test_replies_total\{service="smtp",class="2xx"\} 6$/m);
});
