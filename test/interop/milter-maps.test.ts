/**
 * smtpd_milter_maps (Postfix 3.2+): milters chosen per client address. A cidr table says
 * DISABLE for 127.0.0.2; a connection from there is not shown to the python3-milter test milter,
 * one from 127.0.0.1 is (smtpd_milters). After XCLIENT the milters see a new connection from
 * the client XCLIENT names, as with Postfix.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestMilter } from '../harness/milter-kit.ts';
import { LineChat } from '../harness/line-chat.ts';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { createSmtpd } from '../../src/smtpd/smtpd.ts';
import { smtpdClients } from '../../src/master/master-clients.ts';
import { PERMIT_ALL } from '../../src/smtpd/smtpd-policy.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});
const skip = TestMilter.unavailable();
let milter: TestMilter | undefined;
let server: Server | undefined;
let dir = '';
let port = 0;

before(async () => {
  if (skip) return;
  milter = await TestMilter.start({});
  dir = mkdtempSync(join(tmpdir(), 'postern-miltermaps-'));
  writeFileSync(join(dir, 'milter_maps'), '127.0.0.2/32 DISABLE\n');
  const cfg = MainConfig.parse(`myhostname = mx.example.test\nsmtpd_milters = ${milter.spec}\nsmtpd_milter_maps = cidr:${dir}/milter_maps\nsmtpd_authorized_xclient_hosts = 127.0.0.1\n`, 'main.cf', dir);
  const queue = new MailQueue(dir);
  queue.ensureDirs();
  const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy: PERMIT_ALL, service: 'smtp' });
  server = createServer((s) => smtpd.handle(s));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

after(async () => {
  server?.close();
  await milter?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('smtpd_milter_maps: DISABLE for one client, smtpd_milters for the others', { skip }, async () => {
  milter!.clear();
  const a = await LineChat.greet(port, { localAddress: '127.0.0.2' });
  assert.match(a.greeting, /^220 /);
  assert.match(await a.c.cmd('HELO other.example'), /^250 /);
  await a.c.cmd('QUIT');
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(milter!.events(), [], 'no milter for 127.0.0.2');
  const b = await LineChat.greet(port);
  assert.match(await b.c.cmd('HELO local.example'), /^250 /);
  await b.c.cmd('QUIT');
  const ev = await milter!.waitFor('close');
  assert.deepEqual(ev.map((e) => e.ev).slice(0, 2), ['connect', 'helo']);
});

test('XCLIENT: the milters start over with the new client', { skip }, async () => {
  milter!.clear();
  const { c } = await LineChat.greet(port);
  assert.match(await c.cmd('EHLO proxy.example'), /^250[ -]/);
  assert.match(await c.cmd('XCLIENT ADDR=192.0.2.7 NAME=client.example.net'), /^220 /);
  assert.match(await c.cmd('HELO client.example.net'), /^250 /);
  await c.cmd('QUIT');
  const deadline = Date.now() + 10_000;
  let ev = milter!.events();
  while (ev.filter((e) => e.ev === 'close').length < 2 && Date.now() < deadline) { await new Promise((r) => setTimeout(r, 50)); ev = milter!.events(); }
  const connects = ev.filter((e) => e.ev === 'connect').map((e) => `${String(e.hostname)} ${String(e.addr)}`);
  assert.deepEqual(connects, ['localhost 127.0.0.1', 'client.example.net 192.0.2.7']);
  assert.equal(ev.filter((e) => e.ev === 'helo').map((e) => e.name).pop(), 'client.example.net');
});

test('an IPv6 client: the milter gets an inet6 connection with its address', { skip }, async () => {
  const cfg = MainConfig.parse(`myhostname = mx.example.test\nsmtpd_milters = ${milter!.spec}\n`, 'main.cf', dir);
  const queue = new MailQueue(dir);
  const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy: PERMIT_ALL, service: 'smtp' });
  const srv = createServer((s) => smtpd.handle(s));
  const ok = await new Promise<boolean>((r) => { srv.once('error', () => r(false)); srv.listen(0, '::1', () => r(true)); });
  if (!ok) return; // no IPv6 loopback here
  try {
    milter!.clear();
    const { c } = await LineChat.greet((srv.address() as { port: number }).port, { host: '::1' });
    await c.cmd('QUIT');
    const ev = await milter!.waitFor('close');
    assert.equal(ev[0]!.ev, 'connect');
    assert.equal(ev[0]!.addr, '::1');
    assert.match(String((ev[0]!.macros as Record<string, string>)._), /\[::1\]/);
  } finally {
    srv.close();
  }
});
