/**
 * MTA-STS (RFC 8461): policy text parsing with hostile input, the TXT record rule, mx patterns,
 * and the fetcher against a loopback HTTPS server (redirects refused, wrong media type refused,
 * oversized body refused, cache by id and max_age, stale policy kept when a refresh fails).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSelfSigned } from '../lib-tls/self-signed.ts';
import { logger, setLogSink } from '../util/msg.ts';
import { createDnsResolver } from '../util/dns-resolver.ts';
import { DnsServer } from '../../test/harness/dns-server.ts';
import { MtaStsCache, mtaStsRecordId, mxPatternMatches, parseMtaStsPolicy } from './smtp-tls-mta-sts.ts';

const logs: string[] = [];
setLogSink((l) => logs.push(l));
const dir = mkdtempSync(join(tmpdir(), 'postern-mtasts-'));
let https: Server;
let dns: DnsServer;
let port = 0;
let cert: string;
const served: Record<string, { status?: number; type?: string; body: string; location?: string }> = {};
let hits = 0;

before(async () => {
  const c = generateSelfSigned({ hostname: 'mta-sts.a.test', altNames: ['mta-sts.b.test', 'mta-sts.c.test', 'mta-sts.d.test', 'mta-sts.e.test'] });
  cert = c.certPem;
  https = createServer({ cert: c.certPem, key: c.keyPem }, (req, res) => {
    hits++;
    const s = served[String(req.headers.host).replace(/:\d+$/, '')];
    if (!s) { res.writeHead(404); res.end(); return; }
    res.writeHead(s.status ?? 200, { 'Content-Type': s.type ?? 'text/plain; charset=utf-8', ...(s.location ? { Location: s.location } : {}) });
    res.end(s.body);
  });
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', () => r()));
  port = (https.address() as { port: number }).port;
  const zone: Record<string, { A?: string[]; TXT?: string[] }> = {};
  for (const d of ['a', 'b', 'c', 'd', 'e']) {
    zone[`_mta-sts.${d}.test`] = { TXT: ['v=STSv1; id=1'] };
    zone[`mta-sts.${d}.test`] = { A: ['127.0.0.1'] };
  }
  zone['_mta-sts.two.test'] = { TXT: ['v=STSv1; id=1', 'v=STSv1; id=2'] };
  dns = await DnsServer.start(zone);
});
after(async () => { https.close(); await dns.stop(); rmSync(dir, { recursive: true, force: true }); });

test('policy text: RFC 8461 §3.2 example, CRLF, unknown keys, and hostile bodies', () => {
  assert.deepEqual(parseMtaStsPolicy('version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n'),
    { mode: 'enforce', mx: ['mail.example.com', '*.example.net', 'backupmx.example.com'], maxAge: 604800 });
  assert.deepEqual(parseMtaStsPolicy('version: STSv1\nmode: none\nmax_age: 9999999999\nfuture: x\n'), { mode: 'none', mx: [], maxAge: 31557600 });
  assert.throws(() => parseMtaStsPolicy(''), /version is not STSv1/);
  assert.throws(() => parseMtaStsPolicy('version: STSv2\nmode: enforce\nmx: a\nmax_age: 1'), /version is not STSv1/);
  assert.throws(() => parseMtaStsPolicy('version: STSv1\nmode: strict\nmx: a\nmax_age: 1'), /bad mode "strict"/);
  assert.throws(() => parseMtaStsPolicy('version: STSv1\nmode: enforce\nmax_age: 1'), /no mx pattern/);
  assert.throws(() => parseMtaStsPolicy('version: STSv1\nmode: enforce\nmx: a\n'), /max_age is missing/);
  assert.throws(() => parseMtaStsPolicy('version: STSv1\nmode: enforce\nmx: a\nmax_age: -5'), /line 4: bad max_age/);
  assert.throws(() => parseMtaStsPolicy('version: STSv1\nmode: enforce\nmx: a\0b\nmax_age: 5'), /line 3: bad mx pattern/);
  assert.throws(() => parseMtaStsPolicy('version: STSv1\nmode: enforce\nmx: ../etc\nmax_age: 5'), /line 3: bad mx pattern/);
  assert.throws(() => parseMtaStsPolicy('version: STSv1\ngarbage line\n'), /line 2: expected "key: value"/);
  assert.throws(() => parseMtaStsPolicy('x'.repeat(70000)), /line 1/);
});

test('TXT record: exactly one v=STSv1 record with an id', () => {
  assert.equal(mtaStsRecordId([['v=STSv1; id=20160831085700Z;']]), '20160831085700Z');
  assert.equal(mtaStsRecordId([['v=STSv1; ', 'id=abc']]), 'abc');
  assert.equal(mtaStsRecordId([['v=spf1 -all'], ['v=STSv1; id=x1']]), 'x1');
  assert.equal(mtaStsRecordId([['v=STSv1; id=1'], ['v=STSv1; id=2']]), undefined);
  assert.equal(mtaStsRecordId([['v=STSv1']]), undefined);
  assert.equal(mtaStsRecordId([['v=STSv1; id=' + 'a'.repeat(33)]]), undefined);
  assert.equal(mtaStsRecordId([]), undefined);
});

test('mx patterns: wildcard covers exactly one label (RFC 8461 §4.1)', () => {
  assert.ok(mxPatternMatches('*.example.net', 'mx1.example.net'));
  assert.ok(mxPatternMatches('*.example.net', 'MX1.Example.NET.'));
  assert.ok(!mxPatternMatches('*.example.net', 'a.mx1.example.net'));
  assert.ok(!mxPatternMatches('*.example.net', 'example.net'));
  assert.ok(mxPatternMatches('mail.example.com', 'MAIL.example.com'));
  assert.ok(!mxPatternMatches('mail.example.com', 'xmail.example.com'));
});

function cache(now?: () => number): MtaStsCache {
  const resolver = createDnsResolver({ servers: [`127.0.0.1:${dns.port}`], timeoutMs: 500, tries: 1 });
  return new MtaStsCache({ resolver: () => resolver, port, ca: [cert], timeoutMs: 2000, log: logger('smtp'), now });
}

test('fetch and cache: one fetch per id within max_age, refetch after max_age, stale policy kept on failure', async () => {
  served['mta-sts.a.test'] = { body: 'version: STSv1\nmode: enforce\nmx: mx.a.test\nmax_age: 60\n' };
  let t = 1_000_000;
  const c = cache(() => t);
  const p = await c.lookup('A.test');
  assert.deepEqual([p?.mode, p?.mx, p?.maxAge, p?.id], ['enforce', ['mx.a.test'], 60, '1']);
  await c.lookup('a.test');
  assert.equal(c.fetches, 1);
  t += 61_000;
  served['mta-sts.a.test'] = { status: 500, body: 'oops' };
  assert.equal(await c.lookup('a.test'), undefined, 'expired and refresh failed: no policy');
  assert.equal(c.fetches, 2);
  served['mta-sts.a.test'] = { body: 'version: STSv1\nmode: testing\nmx: mx.a.test\nmax_age: 600\n' };
  assert.equal((await c.lookup('a.test'))?.mode, 'testing');
  served['mta-sts.a.test'] = { body: 'broken' };
  t += 1000;
  assert.equal((await c.lookup('a.test'))?.mode, 'testing', 'cached policy still valid');
});

test('fetch refuses redirects, non-text/plain, oversized bodies; no TXT or two TXT records mean no policy', async () => {
  served['mta-sts.b.test'] = { status: 301, location: 'https://mta-sts.a.test/.well-known/mta-sts.txt', body: '' };
  served['mta-sts.c.test'] = { type: 'text/html', body: 'version: STSv1\nmode: enforce\nmx: x\nmax_age: 5\n' };
  served['mta-sts.d.test'] = { body: 'version: STSv1\n' + 'mx: a.test\n'.repeat(8000) + 'mode: enforce\nmax_age: 5\n' };
  const c = cache();
  logs.length = 0;
  assert.equal(await c.lookup('b.test'), undefined);
  assert.ok(logs.some((l) => /MTA-STS policy fetch for b\.test failed: .*HTTP status 301$/.test(l)), logs.join('\n'));
  assert.equal(await c.lookup('c.test'), undefined);
  assert.ok(logs.some((l) => /c\.test failed: .*Content-Type is "text\/html", not text\/plain$/.test(l)), logs.join('\n'));
  assert.equal(await c.lookup('d.test'), undefined);
  assert.ok(logs.some((l) => /d\.test failed: policy larger than 65536 bytes$/.test(l)), logs.join('\n'));
  const before = hits;
  assert.equal(await c.lookup('two.test'), undefined);
  assert.equal(await c.lookup('nothing.test'), undefined);
  assert.equal(hits, before, 'no HTTPS fetch without exactly one TXT record');
});

test('the HTTPS certificate must be valid for mta-sts.<domain> and trusted', async () => {
  served['mta-sts.e.test'] = { body: 'version: STSv1\nmode: enforce\nmx: x.e.test\nmax_age: 5\n' };
  const resolver = createDnsResolver({ servers: [`127.0.0.1:${dns.port}`], timeoutMs: 500, tries: 1 });
  const untrusting = new MtaStsCache({ resolver: () => resolver, port, ca: [], timeoutMs: 2000, log: logger('smtp') });
  logs.length = 0;
  assert.equal(await untrusting.lookup('e.test'), undefined);
  assert.ok(logs.some((l) => /MTA-STS policy fetch for e\.test failed: self[- ]signed certificate/i.test(l)), logs.join('\n'));
  assert.equal((await cache().lookup('e.test'))?.mode, 'enforce');
});
