/**
 * cleanup-map1n - one-to-many address mapping: virtual_alias_maps expansion (Postfix
 * cleanup/cleanup_map1n.c, virtual(5)).
 *
 * The address list starts as [address]; each entry is looked up and replaced in place by its
 * first result, the other results are appended, and the lookup repeats on the replaced entry
 * until it is not found. An address that appears in its own expansion is kept and not expanded
 * again ("Allow an address to expand into itself once"), so `a → a, b` delivers to a and b.
 * A loop through other addresses (a → b, b → a) is not detected as such: it runs into
 * virtual_alias_recursion_limit, exactly as in Postfix.
 *
 * Limits, each deferring the whole message with "451 4.6.0 Alias expansion error"
 * (CLEANUP_STAT_DEFER) after Postfix's warning:
 *   virtual_alias_expansion_limit   more addresses than this from one recipient:
 *     warning: QID: unreasonable virtual_alias_maps map expansion size for ADDR -- message not accepted, try again later
 *   virtual_alias_recursion_limit   nesting deeper than this:
 *     warning: QID: unreasonable virtual_alias_maps map nesting for ADDR -- message not accepted, try again later
 *   virtual_alias_address_length_limit  a result address longer than this:
 *     warning: QID: unreasonable virtual_alias_maps result ADDR... -- message not accepted, try again later
 * A table error: warning: QID: virtual_alias_maps map lookup problem for ADDR -- message not
 * accepted, try again later, and 451 4.3.0 (CLEANUP_STAT_WRITE).
 */
import type { Maps } from '../global/maps.ts';
import { logger } from '../util/msg.ts';
import { mailAddrMap } from './cleanup-addr.ts';
import { ALIAS_EXPANSION_ERROR, CleanupError, STAT_WRITE } from './cleanup-status.ts';
import type { CleanupTables } from './cleanup-tables.ts';

const log = logger('cleanup');

export async function cleanupMap1n(t: CleanupTables, queueId: string, maps: Maps, address: string, propagate: boolean): Promise<string[]> {
  const title = maps.paramName ?? maps.spec;
  const argv = [address];
  const beenHere = new Set<string>();
  const fail = (what: string, reject = ALIAS_EXPANSION_ERROR): never => {
    log.warn(`${queueId}: ${what} -- message not accepted, try again later`);
    throw new CleanupError(reject);
  };
  for (let arg = 0; arg < argv.length; arg++) {
    if (argv.length > t.virtualAliasExpansionLimit) fail(`unreasonable ${title} map expansion size for ${address}`);
    for (let count = 0; ; count++) {
      // Don't expand an address that already expanded into itself.
      if (beenHere.has(argv[arg]!.toLowerCase())) break;
      if (count >= t.virtualAliasRecursionLimit) fail(`unreasonable ${title} map nesting for ${address}`);
      let lookup: string[] | undefined;
      try {
        lookup = await mailAddrMap(t, maps, argv[arg]!, propagate);
      } catch (e) {
        log.warn(`${queueId}: ${(e as Error).message}`);
        fail(`${title} map lookup problem for ${address}`, STAT_WRITE);
      }
      if (!lookup) break;
      const savedLhs = argv[arg]!;
      for (let i = 0; i < lookup.length; i++) {
        const r = lookup[i]!;
        if (r.length > t.virtualAliasAddressLengthLimit) fail(`unreasonable ${title} result ${r.slice(0, 300)}...`);
        if (i === 0) argv[arg] = r; else argv.push(r);
        // Allow an address to expand into itself once.
        if (savedLhs.toLowerCase() === r.toLowerCase()) beenHere.add(savedLhs.toLowerCase());
      }
    }
  }
  return argv;
}
