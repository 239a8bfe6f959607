/**
 * qmgr-memory-probe - the queue manager alone (this process, no smtpd), mail to a relayhost
 * where nothing listens: N messages are written into `incoming` by CONCURRENCY writers while
 * qmgr runs, every one is deferred; then the heap is measured after a full GC. Shows whether
 * memory depends on N (issue 4: "the bounded active queue must keep memory flat").
 *
 *   node --expose-gc bench/qmgr-memory-probe.ts [--messages N] [--trace]   (--trace: live heap every 2 s)
 */
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { getHeapSpaceStatistics } from 'node:v8';
import { join } from 'node:path';
import { MainConfig } from '../src/global/mail-conf.ts';
import { parseMasterCf } from '../src/global/master-cf.ts';
import { CleanupSession } from '../src/cleanup/cleanup.ts';
import { TrivialRewrite } from '../src/trivial-rewrite/trivial-rewrite.ts';
import { AGENTS } from '../src/master/master-agents.ts';
import { loadAgents, Qmgr, queueFromConfig } from '../src/qmgr/qmgr.ts';
import { bounce } from '../src/master/master-clients.ts';
import { setLogSink } from '../src/util/msg.ts';
import { BENCH_SENDER, writeSite } from './bench-site.ts';
import { INTERNAL_SERVICES } from './e2e-bench.ts';
import { freePort } from '../test/harness/free-port.ts';
import { countQueue } from './queue-bench.ts';

const i = process.argv.indexOf('--messages');
const messages = i >= 0 ? Number(process.argv[i + 1]) : 20000;
const CONCURRENCY = 20;
const MB = 1024 * 1024;
const body = Buffer.from('Subject: bench\n\n' + ('x'.repeat(75) + '\n').repeat(26));
let lines = 0;
setLogSink(() => { lines++; });
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const mem = () => { gc(); gc(); const m = process.memoryUsage(); return `heapUsed ${(m.heapUsed / MB).toFixed(1)} MB, heapTotal ${(m.heapTotal / MB).toFixed(1)} MB, external ${(m.external / MB).toFixed(1)} MB, rss ${(m.rss / MB).toFixed(1)} MB`; };

const dir = mkdtempSync(join(tmpdir(), 'postern-qmemprobe-'));
chmodSync(dir, 0o755);
try {
  const site = writeSite(join(dir, 'site'));
  const port = await freePort();
  const config = MainConfig.parse(site.mainCf + `\nqueue_directory = ${join(dir, 'queue')}\ndata_directory = ${join(dir, 'lib')}\nrelayhost = [127.0.0.1]:${port}\n`, join(dir, 'main.cf'), dir);
  const queue = queueFromConfig(config);
  queue.ensureDirs();
  const resolver = await TrivialRewrite.open(config);
  const masterEntries = parseMasterCf(INTERNAL_SERVICES, 'master.cf', { defaultProcessLimit: 100 });
  const agents = await loadAgents(config, masterEntries, AGENTS);
  const q = new Qmgr({ config, queue, resolver, agents, masterEntries, bounce, watch: false });
  await q.start();
  console.log(`start: ${mem()}`);
  let next = 0;
  let peakRss = 0;
  const trace = process.argv.includes('--trace');
  let tick = 0;
  const t = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    if (trace && ++tick % 10 === 0) { gc(); const m = process.memoryUsage(); console.log(`  active ${q.activeCount}: live heap ${(m.heapUsed / MB).toFixed(1)} MB, heapTotal ${(m.heapTotal / MB).toFixed(1)} MB`); }
  }, 200);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < messages) {
      next++;
      const c = await CleanupSession.open({ myhostname: 'mx.example.test', myorigin: 'example.test', headerSizeLimit: 102400, messageSizeLimit: 0, alwaysAddMissingHeaders: false, notify: () => q.notify() }, queue, { sender: BENCH_SENDER, attrs: {}, addMissingHeaders: true });
      c.addRecipient({ address: 'rcpt@remote.example', orig: 'rcpt@remote.example' });
      await c.write(body);
      const res = await c.finish();
      if ('reject' in res) throw new Error(res.reject.text);
    }
  }));
  const injected = (performance.now() - t0) / 1000;
  for (let k = 0; k < 3000 && countQueue(join(dir, 'queue'), ['deferred']) < messages; k++) await new Promise((r) => setTimeout(r, 100));
  const settled = (performance.now() - t0) / 1000;
  clearInterval(t);
  console.log(`${messages} injected in ${injected.toFixed(1)} s, all deferred after ${settled.toFixed(1)} s; peak active ${q.peakActive}; peak rss ${(peakRss / MB).toFixed(1)} MB; ${lines} log lines`);
  console.log(`holding: ${mem()}`);
  for (const sp of getHeapSpaceStatistics()) console.log(`  ${sp.space_name.padEnd(24)} size ${(sp.space_size / MB).toFixed(1).padStart(6)} MB, used ${(sp.space_used_size / MB).toFixed(1).padStart(6)} MB`);
  await q.stop();
  for (const a of agents.values()) await a.close?.();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
