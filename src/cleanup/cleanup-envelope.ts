/**
 * cleanup-envelope - the envelope addresses of one message, as Postfix cleanup/cleanup_addr.c
 * and cleanup_out_recipient.c process them:
 *
 *   sender      sender_canonical_maps, then canonical_maps (when their *_classes name
 *               envelope_sender), then masquerading (masquerade_classes); the null sender is
 *               never rewritten. sender_bcc_maps is looked up with the result.
 *   recipient   recipient_canonical_maps, then canonical_maps (envelope_recipient), then
 *               masquerading (envelope_recipient), then virtual_alias_maps expansion
 *               (cleanup-map1n.ts) and the duplicate filter; recipient_bcc_maps is looked up
 *               with the address before virtual alias expansion.
 *   BCC         always_bcc (once, when the message has a recipient), sender_bcc_maps and
 *               recipient_bcc_maps results go through the recipient mapping too, with DSN
 *               NOTIFY=NEVER (Postfix cleanup_addr_bcc: no DSN for a blind copy).
 *
 * Duplicate filter: a recipient is written once per (DSN ORCPT, DSN NOTIFY, original
 * recipient, address), case-insensitively — Postfix's been_here(state->dups, "%s\n%d\n%s\n%s").
 *
 * The original recipient (ORCP record) of an expanded address is the address the client gave.
 * With receive_override_options = no_address_mappings (or no tables) only the duplicate filter
 * runs.
 */
import type { QueueRecipient } from '../global/queue-file.ts';
import { DSN_NOTIFY } from '../global/rec-type.ts';
import { logger } from '../util/msg.ts';
import { cleanupMap11 } from './cleanup-map11.ts';
import { cleanupMap1n } from './cleanup-map1n.ts';
import { masquerade } from './cleanup-masq.ts';
import { CleanupError, STAT_WRITE } from './cleanup-status.ts';
import type { CleanupTables } from './cleanup-tables.ts';

const log = logger('cleanup');

export class CleanupEnvelope {
  private readonly t: CleanupTables | undefined;
  private readonly queueId: string;
  private readonly bccOk: boolean;
  private readonly dups = new Set<string>();
  /** The recipients to write, in order. */
  readonly out: QueueRecipient[] = [];
  /** The first recipient after canonical mapping (Postfix state->recip), for log lines. */
  firstRecipient: string | undefined;

  /** `tables` undefined = no address mapping (no_address_mappings, or a caller without config). */
  constructor(tables: CleanupTables | undefined, queueId: string, bccOk = true) {
    this.t = tables;
    this.queueId = queueId;
    this.bccOk = bccOk;
  }

  /** cleanup_addr_sender(): the rewritten sender; sender_bcc_maps recipients are queued. */
  async sender(sender: string): Promise<string> {
    const t = this.t;
    if (!t || sender === '') return sender;
    let a = sender;
    if (t.senderCanonicalMaps && t.senderCanonicalClasses.envelopeSender) a = await cleanupMap11(t, this.queueId, t.senderCanonicalMaps, a, t.propagateCanonical);
    if (t.canonicalMaps && t.canonicalClasses.envelopeSender) a = await cleanupMap11(t, this.queueId, t.canonicalMaps, a, t.propagateCanonical);
    if (t.masqueradeClasses.envelopeSender) a = masquerade(a, t.masqueradeDomains, t.masqueradeExceptions);
    if (this.bccOk && t.senderBccMaps) {
      const bcc = await this.bccLookup(t.senderBccMaps, a);
      if (bcc) this.pendingBcc.push(bcc);
    }
    return a;
  }
  private readonly pendingBcc: string[] = [];

  /** cleanup_addr_recipient(): map, expand and filter one recipient as the client gave it. */
  async recipient(r: QueueRecipient): Promise<void> {
    const t = this.t;
    let a = r.address;
    if (t && a !== '') {
      if (t.recipientCanonicalMaps && t.recipientCanonicalClasses.envelopeRecipient) a = await cleanupMap11(t, this.queueId, t.recipientCanonicalMaps, a, t.propagateCanonical);
      if (t.canonicalMaps && t.canonicalClasses.envelopeRecipient) a = await cleanupMap11(t, this.queueId, t.canonicalMaps, a, t.propagateCanonical);
      if (t.masqueradeClasses.envelopeRecipient) a = masquerade(a, t.masqueradeDomains, t.masqueradeExceptions);
    }
    await this.outRecipient(r.orcpt, r.notify ?? 0, r.orig ?? r.address, a);
    this.firstRecipient ??= a;
    if (t && this.bccOk && a !== '' && t.recipientBccMaps) {
      const bcc = await this.bccLookup(t.recipientBccMaps, a);
      if (bcc) await this.bcc(bcc);
    }
  }

  /** After the last recipient: sender_bcc_maps results, then always_bcc (cleanup_extracted_finish). */
  async finish(): Promise<void> {
    for (const b of this.pendingBcc.splice(0)) await this.bcc(b);
    if (this.t && this.bccOk && this.firstRecipient !== undefined && this.t.alwaysBcc) await this.bcc(this.t.alwaysBcc);
  }

  /** cleanup_addr_bcc(): a BCC recipient (also the BCC action of header/body checks), mapped like a recipient, NOTIFY=NEVER. */
  async bcc(address: string): Promise<void> {
    const t = this.t;
    if (!t) return this.outRecipient(undefined, DSN_NOTIFY.NEVER, address, address);
    let a = t.rewrite.rewrite(address);
    if (t.recipientCanonicalMaps && t.recipientCanonicalClasses.envelopeRecipient) a = await cleanupMap11(t, this.queueId, t.recipientCanonicalMaps, a, t.propagateCanonical);
    if (t.canonicalMaps && t.canonicalClasses.envelopeRecipient) a = await cleanupMap11(t, this.queueId, t.canonicalMaps, a, t.propagateCanonical);
    if (t.masqueradeClasses.envelopeRecipient) a = masquerade(a, t.masqueradeDomains, t.masqueradeExceptions);
    await this.outRecipient(undefined, DSN_NOTIFY.NEVER, a, a);
  }

  /** *_bcc_maps lookup (mail_addr_find with IGNORE_EXTENSION: the value is used as is). */
  private async bccLookup(maps: NonNullable<CleanupTables['senderBccMaps']>, address: string): Promise<string | undefined> {
    try {
      return (await this.t!.find(maps, address))?.value.trim() || undefined;
    } catch (e) {
      log.warn(`${this.queueId}: ${maps.paramName ?? maps.spec} map lookup problem -- message not accepted, try again later`);
      log.warn(`${this.queueId}: ${(e as Error).message}`);
      throw new CleanupError(STAT_WRITE);
    }
  }

  /** cleanup_out_recipient(): virtual alias expansion and the duplicate filter. */
  private async outRecipient(orcpt: string | undefined, notify: number, orig: string, address: string): Promise<void> {
    const t = this.t;
    const list = t?.virtualAliasMaps && address !== ''
      ? await cleanupMap1n(t, this.queueId, t.virtualAliasMaps, address, t.propagateVirtual)
      : [address];
    for (const a of list) {
      const key = `${orcpt ?? ''}\n${notify}\n${orig}\n${a}`.toLowerCase();
      if (this.dups.has(key)) continue;
      this.dups.add(key);
      const r: QueueRecipient = { address: a, orig };
      if (notify) r.notify = notify;
      if (orcpt) r.orcpt = orcpt;
      this.out.push(r);
    }
  }
}
