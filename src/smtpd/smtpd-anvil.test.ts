import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { setLogSink } from '../util/msg.ts';
import { Anvil } from '../anvil/anvil.ts';
import { ClientLimits, penalizedAuth } from './smtpd-anvil.ts';
import { AuthPenalty } from '../anvil/auth-penalty.ts';
import { ALICE, startSmtpd, type TestSmtpd } from '../../test/harness/anvil-testkit.ts';
import { LineChat } from '../../test/harness/line-chat.ts';
import { directoryAuth } from './smtpd-sasl.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { ConfigError } from '../global/config-error.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); });
const servers: TestSmtpd[] = [];
after(() => { for (const s of servers) s.close(); });

/** Every client on 127.x is normally in $mynetworks and exempt; these tests count them. */
const NO_EXCEPTIONS = 'smtpd_client_event_limit_exceptions =\n';

/** A real smtpd with ClientLimits wired the way the proposed smtpd.ts patch wires it. */
async function limited(mainCf: string): Promise<{ s: TestSmtpd; limits: () => ClientLimits }> {
  let limits: ClientLimits | undefined;
  const anvil = new Anvil();
  const s = await startSmtpd(mainCf, {
    policy: async (c) => { limits = await ClientLimits.open(c, { service: 'smtp', anvil }); return limits.policy({}); },
    auth: () => limits!.auth(directoryAuth(ALICE)),
    accept: async (sock) => {
      const a = await limits!.admit((sock.remoteAddress ?? '').replace(/^::ffff:/, ''));
      if (a.reply) { sock.end(a.reply + '\r\n'); return false; }
      if (sock.destroyed) { a.release(); return false; }
      sock.once('close', a.release);
      return true;
    },
  });
  servers.push(s);
  return { s, limits: () => limits! };
}

test('smtpd_client_message_rate_limit: the 3rd MAIL in the time unit gets Postfix\'s 450; another client is unaffected', async () => {
  const { s } = await limited(`${NO_EXCEPTIONS}smtpd_client_message_rate_limit = 2\n`);
  const c = await LineChat.open(s.port);
  assert.match(await c.reply(), /^220 /);
  await c.cmd('EHLO client.example');
  assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '250 2.1.0 Ok');
  assert.equal(await c.cmd('RSET'), '250 2.0.0 Ok');
  assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '250 2.1.0 Ok');
  assert.equal(await c.cmd('RSET'), '250 2.0.0 Ok');
  assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '450 4.7.1 Error: too much mail from 127.0.0.1');
  // A new connection does not reset the rate: it is per client, not per session.
  const again = await LineChat.open(s.port);
  await again.reply();
  await again.cmd('EHLO client.example');
  assert.equal(await again.cmd('MAIL FROM:<a@example.org>'), '450 4.7.1 Error: too much mail from 127.0.0.1');
  const other = await LineChat.open(s.port, { localAddress: '127.0.0.2' });
  await other.reply();
  await other.cmd('EHLO other.example');
  assert.equal(await other.cmd('MAIL FROM:<b@example.org>'), '250 2.1.0 Ok');
  assert.ok(logs.some((l) => l.includes('warning: Message delivery request rate limit exceeded: 3 from localhost[127.0.0.1] for service smtp')), logs.join('\n'));
  c.close(); again.close(); other.close();
});

test('smtpd_client_recipient_rate_limit: 450 4.7.1 Error: too many recipients from <addr>', async () => {
  const { s } = await limited(`${NO_EXCEPTIONS}smtpd_client_recipient_rate_limit = 3\n`);
  const c = await LineChat.open(s.port);
  await c.reply();
  await c.cmd('EHLO client.example');
  await c.cmd('MAIL FROM:<a@example.org>');
  for (let i = 1; i <= 3; i++) assert.equal(await c.cmd(`RCPT TO:<r${i}@example.test>`), '250 2.1.5 Ok');
  assert.equal(await c.cmd('RCPT TO:<r4@example.test>'), '450 4.7.1 Error: too many recipients from 127.0.0.1');
  assert.ok(logs.some((l) => l.includes('warning: Recipient address rate limit exceeded: 4 from localhost[127.0.0.1] for service smtp')));
  c.close();
});

test('smtpd_client_auth_rate_limit: every AUTH counts, right or wrong; then 450 4.7.1 Error: too many AUTH commands', async () => {
  const { s } = await limited(`${NO_EXCEPTIONS}smtpd_client_auth_rate_limit = 2\n`);
  const c = await LineChat.open(s.port);
  await c.reply();
  await c.cmd('EHLO client.example');
  const bad = Buffer.from('\0alice@example.test\0wrong').toString('base64');
  assert.match(await c.cmd(`AUTH PLAIN ${bad}`), /^535 5\.7\.8 /);
  assert.match(await c.cmd(`AUTH PLAIN ${bad}`), /^535 5\.7\.8 /);
  const good = Buffer.from('\0alice@example.test\0s3cret').toString('base64');
  assert.equal(await c.cmd(`AUTH PLAIN ${good}`), '450 4.7.1 Error: too many AUTH commands from 127.0.0.1', 'even the right password is refused now');
  assert.ok(logs.some((l) => l.includes('warning: AUTH command rate limit exceeded: 3 from localhost[127.0.0.1] for service smtp')));
  c.close();
});

test('smtpd_client_event_limit_exceptions (default $mynetworks) exempts trusted clients from every limit', async () => {
  const { s, limits } = await limited('mynetworks = 127.0.0.1/32\nsmtpd_client_message_rate_limit = 1\n');
  const a = await LineChat.open(s.port);
  assert.match(await a.reply(), /^220 /);
  await a.cmd('EHLO x');
  assert.equal(await a.cmd('MAIL FROM:<>'), '250 2.1.0 Ok');
  await a.cmd('RSET');
  assert.equal(await a.cmd('MAIL FROM:<>'), '250 2.1.0 Ok', '127.0.0.1 is in mynetworks: not counted');
  a.close();
  const far = await LineChat.open(s.port, { localAddress: '127.0.0.9' });
  await far.reply();
  await far.cmd('EHLO x');
  assert.equal(await far.cmd('MAIL FROM:<>'), '250 2.1.0 Ok');
  await far.cmd('RSET');
  assert.equal(await far.cmd('MAIL FROM:<>'), '450 4.7.1 Error: too much mail from 127.0.0.9', '127.0.0.9 is not');
  far.close();
  // Connections: the exempt client is never counted, however many it opens.
  const held = await Promise.all(Array.from({ length: 60 }, () => limits().admit('127.0.0.1')));
  assert.ok(held.every((h) => h.reply === undefined));
  assert.equal(await limits().anvil.lookup('smtp', '127.0.0.1'), undefined);
  assert.equal((await limits().admit('127.0.0.9')).reply, undefined);
});

test('a bad smtpd_client_event_limit_exceptions pattern is a ConfigError naming the parameter', async () => {
  const c = MainConfig.parse('smtpd_client_event_limit_exceptions = 10.0.0.0/99\n', 'main.cf');
  await assert.rejects(ClientLimits.open(c, { service: 'smtp', anvil: new Anvil() }), (e: Error) => e instanceof ConfigError && /smtpd_client_event_limit_exceptions: bad net\/mask pattern: "10\.0\.0\.0\/99"/.test(e.message));
});

test('hostile: 2,000 simultaneous connections from one IP; the count limit holds and 127.0.0.2 still delivers mail', async () => {
  const { s, limits } = await limited(`${NO_EXCEPTIONS}smtpd_client_connection_count_limit = 20\n`);
  const t0 = Date.now();
  const opened = await Promise.all(Array.from({ length: 2000 }, () => LineChat.open(s.port).catch(() => undefined)));
  const flood = opened.filter((c): c is LineChat => c !== undefined);
  const replies = await Promise.all(flood.map((c) => c.reply(20_000).catch((e: Error) => e.message)));
  const welcomed = replies.filter((r) => r.startsWith('220 ')).length;
  const refused = replies.filter((r) => r === '421 4.7.0 mx.example.test Error: too many connections from 127.0.0.1').length;
  assert.equal(welcomed, 20, 'exactly smtpd_client_connection_count_limit sessions');
  assert.equal(refused, flood.length - 20);
  assert.ok(flood.length >= 1900, `${flood.length} connections got through the kernel backlog`);
  // While the flood holds its 20 sessions, another client works normally.
  const legit = await LineChat.open(s.port, { localAddress: '127.0.0.2' });
  assert.match(await legit.reply(), /^220 mx\.example\.test /);
  await legit.cmd('EHLO legit.example');
  assert.equal(await legit.cmd('MAIL FROM:<a@example.org>'), '250 2.1.0 Ok');
  assert.equal(await legit.cmd('RCPT TO:<b@example.test>'), '250 2.1.5 Ok');
  assert.match(await legit.cmd('DATA'), /^354 /);
  assert.match(await legit.cmd('Subject: hi\r\n\r\nbody\r\n.'), /^250 2\.0\.0 Ok: queued as [0-9A-F]+$/);
  const elapsed = Date.now() - t0;
  assert.ok(logs.some((l) => /warning: Connection concurrency limit exceeded: 21 from unknown\[127\.0\.0\.1\] for service smtp/.test(l)));
  for (const c of flood) c.close();
  legit.close();
  // Released: the anvil count returns to zero once the flood is gone.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await limits().anvil.lookup('smtp', '127.0.0.1'))?.count, 0);
  assert.ok(elapsed < 20_000, `took ${elapsed} ms`);
});

test('smtpd_client_connection_rate_limit: the 4th connection in the time unit is refused, with the rate warning', async () => {
  const { s } = await limited(`${NO_EXCEPTIONS}smtpd_client_connection_rate_limit = 3\n`);
  for (let i = 0; i < 3; i++) {
    const c = await LineChat.open(s.port, { localAddress: '127.0.0.3' });
    assert.match(await c.reply(), /^220 /);
    c.close();
  }
  const c = await LineChat.open(s.port, { localAddress: '127.0.0.3' });
  assert.equal(await c.reply(), '421 4.7.0 mx.example.test Error: too many connections from 127.0.0.3');
  assert.ok(logs.some((l) => l.includes('warning: Connection rate limit exceeded: 4 from unknown[127.0.0.3] for service smtp')));
});

test('penalizedAuth: SMTP AUTH failures are answered later and later from that address; the right password at once (auth-penalty.ts)', async () => {
  const slept: number[] = [];
  const penalty = new AuthPenalty({ failureDelayMs: 0, sleep: async (ms) => { slept.push(ms); } });
  const s = await startSmtpd('', { auth: () => penalizedAuth(ALICE, penalty) });
  servers.push(s);
  const c = await LineChat.open(s.port, { localAddress: '127.0.0.4' });
  await c.reply();
  await c.cmd('EHLO x');
  for (let i = 0; i < 4; i++) {
    const bad = Buffer.from(`\0alice@example.test\0guess${i}`).toString('base64');
    assert.match(await c.cmd(`AUTH PLAIN ${bad}`), /^535 5\.7\.8 Error: authentication failed/);
  }
  assert.deepEqual(slept, [4000, 8000, 15000], 'failure replies wait longer: none, 4 s, 8 s, 15 s (auth_penalty_to_secs)');
  // The guessed account logging in from another address: not slowed by the guesser.
  slept.length = 0;
  const alice = await LineChat.open(s.port, { localAddress: '127.0.0.5' });
  await alice.reply();
  await alice.cmd('EHLO alice');
  const good = Buffer.from('\0alice@example.test\0s3cret').toString('base64');
  assert.equal(await alice.cmd(`AUTH PLAIN ${good}`), '235 2.7.0 Authentication successful');
  assert.deepEqual(slept, [], 'a correct password never waits for another address\'s failures');
  c.close(); alice.close();
});
