import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { Anvil } from './anvil.ts';
import { setLogSink } from '../util/msg.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); });

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance(ms) { t += ms; } };
}

test('connection count goes up and down per (service, client); services are counted apart', () => {
  const a = new Anvil();
  assert.deepEqual(a.connect('smtp', '192.0.2.1'), { count: 1, rate: 1 });
  assert.deepEqual(a.connect('smtp', '192.0.2.1'), { count: 2, rate: 2 });
  assert.deepEqual(a.connect('submission', '192.0.2.1'), { count: 1, rate: 1 }, 'Postfix anvil keys are service:addr');
  assert.deepEqual(a.connect('smtp', '192.0.2.2'), { count: 1, rate: 1 });
  a.disconnect('smtp', '192.0.2.1');
  assert.equal(a.lookup('smtp', '192.0.2.1')?.count, 1);
  a.disconnect('smtp', '192.0.2.1');
  a.disconnect('smtp', '192.0.2.1'); // one too many: never negative
  assert.equal(a.lookup('smtp', '192.0.2.1')?.count, 0);
});

test('rates use anvil.c\'s fixed window of anvil_rate_time_unit: the first event after it restarts all counters', () => {
  const c = clock();
  const a = new Anvil({ rateTimeUnitMs: 60_000, now: c.now });
  for (let i = 1; i <= 5; i++) assert.equal(a.mail('smtp', '198.51.100.7'), i);
  assert.equal(a.rcpt('smtp', '198.51.100.7'), 1);
  assert.equal(a.auth('smtp', '198.51.100.7'), 1);
  c.advance(60_000);
  assert.equal(a.mail('smtp', '198.51.100.7'), 6, 'exactly one time unit later is still the same window');
  c.advance(1);
  assert.equal(a.mail('smtp', '198.51.100.7'), 1, 'window restarted');
  assert.equal(a.lookup('smtp', '198.51.100.7')?.rcptRate, 0, 'all rate counters restart together');
  c.advance(61_000);
  assert.equal(a.lookup('smtp', '198.51.100.7')?.mailRate, 0, 'lookup of an expired window reports 0 without counting');
});

test('idle entries expire: no connection and a window older than the time unit', () => {
  const c = clock();
  const a = new Anvil({ rateTimeUnitMs: 10_000, now: c.now });
  for (let i = 0; i < 100; i++) a.mail('smtp', `10.0.0.${i}`);
  a.connect('smtp', '10.0.1.1'); // still connected: must stay
  assert.equal(a.size, 101);
  c.advance(11_000);
  a.mail('smtp', '10.9.9.9'); // a new entry triggers the sweep
  assert.equal(a.size, 2);
  assert.equal(a.lookup('smtp', '10.0.1.1')?.count, 1);
});

test('memory cap: 5,000 source addresses on real sockets from 127.x.y.z cannot grow the table past maxEntries', async () => {
  const a = new Anvil({ maxEntries: 500 });
  const server = createServer((s) => {
    const addr = s.remoteAddress!.replace(/^::ffff:/, '');
    a.connect('smtp', addr);
    s.once('close', () => a.disconnect('smtp', addr));
    s.end('421 bye\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const one = (i: number) => new Promise<void>((resolve, reject) => {
    const local = `127.${1 + (i >> 16 & 0xff)}.${i >> 8 & 0xff}.${1 + (i & 0xff) % 254}`;
    const c: Socket = connect({ port, host: '127.0.0.1', localAddress: local });
    c.on('error', reject);
    c.resume();
    c.on('close', () => resolve());
  });
  try {
    for (let base = 0; base < 5000; base += 250) await Promise.all(Array.from({ length: 250 }, (_, j) => one(base + j)));
  } finally {
    server.close();
  }
  assert.ok(a.size <= 500, `table holds ${a.size} entries`);
  assert.ok(a.evictions >= 4000, `evicted ${a.evictions}`);
  assert.ok(logs.some((l) => /warning: client table full \(500 entries\)/.test(l)), 'the administrator is told');
});

test('a full table evicts idle entries before clients with live connections', () => {
  const a = new Anvil({ maxEntries: 3 });
  a.connect('smtp', '192.0.2.1');
  a.mail('smtp', '192.0.2.2');
  a.mail('smtp', '192.0.2.3');
  a.mail('smtp', '192.0.2.4'); // evicts .2 (idle), not .1 (connected)
  assert.equal(a.lookup('smtp', '192.0.2.1')?.count, 1);
  assert.equal(a.lookup('smtp', '192.0.2.2'), undefined);
  assert.equal(a.size, 3);
});

test('statistics lines in anvil(8)\'s shape', () => {
  const a = new Anvil();
  a.connect('smtp', '203.0.113.5');
  a.connect('smtp', '203.0.113.5');
  logs.length = 0;
  a.logStatistics();
  assert.ok(logs.some((l) => /postern\/anvil\[\d+\]: statistics: max connection count 2 for \(smtp:203\.0\.113\.5\) at /.test(l)), logs.join('\n'));
  assert.ok(logs.some((l) => /statistics: max connection rate 2\/60s for \(smtp:203\.0\.113\.5\)/.test(l)));
});
