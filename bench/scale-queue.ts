/**
 * scale-queue - a large deferred queue (issue 18: "a 1,000,000-message deferred queue"), the
 * whole Postern system against real Postfix 3.7, at one size; bench/scale-bench.ts runs it at
 * two sizes and prints the growth. The systems run one after the other, never together.
 *
 * Both get bench-site.ts's main.cf plus `relayhost = [127.0.0.1]:P`, where nothing listens yet:
 * every delivery to rcpt@remote.example is refused. The queue is made fast, without SMTP: one
 * real queue file (2 KB message, one recipient) is written by each system's own writer —
 * Postern's cleanup and queue-file writer (src/global/queue-file-writer.ts); for Postfix one
 * message sent through its smtpd and cleanup with smtp-source(1) and deferred by its qmgr (Postfix
 * 3.7's qmgr moves a file Postern wrote to `corrupt`: "too many length bits, record type 77",
 * see docs/bench-scale.md) — and N copies of its bytes are written straight into `deferred/`
 * (hashed like both systems, mode 0700 = committed, owned by the mail owner), one at a time
 * (bounded memory), with queue IDs made up from the copy's number.
 * Then, per system:
 *   1. retry pass: `postqueue -f` / `postern queue flush` while the relayhost still refuses;
 *      every message goes through active and back to deferred. Timed until incoming and active
 *      are empty and every deferred file's mtime (its next retry time) is after the flush;
 *      the queue manager's RSS is sampled every second (peak).
 *   2. hold: 5 s with N deferred messages, the queue manager's RSS (median).
 *   3. flush: smtp-sink(1) starts on P, flush again, timed until the queue is empty.
 * The queue manager is Postfix's qmgr process, and Postern's master process (the whole system).
 */
import { execFile } from 'node:child_process';
import { chownSync, chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MailQueue } from '../src/global/mail-queue.ts';
import { CleanupSession } from '../src/cleanup/cleanup.ts';
import { RealPostfix } from '../test/harness/real-postfix.ts';
import { freePort } from '../test/harness/free-port.ts';
import { BENCH_SENDER, writeSite } from './bench-site.ts';
import { PosternMaster, postfixMasterPid } from './e2e-bench.ts';
import { countQueue, postfixQmgrPid, sampler, startSink } from './queue-bench.ts';
import { median, type Figure } from './scale-growth.ts';

const run = promisify(execFile);

function rssMB(pid: number): number {
  try { return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024; } catch { return 0; }
}
const RECIPIENT = 'rcpt@remote.example';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const body = Buffer.from('Subject: bench\n\n' + ('x'.repeat(75) + '\n').repeat(26));

/** One committed queue file's bytes, written by Postern's cleanup into a scratch queue. */
async function templateQueueFile(dir: string): Promise<Buffer> {
  const q = new MailQueue(join(dir, 'template-queue'));
  q.ensureDirs();
  const c = await CleanupSession.open({ myhostname: 'mx.example.test', myorigin: 'example.test', headerSizeLimit: 102400, messageSizeLimit: 0, alwaysAddMissingHeaders: false },
    q, { sender: BENCH_SENDER, attrs: {}, addMissingHeaders: true });
  c.addRecipient({ address: RECIPIENT, orig: RECIPIENT });
  await c.write(body);
  const res = await c.finish();
  if ('reject' in res) throw new Error(res.reject.text);
  const [id] = readdirSync(join(q.dir, 'incoming'));
  return readFileSync(join(q.dir, 'incoming', id!));
}

/** N copies into deferred/H/ID (hash_queue_depth 1, as both systems default). */
function fillDeferred(queueDir: string, n: number, file: Buffer, owner?: { uid: number; gid: number }): void {
  for (let i = 0; i < n; i++) {
    const spread = ((i * 7919) % 0x100000).toString(16).toUpperCase().padStart(5, '0');
    const qid = `${spread}A${i.toString(16).toUpperCase().padStart(7, '0')}`;
    const d = join(queueDir, 'deferred', qid[0]!);
    if (i < 16) {
      const h = join(queueDir, 'deferred', i.toString(16).toUpperCase());
      mkdirSync(h, { recursive: true, mode: 0o700 });
      if (owner) chownSync(h, owner.uid, owner.gid);
    }
    const p = join(d, qid);
    writeFileSync(p, file, { mode: 0o700 });
    chmodSync(p, 0o700);
    if (owner) chownSync(p, owner.uid, owner.gid);
  }
}

/** Every deferred file's mtime is after t (ms), i.e. each has been tried and given a new retry time. */
function allRetried(queueDir: string, t: number): boolean {
  const root = join(queueDir, 'deferred');
  for (const h of readdirSync(root)) {
    for (const f of readdirSync(join(root, h))) {
      try { if (statSync(join(root, h, f)).mtimeMs <= t) return false; } catch { /* moved meanwhile */ return false; }
    }
  }
  return true;
}

interface Sys { queueDir: string; qmgrPid(): number; flush(): Promise<void>; tail(): string }

async function waitFor(what: string, cond: () => boolean, ms: number, sys: Sys, poll: number): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${Math.round(ms / 1000)} s waiting for ${what}\n${sys.tail()}`);
    await sleep(poll);
  }
  return (performance.now() - t0) / 1000;
}

interface Side { fill: number; retry: number; retryPeakMB: number; holdMB: number; flush: number }

async function phases(sys: Sys, n: number, sinkPort: number, file: Buffer, owner: { uid: number; gid: number } | undefined, log: (l: string) => void, who: string): Promise<Side> {
  const poll = Math.max(500, Math.min(10_000, n / 20));
  let t = performance.now();
  fillDeferred(sys.queueDir, n, file, owner);
  const fill = (performance.now() - t) / 1000;
  log(`queue ${n} ${who}: ${n} queue files written in ${fill.toFixed(1)} s`);
  const retryRss = sampler(() => sys.qmgrPid());
  const flushedAt = Date.now() - 1000;
  t = performance.now();
  await sys.flush();
  await waitFor(`a retry pass over ${n} messages`, () => countQueue(sys.queueDir, ['incoming', 'active']) === 0 && countQueue(sys.queueDir, ['deferred']) === n && allRetried(sys.queueDir, flushedAt), Math.max(120_000, n * 20), sys, poll);
  const retry = (performance.now() - t) / 1000;
  log(`queue ${n} ${who}: retry pass done in ${retry.toFixed(1)} s`);
  const rr = retryRss.stop();
  const last = rssMB(sys.qmgrPid());
  if (last) rr.push(last);
  const holdRss = sampler(() => sys.qmgrPid());
  await sleep(5200);
  const hold = holdRss.stop();
  const sink = await startSink(sinkPort);
  try {
    t = performance.now();
    await sys.flush();
    await waitFor('an empty queue', () => countQueue(sys.queueDir, ['incoming', 'active', 'deferred']) === 0, Math.max(600_000, n * 20), sys, poll);
    const flush = (performance.now() - t) / 1000;
    log(`queue ${n} ${who}: written in ${fill.toFixed(1)} s, retry pass ${retry.toFixed(1)} s, flushed in ${flush.toFixed(1)} s`);
    return { fill, retry, retryPeakMB: rr.length ? Math.max(...rr) : NaN, holdMB: median(hold), flush };
  } finally {
    sink.kill('SIGTERM');
  }
}

export async function measureQueue(n: number, _rounds: number, log: (l: string) => void): Promise<Figure[]> {
  const why = RealPostfix.unavailable();
  if (why) throw new Error(`real Postfix cannot run: ${why}`);
  const dir = mkdtempSync(join(tmpdir(), 'postern-scalequeue-'));
  chmodSync(dir, 0o755);
  try {
    const file = await templateQueueFile(dir);
    const pw = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postfix:'))!.split(':');
    let pf: Side;
    {
      const site = writeSite(join(dir, 'site-postfix'));
      const sinkPort = await freePort();
      const port = await freePort();
      const p = await RealPostfix.start({ mainCf: site.mainCf + `relayhost = [127.0.0.1]:${sinkPort}\n`, masterCf: `127.0.0.1:${port} inet n - n - - smtpd` });
      try {
        // Postfix's own template: one message through its smtpd and cleanup, deferred by its qmgr.
        const one = await run('/usr/sbin/smtp-source', ['-l', '2048', '-m', '1', '-f', BENCH_SENDER, '-t', RECIPIENT, `127.0.0.1:${port}`]);
        if (one.stderr) throw new Error(`smtp-source: ${one.stderr}`);
        let tpl = '';
        for (let k = 0; k < 300 && !tpl; k++) {
          await sleep(100);
          for (const h of readdirSync(join(p.queueDir, 'deferred'))) for (const f of readdirSync(join(p.queueDir, 'deferred', h))) tpl = join(p.queueDir, 'deferred', h, f);
        }
        if (!tpl) throw new Error(`Postfix did not defer the template message\n${p.log().slice(-2000)}`);
        const pfFile = readFileSync(tpl);
        await run('/usr/sbin/postsuper', ['-c', p.configDir, '-d', 'ALL']);
        pf = await phases({
          queueDir: p.queueDir, qmgrPid: () => postfixQmgrPid(postfixMasterPid(p)),
          flush: async () => { await run('/usr/sbin/postqueue', ['-c', p.configDir, '-f']); },
          tail: () => p.log().split('\n').slice(-12).join('\n'),
        }, n, sinkPort, pfFile, { uid: Number(pw[2]), gid: Number(pw[3]) }, log, 'postfix');
      } finally { await p.stop(); }
    }
    let pn: Side;
    {
      const site = writeSite(join(dir, 'site-postern'));
      const sinkPort = await freePort();
      const port = await freePort();
      const conf = join(dir, 'postern');
      const queueDir = join(conf, 'data', 'queue');
      const m = await PosternMaster.start(conf, site.mainCf + [`relayhost = [127.0.0.1]:${sinkPort}`, `queue_directory = ${queueDir}`, `data_directory = ${join(conf, 'data', 'lib')}`, ''].join('\n'), port);
      try {
        pn = await phases({
          queueDir, qmgrPid: () => m.pid,
          flush: async () => { const r = m.cli('queue', 'flush'); if (r.status !== 0) throw new Error(`postern queue flush: exit ${r.status}: ${r.stderr}`); },
          tail: () => m.logTail.split('\n').slice(-12).join('\n'),
        }, n, sinkPort, file, undefined, log, 'postern');
      } finally { await m.stop(); }
    }
    const qnote = 'Postfix: its qmgr process; Postern: its master process, which is the whole system';
    return [
      { metric: 'retry pass against a refusing relayhost', unit: 's', better: 'lower', reference: pf.retry, postern: pn.retry },
      { metric: 'queue manager RSS, peak during the retry pass', unit: 'MB', better: 'lower', reference: pf.retryPeakMB, postern: pn.retryPeakMB, note: qnote },
      { metric: 'queue manager RSS holding N deferred', unit: 'MB', better: 'lower', reference: pf.holdMB, postern: pn.holdMB, note: qnote },
      { metric: 'flush rate once the relayhost accepts', unit: 'msg/s', better: 'higher', reference: n / pf.flush, postern: n / pn.flush },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
