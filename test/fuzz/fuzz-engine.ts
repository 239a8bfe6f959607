/**
 * fuzz-engine - a small coverage-guided mutation fuzzer for Postern's parsers, in-process and
 * pure JS (issue 8, item 4).
 *
 * Why not Jazzer.js: @jazzer.js/core 4.0.0 installs from the npm registry, but its only native
 * addon is a prebuilt fuzzer-linux-x64.node that needs glibc 2.38 (Debian 12 has 2.36), and
 * building it from source downloads libFuzzer and Node headers from outside the registry; the
 * 2.x line fetches its prebuilds from GitHub. So the coverage feedback here comes from V8's own
 * block coverage (the inspector's Profiler.takePreciseCoverage), which Node has built in.
 *
 * The loop (libFuzzer's shape, simplified):
 *  - a corpus starts from the target's seeds (real test inputs and testdata);
 *  - each input is a corpus entry with 1..8 stacked mutations: bit flips, interesting bytes
 *    (CR, LF, NUL, quotes, brackets...), boundary numbers, dictionary tokens, range deletes,
 *    duplicates, splices with another entry, and rare long repeats (over-long lines);
 *  - inputs run in batches; after a batch the V8 block counters of the target's source files
 *    are read (and reset). A batch that reached a new (block, hit-count bucket) feature is
 *    replayed one input at a time and the inputs that add features join the corpus.
 *  - a finding is any throw the target does not document (FuzzTarget.expected), or one input
 *    running longer than the slow limit in the best of three runs (coverage counting makes
 *    code ~5x slower: a slow input is re-timed without it before it is called a defect, see
 *    docs/fuzzing.md). Findings are deduplicated by error name + first src/ stack frame.
 *
 * A watchdog worker (sharing the current input through a SharedArrayBuffer) catches a true
 * hang (a synchronous infinite loop never returns to the loop): it writes the input to
 * OUT/hang-*.bin and kills the process, since nothing else can stop a spinning main thread.
 */

import { Session } from 'node:inspector';
import { Worker } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FuzzTarget {
  name: string;
  /** Source files (path fragments under src/) whose coverage guides the fuzzer. */
  coverage: string[];
  /** Seed inputs: real test inputs and testdata. */
  seeds(): Buffer[] | Promise<Buffer[]>;
  /** Tokens the mutator inserts (keywords of the grammar). */
  dictionary?: string[];
  /** Largest input the mutator produces. */
  maxLen?: number;
  setup?(): Promise<void> | void;
  teardown?(): Promise<void> | void;
  /** Runs one input through the parser; throws what the parser throws. */
  run(data: Buffer): void | Promise<void>;
  /** The parser's documented error types: anything else thrown is a finding. */
  expected(err: unknown): boolean;
}

export interface Finding {
  kind: 'crash' | 'hang' | 'slow';
  signature: string;
  message: string;
  stack: string;
  input: Buffer;
  ms: number;
}

export interface FuzzOptions {
  seed: number;
  /** Wall-clock budget. */
  maxMs: number;
  maxRuns?: number;
  /** Mutated inputs to run even past maxMs (a loaded machine still fuzzes, not only replays seeds). */
  minMutations?: number;
  /** Per-input time above which an input is a 'slow' finding (ms). */
  slowMs?: number;
  /** Directory for findings (and the hang file) and, under corpus/, the grown corpus (read back
   * as extra seeds by the next run); none = keep in memory only. */
  outDir?: string;
  /** Use V8 block coverage as feedback (default true). */
  coverage?: boolean;
  /** Start the watchdog worker for true hangs (default: when outDir is set). */
  watchdogMs?: number;
  onStatus?: (s: FuzzStats) => void;
  statusEveryMs?: number;
}

export interface FuzzStats {
  target: string;
  runs: number;
  ms: number;
  corpus: number;
  features: number;
  /** Distinct blocks of the target's source files ever executed. */
  blocks: number;
  findings: Finding[];
}

/** mulberry32: small, fast, seedable. */
export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]!; }
}

const INTERESTING_BYTES = [0, 1, 0x7f, 0x80, 0xff, 0x0d, 0x0a, 0x09, 0x20, 0x22, 0x27, 0x28, 0x29, 0x5b, 0x5d,
  0x7b, 0x7d, 0x3c, 0x3e, 0x5c, 0x2e, 0x40, 0x3a, 0x3b, 0x2c, 0x3d, 0x2b, 0x2d, 0x2a, 0x25, 0x24, 0x23, 0x7e, 0x2f, 0xc3];
const BOUNDARY = ['0', '-1', '1', '255', '256', '4294967295', '4294967296', '2147483647', '2147483648',
  '9007199254740993', '99999999999999999999999', '-0', '1e308', 'NaN', '0x10', '\r\n', '\n', '\0', '\r\n.\r\n',
  '=?', '?=', '{', '}', '{4294967295}', '{0}\r\n', '~{1}', '*', '$', '${', '%', '+', '"', '\\', '/', '../', '..'];

/** The mutator: 1..8 stacked edits of a corpus entry. */
export function mutate(rng: Rng, input: Buffer, corpus: readonly Buffer[], dict: readonly string[], maxLen: number): Buffer {
  let b: Buffer = Buffer.from(input);
  const n = 1 + rng.int(rng.next() < 0.7 ? 3 : 8);
  for (let i = 0; i < n; i++) b = mutateOnce(rng, b, corpus, dict, maxLen);
  return b.length > maxLen ? b.subarray(0, maxLen) : b;
}

function insertAt(b: Buffer, pos: number, ins: Buffer): Buffer {
  return Buffer.concat([b.subarray(0, pos), ins, b.subarray(pos)]);
}

function mutateOnce(rng: Rng, b: Buffer, corpus: readonly Buffer[], dict: readonly string[], maxLen: number): Buffer {
  const pos = b.length === 0 ? 0 : rng.int(b.length + 1);
  switch (rng.int(13)) {
    case 0: // bit flip
      if (b.length) { const p = rng.int(b.length); b[p] = b[p]! ^ (1 << rng.int(8)); }
      return b;
    case 1: // interesting byte
      if (b.length) b[rng.int(b.length)] = rng.pick(INTERESTING_BYTES);
      return b;
    case 2: // random byte
      if (b.length) b[rng.int(b.length)] = rng.int(256);
      return b;
    case 3: // insert interesting byte(s)
      return insertAt(b, pos, Buffer.alloc(1 + rng.int(3), rng.pick(INTERESTING_BYTES)));
    case 4: case 5: // dictionary token
      if (dict.length) return insertAt(b, pos, Buffer.from(rng.pick(dict), 'latin1'));
      return b;
    case 6: { // boundary value, replacing a run of digits when one is there
      const tok = Buffer.from(rng.pick(BOUNDARY), 'latin1');
      const s = b.toString('latin1');
      const m = [...s.matchAll(/\d+/g)];
      if (m.length && rng.next() < 0.7) {
        const hit = rng.pick(m);
        return Buffer.concat([b.subarray(0, hit.index), tok, b.subarray(hit.index + hit[0].length)]);
      }
      return insertAt(b, pos, tok);
    }
    case 7: { // delete a range
      if (b.length < 2) return b;
      const len = 1 + rng.int(Math.min(b.length - pos + 1, 1 + rng.int(64)));
      return Buffer.concat([b.subarray(0, pos), b.subarray(pos + len)]);
    }
    case 8: { // duplicate a range
      if (!b.length) return b;
      const s = rng.int(b.length);
      const len = 1 + rng.int(Math.min(b.length - s, 128));
      return insertAt(b, pos, b.subarray(s, s + len));
    }
    case 9: { // splice with another corpus entry
      const o = rng.pick(corpus);
      if (!o.length) return b;
      const s = rng.int(o.length);
      const len = 1 + rng.int(o.length - s);
      return rng.next() < 0.5 ? insertAt(b, pos, o.subarray(s, s + len))
        : Buffer.concat([b.subarray(0, pos), o.subarray(s, s + len)]);
    }
    case 10: { // long repeat (over-long lines, deep nesting, many parts)
      if (rng.next() > 0.15) return b;
      const unit = b.length && rng.next() < 0.6 ? b.subarray(rng.int(b.length)).subarray(0, 1 + rng.int(8))
        : Buffer.from(rng.pick([...BOUNDARY, 'a', '(', '((', '[', '<', '"', ' ', '\t', '\r\n ', 'x,']), 'latin1');
      const times = rng.pick([64, 1000, 5000, 70_000]);
      const rep = Buffer.alloc(Math.min(unit.length * times, maxLen), unit);
      return insertAt(b, pos, rep);
    }
    case 11: // line ending swap
      return Buffer.from(rng.next() < 0.5 ? b.toString('latin1').replace(/\r\n/g, '\n') : b.toString('latin1').replace(/(?<!\r)\n/g, '\r\n'), 'latin1');
    default: { // swap case / truncate
      if (rng.next() < 0.5) return b.subarray(0, pos);
      const s = b.toString('latin1');
      return Buffer.from(rng.next() < 0.5 ? s.toUpperCase() : s.toLowerCase(), 'latin1');
    }
  }
}

/** The V8 block-coverage reader, restricted to the target's source files. */
class Coverage {
  private readonly session = new Session();
  private readonly filters: string[];
  /** feature → seen */
  readonly features = new Set<string>();
  readonly blocks = new Set<string>();
  constructor(filters: string[]) {
    this.filters = filters;
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }
  private post(method: string, params?: object): any {
    let out: any;
    let error: unknown;
    this.session.post(method, params ?? {}, (err, res) => { error = err; out = res; });
    if (error) throw error;
    return out;
  }
  /** Reads and resets the counters; returns the features of this snapshot. */
  take(): string[] {
    const res = this.post('Profiler.takePreciseCoverage');
    const out: string[] = [];
    for (const script of res.result as { url: string; functions: { ranges: { startOffset: number; endOffset: number; count: number }[] }[] }[]) {
      if (!this.filters.some((f) => script.url.includes(f))) continue;
      const id = script.url.slice(script.url.lastIndexOf('/') + 1);
      for (const fn of script.functions) {
        for (const r of fn.ranges) {
          if (r.count === 0) continue;
          out.push(`${id}:${r.startOffset}:${r.endOffset}:${bucket(r.count)}`);
        }
      }
    }
    return out;
  }
  /** Adds features; true when any was new. */
  merge(fs: string[]): boolean {
    let fresh = false;
    for (const f of fs) {
      if (this.features.has(f)) continue;
      this.features.add(f);
      this.blocks.add(f.slice(0, f.lastIndexOf(':')));
      fresh = true;
    }
    return fresh;
  }
  close(): void {
    try { this.post('Profiler.stopPreciseCoverage'); this.post('Profiler.disable'); } catch { /* closing */ }
    this.session.disconnect();
  }
}

function bucket(n: number): number {
  if (n <= 3) return n;
  if (n <= 7) return 4;
  if (n <= 15) return 8;
  if (n <= 31) return 16;
  if (n <= 127) return 32;
  return 128;
}

/** Name of the error + first frame inside src/: one finding per distinct bug. */
export function signatureOf(err: unknown): string {
  const e = err as { name?: string; stack?: string; message?: string };
  const name = err instanceof Error ? `${e.name}` : typeof err;
  const frame = (e?.stack ?? '').split('\n').find((l) => l.includes('/src/')) ?? '';
  const m = /\/(src\/[^):]+):(\d+)/.exec(frame);
  const msg = (e?.message ?? String(err)).replace(/\d+/g, 'N').slice(0, 60);
  return m ? `${name} at ${m[1]}:${m[2]}` : `${name}: ${msg}`;
}

const WATCHDOG_SRC = `
const { workerData } = require('node:worker_threads');
const { writeFileSync } = require('node:fs');
const ctl = new Int32Array(workerData.sab, 0, 4);
const bytes = new Uint8Array(workerData.sab, 16);
let last = -1, since = Date.now();
setInterval(() => {
  const gen = Atomics.load(ctl, 0), busy = Atomics.load(ctl, 1);
  if (gen !== last || !busy) { last = gen; since = Date.now(); return; }
  if (Date.now() - since > workerData.limit) {
    const len = Atomics.load(ctl, 2);
    const input = Buffer.from(bytes.subarray(0, len));
    const f = workerData.out + '/hang-' + require('node:crypto').createHash('sha1').update(input).digest('hex').slice(0, 12) + '.bin';
    try { writeFileSync(f, input); } catch {}
    process._rawDebug('FUZZ HANG: ' + workerData.target + ': one input ran > ' + workerData.limit + ' ms; input saved to ' + f);
    process.kill(process.pid, 'SIGKILL');
  }
}, 100).unref();
`;

const WATCH_MAX = 1 << 20;

/** Runs one target; returns its statistics and findings. */
export async function fuzz(target: FuzzTarget, opts: FuzzOptions): Promise<FuzzStats> {
  const rng = new Rng(opts.seed);
  const maxLen = target.maxLen ?? 64 * 1024;
  const dict = target.dictionary ?? [];
  const slowMs = opts.slowMs ?? 1000;
  const findings = new Map<string, Finding>();
  if (opts.outDir) mkdirSync(opts.outDir, { recursive: true });
  await target.setup?.();
  const corpus: Buffer[] = (await target.seeds()).map((b) => (b.length > maxLen ? b.subarray(0, maxLen) : b));
  if (opts.outDir) {
    let names: string[] = [];
    try { names = readdirSync(join(opts.outDir, 'corpus')).sort(); } catch { /* first run */ }
    const have = new Set(corpus.map((b) => createHash('sha1').update(b).digest('hex')));
    for (const n of names) if (!have.has(n)) corpus.push(readFileSync(join(opts.outDir, 'corpus', n)));
  }
  if (corpus.length === 0) corpus.push(Buffer.alloc(0));
  const cov = opts.coverage === false ? undefined : new Coverage(target.coverage);

  // the watchdog: main publishes each input before running it
  const sab = new SharedArrayBuffer(16 + WATCH_MAX);
  const ctl = new Int32Array(sab, 0, 4);
  const bytes = new Uint8Array(sab, 16);
  let watchdog: Worker | undefined;
  if (opts.watchdogMs && opts.outDir) {
    watchdog = new Worker(WATCHDOG_SRC, { eval: true, workerData: { sab, limit: opts.watchdogMs, out: opts.outDir, target: target.name } });
    watchdog.unref();
  }

  let runs = 0;
  let confirming = false;
  const t0 = Date.now();
  const exec = async (input: Buffer): Promise<void> => {
    if (watchdog) {
      const n = Math.min(input.length, WATCH_MAX);
      bytes.set(input.subarray(0, n));
      Atomics.store(ctl, 2, n);
      Atomics.add(ctl, 0, 1);
      Atomics.store(ctl, 1, 1);
    }
    const s = performance.now();
    let err: unknown;
    let threw = false;
    try {
      await target.run(input);
    } catch (e) { err = e; threw = true; }
    const ms = performance.now() - s;
    if (watchdog) Atomics.store(ctl, 1, 0);
    runs++;
    let f: Finding | undefined;
    if (threw && !target.expected(err)) {
      const e = err as Error;
      // a target may name an earlier input as the cause (e.g. a resource leaked by a past session)
      const culprit = (err as { input?: unknown })?.input;
      f = { kind: 'crash', signature: signatureOf(err), message: String(e?.message ?? err), stack: String(e?.stack ?? ''), input: Buffer.isBuffer(culprit) ? culprit : input, ms };
    } else if (ms > slowMs && !confirming) {
      // GC pauses and a busy machine make single timings noisy: the best of two more runs counts
      confirming = true;
      let best = ms;
      try {
        for (let i = 0; i < 2 && best > slowMs; i++) {
          const s2 = performance.now();
          try { await target.run(input); } catch { /* timed only */ }
          best = Math.min(best, performance.now() - s2);
        }
      } finally { confirming = false; }
      if (best > slowMs) f = { kind: 'slow', signature: `slow input (> ${slowMs} ms)`, message: `one input took ${best.toFixed(0)} ms (best of 3 runs, with coverage counting on)`, stack: '', input, ms: best };
    }
    if (f && !findings.has(f.signature)) {
      findings.set(f.signature, f);
      if (opts.outDir) {
        const h = createHash('sha1').update(input).digest('hex').slice(0, 12);
        writeFileSync(join(opts.outDir, `${f.kind}-${h}.bin`), input);
        writeFileSync(join(opts.outDir, `${f.kind}-${h}.txt`), `${f.signature}\n${f.message}\n${f.stack}\n`);
      }
    }
  };

  const stats = (): FuzzStats => ({ target: target.name, runs, ms: Date.now() - t0, corpus: corpus.length,
    features: cov?.features.size ?? 0, blocks: cov?.blocks.size ?? 0, findings: [...findings.values()] });

  try {
    // the seeds first, one by one, so each seed's coverage counts
    for (const s of [...corpus]) {
      await exec(s);
      if (cov) cov.merge(cov.take());
    }
    let lastStatus = Date.now();
    const BATCH = 64;
    const seedRuns = runs;
    while ((Date.now() - t0 < opts.maxMs || runs - seedRuns < (opts.minMutations ?? 0)) && (opts.maxRuns === undefined || runs < opts.maxRuns)) {
      const batch: Buffer[] = [];
      for (let i = 0; i < BATCH; i++) batch.push(mutate(rng, rng.pick(corpus), corpus, dict, maxLen));
      for (const b of batch) await exec(b);
      if (cov) {
        const fs = cov.take();
        if (fs.some((f) => !cov.features.has(f))) {
          for (const b of batch) {
            await exec(b);
            if (cov.merge(cov.take())) corpus.push(b);
          }
        }
      }
      if (opts.onStatus && Date.now() - lastStatus >= (opts.statusEveryMs ?? 10_000)) {
        lastStatus = Date.now();
        opts.onStatus(stats());
      }
    }
  } finally {
    if (opts.outDir) {
      mkdirSync(join(opts.outDir, 'corpus'), { recursive: true });
      for (const b of corpus) writeFileSync(join(opts.outDir, 'corpus', createHash('sha1').update(b).digest('hex')), b);
    }
    cov?.close();
    if (watchdog) await watchdog.terminate();
    await target.teardown?.();
  }
  return stats();
}
