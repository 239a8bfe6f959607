/**
 * real-postfix - run the real Postfix (Debian's package) as a private instance for interop
 * tests and benchmarks: its own config directory, queue and data directories under a temp dir,
 * loopback listeners only, its log in a file (maillog_file, Postfix ≥ 3.4). Never touches
 * /etc/postfix or the system's instance.
 *
 *   const pf = await RealPostfix.start({ mainCf: 'mydestination = ...', masterCf: '127.0.0.1:PORT inet n - n - - smtpd' });
 *   ... talk to it ...
 *   await pf.stop();
 *
 * Needs root (Postfix's master drops privileges to mail_owner). `RealPostfix.available()` tells
 * tests whether they can run (the test command installs the package when missing).
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, utimesSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { startOrClean } from './proc-stop.ts';
import { postfixClockLine } from './test-clock.ts';

const run = promisify(execFile);

export interface RealPostfixOptions {
  /** Extra main.cf lines (after the harness's own). */
  mainCf?: string;
  /** master.cf service lines to add to Postfix's internal services. */
  masterCf: string;
  /**
   * A resolv.conf for this instance only (e.g. `nameserver 127.1.2.3`: a test DNS server on
   * port 53 of a loopback address). Postfix uses the system resolver, so it is started in a
   * private mount namespace (unshare -m) where this file, and an /etc/hosts that names only
   * localhost, are bind-mounted over the system's; every Postfix process inherits that view.
   */
  resolvConf?: string;
}

/** Postfix's own internal services (a trimmed Debian master.cf without the smtp listener). */
const INTERNAL_SERVICES = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

export class RealPostfix {
  readonly dir: string;
  readonly configDir: string;
  readonly queueDir: string;
  readonly logFile: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.configDir = join(dir, 'etc');
    this.queueDir = join(dir, 'queue');
    this.logFile = join(dir, 'maillog');
  }

  /** Why real Postfix cannot run here, or undefined when it can. */
  static unavailable(): string | undefined {
    if (!existsSync('/usr/sbin/postfix')) return 'Debian package postfix is not installed';
    if (userInfo().uid !== 0) return 'real Postfix needs root (its master drops privileges to mail_owner)';
    try { readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postfix:')) ?? (() => { throw new Error(); })(); } catch {
      return 'user postfix does not exist';
    }
    return undefined;
  }

  static async start(opts: RealPostfixOptions): Promise<RealPostfix> {
    const why = RealPostfix.unavailable();
    if (why) throw new Error(why);
    const dir = mkdtempSync(join(tmpdir(), 'postern-realpf-'));
    chmodSync(dir, 0o755);
    const pf = new RealPostfix(dir);
    mkdirSync(pf.configDir);
    mkdirSync(pf.queueDir);
    mkdirSync(join(dir, 'data'));
    const pw = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postfix:'))!.split(':');
    chownSync(join(dir, 'data'), Number(pw[2]), Number(pw[3]));
    writeFileSync(join(pf.configDir, 'main.cf'), [
      'compatibility_level = 3.6',
      `queue_directory = ${pf.queueDir}`,
      `data_directory = ${join(dir, 'data')}`,
      `maillog_file = ${pf.logFile}`,
      'maillog_file_prefixes = /tmp, /var',
      'inet_interfaces = loopback-only',
      'inet_protocols = ipv4',
      'smtp_dns_support_level = disabled',
      'disable_dns_lookups = yes',
      'smtpd_peername_lookup = no',
      'myhostname = mx.example.test',
      'mynetworks = 127.0.0.0/8',
      'smtpd_banner = $myhostname ESMTP $mail_name',
      postfixClockLine(),
      opts.mainCf ?? '',
      '',
    ].join('\n'));
    writeFileSync(join(pf.configDir, 'master.cf'), INTERNAL_SERVICES + opts.masterCf + '\n');
    // Postfix waits ~2 s when main.cf/master.cf were modified within the last seconds; backdate them.
    const past = new Date(Date.now() - 60_000);
    for (const f of ['main.cf', 'master.cf']) utimesSync(join(pf.configDir, f), past, past);
    return startOrClean(async () => {
      const start = opts.resolvConf === undefined
        ? run('/usr/sbin/postfix', ['-c', pf.configDir, 'start'], { timeout: 60_000 })
        : (() => {
            writeFileSync(join(dir, 'resolv.conf'), opts.resolvConf);
            writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n::1 localhost\n');
            const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
            return run('unshare', ['-m', 'sh', '-c', `mount --make-rprivate / && mount --bind ${q(join(dir, 'resolv.conf'))} /etc/resolv.conf && mount --bind ${q(join(dir, 'hosts'))} /etc/hosts && exec /usr/sbin/postfix -c ${q(pf.configDir)} start`], { timeout: 60_000 });
          })();
      await start.catch((e: Error & { stderr?: string }) => {
        throw new Error(`real postfix failed to start: ${e.stderr ?? e.message}\n${pf.log()}`);
      });
      // Wait until the master logs that it started.
      const deadline = Date.now() + 10_000;
      while (!pf.log().includes('daemon started')) {
        if (Date.now() > deadline) throw new Error(`real postfix did not start:\n${pf.log()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return pf;
    }, () => pf.stop());
  }

  log(): string {
    try { return readFileSync(this.logFile, 'utf8'); } catch { return ''; }
  }

  async stop(): Promise<void> {
    // Bounded: `postfix stop` waits for the master, which must not hold the test run.
    await run('/usr/sbin/postfix', ['-c', this.configDir, 'stop'], { timeout: 30_000 }).catch(() => {});
    // make sure nothing is left before removing files.
    await run('/usr/sbin/postfix', ['-c', this.configDir, 'abort'], { timeout: 30_000 }).catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}
