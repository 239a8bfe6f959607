/**
 * postern-tlsrpt - `postern tlsrpt`: the SMTP TLS Reporting (RFC 8460) reports of a day
 * (docs/tls-rpt.md).
 *
 * SYNOPSIS
 *   postern tlsrpt report [DAY]   print the JSON report of each policy domain (DAY = YYYY-MM-DD, UTC;
 *                                 default today so far)
 *   postern tlsrpt send [DAY]     send them now to the domains' rua (default yesterday); the
 *                                 master does this daily by itself
 *   postern tlsrpt summary FILE...  what reports other servers sent about our domains say
 *                                 (JSON, .json.gz, or the report mail; tlsrpt/tlsrpt-summary.ts)
 */
import { resolve } from 'node:path';
import type { CliContext } from './cli-context.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { logger } from '../util/msg.ts';
import { sendTlsRptReports, tlsRptReportsFor } from '../tlsrpt/tlsrpt.ts';
import { cleanup } from '../master/master-clients.ts';
import { summarizeFile } from '../tlsrpt/tlsrpt-summary.ts';

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const config = MainConfig.load(resolve(ctx.configDir));
  const [sub, dayArg] = args;
  if (sub === 'summary') {
    let bad = 0;
    for (const f of args.slice(1)) {
      try { for (const l of summarizeFile(f)) process.stdout.write(`${l}\n`); } catch (e) { bad++; process.stderr.write(`postern tlsrpt: ${f}: ${(e as Error).message}\n`); }
    }
    return bad ? 1 : 0;
  }
  const day = (d: number) => new Date(Date.now() + d * 86400_000).toISOString().slice(0, 10);
  if (dayArg !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(dayArg)) { process.stderr.write(`postern tlsrpt: ${dayArg}: expected YYYY-MM-DD\n`); return 1; }
  if (sub === 'report') {
    const reports = tlsRptReportsFor(config, dayArg ?? day(0));
    process.stdout.write(JSON.stringify(Object.fromEntries(reports), null, 2) + '\n');
    return 0;
  }
  if (sub === 'send') {
    for (const l of await sendTlsRptReports(config, dayArg ?? day(-1), { cleanup, log: logger('tlsrpt') })) process.stdout.write(`${l}\n`);
    return 0;
  }
  process.stderr.write('usage: postern tlsrpt report [YYYY-MM-DD] | send [YYYY-MM-DD] | summary FILE...\n');
  return 1;
}
