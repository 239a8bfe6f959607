/**
 * bench-scenarios-more - the scenarios written as standalone scripts (e2e-bench.ts,
 * queue-bench.ts, imap-bench.ts, tls-bench.ts, lmtp-bench.ts), adapted to the runner's
 * Scenario kinds so `npm run bench` shows them in its one table. Each script also runs alone.
 */
import { row, type ExternalScenario, type Scenario } from './bench-scenario.ts';
import { runE2eBench } from './e2e-bench.ts';
import { runQueueBench } from './queue-bench.ts';
import { runImapBench } from './imap-bench.ts';
import { runFtsBench } from './fts-bench.ts';
import { runNotifyBench } from './imap-notify-bench.ts';
import { runTlsBench } from './tls-bench.ts';
import { lmtpScenario } from './lmtp-bench.ts';
import { sieveScenario } from './sieve-bench.ts';
import { runDkimSignBench } from './dkim-sign-bench.ts';
import { pgsqlLookupScenario } from './pgsql-lookup-bench.ts';
import { proxyLoginScenario } from './proxy-login-bench.ts';
import { SCALE_RUNNER_SCENARIOS } from './scale-bench.ts';

const quiet = (l: string) => { process.stderr.write(`  ${l}\n`); };

const e2e: ExternalScenario = {
  kind: 'external', name: 'e2e-smtp-maildir', reference: 'Postfix smtpd+qmgr+virtual',
  description: 'end-to-end SMTP → Maildir, 2 KB messages, 20 senders, 100 virtual users (smtp-source)',
  async run(o) {
    const r = await runE2eBench({ rounds: o.rounds, messages: o.messages || undefined, profile: false, log: quiet });
    const d = r.details as unknown as { samples?: { reference: number[]; postern: number[] } };
    return [row('e2e-smtp-maildir', 'messages delivered/s', 'msg/s', 'higher', d.samples?.reference ?? [r.reference], d.samples?.postern ?? [r.postern])];
  },
};

const queue: ExternalScenario = {
  kind: 'external', name: 'queue-deferred', reference: 'Postfix qmgr',
  description: 'deferred queue behind a stopped destination: flush time once it is back (10,000 messages in npm run bench; node bench/queue-bench.ts for 100,000)',
  async run(o) {
    const r = await runQueueBench({ messages: o.messages ? Math.max(1000, o.messages * 5) : 10_000, holdSeconds: 5, log: quiet });
    return [row('queue-deferred', 'flush until the queue is empty', 's', 'lower', [r.reference], [r.postern])];
  },
};

const imap: ExternalScenario = {
  kind: 'external', name: 'imap-10k', reference: 'Dovecot imap',
  description: 'IMAP on a 10,000-message Maildir: LOGIN+SELECT, FETCH ENVELOPE, SEARCH BODY, 100 bodies, STORE, 50 clients, memory per IDLE connection',
  async run(o) {
    const rows = await runImapBench({ messages: 10_000, rounds: o.rounds, idle: 1000 });
    return rows.map((x) => {
      const lower = /ms|KiB|MB|bytes/i.test(x.unit);
      return row('imap-10k', x.name, x.unit, lower ? 'lower' : 'higher', [x.dovecot], [x.postern]);
    });
  },
};

const fts: ExternalScenario = {
  kind: 'external', name: 'fts-search', reference: 'Dovecot imap (no FTS; fts_xapian when installed)',
  description: 'SEARCH TEXT/BODY on a 10,000-message Maildir with Postern\'s full-text index (docs/fts.md); node bench/fts-bench.ts --messages 100000 --no-xapian for the 100,000 of the issue',
  async run(o) {
    const rows = await runFtsBench({ messages: 10_000, rounds: o.rounds, xapian: true, log: quiet });
    return rows.filter((x) => x.reference !== 'none').map((x) => row('fts-search', `${x.name} vs ${x.reference}`, 'ms', 'lower', [x.other], [x.postern]));
  },
};

const imapNotify: ExternalScenario = {
  kind: 'external', name: 'imap-notify-1000', reference: 'Dovecot imap',
  description: 'push fan-out: one APPEND told to 1,000 IDLE clients (EXISTS) and to 1,000 NOTIFY clients (STATUS of INBOX), memory per waiting client',
  async run(o) {
    const rows = await runNotifyBench({ clients: 1000, rounds: Math.min(o.rounds, 3) }, quiet);
    return rows.map((x) => row('imap-notify-1000', x.name, x.unit, 'lower', [x.dovecot], [x.postern]));
  },
};

const tls: ExternalScenario = {
  kind: 'external', name: 'tls', reference: 'Postfix smtpd',
  description: 'TLS handshakes/s (STARTTLS + EHLO + QUIT) and TLS SMTP messages/s, same certificate',
  async run(o) {
    const r = await runTlsBench({ rounds: Math.min(o.rounds, 3), log: quiet });
    return r.rows.map((x) => row('tls', x.metric, '/s', 'higher', [x.postfix], [x.postern]));
  },
};

const dkimSign: ExternalScenario = {
  kind: 'external', name: 'dkim-sign', reference: 'none (Postfix signs nothing itself)',
  description: 'DKIM signing cost per outgoing message in cleanup: rsa-sha256 (2048) + ed25519-sha256, relaxed/relaxed, 2 KB and 100 KB',
  async run(o) {
    return (await runDkimSignBench({ rounds: o.rounds })).map((x) => row('dkim-sign', x.metric, 'µs/msg', 'lower', [], x.samples));
  },
};

export const MORE_SCENARIOS: readonly Scenario[] = [e2e, lmtpScenario, sieveScenario, imap, fts, imapNotify, tls, queue, dkimSign, pgsqlLookupScenario, proxyLoginScenario, ...SCALE_RUNNER_SCENARIOS];
