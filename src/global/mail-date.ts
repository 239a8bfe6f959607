/**
 * mail-date - RFC 5322 §3.3 date-time in Postfix's form (global/mail_date.c):
 * "Fri, 27 Nov 2026 18:59:47 +0000 (UTC)", local time with numeric zone and the zone name. The day
 * is space-padded as strftime's %e pads it ("Mon,  7 Dec 2026"): Postfix's format, byte for byte.
 * The zone name is looked up once per UTC offset (Intl formatters are expensive to build, and
 * this runs for every Received: header).
 */
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

let formatter: Intl.DateTimeFormat | undefined;
const zoneByOffset = new Map<number, string>();

function zoneName(d: Date, off: number): string {
  let zone = zoneByOffset.get(off);
  if (zone !== undefined) return zone;
  try {
    formatter ??= new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' });
    zone = formatter.formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? '';
  } catch { zone = ''; }
  if (/^GMT[+-]?\d*$/.test(zone) || zone === '') zone = off === 0 ? 'UTC' : '';
  zoneByOffset.set(off, zone);
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
