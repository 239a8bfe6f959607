/**
 * dovecot-auth-kit - what the passdb/userdb differential tests (ldap, sql) share: a private
 * dovecot.conf whose passdb and userdb read one `dovecot-DRIVER.conf.ext`, a real Dovecot 2.3
 * started on it for its auth process only (`protocols =`), and the two commands compared:
 * `doveadm auth test` / `doveadm user` against `postern user verify` / `postern user`.
 *
 *   const dir = authConfDir(tmp, 'lookup', 'ldap', extText);
 *   dovecots.push(await startDovecotAuth(dir));
 *   assert.equal(posternUser(dir, ['user', 'verify', u], 'pw\n').code, doveadm(dir, ['auth', 'test', u, 'pw']).code);
 *   after(() => stopDovecots(dovecots));
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { dovecotClockLine } from './test-clock.ts';

const POSTERN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'postern.ts');

/** Real Dovecot can run its auth process here (it needs root to drop privileges). */
export const haveDovecotAuth = spawnSync('dovecot', ['--version']).status === 0 && process.getuid?.() === 0;

/** The passdb and userdb sections reading DIR/dovecot-DRIVER.conf.ext. */
export function passdbUserdb(dir: string, driver: 'ldap' | 'sql'): string {
  return `passdb {
  driver = ${driver}
  args = ${dir}/dovecot-${driver}.conf.ext
}
userdb {
  driver = ${driver}
  args = ${dir}/dovecot-${driver}.conf.ext
}
`;
}

/**
 * DIR/dovecot.conf for Dovecot's auth process only: no listeners, no failure delay and no auth
 * penalty (failed attempts would slow the next step), `dbs` (the passdb and userdb sections).
 */
export function writeAuthConf(dir: string, dbs: string, mailLocation = 'maildir:~/Maildir'): void {
  writeFileSync(join(dir, 'dovecot.conf'), `protocols =
base_dir = ${dir}/run
${dovecotClockLine()}
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
ssl = no
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
mail_location = ${mailLocation}
${dbs}`);
}

/** TMP/NAME holding dovecot-DRIVER.conf.ext (`ext`) and a dovecot.conf that uses it; returns the dir. */
export function authConfDir(tmp: string, name: string, driver: 'ldap' | 'sql', ext: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, `dovecot-${driver}.conf.ext`), ext);
  chmodSync(join(dir, `dovecot-${driver}.conf.ext`), 0o644);
  writeAuthConf(dir, passdbUserdb(dir, driver));
  return dir;
}

/** Real Dovecot on DIR/dovecot.conf, once its auth-userdb socket is there. */
export async function startDovecotAuth(dir: string): Promise<ChildProcess> {
  const d = spawn('dovecot', ['-F', '-c', join(dir, 'dovecot.conf')], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync(join(dir, 'run', 'auth-userdb')); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(join(dir, 'run', 'auth-userdb')), 'dovecot auth started');
  return d;
}

/** SIGTERM each Dovecot still running and wait for it (5 s at most each). */
export async function stopDovecots(dovecots: ChildProcess[]): Promise<void> {
  for (const d of dovecots) {
    if (d.exitCode === null && d.signalCode === null) {
      const exited = once(d, 'exit');
      d.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
  }
}

/** `postern -c DIR ARGS` with `input` on stdin. */
export function posternUser(dir: string, args: string[], input = ''): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [POSTERN, '-c', dir, ...args], { input, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** `doveadm -c DIR/dovecot.conf ARGS`. */
export function doveadm(dir: string, args: string[]): { code: number; out: string } {
  const r = spawnSync('doveadm', ['-c', join(dir, 'dovecot.conf'), ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, out: r.stdout };
}

/** `doveadm user` / `postern user` output → field → value (the first line is the user). */
export const userFields = (t: string): Record<string, string> => Object.fromEntries(t.trim().split('\n').slice(1).map((l) => l.split('\t')));

/** doveadm auth test's text with its trailing blank line(s) as `postern user verify` prints it. */
export const normAuthTest = (s: string): string => s.replace(/\n\s*\n$/, '\n').replace(/\n  \n/, '\n');

/** `postern user verify` answers as `doveadm auth test` for this login and password: exit code, and the text on success. */
export function assertSameVerify(dir: string, user: string, pw: string, what: string): void {
  const theirs = doveadm(dir, ['auth', 'test', user, pw]);
  const ours = posternUser(dir, ['user', 'verify', user], `${pw}\n`);
  assert.equal(ours.code, theirs.code, `${what}: exit ${ours.code} vs doveadm ${theirs.code}\n${ours.out}${ours.err}\n--\n${theirs.out}`);
  if (theirs.code === 0) assert.equal(ours.out, normAuthTest(theirs.out), `${user}: same text as doveadm auth test`);
}

/**
 * `postern user` answers as `doveadm user`: the exit code and uid, gid, home. Returns both field
 * sets (ours, theirs) when the user exists, for the caller's checks of the other fields.
 */
export function assertSameUser(dir: string, user: string): [Record<string, string>, Record<string, string>] | undefined {
  const theirs = doveadm(dir, ['user', user]);
  const ours = posternUser(dir, ['user', user]);
  assert.equal(ours.code, theirs.code, `doveadm user ${user}: ${ours.out}${ours.err} vs ${theirs.out}`);
  if (theirs.code !== 0) return undefined;
  const [a, b] = [userFields(ours.out), userFields(theirs.out)];
  for (const f of ['uid', 'gid', 'home']) assert.equal(a[f], b[f], `doveadm user ${user}: ${f}`);
  return [a, b];
}

/**
 * Hostile logins: both refuse them (exit 77) and `postern user` agrees with `doveadm user`
 * (except on names doveadm takes as wildcards over iterate_query: * % ?); then `postern user
 * list` lists what `doveadm user -u '*'` does.
 */
export function assertHostileAndList(dir: string, hostile: string[], pw: string, list = true): void {
  for (const h of hostile) {
    assert.equal(doveadm(dir, ['auth', 'test', h, pw]).code, 77, `dovecot verify ${h}`);
    assert.equal(posternUser(dir, ['user', 'verify', h], `${pw}\n`).code, 77, `postern verify ${h}`);
    if (!/[*%?]/.test(h)) assert.equal(posternUser(dir, ['user', h]).code, doveadm(dir, ['user', h]).code, `user ${h}`);
  }
  if (list) assert.deepEqual(posternUser(dir, ['user', 'list']).out.trim().split('\n'), doveadm(dir, ['user', '-u', '*']).out.trim().split('\n').sort());
}
