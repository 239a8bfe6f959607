/**
 * mail-date — RFC 5322 §3.3 Date header parsing (with the obsolete forms of §4.3: no weekday,
 * no seconds, 2-digit years, named zones like GMT/PST, trailing comments), for SEARCH
 * SENTBEFORE/SENTON/SENTSINCE and SORT DATE. SENT* keys compare the calendar day as written in
 * the header's own zone (RFC 3501 §6.4.4 "disregarding time and timezone"), so the result keeps
 * both the instant and that local day. Unparsable → undefined (Dovecot then treats the sent date
 * as 0: such messages are SENTBEFORE any day, checked against Dovecot 2.3).
 * messageDateCreate() writes one as Dovecot's lib-mail does (message_date_create(): a zero-padded
 * day, numeric zone, no zone comment: "Mon, 07 Dec 2026 20:11:09 +0000"), for lmtpd's Received:.
 */

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const ZONES: Record<string, number> = {
  UT: 0, GMT: 0, Z: 0, EST: -300, EDT: -240, CST: -360, CDT: -300, MST: -420, MDT: -360, PST: -480, PDT: -420,
};

const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTH_NAMES = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Dovecot's message_date_create(): local time, "Mon, 07 Dec 2026 20:11:09 +0000". */
export function messageDateCreate(d: Date): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const a = Math.abs(off);
  return `${DAY_NAMES[d.getDay()]}, ${p2(d.getDate())} ${MONTH_NAMES[d.getMonth()]} ${d.getFullYear()} ` +
    `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${off >= 0 ? '+' : '-'}${p2(Math.floor(a / 60))}${p2(a % 60)}`;
}

export interface MailDate {
  date: Date;
  tzOffset: number;
  /** Calendar day in the header's own zone, as a UTC midnight Date. */
  day: Date;
}

export function parseMailDate(value: string): MailDate | undefined {
  const v = value.replace(/\([^)]*\)/g, ' ').replace(/\s+/g, ' ').trim();
  const m = /^(?:[A-Za-z]{3},?\s*)?(\d{1,2})\s+([A-Za-z]{3})[a-z]*\s+(\d{2,4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([+-]\d{4}|[A-Za-z]{1,5})?/.exec(v);
  if (!m) return undefined;
  const day = Number(m[1]);
  const mon = MONTHS.indexOf(m[2]!.toLowerCase());
  if (mon < 0 || day < 1 || day > 31) return undefined;
  let year = Number(m[3]);
  if (m[3]!.length === 2) year += year < 50 ? 2000 : 1900;
  else if (m[3]!.length === 3) year += 1900;
  const hh = Number(m[4]);
  const mm = Number(m[5]);
  const ss = m[6] ? Number(m[6]) : 0;
  if (hh > 23 || mm > 59 || ss > 60) return undefined;
  let tz = 0;
  const z = m[7];
  if (z && /^[+-]\d{4}$/.test(z)) {
    tz = (z[0] === '-' ? -1 : 1) * (Number(z.slice(1, 3)) * 60 + Number(z.slice(3, 5)));
  } else if (z) tz = ZONES[z.toUpperCase()] ?? 0;
  const utc = Date.UTC(year, mon, day, hh, mm, Math.min(ss, 59)) - tz * 60_000;
  return { date: new Date(utc), tzOffset: tz, day: new Date(Date.UTC(year, mon, day)) };
}
