/**
 * fts-index - Postern's persistent full-text index of one mailbox: `postern-fts` in the
 * mailbox's control directory, beside dovecot-uidlist, postern-index and postern-cache (the
 * store gives the path: lib-storage/maildir). Dovecot ignores the file (a plain file whose name
 * starts with `postern-`; its own fts plugins use `fts-*`/`dovecot.fts*` names). docs/fts.md.
 *
 * WHAT IT HOLDS. One trigram signature per message UID (fts-signature.ts), from which SEARCH
 * BODY/TEXT learns which messages CANNOT match; the others are checked exactly as without an
 * index, so results never differ from the plain scan. In memory the signatures are bit-sliced
 * (fts-slices.ts): update() answers "which messages may contain x" with a few word-wide ANDs
 * per trigram over all messages at once.
 *
 * FILE FORMAT (little-endian). Header, 16 bytes: `PSTNFTS1`, u32 UIDVALIDITY, u32 CRC-32 of the
 * first 12 bytes. Then records, appended: u32 n, n bytes of payload (u32 uid, signature bytes:
 * empty or a power of two >= 8), u32 CRC-32 of the payload. A later record for a UID replaces an
 * earlier one.
 *
 * CRASH SAFETY. The file is only ever (a) replaced whole, written to a unique temp name then
 * renamed (a new file, a compaction, `postern index rebuild`), or (b) appended one whole batch
 * of records per write(2) with O_APPEND. A reader stops at the first record whose length or CRC
 * is wrong: a torn tail at the end of the file may be an append in progress and is left alone;
 * damage followed by more data is repaired by rewriting the valid records. Whatever is missing
 * is indexed again before the next search (catch-up), so a lost append costs time, never a
 * result; a damaged, foreign (other UIDVALIDITY) or garbage file is rebuilt the same way.
 *
 * UPDATES. update() before a search: follows what others appended (delivery through
 * MailUser.deliver, COPY, other processes), indexes the UIDs of the view it lacks in batches of
 * BATCH (read, signature, append: memory bounded by the batch, not the mailbox), and drops
 * expunged UIDs (ignored until more than half the records are dead, then compacted). Only the
 * view's UIDs above those the last search saw indexed are checked (new mail has higher UIDs),
 * so an unchanged mailbox costs a stat of the file, not a look-up per message. noteSaved()
 * and noteCopied() add one message at delivery/APPEND and COPY when the file already exists.
 *
 * MEMORY. Loaded signatures (about the file's size) are shared by every session of the process (one object per path);
 * past MEMORY_MAX bytes in all, the least recently used mailboxes are unloaded (read again when
 * next searched).
 */
import { closeSync, fstatSync, lchownSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeSync, writeFileSync, constants as fsConstants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { messageSignature, type FtsQuery } from './fts-signature.ts';
import { FtsSlices } from './fts-slices.ts';
import { logger } from '../util/msg.ts';

export const FTS_INDEX_NAME = 'postern-fts';
const MAGIC = Buffer.from('PSTNFTS1', 'latin1');
const HEADER = 16;
const BATCH = 1000;
/** Largest message indexed at delivery (bigger ones wait for the next search's catch-up). */
const SAVE_INDEX_MAX = 1024 * 1024;
const MAX_SIG = 8192;
let MEMORY_MAX = 512 * 1024 * 1024;

/** Reads messages for the catch-up (Mailbox.readMany). */
export type ReadMany = (uids: readonly number[], each: (i: number, content: Buffer) => void) => Promise<void>;
/** The UIDs of a view, ascending: numbers, or the view's messages themselves. */
export type UidList = readonly number[] | readonly { readonly uid: number }[];

function uidAt(list: UidList, i: number): number {
  const x = list[i]!;
  return typeof x === 'number' ? x : x.uid;
}

export interface FtsLog { warn(m: string): void }
let log: FtsLog = logger('lib-fts');
export function setFtsLog(l: FtsLog): void { log = l; }
/** Tests: a smaller process-wide memory limit. */
export function setFtsMemoryMax(bytes: number): void { MEMORY_MAX = bytes; }

function header(uidValidity: number): Buffer {
  const h = Buffer.alloc(HEADER);
  MAGIC.copy(h, 0);
  h.writeUInt32LE(uidValidity >>> 0, 8);
  h.writeUInt32LE(crc32(h.subarray(0, 12)), 12);
  return h;
}

function record(uid: number, sig: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(12 + sig.length);
  b.writeUInt32LE(4 + sig.length, 0);
  b.writeUInt32LE(uid, 4);
  b.set(sig, 8);
  b.writeUInt32LE(crc32(b.subarray(4, 8 + sig.length)), 8 + sig.length);
  return b;
}

function validSigLength(n: number): boolean {
  return n === 0 || (n >= 8 && n <= MAX_SIG && (n & (n - 1)) === 0);
}

/** Records from `off`: how far they are valid, and whether what stopped it is damage (not EOF). */
function parseRecords(b: Buffer, off: number, into: { set(uid: number, sig: Uint8Array): unknown }): { end: number; damaged: boolean; count: number } {
  let count = 0;
  while (off < b.length) {
    if (off + 4 > b.length) return { end: off, damaged: false, count };
    const n = b.readUInt32LE(off);
    if (n < 4 || !validSigLength(n - 4)) return { end: off, damaged: true, count };
    if (off + 8 + n > b.length) return { end: off, damaged: false, count };
    const payload = b.subarray(off + 4, off + 4 + n);
    if (crc32(payload) !== b.readUInt32LE(off + 4 + n)) return { end: off, damaged: true, count };
    const uid = payload.readUInt32LE(0);
    if (uid === 0) return { end: off, damaged: true, count };
    into.set(uid, payload.subarray(4));
    off += 8 + n;
    count++;
  }
  return { end: off, damaged: false, count };
}

/** Records collected in file order, then added to the slices at once (FtsSlices.setMany). */
class Batch {
  readonly uids: number[] = [];
  readonly sigs: Uint8Array[] = [];
  set(uid: number, sig: Uint8Array): void { this.uids.push(uid); this.sigs.push(sig); }
  into(s: FtsSlices): void { s.setMany(this.uids, this.sigs); }
}

/** A file made by root belongs to the owner of the directory it is in (as every mailbox file). */
function inheritOwnerSync(path: string): void {
  if (process.getuid?.() !== 0) return;
  const st = statSync(dirname(path));
  if (st.uid !== 0 || st.gid !== 0) lchownSync(path, st.uid, st.gid);
}

const indexes = new Map<string, FtsIndex>();

/** The index at `path` (one object per path in this process). */
export function ftsIndexAt(path: string): FtsIndex {
  let f = indexes.get(path);
  if (!f) { f = new FtsIndex(path); indexes.set(path, f); }
  return f;
}

/** Delivery/APPEND (FtsIndex.noteSaved), without keeping an object for a mailbox nobody searches. */
export function ftsNoteSaved(path: string, uidValidity: number, uid: number, readFile: () => Buffer | undefined): void {
  (indexes.get(path) ?? new FtsIndex(path)).noteSaved(uidValidity, uid, readFile);
}

/** COPY/MOVE (FtsIndex.noteCopied): only when the source's index is loaded in this process. */
export function ftsNoteCopied(fromPath: string, fromUidValidity: number, fromUid: number, path: string, uidValidity: number, uid: number): void {
  const from = indexes.get(fromPath);
  if (from) (indexes.get(path) ?? new FtsIndex(path)).noteCopied(from, fromUidValidity, fromUid, uidValidity, uid);
}

function touch(f: FtsIndex): void {
  indexes.delete(f.path);
  indexes.set(f.path, f);
  let total = 0;
  for (const x of indexes.values()) total += x.bytes;
  for (const x of indexes.values()) {
    if (total <= MEMORY_MAX || x === f) break;
    total -= x.bytes;
    x.unload();
  }
}

export class FtsIndex {
  readonly path: string;
  private sigs = new FtsSlices();
  private uidValidity = -1;
  private ino = -1;
  /** Bytes of the file parsed so far (0: nothing loaded). */
  private loaded = 0;
  private damaged = false;
  /** The file's size at the last follow(): more than `loaded` = a record not (yet) complete. */
  private fileSize = 0;
  /** The file cannot be written (permissions, full disk): the signatures live in memory only. */
  private memoryOnly = false;
  /**
   * Every UID up to this one of the last whole view was indexed (0: unknown). Records are only
   * dropped by unload() and rewrite(), which reset it, and new messages get higher UIDs: the
   * next update() only checks the view's UIDs above it.
   */
  private coveredTo = 0;
  /** Counts unload()s: records dropped while a catch-up read messages (by the memory limit). */
  private generation = 0;
  private busy: Promise<unknown> = Promise.resolve();
  bytes = 0;

  constructor(path: string) { this.path = path; }

  /** The signature of `uid` (undefined: not indexed). Valid after update(). */
  signature(uid: number): Uint8Array | undefined { return this.sigs.signature(uid); }

  unload(): void {
    this.generation++;
    this.sigs = new FtsSlices(); this.loaded = 0; this.ino = -1; this.bytes = 0; this.uidValidity = -1; this.coveredTo = 0;
  }

  /** Run fn after every earlier update of this index in this process. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.busy.then(fn, fn);
    this.busy = p.catch(() => {});
    return p;
  }

  /**
   * Follow the file: reload when replaced, read what was appended since. false: no file (an
   * index kept in memory only, because the file cannot be written, stays). A file larger than
   * `maxBytes` (more than an index of the mailbox can be) is not read: it is rebuilt.
   */
  private follow(maxBytes: () => number): boolean {
    let fd: number;
    try { fd = openSync(this.path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`${this.path}: ${(e as Error).message}; rebuilding it`);
      if (!this.memoryOnly) this.unload();
      return false;
    }
    try {
      const st = fstatSync(fd);
      this.fileSize = st.size;
      if (!st.isFile()) {
        if (this.memoryOnly) return false;   // already found unwritable: the memory copy serves
        this.unload(); this.damaged = true;
        return true;
      }
      this.memoryOnly = false;
      // (the bound is at least two batches of the largest records: counted only past that)
      const grown = st.ino !== this.ino ? st.size : st.size - this.loaded;
      if (grown > 2 * BATCH * (12 + MAX_SIG) && grown > maxBytes()) {
        log.warn(`${this.path}: ${st.size} bytes, more than an index of this mailbox can be; rebuilding it`);
        this.unload(); this.damaged = true; this.ino = st.ino;
        return true;
      }
      if (st.ino !== this.ino || st.size < this.loaded || this.loaded === 0) {
        this.unload();
        this.damaged = false;
        const b = readFileSync(fd);
        this.ino = st.ino;
        if (b.length < HEADER || !b.subarray(0, 8).equals(MAGIC) || crc32(b.subarray(0, 12)) !== b.readUInt32LE(12)) {
          this.damaged = true;
          return true;
        }
        this.uidValidity = b.readUInt32LE(8);
        const batch = new Batch();
        const r = parseRecords(b, HEADER, batch);
        batch.into(this.sigs);
        this.loaded = r.end; this.damaged = r.damaged;
        return true;
      }
      if (st.size > this.loaded) {
        const b = Buffer.allocUnsafe(st.size - this.loaded);
        const n = readSync(fd, b, 0, b.length, this.loaded);
        const batch = new Batch();
        const r = parseRecords(b.subarray(0, n), 0, batch);
        batch.into(this.sigs);
        this.loaded += r.end;
        if (r.damaged) this.damaged = true;
      }
      return true;
    } finally { closeSync(fd); }
  }

  /**
   * The valid records of the file as it is now (up to the first damage; a later record for a
   * UID replaces an earlier one), when it is an index for `uidValidity`; else none.
   */
  private readValid(uidValidity: number): Map<number, Uint8Array> {
    const out = new Map<number, Uint8Array>();
    let b: Buffer;
    try { b = readFileSync(this.path, { flag: fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW }); } catch { return out; }
    if (b.length < HEADER || !b.subarray(0, 8).equals(MAGIC) || crc32(b.subarray(0, 12)) !== b.readUInt32LE(12) || b.readUInt32LE(8) !== uidValidity) return out;
    parseRecords(b, HEADER, out);
    return out;
  }

  /** Replace the file by a header and the records `keep` (temp + rename); load them. */
  private rewrite(uidValidity: number, keep: Map<number, Uint8Array>): void {
    const tmp = `${this.path}.tmp.${process.pid}.${randomBytes(4).toString('hex')}`;
    const parts: Buffer[] = [header(uidValidity)];
    for (const [uid, sig] of keep) parts.push(record(uid, sig));
    const b = Buffer.concat(parts);
    try {
      writeFileSync(tmp, b, { mode: 0o600, flag: 'wx' });
      inheritOwnerSync(tmp);
      renameSync(tmp, this.path);
    } catch (e) {
      try { unlinkSync(tmp); } catch { /* not made */ }
      throw e;
    }
    this.unload();
    this.sigs.setMany([...keep.keys()], [...keep.values()]);
    this.uidValidity = uidValidity; this.damaged = false;
    this.ino = statSync(this.path).ino; this.loaded = b.length;
  }

  /**
   * Append records in one write(2) when the file's header is for `uidValidity` (checked on the
   * descriptor written to: a file replaced meanwhile is checked, not the name). The loaded
   * offset follows (`known`: the caller has put the signatures in memory) only if nobody else
   * wrote meanwhile. false: not appended.
   */
  private append(recs: Buffer[], uidValidity: number, known: boolean): boolean {
    const b = Buffer.concat(recs);
    const fd = openSync(this.path, fsConstants.O_RDWR | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW);
    try {
      const h = Buffer.alloc(HEADER);
      if (readSync(fd, h, 0, HEADER, 0) !== HEADER || !h.subarray(0, 8).equals(MAGIC) || h.readUInt32LE(8) !== uidValidity
        || crc32(h.subarray(0, 12)) !== h.readUInt32LE(12)) return false;
      const before = fstatSync(fd);
      writeSync(fd, b);
      const after = fstatSync(fd);
      if (known && before.ino === this.ino && before.size === this.loaded && after.size === before.size + b.length) {
        this.loaded = after.size;
      }
      return true;
    } finally { closeSync(fd); }
  }

  /**
   * Make the index cover `view` (its UIDs, ascending) of a mailbox with `uidValidity`, and
   * return, for each of `queries`, the UIDs of the view's messages the index does not rule out,
   * ascending (messages it could not index, e.g. expunged while read, are included): a search
   * then looks at these only. undefined: the index was unloaded while messages were read (the
   * process's memory limit), it cannot narrow this search. `total`: the messages in the mailbox; when `view` is all of them,
   * records of other UIDs are expunged ones and may be compacted away (a search over part of a
   * mailbox, e.g. CONTEXT=SEARCH updates, passes more). Never throws for a damaged file:
   * rebuilds it; an error writing it (full disk, permissions) is logged and the index stays in
   * memory only.
   */
  update(uidValidity: number, view: UidList, read: ReadMany, total: number | (() => number) = view.length, queries: readonly FtsQuery[] = []): Promise<Uint32Array[] | undefined> {
    return this.serial(async () => {
      // (the caller's view may be replaced while messages are read, not changed in place)
      const n = view.length, lastUid = n > 0 ? uidAt(view, n - 1) : 0;
      let known = typeof total === 'number' ? total : -1;
      const count = () => (known >= 0 ? known : (known = (total as () => number)()));
      // each UID has one live record; compaction keeps dead ones under 2x + a batch
      const maxBytes = () => HEADER + (2 * Math.max(count(), n) + 2 * BATCH) * (12 + MAX_SIG);
      let exists = this.follow(maxBytes);
      if (exists && this.fileSize > this.loaded && !this.damaged) {
        // an incomplete record at the end: an append in progress (one write(2): done in a moment)
        // or a crash's torn tail, which must not stay before what we append
        await sleep(20);
        exists = this.follow(maxBytes);
        if (exists && this.fileSize > this.loaded) this.damaged = true;
      }
      const inMemory = !exists && this.memoryOnly && this.uidValidity === uidValidity;
      let writable = !inMemory;
      // a damaged file keeps its valid (CRC-checked) records; a foreign or garbage one nothing
      const fresh = !inMemory && (!exists || this.uidValidity !== uidValidity);
      if (exists && (fresh || this.damaged)) log.warn(`${this.path}: ${fresh ? 'not an index of this mailbox' : 'damaged'}; rebuilding it`);
      if (fresh) { this.sigs = new FtsSlices(); this.coveredTo = 0; }
      const whole = () => count() <= n;
      // the view's UIDs the index lacks: above coveredTo only (UIDs below it were all indexed
      // and nothing was dropped since)
      let from = 0;
      if (this.coveredTo > 0) {
        let lo = 0, hi = n;
        while (lo < hi) { const mid = (lo + hi) >> 1; if (uidAt(view, mid) <= this.coveredTo) lo = mid + 1; else hi = mid; }
        from = lo;
      }
      let missing: number[] = [];
      for (let i = from; i < n; i++) { const u = uidAt(view, i); if (!this.sigs.has(u)) missing.push(u); }
      const liveCount = n - missing.length;
      if (!inMemory && (fresh || this.damaged || (this.sigs.records > 2 * liveCount && this.sigs.records - liveCount > BATCH && whole()))) {
        // (a file too large to be read, or garbage, has left nothing to keep)
        let keep = fresh || this.sigs.records === 0 ? new Map<number, Uint8Array>() : this.readValid(uidValidity);
        if (whole()) {
          const live = new Set<number>();
          for (let i = 0; i < n; i++) live.add(uidAt(view, i));
          keep = new Map([...keep].filter(([u]) => live.has(u)));
        }
        try { this.rewrite(uidValidity, keep); } catch (e) {
          writable = false;
          this.unload();
          this.sigs.setMany([...keep.keys()], [...keep.values()]);
          this.uidValidity = uidValidity; this.memoryOnly = true; this.damaged = false;
          log.warn(`${this.path}: cannot write the full-text index (kept in memory meanwhile; fix the file or the directory's permissions): ${(e as Error).message}`);
        }
        missing = [];
        for (let i = 0; i < n; i++) { const u = uidAt(view, i); if (!this.sigs.has(u)) missing.push(u); }
      }
      const unread = new Set(missing);
      const generation = this.generation;
      for (let i = 0; i < missing.length; i += BATCH) {
        const part = missing.slice(i, i + BATCH);
        const recs: Buffer[] = [];
        const batch = new Batch();
        await read(part, (j, content) => {
          const sig = messageSignature(content);
          batch.set(part[j]!, sig);
          unread.delete(part[j]!);
          recs.push(record(part[j]!, sig));
        });
        batch.into(this.sigs);
        if (writable && recs.length > 0) {
          try { if (!this.append(recs, uidValidity, true)) writable = false; } catch (e) {
            writable = false;
            log.warn(`${this.path}: cannot append to the full-text index: ${(e as Error).message}`);
          }
        }
      }
      // unloaded meanwhile (another mailbox's index pushed it out): this search goes without
      if (this.generation !== generation) return undefined;
      if (n > 0 && lastUid !== this.coveredTo && whole()) {
        // covered up to just below the first message that could not be read
        let to = lastUid;
        for (const u of unread) to = Math.min(to, u - 1);
        this.coveredTo = to;
      }
      this.bytes = this.sigs.bytes;
      touch(this);
      return queries.map((q) => {
        const c = this.sigs.candidates(q);
        if (unread.size === 0) return c;
        return Uint32Array.from([...c, ...unread]).sort();
      });
    });
  }

  /**
   * `postern index rebuild`: a new file for `uids`, written beside the old one and renamed over
   * it when complete; only the batch in progress is held in memory. Returns the messages indexed.
   */
  async rebuild(uidValidity: number, uids: readonly number[], read: ReadMany): Promise<number> {
    return this.serial(async () => {
      const tmp = `${this.path}.tmp.${process.pid}.${randomBytes(4).toString('hex')}`;
      let n = 0;
      const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
      try {
        writeSync(fd, header(uidValidity));
        for (let i = 0; i < uids.length; i += BATCH) {
          const part = uids.slice(i, i + BATCH);
          const recs: Buffer[] = [];
          await read(part, (j, content) => { recs.push(record(part[j]!, messageSignature(content))); });
          if (recs.length > 0) writeSync(fd, Buffer.concat(recs));
          n += recs.length;
        }
        closeSync(fd);
        inheritOwnerSync(tmp);
        renameSync(tmp, this.path);
      } catch (e) {
        try { closeSync(fd); } catch { /* closed */ }
        try { unlinkSync(tmp); } catch { /* gone */ }
        throw e;
      }
      this.unload();
      return n;
    });
  }

  /** Delivery/APPEND of `uid`: index it now when the mailbox has an index. Never throws. */
  noteSaved(uidValidity: number, uid: number, readFile: () => Buffer | undefined): void {
    try {
      if (statSync(this.path).size < HEADER) return;
      const raw = readFile();
      if (!raw || raw.length > SAVE_INDEX_MAX) return;
      this.append([record(uid, messageSignature(raw))], uidValidity, false);
    } catch { /* the catch-up of the next search indexes it */ }
  }

  /** COPY: the source's signature under the new UID, when both indexes exist. Never throws. */
  noteCopied(from: FtsIndex, fromUidValidity: number, fromUid: number, uidValidity: number, uid: number): void {
    try {
      if (from.uidValidity !== fromUidValidity) return;
      const sig = from.sigs.signature(fromUid);
      if (!sig) return;
      this.append([record(uid, sig)], uidValidity, false);
    } catch { /* caught up later */ }
  }
}
