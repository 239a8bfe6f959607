/**
 * smtpd-check - Postfix's SMTP access decisions (smtpd/smtpd_check.c), as the SmtpdPolicy that
 * smtpd-session.ts calls at each protocol stage.
 *
 * SUMMARY
 *   const policy = await SmtpdCheck.open(config, { rewrite: await openRewrite(config) });  // ResolveClient
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
 *   them with the real smtpd. Address checks resolve through trivial-rewrite, the ResolveClient
 *   of global/resolve-client.ts the master passes in (flags.routed keeps user%host@ours,
 *   "user@host"@ours and host!user@ours from passing as "our" destination).
 *
 * FILES
 *   smtpd-check.ts            this class: the SmtpdPolicy hooks and the stage drivers
 *                             (smtpd_check_client/helo/mail/rcpt/data/eod), table opening
 *   smtpd-check-config.ts     main.cf parameters and restriction lists, the relay-safety check
 *   smtpd-check-generic.ts    generic_checks(): list evaluation, dispatch, generic restrictions
 *   smtpd-check-client.ts     client restrictions and DNS lists (reject_rbl_client, rhsbl)
 *   smtpd-check-helo.ts       HELO restrictions
 *   smtpd-check-sender.ts     sender restrictions, SASL login mismatch
 *   smtpd-check-recipient.ts  recipient restrictions, relay control
 *   smtpd-check-spf.ts        SPF restrictions (reject_spf_fail, ..., docs/authres.md)
 *   smtpd-check-dest.ts       resolver questions: our destination, known users, domain exists
 *   smtpd-check-table.ts      check_*_access: table lookup and access(5) actions
 *   smtpd-check-policy.ts     check_policy_service (client: global/policy-client.ts)
 *   smtpd-check-verify.ts     reject_unverified_recipient/_sender (global/verify-client.ts)
 *   smtpd-check-access.ts     access(5) key order and value syntax
 *   smtpd-check-addr.ts       host name/address syntax, DNS status (mynetworks-style lists:
 *                             global/namadr-list.ts)
 *   smtpd-check-reject.ts     Status, check state, smtpd_check_reject() and the defer logic
 *
 * SESSION HOOKS (see docs/smtpd-restrictions.md)
 *   reject_unauth_pipelining reads `state.inputPending()` when the session provides it (true when
 *   the client has sent bytes that were not yet read as commands); without it the restriction
 *   never fires. With smtpd_delay_reject = no, connect() returns the client rejection, which the
 *   session must send instead of the 220 greeting (Postfix then answers every command but QUIT
 *   with "503 5.7.0 Error: access denied for name[addr]").
 */
import { spfEvaluator } from '../lib-authres/spf-check.ts';
import { srsRecipientCheck } from '../lib-authres/srs.ts';
import type { MainConfig } from '../global/mail-conf.ts';
import { splitList } from '../global/mail-conf.ts';
import { Maps } from '../global/maps.ts';
import { ConfigError } from '../global/config-error.ts';
import { dnsResolverFromConfig } from '../util/dns-resolver.ts';
import { RblChecker, type DnsblResolver } from '../global/dnsbl.ts';
import type { ResolveClient } from '../global/resolve-client.ts';
import type { SmtpdPolicy, SmtpdReply, SmtpdVerdict } from './smtpd-policy.ts';
import type { SmtpdState } from './smtpd-state.ts';
import type { DnsResolver } from './smtpd-check-addr.ts';
import { NamadrList } from '../global/namadr-list.ts';
import { PolicyClient, policySettings } from '../global/policy-client.ts';
import type { VerifyClient } from '../global/verify-client.ts';
import { RCPT_REQUIRED, hasRequired, readCheckParams, readRestrictionLists, type CheckParams, type RestrictionLists } from './smtpd-check-config.ts';
import { generic } from './smtpd-check-generic.ts';
import { recipientRcptMaps, senderRcptMaps } from './smtpd-check-dest.ts';
import {
  Abort, CLIENT, DATA, DUNNO, EOD, HELO, RECIPIENT, REJECT, SENDER, fromDefer, lower, namaddr, noDefer,
  type CheckContext, type CheckState, type Status,
} from './smtpd-check-reject.ts';

export interface SmtpdCheckOptions {
  /** The address resolver (class of a domain, recipient tables). */
  rewrite: ResolveClient;
  /** DNS for reject_unknown_*: default the shared resolver (postern_dns_servers, else the system's). */
  dns?: DnsResolver;
  /** Address verification for reject_unverified_* (global/verify-client.ts). */
  verify?: VerifyClient;
  /** DNS for reject_rbl_client / reject_rhsbl_* (needs TXT too): default as `dns`. */
  rblDns?: DnsblResolver;
}

export class SmtpdCheck implements SmtpdPolicy {
  private readonly c: MainConfig;
  private readonly tr: ResolveClient;
  private readonly dns: DnsResolver;
  private readonly rbl: RblChecker;
  private readonly lists: RestrictionLists;
  private readonly classes = new Map<string, string[]>();
  private readonly tables = new Map<string, Maps>();
  private readonly policies = new Map<string, PolicyClient>();
  private readonly states = new WeakMap<SmtpdState, CheckState>();
  private readonly p: CheckParams;
  /** What the restrictions see of this object; complete once open() has opened the tables. */
  private readonly cx: CheckContext;

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
    this.p = readCheckParams(c);
    this.lists = readRestrictionLists(c);
    const cx: { -readonly [K in keyof CheckContext]: CheckContext[K] } = {
      p: this.p, tr: this.tr, dns: this.dns, rbl: this.rbl, mapsRblDomains: c.list('maps_rbl_domains'), classes: this.classes, config: c, verify: opts.verify,
      mynetworks: undefined as unknown as NamadrList, // set by open()
      senderLoginMaps: undefined,
      table: (spec) => this.table(spec),
      policy: (spec) => this.policy(spec),
      spf: spfEvaluator(c),
      srsKnown: srsRecipientCheck(c),
      generic: (st, list, replyName, replyClass, defAcl) => generic(cx, st, list, replyName, replyClass, defAcl),
    };
    this.cx = cx;
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
      for (let i = 0; i < names.length; i++) {
        if (lower(names[i]!) === 'check_policy_service') { i++; continue; } // a server, not a table
        if (names[i]!.includes(':')) await ck.table(names[i]!);
      }
    };
    for (const l of Object.values(ck.lists)) await openAll(l);
    for (const l of ck.classes.values()) await openAll(l);
    // policy_client_register(): every check_policy_service argument, checked at start.
    for (const l of [...Object.values(ck.lists), ...ck.classes.values()]) {
      for (let i = 0; i < l.length - 1; i++) {
        if (lower(l[i]!) !== 'check_policy_service') continue;
        try { ck.policy(l[i + 1]!); } catch (e) {
          throw new ConfigError(file, 0, `${(e as Error).message}: fix the check_policy_service argument`);
        }
      }
    }
    const cx = ck.cx as { mynetworks: NamadrList; senderLoginMaps: Maps | undefined; mxBackupNetworks?: NamadrList };
    const parent = c.list('parent_domain_matches_subdomains').map(lower).includes('mynetworks');
    cx.mynetworks = await NamadrList.create('mynetworks', c.get('mynetworks'), parent, (s) => ck.table(s), file);
    const mbn = c.get('permit_mx_backup_networks');
    if (splitList(mbn).length) {
      const p = c.list('parent_domain_matches_subdomains').map(lower).includes('permit_mx_backup_networks');
      cx.mxBackupNetworks = await NamadrList.create('permit_mx_backup_networks', mbn, p, (s) => ck.table(s), file);
    }
    const slm = c.get('smtpd_sender_login_maps');
    if (splitList(slm).length) cx.senderLoginMaps = await ck.table(slm);
    if (!hasRequired(ck.classes, ck.lists.relay) && !hasRequired(ck.classes, ck.lists.rcpt)) {
      const line = c.lineOf('smtpd_recipient_restrictions') || c.lineOf('smtpd_relay_restrictions');
      const r = RCPT_REQUIRED;
      // Postfix 3.7 (fatal): "in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions,
      // specify at least one working instance of: ..." -- also what an empty configuration at
      // compatibility_level 0 gets, as with Postfix.
      throw new ConfigError(file, line, `in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at least one working instance of: ${r.slice(0, -1).join(', ')} or ${r[r.length - 1]}`);
    }
    return ck;
  }

  /** check_policy_service clients, one per distinct argument (connections are shared by sessions). */
  private policy(spec: string): PolicyClient {
    let pc = this.policies.get(spec);
    if (!pc) {
      pc = new PolicyClient(policySettings(spec, this.c), this.c);
      this.policies.set(spec, pc);
    }
    return pc;
  }

  /** Close the policy servers' connections. */
  async close(): Promise<void> {
    for (const pc of this.policies.values()) await pc.close();
    this.policies.clear();
  }

  private async table(spec: string): Promise<Maps> {
    let m = this.tables.get(spec);
    if (!m) {
      m = await Maps.open(spec, { ...this.c.dictFlags, paramName: 'smtpd access table' });
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
    const prepend = st.prepend;
    const filter = st.filter;
    const redirect = st.redirect;
    st.action = undefined;
    st.prepend = undefined;
    st.filter = undefined;
    st.redirect = undefined;
    if (!err && !action && !prepend && !filter && !redirect) return undefined;
    return {
      ...(err ? { reply: err, restriction: st.rejectedBy ?? 'unknown' } : {}), ...(action ? { action, reason } : {}),
      ...(prepend ? { prepend } : {}), ...(filter ? { filter } : {}), ...(redirect ? { redirect } : {}),
    };
  }

  /** Is the client in $mynetworks (permit_mynetworks)? A table error answers no. */
  async mynetworks(s: SmtpdState): Promise<boolean> {
    try { return await this.cx.mynetworks.match(s.clientName, s.clientAddr); } catch { return false; }
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
    if (syntax) return { reply: { code: 501, enh: '5.1.7', text: 'Bad sender address syntax' }, restriction: 'address_syntax' };
    if (this.p.delayReject) return undefined;
    return this.verdict(st, await this.checkMail(st, sender));
  }

  async rcpt(s: SmtpdState, recipient: string): Promise<SmtpdVerdict | undefined> {
    const st = this.st(s);
    st.where = 'RCPT';
    const syntax = await this.checkAddr(recipient, st.sender ?? '', s.tx?.smtputf8 ?? false);
    if (syntax) return { reply: { code: 501, enh: '5.1.3', text: 'Bad recipient address syntax' }, restriction: 'address_syntax' };
    return this.verdict(st, await this.checkRcpt(st, recipient));
  }

  async data(s: SmtpdState): Promise<SmtpdVerdict | undefined> {
    const st = this.st(s);
    st.where = 'DATA';
    return this.verdict(st, await this.checkData(st, this.lists.data, 'DATA', DATA));
  }

  async endOfData(s: SmtpdState): Promise<SmtpdVerdict | undefined> {
    const st = this.st(s);
    st.where = 'END-OF-MESSAGE';
    return this.verdict(st, await this.checkData(st, this.lists.eod, 'END-OF-MESSAGE', EOD));
  }

  /** smtpd_check_etrn(): the client and HELO lists first (delay_reject), then smtpd_etrn_restrictions. */
  async etrn(s: SmtpdState, domain: string): Promise<SmtpdVerdict | undefined> {
    const st = this.st(s);
    st.where = 'ETRN';
    if (this.p.delayReject) {
      const c = await this.checkClient(st) ?? await this.checkHelo(st, st.helo);
      if (c) return this.verdict(st, c);
    }
    st.deferIfPermit.active = false;
    this.reset(st);
    let status = await this.run(st, this.lists.etrn, domain, 'Etrn command', 'check_etrn_access');
    if (status !== REJECT && st.deferIfPermit.active) status = fromDefer(this.cx, st, st.deferIfPermit);
    return this.verdict(st, status === REJECT ? st.error : undefined);
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
    st.rejectedBy = undefined;
  }

  private async run(st: CheckState, list: string[], replyName: string, replyClass: string, defAcl: string | undefined): Promise<Status> {
    if (list.length === 0) return DUNNO;
    try {
      return await generic(this.cx, st, list, replyName, replyClass, defAcl);
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
    const status = await this.run(st, this.lists.client, namaddr(st), CLIENT, 'check_client_access');
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
      const status = await this.run(st, this.lists.helo, helo, HELO, 'check_helo_access');
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
      let status = await this.run(st, this.lists.mail, sender, SENDER, 'check_sender_access');
      st.dipSender = st.deferIfPermit.active;
      if (this.p.rejUnlFrom && status !== REJECT && !st.senderRcptmapChecked && !st.discard && sender !== '') {
        status = await this.guard(() => senderRcptMaps(this.cx, st, sender));
        if (status === REJECT) st.rejectedBy ??= 'reject_unlisted_sender';
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
      const order = this.p.relayFirst ? [this.lists.relay, this.lists.rcpt] : [this.lists.rcpt, this.lists.relay];
      let status: Status = DUNNO;
      for (const list of order) {
        status = await this.run(st, list, recipient, RECIPIENT, 'check_recipient_access');
        if (status === REJECT) break;
      }
      if (status !== REJECT && st.deferIfPermit.active) { status = fromDefer(this.cx, st, st.deferIfPermit); st.rejectedBy ??= 'defer_if_permit'; }
      if (this.p.rejUnlRcpt && status !== REJECT && !st.recipientRcptmapChecked && !st.discard) {
        status = await this.guard(() => recipientRcptMaps(this.cx, st, recipient));
        if (status === REJECT) st.rejectedBy ??= 'reject_unlisted_recipient';
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
      if (status !== REJECT && st.deferIfPermit.active) status = fromDefer(this.cx, st, st.deferIfPermit);
      return status === REJECT ? st.error : undefined;
    } finally { st.recipient = saved; }
  }
}
