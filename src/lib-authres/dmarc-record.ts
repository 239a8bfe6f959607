/**
 * dmarc-record - THE CONTRACT between inbound verification, which records each DMARC
 * evaluation of mail from outside, and the aggregate report sender (dmarcrep/, `postern dmarc
 * report`), which turns a day of them into RFC 7489 §7.2 reports.
 *
 * DESCRIPTION
 *   cleanup(8) calls recordDmarcEvaluation() with the verdict of authres-verify.ts once the
 *   Authentication-Results header is made (messages refused by p=reject included: they are
 *   reported with disposition reject). Only evaluations that found a policy record are kept
 *   (no record: nobody to report to), and only when postern_dmarc_reporting = yes.
 *
 *   One JSON line per message in $postern_dmarc_directory/YYYY-MM-DD.jsonl (UTC day), appended
 *   with O_APPEND; a line is at most 3500 bytes (so concurrent cleanup processes never
 *   interleave), strings are cut to 255 characters, at most 10 DKIM results are kept; a day
 *   file stops growing at postern_dmarc_day_limit bytes (logged once). No
 *   address is stored: the header From domain, the envelope (SPF) domain, the DKIM d= domains
 *   and the client IP address only (RFC 7489 §7.2 and its privacy considerations, §9.5).
 *
 * FIELDS (DmarcEvaluation)
 *   t (ISO time), ip, from (header From domain), policy (domain, adkim, aspf, p, sp, pct, rua as
 *   published), disposition (applied: none|quarantine|reject), reason (sampled_out when the pct
 *   sample weakened it, local_policy when postern_dmarc_reject/quarantine did), dkimAligned, spfAligned, dkim
 *   [{domain, selector, result}], spf {domain, scope, result}.
 */
import { appendFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { MainConfig } from '../global/mail-conf.ts';
import type { AuthresVerdict } from './authres-verify.ts';
import { logger } from '../util/msg.ts';

export interface DmarcEvaluation {
  t: string;
  ip: string;
  from: string;
  policy: { domain: string; adkim: 'r' | 's'; aspf: 'r' | 's'; p: string; sp: string; pct: number; rua?: string };
  disposition: 'none' | 'quarantine' | 'reject';
  /** Why the disposition is less than the policy asked (Appendix C PolicyOverrideType). */
  reason?: 'sampled_out' | 'local_policy';
  dkimAligned: boolean;
  spfAligned: boolean;
  dkim: { domain: string; selector?: string; result: string }[];
  spf: { domain: string; scope: 'mfrom' | 'helo'; result: string };
}

const log = logger('cleanup');
/** The day file already said to be full (said once per process). */
let full = '';

const cut = (s: string | undefined) => (s ?? '').slice(0, 255);

/** The hook cleanup calls; never throws (a statistic is never worth a message). */
export function recordDmarcEvaluation(config: MainConfig, v: AuthresVerdict, ip: string, now = new Date()): void {
  try {
    const d = v.dmarc;
    if (!d?.record || !config.bool('postern_dmarc_reporting')) return;
    const r = d.record;
    // What was done with the message: reject/quarantine as the verdict applied, else none.
    const disposition = v.action === 'reject' ? 'reject' : v.action === 'quarantine' ? 'quarantine' : 'none';
    // Less than asked: the pct sample (§6.6.4) or this site's postern_dmarc_reject/quarantine.
    const reason = d.result !== 'fail' || !d.policy || d.policy === disposition ? undefined : d.disposition !== d.policy ? 'sampled_out' as const : 'local_policy' as const;
    const ev: DmarcEvaluation = {
      t: now.toISOString(), ip: cut(ip), from: cut(d.fromDomain),
      policy: { domain: cut(r.domain), adkim: r.adkim, aspf: r.aspf, p: r.p, sp: r.sp ?? r.p, pct: r.pct, ...(r.rua ? { rua: cut(r.rua) } : {}) },
      disposition, ...(reason ? { reason } : {}), dkimAligned: d.dkimAligned, spfAligned: d.spfAligned,
      dkim: v.dkimResults.slice(0, 10).map((k) => ({ domain: cut(k.domain).toLowerCase(), ...(k.selector ? { selector: cut(k.selector) } : {}), result: cut(k.result) })),
      spf: { domain: cut(v.spfIdentity.domain), scope: v.spfIdentity.scope, result: cut(v.spf) },
    };
    const line = JSON.stringify(ev);
    if (line.length > 3500) return;
    const dir = config.get('postern_dmarc_directory');
    const file = join(dir, `${now.toISOString().slice(0, 10)}.jsonl`);
    let size = 0;
    try { size = statSync(file).size; } catch { mkdirSync(dir, { recursive: true, mode: 0o750 }); }
    if (size + line.length >= config.size('postern_dmarc_day_limit')) {
      if (full !== file) { full = file; log.warn(`${file}: over postern_dmarc_day_limit (${config.get('postern_dmarc_day_limit')} bytes): DMARC evaluations not recorded for the rest of the day`); }
      return;
    }
    appendFileSync(file, line + '\n', { mode: 0o640 });
  } catch { /* a full disk or a bad directory loses a statistic, never mail */ }
}

/** The evaluations of one UTC day (DAY.jsonl, or DAY.jsonl.sent once reported); torn lines skipped. */
export function readDmarcDay(dir: string, day: string): DmarcEvaluation[] {
  let text: string;
  try { text = readFileSync(join(dir, `${day}.jsonl`), 'utf8'); } catch {
    try { text = readFileSync(join(dir, `${day}.jsonl.sent`), 'utf8'); } catch { return []; }
  }
  const out: DmarcEvaluation[] = [];
  for (const l of text.split('\n')) {
    if (!l) continue;
    try {
      const e = JSON.parse(l) as DmarcEvaluation;
      if (typeof e.ip === 'string' && typeof e.from === 'string' && typeof e.policy?.domain === 'string' && Array.isArray(e.dkim) && typeof e.spf?.domain === 'string') out.push(e);
    } catch { /* torn or foreign line */ }
  }
  return out;
}
