/**
 * tzif - the time zone abbreviation libc gives for an instant: what strftime's %Z prints
 * ("CET", "CEST", "-03", "+1030", "UTC"), read from the tz database as glibc reads it. Node's
 * Intl does not give these (it says "GMT+1" where libc says "CET", and has no "-03").
 *
 *   zoneAbbreviation(ms, utoffMinutes[, tz]) → "CEST" | undefined
 *
 * The zone is $TZ as glibc's tzset() takes it: unset → /etc/localtime; "" → UTC; ":NAME" or
 * NAME → the TZif file $TZDIR/NAME (default /usr/share/zoneinfo), or an absolute path; failing
 * that, NAME as a POSIX TZ string ("EST5EDT", "<+03>-3"). The TZif file (RFC 8536, versions
 * 1-4; the 64-bit data block when there is one) gives the local time type in force at the
 * instant; after its last transition the footer's POSIX TZ string rules, as in glibc.
 *
 * The caller passes the UTC offset it computed (from Date, i.e. ICU's copy of the tz database),
 * in minutes east (compared rounded: local mean times have seconds): a name is returned only
 * for a local time type with that offset, so the name and the numeric offset never contradict
 * each other; when the system's tz data has none, the result is undefined. Parsed zones are
 * cached per $TZ value.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

interface LocalType { utoff: number; abbr: string }
interface PosixRule { std: LocalType; dst?: LocalType }
interface Zone {
  /** Transition times (seconds since the epoch, ascending) and the type index of each. */
  times: number[];
  idx: number[];
  types: LocalType[];
  footer?: PosixRule;
}

const zones = new Map<string, Zone | undefined>();

/** The abbreviation for instant `ms` whose UTC offset is `offMinutes` east, or undefined. */
export function zoneAbbreviation(ms: number, offMinutes: number, tz: string | undefined = process.env.TZ): string | undefined {
  const off = Math.round(offMinutes);
  const same = (x: LocalType | undefined) => x !== undefined && Math.round(x.utoff / 60) === off;
  const key = tz ?? '\0localtime';
  let z = zones.get(key);
  if (!zones.has(key)) { z = loadZone(tz); zones.set(key, z); }
  if (!z) return undefined;
  const t = Math.floor(ms / 1000);
  const { times, idx, types } = z;
  if (times.length === 0 || t < times[times.length - 1]! || !z.footer) {
    // glibc: before the first transition, the first local time type.
    let lo = 0, hi = times.length;   // first transition > t
    while (lo < hi) { const mid = (lo + hi) >> 1; if (times[mid]! <= t) lo = mid + 1; else hi = mid; }
    const type = lo === 0 ? types[0] : types[idx[lo - 1]!];
    if (type && same(type) && (times.length > 0 || !z.footer)) return type.abbr;
  }
  if (z.footer) {
    if (same(z.footer.std)) return z.footer.std.abbr;
    if (same(z.footer.dst)) return z.footer.dst!.abbr;
  }
  for (let i = types.length - 1; i >= 0; i--) if (same(types[i])) return types[i]!.abbr;
  return undefined;
}

function loadZone(tz: string | undefined): Zone | undefined {
  if (tz === '') return utc();
  if (tz === undefined) {
    try { return parseTzif(readFileSync('/etc/localtime')); } catch { return utc(); }
  }
  const name = tz.startsWith(':') ? tz.slice(1) : tz;
  if (name !== '' && !name.split('/').includes('..')) {
    const file = isAbsolute(name) ? name : join(process.env.TZDIR || '/usr/share/zoneinfo', name);
    try { return parseTzif(readFileSync(file)); } catch { /* not a TZif file: a POSIX TZ string? */ }
  }
  const rule = parsePosixTz(name);
  return rule ? { times: [], idx: [], types: [], footer: rule } : undefined;
}

function utc(): Zone { return { times: [], idx: [], types: [{ utoff: 0, abbr: 'UTC' }] }; }

/** RFC 8536 TZif; throws on anything else. */
function parseTzif(b: Buffer): Zone {
  const header = (at: number) => {
    if (b.toString('latin1', at, at + 4) !== 'TZif') throw new Error('not a TZif file');
    const n = (i: number) => b.readUInt32BE(at + 20 + 4 * i);
    return { version: b[at + 4]!, isutcnt: n(0), isstdcnt: n(1), leapcnt: n(2), timecnt: n(3), typecnt: n(4), charcnt: n(5) };
  };
  let h = header(0);
  let at = 44;
  let size = 4;
  if (h.version >= 0x32) {   // '2' or later: skip the 32-bit block, read the 64-bit one
    at += h.timecnt * 5 + h.typecnt * 6 + h.charcnt + h.leapcnt * 8 + h.isstdcnt + h.isutcnt;
    h = header(at);
    at += 44;
    size = 8;
  }
  const times: number[] = [];
  for (let i = 0; i < h.timecnt; i++, at += size) times.push(size === 8 ? Number(b.readBigInt64BE(at)) : b.readInt32BE(at));
  const idx: number[] = [];
  for (let i = 0; i < h.timecnt; i++) idx.push(b[at++]!);
  const raw: { utoff: number; abbrind: number }[] = [];
  for (let i = 0; i < h.typecnt; i++, at += 6) raw.push({ utoff: b.readInt32BE(at), abbrind: b[at + 5]! });
  const chars = b.subarray(at, at + h.charcnt);
  at += h.charcnt + h.leapcnt * (size + 4) + h.isstdcnt + h.isutcnt;
  const types = raw.map((r) => {
    const end = chars.indexOf(0, r.abbrind);
    return { utoff: r.utoff, abbr: chars.toString('latin1', r.abbrind, end < 0 ? chars.length : end) };
  });
  if (types.length === 0) throw new Error('TZif file without local time types');
  const zone: Zone = { times, idx, types };
  if (size === 8 && b[at] === 0x0a) {
    const end = b.indexOf(0x0a, at + 1);
    const footer = parsePosixTz(b.toString('latin1', at + 1, end < 0 ? b.length : end));
    if (footer) zone.footer = footer;
  }
  return zone;
}

/**
 * The names and offsets of a POSIX TZ string (std offset [dst [offset] [,rule]]); the rule
 * itself is not needed, since the caller knows the offset in force.
 */
function parsePosixTz(s: string): PosixRule | undefined {
  let i = 0;
  const name = (): string | undefined => {
    if (s[i] === '<') {
      const end = s.indexOf('>', i);
      if (end < 0) return undefined;
      const n = s.slice(i + 1, end);
      i = end + 1;
      return n.length >= 3 ? n : undefined;
    }
    const m = /^[A-Za-z]{3,}/.exec(s.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  /** POSIX offsets are west of Greenwich: "5" is UTC-5. Returns seconds east. */
  const offset = (): number | undefined => {
    const m = /^([+-]?)(\d{1,3})(?::(\d{1,2})(?::(\d{1,2}))?)?/.exec(s.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    const secs = Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
    return m[1] === '-' ? secs : -secs;
  };
  const stdName = name();
  if (stdName === undefined) return undefined;
  const stdOff = offset();
  if (stdOff === undefined) return undefined;
  const rule: PosixRule = { std: { utoff: stdOff, abbr: stdName } };
  if (i < s.length && s[i] !== ',') {
    const dstName = name();
    if (dstName === undefined) return rule;
    const save = i;
    const dstOff = s[i] === ',' || i >= s.length ? undefined : offset();
    if (dstOff === undefined) i = save;
    rule.dst = { utoff: dstOff ?? stdOff + 3600, abbr: dstName };
  }
  return rule;
}
