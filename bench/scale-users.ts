/**
 * scale-users - a large directory (issue 18: "100,000 users in the directory"), Postern's imapd
 * and its passdb against real Dovecot 2.3 with a passwd-file (scheme PLAIN, the passdb and
 * userdb of test/harness/real-dovecot.ts), at one size; bench/scale-bench.ts runs it at two
 * sizes and prints the growth. Both read the same kind of file: one line per user,
 * u1@x.test ... uN@x.test, password "pw".
 *
 * Figures, each server measured alternately, `rounds` times (median):
 *   first LOGIN after start       the directory is read on first use (Dovecot's auth process
 *                                 loads the passwd-file then; so does Postern's passdb)
 *   LOGIN rate                    8 clients, each LOGIN + LOGOUT on its own connection, users
 *                                 spread over the whole directory, different users in every
 *                                 round (a user's first LOGIN costs more than later ones)
 * (A failed-LOGIN rate is not measured: both servers slow down repeated failures from one
 * address on purpose — Dovecot's auth penalty of up to 15 s — so it would time the penalty.)
 * The passdb lookup itself is inside each LOGIN; a directory whose lookups are flat leaves
 * both rates flat as N grows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, buildMaildir, startPostern, type Server } from './imap-bench.ts';
import { warmStart } from './bench-proc.ts';
import { median, type Figure } from './scale-growth.ts';

const PASS = 'pw';
const CLIENTS = 8;

async function login(port: number, user: string): Promise<void> {
  const c = await Client.open(port);
  try {
    await c.cmd(`LOGIN ${user} ${PASS}`);
    await c.cmd('LOGOUT').catch(() => {});
  } finally {
    c.close();
  }
}

/** Logins per second: `total` LOGIN+LOGOUT sessions over CLIENTS parallel clients. */
async function rate(port: number, n: number, total: number, seed: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (next < total) {
      const i = next++;
      const k = ((i + seed) * 7919) % n + 1;
      await login(port, `u${k}@x.test`);
    }
  }));
  return total / ((performance.now() - t0) / 1000);
}

export async function measureUsers(n: number, rounds: number, log: (l: string) => void): Promise<Figure[]> {
  const work = mkdtempSync(join(tmpdir(), 'postern-scaleusers-'));
  let dc: { stop(): Promise<void> } | undefined;
  let pst: Server | undefined;
  try {
    const src = join(work, 'Maildir');
    buildMaildir(src, 1);
    const { RealDovecot } = await import('../test/harness/real-dovecot.ts');
    const users = Array.from({ length: n }, (_, i) => ({ user: `u${i + 1}@x.test`, pass: PASS }));
    const real = await RealDovecot.start({ protocols: ['imap'], users, extraConf: 'imap_idle_notify_interval = 0\n' });
    dc = real;
    log(`users ${n}: dovecot on ${real.ports.imap}`);
    pst = await warmStart(() => startPostern(src, n), (s) => s.stop());
    log(`users ${n}: postern on ${pst.port}`);
    const ports = { dovecot: real.ports.imap!, postern: pst.port };
    const first = { dovecot: 0, postern: 0 };
    for (const who of ['dovecot', 'postern'] as const) {
      const t = performance.now();
      await login(ports[who], `u${n}@x.test`);
      first[who] = performance.now() - t;
      log(`users ${n}: first LOGIN ${who} ${first[who].toFixed(0)} ms`);
    }
    const ok = { dovecot: [] as number[], postern: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      for (const who of r % 2 ? ['postern', 'dovecot'] as const : ['dovecot', 'postern'] as const) {
        ok[who].push(await rate(ports[who], n, 200, r * 200));
      }
    }
    log(`users ${n}: LOGIN/s dovecot ${median(ok.dovecot).toFixed(0)}, postern ${median(ok.postern).toFixed(0)}`);
    return [
      { metric: 'first LOGIN after start (directory read)', unit: 'ms', better: 'lower', reference: first.dovecot, postern: first.postern },
      { metric: `LOGIN+LOGOUT rate, ${CLIENTS} clients`, unit: '/s', better: 'higher', reference: median(ok.dovecot), postern: median(ok.postern) },
    ];
  } finally {
    await pst?.stop().catch(() => {});
    await dc?.stop().catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
}
