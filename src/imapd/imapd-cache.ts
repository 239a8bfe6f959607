/**
 * imapd-cache - a per-process cache of the answers that cost a message parse: ENVELOPE,
 * BODYSTRUCTURE and BODY (Dovecot keeps the same in dovecot.index.cache). Message files never
 * change content (a Maildir flag change is a rename; the base name is Dovecot's GUID), so the
 * key is the base name plus the size, within a scope that keeps mailboxes apart (cacheScope():
 * a base name is a file name whoever can write the Maildir can choose, so one mailbox's answers
 * must never serve another's messages); nothing needs invalidating. Shared by every session,
 * oldest entries out first, bounded in bytes (default 64 MiB). Losing it loses nothing.
 * `files` persists it per mailbox across restarts (imapd-cache-file.ts).
 */
import type { Mailbox, MessageInfo } from '../lib-storage/mail-storage.ts';
import { CacheFiles } from './imapd-cache-file.ts';

/** What identifies a message's content: its GUID (Maildir base name) and its size. */
export type MessageKey = Pick<MessageInfo, 'guid' | 'vsize'>;

export type CachedItem = 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY';

/** The mailbox part of the cache key: its cache file's identity (its path), else user + name. */
export function cacheScope(box: Mailbox, user: string): string {
  return box.cacheFile?.key ?? `${user}\0${box.name}`;
}

interface Entry { ENVELOPE?: Buffer; BODYSTRUCTURE?: Buffer; BODY?: Buffer; bytes: number }

function ownCopy(v: Buffer): Buffer {
  const c = Buffer.allocUnsafeSlow(v.length);
  v.copy(c);
  return c;
}

export class MessageCache {
  private readonly map = new Map<string, Entry>();
  private bytes = 0;
  private readonly maxBytes: number;
  /** The per-mailbox files (load before a FETCH, note computed answers). */
  readonly files: CacheFiles;

  constructor(maxBytes = 64 * 1024 * 1024) { this.maxBytes = maxBytes; this.files = new CacheFiles(this); }

  private key(scope: string, m: MessageKey): string { return `${scope}\0${m.guid}/${m.vsize}`; }

  /** No reordering on a hit (that costs two Map operations per message of a 10,000-message
   * FETCH): eviction is by insertion order, which for a mail cache is close enough to LRU. */
  get(scope: string, m: MessageKey, item: CachedItem): Buffer | undefined {
    return this.map.get(this.key(scope, m))?.[item];
  }

  set(scope: string, m: MessageKey, item: CachedItem, v: Buffer): void {
    // Kept in a buffer of its own: an answer built as a view on a larger buffer (a writer's
    // 64 KB chunk, Node's 8 KB pool) would keep that whole buffer alive for as long as the
    // entry lives, so the byte bound would count 300 bytes where 64 KB are held (measured:
    // 3,200 ENVELOPEs held 30 MB; docs/memory.md).
    if (v.byteOffset !== 0 || v.buffer.byteLength !== v.length) v = ownCopy(v);
    const k = this.key(scope, m);
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
