/**
 * local-state - what the parts of local(8) share while they deliver one recipient (Postfix
 * local/local.h: LOCAL_STATE, USER_ATTR, DELIVER_ATTR): the agent's settings (LocalContext,
 * made once by local.ts), one recipient's delivery (State: the message, the top-level
 * recipient, the forwards collected, the addresses already handled) and one step of its
 * expansion (Walk: envelope sender, nesting level, the path for loop detection, the rights and
 * the kind of expansion it came from). An Outcome is a delivery status; a recipient's result is
 * the worst outcome of its expansion (deferred > bounced > sent).
 */
import type { MainConfig } from '../global/mail-conf.ts';
import type { Maps } from '../global/maps.ts';
import type { DeliverRequest, RecipientResult } from '../global/deliver-request.ts';
import type { DeliverRedirect } from '../global/deliver-redirect.ts';
import type { QueueRecipient } from '../global/queue-file.ts';
import { getpwnam, type PasswdEntry } from '../util/dict-unix.ts';
import { logger } from '../util/msg.ts';
import type { Privs } from './local-file.ts';
import type { Forwarder } from './local-forward.ts';
import type { SieveSettings } from '../lib-sieve/sieve-settings.ts';

export const log = logger('local');
export const isRoot = process.getuid?.() === 0;
/** Postfix local(8) gives up nesting aliases, .forward and :include: deeper than this. */
export const MAX_LEVEL = 100;

export type Status = RecipientResult['status'];
export interface Outcome { status: Status; dsn: string; text: string; redirect?: DeliverRedirect }

/** Where an expansion came from (allow_mail_to_commands / allow_mail_to_files name these). */
export type Context = 'alias' | 'forward' | 'include';

export interface Settings {
  aliasMaps: Maps;
  aliasOwner?: number;
  myorigin: string;
  delim: string;
  mydest: Set<string>;
}

/** The agent's settings, made once by createLocalAgent(). */
export interface LocalContext {
  config: MainConfig;
  s: Settings;
  /** Is this domain ours (mydestination)? */
  isLocalDomain: (domain: string) => boolean;
  /** Makes the queue file of forwarded addresses (local-forward.ts; cleanup, given by local.ts). */
  forwarder: Forwarder;
  /** Pigeonhole's settings when dovecot.conf enables Sieve for the LDA (local-sieve.ts). */
  sieve?: SieveSettings;
}

export interface State {
  lc: LocalContext;
  req: DeliverRequest;
  content: Buffer;
  /** The top-level recipient (Delivered-To:, frozen_delivered_to = yes). */
  top: QueueRecipient;
  /** Addresses to re-submit, per envelope sender. */
  forwards: Map<string, Set<string>>;
  /** Lower-cased addresses already handled in this delivery (Postfix been_here). */
  seen: Set<string>;
  /** sendmail -bv (DeliverRequest.userVerify): the final addresses of the expansion and what each would get. */
  traces?: { address: string; status: Status; dsn: string; text: string }[];
}

/** Record what a final address of a `sendmail -bv` expansion would get (nothing without -bv). */
export function traced(st: State, address: string, o: Outcome): Outcome {
  if (st.traces && !o.redirect) st.traces.push({ address, status: o.status, dsn: o.dsn, text: o.text });
  return o;
}

/** An MTA address verification probe (not sendmail -bv): aliases and .forward are not expanded. */
export function mtaProbe(st: State): boolean {
  return st.req.verify === true && st.req.userVerify !== true;
}

export interface Walk {
  sender: string;
  level: number;
  /** Ancestors in the expansion (loop detection). */
  path: string[];
  privs?: Privs;
  context?: Context;
  /** Name whose expansion this is (a name expanding to itself goes to the mailbox). */
  expFrom?: string;
}

export function worst(a: Outcome, b: Outcome): Outcome {
  const rank = (o: Outcome) => (o.status === 'deferred' ? 2 : o.status === 'bounced' ? 1 : 0);
  return rank(b) > rank(a) ? b : a;
}

export const SENT = (text: string): Outcome => ({ status: 'sent', dsn: '2.0.0', text });

/** default_privs as Privs, undefined when unknown or root. */
export function defaultPrivs(config: MainConfig): Privs | undefined {
  const pw = getpwnam(config.get('default_privs'));
  return pw && pw.uid !== 0 ? { uid: pw.uid, gid: pw.gid, name: pw.name } : undefined;
}

/** May a target of this kind of expansion be a command / file (allow_mail_to_*)? */
export function allowed(config: MainConfig, param: string, ctx: Context | undefined): boolean {
  return ctx === undefined || config.list(param).map((x) => x.toLowerCase()).includes(ctx);
}

/** The rights a user's files and commands run with: mail for root uses default_privs. */
export function userPrivs(config: MainConfig, pw: PasswdEntry): Privs | undefined {
  if (pw.uid !== 0) return { uid: pw.uid, gid: pw.gid, name: pw.name };
  return defaultPrivs(config); // mail for root is delivered with default_privs
}

/** A redirect (fallback_transport, mailbox_transport): deferred with the redirect attached. */
export function redirectTo(to: DeliverRedirect): Outcome {
  return { status: 'deferred', dsn: '4.3.0', text: `mail transport redirect to ${to.transport}:${to.nexthop}`, redirect: to };
}
