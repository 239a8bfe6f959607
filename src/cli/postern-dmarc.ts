/**
 * postern-dmarc - `postern dmarc`: DMARC aggregate reports (RFC 7489 §7.2; docs/authres.md).
 *
 * SYNOPSIS
 *   postern dmarc report [--day YYYY-MM-DD] [--dry-run]
 *       build the report of each policy domain seen that day (default yesterday, UTC) and mail
 *       it to the domain's rua; --dry-run prints the XML and what would be sent, sends nothing.
 *       The master does this daily by itself when postern_dmarc_reporting = yes; a finished
 *       day sent here is marked reported (DAY.jsonl.sent), so the master does not send it again.
 *   postern dmarc summary FILE...
 *       what aggregate reports other receivers sent about our domains say (XML, .xml.gz, .zip,
 *       or the report mail itself; dmarcrep/dmarc-summary.ts)
 */
import { resolve } from 'node:path';
import type { CliContext } from './cli-context.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { dmarcReportsFor, sendDmarcReports } from '../dmarcrep/dmarcrep.ts';
import { summarizeDmarcFile } from '../dmarcrep/dmarc-summary.ts';
import { cleanup } from '../master/master-clients.ts';
import { markSent, pendingDays } from '../global/daily-report.ts';

const USAGE = 'usage: postern dmarc report [--day YYYY-MM-DD] [--dry-run] | summary FILE...\n';

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'summary') {
    if (!rest.length) { process.stderr.write(USAGE); return 1; }
    let bad = 0;
    for (const f of rest) {
      try { for (const l of summarizeDmarcFile(f)) process.stdout.write(`${l}\n`); } catch (e) { bad++; process.stderr.write(`postern dmarc: ${f}: ${(e as Error).message}\n`); }
    }
    return bad ? 1 : 0;
  }
  if (sub !== 'report') { process.stderr.write(USAGE); return 1; }
  let day = new Date(Date.now() - 86400_000).toISOString().slice(0, 10);
  let dryRun = false;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--dry-run') dryRun = true;
    else if (rest[i] === '--day' && /^\d{4}-\d{2}-\d{2}$/.test(rest[i + 1] ?? '')) day = rest[++i]!;
    else { process.stderr.write(`postern dmarc: ${rest[i]}: unexpected (--day takes YYYY-MM-DD)\n${USAGE}`); return 1; }
  }
  const config = MainConfig.load(resolve(ctx.configDir));
  if (dryRun) for (const r of dmarcReportsFor(config, day).values()) process.stdout.write(r.xml);
  const lines = await sendDmarcReports(config, day, { cleanup, dryRun });
  for (const l of lines) process.stdout.write(`${l}\n`);
  // A finished day sent by hand is not sent again by the master's daily run.
  const dir = config.get('postern_dmarc_directory');
  if (!dryRun && pendingDays(dir).includes(day) && !lines.some((l) => / refused by cleanup: /.test(l))) {
    markSent(dir, day);
    process.stdout.write(`${day}: marked as reported (${day}.jsonl.sent)\n`);
  }
  return 0;
}
