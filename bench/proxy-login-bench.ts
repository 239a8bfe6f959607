/**
 * proxy-login-bench - the `imap-proxy-login` scenario: IMAP logins per second (connect,
 * greeting, LOGIN, LOGOUT; 8 clients at once) straight to a Postern mailbox backend, through a
 * Postern front whose passdb says `proxy=y host=... port=...` (src/lib-login/login-proxy.ts),
 * and, when real Dovecot can run (root), through Dovecot 2.3's login proxy with the same
 * passwd-file, to the same backend. Rounds alternate between the contenders; medians.
 *
 * Rows: "through the proxy vs direct" (reference = direct to the backend: the proxy's cost),
 * and "Postern proxy vs Dovecot proxy" (reference = Dovecot).
 *
 *   node bench/proxy-login-bench.ts [--logins N] [--rounds R]
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PosternSystem } from '../test/harness/postern-system.ts';
import { RealDovecot } from '../test/harness/real-dovecot.ts';
import { row, type ExternalScenario, type ResultRow } from './bench-scenario.ts';

const CLIENTS = 8;

/** One login session; resolves when the server closed after LOGOUT. */
function loginOnce(port: number, user: string, pass: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let buf = '', step = 0;
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`login on ${port} timed out at step ${step}: ${buf.slice(-200)}`)); }, 20_000);
    s.setNoDelay(true);
    s.on('data', (d) => {
      buf += d;
      if (step === 0 && buf.includes('\r\n')) { step = 1; buf = ''; s.write(`a LOGIN ${user} ${pass}\r\n`); }
      else if (step === 1 && /(^|\r\n)a (OK|NO|BAD)[^\r\n]*\r\n/.test(buf)) {
        if (!/(^|\r\n)a OK/.test(buf)) { clearTimeout(timer); s.destroy(); reject(new Error(`login refused on ${port}: ${buf.trim()}`)); return; }
        step = 2; buf = ''; s.write('b LOGOUT\r\n');
      } else if (step === 2 && /(^|\r\n)b OK/.test(buf)) { step = 3; s.end(); }
    });
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
    s.on('close', () => { clearTimeout(timer); if (step === 3) resolve(); else reject(new Error(`connection to ${port} closed at step ${step}: ${buf.slice(-200)}`)); });
  });
}

/** `n` logins by CLIENTS clients at once: logins per second. */
async function loginRate(port: number, n: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < n) { next++; await loginOnce(port, 'alice@example.test', 'alice-pw'); }
  }));
  return n / ((performance.now() - t0) / 1000);
}

export async function runProxyLoginBench(o: { logins: number; rounds: number; log: (l: string) => void }): Promise<ResultRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-proxybench-'));
  chmodSync(dir, 0o755);
  let backend: PosternSystem | undefined, front: PosternSystem | undefined, dovecot: RealDovecot | undefined;
  try {
    [backend, front] = await Promise.all([PosternSystem.start(), PosternSystem.start()]);
    if ((await backend.cli('user', 'add', 'alice@example.test', '-p', 'alice-pw')).status !== 0) throw new Error('postern user add failed');
    const bconf = join(backend.configDir, 'dovecot.conf');
    writeFileSync(bconf, `${readFileSync(bconf, 'utf8')}\nlogin_trusted_networks = 127.0.0.0/8\n`);
    writeFileSync(join(dir, 'proxy.imap'), `alice@example.test:{PLAIN}alice-pw::::::proxy=y host=127.0.0.1 port=${backend.ports.imap}\n`, { mode: 0o644 });
    const fconf = join(front.configDir, 'dovecot.conf');
    writeFileSync(fconf, readFileSync(fconf, 'utf8')
      .replace(/passdb \{[^}]*\}/, `passdb {\n  driver = passwd-file\n  args = ${dir}/proxy.%s\n}`)
      .replace(/userdb \{[^}]*\}/, 'userdb {\n  driver = static\n  args = uid=5000 gid=5000 home=/nonexistent\n}'));
    await Promise.all([backend.stop(), front.stop()]);
    await Promise.all([PosternSystem.start(backend), PosternSystem.start(front)]);
    if (!RealDovecot.unavailable()) {
      dovecot = await RealDovecot.start({ protocols: ['imap'], users: [], extraConf: `passdb {\n  driver = passwd-file\n  args = ${dir}/proxy.%s\n}\n` });
    } else {
      o.log('real Dovecot cannot run here (needs root): no Dovecot proxy row');
    }
    const contenders: [string, number][] = [['direct', backend.ports.imap], ['postern', front.ports.imap]];
    if (dovecot) contenders.push(['dovecot', dovecot.ports.imap!]);
    for (const [, port] of contenders) await loginRate(port, 20);   // warm up
    const samples: Record<string, number[]> = { direct: [], postern: [], dovecot: [] };
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 === 0 ? contenders : [...contenders].reverse();
      for (const [name, port] of order) {
        const rate = await loginRate(port, o.logins);
        samples[name]!.push(rate);
        o.log(`round ${r + 1}: ${name} ${rate.toFixed(0)} logins/s`);
      }
    }
    const rows = [row('imap-proxy-login', 'logins/s through the Postern proxy vs direct to the backend', 'logins/s', 'higher', samples.direct!, samples.postern!,
      'reference = direct (no proxy); a ratio < 1 is the cost of the extra hop')];
    if (dovecot) rows.push(row('imap-proxy-login', 'logins/s through the proxy: Postern vs Dovecot', 'logins/s', 'higher', samples.dovecot!, samples.postern!));
    return rows;
  } finally {
    await dovecot?.stop().catch(() => {});
    await Promise.all([front?.destroy(), backend?.destroy()]);
    rmSync(dir, { recursive: true, force: true });
  }
}

export const proxyLoginScenario: ExternalScenario = {
  kind: 'external', name: 'imap-proxy-login', reference: 'direct to the backend; Dovecot 2.3 login proxy',
  description: 'IMAP LOGIN+LOGOUT sessions/s, 8 clients: straight to a Postern backend, through a Postern front (passdb proxy=y), through real Dovecot\'s proxy',
  async run(o) {
    return runProxyLoginBench({ logins: o.messages || 500, rounds: o.rounds, log: (l) => process.stderr.write(`  ${l}\n`) });
  },
};

if (import.meta.main) {
  const arg = (name: string, d: number) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : d; };
  const rows = await runProxyLoginBench({ logins: arg('--logins', 500), rounds: arg('--rounds', 3), log: (l) => console.error(l) });
  for (const r of rows) console.log(`${r.metric}: reference ${r.reference?.toFixed(0)} /s, Postern ${r.postern?.toFixed(0)} /s, ratio ${r.ratio?.toFixed(2)}`);
}
