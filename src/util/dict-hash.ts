/**
 * dict-hash - the indexed tables `hash:/path`, `btree:/path` and `lmdb:/path`, built by
 * `postern map hash:/path` from the postmap(1) source file `/path`.
 *
 * Real Postfix keeps these in Berkeley DB (`/path.db`) or LMDB (`/path.lmdb`). Postern cannot
 * read those, so it writes its own index next to the source, `/path.pdb` ("Postern database"),
 * and never touches a `.db` file Postfix may own. The three types share the one format: the
 * point of all of them is "a fast exact-key lookup built by postmap".
 *
 * On-disk format (all integers little-endian u32), one file, read whole with readFileSync and
 * searched in place, so opening a 100,000-entry table costs one read and no parsing:
 *
 *   0   magic "PSTRNDB1"
 *   8   entry count
 *   12  slot count (a power of two, ≥ 2 × entries)
 *   16  flags (bit 0: keys were folded to lower case)
 *   20  reserved (0)
 *   24  slot table: slotCount × u32, the offset of a record or 0 for an empty slot
 *       (FNV-1a 32-bit hash of the UTF-8 key, linear probing)
 *   ... records in source order: keyLen, valueLen, key bytes, value bytes
 *
 * The index is written to a temporary file and renamed into place, so a running daemon never
 * sees a half-built table (Postfix gets the same effect with locking).
 *
 * Opening a missing index fails like Postfix: `open database /path.pdb: No such file or
 * directory`. When the source is newer than the index, Postfix's warning is given:
 * `database /path.pdb is older than source file /path`. A daemon's open table notices a rebuilt
 * index (new inode or mtime, checked at most once a second) and reloads it.
 */
import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { DictError, type Dict } from './dict.ts';
import { errnoText, tablePath, warnFn, type DictOpenFlags } from './dict-source.ts';

export const INDEX_SUFFIX = '.pdb';
const MAGIC = 'PSTRNDB1';
const HEADER = 24;
const FLAG_FOLDED = 1;

/** FNV-1a over UTF-8 bytes. */
function fnvBytes(b: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

/** Build index bytes from entries (first occurrence of a key wins; caller warns about dups). */
export function encodeIndex(entries: Iterable<[string, string]>, folded: boolean): Buffer {
  const keys: string[] = [];
  const vals: string[] = [];
  const seen = new Set<string>();
  let dataSize = 0;
  for (const [k, v] of entries) {
    if (seen.has(k)) continue;
    seen.add(k);
    keys.push(k);
    vals.push(v);
    dataSize += 8 + Buffer.byteLength(k, 'utf8') + Buffer.byteLength(v, 'utf8');
  }
  let slots = 8;
  while (slots < keys.length * 2) slots *= 2;
  const dataStart = HEADER + slots * 4;
  if (dataStart + dataSize > 0xffffffff) throw new DictError('config', 'table too large for the index format (4 GB)');
  const out = Buffer.alloc(dataStart + dataSize);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(keys.length, 8);
  out.writeUInt32LE(slots, 12);
  out.writeUInt32LE(folded ? FLAG_FOLDED : 0, 16);
  let off = dataStart;
  for (let i = 0; i < keys.length; i++) {
    const klen = out.write(keys[i]!, off + 8, 'utf8');
    const vlen = out.write(vals[i]!, off + 8 + klen, 'utf8');
    out.writeUInt32LE(klen, off);
    out.writeUInt32LE(vlen, off + 4);
    let s = fnvBytes(out, off + 8, off + 8 + klen) & (slots - 1);
    while (out.readUInt32LE(HEADER + s * 4) !== 0) s = (s + 1) & (slots - 1);
    out.writeUInt32LE(off, HEADER + s * 4);
    off += 8 + klen + vlen;
  }
  return out;
}

/** Write `/path.pdb` atomically (temporary file + rename). */
export function writeIndexFile(indexPath: string, entries: Iterable<[string, string]>, folded: boolean, mode = 0o644): void {
  const bytes = encodeIndex(entries, folded);
  const tmp = `${indexPath}.tmp.${process.pid}`;
  try {
    writeFileSync(tmp, bytes, { mode });
    renameSync(tmp, indexPath);
  } catch (err) {
    try { unlinkSync(tmp); } catch { /* not created */ }
    throw new DictError('config', `open database ${indexPath}: ${errnoText(err)}`);
  }
}

/** An opened index: synchronous lookups on the bytes in memory. */
export class HashIndex {
  readonly path: string;
  readonly folded: boolean;
  readonly count: number;
  private buf: Buffer;
  private mask: number;

  constructor(path: string, buf: Buffer) {
    if (buf.length < HEADER || buf.toString('latin1', 0, 8) !== MAGIC) {
      throw new DictError('config', `${path}: not a Postern indexed table (bad magic number); rebuild it with "postern map"`);
    }
    this.path = path;
    this.buf = buf;
    this.count = buf.readUInt32LE(8);
    const slots = buf.readUInt32LE(12);
    if (slots === 0 || (slots & (slots - 1)) !== 0 || HEADER + slots * 4 > buf.length) {
      throw new DictError('config', `${path}: corrupt index header; rebuild it with "postern map"`);
    }
    this.mask = slots - 1;
    this.folded = (buf.readUInt32LE(16) & FLAG_FOLDED) !== 0;
  }

  static load(path: string): HashIndex {
    let buf: Buffer;
    try {
      buf = readFileSync(path);
    } catch (err) {
      throw new DictError('config', `open database ${path}: ${errnoText(err)}`);
    }
    return new HashIndex(path, buf);
  }

  /** The value for an exact key (no folding here), or undefined. */
  get(key: string): string | undefined {
    const b = this.buf;
    // Fast path for ASCII keys: hash and compare char codes without encoding the key.
    let h = 0x811c9dc5;
    let ascii = true;
    const n = key.length;
    for (let i = 0; i < n; i++) {
      const c = key.charCodeAt(i);
      if (c > 0x7f) { ascii = false; break; }
      h = Math.imul(h ^ c, 0x01000193);
    }
    if (!ascii) return this.getBytes(Buffer.from(key, 'utf8'));
    let s = (h >>> 0) & this.mask;
    for (;;) {
      const off = b.readUInt32LE(HEADER + s * 4);
      if (off === 0) return undefined;
      if (b.readUInt32LE(off) === n) {
        const ks = off + 8;
        let i = 0;
        while (i < n && b[ks + i] === key.charCodeAt(i)) i++;
        if (i === n) return b.toString('utf8', ks + n, ks + n + b.readUInt32LE(off + 4));
      }
      s = (s + 1) & this.mask;
    }
  }

  private getBytes(kb: Buffer): string | undefined {
    const b = this.buf;
    let s = fnvBytes(kb, 0, kb.length) & this.mask;
    for (;;) {
      const off = b.readUInt32LE(HEADER + s * 4);
      if (off === 0) return undefined;
      const klen = b.readUInt32LE(off);
      if (klen === kb.length && b.compare(kb, 0, klen, off + 8, off + 8 + klen) === 0) {
        return b.toString('utf8', off + 8 + klen, off + 8 + klen + b.readUInt32LE(off + 4));
      }
      s = (s + 1) & this.mask;
    }
  }

  /** All entries in source order (postmap -s). */
  *entries(): Generator<[string, string]> {
    const b = this.buf;
    let off = HEADER + (this.mask + 1) * 4;
    for (let i = 0; i < this.count && off + 8 <= b.length; i++) {
      const kl = b.readUInt32LE(off);
      const vl = b.readUInt32LE(off + 4);
      const k = b.toString('utf8', off + 8, off + 8 + kl);
      const v = b.toString('utf8', off + 8 + kl, off + 8 + kl + vl);
      yield [k, v];
      off += 8 + kl + vl;
    }
  }
}

/** A hash: table as a Dict, plus a synchronous lookup for batch callers (postmap -q -). */
export interface HashDict extends Dict {
  lookupSync(key: string): string | undefined;
}

export async function openHashDict(type: string, name: string, flags: DictOpenFlags = {}): Promise<HashDict> {
  const source = tablePath(name, flags);
  const indexPath = source + INDEX_SUFFIX;
  const warn = warnFn(flags);
  const fold = flags.foldCase !== false;
  let st = statIndex(indexPath);
  let index = HashIndex.load(indexPath);
  checkAge(source, indexPath, st, warn);
  // Once a second at most, on the monotonic clock (a wall clock stepped back would stop it).
  let checked = performance.now();

  const refresh = () => {
    const now = performance.now();
    if (now - checked < 1000) return;
    checked = now;
    let st2: Stats;
    try { st2 = statSync(indexPath); } catch { return; } // keep serving the copy in memory
    if (st2.ino !== st.ino || st2.mtimeMs !== st.mtimeMs || st2.size !== st.size) {
      index = HashIndex.load(indexPath);
      st = st2;
    }
  };
  const lookupSync = (key: string): string | undefined => {
    refresh();
    return index.get(fold ? key.toLowerCase() : key);
  };
  return {
    type,
    name,
    lookupSync,
    lookup: async (key) => lookupSync(key),
    entries: async function* () { yield* index.entries(); },
    close: async () => {},
  };
}

function statIndex(indexPath: string): Stats {
  try {
    return statSync(indexPath);
  } catch (err) {
    throw new DictError('config', `open database ${indexPath}: ${errnoText(err)}`);
  }
}

/** Postfix dict_db.c: warn when the source file was changed after the index was built. */
function checkAge(source: string, indexPath: string, idx: Stats, warn: (m: string) => void): void {
  try {
    const src = statSync(source);
    if (Math.floor(src.mtimeMs / 1000) > Math.floor(idx.mtimeMs / 1000)) {
      warn(`database ${indexPath} is older than source file ${source}`);
    }
  } catch { /* no source file next to the index: nothing to compare */ }
}
