/**
 * imapd-cache - a per-process cache of the answers that cost a message parse: ENVELOPE,
 * BODYSTRUCTURE and BODY (Dovecot keeps the same in dovecot.index.cache). Message files never
 * change content (a Maildir flag change is a rename; the base name is Dovecot's GUID), so the
 * key is the base name plus the size; nothing needs invalidating. Shared by every session,
 * oldest entries out first, bounded in bytes (default 64 MiB). Losing it loses nothing.
 */
import type { MessageInfo } from '../lib-storage/mail-storage.ts';

export type CachedItem = 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY';

interface Entry { ENVELOPE?: Buffer; BODYSTRUCTURE?: Buffer; BODY?: Buffer; bytes: number }

export class MessageCache {
  private readonly map = new Map<string, Entry>();
  private bytes = 0;
  private readonly maxBytes: number;

  constructor(maxBytes = 64 * 1024 * 1024) { this.maxBytes = maxBytes; }

  private key(m: MessageInfo): string { return `${m.guid}/${m.vsize}`; }

  /** No reordering on a hit (that costs two Map operations per message of a 10,000-message
   * FETCH): eviction is by insertion order, which for a mail cache is close enough to LRU. */
  get(m: MessageInfo, item: CachedItem): Buffer | undefined {
    return this.map.get(this.key(m))?.[item];
  }

  set(m: MessageInfo, item: CachedItem, v: Buffer): void {
    const k = this.key(m);
    let e = this.map.get(k);
    if (!e) { e = { bytes: k.length + 64 }; this.bytes += e.bytes; }
    else this.map.delete(k);
    const old = e[item];
    if (old) { this.bytes -= old.length; e.bytes -= old.length; }
    e[item] = v;
    e.bytes += v.length;
    this.bytes += v.length;
    this.map.set(k, e);
    while (this.bytes > this.maxBytes && this.map.size > 0) {
      const [ok, oe] = this.map.entries().next().value!;
      this.map.delete(ok);
      this.bytes -= oe.bytes;
    }
  }

  get size(): number { return this.map.size; }
}
