/**
 * metrics-bench - what the metrics cost the SMTP accept rate (docs/metrics.md): `metrics-accept-20`
 * is smtp-accept-20 (bench-smtp-accept.ts: smtp-source, 2 KB messages, 20 sessions, fsync on)
 * against two Postern smtpd children on the same site: one with postern_metrics = no (the
 * "reference" column), one with postern_metrics = yes, which in bench/postern-smtpd.ts starts the
 * runtime gauges (event-loop delay monitor, memory) and renders the whole page (collect +
 * Prometheus text) every second, as a scraper would make it. The counters themselves are
 * incremented on both sides (they are always on; their cost is in both columns). The ratio
 * (on/off) is the share of the accept rate kept with metrics served.
 *
 *   npm run bench -- metrics-accept          # or with --messages 500 for a quick check
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSite } from './bench-site.ts';
import { startPostern } from './bench-smtp-accept.ts';
import type { PairedScenario } from './bench-scenario.ts';

export function metricsAcceptScenario(sessions = 20): PairedScenario {
  return {
    kind: 'paired',
    name: `metrics-accept-${sessions}`,
    description: `SMTP accept rate with metrics served (scraped every second) vs not, 2 KB messages, ${sessions} sessions (smtp-source)`,
    metric: 'messages accepted/s',
    unit: 'msg/s',
    reference: 'Postern, metrics off',
    async start(o, cleanup) {
      const dir = mkdtempSync(join(tmpdir(), 'postern-bench-metrics-'));
      if (!o.keep) cleanup.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
      const site = writeSite(dir);
      const reference = await startPostern(site, sessions, o, cleanup, 'postern_metrics = no\n', 'postern-metrics-off');
      const postern = await startPostern(site, sessions, o, cleanup, 'postern_metrics = yes\n', 'postern-metrics-on');
      return { reference, postern };
    },
  };
}
