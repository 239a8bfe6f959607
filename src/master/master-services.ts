/**
 * master-services - THE REGISTRY of the daemons Postern has: which implementation the master
 * starts for a master.cf command or a Dovecot protocol (Postfix's master.cf column 8, Dovecot's
 * `protocols`). The master assembles: this is the one place that imports the daemons; each of
 * them implements the service contract of lib-master/master-service.ts and knows no other.
 *
 * SERVICES is the literal registry (no self-registration, STYLE §9): a table of lazy imports.
 * Postfix's helper servers (tlsmgr verify flush proxymap showq anvil scache postlogd) are entries
 * that start nothing: Postern does their work inside the services that need it (builtInService).
 * master.cf entries whose command is not in SERVICES are not started: the master logs ONE warning
 * listing those Postern will never implement and ONE info line listing those not written yet
 * (master-plan.ts).
 *
 * To add a daemon, add one line:
 *   imapd: async () => (await import('../imapd/imapd.ts')).service,
 * and, if it can run in a thread or a process of its own, its module in SERVICE_MODULES
 * (master-mode.ts). A daemon that is a client of other services (smtpd, pickup, qmqpd use
 * cleanup) exports a factory instead, and a master-<name>.ts module here gives it its clients
 * (master-clients.ts).
 */
import type { ServiceImpl } from '../lib-master/master-service.ts';

export type ServiceRegistry = Record<string, () => Promise<ServiceImpl>>;

/**
 * For master.cf entries whose work runs inside another service's process (cleanup and
 * trivial-rewrite inside smtpd/pickup/qmgr; bounce/defer/trace and the delivery agents inside
 * qmgr): a service with nothing to start, so the master neither warns that it is missing nor
 * runs a second copy. The socket the master binds for it is unused.
 */
export function inProcessService(name: string): ServiceImpl {
  return {
    name,
    async start(ctx) {
      ctx.log.debug(`${ctx.entry.service}: runs inside the qmgr process`);
      return { async stop() {} };
    },
  };
}

const inProcess = (name: string) => async () => inProcessService(name);

/**
 * For master.cf entries of Postfix's helper servers whose work Postern does inside the services
 * that need it (a stock master.cf names them all): nothing to start, no warning. `where` says
 * where the work is done, in the debug log.
 */
export function builtInService(name: string, where: string): ServiceImpl {
  return {
    name,
    async start(ctx) {
      ctx.log.debug(`${ctx.entry.service}: ${where}`);
      return { async stop() {} };
    },
  };
}

const builtIn = (name: string, where: string) => async () => builtInService(name, where);

export const SERVICES: ServiceRegistry = {
  smtpd: async () => (await import('./master-smtpd.ts')).service,
  // qmgr's default placement is a worker thread (master-mode.ts DEFAULT_MODES): reception and
  // delivery on both cores. This entry is the code itself, for postern_process_mode=inline:
  // qmgr with the delivery agents of master-agents.ts.
  qmgr: async () => (await import('./master-agents.ts')).service,
  pickup: async () => (await import('./master-pickup.ts')).service,
  qmqpd: async () => (await import('./master-qmqpd.ts')).service,
  imapd: async () => (await import('../imapd/imapd.ts')).service,
  pop3d: async () => (await import('../pop3d/pop3d.ts')).service,
  lmtpd: async () => (await import('./master-lmtpd.ts')).service,
  // spawn(8): a command per connection to private/NAME (policy servers such as policyd-spf).
  spawn: async () => (await import('../spawn/spawn.ts')).service,
  managesieve: async () => (await import('../managesieve/managesieve.ts')).service,
  // Dovecot's quota-status policy service, planned when dovecot.conf declares
  // `service quota-status { executable = quota-status -p postfix; inet_listener { port } }`.
  'quota-status': async () => (await import('../quota-status/quota-status.ts')).service,
  // Postern's HTTP(S) service: planned from main.cf postern_http_listen/postern_https_listen
  // (master-plan.ts), not from master.cf. Its routes: HTTP_ROUTES in master-httpd.ts.
  httpd: async () => (await import('./master-httpd.ts')).service,
  // The ACME client's renewal loop, planned when main.cf sets postern_acme_directory.
  acme: async () => (await import('../acme/acme.ts')).service,
  // The daily TLS-RPT (RFC 8460) report sender, planned when postern_tlsrpt_reporting = yes.
  tlsrpt: async () => (await import('./master-tlsrpt.ts')).service,
  // The daily DMARC aggregate report (RFC 7489 §7.2) sender, planned when postern_dmarc_reporting = yes.
  dmarcrep: async () => (await import('./master-dmarcrep.ts')).service,
  // Work that runs inside other services' processes: cleanup and trivial-rewrite are libraries
  // of smtpd/pickup/qmgr; bounce/defer/trace and the delivery agents run inside qmgr.
  cleanup: inProcess('cleanup'),
  'trivial-rewrite': inProcess('trivial-rewrite'),
  bounce: inProcess('bounce'),
  discard: inProcess('discard'),
  error: inProcess('error'),
  smtp: inProcess('smtp'),
  lmtp: inProcess('lmtp'),
  virtual: inProcess('virtual'),
  local: inProcess('local'),
  pipe: inProcess('pipe'),
  // Postfix's helper servers, mapped onto what Postern runs (docs/master-cf.md "Services").
  tlsmgr: builtIn('tlsmgr', 'TLS session caches and randomness are kept by each TLS server and client (lib-tls)'),
  verify: builtIn('verify', 'address verification: smtpd reads and qmgr writes the address_verify_map cache (global/verify-client.ts)'),
  flush: builtIn('flush', 'fast flush: ETRN (fast_flush_domains) and postern queue flush ask qmgr to retry deferred mail'),
  proxymap: builtIn('proxymap', 'proxy: tables are opened by each service directly (util/dict-proxy.ts)'),
  showq: builtIn('showq', 'postern queue list reads the queue directory itself'),
  anvil: builtIn('anvil', 'connection and rate counts are kept in one table shared by every smtpd (anvil/anvil.ts)'),
  scache: builtIn('scache', 'the smtp client keeps its own connection cache (smtp/smtp-session-cache.ts)'),
  postlogd: builtIn('postlogd', 'the master writes maillog_file itself'),
};

/**
 * Dovecot `protocols` → the Postern implementation. `submission` (Dovecot's submission proxy)
 * has none: Postern's submission is the master.cf smtpd entry on port 587.
 */
export const DOVECOT_PROTOCOL_SERVICES: Readonly<Record<string, string>> = {
  imap: 'imapd',
  pop3: 'pop3d',
  lmtp: 'lmtpd',
  sieve: 'managesieve',
};

/**
 * The name of a protocol's services in dovecot.conf when it is not the protocol's own:
 * Pigeonhole's `sieve` protocol is served by `service managesieve-login` / `managesieve`.
 */
export const DOVECOT_SERVICE_NAMES: Readonly<Record<string, string>> = {
  sieve: 'managesieve',
};

/**
 * Dovecot's built-in listeners (dovecot 2.3 master-settings defaults), used when dovecot.conf
 * enables a protocol but declares no `service X-login { inet_listener ... }` for it.
 * LMTP has no inet listener by default (only the unix socket `lmtp` under base_dir).
 */
export const DOVECOT_DEFAULT_INET: Readonly<Record<string, { name: string; port: number; ssl: boolean }[]>> = {
  imap: [{ name: 'imap', port: 143, ssl: false }, { name: 'imaps', port: 993, ssl: true }],
  pop3: [{ name: 'pop3', port: 110, ssl: false }, { name: 'pop3s', port: 995, ssl: true }],
  lmtp: [],
  sieve: [{ name: 'sieve', port: 4190, ssl: false }],
};
