/**
 * scale-mailbox - one large mailbox (issue 18: "a 1,000,000-message mailbox"), Postern's imapd
 * against real Dovecot 2.3 (the servers of imap-bench.ts), at one size; bench/scale-bench.ts runs
 * it at two sizes and prints the growth.
 *
 * The Maildir is written straight into cur/ (imap-bench.ts buildMaildir: one file per message,
 * written one at a time, so memory stays bounded whatever N), then copied to each server.
 * Each server gets one untimed warm-up session (Dovecot builds its index and cache on the first
 * SELECT, Postern its UID list), whose time is reported as "first SELECT"; then `rounds`
 * alternating sessions each time, over one connection:
 *   SELECT INBOX                                   (what every client does first)
 *   NOOP, 20 times (median)                        (any command on a mailbox nothing changed)
 *   FETCH N-49:N (UID FLAGS ENVELOPE BODY.PEEK[])  (the newest 50, what a phone shows)
 *   STORE N-49:N +FLAGS.SILENT (\Flagged)          (flag changes on the newest 50)
 *   UID SEARCH FLAGGED                             (answerable from flags alone)
 * and the memory of the server's processes is read while the last session is still selected
 * (Postern: its one process; Dovecot: its imap and imap-login processes).
 * SELECT, FETCH and STORE of 50 should cost the same at any N; SEARCH FLAGGED looks at every
 * message's flags, so some growth is expected, at a small cost per message.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildMaildir, session, startDovecot, startPostern, type Server } from './imap-bench.ts';
import { warmStart } from './bench-proc.ts';
import { median, type Figure } from './scale-growth.ts';

interface Times { firstSelect: number; select: number[]; noop: number[]; fetch: number[]; store: number[]; search: number[]; rssMB: number }

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const NOOPS = 20;

async function oneSession(srv: Server, n: number, t: Times, last: boolean): Promise<void> {
  const c = await session(srv.port);
  try {
    t.select.push(await timed(() => c.cmd('SELECT INBOX')));
    // a command on an unchanged mailbox: the median of NOOPS, each a full round trip
    const noops: number[] = [];
    for (let i = 0; i < NOOPS; i++) noops.push(await timed(() => c.cmd('NOOP')));
    t.noop.push(median(noops));
    const newest = `${Math.max(1, n - 49)}:${n}`;
    t.fetch.push(await timed(() => c.cmd(`FETCH ${newest} (UID FLAGS ENVELOPE BODY.PEEK[])`)));
    t.store.push(await timed(() => c.cmd(`STORE ${newest} +FLAGS.SILENT (\\Flagged)`)));
    t.search.push(await timed(async () => {
      const out = await c.cmd('UID SEARCH FLAGGED');
      const hits = (/\* SEARCH([ \d]*)\r\n/.exec(out)?.[1] ?? '').trim().split(/ +/).filter(Boolean).length;
      if (hits !== Math.min(50, n)) throw new Error(`SEARCH FLAGGED found ${hits}, expected ${Math.min(50, n)}`);
    }));
    await c.cmd(`STORE ${newest} -FLAGS.SILENT (\\Flagged)`);
    if (last) { await new Promise((r) => setTimeout(r, 300)); t.rssMB = srv.rssKb() / 1024; }
    await c.cmd('LOGOUT').catch(() => {});
  } finally {
    c.close();
  }
}

/** The mailbox scenario at one size: N messages, `rounds` sessions per server, alternating. */
export async function measureMailbox(n: number, rounds: number, log: (l: string) => void): Promise<Figure[]> {
  const work = mkdtempSync(join(tmpdir(), 'postern-scalebox-'));
  let dc: Server | undefined;
  let pst: Server | undefined;
  try {
    const t0 = performance.now();
    const src = join(work, 'Maildir');
    buildMaildir(src, n);
    log(`mailbox ${n}: Maildir written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    dc = await startDovecot(src);
    pst = await warmStart(() => startPostern(src), (s) => s.stop());
    const td: Times = { firstSelect: 0, select: [], noop: [], fetch: [], store: [], search: [], rssMB: 0 };
    const tp: Times = { firstSelect: 0, select: [], noop: [], fetch: [], store: [], search: [], rssMB: 0 };
    for (const [srv, t] of [[dc, td], [pst, tp]] as const) {
      const c = await session(srv.port);
      t.firstSelect = await timed(() => c.cmd('SELECT INBOX'));
      c.close();
    }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? [[pst, tp], [dc, td]] as const : [[dc, td], [pst, tp]] as const;
      for (const [srv, t] of order) await oneSession(srv, n, t, r === rounds - 1);
    }
    log(`mailbox ${n}: dovecot SELECT ${median(td.select).toFixed(1)} ms, postern ${median(tp.select).toFixed(1)} ms`);
    const f = (metric: string, d: number, p: number, unit = 'ms', note?: string): Figure =>
      ({ metric, unit, better: 'lower', reference: d, postern: p, ...(note ? { note } : {}) });
    return [
      f('first SELECT (index build)', td.firstSelect, tp.firstSelect, 'ms', 'Dovecot builds dovecot.index + cache; Postern its UID list (untimed warm-up otherwise)'),
      f('SELECT INBOX', median(td.select), median(tp.select)),
      f('NOOP on the selected mailbox (nothing changed)', median(td.noop), median(tp.noop)),
      f('FETCH newest 50 (ENVELOPE + body)', median(td.fetch), median(tp.fetch)),
      f('STORE +FLAGS on newest 50', median(td.store), median(tp.store)),
      f('UID SEARCH FLAGGED', median(td.search), median(tp.search)),
      f('memory, server RSS with the mailbox selected', td.rssMB, tp.rssMB, 'MB', 'Dovecot: its imap + imap-login processes; Postern: its one imapd process'),
    ];
  } finally {
    await pst?.stop().catch(() => {});
    await dc?.stop().catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
}
