/**
 * End-to-end: `postern -c EMPTY_DIR start` as an administrator runs it. The embedded default is
 * written, the master reports ready, `status`/`reload`/`stop` work through the pid file, a second
 * start is refused, and a broken configuration stops the start with the file and line.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePortBase } from '../harness/free-port.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const POSTERN = join(ROOT, 'bin', 'postern');
const tmp = mkdtempSync(join(tmpdir(), 'postern-e2e-start-'));
const children: import('node:child_process').ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

function postern(dir: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(POSTERN, ['-c', dir, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function waitFor(what: string, cond: () => boolean, ms = 20_000, log = () => ''): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}\n${log()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('start on an empty directory, status, second start, reload, stop', async () => {
  const dir = join(tmp, 'conf');
  const base = await freePortBase(9);
  const child = spawn(POSTERN, ['-c', dir, 'start'], { env: { ...process.env, POSTERN_PORT_BASE: String(base) }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const logs = () => `stdout:\n${out}\nstderr:\n${err}`;

  await waitFor('ready', () => err.includes(`daemon started -- version 0.1.0, configuration ${dir}`), 20_000, logs);
  assert.match(err, new RegExp(`postern/master\\[${child.pid}\\]: daemon started`));

  // The default configuration, announced on stdout with the password and the ports.
  for (const f of ['main.cf', 'master.cf', 'dovecot.conf', 'dovecot-sql.conf.ext', 'tls/postern.crt', 'tls/postern.key']) {
    assert.ok(existsSync(join(dir, f)), `${f} written`);
  }
  assert.equal(statSync(join(dir, 'tls', 'postern.key')).mode & 0o777, 0o600);
  assert.match(readFileSync(join(dir, 'master.cf'), 'utf8'), new RegExp(`^${base + 1} +inet`, 'm'));
  assert.match(out, new RegExp(`wrote a working default .* mail data in ${dir}/data`));
  assert.match(out, /postern: user postmaster@example\.test has the password [A-Za-z0-9]{16}\n/);
  assert.match(out, new RegExp(`swaks --server 127\\.0\\.0\\.1 --port ${base} `));

  // The pid file, in Postfix's place and format.
  const pidFile = join(dir, 'data', 'queue', 'pid', 'master.pid');
  assert.equal(readFileSync(pidFile, 'latin1'), `${String(child.pid).padStart(10)}\n`);

  const st = postern(dir, 'status');
  assert.equal(st.status, 0, st.stderr);
  assert.equal(st.stderr, `postern/postern-script: the Postern mail system is running: PID: ${child.pid}\n`);

  // A second master is refused and the first keeps its pid file.
  const second = postern(dir, 'start');
  assert.equal(second.status, 1);
  assert.match(second.stderr, /^postern\/postern-script: fatal: the Postern mail system is already running$/m);
  assert.equal(readFileSync(pidFile, 'latin1'), `${String(child.pid).padStart(10)}\n`);
  assert.equal(child.exitCode, null);

  // reload = SIGHUP; the master logs it.
  const rl = postern(dir, 'reload');
  assert.equal(rl.status, 0, rl.stderr);
  assert.equal(rl.stderr, 'postern/postern-script: refreshing the Postern mail system\n');
  await waitFor('reload logged', () => err.includes(`reload -- version 0.1.0, configuration ${dir}`), 10_000, logs);

  // stop = SIGTERM, waits for the exit.
  const sp = postern(dir, 'stop');
  assert.equal(sp.status, 0, sp.stderr);
  assert.equal(sp.stderr, 'postern/postern-script: stopping the Postern mail system\n');
  assert.equal(await exited, 0);
  assert.match(err, /postern\/master\[\d+\]: terminating on signal 15/);
  assert.equal(existsSync(pidFile), false, 'pid file removed');

  const after = postern(dir, 'status');
  assert.equal(after.status, 1);
  assert.equal(after.stderr, 'postern/postern-script: the Postern mail system is not running\n');
  const stop2 = postern(dir, 'stop');
  assert.equal(stop2.status, 1);
  assert.equal(stop2.stderr, 'postern/postern-script: fatal: the Postern mail system is not running\n');

  // Started again on the existing configuration: no new default, same user database.
  const again = spawn(POSTERN, ['-c', dir, 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(again);
  let out2 = '';
  let err2 = '';
  again.stdout!.on('data', (d) => { out2 += d; });
  again.stderr!.on('data', (d) => { err2 += d; });
  const exited2 = new Promise<number | null>((r) => again.on('exit', (code) => r(code)));
  await waitFor('second ready', () => err2.includes('daemon started'), 20_000, () => err2);
  assert.equal(out2, '', 'nothing written the second time');
  again.kill('SIGINT');
  assert.equal(await exited2, 0);
  assert.match(err2, /terminating on signal 2/);
});

test('a broken configuration stops the start with the file and line', () => {
  const dir = join(tmp, 'broken');
  const first = spawnSync(POSTERN, ['-c', dir, 'status'], { encoding: 'utf8' });
  assert.equal(first.status, 1, 'status on a directory that does not exist');
  // Write the default, then break master.cf.
  spawnSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'main.cf'), `queue_directory = ${dir}/queue\n`);
  writeFileSync(join(dir, 'master.cf'), 'smtp inet n - n - - smtpd\nsmtp inet n - n - - smtpd\n');
  const r = postern(dir, 'start');
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`postern: fatal: ${dir}/master\\.cf, line 2: duplicate master\\.cf entry for service "smtp"`));
  assert.equal(existsSync(join(dir, 'queue', 'pid', 'master.pid')), false);

  // main.cf without master.cf: not silently replaced by the default, and the message says why.
  rmSync(join(dir, 'master.cf'));
  const noMaster = postern(dir, 'start');
  assert.equal(noMaster.status, 1);
  assert.match(noMaster.stderr, new RegExp(`postern: fatal: ${dir}/master\\.cf: no such file; a configuration directory needs master\\.cf`));
  assert.equal(existsSync(join(dir, 'dovecot.conf')), false, 'no default written over a partial configuration');

  // CONFIG_DIR that is a file.
  const file = join(tmp, 'not-a-dir');
  writeFileSync(file, 'x');
  const notDir = postern(file, 'start');
  assert.equal(notDir.status, 1);
  assert.equal(notDir.stderr, `postern: fatal: ${file} is not a directory; name a configuration directory with -c DIR\n`);
});
