/**
 * imapd-cache-file - persistence of imapd-cache.ts per mailbox, so that after a restart the
 * first `UID FETCH 1:* (ENVELOPE)` of a large mailbox does not parse every message again
 * (Dovecot keeps the same in dovecot.index.cache; issue #5). The bytes live in the mailbox's
 * MailboxCacheFile (mail-storage.ts; Maildir: `postern-cache` next to postern-index); this
 * module owns their format. It is a CACHE: deleting the file, or any damage to it, loses
 * nothing but the parse work.
 *
 * FORMAT (binary, big-endian):
 *   "postern-cache 1\n"                         magic and version (16 bytes)
 *   records: kind u8 (1 ENVELOPE, 2 BODYSTRUCTURE, 3 BODY), guid length u8, vsize u48,
 *            value length u32, guid (printable ASCII), value (the answer after "ENVELOPE ")
 *   trailer: 0 u8, record count u32, CRC-32 (zlib) of every byte before the trailer u32
 * A record is trusted by guid + vsize, as the in-memory cache: a Maildir message file never
 * changes content (a flag change is a rename; the base name is Dovecot's GUID).
 *
 * WHEN: loaded lazily, the first time a FETCH of a mailbox asks for ENVELOPE, BODYSTRUCTURE or
 * BODY (once per mailbox per process). Only the entries of messages in the loading session's
 * view go into the shared MessageCache (a file never answers for another mailbox's messages);
 * a hit stays one Map lookup. Written when answers were computed (parsed) for the mailbox: at
 * most every WRITE_DELAY_MS after the first new answer, and at process exit (synchronously).
 * A write holds the entries of the messages in the view of the latest session that computed
 * one (so expunged messages' entries drop out), as far as the in-memory cache still has them,
 * up to FILE_MAX bytes (the rest is not persisted). An unreadable, truncated, garbage,
 * oversized or other-version file is ignored with a warning and replaced by the next write.
 * Cost for 10,000 messages (~11 MB): about 15-25 ms to format or to parse, on this VM.
 */
import { crc32 } from 'node:zlib';
import type { Mailbox, MailboxCacheFile } from '../lib-storage/mail-storage.ts';
import type { CachedItem, MessageCache, MessageKey } from './imapd-cache.ts';
import { logger } from '../util/msg.ts';
import { flushLazyWriters, LazyWriter } from '../util/lazy-writer.ts';

const MAGIC = Buffer.from('postern-cache 1\n', 'latin1');
const KINDS: readonly CachedItem[] = ['ENVELOPE', 'BODYSTRUCTURE', 'BODY'];
const REC_HDR = 1 + 1 + 6 + 4;
const TRAILER = 1 + 4 + 4;
/** Per mailbox: about 10,000 messages of ENVELOPE + BODYSTRUCTURE at ~1.5 KiB each. */
export const FILE_MAX = 32 * 1024 * 1024;
/** Debounce of writes (a crash loses at most this much parse work). */
export const WRITE_DELAY_MS = 3000;
const VSIZE_MAX = 2 ** 48 - 1;
const GUID = /^[\x21-\x7e]+$/;

const log = logger('imap');

interface Entry { guid: string; vsize: number; item: CachedItem; value: Buffer }

/** Serialise (stops before FILE_MAX): one pass to size, one allocation, one copy per value. */
export function formatCacheFile(msgs: readonly MessageKey[], get: (m: MessageKey, item: CachedItem) => Buffer | undefined): Buffer {
  const recs: Array<{ m: MessageKey; kind: number; v: Buffer }> = [];
  let bytes = MAGIC.length + TRAILER;
  outer: for (const m of msgs) {
    if (m.guid.length > 255 || m.vsize > VSIZE_MAX || !GUID.test(m.guid)) continue;
    for (let k = 0; k < KINDS.length; k++) {
      const v = get(m, KINDS[k]!);
      if (!v) continue;
      const n = REC_HDR + m.guid.length + v.length;
      if (bytes + n > FILE_MAX) break outer;
      recs.push({ m, kind: k + 1, v });
      bytes += n;
    }
  }
  const b = Buffer.allocUnsafe(bytes);
  MAGIC.copy(b, 0);
  let p = MAGIC.length;
  for (const { m, kind, v } of recs) {
    b[p] = kind; b[p + 1] = m.guid.length; b.writeUIntBE(m.vsize, p + 2, 6); b.writeUInt32BE(v.length, p + 8);
    p += REC_HDR;
    p += b.write(m.guid, p, 'latin1');
    p += v.copy(b, p);
  }
  b[p] = 0;
  b.writeUInt32BE(recs.length, p + 1);
  b.writeUInt32BE(crc32(b.subarray(0, p)), p + 5);
  return b;
}

/** Parse; a string says why the file is unusable. Bounds-checked on every field. */
export function parseCacheFile(b: Buffer): Entry[] | string {
  if (b.length < MAGIC.length + TRAILER) return 'truncated';
  if (!b.subarray(0, MAGIC.length).equals(MAGIC)) {
    return b.subarray(0, 14).toString('latin1') === 'postern-cache ' ? 'unsupported version' : 'not a postern-cache file';
  }
  const end = b.length - TRAILER;
  if (b[end] !== 0 || b.readUInt32BE(end + 5) !== crc32(b.subarray(0, end))) return 'truncated or damaged (checksum)';
  const out: Entry[] = [];
  let p = MAGIC.length;
  while (p < end) {
    if (p + REC_HDR > end) return `record at ${p}: truncated`;
    const kind = b[p]!, gl = b[p + 1]!, vsize = b.readUIntBE(p + 2, 6), vl = b.readUInt32BE(p + 8);
    if (kind < 1 || kind > KINDS.length || gl === 0) return `record at ${p}: bad header`;
    const g = p + REC_HDR, v = g + gl;
    if (v + vl > end) return `record at ${p}: truncated`;
    const guid = b.toString('latin1', g, v);
    if (!GUID.test(guid)) return `record at ${p}: bad guid`;
    out.push({ guid, vsize, item: KINDS[kind - 1]!, value: Buffer.from(b.subarray(v, v + vl)) });
    p = v + vl;
  }
  if (out.length !== b.readUInt32BE(end + 1)) return 'record count mismatch';
  return out;
}

/** One mailbox's file as this process sees it. */
interface FileState {
  file: MailboxCacheFile;
  loading: Promise<void> | undefined;
  loaded: boolean;
  /** The latest handle that loaded or computed: its view decides what is written. */
  box: Mailbox | undefined;
  writer: LazyWriter;
}

/** Write every pending file now (process stop; also tests). */
export const flushCacheFiles = flushLazyWriters;

export class CacheFiles {
  private readonly cache: MessageCache;
  private readonly states = new Map<string, FileState>();

  constructor(cache: MessageCache) { this.cache = cache; }

  private state(box: Mailbox): FileState | undefined {
    const file = box.cacheFile;
    if (!file) return undefined;
    let st = this.states.get(file.key);
    if (!st) {
      const s: FileState = {
        file, loading: undefined, loaded: false, box: undefined,
        writer: new LazyWriter({
          delayMs: WRITE_DELAY_MS,
          write: async () => { const data = this.text(s); if (data) await s.file.write(data); },
          writeSync: () => { const data = this.text(s); if (data) s.file.writeSync(data); },
        }),
      };
      this.states.set(file.key, s);
      st = s;
    }
    return st;
  }

  /**
   * Make sure the mailbox's file went into the cache. Returns undefined when that is done
   * already (the common case: no await on the FETCH path), else a promise (never rejects).
   */
  load(box: Mailbox): Promise<void> | undefined {
    const st = this.state(box);
    if (!st || st.loaded) return undefined;
    st.loading ??= this.read(st, box).finally(() => { st.loaded = true; st.loading = undefined; });
    return st.loading;
  }

  private async read(st: FileState, box: Mailbox): Promise<void> {
    const b = await st.file.read(FILE_MAX + MAGIC.length + TRAILER);
    if (!b) return;
    const r = parseCacheFile(b);
    if (typeof r === 'string') { log.warn(`${st.file.key}: ${r}; ignored (it is a cache: answers are recomputed, it will be rewritten)`); return; }
    // Only entries of messages in this mailbox's view enter the process-wide cache: a file is
    // as trustworthy as its mailbox, so it must not answer for anyone else's messages.
    const present = new Set<string>();
    for (const m of box.messages()) present.add(`${m.guid}/${m.vsize}`);
    for (const e of r) {
      if (present.has(`${e.guid}/${e.vsize}`) && !this.cache.get(st.file.key, e, e.item)) this.cache.set(st.file.key, e, e.item, e.value);
    }
  }

  /** An answer was computed (parsed) for a message of `box`: write the file later. */
  computed(box: Mailbox): void {
    const st = this.state(box);
    if (!st) return;
    st.box = box;
    st.writer.mark();
  }

  private text(st: FileState): Buffer | undefined {
    const box = st.box;
    st.box = undefined;   // do not keep a closed session's view alive
    if (!box) return undefined;
    return formatCacheFile(box.messages(), (m, item) => this.cache.get(st.file.key, m, item));
  }
}
