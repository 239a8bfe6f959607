/**
 * smtpd-check - Postfix's SMTP access decisions (smtpd/smtpd_check.c), as the SmtpdPolicy that
 * smtpd-session.ts calls at each protocol stage.
 *
 * SUMMARY
 *   const policy = await SmtpdCheck.open(config, { rewrite: await TrivialRewrite.open(config) });
 *   createSmtpd(config, { policy, ... })
 *
 * DESCRIPTION
 *   Restriction lists are evaluated at Postfix's stages, left to right, each restriction
 *   answering DUNNO (go on), OK (stop, permit) or REJECT (stop, reply):
 *     connect  smtpd_client_restrictions    (here only with smtpd_delay_reject = no)
 *     HELO     smtpd_helo_restrictions      (idem)
 *     MAIL     smtpd_sender_restrictions    (idem)
 *     RCPT     with smtpd_delay_reject = yes (the default) first the client, HELO and sender
 *              lists again, then smtpd_relay_restrictions and smtpd_recipient_restrictions
 *              (relay first when smtpd_relay_before_recipient_restrictions = yes, the default at
 *              compatibility_level >= 3.6); an OK from one list does not skip the other; then
 *              the implicit reject_unlisted_recipient (smtpd_reject_unlisted_recipient = yes)
 *     DATA     smtpd_data_restrictions, END-OF-MESSAGE smtpd_end_of_data_restrictions.
 *   defer_if_permit / defer_if_reject / warn_if_reject work as in Postfix: a later permit turns
 *   into the remembered 450, a later 5xx reject into the remembered 450, a reject after
 *   warn_if_reject is only logged ("reject_warning"). Unknown restriction names log
 *   `unknown smtpd restriction: "name"` and answer "451 4.3.5 Server configuration error".
 *
 *   Reply texts are Postfix 3.7's ("<addr>: Recipient address rejected: Access denied"), the
 *   codes come from the same parameters; test/interop/smtpd-check-vs-postfix.test.ts compares
 *   them with the real smtpd. Address checks resolve through TrivialRewrite (flags.routed keeps
 *   user%host@ours, "user@host"@ours and host!user@ours from passing as "our" destination).
 *
 * SESSION HOOKS (see docs/smtpd-restrictions.md)
 *   reject_unauth_pipelining reads `state.inputPending()` when the session provides it (true when
 *   the client has sent bytes that were not yet read as commands); without it the restriction
 *   never fires. With smtpd_delay_reject = no, connect() returns the client rejection, which the
 *   session must send instead of the 220 greeting (Postfix then answers every command but QUIT
 *   with "503 5.7.0 Error: access denied for name[addr]").
 */
import type { MainConfig } from '../global/mail-conf.ts';
import { splitList } from '../global/mail-conf.ts';
import { Maps } from '../global/maps.ts';
import { mailAddrFind } from '../global/mail-addr-find.ts';
import { ConfigError } from '../global/config-error.ts';
import { DictError } from '../util/dict.ts';
import { logger } from '../util/msg.ts';
import { dnsResolverFromConfig } from '../util/dns-resolver.ts';
import { RblChecker, type DnsblResolver, type RhsblKind } from '../postscreen/dnsbl.ts';
import type { TrivialRewrite } from '../trivial-rewrite/trivial-rewrite.ts';
import type { ResolveReply } from '../trivial-rewrite/resolve.ts';
import type { SmtpdPolicy, SmtpdReply, SmtpdVerdict } from './smtpd-policy.ts';
import type { SmtpdState } from './smtpd-state.ts';
import {
  clientKeys, domainKeys, dsnFix, findFirst, mailKeys, parseAccessValue, type AccessKey,
} from './smtpd-check-access.ts';
import {
  NamadrList, dnsStatus, invalidHostaddr, invalidHostname, nonFqdnAddress, nonFqdnHostname,
  type DnsResolver,
} from './smtpd-check-addr.ts';

const log = logger('smtpd');

const DUNNO = 0;
const OK = 1;
const REJECT = 2;
type Status = typeof DUNNO | typeof OK | typeof REJECT;

/** Postfix MAIL_ERROR_* classes: only "software" errors survive warn_if_reject. */
type ErrorClass = 'policy' | 'software' | 'resource' | 'protocol' | 'bounce';

/** Postfix SMTPD_NAME_*: the "what" of a reply text. */
const CLIENT = 'Client host';
const HELO = 'Helo command';
const SENDER = 'Sender address';
const RECIPIENT = 'Recipient address';
const DATA = 'Data command';
const EOD = 'End-of-data';
const SASL_USER = 'SASL login name';

/** The longjmp(smtpd_check_buf) of Postfix: abandon the stage with this status. */
class Abort { readonly status: Status; constructor(s: Status) { this.status = s; } }

interface Defer { active: boolean; cls: ErrorClass; code: number; dsn: string; reason: string }
const noDefer = (): Defer => ({ active: false, cls: 'policy', code: 0, dsn: '', reason: '' });

/** Per-session check state (the parts of Postfix's SMTPD_STATE the checks own). */
interface CheckState {
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
  error?: SmtpdReply;
}

/** What the session may offer beyond SmtpdState (optional hooks; see the header). */
type SessionExtras = SmtpdState & { inputPending?: () => boolean; queueId?: string };

/** Restriction names that reject by default (Postfix rcpt_required[], in its order). */
const RCPT_REQUIRED = ['reject_unauth_destination', 'defer_unauth_destination', 'reject', 'defer', 'defer_if_permit', 'check_relay_domains'];

/** Restrictions Postfix has that Postern does not implement yet: they defer, loudly. */
const UNSUPPORTED = new Set([
  'permit_dnswl_client', 'permit_rhswl_client',
  'reject_maps_rbl', 'check_policy_service', 'reject_unverified_sender', 'reject_unverified_recipient',
  'permit_mx_backup', 'check_relay_domains', 'check_ccert_access', 'check_client_ns_access',
  'check_client_mx_access', 'check_client_a_access', 'check_reverse_client_ns_access',
  'check_reverse_client_mx_access', 'check_reverse_client_a_access', 'check_helo_ns_access',
  'check_helo_mx_access', 'check_helo_a_access', 'check_sender_ns_access', 'check_sender_mx_access',
  'check_sender_a_access', 'check_recipient_ns_access', 'check_recipient_mx_access',
  'check_recipient_a_access', 'check_etrn_access', 'permit_naked_ip_address',
]);

export interface SmtpdCheckOptions {
  /** The address resolver (class of a domain, recipient tables). */
  rewrite: TrivialRewrite;
  /** DNS for reject_unknown_*: default the shared resolver (postern_dns_servers, else the system's). */
  dns?: DnsResolver;
  /** DNS for reject_rbl_client / reject_rhsbl_* (needs TXT too): default as `dns`. */
  rblDns?: DnsblResolver;
}

function lower(s: string): string { return s.toLowerCase(); }

export class SmtpdCheck implements SmtpdPolicy {
  private readonly c: MainConfig;
  private readonly tr: TrivialRewrite;
  private readonly dns: DnsResolver;
  private readonly rbl: RblChecker;
  private readonly lists: Record<string, string[]>;
  private readonly classes = new Map<string, string[]>();
  private readonly tables = new Map<string, Maps>();
  private mynetworks!: NamadrList;
  private senderLoginMaps: Maps | undefined;
  private readonly states = new WeakMap<SmtpdState, CheckState>();
  private readonly p: {
    delayReject: boolean; relayFirst: boolean; rejUnlRcpt: boolean; rejUnlFrom: boolean;
    untrustedRouting: boolean; softBounce: boolean; sasl: boolean; accessParent: boolean;
    nullKey: string; delim: string; accessRejectCode: number; accessDeferCode: number;
    deferCode: number; rejectCode: number; relayCode: number; nonFqdnCode: number;
    badNameCode: number; unkNameCode: number; unkAddrCode: number; unkClientCode: number;
    mulRcptCode: number; unkAddrTfDefer: boolean; unkNameTfDefer: boolean;
  };

  private constructor(c: MainConfig, opts: SmtpdCheckOptions) {
    this.c = c;
    this.tr = opts.rewrite;
    try {
      this.dns = opts.dns ?? dnsResolverFromConfig(c);
      const rblDns = opts.rblDns ?? ('resolveTxt' in this.dns ? this.dns as unknown as DnsblResolver : dnsResolverFromConfig(c));
      this.rbl = new RblChecker(rblDns, { template: c.get('default_rbl_reply'), code: c.int('maps_rbl_reject_code') });
    } catch (e) {
      throw new ConfigError(c.file, c.lineOf('postern_dns_servers'), (e as Error).message);
    }
    const parentList = c.list('parent_domain_matches_subdomains').map(lower);
    const tf = (n: string) => lower(c.get(n)) !== 'defer';
    this.p = {
      delayReject: c.bool('smtpd_delay_reject'),
      relayFirst: c.bool('smtpd_relay_before_recipient_restrictions'),
      rejUnlRcpt: c.bool('smtpd_reject_unlisted_recipient'),
      rejUnlFrom: c.bool('smtpd_reject_unlisted_sender'),
      untrustedRouting: c.bool('allow_untrusted_routing'),
      softBounce: c.bool('soft_bounce'),
      sasl: c.bool('smtpd_sasl_auth_enable'),
      accessParent: parentList.includes('smtpd_access_maps'),
      nullKey: c.get('smtpd_null_access_lookup_key') || '<>',
      delim: c.get('recipient_delimiter'),
      accessRejectCode: c.int('access_map_reject_code') || 554,
      accessDeferCode: c.int('access_map_defer_code') || 450,
      deferCode: c.int('defer_code') || 450,
      rejectCode: c.int('reject_code') || 554,
      relayCode: c.int('relay_domains_reject_code') || 554,
      nonFqdnCode: c.int('non_fqdn_reject_code') || 504,
      badNameCode: c.int('invalid_hostname_reject_code') || 501,
      unkNameCode: c.int('unknown_hostname_reject_code') || 450,
      unkAddrCode: c.int('unknown_address_reject_code') || 450,
      unkClientCode: c.int('unknown_client_reject_code') || 450,
      mulRcptCode: c.int('multi_recipient_bounce_reject_code') || 550,
      unkAddrTfDefer: tf('unknown_address_tempfail_action'),
      unkNameTfDefer: tf('unknown_helo_hostname_tempfail_action'),
    };
    const list = (n: string) => splitList(c.get(n));
    this.lists = {
      client: list('smtpd_client_restrictions'),
      helo: list('smtpd_helo_restrictions'),
      mail: list('smtpd_sender_restrictions'),
      relay: list('smtpd_relay_restrictions'),
      rcpt: list('smtpd_recipient_restrictions'),
      data: list('smtpd_data_restrictions'),
      eod: list('smtpd_end_of_data_restrictions'),
    };
  }

  /**
   * Parse the restriction lists and classes, open every table they name (as Postfix does before
   * entering its chroot), and refuse a configuration without any rejecting relay restriction.
   * Throws ConfigError naming main.cf and the parameter.
   */
  static async open(config: MainConfig, opts: SmtpdCheckOptions): Promise<SmtpdCheck> {
    const ck = new SmtpdCheck(config, opts);
    const c = config;
    const file = c.file;
    for (const name of c.list('smtpd_restriction_classes')) {
      const value = c.get(name);
      if (value.trim() === '') {
        throw new ConfigError(file, c.lineOf('smtpd_restriction_classes'), `restriction class \`${name}' needs a definition`);
      }
      ck.classes.set(name, splitList(value));
    }
    // Built in: reject_sender_login_mismatch = both halves (smtpd_check_init()).
    ck.classes.set('reject_sender_login_mismatch', ['reject_authenticated_sender_login_mismatch', 'reject_unauthenticated_sender_login_mismatch']);
    const openAll = async (names: string[]) => {
      for (const n of names) if (n.includes(':')) await ck.table(n);
    };
    for (const l of Object.values(ck.lists)) await openAll(l);
    for (const l of ck.classes.values()) await openAll(l);
    const parent = c.list('parent_domain_matches_subdomains').map(lower).includes('mynetworks');
    ck.mynetworks = await NamadrList.create('mynetworks', c.get('mynetworks'), parent, (s) => ck.table(s), file);
    const slm = c.get('smtpd_sender_login_maps');
    if (splitList(slm).length) ck.senderLoginMaps = await ck.table(slm);
    if (!ck.hasRequired(ck.lists.relay!) && !ck.hasRequired(ck.lists.rcpt!)) {
      const line = c.lineOf('smtpd_recipient_restrictions') || c.lineOf('smtpd_relay_restrictions');
      const r = RCPT_REQUIRED;
      // Postfix 3.7 (fatal): "in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions,
      // specify at least one working instance of: ..." -- also what an empty configuration at
      // compatibility_level 0 gets, as with Postfix.
      throw new ConfigError(file, line, `in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at least one working instance of: ${r.slice(0, -1).join(', ')} or ${r[r.length - 1]}`);
    }
    return ck;
  }

  private hasRequired(list: string[], depth = 0): boolean {
    if (depth > 20) return false;
    for (let i = 0; i < list.length; i++) {
      const n = list[i]!;
      if (n === 'warn_if_reject' && i + 1 < list.length) { i++; continue; }
      if (RCPT_REQUIRED.includes(n)) return true;
      const cls = this.classes.get(n);
      if (cls && this.hasRequired(cls, depth + 1)) return true;
    }
    return false;
  }

  private async table(spec: string): Promise<Maps> {
    let m = this.tables.get(spec);
    if (!m) {
      m = await Maps.open(spec, { configDir: this.c.configDir, paramName: 'smtpd access table' });
      this.tables.set(spec, m);
    }
    return m;
  }

  // ---- SmtpdPolicy -------------------------------------------------------------------------

  private st(s: SmtpdState): CheckState {
    let st = this.states.get(s);
    if (!st) {
      st = {
        s, where: 'CONNECT', recursion: 0, warnIfReject: 0, deferIfPermit: noDefer(), deferIfReject: noDefer(),
        dipClient: false, dipHelo: false, dipSender: false, recipientRcptmapChecked: false,
        senderRcptmapChecked: false, discard: false,
      };
      this.states.set(s, st);
    }
    st.helo = s.helo;
    st.sender = s.tx?.sender;
    return st;
  }

  private verdict(st: CheckState, err: SmtpdReply | undefined): SmtpdVerdict | undefined {
    const action = st.action;
    const reason = st.actionReason;
    st.action = undefined;
    if (!err && !action) return undefined;
    return { ...(err ? { reply: err } : {}), ...(action ? { action, reason } : {}) };
  }

  async connect(s: SmtpdState): Promise<SmtpdVerdict | undefined> {
    const st = this.st(s);
    st.where = 'CONNECT';
    if (this.p.delayReject) return undefined;
    return this.verdict(st, await this.checkClient(st));
  }

  async helo(s: SmtpdState, helo: string): Promise<SmtpdVerdict | undefined> {
    const st = this.st(s);
    st.where = s.protocol === 'ESMTP' ? 'EHLO' : 'HELO';
    st.helo = helo;
    if (this.p.delayReject) return undefined;
    return this.verdict(st, await this.checkHelo(st, helo));
  }

  async mail(s: SmtpdState, sender: string): Promise<SmtpdVerdict | undefined> {
    const st = this.st(s);
    st.where = 'MAIL';
    st.discard = false;
    st.action = undefined;
    st.sender = sender;
    // smtpd.c mail_cmd(): the resolver's syntax check comes before any restriction.
    const syntax = await this.checkAddr(sender, '', s.tx?.smtputf8 ?? false);
    if (syntax) return { reply: { code: 501, enh: '5.1.7', text: 'Bad sender address syntax' } };
    if (this.p.delayReject) return undefined;
    return this.verdict(st, await this.checkMail(st, sender));
  }

  async rcpt(s: SmtpdState, recipient: string): Promise<SmtpdVerdict | undefined> {
    const st = this.st(s);
    st.where = 'RCPT';
    const syntax = await this.checkAddr(recipient, st.sender ?? '', s.tx?.smtputf8 ?? false);
    if (syntax) return { reply: { code: 501, enh: '5.1.3', text: 'Bad recipient address syntax' } };
    return this.verdict(st, await this.checkRcpt(st, recipient));
  }

  async data(s: SmtpdState): Promise<SmtpdVerdict | undefined> {
    const st = this.st(s);
    st.where = 'DATA';
    return this.verdict(st, await this.checkData(st, this.lists.data!, 'DATA', DATA));
  }

  async endOfData(s: SmtpdState): Promise<SmtpdVerdict | undefined> {
    const st = this.st(s);
    st.where = 'END-OF-MESSAGE';
    return this.verdict(st, await this.checkData(st, this.lists.eod!, 'END-OF-MESSAGE', EOD));
  }

  // ---- the stage drivers (smtpd_check_client/helo/mail/rcpt/data/eod) ----------------------

  /** smtpd_check_addr(): true when the resolver calls the address bad syntax. */
  private async checkAddr(addr: string, other: string, smtputf8: boolean): Promise<boolean> {
    if (addr === '') return false;
    const r = await this.tr.resolve(addr, other);
    if (r.flags.error) return true;
    const at = r.recipient.lastIndexOf('@');
    // eslint-disable-next-line no-control-regex
    return !smtputf8 && at >= 0 && /[^\x00-\x7f]/.test(r.recipient.slice(at + 1));
  }

  private reset(st: CheckState): void {
    st.recursion = 0;
    st.warnIfReject = 0;
    st.deferIfReject.active = false;
    st.error = undefined;
  }

  private namaddr(st: CheckState): string { return `${st.s.clientName}[${st.s.clientAddr}]`; }

  private async run(st: CheckState, list: string[], replyName: string, replyClass: string, defAcl: string | undefined): Promise<Status> {
    if (list.length === 0) return DUNNO;
    try {
      return await this.generic(st, list, replyName, replyClass, defAcl);
    } catch (e) {
      if (e instanceof Abort) return e.status;
      throw e;
    }
  }

  private async guard(f: () => Promise<Status>): Promise<Status> {
    try { return await f(); } catch (e) { if (e instanceof Abort) return e.status; throw e; }
  }

  private async checkClient(st: CheckState): Promise<SmtpdReply | undefined> {
    st.deferIfPermit.active = false;
    this.reset(st);
    const status = await this.run(st, this.lists.client!, this.namaddr(st), CLIENT, 'check_client_access');
    st.dipClient = st.deferIfPermit.active;
    return status === REJECT ? st.error : undefined;
  }

  private async checkHelo(st: CheckState, helo: string | undefined): Promise<SmtpdReply | undefined> {
    if (helo === undefined) return undefined;
    const saved = st.helo;
    st.helo = helo;
    try {
      st.deferIfPermit.active = st.dipClient;
      this.reset(st);
      const status = await this.run(st, this.lists.helo!, helo, HELO, 'check_helo_access');
      st.dipHelo = st.deferIfPermit.active;
      return status === REJECT ? st.error : undefined;
    } finally { st.helo = saved; }
  }

  private async checkMail(st: CheckState, sender: string | undefined): Promise<SmtpdReply | undefined> {
    if (sender === undefined) return undefined;
    const saved = st.sender;
    st.sender = sender;
    try {
      st.deferIfPermit.active = st.dipClient || st.dipHelo;
      st.senderRcptmapChecked = false;
      this.reset(st);
      let status = await this.run(st, this.lists.mail!, sender, SENDER, 'check_sender_access');
      st.dipSender = st.deferIfPermit.active;
      if (this.p.rejUnlFrom && status !== REJECT && !st.senderRcptmapChecked && !st.discard && sender !== '') {
        status = await this.guard(() => this.senderRcptMaps(st, sender));
      }
      return status === REJECT ? st.error : undefined;
    } finally { st.sender = saved; }
  }

  private async checkRcpt(st: CheckState, recipient: string): Promise<SmtpdReply | undefined> {
    // RFC 5321 §4.5.1: "postmaster" without a domain is always accepted.
    if (lower(recipient) === 'postmaster') return undefined;
    const saved = st.recipient;
    st.recipient = recipient;
    try {
      st.recipientRcptmapChecked = false;
      if (this.p.delayReject) {
        const err = (await this.checkClient(st)) ?? (await this.checkHelo(st, st.helo)) ?? (await this.checkMail(st, st.sender));
        if (err) return err;
      }
      st.deferIfPermit.active = st.dipSender;
      this.reset(st);
      const order = this.p.relayFirst ? [this.lists.relay!, this.lists.rcpt!] : [this.lists.rcpt!, this.lists.relay!];
      let status: Status = DUNNO;
      for (const list of order) {
        status = await this.run(st, list, recipient, RECIPIENT, 'check_recipient_access');
        if (status === REJECT) break;
      }
      if (status !== REJECT && st.deferIfPermit.active) status = this.fromDefer(st, st.deferIfPermit);
      if (this.p.rejUnlRcpt && status !== REJECT && !st.recipientRcptmapChecked && !st.discard) {
        status = await this.guard(() => this.recipientRcptMaps(st, recipient));
      }
      return status === REJECT ? st.error : undefined;
    } finally { st.recipient = saved; }
  }

  private async checkData(st: CheckState, list: string[], replyName: string, replyClass: string): Promise<SmtpdReply | undefined> {
    const rcpts = st.s.tx?.recipients ?? [];
    const saved = st.recipient;
    st.recipient = rcpts.length === 1 ? rcpts[0]!.address : undefined;
    try {
      st.deferIfPermit.active = false;
      this.reset(st);
      let status = await this.run(st, list, replyName, replyClass, undefined);
      if (status !== REJECT && st.deferIfPermit.active) status = this.fromDefer(st, st.deferIfPermit);
      return status === REJECT ? st.error : undefined;
    } finally { st.recipient = saved; }
  }

  private fromDefer(st: CheckState, d: Defer): Status {
    return this.reject(st, d.cls, d.code, d.dsn, d.reason);
  }

  // ---- smtpd_check_reject(), defer_if(), logging --------------------------------------------

  private logWhatsup(st: CheckState, what: string, text: string): void {
    const s = st.s as SessionExtras;
    let line = `${s.queueId ?? 'NOQUEUE'}: ${what}: ${st.where} from ${this.namaddr(st)}: ${text};`;
    if (st.sender !== undefined) line += ` from=<${st.sender}>`;
    if (st.recipient !== undefined) line += ` to=<${st.recipient}>`;
    line += ` proto=${s.protocol}`;
    if (st.helo !== undefined) line += ` helo=<${st.helo}>`;
    log.info(line);
  }

  private reject(st: CheckState, cls: ErrorClass, code: number, dsn: string, text: string): Status {
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
      return this.reject(st, r.cls, r.code, r.dsn, r.reason);
    }
    if (this.p.softBounce && c >= 500) c -= 100;
    d = `${String(c)[0]}${d.slice(1)}`;
    if (warn) {
      this.logWhatsup(st, 'reject_warning', `${c} ${d} ${t}`);
      return DUNNO;
    }
    st.error = { code: c, enh: d, text: t };
    return REJECT;
  }

  private deferIf(d: Defer, cls: ErrorClass, code: number, dsn: string, reason: string): Status {
    if (!d.active) Object.assign(d, { active: true, cls, code, dsn, reason });
    return DUNNO;
  }

  /** DEFER_IF_PERMIT2(type, ...): remember, unless warn_if_reject or tempfail action "defer". */
  private deferIfPermit(st: CheckState, remember: boolean, code: number, dsn: string, reason: string): Status {
    if (st.warnIfReject === 0 && remember) return this.deferIf(st.deferIfPermit, 'policy', code, dsn, reason);
    return this.reject(st, 'policy', code, dsn, reason);
  }

  private serverError(st: CheckState): never {
    throw new Abort(this.reject(st, 'software', 451, '4.3.5', 'Server configuration error'));
  }

  private dictRetry(st: CheckState, replyName: string): never {
    throw new Abort(this.reject(st, 'resource', 451, '4.3.0', `<${replyName}>: Temporary lookup failure`));
  }

  /** A table error: retry → 451 4.3.0 Temporary lookup failure, config → 451 4.3.5. */
  private tableError(st: CheckState, e: unknown, replyName: string): never {
    if (!(e instanceof DictError)) throw e;
    log.warn(e.message);
    if (e.kind === 'retry') this.dictRetry(st, replyName);
    this.serverError(st);
  }

  private async resolve(st: CheckState, addr: string, other: string): Promise<ResolveReply> {
    const r = await this.tr.resolve(addr, other);
    if (r.flags.fail) this.dictRetry(st, addr);
    return { ...r, recipient: lower(r.recipient) };
  }

  // ---- generic_checks() ---------------------------------------------------------------------

  private async generic(st: CheckState, list: string[], replyName: string, replyClass: string,
                        defAcl: string | undefined): Promise<Status> {
    const saved = st.recursion++;
    let status: Status = DUNNO;
    for (let i = 0; i < list.length; i++) {
      if (st.discard) break;
      let name = list[i]!;
      if (lower(name) === 'warn_if_reject') {
        if (st.warnIfReject === 0) st.warnIfReject = st.recursion;
        continue;
      }
      let table: string | undefined;
      if (name.includes(':')) {
        if (!defAcl) {
          log.warn(`specify one of (check_client_access, check_reverse_client_access, check_helo_access, check_sender_access, check_recipient_access, check_etrn_access) before ${replyClass} restriction "${name}"`);
          this.serverError(st);
        }
        table = name;
        name = defAcl;
      }
      const mapArg = (): string => {
        if (table !== undefined) return table;
        const next = list[i + 1];
        if (next === undefined || !next.includes(':')) {
          log.warn(`restriction ${name}: bad argument "${next ?? ''}": need maptype:mapname`);
          this.serverError(st);
        }
        i++;
        return next;
      };
      const domainArg = (): string => {
        const next = list[i + 1];
        if (next === undefined) {
          log.warn(`restriction ${name} requires domain name argument`);
          this.serverError(st);
        }
        i++;
        return next;
      };
      status = await this.one(st, lower(name), mapArg, list, i, replyName, replyClass, defAcl, domainArg);
      if (st.warnIfReject >= st.recursion) st.warnIfReject = 0;
      if (status !== DUNNO) break;
      if (st.deferIfPermit.active && st.deferIfReject.active) break;
    }
    st.recursion = saved;
    if (st.warnIfReject >= st.recursion) st.warnIfReject = 0;
    return status;
  }

  /** One restriction. `mapArg()` consumes the table argument of a check_*_access. */
  private async one(st: CheckState, name: string, mapArg: () => string, list: string[], i: number,
                    replyName: string, replyClass: string, defAcl: string | undefined,
                    domainArg: () => string = mapArg): Promise<Status> {
    const s = st.s;
    const rejected = (what: string) => `<${replyName}>: ${replyClass} rejected: ${what}`;
    switch (name) {
      // Generic.
      case 'permit': return OK;
      case 'reject': return this.reject(st, 'policy', this.p.rejectCode, '5.7.1', rejected('Access denied'));
      case 'defer': return this.reject(st, 'policy', this.p.deferCode, '4.3.2', rejected('Try again later'));
      case 'defer_if_permit':
        return this.deferIfPermit(st, true, 450, '4.7.0', rejected('defer_if_permit requested'));
      case 'defer_if_reject':
        return this.deferIf(st.deferIfReject, 'policy', 450, '4.7.0', rejected('defer_if_reject requested'));
      case 'reject_unauth_pipelining': {
        const pending = (s as SessionExtras).inputPending?.() ?? false;
        if (pending && (s.protocol !== 'ESMTP' || st.where === 'DATA')) {
          return this.reject(st, 'protocol', 503, '5.5.0', rejected('Improper use of SMTP command pipelining'));
        }
        return DUNNO;
      }
      case 'sleep': {
        const n = list[i + 1];
        if (n === undefined || !/^\d+$/.test(n)) { log.warn('restriction sleep must be followed by number'); this.serverError(st); }
        await new Promise((r) => setTimeout(r, Number(n) * 1000));
        return DUNNO;
      }
      // Client.
      case 'permit_inet_interfaces':
        return this.tr.ctx.localAddresses.has(s.clientAddr) ? OK : DUNNO;
      case 'permit_mynetworks':
        try { return (await this.mynetworks.match(s.clientName, s.clientAddr)) ? OK : DUNNO; } catch (e) { this.tableError(st, e, replyName); }
        break;
      case 'reject_unknown_client_hostname': case 'reject_unknown_client': case 'reject_unknown_reverse_client_hostname':
        if (s.clientName === 'unknown') {
          return this.reject(st, 'policy', this.p.unkClientCode, '4.7.1',
            `Client host rejected: cannot find your ${name === 'reject_unknown_reverse_client_hostname' ? 'reverse ' : ''}hostname, [${s.clientAddr}]`);
        }
        return DUNNO;
      case 'check_client_access': case 'check_reverse_client_access':
        return this.accessCheck(st, mapArg(), clientKeys(s.clientName, s.clientAddr, this.p.accessParent), this.namaddr(st), CLIENT, defAcl);
      case 'permit_sasl_authenticated':
        return this.p.sasl && s.saslUsername ? OK : DUNNO;
      case 'check_sasl_access': {
        const t = mapArg();
        if (!this.p.sasl) { log.warn(`restriction \`${name}' ignored: no SASL support`); return DUNNO; }
        if (!s.saslUsername) return DUNNO;
        return this.accessCheck(st, t, [{ key: s.saslUsername, partial: false }], s.saslUsername, SASL_USER, defAcl);
      }
      // DNS lists (src/postscreen/dnsbl.ts): default_rbl_reply, maps_rbl_reject_code.
      case 'reject_rbl_client': case 'reject_rbl':
        return this.rblResult(st, await this.rbl.rejectRblClient(s, domainArg()));
      case 'reject_rhsbl_client': case 'reject_rhsbl_reverse_client': case 'reject_rhsbl_helo':
      case 'reject_rhsbl_sender': case 'reject_rhsbl_recipient': {
        const kind = name.slice('reject_rhsbl_'.length) as RhsblKind;
        const d = domainArg();
        return this.rblResult(st, await this.rbl.rejectRhsbl(kind, { ...s, helo: st.helo }, d, { sender: st.sender, recipient: st.recipient }));
      }
      case 'permit_tls_clientcerts': case 'permit_tls_all_clientcerts':
        return DUNNO; // no verified client certificates yet (TLS issue)
      // HELO.
      case 'check_helo_access': {
        const t = mapArg();
        return st.helo === undefined ? DUNNO : this.accessCheck(st, t, domainKeys(st.helo, this.p.accessParent), st.helo, HELO, defAcl);
      }
      case 'reject_invalid_helo_hostname': case 'reject_invalid_hostname':
        if (st.helo === undefined) return DUNNO;
        if (st.helo.startsWith('[')) return this.hostaddr(st, st.helo);
        return invalidHostname(st.helo) ? this.reject(st, 'policy', this.p.badNameCode, '5.5.2', `<${st.helo}>: ${HELO} rejected: Invalid name`) : DUNNO;
      case 'reject_non_fqdn_helo_hostname': case 'reject_non_fqdn_hostname':
        if (st.helo === undefined) return DUNNO;
        if (st.helo.startsWith('[')) return this.hostaddr(st, st.helo);
        return nonFqdnHostname(st.helo) ? this.reject(st, 'policy', this.p.nonFqdnCode, '5.5.2', `<${st.helo}>: ${HELO} rejected: need fully-qualified hostname`) : DUNNO;
      case 'reject_unknown_helo_hostname': case 'reject_unknown_hostname': {
        if (st.helo === undefined) return DUNNO;
        if (st.helo.startsWith('[')) return this.hostaddr(st, st.helo);
        const r = await dnsStatus(this.dns, st.helo, true);
        const why = `<${st.helo}>: ${HELO} rejected: Host not found`;
        if (r === 'notfound') return this.reject(st, 'policy', this.p.unkNameCode, '4.7.1', why);
        if (r === 'retry') return this.deferIfPermit(st, this.p.unkNameTfDefer, 450, '4.7.1', why);
        return DUNNO;
      }
      // Sender.
      case 'check_sender_access': {
        const t = mapArg();
        if (st.sender === undefined) return DUNNO;
        if (st.sender === '') return this.accessCheck(st, t, [{ key: this.p.nullKey, partial: false }], '', SENDER, defAcl);
        return this.mailAccess(st, t, st.sender, SENDER, defAcl);
      }
      case 'reject_unknown_sender_domain': case 'reject_unknown_address':
        return st.sender ? this.unknownAddress(st, st.sender, SENDER) : DUNNO;
      case 'reject_non_fqdn_sender':
        return st.sender && nonFqdnAddress(st.sender) ? this.reject(st, 'policy', this.p.nonFqdnCode, '4.5.2', `<${st.sender}>: ${SENDER} rejected: need fully-qualified address`) : DUNNO;
      case 'reject_authenticated_sender_login_mismatch': case 'reject_known_sender_login_mismatch':
      case 'reject_unauthenticated_sender_login_mismatch': {
        if (!this.p.sasl) { log.warn(`restriction \`${name}' ignored: no SASL support`); return DUNNO; }
        if (!st.sender) return DUNNO;
        if (name === 'reject_unauthenticated_sender_login_mismatch' || (name === 'reject_known_sender_login_mismatch' && !s.saslUsername)) {
          return this.unauthLoginMismatch(st, st.sender);
        }
        return this.authLoginMismatch(st, st.sender, name === 'reject_known_sender_login_mismatch');
      }
      case 'reject_unlisted_sender':
        return st.sender ? this.senderRcptMaps(st, st.sender) : DUNNO;
      // Recipient.
      case 'check_recipient_access': {
        const t = mapArg();
        return st.recipient === undefined ? DUNNO : this.mailAccess(st, t, st.recipient, RECIPIENT, defAcl);
      }
      case 'permit_auth_destination':
        return st.recipient === undefined ? DUNNO : this.permitAuthDestination(st, st.recipient);
      case 'reject_unauth_destination': case 'defer_unauth_destination': {
        if (st.recipient === undefined) return DUNNO;
        if ((await this.permitAuthDestination(st, st.recipient)) === OK) return DUNNO;
        const defer = name === 'defer_unauth_destination';
        return this.reject(st, 'policy', defer ? this.p.relayCode - 100 : this.p.relayCode, defer ? '4.7.1' : '5.7.1', `<${st.recipient}>: Relay access denied`);
      }
      case 'reject_unknown_recipient_domain':
        return st.recipient ? this.unknownAddress(st, st.recipient, RECIPIENT) : DUNNO;
      case 'reject_non_fqdn_recipient':
        return st.recipient !== undefined && nonFqdnAddress(st.recipient) ? this.reject(st, 'policy', this.p.nonFqdnCode, '4.5.2', `<${st.recipient}>: ${RECIPIENT} rejected: need fully-qualified address`) : DUNNO;
      case 'reject_unlisted_recipient': case 'check_recipient_maps':
        return st.recipient ? this.recipientRcptMaps(st, st.recipient) : DUNNO;
      case 'reject_multi_recipient_bounce': {
        const n = s.tx?.recipients.length ?? 0;
        if (st.sender === '' && n > (st.where !== 'RCPT' ? 1 : 0)) {
          return this.reject(st, 'policy', this.p.mulRcptCode, '5.5.3', rejected('Multi-recipient bounce'));
        }
        return DUNNO;
      }
    }
    const cls = this.classes.get(name) ?? this.classes.get(list[i]!);
    if (cls) return this.generic(st, cls, replyName, replyClass, defAcl);
    if (UNSUPPORTED.has(name)) {
      log.warn(`restriction "${name}" is not implemented in Postern yet: remove it from the restriction list`);
      this.serverError(st);
    }
    log.warn(`unknown smtpd restriction: "${list[i]}"`);
    this.serverError(st);
  }

  private rblResult(st: CheckState, r: SmtpdReply | undefined): Status {
    if (!r) return DUNNO;
    return this.reject(st, r.code === 451 ? 'software' : 'policy', r.code, r.enh, r.text);
  }

  private hostaddr(st: CheckState, helo: string): Status {
    return invalidHostaddr(helo) ? this.reject(st, 'policy', this.p.badNameCode, '5.5.2', `<${helo}>: ${HELO} rejected: invalid ip address`) : DUNNO;
  }

  // ---- access tables -----------------------------------------------------------------------

  private async accessCheck(st: CheckState, spec: string, keys: AccessKey[], replyName: string,
                            replyClass: string, defAcl: string | undefined): Promise<Status> {
    const maps = await this.table(spec);
    let value: string | undefined;
    try {
      value = (await findFirst(maps, keys))?.value;
    } catch (e) {
      if (!(e instanceof DictError)) throw e;
      log.warn(e.message);
      value = '451 4.3.5 Server configuration error';
    }
    if (value === undefined) return DUNNO;
    return this.tableResult(st, spec, value, replyName, replyClass, defAcl);
  }

  /** check_mail_access(): keys from the resolved address; OK is void for routed recipients. */
  private async mailAccess(st: CheckState, spec: string, addr: string, replyClass: string,
                           defAcl: string | undefined): Promise<Status> {
    const r = await this.resolve(st, addr, replyClass === SENDER ? st.recipient ?? '' : st.sender ?? '');
    if (!r.recipient.includes('@')) { log.warn(`check_mail_access: no @domain in address: ${r.recipient}`); return DUNNO; }
    const status = await this.accessCheck(st, spec, mailKeys(r.recipient, this.p.delim, this.p.accessParent), addr, replyClass, defAcl);
    const suspicious = !this.p.untrustedRouting && r.flags.routed && replyClass === RECIPIENT;
    return status === OK && suspicious ? DUNNO : status;
  }

  /** check_table_result(): act on one access(5) value. */
  private async tableResult(st: CheckState, table: string, value: string, replyName: string,
                            replyClass: string, defAcl: string | undefined): Promise<Status> {
    const a = parseAccessValue(value);
    const rejected = (text: string) => `<${replyName}>: ${replyClass} rejected: ${text}`;
    const inTx = () => {
      if (st.sender === undefined) {
        log.warn(`access table ${table}: with smtpd_delay_reject=no, action ${a.kind.toUpperCase()} is always skipped in client or helo restrictions`);
        return false;
      }
      return true;
    };
    switch (a.kind) {
      case 'dunno': return DUNNO;
      case 'ok': return OK;
      case 'reject': return this.reject(st, 'policy', a.code ?? this.p.accessRejectCode, dsnFix(a.dsn, replyClass), rejected(a.text));
      case 'defer': return this.reject(st, 'policy', this.p.accessDeferCode, dsnFix(a.dsn, replyClass), rejected(a.text));
      case 'defer_if_permit': return this.deferIfPermit(st, true, this.p.accessDeferCode, dsnFix(a.dsn, replyClass), rejected(a.text));
      case 'defer_if_reject': return this.deferIf(st.deferIfReject, 'policy', this.p.accessDeferCode, dsnFix(a.dsn, replyClass), rejected(a.text));
      case 'warn': this.logWhatsup(st, 'warn', a.text); return DUNNO;
      case 'hold':
        if (!inTx()) return DUNNO;
        this.logWhatsup(st, 'hold', `<${replyName}>: ${replyClass} ${a.text || 'triggers HOLD action'}`);
        st.action = 'hold';
        st.actionReason = a.text || 'triggers HOLD action';
        return DUNNO;
      case 'discard':
        if (!inTx()) return DUNNO;
        this.logWhatsup(st, 'discard', `<${replyName}>: ${replyClass} ${a.text || 'triggers DISCARD action'}`);
        st.discard = true;
        st.action = 'discard';
        st.actionReason = a.text || 'triggers DISCARD action';
        return OK;
      case 'filter': case 'redirect': case 'prepend':
        log.warn(`access table ${table}: action ${a.kind.toUpperCase()} is not implemented in Postern yet: ignored`);
        return DUNNO;
      case 'table-in-value':
        log.warn(`access table ${table} has entry with lookup table: ${value}`);
        log.warn('do not specify lookup tables inside SMTPD access maps');
        log.warn('define a restriction class and specify its name instead.');
        this.serverError(st);
        break;
      case 'empty':
        log.warn(`access table ${table} entry ${value} has empty value`);
        return OK;
      case 'restrictions':
        if (st.recursion > 100) {
          log.warn(`access table ${table} entry ${value} causes unreasonable recursion`);
          this.serverError(st);
        }
        return this.generic(st, a.names, replyName, replyClass, defAcl);
    }
    return DUNNO;
  }

  // ---- destinations and recipient tables ---------------------------------------------------

  /** permit_auth_destination(): final (local/alias/virtual) or relay_domains, never routed. */
  private async permitAuthDestination(st: CheckState, rcpt: string): Promise<Status> {
    const r = await this.resolve(st, rcpt, st.sender ?? '');
    if (!r.recipient.includes('@')) return OK;
    if (!this.p.untrustedRouting && r.flags.routed) return DUNNO;
    if (r.class === 'local' || r.class === 'alias' || r.class === 'virtual' || r.class === 'relay') return OK;
    return DUNNO;
  }

  private async recipientRcptMaps(st: CheckState, rcpt: string): Promise<Status> {
    if (st.recipientRcptmapChecked) return DUNNO;
    if (st.warnIfReject === 0) st.recipientRcptmapChecked = true;
    return this.rcptMaps(st, st.sender ?? '', rcpt, RECIPIENT);
  }

  private async senderRcptMaps(st: CheckState, sender: string): Promise<Status> {
    if (st.senderRcptmapChecked) return DUNNO;
    if (st.warnIfReject === 0) st.senderRcptmapChecked = true;
    return this.rcptMaps(st, st.recipient ?? '', sender, SENDER);
  }

  /** check_rcpt_maps(): is the address a known user of its address class? */
  private async rcptMaps(st: CheckState, other: string, addr: string, replyClass: string): Promise<Status> {
    const r = await this.resolve(st, addr, other);
    let v;
    try { v = await this.tr.checkRecipient(r); } catch (e) { this.tableError(st, e, addr); }
    if (v.ok) return DUNNO;
    // The error transport's text carries its own DSN (dsn_split + smtpd_dsn_fix); the class
    // tables answer a literal 5.1.0 (sender) or 5.1.1 (recipient).
    const dsn = r.transport === 'error' ? dsnFix(v.dsn, replyClass) : replyClass === SENDER ? '5.1.0' : '5.1.1';
    return this.reject(st, 'bounce', v.code, dsn, `<${addr}>: ${replyClass} rejected: ${v.text}`);
  }

  /** reject_unknown_address(): the domain of a non-final address must exist in DNS. */
  private async unknownAddress(st: CheckState, addr: string, replyClass: string): Promise<Status> {
    const r = await this.resolve(st, addr, replyClass === SENDER ? st.recipient ?? '' : st.sender ?? '');
    const at = r.recipient.lastIndexOf('@');
    if (at < 0) return DUNNO;
    if (r.class === 'local' || r.class === 'alias' || r.class === 'virtual') return DUNNO;
    const domain = r.recipient.slice(at + 1);
    if (domain.startsWith('[') && domain.endsWith(']')) return DUNNO;
    const sender = replyClass === SENDER;
    const dsn = sender ? '4.1.8' : '4.1.2';
    const why = `<${addr}>: ${replyClass} rejected: Domain not found`;
    switch (await dnsStatus(this.dns, domain, true)) {
      case 'ok': return DUNNO;
      case 'notfound': return this.reject(st, 'policy', this.p.unkAddrCode, dsn, why);
      case 'nullmx': return this.reject(st, 'policy', sender ? 550 : 556, sender ? '4.7.27' : '4.1.10',
        `<${addr}>: ${replyClass} rejected: Domain ${domain} does not accept mail (nullMX)`);
      case 'retry': return this.deferIfPermit(st, this.p.unkAddrTfDefer, 450, dsn, why);
    }
  }

  /** The owners of a sender address in smtpd_sender_login_maps (comma/space list). */
  private async loginOwners(st: CheckState, sender: string): Promise<string[] | undefined> {
    const r = await this.resolve(st, sender, st.recipient ?? '');
    let hit;
    try {
      hit = await mailAddrFind(this.senderLoginMaps!, r.recipient, {
        recipientDelimiter: this.p.delim,
        isLocalDomain: () => r.class === 'local',
      });
    } catch (e) { this.tableError(st, e, sender); }
    return hit ? hit.value.split(/[\s,]+/).filter((x) => x !== '') : undefined;
  }

  private async authLoginMismatch(st: CheckState, sender: string, allowUnknown: boolean): Promise<Status> {
    const user = st.s.saslUsername;
    if (!this.senderLoginMaps || !user) return DUNNO;
    const owners = await this.loginOwners(st, sender);
    if (!owners && allowUnknown) return DUNNO;
    if (owners?.some((o) => lower(o) === lower(user))) return DUNNO;
    return this.reject(st, 'policy', 553, '5.7.1', `<${sender}>: Sender address rejected: not owned by user ${user}`);
  }

  private async unauthLoginMismatch(st: CheckState, sender: string): Promise<Status> {
    if (!this.senderLoginMaps || st.s.saslUsername) return DUNNO;
    if (await this.loginOwners(st, sender)) {
      return this.reject(st, 'policy', 553, '5.7.1', `<${sender}>: Sender address rejected: not logged in`);
    }
    return DUNNO;
  }
}
