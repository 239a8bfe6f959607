/** managesieve-storage - the user's script storage ManageSieve serves: lib-sieve/sieve-storage.ts (shared with the web console's vacation switch). */
export * from '../lib-sieve/sieve-storage.ts';
