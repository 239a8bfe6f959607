/**
 * master-service - THE SERVICE CONTRACT between the master and every daemon it runs (Postfix's
 * master(8) + single_server/multi_server skeletons, Dovecot's lib-master master-service API).
 * Every daemon links to this (lib-master/) to run under the master; the registry of which
 * daemons exist is the master's own (master/master-services.ts).
 *
 * A service implementation is
 *
 *   { name: string; start(ctx: ServiceContext): Promise<RunningService> }
 *
 * where `name` is the master.cf command (column 8: 'smtpd', 'qmgr', 'cleanup', ...) or, for the
 * Dovecot side, 'imapd', 'pop3d', 'lmtpd' (master/master-services.ts DOVECOT_PROTOCOL_SERVICES).
 *
 * ServiceContext gives the service:
 *  - `config`: the effective MainConfig = main.cf + this master.cf entry's `-o name=value`
 *    overrides (MainConfig.withOverrides), as Postfix daemons see it;
 *  - `entry`: the MasterEntry (for Dovecot services a synthesised entry: type inet, the Dovecot
 *    service name, command = the implementation name, file = dovecot.conf);
 *  - `masterCf`: every entry of master.cf, as the master parsed it (qmgr schedules by each
 *    transport's entry, pipe(8) runs the argv= of its own): a service never reads master.cf itself;
 *  - `dovecot`: the DovecotConfig (every service gets it: smtpd needs the user directory too);
 *  - `log`: a Logger printing `postern/<service>[pid]` (or `postern/submission/smtpd` when the entry
 *    sets `-o syslog_name=postfix/submission`, as Postfix logs it);
 *  - `listeners`: the sockets THE MASTER has bound for it (inet from the master.cf service name or
 *    the Dovecot inet_listener blocks; unix under $queue_directory/private|public). The master binds
 *    so that privileged ports can be bound before privileges are dropped, and so that a listening
 *    socket survives a reload or a restart of the service. A service takes connections with
 *    `listener.accept(handler)`. It must NOT close `listener.server` nor add its own 'connection'
 *    listener: the master owns the socket and routes each connection to the current instance.
 *    Connections that arrive while no instance accepts (during a restart) are held paused briefly.
 *  - `failed(err)`: the service calls this when it cannot go on (the equivalent of a Postfix daemon
 *    exiting with status 1). The master logs it, stops the instance and starts a new one after a
 *    backoff. A rejected start() is treated the same way.
 *
 * RunningService:
 *  - `stop()`: graceful. Stop accepting (the master has already detached the listeners' routing),
 *    let sessions finish up to the service's own timeout, then resolve. Must not close the
 *    listeners' servers.
 *  - `reload?(ctx)`: optional. Apply a new context (config changed) without a restart. Without
 *    it, the master starts a new instance with the new context and then stops the old one.
 *  - `wakeup?()`: optional. Called every master.cf `wakeup` seconds (pickup 60, qmgr 300).
 *  - `pids?()`: optional. The processes serving, when not the master's (a child process).
 *
 * Most connection-oriented services need only `serveSessions(ctx, session)` from master-session.ts
 * (accept on every listener, maxproc as a session limit, graceful stop with a drain timeout).
 *
 * WHERE A SERVICE RUNS: in the master's process, a worker thread (master/master-thread.ts) or a
 * child process of its own (master/master-process.ts), by `postern_process_mode`
 * (master/master-mode.ts). The contract is the same in all three; in a thread or a child the
 * context is rebuilt there, main.cf and dovecot.conf from the configuration directory once (as
 * the master reads them), master.cf's entries as the master passes them, and connections reach
 * the child over IPC.
 */
import type { Server, Socket } from 'node:net';
import type { MainConfig } from '../global/mail-conf.ts';
import type { MasterEntry } from '../global/master-cf.ts';
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import type { Logger } from '../util/msg.ts';
import type { UserDirectory } from '../lib-auth/user-directory.ts';
import type { AnvilClient } from '../global/anvil-client.ts';

/** One bound socket handed to a service. */
export interface BoundListener {
  /** 'inet' (TCP) or 'unix' (stream socket file). */
  kind: 'inet' | 'unix';
  /** Dovecot inet_listener name ('imap', 'imaps', 'lmtp'), else the master.cf service name. */
  name: string;
  /** Implicit TLS from the first byte (Dovecot `ssl = yes`; master.cf -o smtpd_tls_wrappermode=yes is in config). */
  ssl: boolean;
  /** "127.0.0.1:2525", "[::1]:2525" or the socket path. */
  address: string;
  /** The listening server, for address() and counts only: the master owns it. */
  server: Server;
  /** Route new connections on this socket to `handler` (replaces any previous handler of this instance). */
  accept(handler: (socket: Socket) => void): void;
}

export interface ServiceContext {
  /** main.cf + this entry's -o overrides. */
  config: MainConfig;
  entry: MasterEntry;
  /** All of master.cf, as the master parsed it (default_process_limit applied). */
  masterCf: readonly MasterEntry[];
  dovecot: DovecotConfig;
  /** For Dovecot-side services: the protocol ('imap', 'pop3', 'lmtp'). */
  protocol?: string;
  log: Logger;
  listeners: BoundListener[];
  /**
   * The process-wide auth penalty (anvil/auth-penalty.ts, Dovecot's auth_penalty) for the
   * password checks of imapd and pop3d: `directory(dir, clientAddr)` checks through it. The
   * master always gives it; a daemon started without it (unit tests) uses its own delay.
   */
  authPenalty?: { directory(dir: UserDirectory, clientAddr: string): UserDirectory };
  /**
   * The system's anvil table (global/anvil-client.ts; the master's, asked over IPC from a child
   * process) for counts that must hold across processes: imapd's mail_max_userip_connections.
   * smtpd gets its own through its clients (master/master-clients.ts).
   */
  anvil?: AnvilClient;
  /** "I cannot go on": the master restarts this service after a backoff. */
  failed(err: unknown): void;
  /** Optional: the service's processes changed (one of its children replaced): `postern status` is rewritten. */
  changed?(): void;
}

export interface RunningService {
  stop(): Promise<void>;
  reload?(ctx: ServiceContext): Promise<void>;
  wakeup?(): void;
  /** Optional: the pids of the processes serving (a child process); default the master's own. */
  pids?(): number[];
}

export interface ServiceImpl {
  /** The master.cf command name ('smtpd') or Dovecot-side implementation ('imapd'). */
  name: string;
  start(ctx: ServiceContext): Promise<RunningService>;
}
