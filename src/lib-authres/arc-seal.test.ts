/**
 * arc-seal: ARC sets made by Postern, validated by python3-dkim's ARC verifier (Debian) with the
 * keys on a loopback DNS server: a first set (cv=none), a second set on a chain our own
 * Authentication-Results calls valid (cv=pass), and the refusals: a chain nobody checked, a
 * chain that already failed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arcSeal } from './arc-seal.ts';
import { dkimRecordValue, keygen, readSigningKey } from './dkim-keys.ts';
import type { DkimSigningKey } from './dkim-sign.ts';
import { DnsServer, type Zone } from '../../test/harness/dns-server.ts';
import { pythonArcVerify } from '../../test/harness/dkim-verifiers.ts';

const dir = mkdtempSync(join(tmpdir(), 'postern-arc-'));
let dns: DnsServer;
const keys: Record<string, DkimSigningKey> = {};

before(async () => {
  const zone: Zone = {};
  for (const d of ['first.example', 'forwarder.example']) {
    const k = keygen(dir, d, { selector: 'arc', type: 'rsa' })[0]!;
    const key = readSigningKey(k.file, 'rsa');
    keys[d] = { domain: d, selector: 'arc', key };
    zone[`arc._domainkey.${d}`] = { TXT: [dkimRecordValue(k, key)] };
  }
  dns = await DnsServer.start(zone);
});
after(async () => { await dns?.stop(); rmSync(dir, { recursive: true, force: true }); });

const MSG = 'From: a@sender.example\nTo: list@first.example\nSubject: arc\nDate: Mon, 7 Dec 2026 10:00:00 +0000\n\nhello\n';

test('a first set has cv=none and carries our Authentication-Results; a second, on a chain we found valid, cv=pass', async () => {
  const one = await arcSeal(Buffer.from('Authentication-Results: mx.first.example; spf=pass smtp.mailfrom=sender.example\n' + MSG),
    keys['first.example']!, { authservId: 'mx.first.example' });
  assert.ok('fields' in one, JSON.stringify(one));
  assert.match(one.fields, /^ARC-Authentication-Results: i=1; mx\.first\.example; spf=pass smtp\.mailfrom=sender\.example$/m);
  const hop1 = Buffer.from(one.fields + 'Authentication-Results: mx.first.example; spf=pass smtp.mailfrom=sender.example\n' + MSG);
  const v1 = await pythonArcVerify(hop1, dns.port);
  assert.equal(v1.cv, 'pass', JSON.stringify(v1));

  // The next hop: its own Authentication-Results (what its verifier found) says arc=pass.
  const two = await arcSeal(Buffer.from('Authentication-Results: mx.forwarder.example; arc=pass; spf=fail\n' + hop1.toString()),
    keys['forwarder.example']!, { authservId: 'MX.forwarder.example' });
  assert.ok('fields' in two, JSON.stringify(two));
  assert.match(two.fields, /^ARC-Seal: i=2; a=rsa-sha256; t=\d+; cv=pass;/m);
  const hop2 = Buffer.from(two.fields + 'Authentication-Results: mx.forwarder.example; arc=pass; spf=fail\n' + hop1.toString());
  const v2 = await pythonArcVerify(hop2, dns.port);
  assert.equal(v2.cv, 'pass', JSON.stringify(v2));
  assert.deepEqual(v2.sets.map((s) => [s.i, s.d, s.amsValid, s.asValid]), [[2, 'forwarder.example', true, true], [1, 'first.example', true, true]]);
});

test('not sealed: a chain with no verdict of ours, and a chain whose newest seal failed', async () => {
  const one = await arcSeal(Buffer.from(MSG), keys['first.example']!, { authservId: 'mx.first.example' });
  assert.ok('fields' in one);
  assert.match(one.fields, /^ARC-Authentication-Results: i=1; mx\.first\.example; none$/m);
  // Someone else's Authentication-Results (another authserv-id) is no verdict of ours.
  const r = await arcSeal(Buffer.from('Authentication-Results: other.example; arc=pass\n' + one.fields + MSG), keys['forwarder.example']!, { authservId: 'mx.forwarder.example' });
  assert.ok('skip' in r);
  assert.match(r.skip, /has an ARC chain and no Authentication-Results of mx\.forwarder\.example says whether it is valid/);
  const failed = one.fields.replace('cv=none', 'cv=fail');
  const f = await arcSeal(Buffer.from('Authentication-Results: mx.forwarder.example; arc=fail\n' + failed + MSG), keys['forwarder.example']!, { authservId: 'mx.forwarder.example' });
  assert.ok('skip' in f, JSON.stringify(f));
});
