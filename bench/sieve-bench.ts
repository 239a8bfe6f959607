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
import { chownSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RealDovecot, DOVECOT_MAIL_UID } from '../test/harness/real-dovecot.ts';
import type { BenchOptions, Cleanup, PairedScenario } from './bench-scenario.ts';
import { DEFAULT_MESSAGES, MESSAGE_BYTES, pairedContenders, runPairedRounds, SESSIONS, startDovecotLmtp, USER, warmLmtpd } from './lmtp-bench.ts';

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
    const d = await startDovecotLmtp(o, cleanup, { extraConf: CONF });
    const dc = d.dc;
    const home = dc.maildir(USER);
    mkdirSync(home, { recursive: true });
    chownSync(home, DOVECOT_MAIL_UID, DOVECOT_MAIL_UID);
    writeFileSync(join(home, '.dovecot.sieve'), SCRIPT);
    chownSync(join(home, '.dovecot.sieve'), DOVECOT_MAIL_UID, DOVECOT_MAIL_UID);
    const pm = await warmLmtpd({ env: { POSTERN_BENCH_CONF: CONF, POSTERN_BENCH_SIEVE: SCRIPT } }, cleanup);
    return pairedContenders(d, home, pm, messages);
  },
};

if (import.meta.main) {
  const arg = (n: string, d: number) => { const i = process.argv.indexOf(n); return i >= 0 ? Number(process.argv[i + 1]) : d; };
  const r = await runPairedRounds(sieveScenario, 'Dovecot+Pigeonhole', { messages: arg('--messages', DEFAULT_MESSAGES), rounds: arg('--rounds', 3), log: (s) => console.log(s) });
  console.log(`LMTP + 20-rule Sieve, ${MESSAGE_BYTES} B, ${SESSIONS} sessions: Dovecot+Pigeonhole ${r.dovecot.toFixed(0)} msg/s, Postern ${r.postern.toFixed(0)} msg/s, ratio Postern/Dovecot ${r.ratio.toFixed(2)}x`);
}
