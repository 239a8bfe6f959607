/**
 * Greylisting with Debian's postgrey through check_policy_service inet:, on Postern's smtpd and
 * on real Postfix with the same main.cf lines, each with a private postgrey (its own database,
 * --delay=2): the first attempt of a triplet is refused "450 4.2.0 ... Greylisted, see ...", a
 * retry after the delay is accepted (250) — the same replies, step by step, from both servers.
 * (No "early retry" step: whether it comes before the delay would depend on machine speed.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RealPostfix } from '../harness/real-postfix.ts';
import { freePort } from '../harness/free-port.ts';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { createSmtpd } from '../../src/smtpd/smtpd.ts';
import { smtpdClients } from '../../src/master/master-clients.ts';
import { SmtpdCheck } from '../../src/smtpd/smtpd-check.ts';
import { TrivialRewrite } from '../../src/trivial-rewrite/trivial-rewrite.ts';
import { setLogSink } from '../../src/util/msg.ts';

const run = promisify(execFile);
setLogSink(() => {});
const POSTGREY = '/usr/sbin/postgrey';
const skip = RealPostfix.unavailable() ?? (existsSync(POSTGREY) ? undefined : 'Debian package postgrey is not installed');

let dir = '';
let pf: RealPostfix | undefined;
let server: Server | undefined;
let check: SmtpdCheck | undefined;
const sockets = new Set<Socket>();
const procs: ChildProcess[] = [];
let pfPort = 0;
let ourPort = 0;

const shared = (policyPort: number) => `myhostname = mx.example.test
mynetworks = 127.0.0.1/32
relay_domains = grey.test
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:${policyPort}
smtpd_error_sleep_time = 0
`;

/** A private postgrey on a free port; its database in a directory owned by user postgrey. */
async function startPostgrey(name: string): Promise<number> {
  const db = join(dir, name);
  mkdirSync(db);
  const pw = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgrey:'))?.split(':');
  if (pw) chownSync(db, Number(pw[2]), Number(pw[3]));
  const port = await freePort();
  const p = spawn(POSTGREY, [`--inet=127.0.0.1:${port}`, `--dbdir=${db}`, '--delay=2', `--pidfile=${join(db, 'pid')}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(p);
  let err = '';
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((res) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => { s.destroy(); res(true); });
      s.once('error', () => res(false));
    });
    if (up) return port;
    if (p.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`postgrey did not start: ${err}`);
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'postern-postgrey-'));
  chmodSync(dir, 0o755);
  const pfGrey = await startPostgrey('pf');
  const ourGrey = await startPostgrey('ours');
  pfPort = await freePort();
  pf = await RealPostfix.start({ mainCf: shared(pfGrey), masterCf: `127.0.0.1:${pfPort} inet n - n - - smtpd` });
  const qdir = join(dir, 'queue');
  const cfg = MainConfig.parse(`${shared(ourGrey)}compatibility_level = 3.6\nqueue_directory = ${qdir}\n`, join(dir, 'main.cf'), dir);
  check = await SmtpdCheck.open(cfg, { rewrite: await TrivialRewrite.open(cfg) });
  const queue = new MailQueue(qdir);
  queue.ensureDirs();
  const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy: check, service: 'smtp' });
  server = createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); smtpd.handle(s); });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  ourPort = (server.address() as { port: number }).port;
});

after(async () => {
  // postgrey first, and never left behind: a child still running keeps this test process alive
  // (hooks have no timeout), which once held a whole run for minutes.
  for (const p of procs) {
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 3000);
    t.unref();
    p.unref();
    p.stderr?.destroy();
  }
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await check?.close().catch(() => {});
  await pf?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One delivery attempt; the RCPT reply, and the DATA reply when RCPT was accepted. */
async function attempt(port: number): Promise<string> {
  const py = `
import smtplib, sys
c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
c.ehlo("client.example.org")
c.mail("sender@example.org")
code, msg = c.rcpt("user@grey.test")
out = "%d %s" % (code, msg.decode())
if code == 250:
    c.data(b"Subject: greylisted\\r\\n\\r\\nhello\\r\\n")
c.quit()
print(out)
`;
  const { stdout } = await run('python3', ['-c', py, String(port)], { timeout: 60_000 });
  return stdout.trim();
}

test('postgrey: first attempt 450 Greylisted, a retry after the delay 250; as Postfix', { skip }, async () => {
  const first = await Promise.all([attempt(pfPort), attempt(ourPort)]);
  assert.match(first[0], /^450 4\.2\.0 <user@grey\.test>: Recipient address rejected: Greylisted, see http:\/\/postgrey\.schweikert\.ch\/help\/grey\.test\.html$/);
  assert.equal(first[1], first[0]);
  await new Promise((r) => setTimeout(r, 3000)); // --delay=2
  const later = await Promise.all([attempt(pfPort), attempt(ourPort)]);
  assert.match(later[0], /^250 /);
  assert.equal(later[1], later[0]);
});
