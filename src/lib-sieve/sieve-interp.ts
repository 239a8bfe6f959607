/**
 * sieve-interp - runs a compiled Sieve script over one message (RFC 5228 §2.10, §3, §4) and
 * collects its actions in a SieveResult: control flow (if/elsif/else, stop), the actions
 * (keep, fileinto, redirect, discard, reject/ereject, vacation, notify, editheader, imap4flags),
 * variables (RFC 5229: ${name}, the match variables ${0}..${9}, set with its modifiers),
 * include/return/global (RFC 6609) over scripts the loader compiled beforehand, and the
 * foreverypart loop with break and extracttext (RFC 5703). Tests are evaluated by
 * sieve-tests.ts.
 *
 * BOUNDS: every command and test costs a step; more than limits.maxSteps (default 1,000,000)
 * is a runtime error, as is matching work past limits.maxWork (bytes compared plus regex and
 * wildcard steps, SIEVE_MAX_WORK, shared by every test of the run) and, as a safety net, a run
 * longer than sieve_max_cpu_time (30 s), as are more actions than sieve_max_actions or redirects than
 * sieve_max_redirects, include nesting deeper than 10 and more than 255 includes, a variable
 * longer than 4096 bytes is truncated (Pigeonhole's sieve_variables_max_variable_size). A
 * runtime error ends the script: the caller then discards its actions and keeps the message
 * (Pigeonhole: "script failed, executed implicit keep").
 */
import type { CompiledScript, SieveCmd } from './sieve-compile.ts';
import type { SieveEnvelope, SieveMessage } from './sieve-message.ts';
import { SieveRuntimeError } from './sieve-match.ts';
import type { SieveRegex, SieveWorkBudget } from './sieve-regex.ts';
import { SieveResult, type SieveLimits } from './sieve-result.ts';
import { evalTest, matcherFor } from './sieve-tests.ts';
import { addressError } from './sieve-validate-ext.ts';
import type { MimePart } from '../lib-mail/mail-mime.ts';

export { SieveRuntimeError } from './sieve-match.ts';

export const SIEVE_MAX_VARIABLE_SIZE = 4096;
export const SIEVE_MAX_VARIABLES = 255;
export const SIEVE_INCLUDE_MAX_NESTING = 10;
export const SIEVE_INCLUDE_MAX_INCLUDES = 255;
/** Matching work per run: bytes compared plus regex/wildcard steps (about a few seconds of CPU). */
export const SIEVE_MAX_WORK = 500_000_000;
export const SIEVE_MAX_CPU_MS = 30_000;

export interface SieveTestSettings {
  /** sieve_spamtest_status_header / sieve_virustest_status_header: "Header[: regex]". */
  statusHeader?: string;
  /** score | strlen | text */
  statusType?: string;
  /** sieve_*_max_value (score), or sieve_*_max_header "Header[: regex]". */
  maxValue?: number;
  maxHeader?: string;
  /** sieve_*_text_value1 .. 10 (index = value). */
  textValues?: Record<number, string>;
}

export interface SieveRuntime {
  message: SieveMessage;
  envelope: SieveEnvelope;
  now: Date;
  limits: SieveLimits & { maxSteps?: number; maxWork?: number; maxCpuMs?: number };
  /** recipient_delimiter (subaddress :user/:detail). */
  recipientDelimiter: string;
  /** sieve_vacation_{min,max,default}_period, seconds. */
  vacation: { minPeriod: number; maxPeriod: number; defaultPeriod: number };
  /** environment items (RFC 5183 §4): domain, host, location, name, phase, version, ... */
  environment: Record<string, string>;
  mailboxExists(name: string): Promise<boolean>;
  specialUseExists?(mailbox: string | undefined, flags: string[]): Promise<boolean>;
  /** duplicate test: was this id seen within its period? */
  duplicateSeen?(id: string): Promise<boolean>;
  /** Compiled include targets by "personal:name" / "global:name". */
  includes?: Map<string, CompiledScript>;
  spamtest?: SieveTestSettings;
  virustest?: SieveTestSettings;
}

/** A duplicate id to record once delivery succeeded (RFC 7352 §3). */
export interface DuplicateMark { id: string; seconds: number; last: boolean }

class Stop extends Error {}
class Return extends Error {}
class Break extends Error {
  readonly loop: string | undefined;
  constructor(loop: string | undefined) { super('break'); this.loop = loop; }
}

interface Scope {
  script: CompiledScript;
  vars: Map<string, string>;
  /** Names declared global in this script (RFC 6609 §3.3). */
  globalNames?: Set<string>;
}

export class SieveExec {
  readonly rt: SieveRuntime;
  readonly result: SieveResult;
  readonly globals = new Map<string, string>();
  readonly regexCache = new Map<string, SieveRegex>();
  readonly duplicateMarks: DuplicateMark[] = [];
  /** Matching work left for this run (bytes compared, regex and wildcard steps). */
  readonly budget: SieveWorkBudget;
  /** body test texts by transform (decoded once per run). */
  readonly bodyCache = new Map<string, string[]>();
  private readonly started = Date.now();
  /** imap4flags internal variable. */
  flags: string[] = [];
  matchVars: string[] = [];
  scope!: Scope;
  /** foreverypart: the current part (innermost loop), null outside loops. */
  part: MimePart | null = null;
  private steps = 0;
  private includeCount = 0;
  private includeDepth = 0;
  private readonly included = new Set<string>();

  constructor(rt: SieveRuntime, result: SieveResult) {
    this.rt = rt;
    this.result = result;
    this.budget = { remaining: rt.limits.maxWork ?? SIEVE_MAX_WORK };
  }

  step(): void {
    if (++this.steps > (this.rt.limits.maxSteps ?? 1_000_000)) throw new SieveRuntimeError('script execution exceeded the step limit');
    // Pigeonhole's sieve_max_cpu_time: a safety net behind the deterministic limits above.
    if ((this.steps & 255) === 0 && Date.now() - this.started > (this.rt.limits.maxCpuMs ?? SIEVE_MAX_CPU_MS)) {
      throw new SieveRuntimeError(`script execution exceeded sieve_max_cpu_time (${(this.rt.limits.maxCpuMs ?? SIEVE_MAX_CPU_MS) / 1000} s)`);
    }
  }

  has(ext: string): boolean {
    return this.scope.script.required.has(ext);
  }

  /** Expands ${...} when the script uses variables (RFC 5229 §3). */
  expand(s: string): string {
    if (!this.has('variables') || !s.includes('${')) return s;
    return s.replace(/\$\{([A-Za-z0-9_.]+)\}/g, (all, name: string) => {
      if (/^\d+$/.test(name)) return this.matchVars[Number(name)] ?? '';
      if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(name)) return all;
      return this.getVar(name) ?? '';
    });
  }

  expandList(l: readonly string[]): string[] {
    return l.map((s) => this.expand(s));
  }

  getVar(name: string): string | undefined {
    const n = name.toLowerCase();
    if (n.startsWith('global.')) return this.globals.get(n.slice(7));
    if (this.scope.vars.has(n)) return this.scope.vars.get(n);
    return this.globals.get(n);
  }

  setVar(name: string, value: string): void {
    let v = value;
    if (Buffer.byteLength(v) > SIEVE_MAX_VARIABLE_SIZE) v = Buffer.from(v).subarray(0, SIEVE_MAX_VARIABLE_SIZE).toString('utf8').replace(/\uFFFD$/, '');
    let n = name.toLowerCase();
    let map = this.scope.vars;
    if (n.startsWith('global.')) { n = n.slice(7); map = this.globals; }
    else if (this.globals.has(n) || this.scope.globalNames?.has(n)) map = this.globals;
    if (!map.has(n) && map.size >= SIEVE_MAX_VARIABLES) throw new SieveRuntimeError(`number of variables exceeds the limit (max ${SIEVE_MAX_VARIABLES})`);
    map.set(n, v);
  }

  setMatch(caps: string[] | undefined): void {
    if (caps && this.has('variables')) this.matchVars = caps.slice(0, 10);
  }

  str(c: SieveCmd, key: string): string | undefined {
    const v = c.args.get(key);
    return typeof v === 'string' ? this.expand(v) : undefined;
  }

  list(c: SieveCmd, key: string): string[] | undefined {
    const v = c.args.get(key);
    return Array.isArray(v) ? this.expandList(v) : undefined;
  }

  tagStr(c: SieveCmd, tag: string): string | undefined {
    const v = c.tags.get(tag);
    return typeof v === 'string' ? this.expand(v) : undefined;
  }

  tagList(c: SieveCmd, tag: string): string[] | undefined {
    const v = c.tags.get(tag);
    return Array.isArray(v) ? this.expandList(v) : undefined;
  }

  /** Runs the main script; returns normally on the end or stop. */
  async run(script: CompiledScript): Promise<void> {
    this.scope = { script, vars: new Map() };
    try {
      await this.block(script.commands);
    } catch (e) {
      if (e instanceof Stop || e instanceof Return) return;
      throw e;
    }
  }

  async block(cmds: readonly SieveCmd[]): Promise<void> {
    let lastIf: boolean | null = null;
    for (const c of cmds) {
      this.step();
      switch (c.name) {
        case 'if':
          lastIf = await evalTest(this, c.tests[0]!);
          if (lastIf) await this.block(c.block ?? []);
          continue;
        case 'elsif':
          if (lastIf === false) {
            lastIf = await evalTest(this, c.tests[0]!);
            if (lastIf) await this.block(c.block ?? []);
          }
          continue;
        case 'else':
          if (lastIf === false) await this.block(c.block ?? []);
          lastIf = null;
          continue;
      }
      lastIf = null;
      await this.command(c);
    }
  }

  private flagsArg(c: SieveCmd): string[] {
    const f = this.tagList(c, 'flags');
    return normalizeFlags(f ?? this.flags);
  }

  private async command(c: SieveCmd): Promise<void> {
    const r = this.result;
    const msg = this.rt.message;
    switch (c.name) {
      case 'stop': throw new Stop();
      case 'return': throw new Return();
      case 'keep':
        r.store({ type: 'store', mailbox: 'INBOX', via: 'keep', flags: this.flagsArg(c), create: false, fields: msg.fields, line: c.line }, true);
        return;
      case 'discard':
        r.discard({ type: 'discard', line: c.line });
        return;
      case 'fileinto': {
        const box = this.str(c, 'folder')!;
        const su = this.tagStr(c, 'specialuse');
        r.store({
          type: 'store', mailbox: box, via: 'fileinto', flags: this.flagsArg(c), create: c.tags.has('create'),
          ...(su ? { specialUse: su } : {}), fields: msg.fields, line: c.line,
        }, !c.tags.has('copy'));
        return;
      }
      case 'redirect': {
        const addr = this.str(c, 'address')!;
        const bad = addressError(addr);
        if (bad) throw new SieveRuntimeError(`specified redirect address '${addr}' is invalid: ${bad}`);
        r.redirect({ type: 'redirect', address: addr.trim(), fields: msg.fields, line: c.line }, !c.tags.has('copy'));
        return;
      }
      case 'reject': case 'ereject':
        r.reject({ type: 'reject', reason: this.str(c, 'reason')!, ereject: c.name === 'ereject', line: c.line });
        return;
      case 'vacation': {
        const v = this.rt.vacation;
        const days = c.tags.get('days');
        const secs = c.tags.get('seconds');
        let seconds = typeof secs === 'number' ? secs : typeof days === 'number' ? days * 86400 : v.defaultPeriod;
        if (seconds !== 0 || typeof secs !== 'number') seconds = Math.min(Math.max(seconds, v.minPeriod), v.maxPeriod);
        const reason = this.str(c, 'reason')!;
        const subject = this.tagStr(c, 'subject');
        const from = this.tagStr(c, 'from');
        const handle = this.tagStr(c, 'handle') ??
          `${reason}${subject ?? ''}${from ?? ''}${c.tags.has('mime') ? '1' : '0'}`;
        r.vacation({
          type: 'vacation', reason, ...(subject !== undefined ? { subject } : {}), ...(from !== undefined ? { from } : {}),
          addresses: this.tagList(c, 'addresses') ?? [], mime: c.tags.has('mime'), handle, seconds, line: c.line,
        });
        return;
      }
      case 'notify': {
        const from = this.tagStr(c, 'from');
        const message = this.tagStr(c, 'message');
        const method = this.str(c, 'method')!;
        if (!/^mailto:/i.test(method)) throw new SieveRuntimeError(`notify action: invalid method '${method}'`);
        r.notify({
          type: 'notify', method, ...(from !== undefined ? { from } : {}), importance: this.tagStr(c, 'importance') ?? '2',
          options: this.tagList(c, 'options') ?? [], ...(message !== undefined ? { message } : {}), line: c.line,
        });
        return;
      }
      case 'setflag': case 'addflag': case 'removeflag': {
        const flags = normalizeFlags(this.list(c, 'list of flags')!);
        const vn = this.str(c, 'variable name');
        const cur = vn !== undefined ? normalizeFlags((this.getVar(vn) ?? '').split(' ')) : this.flags;
        let next: string[];
        if (c.name === 'setflag') next = flags;
        else if (c.name === 'addflag') next = normalizeFlags([...cur, ...flags]);
        else next = cur.filter((f) => !flags.some((g) => g.toLowerCase() === f.toLowerCase()));
        if (vn !== undefined) this.setVar(vn, next.join(' ')); else this.flags = next;
        return;
      }
      case 'set': {
        this.setVar(this.str(c, 'name')!, applyModifiers(this.str(c, 'value')!, c));
        return;
      }
      case 'global': {
        for (const n of this.list(c, 'value')!) {
          (this.scope.globalNames ??= new Set()).add(n.toLowerCase());
          if (!this.globals.has(n.toLowerCase())) this.globals.set(n.toLowerCase(), this.scope.vars.get(n.toLowerCase()) ?? '');
        }
        return;
      }
      case 'include': return this.include(c);
      case 'addheader': {
        const name = this.str(c, 'field name')!;
        if (!/^[!-9;-~]+$/.test(name)) throw new SieveRuntimeError(`addheader action: specified field name \`${name}' is invalid`);
        if (['received', 'auto-submitted'].includes(name.toLowerCase())) return; // protected: denied silently
        const value = this.str(c, 'value')!.replace(/\r?\n/g, ' ');
        msg.addHeader(name, value, c.tags.has('last'));
        return;
      }
      case 'deleteheader': return deleteHeader(this, c);
      case 'foreverypart': return this.forEveryPart(c);
      case 'break': throw new Break(this.tagStr(c, 'name'));
      case 'extracttext': {
        let text = this.part && !this.part.isMultipart && !this.part.message ? msg.partText(this.part) : '';
        const first = c.tags.get('first');
        if (typeof first === 'number') text = [...text].slice(0, first).join('');
        this.setVar(this.str(c, 'varname')!, applyModifiers(text, c));
        return;
      }
      case 'error': throw new SieveRuntimeError(this.str(c, 'message')!);
      case 'debug_log': return;
    }
    throw new SieveRuntimeError(`unsupported command ${c.name}`);
  }

  private async forEveryPart(c: SieveCmd): Promise<void> {
    const name = this.tagStr(c, 'name');
    const outer = this.part;
    const all = this.rt.message.parts().map((p) => p.part);
    let parts: MimePart[];
    if (!outer) parts = all.slice(1);
    else {
      parts = [];
      const walk = (p: MimePart): void => { for (const ch of p.children) { parts.push(ch); walk(ch); } if (p.message) { parts.push(p.message); walk(p.message); } };
      walk(outer);
    }
    if (parts.length === 0 && !outer) parts = [all[0]!];
    try {
      for (const p of parts) {
        this.step();
        this.part = p;
        await this.block(c.block ?? []);
      }
    } catch (e) {
      if (!(e instanceof Break) || (e.loop !== undefined && e.loop !== name)) throw e;
    } finally {
      this.part = outer;
    }
  }

  private async include(c: SieveCmd): Promise<void> {
    const location = c.groups.get('LOCATION') === 'global' ? 'global' : 'personal';
    const name = this.str(c, 'value')!;
    const key = `${location}:${name}`;
    if (c.tags.has('once') && this.included.has(key)) return;
    const script = this.rt.includes?.get(key);
    if (!script) {
      if (c.tags.has('optional')) return;
      throw new SieveRuntimeError(`include: ${location} script '${name}' not found`);
    }
    if (++this.includeCount > SIEVE_INCLUDE_MAX_INCLUDES) throw new SieveRuntimeError(`include: too many includes (max ${SIEVE_INCLUDE_MAX_INCLUDES})`);
    if (this.includeDepth >= SIEVE_INCLUDE_MAX_NESTING) throw new SieveRuntimeError(`include: nesting too deep (max ${SIEVE_INCLUDE_MAX_NESTING}); an include loop?`);
    this.included.add(key);
    const saved = this.scope;
    this.scope = { script, vars: new Map() };
    this.includeDepth++;
    try {
      await this.block(script.commands);
    } catch (e) {
      if (!(e instanceof Return)) throw e;
    } finally {
      this.includeDepth--;
      this.scope = saved;
    }
  }
}

/** Flags as imap4flags keeps them: split at spaces, duplicates dropped (case-insensitive). */
export function normalizeFlags(list: readonly string[]): string[] {
  const out: string[] = [];
  for (const item of list) {
    for (const f of item.split(/\s+/)) {
      if (f === '') continue;
      if (!out.some((g) => g.toLowerCase() === f.toLowerCase())) out.push(f);
    }
  }
  return out;
}

function applyModifiers(v: string, c: SieveCmd): string {
  let s = v;
  const g = c.groups;
  const m40 = g.get('MOD40');
  if (m40 === 'lower') s = s.toLowerCase();
  if (m40 === 'upper') s = s.toUpperCase();
  const m30 = g.get('MOD30');
  if (m30 === 'lowerfirst') s = s.charAt(0).toLowerCase() + s.slice(1);
  if (m30 === 'upperfirst') s = s.charAt(0).toUpperCase() + s.slice(1);
  const m20 = g.get('MOD20');
  if (m20 === 'quotewildcard') s = s.replace(/[*?\\]/g, '\\$&');
  if (m20 === 'quoteregex') s = s.replace(/[\\^$.[\]|()?*+{}]/g, '\\$&');
  if (g.get('MOD15') === 'encodeurl') s = encodeURIComponent(s).replace(/[!'()*]/g, (ch) => '%' + ch.charCodeAt(0).toString(16).toUpperCase());
  if (g.get('MOD10') === 'length') s = String([...s].length);
  return s;
}

async function deleteHeader(x: SieveExec, c: SieveCmd): Promise<void> {
  const name = x.str(c, 'field name')!;
  if (['received', 'auto-submitted'].includes(name.toLowerCase())) return;
  const patterns = x.list(c, 'value patterns');
  const idx = c.tags.get('index');
  const last = c.tags.has('last');
  const m = matcherFor(x, c);
  x.rt.message.deleteFields((f, occ, total) => {
    if (typeof idx === 'number') {
      const want = last ? total - idx + 1 : idx;
      if (occ !== want) return true;
    }
    if (!patterns) return false;
    const v = f.value.toString('utf8').trim();
    return !m.match([v], patterns).matched;
  }, name);
}

export { SieveResult };
