/**
 * console-maillog - what the web console reads from maillog_file (master/master-maillog.ts,
 * postlogd's line shape "Mmm dd hh:mm:ss host program[pid]: text"): the delivery and rejection
 * counts of the last hour (12 five-minute buckets) and of the last day (24 hours), and a search
 * of the lines by queue ID or address.
 *
 *   delivered  "status=sent"       deferred  "status=deferred"     bounced  "status=bounced"
 *   rejected   "reject:" (smtpd's NOQUEUE/queue-ID reject lines, Postfix's text)
 *
 * Only the last 32 MiB of the file are read (a day of a busy server fits; older lines are not
 * counted). The charts read it at most once every 5 seconds (the lines are reused meanwhile, so
 * a chart may miss the last seconds); a search reads it afresh and returns at most 500 lines,
 * the newest last. Lines carry no year: a time more than a day in the future is taken to be
 * last year's.
 */
import { promises as fsp } from 'node:fs';

const TAIL_BYTES = 32 << 20;
export const SEARCH_LIMIT = 500;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The time of a log line (local time, as the log writes it), or undefined. */
export function lineTime(line: string, now: Date): number | undefined {
  const m = /^([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) /.exec(line);
  if (!m) return undefined;
  const mon = MONTHS.indexOf(m[1]!);
  if (mon < 0) return undefined;
  let t = new Date(now.getFullYear(), mon, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])).getTime();
  if (t > now.getTime() + 86400_000) t = new Date(now.getFullYear() - 1, mon, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])).getTime();
  return t;
}

/** The last read, reused for CACHE_MS: a dashboard left reloading costs one read per period. */
let cached: { path: string; at: number; lines: string[] } | undefined;
const CACHE_MS = 5000;

/** The last lines of the file (at most TAIL_BYTES, read at most every 5 s); [] when it cannot be read. */
export async function tailLines(path: string, now = Date.now()): Promise<string[]> {
  if (!path || path.startsWith('/dev/')) return [];
  if (cached && cached.path === path && now - cached.at < CACHE_MS && now >= cached.at) return cached.lines;
  const lines = await readTail(path);
  cached = { path, at: now, lines };
  return lines;
}

/** The last lines, read now (the search wants the newest lines). */
export async function readTail(path: string): Promise<string[]> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(path, 'r');
    const size = (await fh.stat()).size;
    const start = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - start);
    let off = 0;
    while (off < buf.length) {
      const { bytesRead } = await fh.read(buf, off, buf.length - off, start + off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    const lines = buf.subarray(0, off).toString('utf8').split('\n');
    if (start > 0) lines.shift(); // a partial first line
    if (lines[lines.length - 1] === '') lines.pop();
    return lines;
  } catch {
    return [];
  } finally {
    await fh?.close();
  }
}

export type EventKind = 'delivered' | 'deferred' | 'bounced' | 'rejected';
export function eventOf(line: string): EventKind | undefined {
  const m = /[ ,]status=(sent|deferred|bounced)(?:[ ,]|$)/.exec(line);
  if (m) return m[1] === 'sent' ? 'delivered' : m[1] as EventKind;
  if (/: reject: /.test(line)) return 'rejected';
  return undefined;
}

export interface Activity {
  /** 12 five-minute buckets (oldest first) and 24 hourly buckets, per kind. */
  hour: Record<EventKind, number[]>;
  day: Record<EventKind, number[]>;
}

export function activity(lines: readonly string[], now = new Date()): Activity {
  const kinds: EventKind[] = ['delivered', 'deferred', 'bounced', 'rejected'];
  const hour = Object.fromEntries(kinds.map((k) => [k, new Array<number>(12).fill(0)])) as Record<EventKind, number[]>;
  const day = Object.fromEntries(kinds.map((k) => [k, new Array<number>(24).fill(0)])) as Record<EventKind, number[]>;
  const n = now.getTime();
  for (const l of lines) {
    const k = eventOf(l);
    if (!k) continue;
    const t = lineTime(l, now);
    if (t === undefined || t > n + 60_000) continue;
    const age = Math.max(0, n - t);
    if (age < 3600_000) hour[k][11 - Math.floor(age / 300_000)]!++;
    if (age < 86400_000) day[k][23 - Math.floor(age / 3600_000)]!++;
  }
  return { hour, day };
}

/** Why a search string is refused, or undefined. */
export function badQuery(q: string): string | undefined {
  if (q.length > 256) return 'the search is longer than 256 characters';
  if (/[\x00-\x1f\x7f]/.test(q)) return 'the search holds a control character';
  return undefined;
}

/** Lines containing q (case-insensitive), the newest SEARCH_LIMIT. */
export function search(lines: readonly string[], q: string): { lines: string[]; more: boolean } {
  const needle = q.toLowerCase();
  const hits: string[] = [];
  for (const l of lines) if (l.toLowerCase().includes(needle)) hits.push(l);
  return { lines: hits.slice(-SEARCH_LIMIT), more: hits.length > SEARCH_LIMIT };
}
