/**
 * auth-quota-rule - Dovecot's `quota_rule = *:storage=1G:messages=1000` userdb field
 * (doc: "Quota configuration", plugins/quota/quota.c quota_rule_parse) → a byte and a message
 * limit for the root of the user's mail (`*`). Sizes take Dovecot's suffixes B, k, M, G, T
 * (powers of 1024); a bare number is bytes. `storage=0`, `*:ignore` and relative `+`/`-`/`%`
 * rules mean no absolute limit here.
 */
export interface QuotaLimits { quotaBytes?: number; quotaMessages?: number }

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "1G" → 1073741824; undefined when malformed. */
export function parseQuotaSize(v: string): number | undefined {
  const m = /^(\d{1,15})\s*([bkmgt]?)b?$/i.exec(v.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
}

/** Parse one quota_rule value; throws Error with a message naming the bad part. */
export function parseQuotaRule(rule: string): QuotaLimits {
  const parts = rule.split(':');
  const mailbox = parts.shift();
  if (mailbox !== '*') return {}; // per-mailbox rules do not set the user's total
  const out: QuotaLimits = {};
  for (const p of parts) {
    if (p === 'ignore' || p === 'noenforcing') continue;
    const eq = p.indexOf('=');
    if (eq < 0) throw new Error(`quota_rule "${rule}": "${p}" is not key=value`);
    const key = p.slice(0, eq).toLowerCase();
    const val = p.slice(eq + 1);
    if (/^[+-]|%$/.test(val)) continue;
    if (key === 'storage' || key === 'bytes') {
      const n = parseQuotaSize(val);
      if (n === undefined) throw new Error(`quota_rule "${rule}": bad size "${val}" (use e.g. 512M, 1G)`);
      if (n > 0) out.quotaBytes = n;
    } else if (key === 'messages') {
      if (!/^\d{1,15}$/.test(val)) throw new Error(`quota_rule "${rule}": bad message count "${val}"`);
      if (Number(val) > 0) out.quotaMessages = Number(val);
    } else {
      throw new Error(`quota_rule "${rule}": unknown limit "${key}" (storage, bytes or messages)`);
    }
  }
  return out;
}
