/**
 * resolveTlsa(): the raw UDP TLSA query (RFC 6698, RFC 1035 §4.1) against the loopback DNS
 * server: records, the AD bit (RFC 4035 §3.2.3) reported as `secure`, NODATA, NXDOMAIN,
 * SERVFAIL, silence; and hostile responses (truncated, wrong id, TC bit, garbage) that must
 * give a DnsError, never a crash.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { DnsServer } from '../../test/harness/dns-server.ts';
import { createDnsResolver, decodeTlsaResponse, encodeTlsaQuery, DnsError } from './dns-resolver.ts';

let dns: DnsServer;
before(async () => {
  dns = await DnsServer.start({
    '_25._tcp.mx.signed.test': { TLSA: [{ usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(32) }, { usage: 2, selector: 0, matchingType: 2, data: Buffer.alloc(64, 1) }], AD: true },
    '_25._tcp.mx.unsigned.test': { TLSA: [{ usage: 3, selector: 1, matchingType: 1, data: 'cd'.repeat(32) }] },
    '_25._tcp.mx.nodata.test': { A: ['192.0.2.1'], AD: true },
    '_25._tcp.mx.fail.test': 'SERVFAIL',
    'mx.signed.test': { A: ['192.0.2.9'] },
  });
});
after(async () => { await dns.stop(); });

const resolver = () => createDnsResolver({ servers: [`127.0.0.1:${dns.port}`], timeoutMs: 300, tries: 1 });

test('TLSA records with the AD bit are secure; without it they are not', async () => {
  const a = await resolver().resolveTlsa!('_25._tcp.mx.signed.test');
  assert.equal(a.secure, true);
  assert.deepEqual(a.records.map((r) => [r.usage, r.selector, r.matchingType, r.data.toString('hex')]),
    [[3, 1, 1, 'ab'.repeat(32)], [2, 0, 2, '01'.repeat(64)]]);
  const b = await resolver().resolveTlsa!('_25._tcp.MX.unsigned.test');
  assert.equal(b.secure, false);
  assert.equal(b.records.length, 1);
  assert.ok(dns.queries.includes('_25._tcp.mx.signed.test TLSA'));
});

test('NODATA is an empty answer (with its AD bit); NXDOMAIN is NOTFOUND; SERVFAIL and silence are TEMP', async () => {
  assert.deepEqual(await resolver().resolveTlsa!('_25._tcp.mx.nodata.test'), { records: [], secure: true });
  await assert.rejects(resolver().resolveTlsa!('_25._tcp.nowhere.test'), (e: unknown) => e instanceof DnsError && e.kind === 'NOTFOUND' && e.message === 'Name service error for name=_25._tcp.nowhere.test type=TLSA: Host not found');
  await assert.rejects(resolver().resolveTlsa!('_25._tcp.mx.fail.test'), (e: unknown) => e instanceof DnsError && e.kind === 'TEMP');
  const silent = createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  try {
    const t0 = Date.now();
    await assert.rejects(createDnsResolver({ servers: [`127.0.0.1:${silent.address().port}`], timeoutMs: 200, tries: 2 }).resolveTlsa!('_25._tcp.x.test'),
      (e: unknown) => e instanceof DnsError && e.kind === 'TEMP' && e.detail === 'ETIMEOUT');
    assert.ok(Date.now() - t0 < 2000);
  } finally { silent.close(); }
  assert.throws(() => encodeTlsaQuery(1, `_25._tcp.${'a'.repeat(64)}.test`), DnsError);
});

test('hostile responses: short, wrong id, TC, bad rdata length, garbage → DnsError TEMP', () => {
  const q = encodeTlsaQuery(0x1234, '_25._tcp.mx.test');
  const resp = (flags: number, tail: Buffer) => {
    const h = Buffer.from(q.subarray(0, 12));
    h.writeUInt16BE(flags, 2); h.writeUInt16BE(1, 6); h.writeUInt16BE(0, 10);
    return Buffer.concat([h, q.subarray(12, q.length - 11), tail]);
  };
  const rr = (rdlen: number, data: Buffer) => { const b = Buffer.from([0xc0, 12, 0, 52, 0, 1, 0, 0, 0, 60, 0, 0]); b.writeUInt16BE(rdlen, 10); return Buffer.concat([b, data]); };
  const kind = (f: () => unknown) => { try { f(); return 'ok'; } catch (e) { return e instanceof DnsError ? e.kind : 'crash'; } };
  assert.equal(kind(() => decodeTlsaResponse(Buffer.alloc(5), 0x1234, 'n')), 'TEMP');
  assert.equal(kind(() => decodeTlsaResponse(resp(0x8180, rr(4, Buffer.from([3, 1, 1, 0]))), 0x9999, 'n')), 'TEMP');
  assert.equal(kind(() => decodeTlsaResponse(resp(0x8380, Buffer.alloc(0)), 0x1234, 'n')), 'TEMP');
  assert.equal(kind(() => decodeTlsaResponse(resp(0x81a0, rr(200, Buffer.from([3, 1, 1, 0]))), 0x1234, 'n')), 'TEMP');
  assert.equal(kind(() => decodeTlsaResponse(resp(0x81a0, Buffer.from([0xff, 0xff, 0xff])), 0x1234, 'n')), 'TEMP');
  assert.equal(kind(() => decodeTlsaResponse(resp(0x81a0, Buffer.alloc(0)), 0x1234, 'n')), 'TEMP'); // ANCOUNT 1, no record
  const ok = decodeTlsaResponse(resp(0x81a0, rr(4, Buffer.from([3, 1, 1, 0xee]))), 0x1234, 'n');
  assert.deepEqual([ok.secure, ok.records[0]!.data.toString('hex')], [true, 'ee']);
  // An answer record shorter than usage/selector/matching type is skipped, not misread.
  assert.deepEqual(decodeTlsaResponse(resp(0x8180, rr(2, Buffer.from([3, 1]))), 0x1234, 'n'), { records: [], secure: false });
});
