/**
 * mail-date - RFC 5322 §3.3 date-time in Postfix's form (global/mail_date.c):
 * "Fri, 27 Nov 2026 18:59:47 +0000 (UTC)", local time with numeric zone and the zone name. The day
 * is space-padded as strftime's %e pads it ("Mon,  7 Dec 2026"): Postfix's format, byte for byte.
 * The zone name is strftime's %Z, as Postfix writes it: the tz database's abbreviation that libc
 * uses ("+0100 (CET)", "+0200 (CEST)", "-0300 (-03)", "+1030 (+1030)"), read from the TZif file
 * of $TZ or /etc/localtime (util/tzif.ts). It is looked up once per $TZ and UTC offset (this runs
 * for every Received: header). Should the system have no tz data for the offset, the name is
 * Intl's when it is a real name, else "UTC" for +0000, else none.
 */
import { zoneAbbreviation } from '../util/tzif.ts';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const zoneByOffset = new Map<string, string>();

function zoneName(d: Date, off: number): string {
  const key = `${process.env.TZ ?? '\0'}|${off}`;
  let zone = zoneByOffset.get(key);
  if (zone !== undefined) return zone;
  zone = zoneAbbreviation(d.getTime(), off);
  if (zone === undefined) {
    try {   // a new formatter: one takes $TZ when it is made
      zone = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? '';
    } catch { zone = ''; }
    if (/^GMT[+-]?\d*$/.test(zone) || zone === '') zone = off === 0 ? 'UTC' : '';
  }
  zoneByOffset.set(key, zone);
  return zone;
}

export function mailDate(d: Date = new Date()): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  const zone = zoneName(d, off);
  return `${DAYS[d.getDay()]}, ${String(d.getDate()).padStart(2, ' ')} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${sign}${p2(Math.floor(a / 60))}${p2(a % 60)}${zone ? ` (${zone})` : ''}`;
}
