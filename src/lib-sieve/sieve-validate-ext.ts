/**
 * sieve-validate-ext - the checks on argument values and placement that the command table
 * cannot express, one per command or argument kind, in Pigeonhole's words: comparators
 * (RFC 4790), relational operators (RFC 5231 §4), regular expressions (compiled by
 * sieve-regex.ts), envelope parts, addresses of redirect and vacation, the variables
 * extension's names (RFC 5229 §3), include script names (RFC 6609 §3.2), notify methods and
 * importance (RFC 5435 §3), editheader field names and protected fields (RFC 5293 §§4-6), the
 * foreverypart loop placement of break and extracttext (RFC 5703 §3), date parts and zones
 * (RFC 5260 §4).
 */
import type { SieveCmd, ValidateContext } from './sieve-validate.ts';
import { compileSieveRegex } from './sieve-regex.ts';

export const COMPARATORS = ['i;octet', 'i;ascii-casemap', 'i;ascii-numeric'];
export const RELATIONS = ['gt', 'ge', 'lt', 'le', 'eq', 'ne'];
export const DATE_PARTS = ['year', 'month', 'day', 'date', 'julian', 'hour', 'minute', 'second', 'time', 'iso8601', 'std11', 'zone', 'weekday'];
/** Header fields editheader never adds or deletes (Pigeonhole's default sieve_editheader_protected). */
export const EDITHEADER_PROTECTED = ['received', 'auto-submitted'];

const hasVariables = (s: string): boolean => /\$\{[^}]*\}/.test(s);

/** Header fields the address test accepts (Pigeonhole's tst-address.c list). */
export const ADDRESS_HEADERS = new Set([
  'from', 'to', 'cc', 'bcc', 'sender', 'resent-from', 'resent-to',
  'reply-to', 'resent-reply-to', 'resent-sender', 'resent-cc', 'resent-bcc',
  'for-approval', 'for-handling', 'for-comment', 'apparently-to', 'errors-to',
  'delivered-to', 'return-receipt-to', 'x-admin', 'read-receipt-to',
  'x-confirm-reading-to', 'return-receipt-requested',
  'registered-mail-reply-requested-by', 'mail-followup-to', 'mail-reply-to',
  'abuse-reports-to', 'x-complaints-to', 'x-report-abuse-to',
  'x-beenthere', 'x-original-to',
]);
const VARIABLE_NAME = /^(?:[A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/;
/** Pigeonhole's SIEVE_VARIABLES_MAX_VARIABLE_NAME_LEN. */
export const VARIABLE_NAME_MAX = 64;

/** The error for a variable name that is not usable, or undefined. */
function variableNameError(n: string, ctx: ValidateContext): string | undefined {
  const shown = n.length > 80 ? `${n.slice(0, 77)}...` : n;
  if (!VARIABLE_NAME.test(n) || n.length > VARIABLE_NAME_MAX) return `invalid variable name '${shown}'`;
  const dot = n.indexOf('.');
  if (dot > 0) {
    const ns = n.slice(0, dot);
    if (!(ns.toLowerCase() === 'global' && ctx.required.has('include'))) return `referring to variable in unknown namespace '${ns}'`;
  }
  return undefined;
}
const FIELD_NAME = /^[!-9;-~]+$/;

/** The reason an address is not an RFC 5322 addr-spec, in Pigeonhole's words; undefined when fine. */
export function addressError(a: string): string | undefined {
  // White space around the parts is folding white space (RFC 5322 obs-local-part): Pigeonhole takes it.
  const s = a.trim().replace(/^.*<(.*)>\s*$/, '$1').replace(/\s*@\s*/, '@').trim();
  const at = s.lastIndexOf('@');
  if (at < 0) return `invalid or lonely local part '${s.split(/\s/)[0]}' (expecting '@')`;
  const local = s.slice(0, at);
  const domain = s.slice(at + 1);
  if (local === '') return 'invalid local part';
  if (/[\s(),:;<>\[\]\\]/.test(local.replace(/^".*"$/, 'q'))) return `invalid local part '${local}'`;
  if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(domain) && !/^\[[^\]]+\]$/.test(domain)) {
    return `invalid or missing domain '${domain}'`;
  }
  return undefined;
}

function str(c: SieveCmd, tag: string): string | undefined {
  const v = c.tags.get(tag);
  return typeof v === 'string' ? v : undefined;
}

function checkMatching(c: SieveCmd, ctx: ValidateContext): void {
  const cmp = str(c, 'comparator');
  const mt = c.groups.get('MATCH-TYPE');
  if (cmp !== undefined) {
    const lc = cmp.toLowerCase();
    if (ctx.required.has('variables') && hasVariables(cmp)) {
      ctx.error(c, 'this Sieve implementation currently only supports a literal string argument for the :comparator tag');
      return;
    }
    if (!COMPARATORS.includes(lc) || (lc === 'i;ascii-numeric' && !ctx.required.has('comparator-i;ascii-numeric'))) {
      ctx.error(c, `unknown comparator '${cmp}'`);
      return;
    }
    if (lc === 'i;ascii-numeric' && (mt === 'contains' || mt === 'matches')) {
      ctx.error(c, `the specified i;ascii-numeric comparator does not support sub-string matching as required by the :${mt} match type`);
      return;
    }
    if (lc === 'i;ascii-numeric' && mt === 'regex') {
      ctx.error(c, 'regex match type only supports i;octet and i;ascii-casemap comparators');
      return;
    }
  }
  if (mt === 'value' || mt === 'count') {
    // (a missing relation was reported with the tag's parameter)
    const rel = str(c, mt) ?? 'eq';
    if (!RELATIONS.includes(rel.toLowerCase())) {
      ctx.error(c, `the :${mt} match-type requires a constant string argument being one of "gt", "ge", "lt", "le", "eq" or "ne", but "${rel}" was found`);
    }
  }
  if (mt === 'regex') {
    const keys = keyList(c);
    const icase = (cmp ?? 'i;ascii-casemap').toLowerCase() === 'i;ascii-casemap';
    for (const k of keys) {
      if (ctx.required.has('variables') && hasVariables(k)) continue;
      const r = compileSieveRegex(k, icase);
      if ('error' in r) ctx.error(c, `invalid regular expression '${k}' for regex match: ${r.error}`);
    }
  }
}

function keyList(c: SieveCmd): string[] {
  for (const k of ['key list', 'key-list', 'value patterns', 'list of flags']) {
    const v = c.args.get(k);
    if (Array.isArray(v)) return v;
  }
  if (c.name === 'spamtest' || c.name === 'virustest') {
    const v = c.args.get('value');
    return typeof v === 'string' ? [v] : [];
  }
  return [];
}

function checkMime(c: SieveCmd, ctx: ValidateContext): void {
  const opt = c.groups.get('MIME-OPTION');
  if (opt && !c.tags.has('mime')) ctx.error(c, `the :${opt} tag for the ${c.name} test cannot be specified without the :mime tag`);
  if (c.tags.has('anychild') && !c.tags.has('mime')) ctx.error(c, `the :anychild tag for the ${c.name} test cannot be specified without the :mime tag`);
  if (c.name !== 'addheader' && c.name !== 'duplicate' && c.tags.has('last') && !c.tags.has('index')) ctx.error(c, `the :last tag for the ${c.name} ${c.name === 'deleteheader' ? 'command' : 'test'} cannot be specified without the :index tag`);
}

function checkAddress(c: SieveCmd, ctx: ValidateContext, what: string, a: string): void {
  if (ctx.required.has('variables') && hasVariables(a)) return;
  const e = addressError(a);
  if (e) ctx.error(c, `specified ${what} '${a}' is invalid${what.includes('vacation') ? '' : ''}: ${e}`);
}

export function checkCommand(c: SieveCmd, ctx: ValidateContext): void {
  if (c.groups.has('MATCH-TYPE') || c.tags.has('comparator')) checkMatching(c, ctx);
  checkMime(c, ctx);
  switch (c.name) {
    case 'address': {
      for (const h of (c.args.get('header list') as string[] | undefined) ?? []) {
        if (!(ctx.required.has('variables') && hasVariables(h)) && !FIELD_NAME.test(h)) ctx.warning(c, `specified header field name '${h}' is invalid`);
      }
      for (const h of (c.args.get('header list') as string[] | undefined) ?? []) {
        if (ctx.required.has('variables') && hasVariables(h)) continue;
        if (!ADDRESS_HEADERS.has(h.toLowerCase())) {
          ctx.error(c, `specified header '${h.slice(0, 64)}' is not allowed for the address test`);
          break;
        }
      }
      break;
    }
    case 'envelope': {
      for (const p of (c.args.get('envelope part') as string[] | undefined) ?? []) {
        if (!['from', 'to', 'auth'].includes(p.toLowerCase())) ctx.error(c, `specified envelope part '${p}' is not supported by the envelope test`);
      }
      break;
    }
    case 'redirect': {
      const a = c.args.get('address');
      if (typeof a === 'string') checkAddress(c, ctx, 'redirect address', a);
      break;
    }
    case 'vacation': {
      const from = str(c, 'from');
      if (from !== undefined && !(ctx.required.has('variables') && hasVariables(from))) {
        const e = addressError(from);
        if (e) ctx.error(c, `specified :from address '${from}' is invalid for vacation action: ${e}`);
      }
      const addrs = c.tags.get('addresses');
      if (Array.isArray(addrs)) {
        for (const a of addrs) {
          if (ctx.required.has('variables') && hasVariables(a)) continue;
          const e = addressError(a);
          if (e) ctx.error(c, `specified :addresses item '${a}' is invalid: ${e}`);
        }
      }
      break;
    }
    case 'size':
      if (!c.groups.has('SIZE')) ctx.error(c, 'the size test requires either the :under or the :over tag to be specified');
      break;
    case 'setflag': case 'addflag': case 'removeflag': case 'hasflag': {
      const vn = c.args.get(c.name === 'hasflag' ? 'variable list' : 'variable name');
      if (vn !== undefined && !ctx.required.has('variables')) {
        ctx.error(c, `the ${c.name} ${c.name === 'hasflag' ? 'test' : 'command'} only allows for the specification of a variable name when the variables extension is active`);
      }
      for (const n of vn === undefined ? [] : Array.isArray(vn) ? vn : [String(vn)]) {
        const e = variableNameError(n, ctx);
        if (e) ctx.error(c, e);
      }
      break;
    }
    case 'set': case 'extracttext': {
      const n = (c.args.get(c.name === 'set' ? 'name' : 'varname') as string | undefined) ?? '';
      const e = variableNameError(n, ctx);
      if (e) ctx.error(c, e);
      if (c.name === 'extracttext' && ctx.loops.length === 0) ctx.error(c, 'the extracttext command is not placed inside a foreverypart loop');
      break;
    }
    case 'global': {
      for (const n of (c.args.get('value') as string[] | undefined) ?? []) {
        if (!VARIABLE_NAME.test(n) || n.length > VARIABLE_NAME_MAX) ctx.error(c, `invalid variable name '${n}'`);
      }
      if (!ctx.required.has('variables')) ctx.error(c, 'the global command requires the variables extension to be active');
      break;
    }
    case 'include': {
      const name = (c.args.get('value') as string | undefined) ?? '';
      if (name === '' || name.includes('/') || name.length > 256 || /[\x00-\x1f\x7f]/.test(name)) {
        ctx.error(c, `include: invalid script name '${name}'`);
        break;
      }
      ctx.includes.push({
        location: c.groups.get('LOCATION') === 'global' ? 'global' : 'personal', name,
        once: c.tags.has('once'), optional: c.tags.has('optional'),
      });
      break;
    }
    case 'break': {
      const n = str(c, 'name');
      if (ctx.loops.length === 0 || (n !== undefined && !ctx.loops.includes(n))) {
        ctx.error(c, n === undefined ? 'the break command is not placed inside a foreverypart loop' : `the break command is not placed inside a foreverypart loop named \`${n}'`);
      }
      break;
    }
    case 'foreverypart':
      if (ctx.loops.length >= 4) ctx.error(c, 'the nested foreverypart loop exceeds the nesting limit (<= 4 levels)');
      break;
    case 'notify': {
      const m = c.args.get('method');
      if (typeof m === 'string' && !(ctx.required.has('variables') && hasVariables(m))) {
        const scheme = m.includes(':') ? m.slice(0, m.indexOf(':')) : m;
        if (scheme.toLowerCase() !== 'mailto') ctx.error(c, `notify command: invalid method '${scheme}'`);
      }
      const nfrom = str(c, 'from');
      if (nfrom !== undefined && !(ctx.required.has('variables') && hasVariables(nfrom))) {
        const e = addressError(nfrom);
        if (e) ctx.error(c, `notify command: specified :from address '${nfrom}' is invalid for the mailto method: ${e}`);
      }
      const opts = c.tags.get('options');
      if (Array.isArray(opts) && opts.some((o) => o === '')) ctx.error(c, 'notify command: empty option specified');
      const imp = str(c, 'importance');
      if (imp !== undefined && !['1', '2', '3'].includes(imp)) ctx.error(c, `invalid :importance value for notify command: ${imp}`);
      break;
    }
    case 'addheader': case 'deleteheader': {
      const f = (c.args.get('field name') as string | undefined) ?? '';
      const v = c.args.get('value');
      if (c.name === 'addheader' && typeof v === 'string' && v.includes('\0')) {
        ctx.error(c, `addheader command: specified value \`${v.slice(0, v.indexOf('\0'))}' is invalid (contains NUL character)`);
      }
      if (!(ctx.required.has('variables') && hasVariables(f))) {
        if (!FIELD_NAME.test(f)) ctx.error(c, `${c.name} command: specified field name \`${f}' is invalid`);
        else if (EDITHEADER_PROTECTED.includes(f.toLowerCase())) {
          ctx.warning(c, `${c.name} command: ${c.name === 'addheader' ? 'adding' : 'deleting'} specified header field \`${f}' is forbidden; modification will be denied`);
        }
      }
      if (c.name === 'deleteheader' && c.tags.has('last') && !c.tags.has('index')) break;
      break;
    }
    case 'date': case 'currentdate': {
      const part = c.args.get('date part');
      if (typeof part === 'string' && !DATE_PARTS.includes(part.toLowerCase())) ctx.warning(c, `specified date part \`${part}' is not known`);
      const z = str(c, 'zone');
      if (z !== undefined && !/^[+-]\d{4}$/.test(z)) ctx.warning(c, `specified :zone argument '${z}' is not a valid timezone`);
      break;
    }
    case 'fileinto': {
      const su = str(c, 'specialuse');
      if (su !== undefined && !/^\\[A-Za-z]+$/.test(su)) ctx.error(c, `fileinto command: invalid special-use flag \`${su}' specified`);
      break;
    }
    case 'ihave': {
      for (const e of (c.args.get('capabilities') as string[] | undefined) ?? []) {
        if (ctx.available.has(e.toLowerCase())) ctx.required.add(e.toLowerCase());
      }
      break;
    }
  }
}
