/**
 * Tests for password-scheme: every scheme both ways against the real `doveadm pw` (Dovecot 2.3):
 * hashes made by doveadm verify here, hashes made here verify with `doveadm pw -t`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { listSchemes, MAX_PASSWORD_BYTES, passwordHash, passwordVerify, splitScheme } from './password-scheme.ts';
import { MAX_SHA_CRYPT_ROUNDS } from './password-crypt.ts';

const hasDoveadm = spawnSync('doveadm', ['pw', '-l'], { encoding: 'utf8' }).status === 0;
const dovecotSchemes = hasDoveadm ? spawnSync('doveadm', ['pw', '-l'], { encoding: 'utf8' }).stdout.trim().split(/\s+/) : [];

function doveadmHash(scheme: string, pw: string): string {
  const r = spawnSync('doveadm', ['pw', '-s', scheme, '-p', pw], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}
function doveadmVerifies(hash: string, pw: string): boolean {
  return spawnSync('doveadm', ['pw', '-t', hash, '-p', pw], { encoding: 'utf8' }).status === 0;
}

const SCHEMES = ['PLAIN', 'CLEARTEXT', 'CRYPT', 'MD5-CRYPT', 'SHA256-CRYPT', 'SHA512-CRYPT', 'BLF-CRYPT', 'ARGON2I', 'ARGON2ID',
  'SSHA512', 'SHA512', 'SSHA256', 'SHA256', 'SSHA', 'SHA', 'SHA1', 'SMD5', 'PLAIN-MD5', 'LDAP-MD5', 'PBKDF2',
  'SCRAM-SHA-1', 'SCRAM-SHA-256', 'SHA256.HEX', 'SSHA.B64', 'PLAIN.B64', 'PLAIN-MD5.B64', 'SHA512.hex', 'MD5'];
const PASSWORDS = ['sécret pass', 'x', ''];

test('doveadm pw hashes verify here, wrong passwords do not', { skip: !hasDoveadm && 'doveadm not installed' }, async () => {
  for (const scheme of SCHEMES) {
    if (!dovecotSchemes.includes(scheme.split('.')[0]!.toUpperCase())) continue;
    for (const pw of PASSWORDS) {
      if (pw === '' && /ARGON|SCRAM|PBKDF2/.test(scheme)) continue; // doveadm refuses empty for some
      const h = doveadmHash(scheme, pw);
      const good = await passwordVerify(pw, h);
      assert.equal(good.match, true, `${h} should verify "${pw}": ${good.error ?? ''}`);
      const bad = await passwordVerify(pw + 'x', h);
      assert.equal(bad.match, false, `${h} must not verify "${pw}x"`);
    }
  }
});

test('our hashes verify with doveadm pw -t and print as doveadm does', { skip: !hasDoveadm && 'doveadm not installed' }, async () => {
  for (const scheme of SCHEMES) {
    for (const pw of ['sécret pass', 'x']) {
      const h = await passwordHash(scheme, pw);
      assert.ok(h.startsWith(`{${scheme.toUpperCase()}}`), h);
      assert.equal(doveadmVerifies(h, pw), true, `doveadm rejects our ${h}`);
      assert.equal(doveadmVerifies(h, pw + 'y'), false, `doveadm accepts wrong password for ${h}`);
      assert.equal((await passwordVerify(pw, h)).match, true, h);
    }
  }
});

test('rounds= for sha-crypt matches doveadm -r', { skip: !hasDoveadm && 'doveadm not installed' }, async () => {
  const r = spawnSync('doveadm', ['pw', '-s', 'SHA512-CRYPT', '-r', '7000', '-p', 'pw'], { encoding: 'utf8' });
  const h = r.stdout.trim();
  assert.match(h, /\$6\$rounds=7000\$/);
  assert.equal((await passwordVerify('pw', h)).match, true);
  const ours = await passwordHash('SHA256-CRYPT', 'pw', { rounds: 6000 });
  assert.match(ours, /^\{SHA256-CRYPT\}\$5\$rounds=6000\$/);
  assert.equal(doveadmVerifies(ours, 'pw'), true);
});

test('known vectors: crypt(3) strings from glibc and Drepper\'s specification', async () => {
  // From the SHA-crypt specification's test vectors (also what glibc crypt(3) gives).
  assert.equal((await passwordVerify('Hello world!', '{CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5')).match, true);
  assert.equal((await passwordVerify('Hello world!', '{CRYPT}$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.')).match, true);
  // A bare $1$ string is MD5-CRYPT (Dovecot password_get_scheme).
  assert.equal(splitScheme('$1$ur3fGyru$bSbpAjhJw8Rike.uzeorF0').scheme, 'MD5-CRYPT');
  assert.equal((await passwordVerify('sécret', '$1$ur3fGyru$bSbpAjhJw8Rike.uzeorF0')).match, true);
  // Default scheme applies without a prefix; PLAIN-MD5 accepts hex or base64.
  assert.equal((await passwordVerify('sécret', 'e6a0d5dd68c8cad86d2b5deffcf914de', 'PLAIN-MD5')).match, true);
  assert.equal((await passwordVerify('sécret', '5qDV3WjIythtK13v/PkU3g==', 'PLAIN-MD5')).match, true);
});

test('hostile stored hashes give a mismatch with an error, never a throw', async () => {
  const cases = [
    'nobrace', '{NOSUCH}abc', '{SHA512-CRYPT}', '{SHA512-CRYPT}$6$', '{SHA}!!!notbase64', '{SHA}YWJj',
    '{SSHA}YQ==', '{PLAIN-MD5}zz', '{ARGON2ID}$argon2id$v=19$m=99999999,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g',
    '{ARGON2ID}$argon2id$v=16$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g', '{ARGON2ID}garbage',
    `{SHA512-CRYPT}$6$rounds=${MAX_SHA_CRYPT_ROUNDS + 1}$salt$x`, '{BLF-CRYPT}$2y$31$' + 'a'.repeat(53), '{BLF-CRYPT}$2y$05$short',
    '{CRYPT}abcdefghijklm', '{PBKDF2}$1$x$999999999999$00', '{SCRAM-SHA-1}a,b', '{SHA.foo}abc', '{PLAIN-TRUNC}x', '{}', '{',
    '{CRYPT}', '{PLAIN}\0',
  ];
  for (const h of cases) {
    const r = await passwordVerify('secret', h);
    assert.equal(r.match, false, h);
  }
  assert.match((await passwordVerify('x', 'nobrace')).error!, /Missing \{scheme\}/);
  assert.match((await passwordVerify('x', '{NOSUCH}a')).error!, /Unknown scheme: NOSUCH/);
  assert.match((await passwordVerify('x', '{CRYPT}abcdefghijklm')).error!, /DES/);
});

test('plaintexts are bounded: 10 MB is refused quickly, NUL refused', async () => {
  const big = 'a'.repeat(10 * 1024 * 1024);
  const t0 = Date.now();
  const r = await passwordVerify(big, '{SHA512-CRYPT}$6$abc$def');
  assert.equal(r.match, false);
  assert.match(r.error!, /too long/);
  assert.ok(Date.now() - t0 < 500);
  await assert.rejects(passwordHash('SHA512-CRYPT', 'a'.repeat(MAX_PASSWORD_BYTES + 1)), /too long/);
  await assert.rejects(passwordHash('PLAIN', 'a\0b'), /NUL/);
  await assert.rejects(passwordHash('NOSUCH', 'a'), /Unknown scheme/);
});

test('listSchemes names the generated schemes in Dovecot spelling', () => {
  const l = listSchemes();
  for (const s of ['SHA512-CRYPT', 'BLF-CRYPT', 'ARGON2ID', 'PLAIN', 'SSHA512']) assert.ok(l.includes(s), s);
  assert.ok(!l.includes('DES-CRYPT'));
});
