/**
 * bench-opendkim - a private OpenDKIM (Debian's opendkim) signing milter on a loopback port, for
 * `milter-opendkim-20`: both contenders get `smtpd_milters = inet:127.0.0.1:PORT` and the same
 * OpenDKIM instance (used by one side at a time: the runner alternates), which signs every
 * message of the bench sender's domain with a 2048-bit RSA key (KeyTable, SigningTable), as a
 * Postfix + OpenDKIM site does.
 */
import { spawn } from 'node:child_process';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'node:net';
import { freePort } from '../test/harness/free-port.ts';
import { BENCH_SENDER } from './bench-site.ts';
import type { Cleanup } from './bench-scenario.ts';

const run = promisify(execFile);

export function opendkimUnavailable(): string | undefined {
  return existsSync('/usr/sbin/opendkim') && existsSync('/usr/sbin/opendkim-genkey') ? undefined : 'Debian packages opendkim and opendkim-tools';
}

/** Start OpenDKIM under `dir`; returns the milter endpoint. */
export async function startOpendkim(dir: string, cleanup: Cleanup): Promise<string> {
  const domain = BENCH_SENDER.slice(BENCH_SENDER.indexOf('@') + 1);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  await run('/usr/sbin/opendkim-genkey', ['-b', '2048', '-d', domain, '-s', 'bench', '-D', dir]);
  const port = await freePort();
  writeFileSync(join(dir, 'KeyTable'), `bench._domainkey.${domain} ${domain}:bench:${dir}/bench.private\n`);
  writeFileSync(join(dir, 'SigningTable'), `*@${domain} bench._domainkey.${domain}\n`);
  writeFileSync(join(dir, 'TrustedHosts'), '127.0.0.1\n::1\n');
  writeFileSync(join(dir, 'opendkim.conf'), [
    'Syslog no', 'Mode s', `Socket inet:${port}@127.0.0.1`, `KeyTable file:${dir}/KeyTable`,
    `SigningTable refile:${dir}/SigningTable`, `InternalHosts ${dir}/TrustedHosts`, 'RequireSafeKeys false',
    'Canonicalization relaxed/simple', `PidFile ${dir}/pid`, 'Background no', '',
  ].join('\n'));
  const p = spawn('/usr/sbin/opendkim', ['-f', '-x', join(dir, 'opendkim.conf')], { stdio: 'ignore' });
  cleanup.add('stop OpenDKIM', async () => { p.kill('SIGKILL'); });
  const deadline = Date.now() + 15_000;
  for (;;) {
    const up = await new Promise<boolean>((res) => {
      const s = connect({ host: '127.0.0.1', port }, () => { s.destroy(); res(true); });
      s.on('error', () => res(false));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error('OpenDKIM did not start within 15 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  return `inet:127.0.0.1:${port}`;
}
