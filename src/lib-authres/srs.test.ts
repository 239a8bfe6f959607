/**
 * srs against postsrsd (Debian's postsrsd 1.10, libsrs2's scheme): with the same secret and
 * domain, Postern's SRS0 and SRS1 addresses are byte for byte postsrsd's, each reverses the
 * other's, and tampered or expired addresses are refused. postsrsd runs on loopback ports and
 * is asked through its Postfix tcp_table protocol ("get KEY" → "200 VALUE").
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { srsForward, srsReverse, srsSecrets, type SrsConfig } from './srs.ts';
import { freePort } from '../../test/harness/free-port.ts';

const POSTSRSD = '/usr/sbin/postsrsd';
const skip = existsSync(POSTSRSD) ? undefined : 'Debian package postsrsd is not installed';
const SECRET = 'tH1s-is-the-test-secret';
const cfg: SrsConfig = { domain: 'forward.example', secrets: [SECRET] };
let dir = '';
let child: ChildProcess | undefined;
let fwd = 0, rev = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-srs-'));
  if (skip) return;
  writeFileSync(join(dir, 'secret'), SECRET + '\n');
  fwd = await freePort(); rev = await freePort();
  child = spawn(POSTSRSD, [`-s${join(dir, 'secret')}`, '-dforward.example', '-l127.0.0.1', `-f${fwd}`, `-r${rev}`, '-4'], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    if (await lookup(fwd, 'x@y.example').then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('postsrsd did not start');
});
after(() => { child?.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });

/** Postfix tcp_table: "get <key>" → "200 <value>" | "500 ..."; the key %-encoded as Postfix does. */
function lookup(port: number, key: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    s.on('error', reject);
    s.on('data', (d) => {
      buf += d;
      if (!buf.includes('\n')) return;
      s.end();
      const line = buf.split('\n')[0]!;
      const m = /^(\d{3}) (.*)$/.exec(line);
      if (!m) return reject(new Error(line));
      resolve(m[1] === '200' ? decodeURIComponent(m[2]!) : `${m[1]} ${m[2]}`);
    });
    s.write(`get ${encodeURIComponent(key).replace(/%40/g, '@')}\n`);
  });
}

test('SRS0 and SRS1 addresses are postsrsd\'s, and each side reverses the other\'s', { skip }, async () => {
  const theirs0 = await lookup(fwd, 'alice@example.org');
  assert.match(theirs0, /^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=example\.org=alice@forward\.example$/);
  assert.equal(srsForward('alice@example.org', cfg), theirs0);
  assert.deepEqual(srsReverse(theirs0, cfg), { address: 'alice@example.org' });
  assert.equal(await lookup(rev, srsForward('Bob.Smith@Example.NET', cfg)), 'Bob.Smith@Example.NET');
  // Forwarding an SRS0 address of another forwarder: SRS1, as postsrsd.
  const other0 = 'SRS0=abcd=AB=orig.example=user@first.example';
  const theirs1 = await lookup(fwd, other0);
  assert.equal(srsForward(other0, cfg), theirs1);
  assert.match(theirs1, /^SRS1=[A-Za-z0-9+/]{4}=first\.example==abcd=AB=orig\.example=user@forward\.example$/);
  assert.deepEqual(srsReverse(theirs1, cfg), { address: other0 });
  assert.equal(await lookup(rev, srsForward(other0, cfg)), other0);
  // Our own domain is never rewritten.
  assert.equal(srsForward('carol@forward.example', cfg), 'carol@forward.example');
});

test('tampered hashes, other secrets, expired stamps and malformed addresses are refused', () => {
  const now = Date.UTC(2026, 11, 7);
  const a = srsForward('alice@example.org', cfg, now);
  const h = a.slice(5, 9);
  const bad = a.replace(h, h === 'AAAA' ? 'BBBB' : 'AAAA');
  assert.deepEqual(srsReverse(bad, cfg, now), { error: 'hash invalid in SRS address' });
  assert.deepEqual(srsReverse(a, { ...cfg, secrets: ['another'] }, now), { error: 'hash invalid in SRS address' });
  assert.deepEqual(srsReverse(a, { ...cfg, secrets: ['another', SECRET] }, now), { address: 'alice@example.org' }, 'an older secret on a later line still reverses');
  assert.deepEqual(srsReverse(a, cfg, now + 21 * 86_400_000), { address: 'alice@example.org' });
  assert.deepEqual(srsReverse(a, cfg, now + 22 * 86_400_000), { error: 'time stamp out of date' });
  assert.deepEqual(srsReverse(a.toLowerCase(), cfg, now), { address: 'alice@example.org' }, 'case-insensitive, as libsrs2');
  assert.deepEqual(srsReverse('SRS0=@forward.example', cfg, now), { error: 'malformed SRS0 address' });
  assert.deepEqual(srsReverse('SRS1=xxxx@forward.example', cfg, now), { error: 'malformed SRS1 address' });
  assert.equal(srsReverse('alice@forward.example', cfg, now), undefined);
});

test('the secret file is created (mode 0600, 32 random bytes) when missing, and read back', () => {
  const f = join(dir, 'made.secret');
  const s = srsSecrets(f);
  assert.equal(s.length, 1);
  assert.equal(Buffer.from(s[0]!, 'base64').length, 32);
  assert.equal(statSync(f).mode & 0o777, 0o600);
  assert.equal(readFileSync(f, 'utf8').trim(), s[0]);
});
