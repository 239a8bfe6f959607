/**
 * imap-date — IMAP date formats both ways (RFC 3501 §9): date-time
 * `"dd-Mon-yyyy hh:mm:ss +zzzz"` (INTERNALDATE, APPEND) and date `d-Mon-yyyy` (SEARCH
 * BEFORE/ON/SINCE, SENTBEFORE...). Like Dovecot (imap-date.c) the day may be one digit or
 * space-padded, month names are case-insensitive, and the zone is kept so INTERNALDATE can be
 * written back with the offset it was given.
 */
import { ImapParseError } from './imap-parser.ts';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function monthIndex(m: string): number {
  const i = MONTHS.findIndex((x) => x.toLowerCase() === m.toLowerCase());
  if (i < 0) throw new ImapParseError(`Invalid month "${m}"`);
  return i;
}

export interface ImapDateTime {
  /** The instant. */
  date: Date;
  /** Zone offset in minutes east of UTC, as written (+0200 → 120). */
  tzOffset: number;
}

function checkDay(y: number, m: number, d: number): void {
  const dim = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  if (d < 1 || d > dim) throw new ImapParseError(`Invalid day ${d} for ${MONTHS[m]} ${y}`);
}

/** `date-time` (without the surrounding quotes). */
export function parseImapDateTime(s: string): ImapDateTime {
  const m = /^([ \d]?\d)-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(s);
  if (!m) throw new ImapParseError(`Invalid date-time "${s.slice(0, 40)}": expected "dd-Mon-yyyy hh:mm:ss +zzzz"`);
  const day = Number(m[1]!.trim());
  const mon = monthIndex(m[2]!);
  const year = Number(m[3]);
  const [hh, mm, ss] = [Number(m[4]), Number(m[5]), Number(m[6])];
  if (hh > 23 || mm > 59 || ss > 60) throw new ImapParseError(`Invalid time in date-time "${s}"`);
  checkDay(year, mon, day);
  const tzH = Number(m[8]);
  const tzM = Number(m[9]);
  if (tzM > 59) throw new ImapParseError(`Invalid zone in date-time "${s}"`);
  const tzOffset = (m[7] === '-' ? -1 : 1) * (tzH * 60 + tzM);
  const utc = Date.UTC(year, mon, day, hh, mm, Math.min(ss, 59)) - tzOffset * 60_000;
  return { date: new Date(utc), tzOffset };
}

/** `date` (SEARCH): returns the calendar day as a UTC midnight Date. */
export function parseImapDate(s: string): Date {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(s);
  if (!m) throw new ImapParseError(`Invalid date "${s.slice(0, 40)}": expected d-Mon-yyyy`);
  const day = Number(m[1]);
  const mon = monthIndex(m[2]!);
  const year = Number(m[3]);
  checkDay(year, mon, day);
  return new Date(Date.UTC(year, mon, day));
}

const p2 = (n: number): string => String(n).padStart(2, '0');

/** INTERNALDATE form, `"07-Feb-1994 21:52:25 -0800"` without quotes (Dovecot pads the day). */
export function formatImapDateTime(date: Date, tzOffset = 0): string {
  const t = new Date(date.getTime() + tzOffset * 60_000);
  const sign = tzOffset < 0 ? '-' : '+';
  const a = Math.abs(tzOffset);
  return `${p2(t.getUTCDate())}-${MONTHS[t.getUTCMonth()]}-${t.getUTCFullYear()} ` +
    `${p2(t.getUTCHours())}:${p2(t.getUTCMinutes())}:${p2(t.getUTCSeconds())} ${sign}${p2(Math.floor(a / 60))}${p2(a % 60)}`;
}

/** `d-Mon-yyyy` of a UTC calendar day. */
export function formatImapDate(date: Date): string {
  return `${date.getUTCDate()}-${MONTHS[date.getUTCMonth()]}-${date.getUTCFullYear()}`;
}
