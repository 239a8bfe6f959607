/**
 * smtpd - smtpd(8), the SMTP server: one per `inet ... smtpd` line of master.cf (smtp,
 * submission, smtps with -o overrides).
 *
 * SUMMARY
 *   createSmtpd(config, deps) → { handle(socket) } for the master's listener.
 *
 * DESCRIPTION
 *   Accepts mail over ESMTP (RFC 5321) with PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
 *   ENHANCEDSTATUSCODES, DSN, CHUNKING and AUTH, applies the access policy at Postfix's stages,
 *   and hands each message to cleanup, answering 250 only once the queue file is durable.
 *
 * SECURITY
 *   Talks to SMTP clients on the network: every line is hostile. Limits: line_length_limit,
 *   message_size_limit, smtpd_recipient_limit, smtpd_timeout, smtpd_hard_error_limit,
 *   smtpd_junk_command_limit, smtpd_client_connection_count_limit.
 *
 * STANDARDS
 *   RFC 5321, 1870 (SIZE), 2920 (PIPELINING), 3030 (CHUNKING), 3461 (DSN), 3463, 2034
 *   (ENHANCEDSTATUSCODES), 4954 (AUTH), 6152 (8BITMIME), 6531 (SMTPUTF8), 3848 (Received WITH).
 *
 * DIAGNOSTICS
 *   connect/disconnect lines, `QID: client=...`, `NOQUEUE: reject: RCPT from ...` as Postfix.
 */
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { MainConfig } from '../global/mail-conf.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { CleanupSession, type CleanupSettings } from '../cleanup/cleanup.ts';
import { logger } from '../util/msg.ts';
import { smtpdSettings } from './smtpd-settings.ts';
import { SmtpdSession } from './smtpd-session.ts';
import type { SmtpdPolicy } from './smtpd-policy.ts';
import type { SmtpdAuth } from './smtpd-sasl.ts';
import { serverContext, startServerTls } from '../lib-tls/tls-server.ts';
import type { SecureContext } from 'node:tls';
import { NamadrList } from './smtpd-check-addr.ts';
import { Maps } from '../global/maps.ts';

const log = logger('smtpd');

export interface SmtpdOptions {
  queue: MailQueue;
  policy: SmtpdPolicy;
  auth?: SmtpdAuth;
  /** master.cf service name of this listener (smtp, submission, ...). */
  service: string;
  /** Tell qmgr about a new queue file. */
  notify?: (queueId: string) => void;
}

export interface Smtpd {
  handle(sock: Socket): void;
  /** Live sessions (for graceful stop). */
  readonly sessions: ReadonlySet<Socket>;
}

export function cleanupSettings(c: MainConfig, notify?: (qid: string) => void): CleanupSettings {
  return {
    myhostname: c.get('myhostname'),
    myorigin: c.get('myorigin'),
    headerSizeLimit: c.int('header_size_limit') || 102400,
    messageSizeLimit: c.int('message_size_limit'),
    alwaysAddMissingHeaders: c.bool('always_add_missing_headers'),
    notify,
    config: c,
  };
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
export function smtpdTls(c: MainConfig): { level: 'none' | 'may' | 'encrypt'; wrapper: boolean; context?: SecureContext } {
  let level = c.get('smtpd_tls_security_level').trim().toLowerCase();
  if (!level) level = c.bool('smtpd_enforce_tls') ? 'encrypt' : c.bool('smtpd_use_tls') ? 'may' : 'none';
  const wrapper = c.bool('smtpd_tls_wrappermode');
  const lv = level === 'encrypt' ? 'encrypt' : level === 'may' ? 'may' : 'none';
  if (lv === 'none' && !wrapper) return { level: lv, wrapper };
  const context = serverContext({
    certFile: c.get('smtpd_tls_cert_file'),
    keyFile: c.get('smtpd_tls_key_file'),
    chainFiles: c.list('smtpd_tls_chain_files'),
    protocols: lv === 'encrypt' ? c.get('smtpd_tls_mandatory_protocols') : c.get('smtpd_tls_protocols'),
  });
  return { level: lv, wrapper, context };
}

export function createSmtpd(config: MainConfig, opts: SmtpdOptions): Smtpd {
  const settings = smtpdSettings(config);
  const tls = smtpdTls(config);
  const cs = cleanupSettings(config, opts.notify);
  const own = ownAddresses();
  const maxConn = config.int('smtpd_client_connection_count_limit');
  const perClient = new Map<string, number>();
  const hostList = (param: string) => {
    const v = config.get(param);
    return v.trim() ? NamadrList.create(param, v, config.list('parent_domain_matches_subdomains').includes(param), (spec) => Maps.open(spec, { configDir: config.configDir })) : Promise.resolve(undefined);
  };
  const xclient = hostList('smtpd_authorized_xclient_hosts');
  const xforward = hostList('smtpd_authorized_xforward_hosts');
  xclient.catch((e: Error) => log.warn(`smtpd_authorized_xclient_hosts: ${e.message}`));
  xforward.catch((e: Error) => log.warn(`smtpd_authorized_xforward_hosts: ${e.message}`));
  const sessions = new Set<Socket>();
  return {
    sessions,
    handle(sock: Socket) {
      const addr = (sock.remoteAddress ?? '').replace(/^::ffff:(?=\d)/, '');
      const n = (perClient.get(addr) ?? 0) + 1;
      if (maxConn > 0 && n > maxConn) {
        // Postfix anvil: "421 4.7.0 host Error: too many connections from addr"
        log.warn(`Connection concurrency limit exceeded: ${n} from unknown[${addr}] for service ${opts.service}`);
        sock.end(`421 4.7.0 ${settings.myhostname} Error: too many connections from ${addr}\r\n`);
        return;
      }
      perClient.set(addr, n);
      sessions.add(sock);
      sock.setNoDelay(true);
      sock.once('close', () => {
        sessions.delete(sock);
        const left = (perClient.get(addr) ?? 1) - 1;
        if (left <= 0) perClient.delete(addr); else perClient.set(addr, left);
      });
      const deps = {
        settings,
        policy: opts.policy,
        auth: opts.auth,
        service: opts.service,
        openCleanup: (o: Parameters<typeof CleanupSession.open>[2]) => CleanupSession.open(cs, opts.queue, o),
        isLocalClient: (a: string) => own.has(a),
        xclientAllowed: (n: string, a: string) => xclient.then((l) => l?.match(n, a) ?? false, () => false),
        xforwardAllowed: (n: string, a: string) => xforward.then((l) => l?.match(n, a) ?? false, () => false),
        tls: tls.context && !tls.wrapper && tls.level !== 'none' ? { context: tls.context, level: tls.level as 'may' | 'encrypt' } : undefined,
      };
      if (tls.wrapper && tls.context) {
        // smtpd_tls_wrappermode (port 465, RFC 8314 implicit TLS): TLS from the first byte.
        startServerTls(sock, tls.context, settings.timeoutMs).then((t) => {
          const s = new SmtpdSession(t, deps);
          s.markTls(t);
          void s.start();
        }, (e: Error) => {
          log.warn(`SSL_accept error from unknown[${addr}]: ${e.message}`);
          sock.destroy();
        });
        return;
      }
      void new SmtpdSession(sock, deps).start();
    },
  };
}
