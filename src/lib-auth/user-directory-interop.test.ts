/**
 * Interop: a passwd-file written by `postern user add` is served by a real Dovecot 2.3 auth
 * process (private config and base_dir in a temp dir, no network listeners), and
 * `doveadm auth test` / `doveadm user` agree with `postern user verify` / `postern user`.
 * Needs root (Dovecot drops privileges to its own users) and the dovecot binaries; skipped otherwise.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { doveadm as doveadmIn, haveDovecotAuth as haveDovecot, posternUser, startDovecotAuth, stopDovecots, writeAuthConf } from '../../test/harness/dovecot-auth-kit.ts';

const tmp = mkdtempSync(join(tmpdir(), 'postern-dovecot-auth-'));
let dovecot: ChildProcess | undefined;
after(async () => {
  // Wait for Dovecot to exit before removing its base_dir (it writes there while stopping).
  if (dovecot) await stopDovecots([dovecot]);
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const postern = (args: string[], input = '') => posternUser(tmp, args, input);
const doveadm = (args: string[]) => doveadmIn(tmp, args);

test('Dovecot authenticates users that postern user wrote, and both print the same', { skip: !haveDovecot && 'needs root and dovecot' }, async () => {
  chmodSync(tmp, 0o755); // Dovecot's auth process runs as an unprivileged user
  const users = join(tmp, 'users');
  writeFileSync(users, '# written by hand\nhand@example.com:{PLAIN}handpw:2000:2000::/srv/hand::userdb_mail=maildir:/srv/hand/Maildir\n');
  chmodSync(users, 0o644);
  writeAuthConf(tmp, `passdb {
  driver = passwd-file
  args = scheme=CRYPT ${users}
}
userdb {
  driver = passwd-file
  args = ${users}
  default_fields = uid=5000 gid=5000 home=/var/vmail/%d/%n
}
`, 'maildir:/var/vmail/%d/%n');
  const schemes = ['SHA512-CRYPT', 'BLF-CRYPT', 'ARGON2ID', 'SSHA512', 'MD5-CRYPT'];
  for (const [i, s] of schemes.entries()) {
    const r = postern(['user', 'add', `u${i}@example.com`, '-s', s, '--quota', '1G'], `pw-${s}\n`);
    assert.equal(r.code, 0, r.err);
  }
  chmodSync(users, 0o644);
  dovecot = await startDovecotAuth(tmp);

  for (const [i, s] of schemes.entries()) {
    const user = `u${i}@example.com`;
    const d = doveadm(['auth', 'test', user, `pw-${s}`]);
    assert.equal(d.code, 0, `dovecot rejects ${user} (${s}): ${d.out}`);
    const p = postern(['user', 'verify', user], `pw-${s}\n`);
    assert.equal(p.code, 0);
    assert.equal(p.out, d.out.replace(/\n\s*\n$/, '\n').replace(/\n  \n/, '\n'), 'same text as doveadm auth test');
    assert.equal(doveadm(['auth', 'test', user, 'wrong']).code, 77);
    assert.equal(postern(['user', 'verify', user], 'wrong\n').code, 77);
  }
  // The same userdb fields. Dovecot prints mail_location unexpanded when it comes from
  // mail_location rather than the userdb; here it comes from the userdb, so the text matches.
  const theirs = doveadm(['user', 'hand@example.com']);
  const ours = postern(['user', 'hand@example.com']);
  assert.equal(theirs.code, 0);
  assert.equal(ours.out, theirs.out);
  const q = postern(['user', 'u0@example.com']);
  const dq = doveadm(['user', 'u0@example.com']);
  const fields = (t: string) => Object.fromEntries(t.trim().split('\n').slice(1).map((l) => l.split('\t')));
  assert.equal(fields(q.out).uid, fields(dq.out).uid);
  assert.equal(fields(q.out).home, fields(dq.out).home);
  assert.equal(fields(q.out).quota_rule, fields(dq.out).quota_rule);
  assert.equal(doveadm(['user', 'ghost@example.com']).code, 67);
  assert.equal(postern(['user', 'ghost@example.com']).code, 67);
  assert.deepEqual(postern(['user', 'list']).out.trim().split('\n'), doveadm(['user', '-u', '*']).out.trim().split('\n').sort());
});
