/**
 * sieve-result - what running a Sieve script decided (RFC 5228 §4, §2.10): the list of actions
 * in script order, and whether the implicit keep still applies. Collected by the interpreter,
 * carried out by the delivery code (sieve-deliver.ts), printed by `postern sieve test`.
 *
 * Rules enforced while collecting, as Pigeonhole does:
 *  - sieve_max_actions (default 32) and sieve_max_redirects (default 4): one more is a runtime
 *    error ("total number of actions exceeds policy limit");
 *  - the same fileinto mailbox (or keep and fileinto INBOX) is stored once, flags merged;
 *    the same redirect address once;
 *  - reject/ereject conflicts with keep, fileinto and redirect, and with vacation (RFC 5429 §2.1);
 *    at most one vacation (RFC 5230 §4.7: "a second vacation is an error").
 */
import type { SieveField } from './sieve-message.ts';
import { SieveRuntimeError } from './sieve-match.ts';

export interface StoreAction {
  type: 'store';
  /** Target mailbox ('INBOX' for keep). */
  mailbox: string;
  /** From keep (explicit) / implicit keep / fileinto. */
  via: 'keep' | 'implicit-keep' | 'fileinto';
  /** IMAP flags (system flags with backslash, keywords). */
  flags: string[];
  create: boolean;
  specialUse?: string;
  /** The header fields as they were when the action was taken (editheader). */
  fields: SieveField[];
  line: number;
}
export interface RedirectAction { type: 'redirect'; address: string; fields: SieveField[]; line: number }
export interface RejectAction { type: 'reject'; reason: string; ereject: boolean; line: number }
export interface DiscardAction { type: 'discard'; line: number }
export interface VacationAction {
  type: 'vacation';
  reason: string;
  subject?: string;
  from?: string;
  addresses: string[];
  mime: boolean;
  handle: string;
  /** Period in seconds (already clamped to sieve_vacation_min/max_period). */
  seconds: number;
  line: number;
}
export interface NotifyAction {
  type: 'notify';
  method: string;
  from?: string;
  importance: string;
  options: string[];
  message?: string;
  line: number;
}
export type SieveAction = StoreAction | RedirectAction | RejectAction | DiscardAction | VacationAction | NotifyAction;

export interface SieveLimits {
  maxActions: number;
  maxRedirects: number;
}

export class SieveResult {
  readonly actions: SieveAction[] = [];
  /** The implicit keep still applies. */
  keep = true;
  private readonly limits: SieveLimits;
  private redirects = 0;

  constructor(limits: SieveLimits) {
    this.limits = limits;
  }

  private count(): void {
    const n = this.actions.filter((a) => a.type !== 'discard').length;
    if (n >= this.limits.maxActions) throw new SieveRuntimeError(`total number of actions exceeds policy limit (${n} > ${this.limits.maxActions - 1})`);
  }

  private rejectConflict(what: string): void {
    if (this.actions.some((a) => a.type === 'reject')) throw new SieveRuntimeError(`${what} action conflicts with earlier reject action`);
  }

  store(a: StoreAction, cancelImplicit: boolean): void {
    this.rejectConflict(a.via === 'fileinto' ? 'fileinto' : 'keep');
    const mbox = a.mailbox.toUpperCase() === 'INBOX' ? 'INBOX' : a.mailbox;
    const same = this.actions.find((x): x is StoreAction => x.type === 'store' && (x.mailbox.toUpperCase() === 'INBOX' ? 'INBOX' : x.mailbox) === mbox);
    if (cancelImplicit) this.keep = false;
    if (same) {
      for (const f of a.flags) if (!same.flags.some((g) => g.toLowerCase() === f.toLowerCase())) same.flags.push(f);
      return;
    }
    this.count();
    this.actions.push({ ...a, mailbox: mbox });
  }

  redirect(a: RedirectAction, cancelImplicit: boolean): void {
    this.rejectConflict('redirect');
    if (cancelImplicit) this.keep = false;
    if (this.actions.some((x) => x.type === 'redirect' && x.address.toLowerCase() === a.address.toLowerCase())) return;
    if (this.redirects >= this.limits.maxRedirects) {
      throw new SieveRuntimeError(`number of redirect actions exceeds policy limit (max ${this.limits.maxRedirects})`);
    }
    this.count();
    this.redirects++;
    this.actions.push(a);
  }

  reject(a: RejectAction): void {
    const other = this.actions.find((x) => x.type === 'store' || x.type === 'redirect' || x.type === 'vacation' || x.type === 'reject');
    if (other) {
      const name = other.type === 'store' ? (other.via === 'fileinto' ? 'fileinto' : 'keep') : other.type;
      throw new SieveRuntimeError(`${a.ereject ? 'ereject' : 'reject'} action conflicts with earlier ${name} action`);
    }
    this.keep = false;
    this.count();
    this.actions.push(a);
  }

  discard(a: DiscardAction): void {
    this.keep = false;
    if (!this.actions.some((x) => x.type === 'discard')) this.actions.push(a);
  }

  vacation(a: VacationAction): void {
    if (this.actions.some((x) => x.type === 'vacation')) throw new SieveRuntimeError('duplicate vacation action not allowed');
    this.rejectConflict('vacation');
    this.count();
    this.actions.push(a);
  }

  notify(a: NotifyAction): void {
    if (this.actions.some((x) => x.type === 'notify' && x.method === a.method)) return;
    this.count();
    this.actions.push(a);
  }
}
