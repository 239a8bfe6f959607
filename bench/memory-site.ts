/**
 * memory-site - the memory of a whole mail site, side by side: real Postfix 3.7 + real Dovecot
 * 2.3 both running (as a site runs them: Postfix receiving and delivering with virtual(8),
 * Dovecot serving IMAP, POP3 and LMTP) against the whole Postern system started as
 * `postern start` starts it with no configuration (the embedded default: SMTP, submission,
 * IMAP, POP3, LMTP, ManageSieve, qmgr and the delivery agents). The reference figure is the PSS
 * of Postfix's process tree PLUS Dovecot's; Postern's is its one process (its threads
 * included). docs/memory.md.
 *
 *   node bench/memory-site.ts [--rounds N] [--messages N] [--settle SECONDS]
 *   npm run bench -- memory-site
 *
 * Phases, each sampled on both sides (PSS, from /proc/PID/smaps_rollup of every process of the
 * tree, bench-proc.ts):
 *   idle        after start and `settle` seconds without a client (both systems are started
 *               before either is sampled)
 *   smtp        right after N 2 KB messages (smtp-source, 20 sessions) are in the recipient's
 *               Maildir: Postfix smtpd → cleanup → qmgr → virtual; Postern smtpd → ... → virtual
 *   lmtp        right after N 2 KB messages over LMTP (smtp-source -L, 10 sessions) are in the
 *               Maildir: Dovecot lmtp; Postern lmtpd
 *   imap        right after 10 IMAP clients (Python imaplib) each LOGIN, SELECT INBOX, FETCH
 *               1:* (FLAGS RFC822.SIZE ENVELOPE), the newest 50 bodies, LOGOUT: Dovecot imap;
 *               Postern imapd
 *   idle-after  `settle` seconds after the last load
 * The loads of a round run alternately (reference first in odd rounds, Postern first in even
 * ones); medians over the rounds. Each side's Maildirs are emptied between rounds.
 */
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { RealDovecot } from '../test/harness/real-dovecot.ts';
import { RealPostfix } from '../test/harness/real-postfix.ts';
import { PosternSystem } from '../test/harness/postern-system.ts';
import { freePort } from '../test/harness/free-port.ts';
import { treeMemory, timedRun } from './bench-proc.ts';
import { Cleanup, row, type BenchOptions, type ExternalScenario, type ResultRow } from './bench-scenario.ts';
import { writeSite, BENCH_SENDER, SITE_DOMAIN } from './bench-site.ts';
import { postfixMasterPid } from './e2e-bench.ts';

const SMTP_SOURCE = '/usr/sbin/smtp-source';
const MB = 1024 * 1024;
const VMAIL_UID = 5000;
const DOVECOT_USER = 'bench@x.test';
const POSTERN_USER = 'postmaster@example.test';
const POSTFIX_USER = `user1@${SITE_DOMAIN}`;
export const PHASES = ['idle', 'smtp', 'lmtp', 'imap', 'idle-after'] as const;
export type Phase = (typeof PHASES)[number];
const PHASE_METRIC: Record<Phase, string> = {
  idle: 'site memory at idle after start, PSS',
  smtp: 'site memory after SMTP load (Maildir), PSS',
  lmtp: 'site memory after LMTP load, PSS',
  imap: 'site memory after IMAP load (10 clients), PSS',
  'idle-after': 'site memory idle again after the loads, PSS',
};

export interface SiteMemoryOptions { rounds?: number; messages?: number; settleSeconds?: number; log?: (l: string) => void }
export type SiteMemory = Record<Phase, { reference: number[]; postern: number[]; referenceParts: string[] }>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function countMail(maildir: string): number {
  let n = 0;
  for (const sub of ['new', 'cur']) {
    try { n += readdirSync(join(maildir, sub)).length; } catch { /* not created yet */ }
  }
  return n;
}

function emptyMail(maildir: string): void {
  for (const sub of ['new', 'cur']) {
    let names: string[];
    try { names = readdirSync(join(maildir, sub)); } catch { continue; }
    for (const f of names) rmSync(join(maildir, sub, f), { force: true });
  }
}

async function waitMail(maildir: string, want: number, what: string): Promise<void> {
  const end = Date.now() + 180_000;
  for (;;) {
    const n = countMail(maildir);
    if (n >= want) return;
    if (Date.now() > end) throw new Error(`${what}: only ${n} of ${want} messages in ${maildir} after 180 s`);
    await sleep(50);
  }
}

async function source(args: string[]): Promise<void> {
  const r = await timedRun(SMTP_SOURCE, args, 600_000);
  if (r.code !== 0 || /fatal|error/i.test(r.stderr)) throw new Error(`smtp-source ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim().slice(0, 300)}`);
}

/** 10 Python imaplib clients at once: LOGIN, SELECT, FETCH 1:* ENVELOPE, 50 newest bodies, LOGOUT. */
async function imapLoad(port: number, user: string, pass: string): Promise<void> {
  const py = `
import imaplib, sys, threading
errs = []
def one():
    try:
        m = imaplib.IMAP4('127.0.0.1', ${port}, timeout=120)
        m.login(sys.argv[1], sys.argv[2])
        typ, d = m.select('INBOX')
        n = int(d[0])
        if n:
            m.fetch('1:*', '(FLAGS RFC822.SIZE ENVELOPE)')
            m.fetch('%d:*' % max(1, n - 49), '(BODY.PEEK[])')
        m.logout()
    except Exception as e:
        errs.append(repr(e))
ts = [threading.Thread(target=one) for _ in range(10)]
[t.start() for t in ts]; [t.join() for t in ts]
if errs: print(errs[0]); sys.exit(1)
`;
  const r = await timedRun('python3', ['-c', py, user, pass], 600_000);
  if (r.code !== 0) throw new Error(`IMAP load on port ${port}: ${r.stdout}${r.stderr}`.slice(0, 500));
}

interface SiteSide {
  pss(): { pss: number; parts: string };
  smtp(n: number): Promise<void>;
  lmtp(n: number): Promise<void>;
  imap(): Promise<void>;
  empty(): void;
}

async function startReference(dir: string, cleanup: Cleanup, log: (l: string) => void): Promise<SiteSide> {
  const site = writeSite(join(dir, 'site-postfix'));
  const base = join(site.dir, 'vhosts');
  chownSync(base, VMAIL_UID, VMAIL_UID);
  const port = await freePort();
  const pf = await RealPostfix.start({ mainCf: site.mainCf, masterCf: `127.0.0.1:${port} inet n - n - - smtpd` });
  cleanup.add('real postfix', () => pf.stop());
  const dc = await RealDovecot.start({ protocols: ['imap', 'pop3', 'lmtp'], users: [{ user: DOVECOT_USER, pass: 'pw' }] });
  cleanup.add('real dovecot', () => dc.stop());
  const pidFile = join(dc.dir, 'run', 'master.pid');
  for (let i = 0; i < 200 && !existsSync(pidFile); i++) await sleep(50);   // written once the master runs
  const dcPid = () => Number(readFileSync(pidFile, 'utf8').trim());
  const pfMail = join(base, SITE_DOMAIN, 'user1');
  const dcMail = dc.maildir(DOVECOT_USER);
  log(`  reference: Postfix on 127.0.0.1:${port} (master pid ${postfixMasterPid(pf)}), Dovecot imap ${dc.ports.imap} lmtp ${dc.ports.lmtp} (master pid ${dcPid()})`);
  return {
    pss() {
      const a = treeMemory(postfixMasterPid(pf));
      const b = treeMemory(dcPid());
      return { pss: (a.pss + b.pss) / MB, parts: `Postfix ${(a.pss / MB).toFixed(1)} MB in ${a.processes} + Dovecot ${(b.pss / MB).toFixed(1)} MB in ${b.processes}` };
    },
    async smtp(n) {
      const before = countMail(pfMail);
      await source(['-s', '20', '-m', String(n), '-l', '2048', '-f', BENCH_SENDER, '-t', POSTFIX_USER, `127.0.0.1:${port}`]);
      await waitMail(pfMail, before + n, 'Postfix');
    },
    async lmtp(n) {
      const before = countMail(dcMail);
      await source(['-L', '-s', '10', '-m', String(n), '-l', '2048', '-f', BENCH_SENDER, '-t', DOVECOT_USER, `127.0.0.1:${dc.ports.lmtp}`]);
      await waitMail(dcMail, before + n, 'Dovecot lmtp');
    },
    imap: () => imapLoad(dc.ports.imap!, DOVECOT_USER, 'pw'),
    empty() { emptyMail(pfMail); emptyMail(dcMail); },
  };
}

async function startPostern(cleanup: Cleanup, log: (l: string) => void): Promise<SiteSide> {
  // Started once and stopped before the measured start, as an administrator's second start finds
  // Node's compile cache warm (bench-proc.ts warmStart).
  await (await PosternSystem.start()).stop();
  const sys = await PosternSystem.start();
  cleanup.add('postern system', () => sys.stop());
  const mail = sys.maildir(POSTERN_USER);
  log(`  Postern: postern start (embedded default), pid ${sys.pid}, smtp ${sys.ports.smtp} lmtp ${sys.ports.lmtp} imap ${sys.ports.imap}`);
  return {
    pss() {
      const m = treeMemory(sys.pid!);
      return { pss: m.pss / MB, parts: `${m.processes} process` };
    },
    async smtp(n) {
      const before = countMail(mail);
      await source(['-s', '20', '-m', String(n), '-l', '2048', '-f', BENCH_SENDER, '-t', POSTERN_USER, `127.0.0.1:${sys.ports.smtp}`]);
      await waitMail(mail, before + n, 'Postern');
    },
    async lmtp(n) {
      const before = countMail(mail);
      await source(['-L', '-s', '10', '-m', String(n), '-l', '2048', '-f', BENCH_SENDER, '-t', POSTERN_USER, `127.0.0.1:${sys.ports.lmtp}`]);
      await waitMail(mail, before + n, 'Postern lmtpd');
    },
    imap: () => imapLoad(sys.ports.imap, POSTERN_USER, sys.password),
    empty() { emptyMail(mail); },
  };
}

/** Run the phases (see the header); PSS in MB per phase and side, one sample per round. */
export async function runSiteMemory(o: SiteMemoryOptions = {}): Promise<SiteMemory> {
  const rounds = o.rounds ?? 3;
  const messages = o.messages ?? 1000;
  const settle = (o.settleSeconds ?? 15) * 1000;
  const log = o.log ?? (() => {});
  const why = RealPostfix.unavailable() ?? RealDovecot.unavailable();
  if (why) throw new Error(why);
  const cleanup = new Cleanup();
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-memsite-'));
  chmodSync(dir, 0o755);   // Postfix's virtual(8) opens the tables below it without root privileges
  cleanup.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  const out = Object.fromEntries(PHASES.map((p) => [p, { reference: [], postern: [], referenceParts: [] }])) as unknown as SiteMemory;
  try {
    const ref = await startReference(dir, cleanup, log);
    const pst = await startPostern(cleanup, log);
    const sample = (phase: Phase, who: 'reference' | 'postern') => {
      const m = (who === 'reference' ? ref : pst).pss();
      out[phase][who].push(m.pss);
      if (who === 'reference') out[phase].referenceParts.push(m.parts);
      log(`  ${phase.padEnd(10)} ${who.padEnd(9)} PSS ${m.pss.toFixed(1)} MB (${m.parts})`);
    };
    await sleep(settle);
    sample('idle', 'reference');
    sample('idle', 'postern');
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (['reference', 'postern'] as const) : (['postern', 'reference'] as const);
      for (const [phase, run] of [['smtp', (s: SiteSide) => s.smtp(messages)], ['lmtp', (s: SiteSide) => s.lmtp(messages)], ['imap', (s: SiteSide) => s.imap()]] as const) {
        for (const who of order) {
          await run(who === 'reference' ? ref : pst);
          sample(phase, who);
        }
      }
      await sleep(settle);
      sample('idle-after', 'reference');
      sample('idle-after', 'postern');
      ref.empty();
      pst.empty();
    }
  } finally {
    await cleanup.runAll(log);
  }
  return out;
}

export function siteMemoryRows(m: SiteMemory): ResultRow[] {
  return PHASES.map((p) => row('memory-site', PHASE_METRIC[p], 'MB', 'lower', m[p].reference, m[p].postern,
    `reference = Postfix + Dovecot trees (${m[p].referenceParts[0] ?? ''})`));
}

export const memorySiteScenario: ExternalScenario = {
  kind: 'external', name: 'memory-site', reference: 'Postfix 3.7 + Dovecot 2.3, both running',
  description: 'memory of a whole site: Postfix + Dovecot process trees together vs postern start (embedded default), at idle and after SMTP, LMTP and IMAP loads (docs/memory.md)',
  async run(o: BenchOptions) {
    return siteMemoryRows(await runSiteMemory({ rounds: o.rounds, messages: o.messages || 1000, log: o.log }));
  },
};

if (import.meta.main) {
  const arg = (n: string, d: number) => { const i = process.argv.indexOf(n); return i >= 0 ? Number(process.argv[i + 1]) : d; };
  const m = await runSiteMemory({ rounds: arg('--rounds', 3), messages: arg('--messages', 1000), settleSeconds: arg('--settle', 15), log: (l) => console.log(l) });
  console.log('phase        Postfix+Dovecot PSS MB   Postern PSS MB   ratio ref/Postern');
  for (const r of siteMemoryRows(m)) {
    console.log(`${r.metric.padEnd(48)} ${r.reference?.toFixed(1).padStart(8)} ${r.postern?.toFixed(1).padStart(8)} ${r.ratio?.toFixed(2).padStart(6)}x`);
  }
}
