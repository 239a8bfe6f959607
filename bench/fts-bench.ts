/**
 * fts-bench - SEARCH TEXT / BODY on an N-message Maildir (default 10,000 in `npm run bench`;
 * the size with --messages 100000): Postern's imapd with its full-text index
 * (lib-fts, docs/fts.md) against real Dovecot 2.3 without an FTS plugin (it reads every
 * message) and, when Debian's dovecot-fts-xapian is installed, Dovecot with fts_xapian.
 *
 *   node bench/fts-bench.ts [--messages N] [--rounds N] [--no-xapian]
 *
 * The Maildir is written directly (cur/ files, no delivery): short mails of 40 words from a
 * 20,000-word vocabulary, one in ten base64-encoded, one in five with a text/plain attachment;
 * `zyxwvut` in one message in a thousand, `QUOKKA` in the Subject of one in five hundred.
 * Each server gets a copy; a first untimed SEARCH builds what each keeps (Postern's index is
 * made by that search: its time is printed as "index build"; Dovecot's index/cache, and the
 * Xapian database with fts_autoindex), then each SEARCH is timed `rounds` times on one logged-in
 * session per server, alternating, and medians are compared (ratio = other / Postern). The
 * hit counts must agree between all servers or the run fails.
 */
import '../src/util/uv-threadpool.ts';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, session, startDovecot, startPostern, type Client, type Server } from './imap-bench.ts';
import { warmStart } from './bench-proc.ts';

export interface FtsBenchOptions { messages: number; rounds: number; xapian: boolean; log?: (l: string) => void }
export interface FtsBenchRow { name: string; reference: string; other: number; postern: number; unit: string; ratio: number }

const XAPIAN_PLUGIN = '/usr/lib/dovecot/modules/lib21_fts_xapian_plugin.so';

/** A deterministic pseudo-random word list: syllables, 4-10 letters. */
function vocabulary(n: number): string[] {
  const syl = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vo', 'sel', 'dor', 'pin', 'gra', 'ust', 'bel', 'fe', 'qua', 'tri', 'ox', 'em', 'har', 'li'];
  let x = 12345;
  const rnd = () => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x >>> 8; };
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let w = '';
    const k = 2 + (rnd() % 3);
    for (let j = 0; j < k; j++) w += syl[rnd() % syl.length];
    out.push(w);
  }
  return out;
}

export function buildFtsMaildir(root: string, n: number): void {
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(root, d), { recursive: true });
  const vocab = vocabulary(20_000);
  let x = 99;
  const rnd = () => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x >>> 8; };
  const words = (k: number) => Array.from({ length: k }, () => vocab[rnd() % vocab.length]).join(' ');
  for (let i = 1; i <= n; i++) {
    let text = `${words(20)}\n${words(20)}\n`;
    if (i % 1000 === 7) text += 'the zyxwvut marker\n';
    const subject = i % 500 === 3 ? `QUOKKA sighting ${i}` : `about ${words(3)}`;
    let body: string;
    let ctype: string;
    if (i % 5 === 0) {
      ctype = `multipart/mixed; boundary="b${i}"`;
      body = `--b${i}\nContent-Type: text/plain; charset=utf-8\n\n${text}--b${i}\nContent-Type: text/plain; name="notes.txt"\nContent-Disposition: attachment; filename="notes.txt"\n\n${words(15)}\n--b${i}--\n`;
    } else if (i % 10 === 1) {
      ctype = 'text/plain; charset=utf-8\nContent-Transfer-Encoding: base64';
      body = Buffer.from(text).toString('base64').replace(/.{76}/g, '$&\n') + '\n';
    } else {
      ctype = 'text/plain; charset=utf-8';
      body = text;
    }
    const msg = `Return-Path: <s${i}@example.org>\nFrom: Sender ${i} <s${i}@example.org>\nTo: User <a@x.test>\n` +
      `Subject: ${subject}\nDate: Mon, 2 Jan 2023 10:${String(i % 60).padStart(2, '0')}:00 +0000\n` +
      `Message-ID: <${i}@example.org>\nMIME-Version: 1.0\nContent-Type: ${ctype}\n\n${body}`;
    const size = Buffer.byteLength(msg);
    const lines = msg.split('\n').length - 1;
    writeFileSync(join(root, 'cur', `${1672653600 + i}.M${i}P1Q1.bench,S=${size},W=${size + lines}:2,`), msg);
  }
}

const SEARCHES = ['UID SEARCH TEXT zyxwvut', 'UID SEARCH BODY zyxwvut', 'UID SEARCH TEXT quokka', 'UID SEARCH BODY "marker"'];

function hits(out: string): number {
  const m = /\* SEARCH([ \d]*)\r\n/.exec(out);
  return m ? m[1]!.trim().split(/\s+/).filter(Boolean).length : -1;
}

interface Side { name: string; srv: Server; c: Client }

export async function runFtsBench(o: FtsBenchOptions): Promise<FtsBenchRow[]> {
  const say = o.log ?? ((l: string) => process.stderr.write(`fts-bench: ${l}\n`));
  const work = mkdtempSync(join(tmpdir(), 'postern-ftsbench-'));
  const src = join(work, 'Maildir');
  const sides: Side[] = [];
  try {
    let t = performance.now();
    buildFtsMaildir(src, o.messages);
    say(`built ${o.messages} messages in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const dc = await startDovecot(src);
    sides.push({ name: 'Dovecot (no FTS)', srv: dc, c: await session(dc.port) });
    if (o.xapian && existsSync(XAPIAN_PLUGIN)) {
      const dx = await startDovecot(src, `plugin {
  fts = xapian
  fts_xapian = partial=3 full=20 verbose=0
  fts_autoindex = yes
  fts_enforced = yes
}
`, 'fts fts_xapian');
      sides.push({ name: 'Dovecot + fts_xapian', srv: dx, c: await session(dx.port) });
    } else if (o.xapian) say(`no ${XAPIAN_PLUGIN} (Debian package dovecot-fts-xapian): Dovecot with Xapian skipped`);
    const pst = await warmStart(() => startPostern(src), (s) => s.stop());
    const P: Side = { name: 'Postern', srv: pst, c: await session(pst.port) };
    sides.push(P);
    const rows: FtsBenchRow[] = [];
    for (const s of sides) {
      await s.c.cmd('EXAMINE INBOX');
      const rss0 = s.srv.rssKb();
      t = performance.now();
      const n = hits(await s.c.cmd(SEARCHES[0]!));
      const ms = performance.now() - t;
      say(`${s.name}: first search (builds indexes) ${ms.toFixed(0)} ms, ${n} hits`);
      if (s !== P) continue;
      rows.push({ name: 'index build (first SEARCH TEXT)', reference: 'none', other: 0, postern: ms, unit: 'ms', ratio: 0 });
      // the index: its file, and what the server process grew by while building and loading it
      const file = pst.maildir ? join(pst.maildir, 'postern-fts') : '';
      const bytes = file && existsSync(file) ? statSync(file).size : 0;
      if (bytes > 0) rows.push({ name: 'index file, bytes per message', reference: 'none', other: 0, postern: bytes / o.messages, unit: 'B', ratio: 0 });
      rows.push({ name: 'server memory after the first search, KiB', reference: 'none', other: 0, postern: s.srv.rssKb() - rss0, unit: 'KiB', ratio: 0 });
    }
    const rssBefore = P.srv.rssKb();
    for (const q of SEARCHES) {
      const times = new Map<Side, number[]>(sides.map((s) => [s, []]));
      const counts = new Map<Side, number>();
      for (const s of sides) counts.set(s, hits(await s.c.cmd(q)));   // warm-up
      const expect = counts.get(P)!;
      for (const [s, n] of counts) if (n !== expect) throw new Error(`${q}: ${s.name} found ${n}, Postern ${expect}`);
      for (let r = 0; r < o.rounds; r++) {
        const order = r % 2 === 0 ? sides : [...sides].reverse();
        for (const s of order) {
          const t0 = performance.now();
          await s.c.cmd(q);
          times.get(s)!.push(performance.now() - t0);
        }
      }
      const p = median(times.get(P)!);
      for (const s of sides) {
        if (s === P) continue;
        const d = median(times.get(s)!);
        rows.push({ name: `${q} (${expect} hits)`, reference: s.name, other: d, postern: p, unit: 'ms', ratio: d / p });
        say(`${q}: ${s.name} ${d.toFixed(1)} ms, Postern ${p.toFixed(1)} ms, ${(d / p).toFixed(1)}x`);
      }
    }
    rows.push({ name: 'server memory growth over the timed searches, KiB', reference: 'none', other: 0, postern: P.srv.rssKb() - rssBefore, unit: 'KiB', ratio: 0 });
    return rows;
  } finally {
    for (const s of sides) { s.c.close(); await s.srv.stop().catch(() => {}); }
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const o: FtsBenchOptions = { messages: 10_000, rounds: 5, xapian: true };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === '--messages' || k === '--rounds') o[k.slice(2) as 'messages' | 'rounds'] = Number(argv[++i]);
    else if (k === '--no-xapian') o.xapian = false;
    else { console.error('usage: node bench/fts-bench.ts [--messages N] [--rounds N] [--no-xapian]'); process.exit(64); }
  }
  const rows = await runFtsBench(o);
  console.log(`SEARCH on ${o.messages} messages, median of ${o.rounds} rounds (ratio = other / Postern: > 1 Postern faster)`);
  for (const r of rows) {
    if (r.reference === 'none') { console.log(`${r.name.padEnd(52)} Postern ${r.postern.toFixed(0)} ${r.unit}`); continue; }
    console.log(`${r.name.padEnd(44)} ${r.reference.padEnd(22)} ${r.other.toFixed(1).padStart(9)} ms  Postern ${r.postern.toFixed(1).padStart(8)} ms  ${r.ratio.toFixed(1)}x`);
  }
}
