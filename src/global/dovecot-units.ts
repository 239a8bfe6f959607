/**
 * dovecot-units - the values of Dovecot settings that are times or sizes (Dovecot's
 * settings-parser.c settings_get_time() / settings_get_size()), read one way by every
 * Dovecot-side service: auth_failure_delay, auth_cache_ttl, login timeouts, script sizes.
 *
 * DESCRIPTION
 *   parseDovecotTime(value, name): milliseconds. A bare number is seconds; units ms/msecs/
 *   milliseconds, s/secs/seconds, m/mins/minutes, h/hours, d/days, w/weeks. Anything else is an
 *   error that names the setting: "auth_failure_delay = soon: not a time value (e.g. "2 secs")".
 *
 *   parseDovecotSize(value, name): bytes. A bare number is bytes; k, M, G, T (1024-based),
 *   optionally followed by "b" ("64k", "1 MB"). Anything else is an error naming the setting.
 */

/** A Dovecot time setting in milliseconds; throws an error naming `name` when it is not one. */
export function parseDovecotTime(v: string, name: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  if (!m) throw new Error(`${name} = ${v}: not a time value (e.g. "2 secs")`);
  const n = Number(m[1]);
  const unit = m[2]!.toLowerCase();
  if (unit === '' || /^s(ecs?|econds?)?$/.test(unit)) return n * 1000;
  if (/^(ms|msecs?|milliseconds?)$/.test(unit)) return n;
  if (/^m(ins?|inutes?)?$/.test(unit)) return n * 60_000;
  if (/^h(ours?)?$/.test(unit)) return n * 3_600_000;
  if (/^d(ays?)?$/.test(unit)) return n * 86_400_000;
  if (/^w(eeks?)?$/.test(unit)) return n * 604_800_000;
  throw new Error(`${name} = ${v}: unknown time unit "${unit}"`);
}

/** A Dovecot size setting in bytes; throws an error naming `name` when it is not one. */
export function parseDovecotSize(v: string, name: string): number {
  const m = /^\s*(\d{1,15})\s*([bkmgt]?)b?\s*$/i.exec(v);
  if (!m) throw new Error(`${name} = ${v}: not a size (e.g. "1M", "64k")`);
  const unit = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase()]!;
  return Number(m[1]) * unit;
}
