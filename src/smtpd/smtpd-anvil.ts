/**
 * smtpd-anvil - smtpd(8)'s use of anvil: the smtpd_client_*_limit checks with Postfix 3.7's
 * exact replies and warnings, as a ClientLimits object one smtpd listener creates at start.
 *
 * SUMMARY
 *   const limits = await ClientLimits.open(config, { service: 'smtp', anvil });   // AnvilClient
 *   const a = await limits.admit(addr);             // at accept, before the banner
 *   if (a.reply) { sock.end(a.reply + '\r\n'); return; }   sock.once('close', a.release);
 *   createSmtpd(config, { policy: limits.policy(check), auth: limits.auth(auth), ... })
 *
 * DESCRIPTION
 *   Replies and log lines are the strings in Postfix 3.7.11's smtpd binary (smtpd.c,
 *   smtpd_sasl_proto.c):
 *     connect  421 4.7.0 <myhostname> Error: too many connections from <addr>
 *              warning: Connection concurrency limit exceeded: N from unknown[addr] for service smtp
 *              warning: Connection rate limit exceeded: N from unknown[addr] for service smtp
 *     MAIL     450 4.7.1 Error: too much mail from <addr>
 *              warning: Message delivery request rate limit exceeded: N from ... for service smtp
 *     RCPT     450 4.7.1 Error: too many recipients from <addr>
 *              warning: Recipient address rate limit exceeded: N from ... for service smtp
 *     AUTH     450 4.7.1 Error: too many AUTH commands from <addr>
 *              warning: AUTH command rate limit exceeded: N from ... for service smtp
 *     STARTTLS 454 4.7.0 Error: too many new TLS sessions from <addr>
 *     (wrapper mode: 421 4.7.0 <myhostname> Error: too many new TLS sessions from <addr>)
 *              warning: New TLS session rate limit exceeded: N from ... for service smtp
 *   A limit of 0 disables the check. Clients matching smtpd_client_event_limit_exceptions
 *   (default $mynetworks) are not counted at all, as Postfix's hogger_list.
 *
 *   The MAIL and RCPT checks run as an SmtpdPolicy wrapper (policy()), so they fire after the
 *   command's syntax check, where Postfix checks before it; the count is the same for
 *   well-formed commands.
 *
 * SECURITY
 *   Everything here is counted per client address in the master's one table (the AnvilClient of
 *   global/anvil-client.ts, which the master passes in: src/anvil/anvil.ts, asked over IPC from
 *   a child process), so the limits hold across all listeners, sessions and processes.
 *
 * PARAMETERS
 *   smtpd_client_connection_count_limit, smtpd_client_connection_rate_limit,
 *   smtpd_client_message_rate_limit, smtpd_client_recipient_rate_limit,
 *   smtpd_client_auth_rate_limit, smtpd_client_new_tls_session_rate_limit,
 *   smtpd_client_event_limit_exceptions, anvil_rate_time_unit, myhostname
 */
import type { MainConfig } from '../global/mail-conf.ts';
import { Maps } from '../global/maps.ts';
import { logger } from '../util/msg.ts';
import { NamadrList } from '../global/namadr-list.ts';
import type { SmtpdPolicy, SmtpdReply, SmtpdVerdict } from './smtpd-policy.ts';
import { directoryAuth, type SmtpdAuth } from './smtpd-sasl.ts';
import type { UserDirectory } from '../lib-auth/user-directory.ts';
import type { SmtpdState } from './smtpd-state.ts';
import type { AnvilClient } from '../global/anvil-client.ts';

const log = logger('smtpd');

export interface ClientLimitSettings {
  myhostname: string;
  connectionCount: number;
  connectionRate: number;
  messageRate: number;
  recipientRate: number;
  authRate: number;
  newTlsRate: number;
}

export interface ClientLimitsOptions {
  /** master.cf service name: anvil keys are per (service, client) as in Postfix. */
  service: string;
  /** The anvil table (global/anvil-client.ts): the master passes the process-wide one. */
  anvil: AnvilClient;
}

export interface Admission {
  /** Set when the client is refused: the whole reply line, without CRLF. */
  reply?: string;
  /** Call once when the connection closes (no-op when refused or exempt). */
  release(): void;
}

export class ClientLimits {
  readonly settings: ClientLimitSettings;
  readonly service: string;
  readonly anvil: AnvilClient;
  private readonly exceptions: NamadrList;

  private constructor(settings: ClientLimitSettings, service: string, anvil: AnvilClient, exceptions: NamadrList) {
    this.settings = settings;
    this.service = service;
    this.anvil = anvil;
    this.exceptions = exceptions;
  }

  /** Throws ConfigError naming the parameter for a bad exception pattern or table. */
  static async open(c: MainConfig, opts: ClientLimitsOptions): Promise<ClientLimits> {
    const settings: ClientLimitSettings = {
      myhostname: c.get('myhostname'),
      connectionCount: c.int('smtpd_client_connection_count_limit'),
      connectionRate: c.int('smtpd_client_connection_rate_limit'),
      messageRate: c.int('smtpd_client_message_rate_limit'),
      recipientRate: c.int('smtpd_client_recipient_rate_limit'),
      authRate: c.int('smtpd_client_auth_rate_limit'),
      newTlsRate: c.int('smtpd_client_new_tls_session_rate_limit'),
    };
    const parent = c.list('parent_domain_matches_subdomains').map((s) => s.toLowerCase()).includes('smtpd_client_event_limit_exceptions');
    const exceptions = await NamadrList.create('smtpd_client_event_limit_exceptions', c.get('smtpd_client_event_limit_exceptions'), parent,
      (spec) => Maps.open(spec, { ...c.dictFlags, paramName: 'smtpd_client_event_limit_exceptions' }), c.file);
    return new ClientLimits(settings, opts.service, opts.anvil, exceptions);
  }

  /** Is this client exempt (smtpd_client_event_limit_exceptions)? A table error exempts nobody. */
  async exempt(addr: string, name = 'unknown'): Promise<boolean> {
    try { return await this.exceptions.match(name, addr); } catch (e) {
      log.warn(`smtpd_client_event_limit_exceptions: ${(e as Error).message}`);
      return false;
    }
  }

  /**
   * A new connection (smtpd.c smtpd_proto() before the greeting): counts it and checks
   * smtpd_client_connection_count_limit and smtpd_client_connection_rate_limit.
   */
  async admit(addr: string, name = 'unknown'): Promise<Admission> {
    if (await this.exempt(addr, name)) return { release: () => {} };
    const { count, rate } = await this.anvil.connect(this.service, addr);
    let released = false;
    const release = () => { if (!released) { released = true; this.anvil.disconnect(this.service, addr); } };
    const s = this.settings;
    const reply = `421 4.7.0 ${s.myhostname} Error: too many connections from ${addr}`;
    if (s.connectionCount > 0 && count > s.connectionCount) {
      log.warn(`Connection concurrency limit exceeded: ${count} from ${name}[${addr}] for service ${this.service}`);
      release();
      return { reply, release };
    }
    if (s.connectionRate > 0 && rate > s.connectionRate) {
      log.warn(`Connection rate limit exceeded: ${rate} from ${name}[${addr}] for service ${this.service}`);
      release();
      return { reply, release };
    }
    return { release };
  }

  /** MAIL FROM (smtpd.c mail_cmd()): smtpd_client_message_rate_limit. */
  async checkMail(st: SmtpdState): Promise<SmtpdReply | undefined> {
    return this.rate(st, 'mail', this.settings.messageRate, 'Message delivery request rate limit exceeded',
      { code: 450, enh: '4.7.1', text: `Error: too much mail from ${st.clientAddr}` });
  }

  /** RCPT TO (smtpd.c rcpt_cmd()): smtpd_client_recipient_rate_limit. */
  async checkRcpt(st: SmtpdState): Promise<SmtpdReply | undefined> {
    return this.rate(st, 'rcpt', this.settings.recipientRate, 'Recipient address rate limit exceeded',
      { code: 450, enh: '4.7.1', text: `Error: too many recipients from ${st.clientAddr}` });
  }

  /** AUTH (smtpd_sasl_proto.c): smtpd_client_auth_rate_limit, counted for every AUTH command. */
  async checkAuth(st: SmtpdState): Promise<SmtpdReply | undefined> {
    return this.rate(st, 'auth', this.settings.authRate, 'AUTH command rate limit exceeded',
      { code: 450, enh: '4.7.1', text: `Error: too many AUTH commands from ${st.clientAddr}` });
  }

  /**
   * Before a TLS handshake (STARTTLS, or wrapper mode at connect): refuse when the client's
   * new-session rate already exceeds smtpd_client_new_tls_session_rate_limit (Postfix asks
   * anvil's newtls_stat first, then counts only sessions that were not resumed).
   */
  async checkNewTls(st: Pick<SmtpdState, 'clientAddr' | 'clientName'>, wrapper: boolean): Promise<SmtpdReply | undefined> {
    const limit = this.settings.newTlsRate;
    if (limit <= 0 || await this.exempt(st.clientAddr, st.clientName)) return undefined;
    const rate = (await this.anvil.lookup(this.service, st.clientAddr))?.ntlsRate ?? 0;
    if (rate < limit) return undefined;
    log.warn(`New TLS session rate limit exceeded: ${rate} from ${st.clientName}[${st.clientAddr}] for service ${this.service}`);
    return wrapper
      ? { code: 421, enh: '4.7.0', text: `${this.settings.myhostname} Error: too many new TLS sessions from ${st.clientAddr}` }
      : { code: 454, enh: '4.7.0', text: `Error: too many new TLS sessions from ${st.clientAddr}` };
  }

  /** After a successful handshake: count it unless the session was resumed. */
  async countNewTls(st: Pick<SmtpdState, 'clientAddr' | 'clientName'>, resumed: boolean): Promise<void> {
    if (resumed || this.settings.newTlsRate <= 0 || await this.exempt(st.clientAddr, st.clientName)) return;
    await this.anvil.newtls(this.service, st.clientAddr);
  }

  /** The MAIL and RCPT rate checks in front of another policy (smtpd-check). */
  policy(inner: SmtpdPolicy): SmtpdPolicy {
    const verdict = (r: SmtpdReply | undefined): SmtpdVerdict | undefined => (r ? { reply: r } : undefined);
    const b = bindAll(inner);
    const out: SmtpdPolicy = { ...b };
    out.mail = async (s, sender) => verdict(await this.checkMail(s)) ?? b.mail?.(s, sender);
    out.rcpt = async (s, rcpt) => verdict(await this.checkRcpt(s)) ?? b.rcpt?.(s, rcpt);
    return out;
  }

  /** The AUTH rate check in front of a SASL implementation. */
  auth(inner: SmtpdAuth): SmtpdAuth {
    return {
      mechanisms: inner.mechanisms,
      authenticate: async (arg, state, exchange) => {
        const r = await this.checkAuth(state);
        if (r) return { ok: false, code: r.code, enh: r.enh, text: r.text, logReason: 'AUTH command rate limit exceeded' };
        return inner.authenticate(arg, state, exchange);
      },
    };
  }

  private async rate(st: SmtpdState, what: 'mail' | 'rcpt' | 'auth', limit: number, warning: string, reply: SmtpdReply): Promise<SmtpdReply | undefined> {
    if (limit <= 0 || await this.exempt(st.clientAddr, st.clientName)) return undefined;
    const rate = await this.anvil.event(what, this.service, st.clientAddr);
    if (rate <= limit) return undefined;
    log.warn(`${warning}: ${rate} from ${st.clientName}[${st.clientAddr}] for service ${this.service}`);
    return reply;
  }
}

/** The hooks of a policy object (class instances keep their methods on the prototype). */
function bindAll(p: SmtpdPolicy): SmtpdPolicy {
  const out: SmtpdPolicy = {};
  for (const k of ['connect', 'helo', 'mail', 'rcpt', 'data', 'endOfData', 'etrn', 'mynetworks'] as const) {
    const f = p[k] as ((...a: unknown[]) => Promise<SmtpdVerdict | undefined>) | undefined;
    if (f) (out as Record<string, unknown>)[k] = f.bind(p);
  }
  return out;
}

/** What smtpd needs of the auth penalty (anvil/auth-penalty.ts AuthPenalty, passed in by the master). */
export interface AuthPenaltyDirectory {
  /** `dir` with the penalty of `clientAddr` around each password check. */
  directory(dir: UserDirectory, clientAddr: string): UserDirectory;
}

/**
 * SMTP AUTH against `dir` with the auth penalty (auth-penalty.ts) around every password check:
 * a failure reply waits auth_failure_delay plus the address's penalty; a right password is
 * answered at once. Same replies as directoryAuth().
 */
export function penalizedAuth(dir: UserDirectory, penalty: AuthPenaltyDirectory, mechanisms?: string[]): SmtpdAuth {
  const plain = directoryAuth(dir, mechanisms);
  return {
    mechanisms: plain.mechanisms,
    authenticate: (arg, state, exchange) => directoryAuth(penalty.directory(dir, state.clientAddr), mechanisms).authenticate(arg, state, exchange),
  };
}
