/**
 * mail-params-service - the per-service parameters Postfix derives from master.cf (postconf's
 * postconf_service.c; qmgr(8)'s per-transport limits): for each master.cf service that runs a
 * delivery agent, `<service>_<suffix>` parameters exist with these defaults, e.g.
 * `relay_destination_concurrency_limit = $default_destination_concurrency_limit`. Also the lookup
 * over the table (mail-params.ts) and the registered services together: paramSpec(), allParams().
 */
import { builtinParamSpec, PARAMS, POSTERN_PARAMS, type ParamSpec, type ParamType } from './mail-params.ts';

/** Delivery-agent commands whose master.cf services get per-transport parameters. */
export const DELIVERY_AGENTS: ReadonlySet<string> = new Set(['smtp', 'lmtp', 'local', 'virtual', 'pipe', 'error']);

/** suffix → default, the qmgr(8) per-transport parameters (`_time_limit` only for pipe(8) services). */
export const SERVICE_PARAM_SUFFIXES: ReadonlyArray<readonly [string, string, ParamType, string?]> = [
  ['delivery_slot_cost', '$default_delivery_slot_cost', 'int'],
  ['delivery_slot_discount', '$default_delivery_slot_discount', 'int'],
  ['delivery_slot_loan', '$default_delivery_slot_loan', 'int'],
  ['destination_concurrency_failed_cohort_limit', '$default_destination_concurrency_failed_cohort_limit', 'int'],
  ['destination_concurrency_limit', '$default_destination_concurrency_limit', 'int'],
  ['destination_concurrency_negative_feedback', '$default_destination_concurrency_negative_feedback', 'str'],
  ['destination_concurrency_positive_feedback', '$default_destination_concurrency_positive_feedback', 'str'],
  ['destination_rate_delay', '$default_destination_rate_delay', 'time', 's'],
  ['destination_recipient_limit', '$default_destination_recipient_limit', 'int'],
  ['extra_recipient_limit', '$default_extra_recipient_limit', 'int'],
  ['initial_destination_concurrency', '$initial_destination_concurrency', 'int'],
  ['minimum_delivery_slots', '$default_minimum_delivery_slots', 'int'],
  ['recipient_limit', '$default_recipient_limit', 'int'],
  ['recipient_refill_delay', '$default_recipient_refill_delay', 'time', 's'],
  ['recipient_refill_limit', '$default_recipient_refill_limit', 'int'],
  ['time_limit', '$command_time_limit', 'time', 's'],
  ['transport_rate_delay', '$default_transport_rate_delay', 'time', 's'],
];

/** Services registered by registerServices() (postconf does this from master.cf): name → command. */
const services = new Map<string, string>();

/** Make `<service>_<suffix>` parameters known for master.cf services running a delivery agent. */
export function registerServices(entries: Iterable<{ service: string; command: string }>): void {
  services.clear(); // one master.cf at a time
  for (const e of entries) if (DELIVERY_AGENTS.has(e.command) || e.command === 'spawn') services.set(e.service, e.command);
}

/**
 * The default of `<transport>_<suffix>` for any transport name, registered or not (qmgr reads
 * e.g. `relay_destination_concurrency_limit` for whatever master.cf defines), else undefined.
 */
export function transportParamDefault(name: string): string | undefined {
  for (const [suffix, def] of SERVICE_PARAM_SUFFIXES) {
    if (name.length > suffix.length + 1 && name.endsWith('_' + suffix)) return def;
  }
  return undefined;
}

/** The per-service parameters of one service, skipping names the static table already has. */
export function serviceParams(service: string, command = services.get(service) ?? 'smtp'): ParamSpec[] {
  const out: ParamSpec[] = [];
  for (const [suffix, def, type, unit] of SERVICE_PARAM_SUFFIXES) {
    const name = `${service}_${suffix}`;
    // pipe(8) and spawn(8) services have <service>_time_limit; spawn has nothing else.
    if (builtinParamSpec(name) || (suffix === 'time_limit' ? command !== 'pipe' && command !== 'spawn' : command === 'spawn')) continue;
    out.push(unit ? { name, default: def, type, unit, doc: `The ${service} service's ${suffix.replace(/_/g, ' ')} (qmgr(8) per-transport parameter).` }
      : { name, default: def, type, doc: `The ${service} service's ${suffix.replace(/_/g, ' ')} (qmgr(8) per-transport parameter).` });
  }
  return out;
}

function serviceParamSpec(name: string): ParamSpec | undefined {
  for (const s of services.keys()) {
    if (!name.startsWith(s + '_')) continue;
    const hit = serviceParams(s).find((x) => x.name === name);
    if (hit) return hit;
  }
  return undefined;
}

/** Every known parameter: the static table plus registered per-service ones. */
export function allParams(): ParamSpec[] {
  const out = [...PARAMS, ...POSTERN_PARAMS];
  for (const s of services.keys()) out.push(...serviceParams(s));
  return out;
}

/** The entry of a built-in or registered per-service parameter, or undefined (user-defined, unknown). */
export function paramSpec(name: string): ParamSpec | undefined {
  return builtinParamSpec(name) ?? serviceParamSpec(name);
}
