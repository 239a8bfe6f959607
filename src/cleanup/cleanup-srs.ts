/**
 * cleanup-srs - the Sender Rewriting Scheme in cleanup(8) (lib-authres/srs.ts; docs/authres.md),
 * where Postfix sites call postsrsd through sender_canonical_maps and recipient_canonical_maps:
 *
 *   forward   the envelope sender of mail from outside (CleanupOpenOptions.origin unset: an SMTP
 *             client not in mynetworks and not authenticated, or local(8)'s forwarding by an
 *             alias or .forward, CleanupOpenOptions.forwarded) that is forwarded to another
 *             domain (a recipient of address class "default" that virtual alias or canonical
 *             mapping made of the client's, or any recipient of local's re-submission) becomes
 *             SRS0=...@postern_srs_domain, when the sender's own domain is not one of ours.
 *             Decided once the recipients known before the content are expanded, so the queue
 *             file carries it from the start.
 *   reverse   a recipient SRS0=/SRS1=...@postern_srs_domain whose hash and time stamp are good
 *             is replaced by the address it stands for (the bounce goes back to the original
 *             sender); the client's form stays the original recipient.
 *
 * Log lines: `QID: srs: sender <a@example.org> rewritten to <SRS0=...>` and
 * `QID: srs: recipient <SRS0=...> reversed to <a@example.org>`.
 */
import type { MainConfig } from '../global/mail-conf.ts';
import type { QueueRecipient } from '../global/queue-file.ts';
import type { ResolveClient } from '../global/resolve-client.ts';
import { srsConfig, srsForward, srsReverse, isSrsAddress, type SrsConfig } from '../lib-authres/srs.ts';
import { logger } from '../util/msg.ts';

const log = logger('cleanup');
/** At most this many recipients are resolved to find a remote one (the rest are like them). */
const SRS_RESOLVE_MAX = 100;

export class CleanupSrs {
  private readonly cfg: SrsConfig;
  private readonly queueId: string;
  private constructor(cfg: SrsConfig, queueId: string) { this.cfg = cfg; this.queueId = queueId; }

  static open(config: MainConfig | undefined, queueId: string): CleanupSrs | undefined {
    if (!config) return undefined;
    try {
      const cfg = srsConfig(config);
      return cfg ? new CleanupSrs(cfg, queueId) : undefined;
    } catch (e) {
      log.warn(`${queueId}: SRS disabled: ${(e as Error).message}`);
      return undefined;
    }
  }

  /** A recipient as the client gave it, reversed when it is a valid SRS address of ours. */
  reverse(r: QueueRecipient): QueueRecipient {
    if (!isSrsAddress(r.address)) return r;
    const at = r.address.lastIndexOf('@');
    if (at < 0 || r.address.slice(at + 1).toLowerCase() !== this.cfg.domain) return r;
    let v;
    try { v = srsReverse(r.address, this.cfg); } catch (e) { log.warn(`${this.queueId}: srs: ${(e as Error).message}`); return r; }
    if (!v || 'error' in v) {
      if (v) log.info(`${this.queueId}: srs: recipient <${r.address}> not reversed: ${v.error}`);
      return r;
    }
    log.info(`${this.queueId}: srs: recipient <${r.address}> reversed to <${v.address}>`);
    return { ...r, address: v.address, orig: r.orig ?? r.address };
  }

  /** The SRS sender for this message, or undefined to keep `sender` (see the top). */
  async forward(rewrite: ResolveClient, sender: string, recipients: readonly QueueRecipient[], forwarded: boolean): Promise<string | undefined> {
    if (sender === '' || !sender.includes('@')) return undefined;
    // Forwarded: local(8)'s re-submission, or a recipient the client addressed to one of our
    // domains that address mapping (virtual alias) sent to another domain.
    const changed = recipients.filter((r) => forwarded || (r.orig !== undefined && r.orig.toLowerCase() !== r.address.toLowerCase()));
    if (changed.length === 0) return undefined;
    const ours = (c: string) => c === 'local' || c === 'virtual' || c === 'alias';
    try {
      if (ours((await rewrite.resolve(sender)).class)) return undefined;   // a sender of our own domains
      let remote = false;
      for (const r of changed.slice(0, SRS_RESOLVE_MAX)) {
        const rr = await rewrite.resolve(r.address, sender);
        if (rr.class !== 'default' || rr.transport === 'error' || rr.transport === 'discard') continue;
        if (forwarded || ours((await rewrite.resolve(r.orig!, sender)).class)) { remote = true; break; }
      }
      if (!remote) return undefined;
    } catch (e) {
      log.warn(`${this.queueId}: srs: sender not rewritten: ${(e as Error).message}`);
      return undefined;
    }
    let srs: string;
    try { srs = srsForward(sender, this.cfg); } catch (e) { log.warn(`${this.queueId}: srs: sender not rewritten: ${(e as Error).message}`); return undefined; }
    if (srs === sender) return undefined;
    log.info(`${this.queueId}: srs: sender <${sender}> rewritten to <${srs}>`);
    return srs;
  }
}
