/**
 * daily-report - what the daily aggregate report senders (tlsrpt/ for RFC 8460 TLS-RPT,
 * dmarcrep/ for RFC 7489 DMARC) share: the per-UTC-day record files, the once-a-day schedule,
 * and the submission of a report mail through cleanup like any local mail.
 *
 * DESCRIPTION
 *   Records live in DIR/YYYY-MM-DD.jsonl (UTC day). A finished day (before today) not yet
 *   reported is pending; once reported it is renamed DAY.jsonl.sent, kept two weeks (so the
 *   command can print it again), then removed.
 *
 *   scheduleDaily(run) runs `run` at once (days missed while the master was down), then every
 *   day at a random moment in the first hour after 00:00 UTC (RFC 8460 §4.1 and RFC 7489 §7.2
 *   ask senders to spread their load).
 *
 *   submitReportMail() queues one message from `sender` to one recipient through cleanup
 *   (protocol local, missing headers added, no content checks), as Postfix's sendmail would.
 */
import { readdirSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { CleanupClient } from './cleanup-client.ts';
import { cleanupSettings } from './cleanup-client.ts';
import type { MainConfig } from './mail-conf.ts';
import { MailQueue } from './mail-queue.ts';

/** Finished days not sent yet (before today, UTC). */
export function pendingDays(dir: string, now = new Date()): string[] {
  const today = now.toISOString().slice(0, 10);
  try {
    return readdirSync(dir).map((f) => /^(\d{4}-\d{2}-\d{2})\.jsonl$/.exec(f)?.[1]).filter((d): d is string => !!d && d < today).sort();
  } catch { return []; }
}

/** Day files already reported are kept 14 days, then removed. */
export function pruneSent(dir: string, now = Date.now()): void {
  let files: string[];
  try { files = readdirSync(dir); } catch { return; }
  for (const f of files) {
    const m = /^(\d{4}-\d{2}-\d{2})\.jsonl\.sent$/.exec(f);
    if (m && now - Date.parse(`${m[1]}T00:00:00Z`) > 15 * 86400_000) { try { unlinkSync(join(dir, f)); } catch { /* gone */ } }
  }
}

export function markSent(dir: string, day: string): void {
  renameSync(join(dir, `${day}.jsonl`), join(dir, `${day}.jsonl.sent`));
}

/**
 * The daily loop of a report sender: prune, then report each pending day (a failure leaves the
 * day pending for the next run); returns stop().
 */
export function scheduleDaily(dir: string, reportDay: (day: string) => Promise<void>, warn: (m: string) => void): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const run = async () => {
    pruneSent(dir);
    for (const day of pendingDays(dir)) {
      if (stopped) return;
      try {
        await reportDay(day);
        markSent(dir, day);
      } catch (e) {
        warn(`reports of ${day}: ${(e as Error).message}; trying again later`);
      }
    }
  };
  const schedule = () => {
    if (stopped) return;
    const now = new Date();
    const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1) + Math.floor(Math.random() * 3600_000);
    timer = setTimeout(() => { void run().finally(schedule); }, Math.min(next - now.getTime(), 2 ** 31 - 1));
  };
  void run().finally(schedule);
  return { stop() { stopped = true; clearTimeout(timer); } };
}

/** Queue one report mail; returns the queue id or the refusal. */
export async function submitReportMail(config: MainConfig, cleanup: CleanupClient, sender: string, to: string, content: Buffer): Promise<{ queueId: string } | { refused: string }> {
  const queue = new MailQueue(config.get('queue_directory'));
  const c = await cleanup.open(cleanupSettings(config), queue, {
    sender, attrs: { protocol_name: 'local' }, addMissingHeaders: true, contentChecks: false, origin: 'local',
  });
  c.addRecipient({ address: to, orig: to });
  await c.write(content);
  const r = await c.finish();
  return 'reject' in r ? { refused: `${r.reject.code} ${r.reject.enh} ${r.reject.text}` } : { queueId: r.queueId };
}
