/**
 * real-dovecot - run the real Dovecot 2.3 (Debian's package) as a private instance for interop
 * tests, reply comparisons and benchmarks: its own dovecot.conf, base_dir, state_dir, log and
 * Maildirs under a temp dir, listeners on loopback ports only. Never touches /etc/dovecot or the
 * system's instance (`dovecot -c FILE`; stopped with `doveadm -c FILE stop`).
 *
 *   const dc = await RealDovecot.start({ protocols: ['pop3', 'lmtp'], users: [{ user: 'a@x.test', pass: 'pw' }] });
 *   dc.ports.pop3, dc.ports.lmtp, dc.lmtpSocket, dc.maildir('a@x.test')
 *   await dc.stop();
 *
 * `submission` (Debian dovecot-submissiond) listens on dc.ports.submission; give it
 * `submission_relay_host`/`submission_relay_port` in extraConf.
 * Users live in a passwd-file (scheme PLAIN) with uid/gid 5000 (`first_valid_uid = 1000` allows
 * them); mail_location = maildir:DIR/mail/%d/%n. Needs root (Dovecot's master drops privileges
 * to dovenull/dovecot and the mail uid). `RealDovecot.unavailable()` tells tests whether it can run.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'node:net';
import { freePort } from './free-port.ts';

import { startOrClean } from './proc-stop.ts';
import { dovecotClockLine } from './test-clock.ts';

const run = promisify(execFile);

export const DOVECOT_MAIL_UID = 5000;

export interface RealDovecotUser {
  user: string;
  pass: string;
  /** userdb extra fields, e.g. 'userdb_quota_rule=*:storage=1K'. */
  extra?: string;
}

export interface RealDovecotOptions {
  /** Dovecot protocols to run: 'pop3', 'imap', 'lmtp'. */
  protocols: string[];
  users: RealDovecotUser[];
  /** Extra dovecot.conf text appended at the end (settings, plugin {} blocks, protocol {} blocks). */
  extraConf?: string;
  /** mail_plugins for every protocol (e.g. 'quota'). */
  mailPlugins?: string;
}

export class RealDovecot {
  readonly dir: string;
  readonly confFile: string;
  readonly logFile: string;
  readonly ports: { pop3?: number; imap?: number; lmtp?: number; sieve?: number; submission?: number } = {};
  /** The LMTP unix socket (when lmtp is enabled). */
  readonly lmtpSocket: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.confFile = join(dir, 'dovecot.conf');
    this.logFile = join(dir, 'dovecot.log');
    this.lmtpSocket = join(dir, 'run', 'lmtp');
  }

  static unavailable(): string | undefined {
    if (!existsSync('/usr/sbin/dovecot')) return 'Debian package dovecot-core is not installed';
    if (userInfo().uid !== 0) return 'real Dovecot needs root (it drops privileges to dovenull and the mail uid)';
    const pw = readFileSync('/etc/passwd', 'utf8');
    if (!/^dovenull:/m.test(pw) || !/^dovecot:/m.test(pw)) return 'users dovecot/dovenull do not exist';
    return undefined;
  }

  static async start(o: RealDovecotOptions): Promise<RealDovecot> {
    const why = RealDovecot.unavailable();
    if (why) throw new Error(why);
    for (const p of o.protocols) {
      // `sieve` is served by Pigeonhole's managesieve (Debian dovecot-managesieved).
      const bin = p === 'sieve' ? 'managesieve' : p;
      if (!existsSync(`/usr/lib/dovecot/${bin}`)) throw new Error(`Debian package dovecot-${p === 'sieve' ? 'managesieve' : p}d is not installed`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'postern-realdc-'));
    chmodSync(dir, 0o755);
    const dc = new RealDovecot(dir);
    for (const d of ['run', 'state', 'mail']) mkdirSync(join(dir, d), { mode: 0o755 });
    chownSync(join(dir, 'mail'), DOVECOT_MAIL_UID, DOVECOT_MAIL_UID);
    writeFileSync(join(dir, 'users'), o.users.map((u) =>
      `${u.user}:{PLAIN}${u.pass}:${DOVECOT_MAIL_UID}:${DOVECOT_MAIL_UID}::${join(dir, 'mail', ...u.user.split('@').reverse())}::${u.extra ?? ''}`).join('\n') + '\n');
    const pop3 = o.protocols.includes('pop3') ? await freePort() : 0;
    const imap = o.protocols.includes('imap') ? await freePort() : 0;
    const lmtp = o.protocols.includes('lmtp') ? await freePort() : 0;
    const sieve = o.protocols.includes('sieve') ? await freePort() : 0;
    const submission = o.protocols.includes('submission') ? await freePort() : 0;
    if (sieve) dc.ports.sieve = sieve;
    if (submission) dc.ports.submission = submission;
    if (pop3) dc.ports.pop3 = pop3;
    if (imap) dc.ports.imap = imap;
    if (lmtp) dc.ports.lmtp = lmtp;
    writeFileSync(dc.confFile, `
base_dir = ${join(dir, 'run')}
${dovecotClockLine()}
state_dir = ${join(dir, 'state')}
log_path = ${dc.logFile}
instance_name = postern-test-${process.pid}-${Date.now()}
protocols = ${o.protocols.join(' ')}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1000
mail_location = maildir:${join(dir, 'mail')}/%d/%n
${o.mailPlugins ? `mail_plugins = ${o.mailPlugins}` : ''}
passdb {
  driver = passwd-file
  args = scheme=PLAIN ${join(dir, 'users')}
}
userdb {
  driver = passwd-file
  args = ${join(dir, 'users')}
}
service imap-login {
  inet_listener imap {
    port = ${imap}
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = ${pop3}
  }
  inet_listener pop3s {
    port = 0
  }
}
service submission-login {
  inet_listener submission {
    port = ${submission}
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${lmtp}
  }
  unix_listener lmtp {
    mode = 0666
  }
}
${sieve ? `service managesieve-login {
  inet_listener sieve {
    port = ${sieve}
  }
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
` : ''}${o.extraConf ?? ''}
`);
    // The daemon keeps the stdio it inherited: with pipes, execFile would wait for it forever.
    // So no pipes, and only the exit of the foreground process (after it daemonised) counts.
    const code = await new Promise<number | null>((resolve, reject) => {
      const p = spawn('/usr/sbin/dovecot', ['-c', dc.confFile], { stdio: 'ignore', timeout: 30_000 });
      p.once('error', reject);
      p.once('exit', (c) => resolve(c));
    });
    if (code !== 0) throw new Error(`real dovecot failed to start (exit ${code}):\n${dc.log()}`);
    return startOrClean(async () => {
      for (const port of [pop3, imap, lmtp, sieve, submission]) if (port) await waitPort(port, () => dc.log());
      return dc;
    }, () => dc.stop());
  }

  /** The Maildir root of a user (DIR/mail/domain/local). */
  maildir(user: string): string {
    return join(this.dir, 'mail', ...user.split('@').reverse());
  }

  /** `doveadm -c CONF ARGS...` output. */
  async doveadm(...args: string[]): Promise<string> {
    const r = await run('/usr/bin/doveadm', ['-c', this.confFile, ...args], { timeout: 60_000 });
    return r.stdout;
  }

  log(): string {
    try { return readFileSync(this.logFile, 'utf8'); } catch { return ''; }
  }

  async stop(): Promise<void> {
    await run('/usr/bin/doveadm', ['-c', this.confFile, 'stop'], { timeout: 15_000 }).catch(() => {});
    // doveadm stop returns once the master has been signalled; wait for the pid file to go,
    // then SIGKILL a master that is still there (bounded: a stop never holds the test run).
    const pidFile = join(this.dir, 'run', 'master.pid');
    const deadline = Date.now() + 5000;
    while (existsSync(pidFile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (existsSync(pidFile)) {
      try { process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGKILL'); } catch { /* gone meanwhile */ }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function waitPort(port: number, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1' }, () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`real dovecot is not listening on ${port}:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
