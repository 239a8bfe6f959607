/**
 * fsync-options - what does it cost to make N small files durable on THIS machine's disk, and
 * which way of flushing them is cheapest? (issue 18 item 1: group commit for file data; the
 * choice and the figures are in docs/durability.md.)
 *
 *   node bench/fsync-options.ts [--dir DIR] [--writers 1,4,20] [--files 400] [--size 2048] [--rounds 3]
 *                               [--ways serial,concurrent,...] [--mailboxes 1]
 *
 * Every writer creates its files one after another (open O_CREAT|O_EXCL, one write, make it
 * durable, close), as an SMTP session commits its queue files or a delivery its Maildir files;
 * `--writers` of them run at once. The ways of making a file durable:
 *
 *   serial      one file at a time in the whole process: write, fsync, next (each pays alone,
 *               as a single Postfix cleanup process does)
 *   concurrent  every writer fsyncs its own file as soon as it is written, from libuv's thread
 *               pool (UV_THREADPOOL_SIZE=64, as Postern sets it): N fsyncs in flight at once and
 *               the block layer free to merge their cache flushes (what Postern did before)
 *   batched     group commit: a file written while no flush runs is flushed at once; files
 *               written while a batch is in flight wait for it, then are all fsync'd together
 *               (issued in parallel) and all answered when the last one returns
 *   batched-fdatasync  the same with fdatasync(2)
 *   syncfs      group commit by syncfs(2) of the whole file system (`sync -f DIR`, coreutils:
 *               Node has no syncfs and a native helper is not wanted) — one cache flush per
 *               batch, but it writes every dirty page of every process on that file system
 *   wal         a write-ahead log: each file is written without fsync and its bytes appended to
 *               one preallocated log file, which is fdatasync'd once per batch (recovery would
 *               recreate the files from the log)
 *   maildir-dirsync   a Maildir delivery into one of --mailboxes mailboxes: tmp/, fsync, rename
 *               into new/, then new/ fsync'd through util/dir-sync.ts (one fsync shared by the
 *               renames made before it started; what Postern does)
 *   maildir-dirfsync  the same with every delivery fsyncing new/ itself, at once
 *
 * Printed per way and writer count: files/s, the median and 95th percentile latency from the
 * file's open to "durable" (what the client waits for), and the disk's cache flushes per file
 * (/sys/block/DEV/stat; a shared disk counts its other users' flushes too). Run it on the file system the
 * spool is on (--dir). The machine is shared: run the rounds alternating (they are) and read
 * the ratios, not the absolute figures.
 */
import '../src/util/uv-threadpool.ts';
import { execFile } from 'node:child_process';
import { closeSync, fdatasync, fsync, mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeSync, constants as C } from 'node:fs';
import { basename, join } from 'node:path';
import { syncDirGrouped } from '../src/util/dir-sync.ts';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    dir: { type: 'string', default: '/var/tmp' },
    writers: { type: 'string', default: '1,4,20' },
    files: { type: 'string', default: '400' },
    size: { type: 'string', default: '2048' },
    rounds: { type: 'string', default: '3' },
    ways: { type: 'string', default: 'serial,concurrent,batched,batched-fdatasync,syncfs,wal' },
    mailboxes: { type: 'string', default: '1' },
  },
});
const WRITERS = opt.writers!.split(',').map(Number);
const FILES = Number(opt.files);
const SIZE = Number(opt.size);
const ROUNDS = Number(opt.rounds);
const WAYS = opt.ways!.split(',');
const MAILBOXES = Number(opt.mailboxes);
const payload = Buffer.alloc(SIZE, 'x');

/**
 * Cache flushes the disk under --dir has completed (/sys/block/DEV/stat field 16, Linux 5.5+):
 * how many device flushes the way cost per file. The disk is shared, so others' count too.
 */
function flushCounter(dir: string): () => number {
  try {
    const dev = statSync(realpathSync(dir)).dev;
    const sys = realpathSync(`/sys/dev/block/${Math.floor(dev / 256)}:${dev % 256}`);
    const stat = readFileSync(join(sys, 'stat'), 'utf8').trim().split(/\s+/).length >= 17 ? join(sys, 'stat') : join(sys, '..', 'stat');
    return () => Number(readFileSync(stat, 'utf8').trim().split(/\s+/)[15] ?? NaN);
  } catch { return () => NaN; }
}
const flushes = flushCounter(opt.dir!);

const fsyncP = (fd: number) => new Promise<void>((res, rej) => fsync(fd, (e) => (e ? rej(e) : res())));
const fdatasyncP = (fd: number) => new Promise<void>((res, rej) => fdatasync(fd, (e) => (e ? rej(e) : res())));
const syncfsP = (dir: string) => new Promise<void>((res, rej) => execFile('sync', ['-f', dir], (e) => (e ? rej(e) : res())));

/** A group committer: `flushAll(items)` makes a batch durable; one batch in flight at a time. */
function groupCommit<T>(flushAll: (items: T[]) => Promise<void>): (item: T) => Promise<void> {
  let waiting: { item: T; done: () => void; fail: (e: unknown) => void }[] = [];
  let running = false;
  const run = async (): Promise<void> => {
    running = true;
    while (waiting.length) {
      const batch = waiting; waiting = [];
      try { await flushAll(batch.map((w) => w.item)); for (const w of batch) w.done(); } catch (e) { for (const w of batch) w.fail(e); }
    }
    running = false;
  };
  return (item) => new Promise<void>((done, fail) => { waiting.push({ item, done, fail }); if (!running) void run(); });
}

interface Way {
  durable(fd: number, buf: Buffer, path: string): Promise<void>;
  close(): void;
  /** Where file i is created (default DIR/f/i). */
  pathFor?(i: number): string;
}

/** Maildir delivery: file i into mailbox i % --mailboxes: tmp/, fsync, rename into new/, then new/ made durable by `syncDir`. */
function maildirWay(dir: string, syncDir: (d: string) => Promise<void>): Way {
  for (let m = 0; m < MAILBOXES; m++) for (const sub of ['tmp', 'new']) mkdirSync(join(dir, `m${m}`, sub), { recursive: true });
  return {
    pathFor: (i) => join(dir, `m${i % MAILBOXES}`, 'tmp', String(i)),
    durable: async (fd, _buf, path) => {
      await fsyncP(fd);
      const newDir = join(path, '..', '..', 'new');
      renameSync(path, join(newDir, basename(path)));
      await syncDir(newDir);
    },
    close() {},
  };
}
const fsyncDirP = async (d: string) => { const fd = openSync(d, C.O_RDONLY | C.O_DIRECTORY); try { await fsyncP(fd); } finally { closeSync(fd); } };

async function makeWay(name: string, dir: string): Promise<Way> {
  switch (name) {
    case 'serial': {
      let chain = Promise.resolve();
      return { durable: (fd) => (chain = chain.then(() => fsyncP(fd))), close() {} };
    }
    case 'concurrent': return { durable: (fd) => fsyncP(fd), close() {} };
    case 'batched': { const g = groupCommit<number>((fds) => Promise.all(fds.map(fsyncP)).then(() => {})); return { durable: (fd) => g(fd), close() {} }; }
    case 'batched-fdatasync': { const g = groupCommit<number>((fds) => Promise.all(fds.map(fdatasyncP)).then(() => {})); return { durable: (fd) => g(fd), close() {} }; }
    case 'syncfs': { const g = groupCommit<number>(() => syncfsP(dir)); return { durable: (fd) => g(fd), close() {} }; }
    case 'maildir-dirsync': return maildirWay(dir, (d) => syncDirGrouped(d));
    case 'maildir-dirfsync': return maildirWay(dir, fsyncDirP);
    case 'wal': {
      const log = openSync(join(dir, 'wal.log'), C.O_CREAT | C.O_RDWR, 0o600);
      // preallocated and synced once, so that fdatasync writes only the appended data
      const cap = 64 * 1024 * 1024;
      writeSync(log, Buffer.alloc(1), 0, 1, cap - 1);
      for (let at = 0; at < cap; at += 1 << 20) writeSync(log, Buffer.alloc(1 << 20), 0, 1 << 20, at);
      await fsyncP(log);
      let pos = 0;
      const g = groupCommit<void>(() => fdatasyncP(log));
      return {
        durable: (_fd, buf) => { writeSync(log, buf, 0, buf.length, pos % cap); pos += buf.length; return g(); },
        close: () => closeSync(log),
      };
    }
  }
  throw new Error(`unknown way ${name}`);
}

async function round(way: string, writers: number): Promise<{ rate: number; p50: number; p95: number; fpf: number }> {
  const dir = mkdtempSync(join(opt.dir!, 'fsync-options-'));
  try {
    const w = await makeWay(way, dir);
    mkdirSync(join(dir, 'f'));
    const lat: number[] = [];
    let next = 0;
    const f0 = flushes();
    const t0 = performance.now();
    const writer = async (): Promise<void> => {
      while (next < FILES) {
        const i = next++;
        const s = performance.now();
        const path = w.pathFor ? w.pathFor(i) : join(dir, 'f', String(i));
        const fd = openSync(path, C.O_CREAT | C.O_EXCL | C.O_WRONLY, 0o600);
        writeSync(fd, payload, 0, payload.length, 0);
        await w.durable(fd, payload, path);
        closeSync(fd);
        lat.push(performance.now() - s);
      }
    };
    await Promise.all(Array.from({ length: writers }, writer));
    const secs = (performance.now() - t0) / 1000;
    const fpf = (flushes() - f0) / FILES;
    w.close();
    lat.sort((a, b) => a - b);
    return { rate: FILES / secs, p50: lat[Math.floor(lat.length / 2)]!, p95: lat[Math.floor(lat.length * 0.95)]!, fpf };
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

const results = new Map<string, { rate: number[]; p50: number[]; p95: number[]; fpf: number[] }>();
for (let r = 0; r < ROUNDS; r++) {
  for (const n of WRITERS) {
    // alternate the order of the ways from round to round (noisy neighbours hit all alike)
    const ways = r % 2 ? [...WAYS].reverse() : WAYS;
    for (const way of ways) {
      const x = await round(way, n);
      const k = `${way}\t${n}`;
      const e = results.get(k) ?? { rate: [], p50: [], p95: [], fpf: [] };
      e.rate.push(x.rate); e.p50.push(x.p50); e.p95.push(x.p95); e.fpf.push(x.fpf);
      results.set(k, e);
      process.stderr.write(`round ${r + 1} ${way} writers=${n}: ${x.rate.toFixed(0)} files/s p50 ${x.p50.toFixed(2)} ms, ${x.fpf.toFixed(2)} disk flushes/file\n`);
    }
  }
}
console.log(`fsync options, ${FILES} files of ${SIZE} B per run, ${ROUNDS} rounds, medians, dir ${opt.dir}`);
console.log('way                 writers   files/s   p50 ms   p95 ms  flushes/file  vs concurrent');
for (const n of WRITERS) {
  const base = median(results.get(`concurrent\t${n}`)?.rate ?? [NaN]);
  for (const way of WAYS) {
    const e = results.get(`${way}\t${n}`)!;
    const rate = median(e.rate);
    console.log(`${way.padEnd(20)}${String(n).padStart(7)}${rate.toFixed(0).padStart(10)}${median(e.p50).toFixed(2).padStart(9)}${median(e.p95).toFixed(2).padStart(9)}${median(e.fpf).toFixed(2).padStart(14)}${(rate / base).toFixed(2).padStart(14)}x`);
  }
}
