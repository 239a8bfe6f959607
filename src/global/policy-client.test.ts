/**
 * policy-client / attr-clnt against a real policy server process (test/harness/policy-server.py,
 * Python's socketserver on loopback): connection reuse and its limits (request_limit, max_idle,
 * max_ttl), try_limit and retry after a server closed an idle connection, unix: endpoints
 * relative to the queue directory, the per-service `{ server, name=value }` form and its errors.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MainConfig } from './mail-conf.ts';
import { PolicyClient, policySettings, type PolicyRequest } from './policy-client.ts';
import { AttrClientError, parseEndpoint } from './attr-clnt.ts';

const SERVER = resolve(import.meta.dirname, '..', '..', 'test', 'harness', 'policy-server.py');
let dir = '';
let proc: ChildProcess | undefined;
let port = 0;
let log = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-pc-'));
  log = join(dir, 'requests.jsonl');
  writeFileSync(log, '');
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  port = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  proc = spawn('python3', [SERVER, String(port), log], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res, rej) => { proc!.stdout!.once('data', () => res()); proc!.once('exit', () => rej(new Error('policy server exited'))); });
});
after(() => { proc?.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); });

const config = (extra = '') => MainConfig.parse(`queue_directory = ${dir}\n${extra}`, join(dir, 'main.cf'), dir);

const req = (recipient: string): PolicyRequest => ({
  protocolState: 'RCPT', protocolName: 'ESMTP', heloName: 'h.example', queueId: '', sender: 's@example.org',
  recipient, recipientCount: 0, clientAddress: '192.0.2.1', clientName: 'c.example', reverseClientName: 'c.example',
  clientPort: 1234, serverAddress: '127.0.0.1', serverPort: 25, instance: '1.2.3.4', size: 0, etrnDomain: '',
  stress: '', saslMethod: '', saslUsername: '', saslSender: '', ccertSubject: '', ccertIssuer: '',
  ccertFingerprint: '', ccertPubkeyFingerprint: '', encryptionProtocol: '', encryptionCipher: '', encryptionKeysize: 0,
});

function connsOf(prefix: string): number[] {
  return readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { conn: number; attrs: Record<string, string> })
    .filter((r) => (r.attrs.recipient ?? '').startsWith(prefix)).map((r) => r.conn);
}

test('one connection serves many requests; request_limit closes it after N', async () => {
  const reuse = new PolicyClient(policySettings(`inet:127.0.0.1:${port}`, config()), config());
  for (let i = 0; i < 4; i++) assert.equal(await reuse.query(req(`reuse${i}@x`)), 'DUNNO');
  assert.equal(new Set(connsOf('reuse')).size, 1);
  const limited = new PolicyClient(policySettings(`{ inet:127.0.0.1:${port}, request_limit=2 }`, config()), config());
  for (let i = 0; i < 5; i++) await limited.query(req(`limit${i}@x`));
  assert.equal(new Set(connsOf('limit')).size, 3, '5 requests, 2 per connection');
  await reuse.close();
  await limited.close();
});

test('max_idle and max_ttl: an idle or old connection is replaced', async () => {
  const idle = new PolicyClient(policySettings(`{ inet:127.0.0.1:${port}, max_idle=1s }`, config()), config());
  await idle.query(req('idle1@x'));
  await new Promise((r) => setTimeout(r, 1500));
  await idle.query(req('idle2@x'));
  assert.equal(new Set(connsOf('idle')).size, 2);
  const ttl = new PolicyClient(policySettings(`{ inet:127.0.0.1:${port}, max_ttl=1s }`, config()), config());
  await ttl.query(req('ttl1@x'));
  await new Promise((r) => setTimeout(r, 1100));
  await ttl.query(req('ttl2@x'));
  assert.equal(new Set(connsOf('ttl')).size, 2);
  await idle.close();
  await ttl.close();
});

test('a server that closes mid-request: retried (try_limit), then the failure names the server', async () => {
  const pc = new PolicyClient(policySettings(`{ inet:127.0.0.1:${port}, try_limit=3, retry_delay=1s }`, config()), config());
  const t0 = Date.now();
  await assert.rejects(pc.query(req('close@x')), (e: unknown) => e instanceof AttrClientError && e.message === `problem talking to server inet:127.0.0.1:${port}: lost connection`);
  assert.equal(connsOf('close').length, 3, 'three attempts');
  assert.ok(Date.now() - t0 >= 2000, 'retry_delay between attempts');
  await assert.rejects(pc.query(req('garbage@x')), /missing '=' after attribute name/);
  await assert.rejects(pc.query(req('noaction@x')), /missing attribute action in input from inet:127\.0\.0\.1:\d+/);
  await assert.rejects(pc.query(req('big@x')), /reply longer than 65536 bytes/);
  assert.equal(await pc.query(req('after@x')), 'DUNNO', 'the client recovers');
  await pc.close();
});

test('unix: endpoints are relative to queue_directory; a refused connection fails fast', async () => {
  const sockPath = join(dir, 'private-policy');
  const srv: Server = createServer((s) => { s.on('data', () => s.write('action=OK\n\n')); });
  await new Promise<void>((r) => srv.listen(sockPath, r));
  const pc = new PolicyClient(policySettings('unix:private-policy', config()), config());
  assert.equal(await pc.query(req('unix@x')), 'OK');
  await pc.close();
  await new Promise((r) => srv.close(r));
  const gone = new PolicyClient(policySettings('{ unix:private-policy, try_limit=1 }', config()), config());
  await assert.rejects(gone.query(req('x@x')), /problem talking to server unix:private-policy: connect: (ENOENT|ECONNREFUSED)/);
  await gone.close();
});

test('the per-service form and main.cf defaults; malformed arguments are errors', () => {
  const c = config('smtpd_policy_service_timeout = 7s\nsmtpd_policy_service_default_action = DUNNO\n');
  const plain = policySettings('inet:127.0.0.1:9', c);
  assert.equal(plain.timeoutMs, 7000);
  assert.equal(plain.defaultAction, 'DUNNO');
  assert.equal(plain.tryLimit, 2);
  assert.equal(plain.retryDelayMs, 1000);
  const s = policySettings('{ inet:127.0.0.1:9, timeout=10s, default_action={450 4.7.1 try later}, policy_context=submission, max_idle=2m }', c);
  assert.deepEqual({ server: s.server, t: s.timeoutMs, d: s.defaultAction, p: s.policyContext, i: s.maxIdleMs },
    { server: 'inet:127.0.0.1:9', t: 10000, d: '450 4.7.1 try later', p: 'submission', i: 120000 });
  assert.throws(() => policySettings('{ inet:127.0.0.1:9, colour=blue }', c), /unknown attribute "colour"/);
  assert.throws(() => policySettings('{ inet:127.0.0.1:9, timeout=soon }', c), /bad timeout value "soon"/);
  assert.throws(() => policySettings('{ inet:127.0.0.1:9, timeout }', c), /missing '='/);
  assert.equal(parseEndpoint('inet:[::1]:10023')?.kind, 'inet');
  assert.equal(parseEndpoint('tcp:127.0.0.1:10023'), undefined);
  assert.throws(() => new PolicyClient(policySettings('127.0.0.1:10023', c), c), /specify inet:host:port or unix:pathname/);
});
