/**
 * smtp - smtp(8) and lmtp(8): the SMTP and LMTP delivery agents, one code base behind two
 * master.cf commands (`smtp unix - - n - - smtp`, `relay ... smtp`, `lmtp ... lmtp`), as in
 * Postfix where smtp and lmtp are the same program.
 *
 * SUMMARY
 *   createSmtpAgent(config, { resolver }) / createLmtpAgent(config, { resolver }) → DeliveryAgent
 *   (CONTRACT 4, src/global/deliver-request.ts): deliver(req) → one RecipientResult per recipient.
 *
 * DESCRIPTION
 *   For a request (queue file + recipients for one nexthop) the agent resolves the nexthop to
 *   an ordered list of server addresses (smtp-connect.ts: MX by preference, equal preferences
 *   shuffled, A/AAAA fallback, `[host]:port` without MX, `unix:/path` and `inet:host:port` for
 *   LMTP), reuses an idle cached connection to that nexthop when there is one
 *   (smtp-session-cache.ts), else connects to each address in turn until one completes the
 *   handshake (smtp-proto.ts: greeting, EHLO/LHLO, STARTTLS, AUTH) and runs one transaction.
 *   Recipients that a server refuses with 4xx are tried at the next address while addresses and
 *   smtp_mx_session_limit sessions remain; what is left is deferred with the last reason, in
 *   Postfix's words ("connect to mx.example[192.0.2.1]:25: Connection refused"). A 5xx is
 *   final: bounced. The agent never throws and never touches the queue file: qmgr records the
 *   results and logs them with logDelivery().
 *
 * SECURITY
 *   Talks to the network as a client; runs unprivileged. Server replies are hostile input:
 *   line and reply length are bounded (smtp-conn.ts) and never crash the agent. TLS at level
 *   levels none..secure, smtp_tls_policy_maps, DANE and MTA-STS: see smtp-tls-policy.ts and
 *   docs/smtp-tls.md; a required level never falls back to plaintext. SASL
 *   passwords are never logged.
 *
 * STANDARDS
 *   RFC 5321, 2033 (LMTP), 2920, 1870, 6152, 6531, 3461, 3207, 4954, 2034, 7505 (see smtp-proto.ts).
 *
 * PARAMETERS (each also as lmtp_*, except where noted)
 *   smtp_connect_timeout, smtp_helo_timeout (lmtp_lhlo_timeout), smtp_mail_timeout,
 *   smtp_rcpt_timeout, smtp_data_init_timeout, smtp_data_xfer_timeout, smtp_data_done_timeout,
 *   smtp_rset_timeout, smtp_quit_timeout, smtp_starttls_timeout, smtp_helo_name
 *   (lmtp_lhlo_name), smtp_never_send_ehlo (smtp only), smtp_skip_5xx_greeting,
 *   smtp_skip_quit_response, smtp_discard_ehlo_keywords, smtp_tcp_port, smtp_mx_address_limit,
 *   smtp_mx_session_limit, smtp_host_lookup, smtp_bind_address, smtp_bind_address6,
 *   smtp_bind_address_enforce, smtp_tls_security_level, smtp_tls_policy_maps,
 *   smtp_tls_CAfile, smtp_tls_CApath, tls_append_default_CA, smtp_tls_verify_cert_match,
 *   smtp_tls_secure_cert_match, smtp_tls_fingerprint_digest, smtp_tls_fingerprint_cert_match,
 *   smtp_tls_protocols, smtp_tls_loglevel, smtp_dns_support_level (dnssec for DANE),
 *   postern_mta_sts, postern_mta_sts_port, postern_mta_sts_timeout, smtp_sasl_auth_enable,
 *   smtp_sasl_password_maps, smtp_sasl_mechanism_filter, smtp_sasl_security_options,
 *   smtp_sasl_tls_security_options, smtp_connection_cache_on_demand,
 *   smtp_connection_cache_destinations, smtp_connection_cache_time_limit,
 *   smtp_connection_reuse_count_limit, smtp_connection_reuse_time_limit, inet_protocols,
 *   myhostname, relayhost (only when the nexthop is empty), postern_dns_servers.
 */
import { smtpTlsRpt } from './smtp-tls-rpt.ts';
import type { MainConfig } from '../global/mail-conf.ts';
import { Maps } from '../global/maps.ts';
import { QF, ATTR } from '../global/rec-type.ts';
import type { QueueRecipient } from '../global/queue-file.ts';
import { deferOnError, type DeliverRequest, type DeliveryAgent, type RecipientResult } from '../global/deliver-request.ts';
import { logger } from '../util/msg.ts';
import { networkInterfaces } from 'node:os';
import { dnsResolverFromConfig, type DnsResolver } from '../util/dns-resolver.ts';
import { parseDestination, resolveDestination, DestinationSyntaxError, parsePort, type SmtpServerAddress } from './smtp-connect.ts';
import { SmtpConn, SmtpSessionError } from './smtp-conn.ts';
import { smtpHandshake, smtpTransaction, smtpReset, smtpQuit, SmtpSiteFail, type SmtpProtoSettings, type SmtpSession, type TlsLevel } from './smtp-proto.ts';
import { SmtpSessionCache } from './smtp-session-cache.ts';
import { agentTlsPolicy, isRefusal, type TlsDestPolicy } from './smtp-tls-policy.ts';

export interface SmtpAgentOptions {
  /** DNS client; default: postern_dns_servers from main.cf, else the system resolver. */
  resolver?: DnsResolver;
  /** LMTP instead of SMTP (the lmtp(8) personality). */
  lmtp?: boolean;
  /** master.cf service name for log lines (default "smtp" / "lmtp"). */
  name?: string;
  /** Randomness for MX shuffling (tests pass seededRandom()). */
  random?: () => number;
}

export interface SmtpAgent extends DeliveryAgent {
  readonly cache: SmtpSessionCache;
  readonly settings: SmtpProtoSettings;
  /** QUIT every cached connection. */
  close(): Promise<void>;
}

/** A failure that applies to every recipient still pending. */
interface Why { status: 'deferred' | 'bounced'; dsn: string; text: string; relay: string; diagnostic?: string }

/** The addresses of this host's interfaces (loopback aliases such as 127.0.0.2 too: all of 127/8). */
function localAddresses(): { has(a: string): boolean } {
  const set = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) set.add(i.address);
  return { has: (a) => set.has(a) || /^127\./.test(a) };
}

/**
 * XFORWARD attributes of a queued message (Postfix smtp_proto.c CAN_FORWARD_*): the original
 * client as the queue file knows it (forward_* from an earlier XFORWARD first); IDENT the queue
 * ID; SOURCE LOCAL or REMOTE from the rewrite context (local_header_rewrite_clients). What is
 * not known is left out, as is the client name "unknown".
 */
function xforwardAttrs(req: DeliverRequest): Record<string, string | undefined> {
  const q = req.qf;
  const a = (fwd: string, own: string) => q.attr(`forward_${fwd}`) ?? q.attr(own);
  const ctx = q.attr('rewrite_context');
  const out: Record<string, string | undefined> = {
    NAME: a('name', ATTR.CLIENT_NAME), ADDR: a('addr', ATTR.CLIENT_ADDR), PORT: a('port', ATTR.CLIENT_PORT),
    PROTO: a('proto', ATTR.PROTO_NAME), HELO: a('helo', ATTR.HELO_NAME), IDENT: q.attr('forward_ident') ?? q.queueId,
    SOURCE: q.attr('forward_source') ?? (ctx === 'local' ? 'LOCAL' : ctx === 'remote' ? 'REMOTE' : undefined),
  };
  if (out.NAME === 'unknown') out.NAME = undefined;
  for (const k of Object.keys(out)) if (!out[k]) delete out[k];
  return out;
}

export function createLmtpAgent(config: MainConfig, opts: Omit<SmtpAgentOptions, 'lmtp'> = {}): SmtpAgent {
  return createSmtpAgent(config, { ...opts, lmtp: true });
}

export function createSmtpAgent(config: MainConfig, opts: SmtpAgentOptions = {}): SmtpAgent {
  const lmtp = opts.lmtp ?? false;
  const name = opts.name ?? (lmtp ? 'lmtp' : 'smtp');
  const pfx = lmtp ? 'lmtp_' : 'smtp_';
  const P = (n: string) => pfx + n;
  const log = logger(name);
  const ms = (n: string) => config.time(n) * 1000;
  let resolver = opts.resolver;
  const getResolver = (): DnsResolver => (resolver ??= dnsResolverFromConfig(config));
  // smtp_address_verify_target (smtp_proto.c: "rcpt" or "data"; Postfix stops on anything else).
  const verifyTarget = config.get(P('address_verify_target')).trim().toLowerCase();
  if (verifyTarget !== 'rcpt' && verifyTarget !== 'data') log.warn(`${P('address_verify_target')} = ${verifyTarget}: specify rcpt or data; probes stop at RCPT TO`);
  const tlsRpt = smtpTlsRpt(config, lmtp);
  const tlsPolicy = agentTlsPolicy(config, lmtp, getResolver, log, tlsRpt ? (d, kind, why) => tlsRpt.policyError(d, kind, why) : undefined);
  const settings: SmtpProtoSettings = {
    lmtp,
    heloName: config.get(lmtp ? 'lmtp_lhlo_name' : 'smtp_helo_name'),
    timeouts: {
      connect: ms(P('connect_timeout')), helo: ms(lmtp ? 'lmtp_lhlo_timeout' : 'smtp_helo_timeout'),
      starttls: ms(P('starttls_timeout')), mail: ms(P('mail_timeout')), rcpt: ms(P('rcpt_timeout')),
      dataInit: ms(P('data_init_timeout')), dataXfer: ms(P('data_xfer_timeout')), dataDone: ms(P('data_done_timeout')),
      rset: ms(P('rset_timeout')), quit: ms(P('quit_timeout')), xforward: ms(P('xforward_timeout')),
    },
    sendXforward: config.bool(P('send_xforward_command')),
    neverSendEhlo: !lmtp && config.bool('smtp_never_send_ehlo'),
    skip5xxGreeting: config.bool(P('skip_5xx_greeting')),
    skipQuitResponse: config.bool(P('skip_quit_response')),
    discardEhloKeywords: new Set(config.list(P(lmtp ? 'discard_lhlo_keywords' : 'discard_ehlo_keywords')).map((k) => k.toUpperCase())),
    tlsLevel: tlsPolicy.defaultLevel ?? 'none',
    tlsLogLevel: Number.parseInt(config.get(P('tls_loglevel')), 10) || 0,
  };
  const defaultPort = parsePort(config.get(P('tcp_port')) || (lmtp ? '24' : '25'));
  const inet = config.list('inet_protocols').map((x) => x.toLowerCase());
  const ipv4 = inet.includes('all') || inet.includes('ipv4');
  const ipv6 = inet.includes('all') || inet.includes('ipv6');
  const random = opts.random ?? Math.random;
  // smtp_bind_address / smtp_bind_address6: the local address of each connection. Postfix
  // (smtp_connect.c) skips an address it cannot bind to with a warning, unless
  // smtp_bind_address_enforce = yes; Postern checks the address belongs to this host once.
  const bind4 = config.get(P('bind_address')).trim();
  const bind6 = config.get(P('bind_address6')).trim();
  const bindEnforce = config.bool(P('bind_address_enforce'));
  const usable = new Map<string, boolean>();
  const bindFor = (a: SmtpServerAddress): string | undefined => {
    if (a.unix) return undefined;
    const b = a.addr.includes(':') ? bind6 : bind4;
    if (!b) return undefined;
    let ok = usable.get(b);
    if (ok === undefined) {
      ok = localAddresses().has(b);
      usable.set(b, ok);
      if (!ok) log.warn(`${P('bind_address')}${a.addr.includes(':') ? '6' : ''}: ${b} is not an address of this host${bindEnforce ? '' : ': not binding'}`);
    }
    return ok || bindEnforce ? b : undefined;
  };
  const saslEnable = config.bool(P('sasl_auth_enable'));
  const saslMapsSpec = config.get(P('sasl_password_maps'));
  let saslMaps: Promise<Maps> | undefined;
  const cacheDests = new Set(config.list(P('connection_cache_destinations')).map((d) => d.toLowerCase()));
  const onDemand = config.bool(P('connection_cache_on_demand'));
  const quit = (s: SmtpSession) => smtpQuit(s, settings);
  const cache = new SmtpSessionCache({
    idleMs: ms(P('connection_cache_time_limit')),
    maxEntries: 32,
    reuseCountLimit: config.int(P('connection_reuse_count_limit')),
    reuseTimeMs: ms(P('connection_reuse_time_limit')),
    quit,
  });

  async function protoSettings(): Promise<SmtpProtoSettings> {
    if (!saslEnable || !saslMapsSpec.trim()) return settings;
    saslMaps ??= Maps.open(saslMapsSpec, { paramName: P('sasl_password_maps') });
    return {
      ...settings,
      sasl: {
        maps: await saslMaps,
        mechanismFilter: config.list(P('sasl_mechanism_filter')).map((m) => m.toLowerCase()),
        securityOptions: config.list(P('sasl_security_options')).map((m) => m.toLowerCase()),
        tlsSecurityOptions: config.list(P('sasl_tls_security_options')).map((m) => m.toLowerCase()),
        timeoutMs: settings.timeouts.helo,
      },
    };
  }

  function needsSmtputf8(req: DeliverRequest, content: Buffer): boolean {
    // RFC 6531 §3.2: UTF-8 in the envelope or (with SMTPUTF8 requested) in the header.
    const nonAscii = (s: string) => /[^\x00-\x7f]/.test(s);
    if (nonAscii(req.qf.sender) || req.recipients.some((r) => nonAscii(r.address))) return true;
    if (!(req.qf.flags & QF.SMTPUTF8)) return false;
    const end = content.indexOf('\n\n');
    const head = end < 0 ? content : content.subarray(0, end);
    for (const b of head) if (b >= 0x80) return true;
    return false;
  }

  async function deliver(req: DeliverRequest): Promise<RecipientResult[]> {
    const results = new Map<QueueRecipient, RecipientResult>();
    let pending = req.recipients.filter((r) => !r.done);
    let why: Why | undefined;
    const content = await req.qf.content();
    const s = await protoSettings();
    resolver = getResolver();
    const tx = {
      sender: req.qf.sender,
      content,
      smtputf8: needsSmtputf8(req, content),
      smtputf8Requested: (req.qf.flags & QF.SMTPUTF8) !== 0,
      dsnEnvid: req.qf.attr(ATTR.DSN_ENVID),
      dsnRet: req.qf.attr(ATTR.DSN_RET),
      verifyOnly: req.verify === true,
      // smtp_address_verify_target / lmtp_address_verify_target: rcpt (default) or data.
      verifyData: req.verify === true && verifyTarget === 'data',
      ...(settings.sendXforward ? { xforward: xforwardAttrs(req) } : {}),
    };
    let nexthop = req.nexthop.trim();
    if (!nexthop && !lmtp) nexthop = config.get('relayhost').trim() || (pending[0]?.address.split('@').pop() ?? '');
    const destinations = nexthop.split(/[\s,]+/).filter(Boolean);
    if (destinations.length === 0) why = { status: 'deferred', dsn: '4.3.5', text: 'delivery temporarily suspended: no destination given', relay: 'none' };
    let sessions = 0;
    const sessionLimit = config.int(P('mx_session_limit'));
    const cacheable = (d: string) => onDemand || cacheDests.has(d.toLowerCase()) || cacheDests.has(d.toLowerCase().replace(/^\[|\](:.*)?$/g, ''));

    /** Run one transaction on a session, file results, return whether it may be cached. */
    const transact = async (sess: SmtpSession, final: boolean): Promise<boolean> => {
      const { outcomes, broken } = await smtpTransaction(sess, { ...tx, recipients: pending }, s, final);
      sess.reuseCount++;
      const left: QueueRecipient[] = [];
      for (const o of outcomes) {
        const r: RecipientResult = { recipient: o.recipient, status: o.status, dsn: o.dsn, text: o.text, relay: sess.conn.namaddrport, diagnostic: o.diagnostic, remoteMta: `dns; ${sess.conn.host}` };
        if (o.retry) { left.push(o.recipient); why = { ...r, status: 'deferred' }; } else results.set(o.recipient, r);
      }
      pending = left;
      return !broken;
    };

    try {
      for (let di = 0; di < destinations.length && pending.length > 0; di++) {
        const destText = destinations[di]!;
        const lastDest = di === destinations.length - 1;
        if (req.signal?.aborted) break;
        // A cached idle session to this nexthop first (smtp_connect.c: "try the cache").
        const key = `${destText.toLowerCase()}`;
        const cached = cache.take(key);
        if (cached) {
          // Never final: a connection that went stale while idle must not defer the mail when a
          // fresh connection would deliver it.
          const ok = await transact(cached, false);
          if (ok && cache.mayCache(cached) && await smtpReset(cached, s)) cache.put(key, cached);
          else if (ok) await quit(cached);
          else cached.conn.close();   // broken (or a DATA-stage probe): no QUIT
          if (pending.length === 0) break;
        }
        let addrs: SmtpServerAddress[];
        let destTls: TlsDestPolicy;
        try {
          const dest = parseDestination(destText, { lmtp, defaultPort });
          // TLS policy first: a bad policy entry defers before any connection (smtp_tls_policy.c).
          const dp = await tlsPolicy.forDestination(destText, !destText.trim().startsWith('[') && !lmtp);
          if (isRefusal(dp)) { why = { status: 'deferred', dsn: dp.dsn, text: dp.refuse, relay: 'none' }; continue; }
          destTls = dp;
          const r = await resolveDestination(dest, { resolver, mxAddressLimit: config.int(P('mx_address_limit')), ipv4, ipv6, myhostname: config.get('myhostname'), native: config.list(P('host_lookup')).includes('native') && !config.list(P('host_lookup')).includes('dns'), random });
          if (!Array.isArray(r)) {
            why = { ...r, relay: 'none' };
            if (r.status === 'bounced' && lastDest) break;
            continue;
          }
          addrs = r;
        } catch (e) {
          if (!(e instanceof DestinationSyntaxError)) throw e;
          // Postfix: a bad nexthop is a configuration error — defer, never bounce.
          why = { status: 'deferred', dsn: '4.3.5', text: `bad ${lmtp ? 'LMTP' : 'SMTP'} destination "${destText}": ${e.message}`, relay: 'none' };
          log.warn(`${req.qf.queueId}: ${why.text}`);
          continue;
        }
        for (let ai = 0; ai < addrs.length && pending.length > 0; ai++) {
          if (req.signal?.aborted) break;
          const a = addrs[ai]!;
          const hp = await tlsPolicy.forHost(destTls, a.host, a.addr, a.port);
          if (isRefusal(hp)) {
            // TLS-RPT: an MX host outside the MTA-STS policy (RFC 8461 §4.1) is a failed session.
            if (destTls.mtaSts) tlsRpt?.forSession(destText, { ...destTls, ca: [], fingerprintDigest: 'sha256' }, a, () => undefined)?.(false, 'validation-failure', hp.refuse);
            log.info(`${req.qf.queueId}: ${a.host}[${a.addr}]:${a.port}: ${hp.refuse}`);
            why = { status: 'deferred', dsn: hp.dsn, text: hp.refuse, relay: 'none' };
            continue;
          }
          let conn: SmtpConn;
          try {
            conn = await SmtpConn.open(a, settings.timeouts.connect, bindFor(a));
          } catch (e) {
            if (!(e instanceof SmtpSessionError)) throw e;
            log.info(e.message); // smtp_connect.c logs each failed attempt, without queue ID
            why = { status: 'deferred', dsn: '4.4.1', text: e.message, relay: 'none' };
            continue;
          }
          let sess: SmtpSession;
          try {
            const tlsReport = tlsRpt?.forSession(destText, hp, a, () => conn.localAddress);
            sess = await smtpHandshake(conn, { ...s, tlsLevel: hp.level, tlsPolicy: hp, ...(tlsReport ? { tlsReport } : {}) }, destText, log);
          } catch (e) {
            conn.close();
            if (e instanceof SmtpSiteFail) {
              why = { status: e.status === 'bounced' ? 'bounced' : 'deferred', dsn: e.dsn, text: e.message, relay: conn.namaddrport, diagnostic: e.diagnostic };
              if (e.status === 'bounced') { ai = addrs.length; di = destinations.length; }
              continue;
            }
            if (e instanceof SmtpSessionError) { why = { status: 'deferred', dsn: '4.4.2', text: e.message, relay: conn.namaddrport }; continue; }
            throw e;
          }
          cache.opening(sess);
          sessions++;
          const final = (lastDest && ai === addrs.length - 1) || (sessionLimit > 0 && sessions >= sessionLimit);
          const ok = await transact(sess, final);
          if (ok && cacheable(destText) && cache.mayCache(sess) && await smtpReset(sess, s)) cache.put(key, sess);
          else if (ok) await quit(sess);
          else conn.close();
          if (final) { di = destinations.length; break; }
        }
      }
    } catch (e) {
      // Anything unexpected (a lookup table error, a bug): defer what is not finished.
      const rest = deferOnError({ ...req, recipients: pending }, e);
      for (const r of rest) results.set(r.recipient, r);
      pending = [];
    }
    const w: Why = why ?? { status: 'deferred', dsn: '4.3.0', text: req.signal?.aborted ? 'delivery aborted' : 'delivery temporarily suspended: no server was tried', relay: 'none' };
    for (const r of pending) results.set(r, { recipient: r, status: w.status, dsn: w.dsn, text: w.text, relay: w.relay, diagnostic: w.diagnostic });
    return req.recipients.filter((r) => results.has(r)).map((r) => results.get(r)!);
  }

  return {
    name,
    cache,
    settings,
    async deliver(req) {
      try {
        return await deliver(req);
      } catch (e) {
        return deferOnError(req, e);
      }
    },
    async close() { await cache.closeAll(); },
  };
}
