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
 *   implementation is anvil/anvil.ts (Anvil): one table per master process, shared by every
 *   listener, which the master passes in; every call is a synchronous in-process method call.
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

export interface AnvilClient {
  /** A new connection: the concurrent count and the connection rate, this one included. */
  connect(service: string, addr: string): { count: number; rate: number };
  disconnect(service: string, addr: string): void;
  /** Count one event; returns its rate in the current window. */
  event(what: AnvilEvent, service: string, addr: string): number;
  newtls(service: string, addr: string): number;
  lookup(service: string, addr: string): AnvilStatus | undefined;
}
