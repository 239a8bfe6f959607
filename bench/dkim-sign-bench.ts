/**
 * dkim-sign-bench - what DKIM signing costs cleanup per outgoing message: the time of
 * dkimSignatures() (src/lib-authres/dkim-sign.ts: wire form, relaxed body hash, header
 * canonicalization, the signatures) for a 2 KB and a 100 KB message, with rsa-sha256 (2048 bits)
 * and ed25519-sha256 together, as a domain with both keys is signed, and each alone. CPU only:
 * no disk, no network. No reference column: Postfix does not sign (OpenDKIM does it in another
 * process, behind a milter round trip). The signatures are made in the thread pool, one message
 * after the other: the figure is latency per message, not the throughput of both cores.
 *
 *   node bench/dkim-sign-bench.ts [--rounds N]        # or: npm run bench -- dkim-sign
 */
import { generateKeyPairSync } from 'node:crypto';
import { dkimSignatures, type DkimSigningKey } from '../src/lib-authres/dkim-sign.ts';
import { DEFAULT_SIGNED_HEADERS } from '../src/lib-authres/dkim-sign.ts';
import { median } from './bench-scenario.ts';

export interface DkimSignBenchRow { metric: string; microseconds: number; samples: number[] }

function message(bodyBytes: number): Buffer {
  const head = 'From: Alice <alice@example.com>\nTo: bob@example.org\nSubject: quarterly report\n'
    + 'Date: Mon, 7 Dec 2026 10:00:00 +0000\nMessage-ID: <20261207100000.ABC@mail.example.com>\n'
    + 'MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n';
  const line = 'The quick brown fox jumps over the lazy dog, again and again, 0123456789.\n';
  return Buffer.from(head + line.repeat(Math.ceil(bodyBytes / line.length)));
}

export async function runDkimSignBench(o: { rounds?: number; perRound?: number } = {}): Promise<DkimSignBenchRow[]> {
  const rounds = o.rounds ?? 5;
  const perRound = o.perRound ?? 300;
  const rsa: DkimSigningKey = { domain: 'example.com', selector: 'postern', key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey };
  const ed: DkimSigningKey = { domain: 'example.com', selector: 'postern-ed25519', key: generateKeyPairSync('ed25519').privateKey };
  const params = { signedHeaders: DEFAULT_SIGNED_HEADERS, overSigned: ['from'] };
  const cases: [string, Buffer, DkimSigningKey[]][] = [
    ['2 KB message, rsa-2048 + ed25519', message(2048), [rsa, ed]],
    ['2 KB message, rsa-2048 only', message(2048), [rsa]],
    ['2 KB message, ed25519 only', message(2048), [ed]],
    ['100 KB message, rsa-2048 + ed25519', message(100 * 1024), [rsa, ed]],
  ];
  const rows: DkimSignBenchRow[] = [];
  for (const [metric, msg, keys] of cases) {
    for (let i = 0; i < 50; i++) await dkimSignatures(msg, keys, params);   // warm-up: JIT, key setup
    const samples: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < perRound; i++) await dkimSignatures(msg, keys, params);
      samples.push(Number(process.hrtime.bigint() - t0) / 1000 / perRound);
    }
    rows.push({ metric, microseconds: median(samples), samples });
  }
  return rows;
}

if (import.meta.main) {
  const i = process.argv.indexOf('--rounds');
  const rounds = i > 0 ? Number(process.argv[i + 1]) : 5;
  for (const r of await runDkimSignBench({ rounds })) {
    console.log(`${r.metric.padEnd(40)} ${r.microseconds.toFixed(0).padStart(7)} µs/message (${(1e6 / r.microseconds).toFixed(0)} messages/s on one core)`);
  }
}
