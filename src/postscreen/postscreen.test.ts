import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DnsServer } from '../../test/harness/dns-server.ts';
import { createDnsResolver, type DnsResolver } from '../util/dns-resolver.ts';
import { setLogSink } from '../util/msg.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { ConfigError } from '../global/config-error.ts';
import type { SmtpdPolicy } from '../smtpd/smtpd-policy.ts';
import { startSmtpd, type TestSmtpd } from '../../test/harness/anvil-testkit.ts';
import { LineChat } from '../../test/harness/line-chat.ts';
import { PostscreenCache, escapeBytes, formatDelta, postscreen, postscreenSettings } from './postscreen.ts';
import { enforcePolicy } from '../smtpd/smtpd-policy.ts';

const run = promisify(execFile);
const logs: string[] = [];
setLogSink((l) => { logs.push(l); });

let dns: DnsServer;
let resolver: DnsResolver;
const cleanup: (() => void)[] = [];
before(async () => {
  dns = await DnsServer.start({
    '1.0.0.127.zen.example.test': { A: ['127.0.0.2'] },
    '1.0.0.127.bl.example.test': { A: ['127.0.0.2'] },
    '7.0.0.127.zen.example.test': { A: ['127.0.0.2'] },
  });
  resolver = createDnsResolver({ servers: [`127.0.0.1:${dns.port}`], timeoutMs: 500, tries: 1 });
});
after(async () => { for (const f of cleanup) f(); await dns.stop(); });

/**
 * A real smtpd behind postscreen(), wired the way the proposed smtpd.ts patch wires it: the
 * check before the banner, the enforce policy for that one connection, then sock.resume().
 */
async function screened(mainCf: string): Promise<{ s: TestSmtpd; port: number }> {
  const enforced = new Map<number, SmtpdPolicy>();
  const perConnection: SmtpdPolicy = {
    async rcpt(st, rcpt) { return enforced.get(st.clientPort)?.rcpt?.(st, rcpt); },
  };
  // The postscreen_* settings go to this test's own postscreen() only: the smtpd behind it
  // must not screen a second time (once smtpd.ts runs postscreen itself).
  const s = await startSmtpd('', { policy: () => perConnection });
  const ps = postscreenSettings(MainConfig.parse(`myhostname = mx.example.test\npostscreen_greet_wait = 1s\n${mainCf}`, 'main.cf'));
  const cache = new PostscreenCache();
  const server: Server = createServer((sock) => {
    sock.on('error', () => {});
    void postscreen(sock, ps, { dns: resolver, cache }).then((v) => {
      if (!v.pass) return;
      if (v.enforce) {
        const port = sock.remotePort!;
        enforced.set(port, enforcePolicy({}, v.enforce));
        sock.once('close', () => enforced.delete(port));
      }
      s.smtpd.handle(sock);
      sock.resume();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => { server.close(); s.close(); });
  return { s, port: (server.address() as { port: number }).port };
}

test('PREGREET with postscreen_greet_action = drop: "220-" first, a client talking early gets 521 5.5.1 and is dropped', async () => {
  const { port } = await screened('postscreen_greet_action = drop\n');
  const c = await LineChat.open(port, { localAddress: '127.0.0.6' });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(c.buf, '220-mx.example.test ESMTP Postern\r\n', 'the multi-line greeting trick');
  c.send('EHLO x\r\n');
  assert.equal(await c.untilClosed(), '220-mx.example.test ESMTP Postern\r\n521 5.5.1 Protocol error\r\n');
  assert.ok(logs.some((l) => /postern\/postscreen\[\d+\]: PREGREET 8 after 0(\.\d+)? from \[127\.0\.0\.6\]:\d+: EHLO x\\r\\n$/.test(l)), logs.filter((l) => l.includes('PREGREET')).join('\n'));
  assert.ok(logs.some((l) => /postscreen\[\d+\]: DISCONNECT \[127\.0\.0\.6\]:\d+$/.test(l)));
});

test('a patient client gets one multi-line 220 reply and normal service; next time it skips the wait (PASS OLD)', async () => {
  const { port } = await screened('postscreen_greet_action = drop\n');
  const t0 = Date.now();
  const c = await LineChat.open(port, { localAddress: '127.0.0.8' });
  assert.equal(await c.reply(3000), '220-mx.example.test ESMTP Postern\n220 mx.example.test ESMTP Postern');
  assert.ok(Date.now() - t0 >= 900, 'the banner waited postscreen_greet_wait');
  await c.cmd('EHLO patient.example');
  assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '250 2.1.0 Ok');
  assert.equal(await c.cmd('RCPT TO:<b@example.test>'), '250 2.1.5 Ok');
  c.close();
  assert.ok(logs.some((l) => /postscreen\[\d+\]: PASS NEW \[127\.0\.0\.8\]:\d+$/.test(l)));
  const t1 = Date.now();
  const again = await LineChat.open(port, { localAddress: '127.0.0.8' });
  assert.equal(await again.reply(), '220 mx.example.test ESMTP Postern');
  assert.ok(Date.now() - t1 < 500, 'allowlisted for postscreen_greet_ttl');
  assert.ok(logs.some((l) => /postscreen\[\d+\]: PASS OLD \[127\.0\.0\.8\]:\d+$/.test(l)));
  again.close();
});

test('swaks (waits for the whole greeting) passes the pregreet test and delivers', async () => {
  const { port, s } = await screened('postscreen_greet_action = drop\n');
  const { stdout } = await run('swaks', ['--server', '127.0.0.1', '--port', String(port), '--local-interface', '127.0.0.12',
    '--from', 'x@example.org', '--to', 'y@example.test', '--helo', 'swaks.example.org', '--timeout', '10']);
  assert.match(stdout, /<- {2}220-mx\.example\.test ESMTP Postern\n<- {2}220 mx\.example\.test ESMTP Postern/);
  assert.match(stdout, /<- {2}250 2\.0\.0 Ok: queued as [0-9A-F]+/);
  let n = 0;
  for await (const _ of s.queue.list('incoming')) n++;
  assert.equal(n, 1);
});

test('PREGREET with enforce: the session goes on (early EHLO answered) but every RCPT gets 550 5.5.1 Protocol error', async () => {
  const { port } = await screened('postscreen_greet_action = enforce\n');
  const c = await LineChat.open(port, { localAddress: '127.0.0.9' });
  c.send('EHLO early.example\r\n');
  assert.equal(await c.reply(3000), '220-mx.example.test ESMTP Postern\n220 mx.example.test ESMTP Postern');
  assert.match(await c.reply(), /^250-mx\.example\.test\n/, 'the bytes sent early were not lost');
  assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '250 2.1.0 Ok');
  assert.equal(await c.cmd('RCPT TO:<b@example.test>'), '550 5.5.1 Protocol error');
  c.close();
  assert.ok(logs.some((l) => /NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.9\]: 550 5\.5\.1 Protocol error; from=<a@example\.org> to=<b@example\.test>/.test(l)));
});

test('hostile pregreet: 64 KB with NUL and 8-bit bytes is logged escaped and cut at 100 characters', async () => {
  const { port } = await screened('postscreen_greet_action = drop\n');
  const c = await LineChat.open(port, { localAddress: '127.0.0.10' });
  c.sock.write(Buffer.concat([Buffer.from('\0\x1b[31m\xff', 'latin1'), Buffer.alloc(65536, 0x41)]));
  assert.match(await c.untilClosed(), /521 5\.5\.1 Protocol error\r\n$/);
  const line = logs.find((l) => l.includes('PREGREET') && l.includes('[127.0.0.10]'))!;
  assert.match(line, /: \\000\\033\[31m\\377A+$/);
  assert.equal(/\]:\d+: (.*)$/.exec(line)![1]!.length, 100);
});

test('DNSBL: weighted score over postscreen_dnsbl_threshold with action drop → 521 5.7.1 naming the heaviest list; others pass', async () => {
  const { port } = await screened(`postscreen_dnsbl_sites = zen.example.test*2 bl.example.test\npostscreen_dnsbl_threshold = 3\npostscreen_dnsbl_action = drop\n`);
  const listed = await LineChat.open(port, { localAddress: '127.0.0.1' });
  assert.equal(await listed.untilClosed(3000), '220-mx.example.test ESMTP Postern\r\n521 5.7.1 Service unavailable; client [127.0.0.1] blocked using zen.example.test\r\n');
  assert.ok(logs.some((l) => /postscreen\[\d+\]: DNSBL rank 3 for \[127\.0\.0\.1\]:\d+$/.test(l)));
  const below = await LineChat.open(port, { localAddress: '127.0.0.7' }); // zen only: 2 < 3
  assert.equal(await below.reply(3000), '220-mx.example.test ESMTP Postern\n220 mx.example.test ESMTP Postern');
  below.close();
});

test('DNSBL enforce: RCPT gets 550 5.7.1 Service unavailable; client [addr] blocked using <domain>', async () => {
  const { port } = await screened('postscreen_dnsbl_sites = zen.example.test\npostscreen_dnsbl_action = enforce\n');
  const c = await LineChat.open(port, { localAddress: '127.0.0.7' });
  await c.reply(3000);
  await c.cmd('EHLO x.example');
  await c.cmd('MAIL FROM:<a@example.org>');
  assert.equal(await c.cmd('RCPT TO:<b@example.test>'), '550 5.7.1 Service unavailable; client [127.0.0.7] blocked using zen.example.test');
  c.close();
});

test('settings: disabled by default (no greeting delay); bad values are ConfigErrors naming main.cf and the line', () => {
  assert.equal(postscreenSettings(MainConfig.parse('', 'main.cf')).enabled, false);
  assert.equal(postscreenSettings(MainConfig.parse('postscreen_greet_action = enforce\n', 'main.cf')).enabled, true);
  assert.throws(() => postscreenSettings(MainConfig.parse('\npostscreen_greet_action = reject\n', '/etc/postern/main.cf')),
    (e: Error) => e instanceof ConfigError && /main\.cf.*2.*postscreen_greet_action: unknown action "reject": specify ignore, enforce or drop/.test(String(e.message) + e.toString()));
  assert.throws(() => postscreenSettings(MainConfig.parse('postscreen_dnsbl_sites = zen.example.test*x\n', 'main.cf')),
    (e: Error) => e instanceof ConfigError && /bad DNSBL weight factor "x"/.test(e.message));
});

test('log helpers: Postfix escape() and psc_format_delta_time()', () => {
  assert.equal(escapeBytes(Buffer.from('EHLO x\r\n\t\\\x7f')), 'EHLO x\\r\\n\\t\\\\\\177');
  assert.deepEqual([0, 4, 52, 999, 1234, 12_345].map(formatDelta), ['0', '0', '0.05', '0.99', '1.2', '12']);
});

test('a client that hangs up during the wait is logged and never reaches smtpd', async () => {
  const ps = postscreenSettings(MainConfig.parse('postscreen_greet_wait = 2s\npostscreen_greet_action = drop\n', 'main.cf'));
  let verdict: Promise<unknown> | undefined;
  const server = createServer((sock) => { verdict = postscreen(sock, ps, { cache: new PostscreenCache() }); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const c = await LineChat.open((server.address() as { port: number }).port, { localAddress: '127.0.0.11' });
  c.close();
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(await verdict, { pass: false });
  server.close();
  assert.ok(logs.some((l) => /HANGUP after 0(\.\d+)? from \[127\.0\.0\.11\]:\d+ in tests before SMTP handshake/.test(l)));
});
