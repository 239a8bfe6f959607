/**
 * postern-lmtpd - Postern's lmtpd alone, in its own Node process, for bench/lmtp-bench.ts: a
 * passwd-file user list and Maildirs under DIR (test/harness/postern-mail-access.ts), LMTP on
 * a loopback port chosen by the OS. Prints one JSON line `{"lmtp":PORT,"dir":"..."}` once
 * listening; SIGTERM/SIGINT stop it (exit 0, so `node --cpu-prof` writes its profile).
 *
 *   node bench/postern-lmtpd.ts USER PASS
 *
 * Environment (bench/sieve-bench.ts): POSTERN_BENCH_CONF, extra dovecot.conf text;
 * POSTERN_BENCH_SIEVE, a Sieve script installed as the user's ~/.dovecot.sieve.
 */
import '../src/util/uv-threadpool.ts';   // first: the file-system thread pool as `postern start` sizes it
import { mkdirSync, writeFileSync } from 'node:fs';
import { setLogSink } from '../src/util/msg.ts';
import { idleMemoryRelease } from '../src/util/idle-gc.ts';
import { PosternMailAccess } from '../test/harness/postern-mail-access.ts';

const [user, pass] = process.argv.slice(2);
if (!user || !pass) {
  process.stderr.write('usage: node bench/postern-lmtpd.ts USER PASS\n');
  process.exit(64);
}
setLogSink(() => {});
idleMemoryRelease(5000);   // postern_idle_memory_release's default, as the master starts it
const conf = process.env.POSTERN_BENCH_CONF;
const pm = await PosternMailAccess.start({ users: [{ user, pass }], ...(conf ? { conf } : {}) });
const home = `${pm.dir}/mail/${user.split('@').reverse().join('/')}`;
if (process.env.POSTERN_BENCH_SIEVE !== undefined) {
  mkdirSync(home, { recursive: true });
  writeFileSync(`${home}/.dovecot.sieve`, process.env.POSTERN_BENCH_SIEVE);
}
// Create the INBOX before the load starts (Dovecot's harness user also starts with none, but
// see the report: concurrent first deliveries into a not yet existing INBOX race in lib-storage).
await pm.messages(user);
process.stdout.write(JSON.stringify({ lmtp: pm.ports.lmtp, dir: pm.dir, maildir: home }) + '\n');
const stop = () => { void pm.stop().finally(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
