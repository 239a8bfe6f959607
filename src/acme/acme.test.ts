/**
 * Tests for the renewal decisions of acme.ts (renewIfDue) against a CA on loopback that answers
 * errors (an HTTPS server with the test CA's certificate; pebble cannot be made to fail this
 * way): the installed certificate stays, the failure is logged with what happened and the next
 * attempt backs off, doubling with jitter; ARI (RFC 9773) moves the renewal into the CA's
 * window; without ARI, two thirds of the lifetime.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { logger, setLogSink } from '../util/msg.ts';
import { acmeWarnings, renewIfDue } from './acme.ts';
import { backoffMs, readStatus, renewalTime, type AcmeSettings } from '../lib-acme/acme-issue.ts';
import { newAccountKeyPem } from '../lib-acme/acme-crypto.ts';
import { ariCertId } from '../lib-acme/acme-client.ts';
import { TestCa } from '../../test/harness/test-ca.ts';

let dir: string;
let ca: TestCa;
let server: Server;
let base: string;
let ariWindow: { start: string; end: string } | undefined;
const lines: string[] = [];
let restore: ReturnType<typeof setLogSink>;
const ariAsked: string[] = [];
const held: { end(): void }[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-acme-renew-'));
  restore = setLogSink((l) => { lines.push(l); });
  ca = TestCa.create(dir);
  const leaf = ca.issue('ca-server', ['localhost']);
  server = createServer({ cert: readFileSync(leaf.certFile), key: readFileSync(leaf.keyFile) }, (req, res) => {
    const dirJson = (ari: boolean) => JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/acct`, newOrder: `${base}/order`, ...(ari ? { renewalInfo: `${base}/ari` } : {}) });
    if (req.url === '/dir-500') { res.writeHead(500, { 'Content-Type': 'application/problem+json' }); res.end('{"type":"urn:ietf:params:acme:error:serverInternal","detail":"the CA is down for maintenance"}'); return; }
    if (req.url === '/dir' || req.url === '/dir-ari') { res.end(dirJson(req.url === '/dir-ari')); return; }
    if (req.url === '/dir-slow') { held.push(res); return; }          // never answers
    if (req.url === '/nonce') { res.writeHead(200, { 'Replay-Nonce': 'abc123' }); res.end(); return; }
    if (req.url?.startsWith('/ari/')) { ariAsked.push(req.url.slice(5)); res.end(JSON.stringify({ suggestedWindow: ariWindow })); return; }
    res.writeHead(503, { 'Content-Type': 'application/problem+json' });
    res.end('{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new accounts"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://localhost:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  setLogSink(restore);
  for (const r of held) r.end();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function settings(sub: string, path: string): AcmeSettings {
  const st = join(dir, sub);
  const leaf = ca.issue(`${sub}-installed`, ['mail.example.test']);     // valid 2 days, from a CA
  copyFileSync(leaf.certFile, join(dir, `${sub}.crt`));
  copyFileSync(leaf.keyFile, join(dir, `${sub}.key`));
  return {
    directoryUrl: `${base}${path}`, caFile: ca.certFile, contact: [], challenges: ['http-01'], keyType: 'ecdsa-p256',
    names: ['mail.example.test'], stateDir: st, certFile: join(dir, `${sub}.crt`), keyFile: join(dir, `${sub}.key`),
    dnsHook: '', timeoutMs: 5000, orderTimeoutMs: 5000, minBackoffMs: 60_000, maxBackoffMs: 600_000,
  };
}

test('backoff doubles from the minimum up to the maximum, with ±20% jitter', () => {
  const s = { minBackoffMs: 1000, maxBackoffMs: 10_000 };
  assert.deepEqual([1, 2, 3, 4, 5, 50].map((n) => backoffMs(s, n, () => 0.5)), [1000, 2000, 4000, 8000, 10_000, 10_000]);
  assert.equal(backoffMs(s, 1, () => 0), 800);
  assert.equal(backoffMs(s, 1, () => 0.9999999), 1200);
});

test('a CA answering errors: the installed certificate stays, a clear log line, backoff doubling', async () => {
  const s = settings('err', '/dir-500');
  const before = readFileSync(s.certFile, 'utf8');
  const r1 = await renewIfDue(s, logger('acme'), true);
  assert.match(r1.error!, /GET .*\/dir-500: HTTP 500 urn:ietf:params:acme:error:serverInternal: the CA is down for maintenance/);
  assert.ok(r1.nextMs >= 48_000 && r1.nextMs <= 72_000, String(r1.nextMs));
  assert.equal(readFileSync(s.certFile, 'utf8'), before);
  assert.ok(lines.some((l) => /postern\/acme\[\d+\]: warning: ACME order for mail\.example\.test failed: .*the CA is down for maintenance; keeping the installed certificate \(valid until .*\); next attempt in \d+s$/.test(l)), lines.join('\n'));
  // Under 14 days left (2-day test certificate) and not renewed: said so.
  assert.ok(lines.some((l) => /warning: certificate .*err\.crt expires in [01] days \(.*\) and could not be renewed$/.test(l)), lines.join('\n'));
  const r2 = await renewIfDue(s, logger('acme'), true);
  assert.ok(r2.nextMs >= 96_000 && r2.nextMs <= 144_000, String(r2.nextMs));
  const st = readStatus(s.stateDir);
  assert.equal(st.failures, 2);
  assert.match(st.lastError!, /maintenance/);
  // Not forced, within the backoff: no new attempt.
  const r3 = await renewIfDue(s, logger('acme'), false, new Date());
  assert.equal(r3.renewed, false);
  assert.equal(readStatus(s.stateDir).failures, 2);
  // Rate limited on newAccount: same handling, the CA's words in the log.
  const s2 = settings('rate', '/dir');
  const r4 = await renewIfDue(s2, logger('acme'), true);
  assert.match(r4.error!, /newAccount: HTTP 503 urn:ietf:params:acme:error:rateLimited: too many new accounts/);
});

test('renewal time: two thirds of the lifetime; ARI window when the CA offers renewalInfo', async () => {
  const s = settings('plain', '/dir');
  const x = new X509Certificate(readFileSync(s.certFile));
  const now = new Date();
  const r = await renewIfDue(s, logger('acme'), false, now);
  assert.equal(r.renewed, false);
  assert.ok(Math.abs(now.getTime() + r.nextMs - renewalTime(x).getTime()) < 1000);
  assert.equal(ariAsked.length, 0, 'no account key yet: no ARI request');

  const a = settings('ari', '/dir-ari');
  mkdirSync(a.stateDir, { recursive: true });
  writeFileSync(join(a.stateDir, 'account.key'), newAccountKeyPem(), { mode: 0o600 });
  const ax = new X509Certificate(readFileSync(a.certFile));
  const start = new Date(Date.now() + 3600_000);
  ariWindow = { start: start.toISOString(), end: new Date(start.getTime() + 60_000).toISOString() };
  const r2 = await renewIfDue(a, logger('acme'), false, new Date());
  assert.equal(r2.renewed, false);
  const at = Date.now() + r2.nextMs;
  assert.ok(at >= start.getTime() - 1000 && at <= start.getTime() + 61_000, 'inside the CA window, not at two thirds');
  assert.deepEqual(ariAsked, [ariCertId(ax.toString())]);
  // A window in the past: due now (the order then meets the CA's error).
  ariWindow = { start: new Date(Date.now() - 120_000).toISOString(), end: new Date(Date.now() - 60_000).toISOString() };
  const r3 = await renewIfDue(a, logger('acme'), false, new Date());
  assert.ok(r3.error);
  assert.ok(lines.some((l) => /ordering a certificate for mail\.example\.test from .*\/dir-ari: renewal time .* reached/.test(l)));
});

test('a CA that never answers: the attempt ends at postern_acme_timeout, the event loop stays free', async () => {
  const s = { ...settings('slow', '/dir-slow'), timeoutMs: 1500 };
  let ticks = 0;
  const tick = setInterval(() => { ticks++; }, 50);
  const t0 = performance.now();
  const r = await renewIfDue(s, logger('acme'), true);
  clearInterval(tick);
  const took = performance.now() - t0;
  assert.match(r.error!, /no complete answer from the CA to GET .*\/dir-slow within 1\.5s/);
  assert.ok(took >= 1400 && took < 10_000, String(took));
  assert.ok(ticks >= 10, `other work ran meanwhile (${ticks} ticks)`);
});

test('configuration that makes every order fail is said at start', () => {
  const s = settings('warn', '/dir');
  const conf = (m: Record<string, string[]>) => ({ list: (n: string) => m[n] ?? [] });
  assert.deepEqual(acmeWarnings(conf({}), s), ['postern_acme_challenges = http-01 needs postern_http_listen (port 80 for a public CA): the CA cannot reach the challenge answer']);
  assert.deepEqual(acmeWarnings(conf({ postern_http_listen: ['80'] }), s), []);
  assert.match(acmeWarnings(conf({}), { ...s, challenges: ['dns-01'] })[0]!, /dns-01 but postern_acme_dns_hook is not set/);
  assert.match(acmeWarnings(conf({ postern_http_listen: ['80'] }), { ...s, names: ['*.example.test'] })[0]!, /wildcard name .* needs dns-01/);
});
