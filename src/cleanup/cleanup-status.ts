/**
 * cleanup-status - why cleanup did not accept a message, as Postfix global/cleanup_strerror.c
 * maps CLEANUP_STAT_* to an SMTP reply, and how smtpd words it (smtpd.c after end of DATA):
 *
 *   CLEANUP_STAT_WRITE  451 4.3.0 Error: queue file write error   (also: a table lookup failed)
 *   CLEANUP_STAT_DEFER  451 <reason>, e.g. "451 4.6.0 Alias expansion error"
 *   CLEANUP_STAT_CONT   550 <reason>, e.g. "550 5.7.1 Message content rejected" (header/body REJECT)
 *   CLEANUP_STAT_SIZE   552 5.3.4 Error: message file too big
 *
 * The first error wins (Postfix keeps state->reason from the first UPDATE that sets it).
 */
import type { CleanupReject } from '../global/cleanup-client.ts';

export class CleanupError extends Error {
  readonly reject: CleanupReject;
  constructor(reject: CleanupReject) {
    super(`${reject.code} ${reject.enh} ${reject.text}`);
    this.name = 'CleanupError';
    this.reject = reject;
  }
}

export const STAT_WRITE: CleanupReject = { code: 451, enh: '4.3.0', text: 'Error: queue file write error' };
export const STAT_SIZE: CleanupReject = { code: 552, enh: '5.3.4', text: 'Error: message file too big' };
export const ALIAS_EXPANSION_ERROR: CleanupReject = { code: 451, enh: '4.6.0', text: 'Alias expansion error' };
