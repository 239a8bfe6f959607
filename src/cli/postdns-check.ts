/** postdns-check - the DNS checks of `postern dns --check`: lib-checklist/dns-check.ts (shared with the web console). */
export * from '../lib-checklist/dns-check.ts';
