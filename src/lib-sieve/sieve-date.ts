/**
 * sieve-date - the date parts of RFC 5260 §4.2 for the date and currentdate tests: year,
 * month, day, date, julian, hour, minute, second, time, iso8601, std11, zone, weekday, taken
 * in a given zone ("+hhmm"), the date's own zone (:originalzone) or the server's local zone.
 */
import { parseMailDate } from '../lib-mail/mail-date.ts';

export interface ZonedDate { date: Date; offsetMin: number }

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number): string => String(n).padStart(2, '0');

export function zoneOffset(z: string): number | undefined {
  const m = /^([+-])(\d{2})(\d{2})$/.exec(z);
  if (!m) return undefined;
  const v = Number(m[2]) * 60 + Number(m[3]);
  return m[1] === '-' ? -v : v;
}

export function zoneString(off: number): string {
  const a = Math.abs(off);
  return `${off < 0 ? '-' : '+'}${p2(Math.floor(a / 60))}${p2(a % 60)}`;
}

/** The header's date and its own zone; undefined if unparsable. */
export function headerDate(value: string): ZonedDate | undefined {
  const d = parseMailDate(value);
  if (!d) return undefined;
  return { date: d.date, offsetMin: d.tzOffset };
}

export function localOffset(d: Date): number {
  return -d.getTimezoneOffset();
}

/** The value of a date part, undefined for an unknown part. */
export function datePart(zd: ZonedDate, part: string): string | undefined {
  const t = new Date(zd.date.getTime() + zd.offsetMin * 60_000);
  const Y = t.getUTCFullYear();
  const M = t.getUTCMonth() + 1;
  const D = t.getUTCDate();
  const h = t.getUTCHours();
  const mi = t.getUTCMinutes();
  const s = t.getUTCSeconds();
  const y4 = String(Y).padStart(4, '0');
  switch (part.toLowerCase()) {
    case 'year': return y4;
    case 'month': return p2(M);
    case 'day': return p2(D);
    case 'date': return `${y4}-${p2(M)}-${p2(D)}`;
    case 'julian': return String(Math.floor(Date.UTC(Y, M - 1, D) / 86_400_000) + 40587);
    case 'hour': return p2(h);
    case 'minute': return p2(mi);
    case 'second': return p2(s);
    case 'time': return `${p2(h)}:${p2(mi)}:${p2(s)}`;
    case 'iso8601': return `${y4}-${p2(M)}-${p2(D)}T${p2(h)}:${p2(mi)}:${p2(s)}${zd.offsetMin === 0 ? 'Z' : zoneString(zd.offsetMin).replace(/(\d\d)$/, ':$1')}`;
    case 'std11': return `${DAYS[t.getUTCDay()]}, ${D} ${MONTHS[M - 1]} ${y4} ${p2(h)}:${p2(mi)}:${p2(s)} ${zoneString(zd.offsetMin)}`;
    case 'zone': return zoneString(zd.offsetMin);
    case 'weekday': return String(t.getUTCDay());
  }
  return undefined;
}
