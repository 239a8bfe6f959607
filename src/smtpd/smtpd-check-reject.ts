/**
 * smtpd-check-reject - the restriction engine's shared vocabulary and its reply machinery
 * (Postfix smtpd_check.c: smtpd_check_reject(), defer_if(), DEFER_IF_PERMIT2(), log_whatsup(),
 * the longjmp(smtpd_check_buf) of a configuration or table error).
 *
 * Contract: every restriction (smtpd-check-generic.ts and the per-family modules it dispatches
 * to) answers a Status: DUNNO (go on), OK (stop, permit) or REJECT (stop; the reply is in
 * `st.error`, set only by reject()). A restriction that must abandon the whole stage (server
 * configuration error, temporary table failure) throws Abort through serverError(),
 * dictRetry() or tableError(); the stage driver (smtpd-check.ts) turns it into its Status.
 * CheckContext is what the restrictions may use of the SmtpdCheck that runs them.
 *
 * reject() applies, as Postfix: reply code and DSN sanity (a bad configured code becomes
 * "450 4.7.1 Service unavailable", logged), control characters and the 512-byte line limit,
 * defer_if_reject (a 5xx after it becomes the remembered 4xx), soft_bounce (5xx → 4xx),
 * warn_if_reject (only logged as "reject_warning", unless a software error).
 */
import type { SpfFacts, SpfVerdict } from '../lib-authres/spf-check.ts';
import type { Maps } from '../global/maps.ts';
import { DictError } from '../util/dict.ts';
import { logger } from '../util/msg.ts';
import type { RblChecker } from '../global/dnsbl.ts';
import type { ResolveClient, ResolveReply } from '../global/resolve-client.ts';
import type { SmtpdReply } from './smtpd-policy.ts';
import type { SmtpdState } from './smtpd-state.ts';
import type { DnsResolver } from './smtpd-check-addr.ts';
import type { NamadrList } from '../global/namadr-list.ts';
import type { CheckParams } from './smtpd-check-config.ts';
import type { PolicyClient } from '../global/policy-client.ts';
import type { VerifyClient } from '../global/verify-client.ts';
import type { MainConfig } from '../global/mail-conf.ts';

const log = logger('smtpd');

export const DUNNO = 0;
export const OK = 1;
export const REJECT = 2;
export type Status = typeof DUNNO | typeof OK | typeof REJECT;

/** Postfix MAIL_ERROR_* classes: only "software" errors survive warn_if_reject. */
export type ErrorClass = 'policy' | 'software' | 'resource' | 'protocol' | 'bounce';

/** Postfix SMTPD_NAME_*: the "what" of a reply text. */
export const CLIENT = 'Client host';
export const HELO = 'Helo command';
export const SENDER = 'Sender address';
export const RECIPIENT = 'Recipient address';
export const DATA = 'Data command';
export const EOD = 'End-of-data';
export const SASL_USER = 'SASL login name';

/** The longjmp(smtpd_check_buf) of Postfix: abandon the stage with this status. */
export class Abort { readonly status: Status; constructor(s: Status) { this.status = s; } }

export interface Defer { active: boolean; cls: ErrorClass; code: number; dsn: string; reason: string }
export const noDefer = (): Defer => ({ active: false, cls: 'policy', code: 0, dsn: '', reason: '' });

/** Per-session check state (the parts of Postfix's SMTPD_STATE the checks own). */
export interface CheckState {
  s: SmtpdState;
  where: string;
  helo?: string;
  sender?: string;
  recipient?: string;
  recursion: number;
  warnIfReject: number;
  deferIfPermit: Defer;
  deferIfReject: Defer;
  dipClient: boolean;
  dipHelo: boolean;
  dipSender: boolean;
  recipientRcptmapChecked: boolean;
  senderRcptmapChecked: boolean;
  /** DISCARD seen: the rest of the transaction is accepted unchecked. */
  discard: boolean;
  action?: 'hold' | 'discard';
  actionReason?: string;
  /** A FILTER action not yet handed to the session (SmtpdVerdict.filter). */
  filter?: string;
  /** A REDIRECT action not yet handed to the session (SmtpdVerdict.redirect). */
  redirect?: string;
  /** PREPEND headers not yet handed to the session (SmtpdVerdict.prepend). */
  prepend?: string[];
  error?: SmtpdReply;
  /** The restriction whose rejection is in `error` (metrics label, `postern explain`). */
  rejectedBy?: string;
}

/** One restriction evaluated, as reported to SessionExtras.checkTrace (`postern explain`). */
export interface CheckTraceEvent {
  /** Postfix's stage name: CONNECT, EHLO, MAIL, RCPT, DATA, END-OF-MESSAGE. */
  where: string;
  /** The reply class of the list: "Client host", "Sender address", ... */
  replyClass: string;
  /** Nesting: 1 for a top-level list, 2 inside a restriction class or access table result. */
  depth: number;
  /** The restriction as written, and the list entries it consumed as arguments. */
  restriction: string;
  args: string[];
  status: 'DUNNO' | 'OK' | 'REJECT' | 'ABORT';
  reply?: SmtpdReply;
}

/** What the session may offer beyond SmtpdState (optional hooks; see smtpd-check.ts). */
export type SessionExtras = SmtpdState & {
  inputPending?: () => boolean;
  queueId?: string;
  /** Called after each restriction (`postern explain` runs the checks with this set). */
  checkTrace?: (ev: CheckTraceEvent) => void;
};

/** What restrictions use of the SmtpdCheck running them (tables are opened once, at start). */
export interface CheckContext {
  readonly p: CheckParams;
  readonly tr: ResolveClient;
  readonly dns: DnsResolver;
  readonly rbl: RblChecker;
  /** permit_mx_backup_networks (undefined when empty). */
  readonly mxBackupNetworks?: NamadrList;
  /** maps_rbl_domains (the obsolete reject_maps_rbl). */
  readonly mapsRblDomains: string[];
  readonly mynetworks: NamadrList;
  readonly senderLoginMaps: Maps | undefined;
  /** smtpd_restriction_classes (and the built-in reject_sender_login_mismatch). */
  readonly classes: ReadonlyMap<string, string[]>;
  table(spec: string): Promise<Maps>;
  /** main.cf with the service's -o overrides (for restrictions with many parameters). */
  readonly config: MainConfig;
  /** Address verification (reject_unverified_*); undefined: a verify service failure. */
  readonly verify: VerifyClient | undefined;
  /** The client of one check_policy_service argument (made once; throws Error on a malformed one). */
  policy(spec: string): PolicyClient;
  /** SPF of a client and sender (lib-authres/spf-check.ts), for the reject_spf_* restrictions. */
  readonly spf?: (f: SpfFacts) => Promise<SpfVerdict>;
  /** Is this a valid SRS address of ours (lib-authres/srs.ts)? Such a recipient is known. */
  readonly srsKnown?: (address: string) => boolean;
  /** generic_checks(): evaluate a restriction list (classes and access table values recurse). */
  generic(st: CheckState, list: string[], replyName: string, replyClass: string, defAcl: string | undefined): Promise<Status>;
}

export function lower(s: string): string { return s.toLowerCase(); }

export function namaddr(st: CheckState): string { return `${st.s.clientName}[${st.s.clientAddr}]`; }

export function logWhatsup(st: CheckState, what: string, text: string): void {
  const s = st.s as SessionExtras;
  let line = `${s.queueId ?? 'NOQUEUE'}: ${what}: ${st.where} from ${namaddr(st)}: ${text};`;
  if (st.sender !== undefined) line += ` from=<${st.sender}>`;
  if (st.recipient !== undefined) line += ` to=<${st.recipient}>`;
  line += ` proto=${s.protocol}`;
  if (st.helo !== undefined) line += ` helo=<${st.helo}>`;
  log.info(line);
}

/** smtpd_check_reject(). */
export function reject(cx: CheckContext, st: CheckState, cls: ErrorClass, code: number, dsn: string, text: string): Status {
  const warn = st.warnIfReject > 0 && cls !== 'software';
  let c = code;
  let d = dsn;
  let t = text;
  if (c < 400 || c > 599) {
    log.warn(`SMTP reply code configuration error: ${c} ${d} ${t}`);
    c = 450; d = '4.7.1'; t = 'Service unavailable';
  } else if (!/^[245]\.\d{1,3}\.\d{1,3}$/.test(d)) {
    log.warn(`DSN detail code configuration error: ${c} ${d} ${t}`);
    c = 450; d = '4.7.1'; t = 'Service unavailable';
  }
  // eslint-disable-next-line no-control-regex
  t = t.replace(/[\x00-\x1f\x7f]/g, ' ');
  const room = 510 - `${c} ${d} `.length;
  if (t.length > room) t = t.slice(0, room);
  // An earlier temporary failure turns this 5xx into that 4xx (defer_if_reject).
  if (!warn && st.deferIfReject.active && c >= 500) {
    st.warnIfReject = 0;
    st.deferIfReject.active = false;
    const r = st.deferIfReject;
    return reject(cx, st, r.cls, r.code, r.dsn, r.reason);
  }
  if (cx.p.softBounce && c >= 500) c -= 100;
  d = `${String(c)[0]}${d.slice(1)}`;
  if (warn) {
    logWhatsup(st, 'reject_warning', `${c} ${d} ${t}`);
    return DUNNO;
  }
  st.error = { code: c, enh: d, text: t };
  return REJECT;
}

/** A remembered defer_if_permit/defer_if_reject, turned into its reply. */
export function fromDefer(cx: CheckContext, st: CheckState, d: Defer): Status {
  return reject(cx, st, d.cls, d.code, d.dsn, d.reason);
}

export function deferIf(d: Defer, cls: ErrorClass, code: number, dsn: string, reason: string): Status {
  if (!d.active) Object.assign(d, { active: true, cls, code, dsn, reason });
  return DUNNO;
}

/** DEFER_IF_PERMIT2(type, ...): remember, unless warn_if_reject or tempfail action "defer". */
export function deferIfPermit(cx: CheckContext, st: CheckState, remember: boolean, code: number, dsn: string, reason: string): Status {
  if (st.warnIfReject === 0 && remember) return deferIf(st.deferIfPermit, 'policy', code, dsn, reason);
  return reject(cx, st, 'policy', code, dsn, reason);
}

export function serverError(cx: CheckContext, st: CheckState): never {
  throw new Abort(reject(cx, st, 'software', 451, '4.3.5', 'Server configuration error'));
}

export function dictRetry(cx: CheckContext, st: CheckState, replyName: string): never {
  throw new Abort(reject(cx, st, 'resource', 451, '4.3.0', `<${replyName}>: Temporary lookup failure`));
}

/** A table error: retry → 451 4.3.0 Temporary lookup failure, config → 451 4.3.5. */
export function tableError(cx: CheckContext, st: CheckState, e: unknown, replyName: string): never {
  if (!(e instanceof DictError)) throw e;
  log.warn(e.message);
  if (e.kind === 'retry') dictRetry(cx, st, replyName);
  serverError(cx, st);
}

/** Resolve an address for a restriction; a resolver failure abandons the stage (4.3.0). */
export async function resolveAddr(cx: CheckContext, st: CheckState, addr: string, other: string): Promise<ResolveReply> {
  const r = await cx.tr.resolve(addr, other);
  if (r.flags.fail) dictRetry(cx, st, addr);
  return { ...r, recipient: lower(r.recipient) };
}

/** One restriction being evaluated, as generic_checks() hands it to its implementation. */
export interface RestrictionCall {
  /** The restriction name, lower case (a bare table turned into the stage's check_*_access). */
  name: string;
  /** The list it is in, and its index there (restrictions with arguments look ahead). */
  list: string[];
  i: number;
  replyName: string;
  replyClass: string;
  /** The stage's default access restriction for a bare "type:table" entry. */
  defAcl: string | undefined;
  /** The table argument of a check_*_access (consumes the next list entry). */
  mapArg(): string;
  /** The domain argument of a reject_rbl_* / reject_rhsbl_* (consumes the next list entry). */
  domainArg(): string;
  /** Consume the next list entry (an argument the restriction read itself). */
  skip(): void;
}

/** A restriction's implementation. */
export type Restriction = (cx: CheckContext, st: CheckState, r: RestrictionCall) => Status | Promise<Status>;

/** "<name>: Class rejected: what", Postfix's reply text for most restrictions. */
export function rejected(r: RestrictionCall, what: string): string {
  return `<${r.replyName}>: ${r.replyClass} rejected: ${what}`;
}
