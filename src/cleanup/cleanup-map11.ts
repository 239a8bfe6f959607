/**
 * cleanup-map11 - one-to-one address mapping: canonical_maps, sender_canonical_maps and
 * recipient_canonical_maps (Postfix cleanup/cleanup_map11.c, canonical(5)).
 *
 * The address is looked up (cleanup-addr.ts: search order, extension propagation, `@domain`
 * results) and replaced by the first result; a multi-valued result logs Postfix's warning and
 * uses the first address. The result is looked up again, up to 10 times (MAX_RECURSION), and the
 * rewriting stops when an address maps to itself. Which tables apply to which address kind
 * (envelope/header, sender/recipient) is decided by the caller from canonical_classes,
 * sender_canonical_classes and recipient_canonical_classes (cleanup-envelope.ts, cleanup-header-addr.ts).
 *
 * DIAGNOSTICS (Postfix's texts)
 *   warning: QID: multi-valued canonical_maps entry for ADDR
 *   warning: QID: canonical_maps map lookup problem for ADDR -- message not accepted, try again later
 *   warning: QID: unreasonable canonical_maps map nesting for ADDR -- message not accepted, try again later
 * The last two make the message "451 4.3.0 Error: queue file write error" (CLEANUP_STAT_WRITE).
 */
import type { Maps } from '../global/maps.ts';
import { logger } from '../util/msg.ts';
import { mailAddrMap } from './cleanup-addr.ts';
import { CleanupError, STAT_WRITE } from './cleanup-status.ts';
import type { CleanupTables } from './cleanup-tables.ts';

const log = logger('cleanup');
const MAX_RECURSION = 10;

export async function cleanupMap11(t: CleanupTables, queueId: string, maps: Maps, address: string, propagate: boolean): Promise<string> {
  const title = maps.paramName ?? maps.spec;
  let addr = address;
  for (let count = 0; count < MAX_RECURSION; count++) {
    let result: string[] | undefined;
    try {
      result = await mailAddrMap(t, maps, addr, propagate);
    } catch (e) {
      log.warn(`${queueId}: ${title} map lookup problem for ${addr} -- message not accepted, try again later`);
      log.warn(`${queueId}: ${(e as Error).message}`);
      throw new CleanupError(STAT_WRITE);
    }
    if (!result) return addr;
    if (result.length > 1) log.warn(`${queueId}: multi-valued ${title} entry for ${addr}`);
    const saved = addr;
    addr = result[0]!;
    if (saved.toLowerCase() === addr.toLowerCase()) return addr;
  }
  log.warn(`${queueId}: unreasonable ${title} map nesting for ${address} -- message not accepted, try again later`);
  throw new CleanupError(STAT_WRITE);
}
