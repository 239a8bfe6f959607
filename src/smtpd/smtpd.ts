/**
 * smtpd - smtpd(8), the SMTP server: one per `inet ... smtpd` line of master.cf (smtp,
 * submission, smtps with -o overrides).
 *
 * SUMMARY
 *   createSmtpd(config, { ...clients, queue, policy, service }) → { handle(socket) } for the
 *   master's listener; clients (SmtpdClients) are the cleanup, anvil and postscreen services,
 *   known through their global/ contracts and passed in by master/ or cli/.
 *
 * DESCRIPTION
 *   Accepts mail over ESMTP (RFC 5321) with PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
 *   ENHANCEDSTATUSCODES, DSN, CHUNKING and AUTH, applies the access policy at Postfix's stages,
 *   and hands each message to cleanup, answering 250 only once the queue file is durable.
 *
 * SECURITY
 *   Talks to SMTP clients on the network: every line is hostile. Limits: line_length_limit,
 *   message_size_limit, smtpd_recipient_limit, smtpd_timeout, smtpd_hard_error_limit,
 *   smtpd_junk_command_limit; per client across all listeners of the process (anvil,
 *   src/smtpd/smtpd-anvil.ts): smtpd_client_connection_count_limit,
 *   smtpd_client_connection_rate_limit, smtpd_client_message_rate_limit,
 *   smtpd_client_recipient_rate_limit, smtpd_client_auth_rate_limit,
 *   smtpd_client_new_tls_session_rate_limit. Before the banner, postscreen's PREGREET and DNSBL
 *   tests when postscreen_greet_action / postscreen_dnsbl_action ask for them
 *   (global/postscreen-client.ts; src/postscreen/postscreen.ts).
 *
 * STANDARDS
 *   RFC 5321, 1870 (SIZE), 2920 (PIPELINING), 3030 (CHUNKING), 3461 (DSN), 3463, 2034
 *   (ENHANCEDSTATUSCODES), 4954 (AUTH), 6152 (8BITMIME), 6531 (SMTPUTF8), 3848 (Received WITH).
 *
 * DIAGNOSTICS
 *   connect/disconnect lines, `QID: client=...`, `NOQUEUE: reject: RCPT from ...` as Postfix.
 */
import { trigger } from '../global/mail-trigger.ts';
import { triggerQmgr } from '../global/queue-admin.ts';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { MainConfig } from '../global/mail-conf.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { cleanupSettings, type CleanupClient, type CleanupOpenOptions } from '../global/cleanup-client.ts';
import { milterConfig, type MilterConfig } from '../lib-milter/milter-config.ts';
import type { AnvilClient } from '../global/anvil-client.ts';
import type { PostscreenOpener } from '../global/postscreen-client.ts';
import { logger } from '../util/msg.ts';
import { smtpdSettings } from './smtpd-settings.ts';
import { SmtpdSession } from './smtpd-session.ts';
import { enforcePolicy, type SmtpdPolicy } from './smtpd-policy.ts';
import type { SmtpdAuth } from './smtpd-sasl.ts';
import { postfixCipherList, startServerTls } from '../lib-tls/tls-server.ts';
import { fileTlsProvider, type TlsContextProvider } from '../lib-tls/tls-provider.ts';
import { postfixSniMaps } from '../lib-tls/tls-sni-maps.ts';
import { ClientLimits } from './smtpd-anvil.ts';
import type { DnsResolver } from '../util/dns-resolver.ts';
import type { ResolveClient } from '../global/resolve-client.ts';
import { NamadrList } from '../global/namadr-list.ts';
import { Maps } from '../global/maps.ts';
import { closeAfterLinger, type Admission } from '../lib-master/master-session.ts';
import { parseProxyOptions, type SmtpdProxySettings } from './smtpd-proxy.ts';

const log = logger('smtpd');

export interface SmtpdOptions {
  queue: MailQueue;
  policy: SmtpdPolicy;
  auth?: SmtpdAuth;
  /** master.cf service name of this listener (smtp, submission, ...). */
  service: string;
  /** Tell qmgr about a new queue file. */
  notify?: (queueId: string) => void;
  /** Per-client limits; default ClientLimits.open(config) on `anvil`. */
  limits?: ClientLimits;
  /** DNS for postscreen_dnsbl_sites; default postern_dns_servers (else the system resolver). */
  dns?: DnsResolver;
  /** trivial-rewrite, for the milter macros {mail_host} {mail_mailer} {rcpt_host} {rcpt_mailer}. */
  resolve?: ResolveClient;
}

/**
 * The services smtpd is a client of (their contracts are in global/), passed in by whoever
 * assembles it: the master (master/), sendmail -bs (cli/), a test.
 */
export interface SmtpdClients {
  /** cleanup(8): where each message goes (global/cleanup-client.ts). */
  cleanup: CleanupClient;
  /** anvil(8): the per-client counts of smtpd_client_*_limit (global/anvil-client.ts). */
  anvil: AnvilClient;
  /** postscreen(8) before the banner (global/postscreen-client.ts); none when absent. */
  postscreen?: PostscreenOpener;
}

/** What the session skeleton (lib-master/master-session.ts serveSessions) tells a session. */
export interface SmtpdSlot {
  /** The connection was already counted and admitted by admit() (serveSessions' admit). */
  admitted?: boolean;
  /** Postfix's `stress=yes` for this session: ${stress?...} defaults take their stress value. */
  stress?: boolean;
  /** The session is over (221, 421): free its slot; the skeleton closes the socket after a linger. */
  end?: () => void;
}

export interface Smtpd {
  /**
   * smtpd.c smtpd_proto() before the greeting: anvil's smtpd_client_connection_count_limit and
   * _rate_limit for a new connection, BEFORE it takes a session slot. A refused client gets
   * `reply` (421 with CRLF); an admitted one's count is given back by `release()`.
   */
  admit(sock: Socket, stress?: boolean): Promise<Admission>;
  /** Run a session on `sock` (counted by admit() first unless `slot.admitted`). */
  handle(sock: Socket, slot?: SmtpdSlot): void;
  /** Live sessions (for graceful stop). */
  readonly sessions: ReadonlySet<Socket>;
}

/** local_header_rewrite_clients = permit_inet_interfaces: the machine's own addresses. */
function ownAddresses(): Set<string> {
  const s = new Set<string>(['127.0.0.1', '::1']);
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) s.add(i.address);
  return s;
}

/**
 * smtpd_tls_security_level (or the older smtpd_use_tls/smtpd_enforce_tls), and the secure
 * context when TLS is on. Throws TlsConfigError naming the parameter when the files are bad.
 */
export function smtpdTls(c: MainConfig): { level: 'none' | 'may' | 'encrypt'; wrapper: boolean; context?: TlsContextProvider; handshakeMs: number } {
  let level = c.get('smtpd_tls_security_level').trim().toLowerCase();
  if (!level) level = c.bool('smtpd_enforce_tls') ? 'encrypt' : c.bool('smtpd_use_tls') ? 'may' : 'none';
  const wrapper = c.bool('smtpd_tls_wrappermode');
  const lv = level === 'encrypt' ? 'encrypt' : level === 'may' ? 'may' : 'none';
  // smtpd_starttls_timeout: the time limit of the TLS handshake (a stalled ClientHello).
  const handshakeMs = (c.time('smtpd_starttls_timeout') || 300) * 1000;
  if (lv === 'none' && !wrapper) return { level: lv, wrapper, handshakeMs };
  // Reloadable: `postern reload` re-reads the files; tls_server_sni_maps by SNI (lib-tls).
  const base = {
    protocols: lv === 'encrypt' ? c.get('smtpd_tls_mandatory_protocols') : c.get('smtpd_tls_protocols'),
    ciphers: lv === 'encrypt'
      ? postfixCipherList(c.get('smtpd_tls_mandatory_ciphers'), 'smtpd_tls_mandatory_ciphers', (n) => c.get(n), [...c.list('smtpd_tls_exclude_ciphers'), ...c.list('smtpd_tls_mandatory_exclude_ciphers')])
      : postfixCipherList(c.get('smtpd_tls_ciphers'), 'smtpd_tls_ciphers', (n) => c.get(n), c.list('smtpd_tls_exclude_ciphers')),
  };
  const context = fileTlsProvider({
    certFile: c.get('smtpd_tls_cert_file'),
    keyFile: c.get('smtpd_tls_key_file'),
    chainFiles: c.list('smtpd_tls_chain_files'),
    // The CAs of client certificates (smtpd_tls_ask_ccert): asked for and checked with these.
    caFile: c.get('smtpd_tls_CAfile').trim() || undefined,
    caPath: c.get('smtpd_tls_CApath').trim() || undefined,
    ...base,
  }, 'smtpd_tls', log, postfixSniMaps(c.get('tls_server_sni_maps'), c.configDir, base));
  return { level: lv, wrapper, context, handshakeMs };
}

export function createSmtpd(config: MainConfig, opts: SmtpdOptions & SmtpdClients): Smtpd {
  const settings = smtpdSettings(config);
  // Postfix's master passes `-o stress=yes` to the smtpd processes it starts while the service's
  // process slots run out: smtpd_timeout, smtpd_hard_error_limit, smtpd_junk_command_limit and
  // smtpd_starttls_timeout default to ${stress?{...}:{...}}. Both sets are expanded once; each
  // session takes the one its slot says (lib-master/master-session.ts).
  const stressConfig = config.withOverrides({ stress: 'yes' });
  const stressSettings = smtpdSettings(stressConfig);
  const stressHandshakeMs = (stressConfig.time('smtpd_starttls_timeout') || 300) * 1000;
  const tls = smtpdTls(config);
  // smtpd_tls_ask_ccert (and smtpd_tls_req_ccert): ask TLS clients for a certificate, for
  // check_ccert_access, permit_tls_clientcerts, permit_tls_all_clientcerts.
  const askCcert = config.bool('smtpd_tls_ask_ccert') || config.bool('smtpd_tls_req_ccert');
  const cs = cleanupSettings(config, opts.notify);
  // content_filter (main.cf or this service's -o): recorded in each queue file (FILTER_README).
  const contentFilter = config.get('content_filter').trim();
  // smtpd_milters (smtpd-milter.ts), unless receive_override_options has no_milters.
  const noMilters = config.list('receive_override_options').some((o) => o.toLowerCase() === 'no_milters');
  const milters = noMilters ? undefined : milterConfig(config, 'smtpd_milters');
  const miltersFor = smtpdMilterMaps(config, noMilters, milters);
  // smtpd_proxy_filter (SMTPD_PROXY_README): a before-queue filter instead of cleanup.
  const proxy = smtpdProxySettings(config);
  const own = ownAddresses();
  // ClientLimits.open() is async (smtpd_client_event_limit_exceptions may name tables); a bad
  // value refuses every connection loudly rather than running without limits.
  const limitsReady = opts.limits ? Promise.resolve(opts.limits) : ClientLimits.open(config, { service: opts.service, anvil: opts.anvil });
  limitsReady.catch(() => {});
  const screen = opts.postscreen?.(config, { dns: opts.dns });
  const hostList = (param: string) => {
    const v = config.get(param);
    return v.trim() ? NamadrList.create(param, v, config.list('parent_domain_matches_subdomains').includes(param), (spec) => Maps.open(spec, config.dictFlags)) : Promise.resolve(undefined);
  };
  // ETRN (smtpd-etrn.ts): fast_flush_domains decides; qmgr retries the deferred queue.
  const flushDomains = hostList('fast_flush_domains');
  flushDomains.catch((e: Error) => log.warn(`fast_flush_domains: ${e.message}`));
  const flushSite = async (domain: string): Promise<'ok' | 'deny' | 'fail'> => {
    const l = await flushDomains;
    if (!l || !(await l.match(domain, ''))) return 'deny';
    // The in-process qmgr, else the trigger file a qmgr in another process watches.
    if (!trigger('qmgr', 'F')) await triggerQmgr(opts.queue, 'F');
    return 'ok';
  };
  const xclient = hostList('smtpd_authorized_xclient_hosts');
  const xforward = hostList('smtpd_authorized_xforward_hosts');
  xclient.catch((e: Error) => log.warn(`smtpd_authorized_xclient_hosts: ${e.message}`));
  xforward.catch((e: Error) => log.warn(`smtpd_authorized_xforward_hosts: ${e.message}`));
  const sessions = new Set<Socket>();
  const clientAddr = (sock: Socket) => (sock.remoteAddress ?? '').replace(/^::ffff:(?=\d)/, '');
  // The limits under stress (a main.cf may say smtpd_client_connection_count_limit =
  // ${stress?{5}:{50}}), opened when first needed; the counts are the same anvil table's.
  let stressLimits: Promise<ClientLimits> | undefined;
  const limitsFor = (stress: boolean | undefined): Promise<ClientLimits> => {
    if (!stress || opts.limits) return limitsReady;
    stressLimits ??= ClientLimits.open(stressConfig, { service: opts.service, anvil: opts.anvil });
    return stressLimits;
  };
  async function admit(sock: Socket, stress?: boolean): Promise<Admission> {
    const addr = clientAddr(sock);
    const limits = await limitsFor(stress);
    const a = await limits.admit(addr);
    return a.reply ? { reply: `${a.reply}\r\n` } : { release: a.release };
  }
  return {
    sessions,
    admit,
    handle(sock: Socket, slot: SmtpdSlot = {}) {
      const addr = clientAddr(sock);
      sessions.add(sock);
      sock.setNoDelay(true);
      sock.on('error', () => {}); // until the session has its own handler (refused, postscreen)
      sock.once('close', () => { sessions.delete(sock); });
      run().catch((e: Error) => {
        log.error(`connection from ${addr}: ${e.message}`);
        sock.destroy();
      });

      async function run(): Promise<void> {
        const limits = await limitsReady;
        if (!slot.admitted) {
          // Without the skeleton (tests, sendmail -bs): count the connection here.
          const a = await admit(sock);
          if (a.reply) { sock.end(a.reply); closeAfterLinger(sock); return; }
          if (sock.destroyed) { a.release?.(); return; } // gone while we were counting
          sock.once('close', () => a.release?.());
        }
        let policy = limits.policy(opts.policy);
        // postscreen(8) screens port 25 before the banner; never an implicit-TLS port.
        if (screen && !tls.wrapper) {
          const v = await screen.screen(sock);
          if (!v.pass) return;
          if (v.enforce) policy = enforcePolicy(policy, v.enforce);
        }
        startSession(limits, policy, await miltersFor(addr));
      }

      function startSession(limits: ClientLimits, policy: SmtpdPolicy, milters: MilterConfig | undefined): void {
        const deps = {
          settings: slot.stress ? stressSettings : settings,
          onEnd: slot.end,
          policy,
          auth: opts.auth && limits.auth(opts.auth),
          limits,
          service: opts.service,
          openCleanup: (o: CleanupOpenOptions) => opts.cleanup.open(cs, opts.queue, contentFilter ? { ...o, filter: contentFilter } : o),
          milters,
          resolve: opts.resolve,
          proxy,
          isLocalClient: (a: string) => own.has(a),
          flushSite,
          xclientAllowed: (n: string, a: string) => xclient.then((l) => l?.match(n, a) ?? false, () => false),
          xforwardAllowed: (n: string, a: string) => xforward.then((l) => l?.match(n, a) ?? false, () => false),
          tls: tls.context && !tls.wrapper && tls.level !== 'none' ? { context: tls.context, level: tls.level as 'may' | 'encrypt', handshakeMs: slot.stress ? stressHandshakeMs : tls.handshakeMs, askCcert } : undefined,
        };
        if (tls.wrapper && tls.context) {
          const ctx = tls.context;
          // smtpd_tls_wrappermode (port 465, RFC 8314 implicit TLS): TLS from the first byte,
          // after smtpd_client_new_tls_session_rate_limit (Postfix refuses in plaintext too).
          void limits.checkNewTls({ clientAddr: addr, clientName: 'unknown' }, true).then((r) => {
            if (r) { sock.end(`${r.code} ${r.enh} ${r.text}\r\n`); slot.end?.(); closeAfterLinger(sock); return; }
            startServerTls(sock, ctx, slot.stress ? stressHandshakeMs : tls.handshakeMs, { requestCert: askCcert }).then((t) => {
              void limits.countNewTls({ clientAddr: addr, clientName: 'unknown' }, t.isSessionReused());
              const s = new SmtpdSession(t, deps);
              s.markTls(t);
              void s.start();
            }, (e: Error) => {
              log.warn(`SSL_accept error from unknown[${addr}]: ${e.message}`);
              sock.destroy();
            });
          });
          return;
        }
        void new SmtpdSession(sock, deps).start();
        sock.resume(); // postscreen leaves the socket paused, with early bytes pushed back
      }
    },
  };
}

/** smtpd_proxy_filter and its smtpd_proxy_* parameters; undefined without a filter. */
function smtpdProxySettings(c: MainConfig): SmtpdProxySettings | undefined {
  const filter = c.get('smtpd_proxy_filter').trim();
  if (!filter) return undefined;
  return {
    filter,
    timeoutMs: Math.max(1, c.time('smtpd_proxy_timeout') || 100) * 1000,
    ehlo: c.get('smtpd_proxy_ehlo').trim() || c.get('myhostname'),
    speedAdjust: parseProxyOptions(c.list('smtpd_proxy_options')).speedAdjust,
    lineLimit: Math.max(512, c.int('line_length_limit') || 2048),
    baseDir: c.get('queue_directory'),
  };
}

/**
 * smtpd_milter_maps (Postfix 3.2): milters per client address. A table value is a milter list
 * like smtpd_milters, or DISABLE; no match: smtpd_milters. A lookup error keeps smtpd_milters
 * (logged). Each distinct value is parsed once.
 */
function smtpdMilterMaps(config: MainConfig, noMilters: boolean, dflt: MilterConfig | undefined): (addr: string) => Promise<MilterConfig | undefined> {
  const spec = config.get('smtpd_milter_maps').trim();
  if (noMilters || !spec) return async () => dflt;
  const maps = Maps.open(spec, { paramName: 'smtpd_milter_maps', ...config.dictFlags });
  maps.catch((e: Error) => log.warn(`smtpd_milter_maps: ${e.message}`));
  const parsed = new Map<string, MilterConfig | undefined>();
  return async (addr) => {
    let v: string | undefined;
    try {
      v = await (await maps).find(addr);
    } catch (e) {
      log.warn(`smtpd_milter_maps: lookup of ${addr}: ${(e as Error).message}; using smtpd_milters`);
      return dflt;
    }
    if (v === undefined) return dflt;
    if (!parsed.has(v)) parsed.set(v, milterConfig(config, 'smtpd_milter_maps', v));
    return parsed.get(v);
  };
}
