/**
 * qmqpd tests: real Postfix qmqp-source against our qmqpd, the authorization list, and hostile
 * clients (bad netstrings, a 1 GB announced length, a stalled client), over real sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MainConfig } from '../global/mail-conf.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { setLogSink } from '../util/msg.ts';
import type { BoundListener, ServiceContext } from '../lib-master/master-service.ts';
import { logger } from '../util/msg.ts';
import { qmqpdClients, qmqpdSession, qmqpdSettings } from './qmqpd.ts';
import { service } from '../master/master-qmqpd.ts';
import { cleanup } from '../master/master-clients.ts';
import { QmqpReader } from './qmqpd-packet.ts';

const run = promisify(execFile);

interface Rig { dir: string; port: number; server: Server; logs: string[]; close(): Promise<void> }

async function rig(mainCf = ''): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-qmqpd-'));
  const cfg = MainConfig.parse(`queue_directory = ${dir}\nmyhostname = mx.example.test\nqmqpd_authorized_clients = 127.0.0.0/8\nqmqpd_error_delay = 0\n${mainCf}`, join(dir, 'main.cf'));
  const st = await qmqpdSettings(cfg, cleanup);
  st.queue.ensureDirs();
  const logs: string[] = [];
  const old = setLogSink((l) => logs.push(l));
  const sockets = new Set<Socket>();
  const server = createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); void qmqpdSession(st, s); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    dir, port, server, logs,
    async close() {
      setLogSink(old);
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Send `data` (all at once), return everything the server sends until it closes. */
function exchange(port: number, data: Buffer | string, o: { keepOpen?: boolean; halfClose?: boolean } = {}): Promise<{ reply: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const s = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    s.on('data', (b) => got.push(b));
    s.on('error', reject);
    s.on('close', () => resolve({ reply: Buffer.concat(got).toString('latin1'), ms: Date.now() - t0 }));
    s.write(data);
    if (o.halfClose) s.end();
  });
}

const ns = (s: string | Buffer): Buffer => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([Buffer.from(`${b.length}:`), b, Buffer.from(',')]);
};
const packet = (msg: string, sender: string, rcpts: string[]): Buffer => {
  const inner = Buffer.concat([ns(msg), ns(sender), ...rcpts.map((r) => ns(r))]);
  return ns(inner);
};

const incoming = (dir: string): string[] => readdirSync(join(dir, 'incoming')).filter((n) => !n.startsWith('t'));

test('real qmqp-source: 20 messages become 20 queue files in incoming, each with sender, recipient and a QMQP Received: header', { skip: !existsSync('/usr/sbin/qmqp-source') && 'Debian package postfix (qmqp-source) not installed' }, async () => {
  const r = await rig();
  try {
    const { stdout } = await run('/usr/sbin/qmqp-source', ['-c', '-m', '20', '-s', '2', '-f', 'from@x.example', '-t', 'to@y.example', `127.0.0.1:${r.port}`]);
    assert.match(stdout, /\b20\r?\n?$/, 'qmqp-source counted 20 messages');
    const files = incoming(r.dir);
    assert.equal(files.length, 20);
    for (const id of files) {
      const qf = await QueueFile.open(join(r.dir, 'incoming', id), id);
      assert.equal(qf.sender, 'from@x.example');
      assert.deepEqual(qf.recipients.map((x) => x.address), ['to@y.example']);
      assert.equal(qf.attr('protocol_name'), 'QMQP');
      assert.equal(qf.attr('client_address'), '127.0.0.1');
      const text = (await qf.content()).toString();
      assert.match(text, new RegExp(`^Received: from localhost \\(localhost \\[127\\.0\\.0\\.1\\]\\)\\n\\tby mx\\.example\\.test \\(Postern\\) with QMQP id ${id}\\n\\tfor <to@y\\.example>; `));
    }
    assert.equal(r.logs.filter((l) => /postern\/qmqpd\[\d+\]: [0-9A-F]+: client=localhost\[127\.0\.0\.1\]$/.test(l)).length, 20);
  } finally { await r.close(); }
});

test('a complete request is answered "K Ok: queued as QID" only after the file is in incoming', async () => {
  const r = await rig();
  try {
    const { reply } = await exchange(r.port, packet('Subject: t\n\nbody\n', 'a@x', ['b@y', 'c@z']));
    const m = /^(\d+):KOk: queued as ([0-9A-F]+),$/.exec(reply);
    assert.ok(m, reply);
    assert.equal(Number(m[1]), reply.length - m[1]!.length - 2);
    assert.deepEqual(incoming(r.dir), [m[2]]);
    const qf = await QueueFile.open(join(r.dir, 'incoming', m[2]!), m[2]!);
    assert.deepEqual(qf.recipients.map((x) => x.address), ['b@y', 'c@z']);
    // Two recipients: not named in Received: (Bcc privacy), the ID on its own line.
    assert.match((await qf.content()).toString(), /with QMQP\n\tid [0-9A-F]+; .*\nSubject: t\n/);
  } finally { await r.close(); }
});

test('an unauthorized client gets D and nothing is queued; the default list authorizes nobody', async () => {
  for (const cf of ['qmqpd_authorized_clients =', 'qmqpd_authorized_clients = 10.0.0.0/8, !127.0.0.1, 127.0.0.0/8']) {
    const r = await rig(cf);
    try {
      const { reply } = await exchange(r.port, packet('x\n', 'a@x', ['b@y']));
      assert.equal(reply, ns('DError: localhost[127.0.0.1] is not authorized to use this service').toString());
      assert.deepEqual(incoming(r.dir), []);
    } finally { await r.close(); }
  }
});

test('a 1 GB announced message length is refused at once, without reading or buffering it', async () => {
  const r = await rig();
  try {
    const t0 = process.memoryUsage().rss;
    const { reply, ms } = await exchange(r.port, '1000000020:1000000000:XXXX', { keepOpen: true });
    assert.equal(reply, ns('Dnetstring length exceeds storage limit while receiving message content').toString());
    assert.ok(ms < 2000, `answered in ${ms} ms`);
    assert.ok(process.memoryUsage().rss - t0 < 50 * 1024 * 1024, 'no large buffer was allocated');
    assert.deepEqual(incoming(r.dir), []);
  } finally { await r.close(); }
});

test('netstring format errors name the stage, as Postfix does', async () => {
  const r = await rig('line_length_limit = 256');
  try {
    const cases: [string | Buffer, string][] = [
      ['abc', 'netstring format error while receiving QMQP packet header'],
      ['10:5:hello;', 'netstring format error while receiving message content'],
      [Buffer.concat([Buffer.from('99:'), ns('x\n'), Buffer.from('3x:a@x,')]), 'netstring format error while receiving sender address'],
      [Buffer.concat([Buffer.from('999:'), ns('x\n'), ns('a@x'), ns('b'.repeat(300))]), 'netstring length exceeds storage limit while receiving recipient address'],
      ['99999999999999999999999:', 'netstring length exceeds storage limit while receiving QMQP packet header'],
      [Buffer.from('12:\x00\x00'), 'netstring format error while receiving message content'],
    ];
    for (const [input, text] of cases) {
      const { reply } = await exchange(r.port, input, { keepOpen: true });
      assert.equal(reply, ns('D' + text).toString(), JSON.stringify(input.toString().slice(0, 40)));
    }
    assert.deepEqual(incoming(r.dir), []);
  } finally { await r.close(); }
});

test('no recipients: D Error: no recipients specified; message_size_limit counts the envelope too', async () => {
  const r = await rig('message_size_limit = 1000');
  try {
    assert.equal((await exchange(r.port, packet('x\n', 'a@x', []))).reply, ns('DError: no recipients specified').toString());
    const many = Array.from({ length: 100 }, (_, i) => `rcpt${i}@example.test`);
    assert.match((await exchange(r.port, packet('x\n', 'a@x', many), { keepOpen: true })).reply, /Dnetstring length exceeds storage limit while receiving recipient address/);
    assert.deepEqual(incoming(r.dir), []);
  } finally { await r.close(); }
});

test('soft_bounce turns D into Z; qmqpd_error_delay delays negative replies', async () => {
  const r = await rig('soft_bounce = yes\nqmqpd_error_delay = 1s');
  try {
    const { reply, ms } = await exchange(r.port, packet('x\n', 'a@x', []));
    assert.equal(reply, ns('ZError: no recipients specified').toString());
    assert.ok(ms >= 950, `replied after ${ms} ms`);
  } finally { await r.close(); }
});

test('a client that stalls is disconnected after qmqpd_timeout while other clients are served', async () => {
  const r = await rig('qmqpd_timeout = 1s');
  try {
    const stalled = exchange(r.port, '100:50:Subject: half', { keepOpen: true });
    const other = await exchange(r.port, packet('x\n', 'a@x', ['b@y']));
    assert.match(other.reply, /KOk: queued as/);
    const s = await stalled;
    assert.equal(s.reply, '', 'no reply to a timed-out client');
    assert.ok(s.ms >= 900 && s.ms < 5000, `closed after ${s.ms} ms`);
    assert.ok(r.logs.some((l) => /NOQUEUE: localhost\[127\.0\.0\.1\]: read\/write timeout while receiving message content/.test(l)));
  } finally { await r.close(); }
});

test('From_ line becomes X-Mailbox-Line:, NUL and 8-bit bytes are kept byte for byte', async () => {
  const r = await rig();
  try {
    const body = Buffer.concat([Buffer.from('From someone Fri Nov 27\nSubject: x\n\n'), Buffer.from([0xe9, 0x00, 0xff, 0x0a])]);
    const { reply } = await exchange(r.port, ns(Buffer.concat([ns(body), ns('a@x'), ns('b@y')])));
    const id = /queued as ([0-9A-F]+)/.exec(reply)![1]!;
    const content = await (await QueueFile.open(join(r.dir, 'incoming', id), id)).content();
    const text = content.toString('latin1');
    assert.match(text, /\nX-Mailbox-Line: From someone Fri Nov 27\nSubject: x\n/);
    assert.deepEqual(content.subarray(content.length - 6), Buffer.from([0x0a, 0x0a, 0xe9, 0x00, 0xff, 0x0a]));
  } finally { await r.close(); }
});

test('QmqpReader takes a request one byte at a time', () => {
  const rd = new QmqpReader(0, 2048);
  const p = packet('hello\n', 'a@x', ['b@y', 'c@z']);
  let req;
  for (const byte of p) req = rd.feed(Buffer.from([byte])) ?? req;
  assert.deepEqual(req && { m: req.message.toString(), s: req.sender, r: req.recipients }, { m: 'hello\n', s: 'a@x', r: ['b@y', 'c@z'] });
});

test('qmqpd_authorized_clients: networks, negation, IPv6, names, tables; bad patterns are warned and skipped', async () => {
  const config = MainConfig.parse('qmqpd_authorized_clients = !127.0.0.2 127.0.0.0/8 [::1] 2001:db8::/32 localhost inline:{10.1.1.1=ok} bad..name 1.2.3.4/99\n', '/nonexistent/main.cf');
  const warnings: string[] = [];
  const l = await qmqpdClients(config, (w) => warnings.push(w));
  assert.equal(await l.match('unknown', '127.0.0.1'), true);
  assert.equal(await l.match('unknown', '127.0.0.2'), false);
  assert.equal(await l.match('unknown', '::1'), true);
  assert.equal(await l.match('unknown', '2001:db8::5'), true);
  assert.equal(await l.match('localhost', '192.0.2.9'), true);
  assert.equal(await l.match('unknown', '10.1.1.1'), true);
  assert.equal(await l.match('unknown', '192.0.2.1'), false);
  assert.deepEqual(warnings, ['/nonexistent/main.cf: qmqpd_authorized_clients: bad net/mask pattern: "1.2.3.4/99"']);
  await l.close();
});

test('the master service: serveSessions on a listener the master bound', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-qmqpd-svc-'));
  const old = setLogSink(() => {});
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const config = MainConfig.parse(`queue_directory = ${dir}\nqmqpd_authorized_clients = 127.0.0.1\n`, join(dir, 'main.cf'));
    const listener: BoundListener = { kind: 'inet', name: String(port), ssl: false, address: `127.0.0.1:${port}`, server, accept: (h) => { server.removeAllListeners('connection'); server.on('connection', h); } };
    const ctx = { config, entry: { service: String(port), maxproc: 10 }, log: logger('qmqpd'), listeners: [listener], failed: () => {} } as unknown as ServiceContext;
    const { MailQueue } = await import('../global/mail-queue.ts');
    new MailQueue(dir).ensureDirs();
    const running = await service.start(ctx);
    const { reply } = await exchange(port, packet('x\n', 'a@x', ['b@y']));
    assert.match(reply, /^\d+:KOk: queued as [0-9A-F]+,$/);
    await running.stop();
  } finally {
    setLogSink(old);
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});
