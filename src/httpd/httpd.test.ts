/**
 * Tests for httpd.ts: the HTTP service planned by a real Master from main.cf
 * (postern_http_listen, postern_https_listen), with test routes, reached by curl and Python's
 * urllib over loopback; the bounds (header, body, slow client, connection limit) and path
 * traversal refusals, with another client served meanwhile.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import type { HttpRoute } from '../lib-http/http-route.ts';
import { httpdService } from './httpd.ts';
import type { TestCa } from '../../test/harness/test-ca.ts';
import { startHttpdMaster, type HttpdMaster } from '../../test/harness/httpd-master.ts';

const run = promisify(execFile);
let h: HttpdMaster;
let httpPort: number;
let httpsPort: number;
let ca: TestCa;
let lines: string[] = [];

const routes: HttpRoute[] = [
  { name: 'hello', path: '/hello', handle: (r) => ({ status: 200, body: `hello ${r.scheme} ${r.host}\n` }) },
  { name: 'sts', host: (h) => h.startsWith('mta-sts.'), path: '/.well-known/mta-sts.txt', scheme: 'https', handle: () => ({ status: 200, body: 'version: STSv1\n' }) },
  { name: 'tree', path: '/.well-known/acme-challenge/', prefix: true, handle: (r) => ({ status: 200, body: r.path }) },
  { name: 'echo', path: '/echo', methods: ['POST'], maxBody: 100, handle: (r) => ({ status: 200, body: r.body }) },
  { name: 'boom', path: '/boom', handle: () => { throw new Error('kaput'); } },
];

before(async () => {
  h = await startHttpdMaster({
    prefix: 'postern-httpd-', names: ['mail.example.test', 'mta-sts.example.test'],
    mainCf: () => ['postern_http_timeout = 2s', 'postern_http_header_limit = 4096', 'postern_http_connection_limit = 20'],
    registry: { httpd: async () => httpdService({ routes: async () => routes }) },
  });
  ({ httpPort, httpsPort, ca, lines } = h);
});
after(async () => { await h?.stop(); });

async function curl(...args: string[]): Promise<{ code: number; body: string }> {
  const { stdout } = await run('curl', ['-s', '--max-time', '10', '-w', '\n%{http_code}', ...args]);
  const i = stdout.lastIndexOf('\n');
  return { code: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) };
}

/** Raw request bytes; everything the server answers until it closes. */
function raw(port: number, data: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.on('connect', () => s.write(data));
    s.on('data', (d) => { out += d; });
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

test('plain HTTP: a route, 404, 405, HEAD, 500 from a failing route', async () => {
  assert.deepEqual(await curl(`http://127.0.0.1:${httpPort}/hello`, '-H', 'Host: Mail.Example.Test.:80'), { code: 200, body: 'hello http mail.example.test\n' });
  assert.equal((await curl(`http://127.0.0.1:${httpPort}/nothing`)).code, 404);
  assert.equal((await curl('-X', 'DELETE', `http://127.0.0.1:${httpPort}/hello`)).code, 405);
  const head = await curl('-I', `http://127.0.0.1:${httpPort}/hello`);
  assert.equal(head.code, 200);
  assert.match(head.body, /Content-Length: 21/i);
  assert.equal((await curl(`http://127.0.0.1:${httpPort}/boom`)).code, 500);
  assert.ok(lines.some((l) => l.includes('route boom failed: kaput')));
  // An https-only route is not served over plain HTTP.
  assert.equal((await curl(`http://127.0.0.1:${httpPort}/.well-known/mta-sts.txt`, '-H', 'Host: mta-sts.example.test')).code, 404);
});

test('HTTPS with the mail certificate: curl and Python urllib verify it by name', async () => {
  const r = await curl('--cacert', ca.certFile, '--resolve', `mta-sts.example.test:${httpsPort}:127.0.0.1`, `https://mta-sts.example.test:${httpsPort}/.well-known/mta-sts.txt`);
  assert.deepEqual(r, { code: 200, body: 'version: STSv1\n' });
  const py = `import ssl, urllib.request, http.client
ctx = ssl.create_default_context(cafile=${JSON.stringify(ca.certFile)})
c = http.client.HTTPSConnection('127.0.0.1', ${httpsPort}, context=ctx, timeout=10)
c._tunnel_host = None
import socket
s = socket.create_connection(('127.0.0.1', ${httpsPort}))
s = ctx.wrap_socket(s, server_hostname='mail.example.test')
s.sendall(b'GET /hello HTTP/1.1\\r\\nHost: mail.example.test\\r\\nConnection: close\\r\\n\\r\\n')
data = b''
while True:
    d = s.recv(4096)
    if not d: break
    data += d
print(data.split(b'\\r\\n\\r\\n', 1)[1].decode(), end='')`;
  const { stdout } = await run('python3', ['-c', py]);
  assert.equal(stdout, 'hello https mail.example.test\n');
});

test('path traversal and malformed requests are refused before any route', async () => {
  for (const p of ['/.well-known/acme-challenge/../../etc/passwd', '/.well-known/acme-challenge/%2e%2e/%2e%2e/etc/passwd',
    '/.well-known/acme-challenge/..%2fetc', '/.well-known/acme-challenge/a%00b', '/.well-known/acme-challenge/a\\..\\b', '/.well-known/acme-challenge/./x']) {
    const r = await curl('--path-as-is', `http://127.0.0.1:${httpPort}${p}`);
    assert.equal(r.code, 400, p);
  }
  assert.equal((await curl(`http://127.0.0.1:${httpPort}/.well-known/acme-challenge/tok-EN_1`)).body, '/.well-known/acme-challenge/tok-EN_1');
  assert.ok(lines.some((l) => l.includes('refused GET /.well-known/acme-challenge/../../etc/passwd from 127.0.0.1: a "." or ".." segment in the path')));
  // Absolute-form target with another host, bad Host header.
  assert.match(await raw(httpPort, 'GET http://evil.example/hello HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 400/);
  assert.match(await raw(httpPort, 'GET /hello HTTP/1.1\r\nHost: a b/c\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400/);
  // Garbage and NUL in the request line.
  assert.match(await raw(httpPort, 'GE\0T / HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400/);
});

test('bounds: header size 431, body size 413 (declared and chunked), a slow client does not stall others', async () => {
  const big = 'x'.repeat(8000);
  assert.match(await raw(httpPort, `GET /hello HTTP/1.1\r\nHost: a\r\nX-Big: ${big}\r\n\r\n`), /^HTTP\/1\.1 431/);
  assert.equal((await curl('-X', 'POST', '--data-binary', 'y'.repeat(200), `http://127.0.0.1:${httpPort}/echo`)).code, 413);
  assert.equal((await curl('-X', 'POST', '--data-binary', 'short', `http://127.0.0.1:${httpPort}/echo`)).body, 'short');
  const chunked = `POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${'80\r\n' + 'z'.repeat(128) + '\r\n'}0\r\n\r\n`;
  assert.match(await raw(httpPort, chunked), /^HTTP\/1\.1 413/);
  // A body to a route that takes none.
  assert.equal((await curl('--data-binary', 'q', '-X', 'GET', `http://127.0.0.1:${httpPort}/hello`)).code, 413);

  // Slow clients: half a request line, and a TLS connection that never says hello. Others are
  // served meanwhile; the slow ones are closed after postern_http_timeout (2s here).
  const t0 = performance.now();
  const slow = raw(httpPort, 'GET /hel');
  const slowTls = raw(httpsPort, '');
  assert.equal((await curl(`http://127.0.0.1:${httpPort}/hello`)).code, 200);
  const answer = await slow;
  await slowTls;
  assert.ok(performance.now() - t0 >= 1500, 'closed by the time limit, not at once');
  assert.ok(answer === '' || /^HTTP\/1\.1 408/.test(answer), answer);
});

test('connection limit: connections past postern_http_connection_limit are closed, the rest keep working', async () => {
  const held = await Promise.all(Array.from({ length: 20 }, () => new Promise<ReturnType<typeof connect>>((res) => {
    const s = connect(httpPort, '127.0.0.1', () => res(s));
    s.on('error', () => {});
  })));
  await new Promise((r) => setTimeout(r, 200));
  const extra = await raw(httpPort, 'GET /hello HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.equal(extra, '');
  assert.ok(lines.some((l) => l.includes('connection limit 20 reached (postern_http_connection_limit)')));
  for (const s of held) s.destroy();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await curl(`http://127.0.0.1:${httpPort}/hello`)).code, 200);
});
