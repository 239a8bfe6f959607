/**
 * master-metrics - the /metrics page of the HTTP service (httpd/httpd.ts, route table
 * master-httpd.ts): every counter, gauge and histogram of the mail system in the Prometheus
 * text format, added up over the master's process, its worker threads (qmgr and the delivery
 * agents) and its child processes (util/metrics.ts sources, asked over the master↔service
 * message channels of master-thread.ts and master-process.ts at each scrape).
 *
 * On top of what the services count as events happen, the master adds at scrape time:
 *   postern_queue_messages{queue}                       messages per queue directory
 *   postern_queue_messages_by_age{queue,age_max_minutes}  the same per qshape(1) age bucket
 *                                                      (5, 10, 20, ... 1280 minutes, +Inf)
 * from a scan of maildrop, incoming, active, deferred and hold; a file's arrival time is read
 * once (the queue file's T record) and remembered while the file exists.
 *
 * SECURITY
 *   Off unless postern_metrics = yes, and then served on the HTTP service's listeners only, so
 *   postern_http_listen decides who can connect (loopback: 127.0.0.1:PORT). With
 *   postern_metrics_auth_file, HTTP basic authentication against its "user:password" lines
 *   (constant-time comparison; a wrong or missing password gets 401). No label carries an
 *   address or a user name.
 *
 * PARAMETERS
 *   postern_metrics, postern_metrics_auth_file, queue_directory
 */
import { readFileSync } from 'node:fs';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { ServiceContext } from '../lib-master/master-service.ts';
import type { HttpRequest, HttpResponse, HttpRoute } from '../lib-http/http-route.ts';
import { MailQueue, type QueueName } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { metrics, renderText } from '../util/metrics.ts';
import { startRuntimeMetrics } from '../util/metrics-runtime.ts';

const QUEUES: QueueName[] = ['maildrop', 'incoming', 'active', 'deferred', 'hold'];
/** qshape's age buckets, in minutes. */
const AGE_BUCKETS = [5, 10, 20, 40, 80, 160, 320, 640, 1280];
/** The Prometheus text format's content type. */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Queue sizes by queue and age, from a scan that remembers each file's arrival time. */
export class QueueShape {
  private readonly queue: MailQueue;
  private arrival = new Map<string, number>();
  counts = new Map<QueueName, number[]>();
  constructor(queue: MailQueue) { this.queue = queue; }

  async scan(now = Date.now()): Promise<void> {
    const seen = new Map<string, number>();
    const counts = new Map<QueueName, number[]>();
    for (const q of QUEUES) {
      const row = new Array<number>(AGE_BUCKETS.length + 1).fill(0);
      counts.set(q, row);
      try {
        for await (const qid of this.queue.list(q)) {
          let t = this.arrival.get(qid);
          if (t === undefined) {
            try { t = (await QueueFile.open(this.queue.path(q, qid), qid)).arrival * 1000; } catch { continue; }
          }
          seen.set(qid, t);
          const age = (now - t) / 60000;
          let b = AGE_BUCKETS.findIndex((m) => age < m);
          if (b < 0) b = AGE_BUCKETS.length;
          row[b]!++;
        }
      } catch { /* a queue directory that cannot be read counts as empty */ }
    }
    this.arrival = seen;
    this.counts = counts;
  }
}

/** The "user:password" lines of postern_metrics_auth_file. */
function readAuthFile(path: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const l = line.trim();
    if (l === '' || l.startsWith('#')) continue;
    const c = l.indexOf(':');
    if (c > 0) m.set(l.slice(0, c), l.slice(c + 1));
  }
  return m;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Does the request carry a valid "Authorization: Basic" for one of the users? */
export function basicAuthOk(req: Pick<HttpRequest, 'headers'>, users: ReadonlyMap<string, string>): boolean {
  const h = req.headers['authorization'];
  const v = Array.isArray(h) ? h[0] : h;
  const m = v ? /^Basic\s+([A-Za-z0-9+/=]{1,1024})\s*$/i.exec(v) : null;
  if (!m) return false;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const c = text.indexOf(':');
  if (c < 0) return false;
  const want = users.get(text.slice(0, c));
  // Compare digests (equal lengths) so the time does not tell how much of the password matched.
  const ok = timingSafeEqual(digest(want ?? '\u0000no user'), digest(text.slice(c + 1)));
  return want !== undefined && ok;
}

let shape: QueueShape | undefined;

export function metricsRoutes(ctx: ServiceContext): HttpRoute[] {
  const c = ctx.config;
  if (!c.bool('postern_metrics')) return [];
  startRuntimeMetrics('master');
  const authFile = c.get('postern_metrics_auth_file').trim();
  shape = new QueueShape(MailQueue.fromConfig(c));
  const qs = shape;
  metrics.gauge('postern_queue_messages', 'Messages in each queue directory', ['queue'], (g) => {
    for (const [q, row] of qs.counts) g.labels(q).set(row.reduce((a, b) => a + b, 0));
  });
  metrics.gauge('postern_queue_messages_by_age', 'Messages in each queue by age (qshape buckets: age below age_max_minutes, not cumulative)', ['queue', 'age_max_minutes'], (g) => {
    for (const [q, row] of qs.counts) row.forEach((n, i) => g.labels(q, i < AGE_BUCKETS.length ? String(AGE_BUCKETS[i]) : '+Inf').set(n));
  });
  return [{
    name: 'metrics',
    path: '/metrics',
    async handle(req): Promise<HttpResponse> {
      if (authFile) {
        let users: Map<string, string>;
        try { users = readAuthFile(authFile); } catch (e) {
          ctx.log.warn(`postern_metrics_auth_file: ${(e as Error).message}: /metrics refused`);
          return { status: 503, body: 'metrics authentication is misconfigured\n' };
        }
        if (!basicAuthOk(req, users)) {
          return { status: 401, headers: { 'WWW-Authenticate': 'Basic realm="postern metrics", charset="UTF-8"' }, body: 'authentication required\n' };
        }
      }
      await qs.scan();
      return { status: 200, type: CONTENT_TYPE, body: renderText(await metrics.collect()) };
    },
  }];
}
