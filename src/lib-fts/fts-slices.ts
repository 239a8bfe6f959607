/**
 * fts-slices - the in-memory form of a mailbox's full-text index (docs/fts.md): the messages'
 * trigram signatures (fts-signature.ts) stored bit-sliced, so that a search tests every message
 * at once instead of one message at a time.
 *
 * LAYOUT. Signatures come in powers of two from 64 to 65,536 bits; messages with the same
 * signature size form a class. A class of m bits over n messages is m slices of n bits: slice b
 * holds bit b of every message's signature, 32 messages to a word (column c = message number c
 * of the class, `uids[c]` its UID). A query bit b (a trigram hash masked to m bits) is then one
 * slice, and "which messages have every query bit set" is the AND of a few slices: n/32 word
 * operations per query bit instead of one probe per message (100,000 messages, a 7-letter word:
 * about 30,000 word ANDs, well under a millisecond). The result is the same set of messages the
 * per-message test (cannotMatch) keeps, so the answers of SEARCH do not change.
 *
 * MEMORY. The slices hold exactly the signatures' bits (plus the free columns of a class's last
 * allocation, at most a quarter more, and at least one word per slice): about as many bytes as
 * the `postern-fts` file. An empty signature (a message that could not be parsed) excludes
 * nothing: such messages are kept apart and are candidates of every query. A UID indexed again
 * (a later record in the file) leaves a dead column behind (UID 0), dropped at the next load.
 */
import type { FtsQuery } from './fts-signature.ts';

const MIN_LOG = 6;
const MAX_LOG = 16;
const COL_BITS = 26;

class SliceClass {
  readonly bits: number;
  /** Words per slice (allocated columns / 32). */
  stride = 0;
  /** Columns used. */
  n = 0;
  mat = new Uint32Array(0);
  uids = new Uint32Array(0);

  constructor(bits: number) { this.bits = bits; }

  get bytes(): number { return this.mat.byteLength + this.uids.byteLength; }

  add(uid: number, sig: Uint8Array): number {
    if (this.n === this.stride * 32) this.grow(Math.max(1, this.stride + (this.stride >> 2) + 1));
    const col = this.n++;
    this.uids[col] = uid;
    const w = col >>> 5, m = 1 << (col & 31), stride = this.stride, mat = this.mat;
    for (let i = 0; i < sig.length; i++) {
      let v = sig[i]!;
      while (v !== 0) {
        const low = v & -v;
        mat[((i << 3) + 31 - Math.clz32(low)) * stride + w]! |= m;
        v ^= low;
      }
    }
    return col;
  }

  /**
   * Add many signatures (all of this class's size), a block of up to 32 * K columns at a time:
   * transposed in a scratch of K words per slice, then written once per slice and block. The
   * slices of a big class are far apart in memory (one cache miss each): this touches each
   * slice once per block instead of once per bit set. Returns the columns.
   */
  addMany(uids: readonly number[], sigs: readonly Uint8Array[]): number[] {
    const need = this.n + uids.length;
    if (need > this.stride * 32) this.grow(Math.max(Math.ceil(need / 32), this.stride + (this.stride >> 2) + 1));
    const bits = this.bits;
    const K = Math.max(1, Math.min(16, (1 << 18) / bits));
    const scratch = new Uint32Array(bits * K);
    const cols: number[] = [];
    const stride = this.stride, mat = this.mat;
    let k = 0;
    while (k < uids.length) {
      const col0 = this.n, w0 = col0 >>> 5;
      const take = Math.min(K * 32 - (col0 & 31), uids.length - k);
      for (let t = 0; t < take; t++) {
        const col = col0 + t, m = 1 << (col & 31), wi = (col >>> 5) - w0, sig = sigs[k + t]!;
        this.uids[col] = uids[k + t]!;
        cols.push(col);
        for (let i = 0; i < sig.length; i++) {
          let v = sig[i]!;
          while (v !== 0) {
            const low = v & -v;
            scratch[((i << 3) + 31 - Math.clz32(low)) * K + wi]! |= m;
            v ^= low;
          }
        }
      }
      const words = ((col0 + take - 1) >>> 5) - w0 + 1;
      for (let b = 0; b < bits; b++) {
        const row = b * stride + w0, sr = b * K;
        for (let wi = 0; wi < words; wi++) {
          const x = scratch[sr + wi]!;
          if (x !== 0) { mat[row + wi]! |= x; scratch[sr + wi] = 0; }
        }
      }
      this.n += take;
      k += take;
    }
    return cols;
  }

  private grow(stride: number): void {
    const mat = new Uint32Array(this.bits * stride);
    if (this.stride > 0) for (let b = 0; b < this.bits; b++) mat.set(this.mat.subarray(b * this.stride, (b + 1) * this.stride), b * stride);
    const uids = new Uint32Array(stride * 32);
    uids.set(this.uids.subarray(0, this.n));
    this.mat = mat; this.uids = uids; this.stride = stride;
  }

  signature(col: number): Uint8Array {
    const sig = new Uint8Array(this.bits >> 3);
    const w = col >>> 5, s = col & 31;
    for (let b = 0; b < this.bits; b++) if ((this.mat[b * this.stride + w]! >>> s) & 1) sig[b >> 3]! |= 1 << (b & 7);
    return sig;
  }

  /** Push the UIDs of the live columns having every bit of `q` (masked to this class) set. */
  candidates(q: FtsQuery, out: number[]): void {
    const words = (this.n + 31) >>> 5;
    if (words === 0) return;
    const acc = new Uint32Array(words).fill(0xffffffff);
    if (this.n & 31) acc[words - 1] = (2 ** (this.n & 31) - 1) >>> 0;
    const mask = this.bits - 1, stride = this.stride, mat = this.mat;
    for (let j = 0; j < q.hAll.length; j++) {
      for (let h = 0; h < (q.body ? 2 : 1); h++) {
        const base = ((h === 0 ? q.hAll[j]! : q.hBody[j]!) & mask) * stride;
        let any = 0;
        for (let k = 0; k < words; k++) any |= (acc[k]! &= mat[base + k]!);
        if (any === 0) return;
      }
    }
    for (let k = 0; k < words; k++) {
      let v = acc[k]!;
      while (v !== 0) {
        const low = v & -v;
        const uid = this.uids[(k << 5) + 31 - Math.clz32(low)]!;
        if (uid !== 0) out.push(uid);
        v ^= low;
      }
    }
  }
}

export class FtsSlices {
  private classes: (SliceClass | undefined)[] = [];
  /** UID → class (high bits; 31: the empty signature) and column. */
  private where = new Map<number, number>();
  /** UIDs whose signature is empty: candidates of every query. */
  private always = new Set<number>();
  /** The records added (dead ones included). */
  records = 0;

  get size(): number { return this.where.size; }

  get bytes(): number {
    let b = this.where.size * 16 + this.always.size * 16;
    for (const c of this.classes) if (c) b += c.bytes;
    return b;
  }

  has(uid: number): boolean { return this.where.has(uid); }

  /** Index `sig` (empty, or a power of two of 8 to 8,192 bytes) for `uid`, replacing any earlier one. */
  set(uid: number, sig: Uint8Array): void {
    this.records++;
    this.remove(uid);
    if (sig.length === 0) { this.always.add(uid); this.where.set(uid, 31 << COL_BITS); return; }
    const log = 31 - Math.clz32(sig.length * 8);
    if (log < MIN_LOG || log > MAX_LOG || sig.length * 8 !== 1 << log) throw new RangeError(`fts signature of ${sig.length} bytes`);
    const c = this.classes[log] ??= new SliceClass(1 << log);
    this.where.set(uid, (log << COL_BITS) | c.add(uid, sig));
  }

  private remove(uid: number): void {
    const w = this.where.get(uid);
    if (w === undefined) return;
    this.where.delete(uid);
    const log = w >>> COL_BITS;
    if (log === 31) this.always.delete(uid);
    else this.classes[log]!.uids[w & ((1 << COL_BITS) - 1)] = 0;
  }

  /** set() for many records at once (much faster per record: SliceClass.addMany). */
  setMany(uids: readonly number[], sigs: readonly Uint8Array[]): void {
    // a UID twice in the batch: its last record wins, as in the file
    const last = new Map<number, number>();
    for (let i = 0; i < uids.length; i++) last.set(uids[i]!, i);
    const byLog = new Map<number, { uids: number[]; sigs: Uint8Array[] }>();
    for (let i = 0; i < uids.length; i++) {
      const uid = uids[i]!, sig = sigs[i]!;
      if (last.get(uid) !== i) { this.records++; continue; }
      const log = 31 - Math.clz32(sig.length * 8);
      if (sig.length === 0 || log < MIN_LOG || log > MAX_LOG || sig.length * 8 !== 1 << log) { this.set(uid, sig); continue; }
      this.records++;
      this.remove(uid);
      let g = byLog.get(log);
      if (!g) { g = { uids: [], sigs: [] }; byLog.set(log, g); }
      g.uids.push(uid); g.sigs.push(sig);
    }
    for (const [log, g] of byLog) {
      const c = this.classes[log] ??= new SliceClass(1 << log);
      const cols = c.addMany(g.uids, g.sigs);
      g.uids.forEach((u, i) => this.where.set(u, (log << COL_BITS) | cols[i]!));
    }
  }

  /** The signature of `uid` as it was added (undefined: not indexed). */
  signature(uid: number): Uint8Array | undefined {
    const w = this.where.get(uid);
    if (w === undefined) return undefined;
    const log = w >>> COL_BITS;
    return log === 31 ? new Uint8Array(0) : this.classes[log]!.signature(w & ((1 << COL_BITS) - 1));
  }

  /**
   * The indexed UIDs whose signature does not rule `q` out (cannotMatch false), ascending.
   * UIDs not indexed are not in it: the caller adds them.
   */
  candidates(q: FtsQuery): Uint32Array {
    const out: number[] = [...this.always];
    for (const c of this.classes) if (c) c.candidates(q, out);
    return Uint32Array.from(out).sort();
  }
}
