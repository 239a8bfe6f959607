/**
 * anvil-client - the contract between anvil(8), the per-client connection and rate counter, and
 * the servers that enforce limits with it (smtpd's smtpd_client_*_limit): Postfix
 * global/anvil_clnt.c.
 *
 * SUMMARY
 *   const { count, rate } = anvil.connect('smtp', '192.0.2.1');   // at accept
 *   anvil.event('mail' | 'rcpt' | 'auth' | 'newtls', 'smtp', addr) → the rate after this event
 *   anvil.lookup('smtp', addr)?.ntlsRate                           // without counting
 *   anvil.disconnect('smtp', '192.0.2.1');                         // at close
 *
 * DESCRIPTION
 *   Entries are per (service, client address), as Postfix's anvil keeps them. The
 *   implementation is anvil/anvil.ts (Anvil): one table in the master process, shared by every
 *   listener. A service running in the master's process calls it directly (every answer is
 *   there at once); one running in a child process of its own (postern_process_mode=process,
 *   postern_process_count=N) gets a client that asks the master's table over the child's IPC
 *   channel (master/master-anvil.ts), as every Postfix smtpd asks the one anvil(8) server, so
 *   a limit holds however a client's connections are spread over the processes. A caller
 *   therefore awaits each answer (it may be a Promise).
 */

export type AnvilEvent = 'mail' | 'rcpt' | 'newtls' | 'auth';

/** What anvil(8) reports for one (service, client): anvil_clnt_lookup(). */
export interface AnvilStatus {
  count: number;
  connRate: number;
  mailRate: number;
  rcptRate: number;
  ntlsRate: number;
  authRate: number;
}

/** An answer at once (in-process table) or later (the master's table, asked over IPC). */
export type Awaitable<T> = T | Promise<T>;

export interface AnvilClient {
  /** A new connection: the concurrent count and the connection rate, this one included. */
  connect(service: string, addr: string): Awaitable<{ count: number; rate: number }>;
  /** The connection has ended (once per connect(); a remote client sends it without waiting). */
  disconnect(service: string, addr: string): void;
  /** Count one event; returns its rate in the current window. */
  event(what: AnvilEvent, service: string, addr: string): Awaitable<number>;
  newtls(service: string, addr: string): Awaitable<number>;
  lookup(service: string, addr: string): Awaitable<AnvilStatus | undefined>;
}
