import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { AuthPenalty, ipIdent, penaltyToSecs } from './auth-penalty.ts';
import { ALICE } from '../../test/harness/anvil-testkit.ts';
import { LineChat } from '../../test/harness/line-chat.ts';
import { setLogSink } from '../util/msg.ts';
import type { UserDirectory } from '../lib-auth/user-directory.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); });

/** A fake clock whose sleep() advances it and records the wait. */
function fake(): { now: () => number; advance(ms: number): void; sleep: (ms: number) => Promise<void>; slept: number[] } {
  let t = 5_000_000;
  const slept: number[] = [];
  return { now: () => t, advance(ms) { t += ms; }, slept, sleep: async (ms) => { slept.push(ms); t += ms; } };
}

test('auth_penalty_to_secs(): 2 s doubling, capped at 15 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 40].map(penaltyToSecs), [4, 8, 15, 15, 15, 15]);
  assert.equal(penaltyToSecs(0), 2);
});

test('failures from one address grow the delay before the next attempt; a success clears it', async () => {
  const c = fake();
  const p = new AuthPenalty({ now: c.now, sleep: c.sleep, failureDelayMs: 0 });
  for (let i = 0; i < 5; i++) { await p.beforeAuth('192.0.2.1', `u${i}`); await p.result('192.0.2.1', `u${i}`, false); }
  assert.deepEqual(c.slept, [4000, 8000, 15000, 15000], 'first attempt free, then 4, 8, 15, 15 s (Dovecot)');
  assert.equal(p.delayMs('192.0.2.99'), 0, 'other addresses are not delayed');
  await p.result('192.0.2.1', 'u9', true);
  assert.equal(p.delayMs('192.0.2.1'), 0);
});

test('the penalty decays like Dovecot\'s: 5 s idle drops no level (the first drop needs 15 s); after 15 s idle it is gone', async () => {
  const c = fake();
  const p = new AuthPenalty({ now: c.now, sleep: c.sleep, failureDelayMs: 0 });
  await p.result('198.51.100.1', undefined, false);
  await p.result('198.51.100.1', undefined, false);
  assert.equal(p.delayMs('198.51.100.1'), 8000);
  c.advance(5000); // ≥ delay(1) = 4 but < delay(2) = 8 ... the loop starts at 4 (15 s): no drop
  assert.equal(p.delayMs('198.51.100.1'), 8000);
  c.advance(10_000); // 15 s: drops 4→3→2→1→0 levels while elapsed ≥ 15, 15, 8, 4
  assert.equal(p.delayMs('198.51.100.1'), 0);
});

test('a failure reply waits auth_failure_delay (default 2 s); a success does not', async () => {
  const c = fake();
  const p = new AuthPenalty({ now: c.now, sleep: c.sleep });
  await p.result('192.0.2.5', 'x', true);
  assert.deepEqual(c.slept, []);
  await p.result('192.0.2.5', 'x', false);
  assert.deepEqual(c.slept, [2000]);
});

test('per user: guessing one account from many addresses delays it, except from an address it logged in from', async () => {
  const c = fake();
  const p = new AuthPenalty({ now: c.now, sleep: c.sleep, failureDelayMs: 0 });
  await p.result('203.0.113.7', 'Alice@Example.test', true); // Alice's usual address
  for (let i = 1; i <= 3; i++) await p.result(`10.0.0.${i}`, 'alice@example.test', false);
  assert.equal(p.delayMs('10.0.0.200', 'ALICE@example.test'), 15000, 'a fresh botnet address: user penalty, case-insensitive');
  assert.equal(p.delayMs('203.0.113.7', 'alice@example.test'), 0, 'Alice at home is not slowed by the attack');
  assert.equal(p.delayMs('10.0.0.200', 'bob@example.test'), 0);
  const dovecot = new AuthPenalty({ now: c.now, sleep: c.sleep, failureDelayMs: 0, perUser: false });
  for (let i = 1; i <= 3; i++) await dovecot.result(`10.0.0.${i}`, 'alice@example.test', false);
  assert.equal(dovecot.delayMs('10.0.0.200', 'alice@example.test'), 0, 'perUser: false is Dovecot exactly');
});

test('IPv6 clients are one ident per /64 (Dovecot masks the address); IPv4-mapped is plain IPv4', () => {
  assert.equal(ipIdent('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(ipIdent('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
  assert.equal(ipIdent('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(ipIdent('::ffff:192.0.2.1'), '192.0.2.1');
});

test('memory: 50,000 distinct addresses and user names stay within the cap; decayed entries are swept', async () => {
  const c = fake();
  const p = new AuthPenalty({ now: c.now, sleep: c.sleep, failureDelayMs: 0, maxEntries: 1000 });
  for (let i = 0; i < 50_000; i++) await p.result(`10.${i >> 16 & 255}.${i >> 8 & 255}.${i & 255}`, `user${i}`, false);
  assert.ok(p.size <= 2000, `${p.size} entries`);
  c.advance(60_000);
  await p.result('192.0.2.77', 'last', false);
  assert.equal(p.size, 2, 'everything older than the penalty timeout is gone');
});

test('directory(): a temporary failure of the user directory does not count as a failed password', async () => {
  const c = fake();
  const p = new AuthPenalty({ now: c.now, sleep: c.sleep, failureDelayMs: 0 });
  const flaky: UserDirectory = { ...ALICE, verifyPlain: async () => ({ result: 'tempfail' }) };
  for (let i = 0; i < 3; i++) assert.equal((await p.directory(flaky, '192.0.2.8').verifyPlain('alice@example.test', 'x')).result, 'tempfail');
  assert.equal(p.delayMs('192.0.2.8'), 0);
});

test('hostile: password guessing at 100/s on 50 connections; delays grow, the process stays responsive, others log in at once', async () => {
  const p = new AuthPenalty(); // real timers, Dovecot's defaults
  let attackerChecks = 0;
  const dir: UserDirectory = {
    ...ALICE,
    async verifyPlain(u, pw) {
      if (u === 'alice@example.test') attackerChecks++;
      return u === 'bob@example.test' && pw === 'right' ? { result: 'ok', user: u } : { result: 'mismatch' };
    },
  };
  // A minimal login protocol on a real socket: "LOGIN user pass" → "OK" / "NO" (what imapd/pop3d do).
  const server = createServer((s: Socket) => {
    s.setEncoding('latin1');
    let buf = '';
    s.on('error', () => {});
    s.on('data', async (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const [, user = '', pass = ''] = buf.slice(0, nl).trim().split(' ');
        buf = buf.slice(nl + 1);
        const ip = (s.remoteAddress ?? '').replace(/^::ffff:/, '');
        const r = await p.directory(dir, ip).verifyPlain(user, pass);
        if (!s.destroyed) s.write(r.result === 'ok' ? '200 OK\r\n' : '500 NO\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1', backlog: 1024 }, r));
  const port = (server.address() as { port: number }).port;
  const attackers = await Promise.all(Array.from({ length: 50 }, () => LineChat.open(port, { localAddress: '127.0.0.1' })));
  let sent = 0;
  const fire = setInterval(() => { // 100 guesses per second, spread over the connections
    attackers[sent % attackers.length]!.send(`LOGIN alice@example.test guess${sent}\n`);
    sent++;
  }, 10);
  // Event-loop lag: a 50 ms timer must fire on time while the attack runs.
  let worstLag = 0;
  let last = Date.now();
  const probe = setInterval(() => { const t = Date.now(); worstLag = Math.max(worstLag, t - last - 50); last = t; }, 50);
  await new Promise((r) => setTimeout(r, 3000));
  const legit = await LineChat.open(port, { localAddress: '127.0.0.2' });
  const t0 = Date.now();
  legit.send('LOGIN bob@example.test right\n');
  const answer = await legit.reply(3000);
  const legitMs = Date.now() - t0;
  clearInterval(fire);
  clearInterval(probe);
  for (const a of attackers) a.close();
  legit.close();
  server.close();
  assert.equal(answer, '200 OK');
  assert.ok(legitMs < 300, `legitimate login from 127.0.0.2 took ${legitMs} ms`);
  assert.ok(sent >= 100, `${sent} guesses sent`); // ~300 on an idle machine; fewer when the test host is loaded
  assert.ok(attackerChecks <= 3, `only ${attackerChecks} of ${sent} guesses reached the password check in 3 s`);
  assert.ok(worstLag < 100, `event loop lag ${worstLag} ms`);
});
