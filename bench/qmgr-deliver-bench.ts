/**
 * qmgr-deliver-bench - the delivery side alone: N messages (2 KB, one recipient each, spread
 * over bench-site.ts's 100 virtual users) are written into `incoming` with the queue manager
 * stopped, then qmgr (real trivial-rewrite, real virtual(8) agent, the e2e bench's master.cf)
 * is started in this process and timed until every message is in a Maildir new/ and the queue
 * is empty. Run it under `node --cpu-prof` to profile exactly the work the qmgr worker thread
 * does in the whole system (e2e-bench.ts profiles only the master's main thread).
 *
 *   node bench/qmgr-deliver-bench.ts [--messages N] [--rounds N] [--live] [--profile FILE.cpuprofile]
 * (--live: 20 writers queue the messages while qmgr runs, which learns of them only through its
 * watch on incoming/, as in the threaded master; the time and CPU then include cleanup's)
 * (--profile: a V8 CPU profile of the last round's delivery phase only).
 */
import { mkdtempSync, readdirSync, rmSync, chmodSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../src/global/mail-conf.ts';
import { parseMasterCf } from '../src/global/master-cf.ts';
import { CleanupSession } from '../src/cleanup/cleanup.ts';
import { TrivialRewrite } from '../src/trivial-rewrite/trivial-rewrite.ts';
import { AGENTS } from '../src/master/master-agents.ts';
import { loadAgents, Qmgr, queueFromConfig } from '../src/qmgr/qmgr.ts';
import { bounce } from '../src/master/master-clients.ts';
import { BENCH_SENDER, SITE_DOMAIN, SITE_USERS, writeSite } from './bench-site.ts';
import { INTERNAL_SERVICES, countMaildirNew } from './e2e-bench.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const messages = arg('--messages', 2000);
const rounds = arg('--rounds', 1);
/** --live: messages are written while qmgr runs, and qmgr learns of them only through its watch on incoming/ (as in the threaded master). */
const live = process.argv.includes('--live');
const pi = process.argv.indexOf('--profile');
const profileFile = pi >= 0 ? process.argv[pi + 1] : undefined;
const body = Buffer.from('Subject: bench\n\n' + ('x'.repeat(75) + '\n').repeat(26));

const dir = mkdtempSync(join(tmpdir(), 'postern-qdbench-'));
chmodSync(dir, 0o755);
try {
  const site = writeSite(join(dir, 'site'));
  const config = MainConfig.parse(site.mainCf + `\nqueue_directory = ${join(dir, 'queue')}\ndata_directory = ${join(dir, 'lib')}\nvirtual_minimum_uid = 0\n`, join(dir, 'main.cf'), dir);
  const queue = queueFromConfig(config);
  queue.ensureDirs();
  const resolver = await TrivialRewrite.open(config);
  const masterEntries = parseMasterCf(INTERNAL_SERVICES, 'master.cf', { defaultProcessLimit: 100 });
  const agents = await loadAgents(config, masterEntries, AGENTS);
  const domainDir = join(site.dir, 'vhosts', SITE_DOMAIN);
  for (let r = 0; r < rounds; r++) {
    let next = 0;
    const inject = async (): Promise<void> => {
      while (next < messages) {
        const i = next++;
        const c = await CleanupSession.open({ myhostname: 'mx.example.test', myorigin: 'example.test', headerSizeLimit: 102400, messageSizeLimit: 0, alwaysAddMissingHeaders: false }, queue, { sender: BENCH_SENDER, attrs: {}, addMissingHeaders: true });
        const rcpt = `user${(i % SITE_USERS) + 1}@${SITE_DOMAIN}`;
        c.addRecipient({ address: rcpt, orig: rcpt });
        await c.write(body);
        const res = await c.finish();
        if ('reject' in res) throw new Error(res.reject.text);
      }
    };
    if (!live) await inject();
    const before = countMaildirNew(domainDir);
    const q = new Qmgr({ config, queue, resolver, agents, masterEntries, bounce, watch: live });
    const session = profileFile && r === rounds - 1 ? new Session() : undefined;
    if (session) { session.connect(); await session.post('Profiler.enable'); await session.post('Profiler.start'); }
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    await q.start();
    if (live) {
      await Promise.all(Array.from({ length: 20 }, inject));
      for (let k = 0; k < 6000 && countMaildirNew(domainDir) - before < messages; k++) await new Promise((r) => setTimeout(r, 50));
    }
    await q.idle();
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    if (session) { const { profile } = await session.post('Profiler.stop'); writeFileSync(profileFile!, JSON.stringify(profile)); session.disconnect(); }
    await q.stop();
    const n = countMaildirNew(domainDir) - before;
    const left = readdirSync(join(dir, 'queue', 'incoming')).length + readdirSync(join(dir, 'queue', 'active')).length;
    console.log(`round ${r + 1}: ${n} delivered in ${(ms / 1000).toFixed(2)} s = ${(n / (ms / 1000)).toFixed(1)} msg/s (left in queue: ${left}); CPU ${((cpu.user + cpu.system) / 1000 / n).toFixed(2)} ms/msg (user ${(cpu.user / 1000 / n).toFixed(2)}, system ${(cpu.system / 1000 / n).toFixed(2)})`);
  }
  for (const a of agents.values()) await a.close?.();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
