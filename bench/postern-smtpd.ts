/**
 * postern-smtpd - Postern's smtpd alone, in its own Node process, for the SMTP benchmarks:
 * the same wiring as src/smtpd/smtpd-service.ts (createSmtpd + SmtpdCheck restrictions +
 * TrivialRewrite + the durable MailQueue) but without the master and without a qmgr trigger,
 * so accepted mail stays in `incoming` (the reference Postfix is configured to match; see
 * bench/README.md).
 *
 *   node bench/postern-smtpd.ts CONFIG_DIR PORT
 *
 * Reads CONFIG_DIR/main.cf, listens on 127.0.0.1:PORT, appends its maillog lines to
 * CONFIG_DIR/maillog (as Postfix's maillog_file), prints "ready" on stdout once listening.
 * Log lines are written as in production (src/util/msg.ts's default sink): the lines of one
 * event-loop turn in one synchronous write.
 * SIGTERM/SIGINT close it with exit status 0, so `node --cpu-prof` writes its profile.
 * With postern_metrics = yes in main.cf it also starts the runtime gauges and renders the metrics
 * page every second, as a Prometheus scrape would have it made (bench/metrics-bench.ts).
 */
import '../src/util/uv-threadpool.ts';   // first: the file-system thread pool as `postern start` sizes it
import { createServer } from 'node:net';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { MainConfig } from '../src/global/mail-conf.ts';
import { MailQueue } from '../src/global/mail-queue.ts';
import { TrivialRewrite } from '../src/trivial-rewrite/trivial-rewrite.ts';
import { SmtpdCheck } from '../src/smtpd/smtpd-check.ts';
import { createSmtpd } from '../src/smtpd/smtpd.ts';
import { smtpdClients } from '../src/master/master-clients.ts';
import { setLogSink } from '../src/util/msg.ts';
import { metrics, renderText } from '../src/util/metrics.ts';
import { startRuntimeMetrics } from '../src/util/metrics-runtime.ts';
import { idleMemoryRelease } from '../src/util/idle-gc.ts';

const [configDir, portArg] = process.argv.slice(2);
if (!configDir || !portArg) {
  process.stderr.write('usage: node bench/postern-smtpd.ts CONFIG_DIR PORT\n');
  process.exit(64);
}
const logFd = openSync(join(configDir, 'maillog'), 'a');
let logLines: string[] = [];
function flushLog(): void {
  if (logLines.length === 0) return;
  const text = logLines.join('');
  logLines = [];
  writeSync(logFd, text);
}
process.once('exit', () => { flushLog(); closeSync(logFd); });
setLogSink((line) => {
  if (logLines.length === 0) setImmediate(flushLog);
  logLines.push(line + '\n');
});

const config = MainConfig.load(configDir);
const queue = MailQueue.fromConfig(config);
queue.ensureDirs();
const rewrite = await TrivialRewrite.open(config);
const policy = await SmtpdCheck.open(config, { rewrite });
const smtpd = createSmtpd(config, { ...smtpdClients, queue, policy, service: 'smtp' });
idleMemoryRelease(config.time('postern_idle_memory_release') * 1000);   // as the master does
const server = createServer((sock) => smtpd.handle(sock));
if (config.bool('postern_metrics')) {
  startRuntimeMetrics('smtpd');
  setInterval(() => { void metrics.collect().then((snap) => renderText(snap)); }, 1000).unref();
}
server.listen(Number(portArg), '127.0.0.1', () => { process.stdout.write('ready\n'); });

function stop(): void {
  server.close();
  for (const s of smtpd.sessions) s.destroy();
  setTimeout(() => process.exit(0), 100).unref();
}
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
