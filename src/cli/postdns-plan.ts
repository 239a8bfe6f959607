/** postdns-plan - the records `postern dns` prints: lib-checklist/dns-plan.ts (shared with the web console). */
export * from '../lib-checklist/dns-plan.ts';
