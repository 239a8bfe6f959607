/**
 * milter-config - the main.cf side of the milters (Postfix src/milter/milter.c milter_new(),
 * MILTER_README "Advanced configuration"): the list in smtpd_milters / non_smtpd_milters, with
 * per-milter overrides in braces, and the macro lists sent at each stage.
 *
 * SUMMARY
 *   const c = milterConfig(config, 'smtpd_milters');   // undefined when the list is empty or DISABLE
 *   c.milters  → MilterSettings[];   c.macros.conn → ['j', '{daemon_name}', ...]
 *
 * DESCRIPTION
 *   smtpd_milters = inet:127.0.0.1:8891, unix:/run/rspamd/milter.sock,
 *       { inet:127.0.0.1:11332, connect_timeout=10s, default_action=accept }
 *   An item in braces names the endpoint first, then name=value overrides of milter_*
 *   parameters without their "milter_" prefix: connect_timeout, command_timeout,
 *   content_timeout, protocol, default_action; `{ name = value }` when the value has spaces
 *   (`{ protocol = 6 no_header_reply }`).
 *
 *   Macro lists: milter_connect_macros, milter_helo_macros, milter_mail_macros,
 *   milter_rcpt_macros, milter_data_macros, milter_unknown_command_macros,
 *   milter_end_of_header_macros, milter_end_of_data_macros; milter_macro_defaults gives values
 *   for macros that have none (name=value, in braces when a value has spaces).
 *
 * PARAMETERS
 *   milter_connect_timeout, milter_command_timeout, milter_content_timeout, milter_protocol,
 *   milter_default_action, milter_*_macros, milter_macro_defaults
 */
import { splitList, type MainConfig } from '../global/mail-conf.ts';
import { ConfigError } from '../global/config-error.ts';
import type { MilterSettings } from './milter8.ts';

export interface MacroLists {
  conn: string[]; helo: string[]; mail: string[]; rcpt: string[]; data: string[];
  unk: string[]; eoh: string[]; eod: string[];
}

export interface MilterConfig {
  milters: MilterSettings[];
  macros: MacroLists;
  /** milter_macro_defaults, by name without braces. */
  defaults: Map<string, string>;
  /** milter_macro_daemon_name ({daemon_name}) and milter_macro_v ({v}). */
  daemonName: string;
  v: string;
}

const TIME: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

function seconds(param: string, v: string): number {
  const m = /^(\d+)([smhdw]?)$/i.exec(v.trim());
  if (!m) throw new ConfigError('main.cf', 0, `bad time value in milter definition: ${param}=${v}`);
  return Number(m[1]) * TIME[(m[2] || 's').toLowerCase()]!;
}

/** The milters of `param` (smtpd_milters, non_smtpd_milters or a value from smtpd_milter_maps). */
export function milterConfig(config: MainConfig, param: string, value = config.get(param)): MilterConfig | undefined {
  if (!value.trim() || value.trim().toUpperCase() === 'DISABLE') return undefined;
  const base = {
    connect_timeout: String(config.time('milter_connect_timeout')),
    command_timeout: String(config.time('milter_command_timeout')),
    content_timeout: String(config.time('milter_content_timeout')),
    protocol: config.get('milter_protocol'),
    default_action: config.get('milter_default_action'),
  };
  const milters: MilterSettings[] = [];
  for (const item of splitList(value)) {
    const o: Record<string, string> = { ...base };
    let name = item;
    if (item.startsWith('{')) {
      if (!item.endsWith('}')) throw new ConfigError('main.cf', config.lineOf(param), `milter service syntax error: missing '}' in ${param}`);
      const parts = splitList(item.slice(1, -1));
      if (!parts.length) throw new ConfigError('main.cf', config.lineOf(param), `empty milter definition: "${value}"`);
      name = parts[0]!;
      for (const raw of parts.slice(1)) {
        // name=value, or { name = value } when the value has spaces (Postfix attr_override).
        const p = raw.startsWith('{') && raw.endsWith('}') ? raw.slice(1, -1).trim() : raw;
        const eq = p.indexOf('=');
        const k = eq > 0 ? p.slice(0, eq).trim() : '';
        if (!(k in base)) throw new ConfigError('main.cf', config.lineOf(param), `unknown milter attribute "${raw}" in ${param}: expected connect_timeout, command_timeout, content_timeout, protocol or default_action`);
        o[k] = p.slice(eq + 1).trim();
      }
    }
    milters.push({
      name,
      connectTimeoutMs: seconds('connect_timeout', o.connect_timeout!) * 1000,
      commandTimeoutMs: seconds('command_timeout', o.command_timeout!) * 1000,
      contentTimeoutMs: seconds('content_timeout', o.content_timeout!) * 1000,
      protocol: o.protocol!,
      defaultAction: o.default_action!,
    });
  }
  const l = (p: string) => splitList(config.get(p));
  const defaults = new Map<string, string>();
  for (const item of splitList(config.get('milter_macro_defaults'))) {
    const t = item.startsWith('{') && item.endsWith('}') ? item.slice(1, -1).trim() : item;
    const eq = t.indexOf('=');
    if (eq <= 0) throw new ConfigError('main.cf', config.lineOf('milter_macro_defaults'), `malformed default macro entry: "${item}" in milter_macro_defaults: expected name=value`);
    const k = bare(t.slice(0, eq).trim());
    if (!defaults.has(k)) defaults.set(k, t.slice(eq + 1).trim());
  }
  return {
    milters,
    macros: {
      conn: l('milter_connect_macros'), helo: l('milter_helo_macros'), mail: l('milter_mail_macros'),
      rcpt: l('milter_rcpt_macros'), data: l('milter_data_macros'), unk: l('milter_unknown_command_macros'),
      eoh: l('milter_end_of_header_macros'), eod: l('milter_end_of_data_macros'),
    },
    defaults,
    daemonName: config.get('milter_macro_daemon_name'),
    v: config.get('milter_macro_v'),
  };
}

/** A macro name without its braces: "{daemon_name}" → "daemon_name". */
export function bare(name: string): string {
  return name.startsWith('{') && name.endsWith('}') ? name.slice(1, -1) : name;
}
