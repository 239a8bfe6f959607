/**
 * auth-quota-warning - the quota settings of a user that Dovecot's quota plugin reads from
 * `plugin { }` and lets the userdb override (doc: "Quota configuration", plugins/quota/quota.c
 * quota_warning_parse, quota_root_get_grace): resolved once per userdb lookup into the
 * UserRecord, so every delivery path (lmtpd, virtual, imapd APPEND) sees the same.
 *
 *   quota_rule     = *:storage=1G           default limit when the userdb gives none
 *   quota_grace    = 10%%                    how far the message that crosses the limit may go
 *                                            over it (bytes with B/k/M/G/T, or % of the limit)
 *   quota_warning  = storage=95%% quota-warning 95 %u
 *   quota_warning2 = storage=80%% quota-warning 80 %u
 *   quota_warning3 = -storage=100%% quota-warning below %u   ('-': when usage drops below)
 *   service quota-warning { executable = script /usr/local/bin/quota-warning.sh  user = vmail }
 *
 * A warning's rule is `storage=N%|SIZE` and/or `messages=N%|N` joined by ':'; the rest of the
 * value is the name of a service whose `executable = script PATH [ARGS]` is run with the
 * warning's arguments (%u, %n, %d, %h expanded; %% is a literal '%'). Warnings are kept in the
 * order of their suffix (quota_warning, quota_warning2, ... quota_warningN), as Dovecot keeps
 * them; Dovecot runs only the first one that matches, so sites list the highest first.
 * A warning naming a service that is not declared, or whose executable is not `script ...`,
 * is dropped with an error naming the setting (Dovecot logs the same at run time).
 */
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import { parseQuotaSize } from './auth-quota-rule.ts';

export interface QuotaLimitSpec {
  /** Bytes: absolute, or percent of the user's storage limit. */
  bytes?: { value: number; percent: boolean };
  messages?: { value: number; percent: boolean };
}

export interface QuotaWarning {
  /** The setting it came from (quota_warning, quota_warning2, ...), for logs. */
  setting: string;
  /** `-storage=...`: run when usage drops below the limit instead of when it reaches it. */
  reverse: boolean;
  limit: QuotaLimitSpec;
  /** The script and its arguments: the service's `script PATH ARGS` then the warning's own. */
  argv: string[];
  /** The service's `user =` (the script runs as this user when Postern runs as root). */
  runAs?: string;
}

/** Most quota_warningN settings read (quota_warning, quota_warning2 ... quota_warning100). */
export const MAX_QUOTA_WARNINGS = 100;

/** Parse `storage=95%` / `messages=10` parts of a warning rule; throws Error naming the bad part. */
export function parseWarningRule(rule: string): QuotaLimitSpec {
  const out: QuotaLimitSpec = {};
  for (const p of rule.split(':')) {
    const eq = p.indexOf('=');
    if (eq < 0) throw new Error(`"${p}" is not key=value (e.g. storage=95%)`);
    const key = p.slice(0, eq).toLowerCase();
    const val = p.slice(eq + 1);
    const pct = /^(\d{1,9})%$/.exec(val);
    if (key === 'storage' || key === 'bytes') {
      if (pct) out.bytes = { value: Number(pct[1]), percent: true };
      else {
        const n = parseQuotaSize(val);
        if (n === undefined) throw new Error(`bad size "${val}" (use e.g. 95% or 900M)`);
        out.bytes = { value: n, percent: false };
      }
    } else if (key === 'messages') {
      if (pct) out.messages = { value: Number(pct[1]), percent: true };
      else if (/^\d{1,15}$/.test(val)) out.messages = { value: Number(val), percent: false };
      else throw new Error(`bad message count "${val}"`);
    } else {
      throw new Error(`unknown limit "${key}" (storage, bytes or messages)`);
    }
  }
  return out;
}

/** Dovecot's '%%' escape: the configuration keeps '95%%' so that var-expand leaves one '%'. */
function unescapePercent(s: string): string { return s.replace(/%%/g, '%'); }

/**
 * The quota_warning settings for one user: plugin {} values overridden by same-named userdb
 * fields. `expand` expands %u/%n/%d/%h in the arguments. Errors go to `warn` and drop the one
 * warning, never the user.
 */
export function quotaWarningsFor(conf: DovecotConfig, fields: Record<string, string>, expand: (s: string) => string,
  warn: (msg: string) => void): QuotaWarning[] {
  const out: QuotaWarning[] = [];
  for (let i = 1; i <= MAX_QUOTA_WARNINGS; i++) {
    const setting = i === 1 ? 'quota_warning' : `quota_warning${i}`;
    const raw = fields[setting] ?? conf.get(`plugin/${setting}`);
    if (raw === undefined) { if (i > 1) break; continue; }
    if (raw.trim() === '') continue;
    const words = raw.trim().split(/\s+/);
    let rule = words.shift()!;
    const reverse = rule.startsWith('-');
    if (reverse) rule = rule.slice(1);
    const service = words.shift();
    try {
      const limit = parseWarningRule(unescapePercent(rule));
      if (!service) throw new Error('no service named after the rule (e.g. storage=95%% quota-warning 95 %u)');
      const svc = conf.services.find((s) => s.name === service);
      if (!svc) throw new Error(`service "${service}" is not declared (add service ${service} { executable = script /path/to/script.sh })`);
      const exe = (svc.settings.executable ?? '').trim().split(/\s+/);
      if (exe[0] !== 'script' || !exe[1]) throw new Error(`service ${service}: executable must be "script /path/to/script.sh" (is "${svc.settings.executable ?? ''}")`);
      const w: QuotaWarning = { setting, reverse, limit, argv: [...exe.slice(1), ...words.map((a) => expand(a))] };
      if (svc.settings.user) w.runAs = svc.settings.user;
      out.push(w);
    } catch (e) {
      warn(`plugin ${setting} = ${raw}: ${(e as Error).message}; this warning is not used`);
    }
  }
  return out;
}

/**
 * quota_grace in bytes for a storage limit when the userdb or plugin {} sets it; undefined when
 * neither does (the store then applies Dovecot's default, 10% of the limit).
 */
export function quotaGraceBytes(conf: DovecotConfig, fields: Record<string, string>, limit: number | undefined): number | undefined {
  const set = fields.quota_grace ?? conf.get('plugin/quota_grace');
  if (set === undefined || !limit) return undefined;
  const raw = unescapePercent(set.trim());
  const pct = /^(\d{1,9})%$/.exec(raw);
  if (pct) return Math.floor(limit * Number(pct[1]) / 100);
  return parseQuotaSize(raw) ?? Math.floor(limit / 10);
}
