/**
 * verify-client: the shared cache file (two readers see each other's lines; torn lines are
 * skipped), the query rules of verify(8) (in progress until a result, positive/negative expiry
 * and refresh, one probe per address per PROBE_TTL, the pending limit), negative caching off,
 * and a cache file that cannot be written (the query throws: smtpd answers 450 4.3.0).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from './mail-conf.ts';
import { VRFY, VerifyCache, VerifyClient, isVerifyProbe, DEL_REQ_FLAG_MTA_VRFY, probeSenderAddress } from './verify-client.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function setup(extra = ''): { config: MainConfig; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'postern-verify-'));
  dirs.push(dir);
  return { dir, config: MainConfig.parse(`data_directory = ${dir}\n${extra}`, join(dir, 'main.cf'), dir) };
}

test('the cache file: btree:PATH → PATH.jsonl; updates are seen by another reader; torn lines skipped', () => {
  const { config, dir } = setup();
  const cache = VerifyCache.forConfig(config);
  assert.equal(cache.path, join(dir, 'verify_cache.jsonl'));
  cache.update('User@Example.COM', VRFY.BOUNCE, 'host x said: 550 no');
  assert.deepEqual(cache.get('user@example.com')?.status, VRFY.BOUNCE);
  appendFileSync(cache.path, '{"a":"torn@example.com","s":0,\n');
  appendFileSync(cache.path, '{"a":"odd@example.com","s":"0","u":"x","p":0,"t":5}\n[1,2]\nnull\n{"a":"bad@example.com","s":7,"u":1,"p":0}\n');
  appendFileSync(cache.path, JSON.stringify({ a: 'other@example.com', s: VRFY.OK, u: Date.now(), p: 0, t: 'ok' }) + '\n');
  assert.equal(cache.get('other@example.com')?.status, VRFY.OK, 'lines another process appended');
  assert.equal(cache.get('torn@example.com'), undefined);
  assert.equal(cache.get('odd@example.com'), undefined, 'wrong types: skipped');
  assert.equal(cache.get('bad@example.com'), undefined, 'an unknown status: skipped');
  writeFileSync(cache.path, '');
  assert.equal(cache.get('other@example.com'), undefined, 'a truncated file is read again from the start');
  assert.ok(isVerifyProbe(String(DEL_REQ_FLAG_MTA_VRFY)) && !isVerifyProbe('0') && !isVerifyProbe(undefined) && !isVerifyProbe('x'));
});

test('query: in progress and one probe until the result; expiry and refresh times; negative cache off', async () => {
  const { config } = setup('address_verify_map = btree:$data_directory/q\naddress_verify_negative_refresh_time = 1s\naddress_verify_negative_expire_time = 1d\n');
  const cache = VerifyCache.forConfig(config);
  const probes: string[] = [];
  const v = new VerifyClient(config, cache, async (a) => { probes.push(a); });
  assert.deepEqual(await v.query('a@example.com'), { status: VRFY.TODO, text: 'Address verification in progress' });
  assert.deepEqual(await v.query('a@example.com'), { status: VRFY.TODO, text: 'Address verification in progress' });
  assert.deepEqual(probes, ['a@example.com'], 'one probe per address while one is out');
  cache.update('a@example.com', VRFY.BOUNCE, 'host x said: 550 no');
  assert.deepEqual(await v.query('a@example.com'), { status: VRFY.BOUNCE, text: 'host x said: 550 no' });
  assert.equal(probes.length, 1);
  // Older than the negative refresh time: still answered, and refreshed by one new probe.
  const e = cache.get('a@example.com')!;
  cache.put('a@example.com', { ...e, updated: Date.now() - 5000 });
  assert.equal((await v.query('a@example.com')).status, VRFY.BOUNCE);
  assert.deepEqual(probes, ['a@example.com', 'a@example.com']);
  // Older than the expiry: forgotten (in progress again).
  cache.put('a@example.com', { ...e, updated: Date.now() - 2 * 86400_000, probed: 0 });
  assert.equal((await v.query('a@example.com')).status, VRFY.TODO);
  // A positive answer stands for address_verify_positive_refresh_time without a probe.
  cache.update('ok@example.com', VRFY.OK, 'deliverable');
  const before = probes.length;
  assert.equal((await v.query('ok@example.com')).status, VRFY.OK);
  assert.equal(probes.length, before);
  // address_verify_negative_cache = no: a failure is not kept.
  cache.update('neg@example.com', VRFY.BOUNCE, '550 no', false);
  assert.equal((await v.query('neg@example.com')).status, VRFY.TODO);
});

test('address_verify_pending_request_limit bounds the probes being queued at once', async () => {
  const { config } = setup('address_verify_map = btree:$data_directory/p\naddress_verify_pending_request_limit = 2\n');
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const probes: string[] = [];
  const v = new VerifyClient(config, VerifyCache.forConfig(config), async (a) => { probes.push(a); await gate; });
  const q = ['a', 'b', 'c', 'd'].map((x) => v.query(`${x}@example.com`));
  await new Promise((r) => setImmediate(r));
  assert.equal(probes.length, 2);
  release();
  await Promise.all(q);
});

test('a cache that cannot be written: the query throws (smtpd: 450 4.3.0 address verification problem)', async () => {
  // A file where the cache's directory should be: no one, root included, can create it.
  const { config, dir } = setup('address_verify_map = btree:$data_directory/blocked/c\n');
  writeFileSync(join(dir, 'blocked'), 'not a directory');
  const v = new VerifyClient(config, VerifyCache.forConfig(config), async () => {});
  await assert.rejects(v.query('x@example.com'), /EEXIST|ENOTDIR/);
});

test('compact(): expired entries dropped, the rest kept; another reader follows the new file', () => {
  const { config } = setup('address_verify_map = btree:$data_directory/c\n');
  const writer = VerifyCache.forConfig(config);
  const now = Date.now();
  writer.put('old-ok@example.com', { status: VRFY.OK, updated: now - 40 * 86400_000, probed: 0, text: 'ok' });
  writer.put('new-ok@example.com', { status: VRFY.OK, updated: now, probed: 0, text: 'ok' });
  writer.put('old-bad@example.com', { status: VRFY.BOUNCE, updated: now - 4 * 86400_000, probed: 0, text: '550' });
  writer.put('new-bad@example.com', { status: VRFY.BOUNCE, updated: now - 3600_000, probed: 0, text: '550' });
  writer.put('probing@example.com', { status: VRFY.TODO, updated: 0, probed: now, text: '' });
  writer.put('new-ok@example.com', { status: VRFY.OK, updated: now, probed: 0, text: 'ok again' });
  // A reader that has read the old file (another process: a second object on the same file).
  const reader = new (VerifyCache as unknown as { new (p: string): VerifyCache })(writer.path);
  assert.equal(reader.get('old-ok@example.com')?.status, VRFY.OK);
  assert.deepEqual(writer.compact(31 * 86400_000, 3 * 86400_000, now), { retained: 3, dropped: 2 });
  assert.equal(readFileSync(writer.path, 'utf8').trim().split('\n').length, 3);
  assert.equal(reader.get('new-ok@example.com')?.text, 'ok again');
  assert.equal(reader.get('old-ok@example.com'), undefined);
  writer.update('after@example.com', VRFY.OK, 'ok');
  assert.equal(reader.get('after@example.com')?.status, VRFY.OK);
});

test('refresh and expiry with short times (verify.c): old answers stand while a refresh probe is out; a failed probe never replaces a deliverable address', async () => {
  const { config } = setup([
    'address_verify_map = btree:$data_directory/r',
    'address_verify_positive_refresh_time = 2s', 'address_verify_positive_expire_time = 10s',
    'address_verify_negative_refresh_time = 1s', 'address_verify_negative_expire_time = 5s', '',
  ].join('\n'));
  const cache = VerifyCache.forConfig(config);
  const probes: string[] = [];
  const v = new VerifyClient(config, cache, async (a) => { probes.push(a); });
  const t0 = Date.now();
  const s = 1000;
  // Deliverable: no probe before the positive refresh time.
  cache.update('ok@example.com', VRFY.OK, 'delivers to mailbox', true, t0);
  assert.equal((await v.query('ok@example.com', t0 + 1 * s)).status, VRFY.OK);
  assert.deepEqual(probes, []);
  // After it: still deliverable, one refresh probe (and not another while it is out).
  assert.equal((await v.query('ok@example.com', t0 + 3 * s)).status, VRFY.OK);
  assert.equal((await v.query('ok@example.com', t0 + 4 * s)).status, VRFY.OK);
  assert.deepEqual(probes, ['ok@example.com']);
  // The probe is deferred (the next hop is down), then bounced: both ignored.
  assert.equal(cache.update('ok@example.com', VRFY.DEFER, 'connect to x: Connection refused', true, t0 + 5 * s), 'kept');
  assert.equal(cache.update('ok@example.com', VRFY.BOUNCE, 'host x said: 550 no', true, t0 + 5 * s), 'kept');
  assert.deepEqual(await v.query('ok@example.com', t0 + 6 * s), { status: VRFY.OK, text: 'delivers to mailbox' });
  // Past the positive expiry, but a probe went out less than PROBE_TTL ago: still answered.
  assert.equal((await v.query('ok@example.com', t0 + 11 * s)).status, VRFY.OK);
  // Past the expiry with no probe out: in progress again, and probed.
  assert.equal((await v.query('ok@example.com', t0 + 3 * s + 1001 * s)).status, VRFY.TODO);
  assert.equal(probes.length, 2);

  // Undeliverable: answered, refreshed after the negative refresh time; a deferred result
  // replaces it (the cache says what the last probe found), a deliverable one too.
  cache.update('bad@example.com', VRFY.BOUNCE, 'host x said: 550 no', true, t0);
  assert.deepEqual(await v.query('bad@example.com', t0 + 500), { status: VRFY.BOUNCE, text: 'host x said: 550 no' });
  assert.equal(probes.length, 2);
  assert.equal((await v.query('bad@example.com', t0 + 2 * s)).status, VRFY.BOUNCE);
  assert.equal(probes.length, 3);
  assert.equal(cache.update('bad@example.com', VRFY.DEFER, 'connect to x: Connection refused', true, t0 + 2 * s), 'updated');
  assert.deepEqual(await v.query('bad@example.com', t0 + 2 * s + 500), { status: VRFY.DEFER, text: 'connect to x: Connection refused' });
  assert.equal(cache.update('bad@example.com', VRFY.OK, 'delivers to mailbox', true, t0 + 3 * s), 'updated');
  assert.equal((await v.query('bad@example.com', t0 + 3 * s + 500)).status, VRFY.OK);
  // Undeliverable past the negative expiry: forgotten.
  cache.update('gone@example.com', VRFY.BOUNCE, '550', true, t0);
  assert.equal((await v.query('gone@example.com', t0 + 6 * s)).status, VRFY.TODO);
});

test('address_verify_negative_cache = no: failures are not written, every query of an unknown address probes, an expired entry is forgotten', async () => {
  const { config } = setup('address_verify_map = btree:$data_directory/n\naddress_verify_negative_cache = no\naddress_verify_positive_expire_time = 10s\n');
  const cache = VerifyCache.forConfig(config);
  const probes: string[] = [];
  const v = new VerifyClient(config, cache, async (a) => { probes.push(a); });
  assert.equal((await v.query('x@example.com')).status, VRFY.TODO);
  assert.equal((await v.query('x@example.com')).status, VRFY.TODO);
  assert.deepEqual(probes, ['x@example.com', 'x@example.com'], 'no mark is kept for a new address (Postfix: a probe per lookup)');
  assert.equal(cache.update('x@example.com', VRFY.BOUNCE, '550 no', false), 'not-cached');
  assert.equal(cache.get('x@example.com'), undefined);
  const t0 = Date.now();
  cache.update('y@example.com', VRFY.OK, 'ok', false, t0);
  assert.equal((await v.query('y@example.com', t0 + 20_000)).status, VRFY.TODO);
  assert.equal(cache.get('y@example.com')?.updated, 0, 'the expired entry was forgotten');
});

test('hostile probe results: control characters and CR LF in a next hop\'s text never reach the cache (nor smtpd\'s reply)', () => {
  const { config } = setup('address_verify_map = btree:$data_directory/h\n');
  const cache = VerifyCache.forConfig(config);
  cache.update('evil@example.com', VRFY.BOUNCE, 'host x said: 550 no\r\n250 fake\0\x1b[31m', true);
  assert.equal(cache.get('evil@example.com')?.text, 'host x said: 550 no??250 fake??[31m');
  cache.update('long@example.com', VRFY.BOUNCE, 'x'.repeat(100_000), true);
  assert.equal(cache.get('long@example.com')?.text.length, 1000);
});

test('probe sender (make_verify_sender_addr): $double_bounce_sender@$myorigin, <> = null, address_verify_sender_ttl adds Postfix\'s base-31 time stamp', () => {
  const cfg = (extra: string) => MainConfig.parse(`myorigin = example.test\n${extra}`, '/nonexistent/main.cf', '/nonexistent');
  assert.equal(probeSenderAddress(cfg('')), 'double-bounce@example.test');
  assert.equal(probeSenderAddress(cfg('address_verify_sender = <>')), '');
  assert.equal(probeSenderAddress(cfg('address_verify_sender = probe@other.test')), 'probe@other.test');
  // 1 day ttl at 2026-12-08 00:00 UTC: epoch 20795 days = 21*31^2 + 19*31 + 25 → "PMT" (digits 0-9 then BCDFGHJKLMNPQRST...).
  // (Postfix 3.7 with address_verify_sender_ttl = 1d sent its probes that day from double-bouncePMT@example.test.)
  const t = Date.UTC(2026, 11, 8);
  assert.equal(Math.floor(t / 86400_000), 20795);
  assert.equal(probeSenderAddress(cfg('address_verify_sender_ttl = 1d'), t), 'double-bouncePMT@example.test');
  assert.equal(probeSenderAddress(cfg('address_verify_sender = probe@other.test\naddress_verify_sender_ttl = 1d'), t), 'probePMT@other.test');
  assert.equal(probeSenderAddress(cfg('address_verify_sender = <>\naddress_verify_sender_ttl = 1d'), t), '', 'the null sender has no time stamp');
});
