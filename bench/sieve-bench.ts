/**
 * sieve-bench - LMTP final delivery with a 20-rule Sieve script: messages delivered per second
 * into the Maildir store, 2 KB messages, 1 recipient, 10 concurrent sessions (Postfix's
 * `smtp-source -L`), against
 *   (i)  a private real Dovecot 2.3 lmtp with Pigeonhole (`mail_plugins = sieve`), and
 *   (ii) Postern's lmtpd with the same dovecot.conf lines, in its own Node process.
 * The same script for both (SCRIPT below: 19 rules that do not match the generated messages,
 * over header, address, envelope, size, body-less tests, regex and variables, so every rule is
 * evaluated, and the implicit keep files into INBOX). A round that lost mail fails.
 *
 *   node bench/sieve-bench.ts [--messages N] [--rounds N]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RealDovecot, DOVECOT_MAIL_UID } from '../test/harness/real-dovecot.ts';
import { POSTERN_NODE_FLAGS, timedRun, treeMemory, warmStart } from './bench-proc.ts';
import { Cleanup, median, type BenchOptions, type Contender, type PairedScenario } from './bench-scenario.ts';

const SMTP_SOURCE = '/usr/sbin/smtp-source';
const USER = 'bench@x.test';
const MESSAGE_BYTES = 2048;
const DEFAULT_MESSAGES = 2000;
const SESSIONS = 10;
const ROUND_TIMEOUT_MS = 300_000;

export const SCRIPT = `require ["fileinto", "envelope", "regex", "variables", "imap4flags", "relational", "comparator-i;ascii-numeric", "subaddress"];
if header :contains "subject" ["viagra", "lottery", "winner"] { fileinto "Junk"; stop; }
if header :is "x-spam-flag" "YES" { fileinto "Junk"; stop; }
if exists "list-id" { fileinto "Lists"; stop; }
if address :domain :is "from" "facebookmail.com" { fileinto "Social"; stop; }
if address :localpart :is "from" ["noreply", "no-reply"] { fileinto "Notifications"; stop; }
if envelope :domain :is "from" "bank.example" { fileinto "Bank"; stop; }
if header :matches "subject" "*[Invoice]*" { fileinto "Invoices"; stop; }
if header :regex "subject" "^order #[0-9]{6}$" { fileinto "Orders"; stop; }
if address :is "to" "boss@x.test" { addflag "\\\\Flagged"; }
if header :contains "x-mailer" "Outlook Express" { fileinto "Junk"; stop; }
if size :over 5M { fileinto "Large"; stop; }
if header :value "gt" :comparator "i;ascii-numeric" "x-spam-score" "8" { fileinto "Junk"; stop; }
if anyof (header :contains "cc" "team-all@x.test", header :contains "to" "team-all@x.test") { fileinto "Team"; stop; }
if address :detail "to" "newsletter" { fileinto "Newsletters"; stop; }
if header :contains "precedence" ["bulk", "junk"] { fileinto "Bulk"; stop; }
if allof (header :contains "from" "github.com", header :contains "subject" "Pull Request") { fileinto "GitHub"; stop; }
if header :matches "from" "*@calendar.example" { fileinto "Calendar"; stop; }
if header :count "ge" :comparator "i;ascii-numeric" "received" "50" { fileinto "Junk"; stop; }
if not exists "date" { addflag "NoDate"; }
if header :regex "from" "^.*<(.+)@([a-z.]+)>$" { set "dom" "\${2}"; }
`;

const CONF = `plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
protocol lmtp {
  mail_plugins = $mail_plugins sieve
}
`;

function countMessages(maildir: string): number {
  let n = 0;
  for (const sub of ['new', 'cur']) { try { n += readdirSync(join(maildir, sub)).length; } catch { /* none yet */ } }
  return n;
}

function emptyMaildir(maildir: string): void {
  for (const sub of ['new', 'cur']) {
    let names: string[];
    try { names = readdirSync(join(maildir, sub)); } catch { continue; }
    for (const f of names) rmSync(join(maildir, sub, f), { force: true });
  }
}

function contender(port: number, maildir: string, messages: number, pid: () => number, stop: () => Promise<void>): Contender {
  return {
    async round() {
      emptyMaildir(maildir);
      const r = await timedRun(SMTP_SOURCE, ['-L', '-s', String(SESSIONS), '-m', String(messages), '-l', String(MESSAGE_BYTES),
        '-f', 'sender@y.test', '-t', USER, `127.0.0.1:${port}`], ROUND_TIMEOUT_MS);
      if (r.code !== 0) throw new Error(`smtp-source exited ${r.code}: ${r.stderr.slice(0, 500)}`);
      const got = countMessages(maildir);
      if (got !== messages) throw new Error(`${got} of ${messages} messages delivered into ${maildir}`);
      return messages / (r.ms / 1000);
    },
    async memory() { return treeMemory(pid()); },
    stop,
  };
}

async function startPostern(): Promise<{ child: ChildProcess; lmtp: number; maildir: string }> {
  const child = spawn(process.execPath, [...POSTERN_NODE_FLAGS, join(import.meta.dirname, 'postern-lmtpd.ts'), USER, 'pw'], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, POSTERN_BENCH_CONF: CONF, POSTERN_BENCH_SIEVE: SCRIPT },
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { buf += d; const nl = buf.indexOf('\n'); if (nl >= 0) resolve(buf.slice(0, nl)); });
    child.once('exit', (c) => reject(new Error(`postern-lmtpd exited ${c}`)));
  });
  const info = JSON.parse(line) as { lmtp: number; maildir: string };
  return { child, lmtp: info.lmtp, maildir: info.maildir };
}

export const sieveScenario: PairedScenario = {
  kind: 'paired',
  name: 'lmtp-sieve',
  description: `LMTP deliveries/s with a 20-rule Sieve script, ${MESSAGE_BYTES} B messages, ${SESSIONS} sessions, smtp-source -L`,
  metric: 'deliveries/s',
  unit: 'msg/s',
  reference: 'Dovecot 2.3 lmtp + Pigeonhole',
  async start(o: BenchOptions, cleanup: Cleanup) {
    const why = RealDovecot.unavailable();
    if (why) throw new Error(why);
    const messages = o.messages || DEFAULT_MESSAGES;
    const dc = await RealDovecot.start({ protocols: ['lmtp'], users: [{ user: USER, pass: 'pw' }], extraConf: CONF });
    const home = dc.maildir(USER);
    mkdirSync(home, { recursive: true });
    chownSync(home, DOVECOT_MAIL_UID, DOVECOT_MAIL_UID);
    writeFileSync(join(home, '.dovecot.sieve'), SCRIPT);
    chownSync(join(home, '.dovecot.sieve'), DOVECOT_MAIL_UID, DOVECOT_MAIL_UID);
    let dcStopped = false;
    const dcStop = async () => { if (!dcStopped && !o.keep) { dcStopped = true; await dc.stop(); } };
    cleanup.add('real dovecot', dcStop);
    const pm = await warmStart(() => startPostern(), (p) => { p.child.kill('SIGTERM'); return new Promise((r) => p.child.once('exit', r)); });
    const pmStop = async () => { if (pm.child.exitCode === null) { pm.child.kill('SIGTERM'); await new Promise((r) => pm.child.once('exit', r)); } };
    cleanup.add('postern lmtpd', pmStop);
    const dcPid = () => Number(readFileSync(join(dc.dir, 'run', 'master.pid'), 'utf8').trim());
    return {
      reference: contender(dc.ports.lmtp!, home, messages, dcPid, dcStop),
      postern: contender(pm.lmtp, pm.maildir, messages, () => pm.child.pid!, pmStop),
    };
  },
};

if (import.meta.main) {
  const arg = (n: string, d: number) => { const i = process.argv.indexOf(n); return i >= 0 ? Number(process.argv[i + 1]) : d; };
  const cleanup = new Cleanup();
  const log = (s: string) => console.log(s);
  try {
    const rounds = arg('--rounds', 3);
    const { reference, postern } = await sieveScenario.start({ rounds, messages: arg('--messages', DEFAULT_MESSAGES), keep: false, log }, cleanup);
    await reference.round(); await postern.round();
    const d: number[] = [];
    const p: number[] = [];
    for (let i = 0; i < rounds; i++) {
      if (i % 2 === 0) { d.push(await reference.round()); p.push(await postern.round()); } else { p.push(await postern.round()); d.push(await reference.round()); }
      log(`round ${i + 1}: Dovecot+Pigeonhole ${d.at(-1)!.toFixed(0)} msg/s, Postern ${p.at(-1)!.toFixed(0)} msg/s`);
    }
    log(`LMTP + 20-rule Sieve, ${MESSAGE_BYTES} B, ${SESSIONS} sessions: Dovecot+Pigeonhole ${median(d).toFixed(0)} msg/s, Postern ${median(p).toFixed(0)} msg/s, ratio Postern/Dovecot ${(median(p) / median(d)).toFixed(2)}x`);
  } finally {
    await cleanup.runAll(log);
  }
}
