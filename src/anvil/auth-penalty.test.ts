import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { AuthPenalty, USER_FAILURE_LIMIT, ipIdent, penaltyToSecs } from './auth-penalty.ts';
import { ALICE } from '../../test/harness/anvil-testkit.ts';
import { LineChat } from '../../test/harness/line-chat.ts';
import { setLogSink } from '../util/msg.ts';
import type { UserDirectory } from '../lib-auth/user-directory.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); });

/** A fake clock whose sleep() advances it and records the wait. */
function fake(parallel = false): { now: () => number; advance(ms: number): void; sleep: (ms: number) => Promise<void>; slept: number[] } {
  let t = 5_000_000;
  const slept: number[] = [];
  // parallel: the waits overlap (many connections), so a sleep does not move the clock on.
  return { now: () => t, advance(ms) { t += ms; }, slept, sleep: async (ms) => { slept.push(ms); if (!parallel) t += ms; } };
}

test('auth_penalty_to_secs(): 2 s doubling, capped at 15 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 40].map(penaltyToSecs), [4, 8, 15, 15, 15, 15]);
  assert.equal(penaltyToSecs(0), 2);
});

/** A directory where alice@example.test's password is "s3cret"; counts the checks. */
function counting(): UserDirectory & { checks: number } {
  const d = {
    ...ALICE,
    checks: 0,
    async verifyPlain(u: string, pw: string) {
      d.checks++;
      return u.toLowerCase() === 'alice@example.test' && pw === 's3cret' ? { result: 'ok' as const, user: 'alice@example.test' } : { result: 'mismatch' as const };
    },
  };
  return d;
}

test('failures from one address are answered after 2, 6, 10, 17 s (Dovecot 2.3\'s totals); a right password from it at once', async () => {
  const c = fake();
  const p = new AuthPenalty({ now: c.now, sleep: c.sleep });
  const dir = counting();
  for (let i = 0; i < 5; i++) assert.equal((await p.verify(dir, '192.0.2.1', `u${i}`, `guess${i}`)).result, 'mismatch');
  assert.deepEqual(c.slept, [2000, 6000, 10000, 17000, 17000], 'auth_failure_delay + the penalty before the attempt');
  assert.equal(p.delayMs('192.0.2.99'), 0, 'other addresses are not delayed');
  c.slept.length = 0;
  assert.equal((await p.verify(dir, '192.0.2.1', 'alice@example.test', 's3cret')).result, 'ok');
  assert.deepEqual(c.slept, [], 'a correct password is never held (Dovecot holds it up to 15 s)');
  assert.equal(p.delayMs('192.0.2.1'), 0, 'and it clears the address\'s penalty');
});

test('the penalty decays like Dovecot\'s, counted from the failure\'s answer: 5 s idle drops no level; 15 s clears it', async () => {
  const c = fake();
  const p = new AuthPenalty({ now: c.now, sleep: c.sleep, failureDelayMs: 0 });
  const dir = counting();
  await p.verify(dir, '198.51.100.1', 'x', 'a');
  await p.verify(dir, '198.51.100.1', 'x', 'b');
  assert.equal(p.delayMs('198.51.100.1'), 8000);
  c.advance(5000);
  assert.equal(p.delayMs('198.51.100.1'), 8000);
  c.advance(10_000);
  assert.equal(p.delayMs('198.51.100.1'), 0);
});

test('the same wrong password again does not raise the penalty (Dovecot\'s password checksums): a phone with a stale password', async () => {
  const c = fake();
  const p = new AuthPenalty({ now: c.now, sleep: c.sleep, failureDelayMs: 0, userFailureLimit: 3 });
  const dir = counting();
  for (let i = 0; i < 20; i++) await p.verify(dir, '192.0.2.9', 'alice@example.test', 'old-password');
  assert.equal(p.delayMs('192.0.2.9'), 4000, 'stays at penalty 1');
  assert.equal(dir.checks, 20, 'and the repeats do not count against the user: each is still checked');
  assert.equal((await p.verify(dir, '192.0.2.9', 'alice@example.test', 's3cret')).result, 'ok');
});

test('per user: past 10 failures a minute, penalised addresses are refused unchecked; the real user logs in at once from a clean or known address', async () => {
  const c = fake(true); // the guesses come on parallel connections
  const p = new AuthPenalty({ now: c.now, sleep: c.sleep });
  const dir = counting();
  assert.equal((await p.verify(dir, '203.0.113.7', 'Alice@Example.test', 's3cret')).result, 'ok'); // her usual address
  await p.verify(dir, '203.0.113.7', 'alice@example.test', 'typo');                               // and one typo there
  for (let i = 0; i < USER_FAILURE_LIMIT; i++) await p.verify(dir, `10.0.0.${i % 3}`, 'alice@example.test', `guess${i}`);
  const checks = dir.checks;
  c.slept.length = 0;
  // A guessing address with the right password: answered as failed after 17 s, never checked.
  assert.equal((await p.verify(dir, '10.0.0.1', 'ALICE@example.test', 's3cret')).result, 'mismatch');
  assert.equal(dir.checks, checks, 'not checked');
  assert.deepEqual(c.slept, [17000]);
  c.slept.length = 0;
  assert.equal((await p.verify(dir, '10.0.0.200', 'alice@example.test', 's3cret')).result, 'ok', 'a fresh address: checked, at once');
  assert.equal((await p.verify(dir, '203.0.113.7', 'alice@example.test', 's3cret')).result, 'ok', 'her known address, though penalised');
  assert.deepEqual(c.slept, [], 'the real user never waits');
  assert.equal((await p.verify(dir, '10.0.0.2', 'bob@example.test', 'whatever')).result, 'mismatch');
  assert.equal(dir.checks, checks + 3, 'other users are still checked');
  c.advance(60_000);
  assert.equal((await p.verify(dir, '10.0.0.1', 'alice@example.test', 's3cret')).result, 'ok', 'a minute later the window is over');
  const dovecot = new AuthPenalty({ now: c.now, sleep: c.sleep, perUser: false });
  for (let i = 0; i < 20; i++) await dovecot.verify(dir, '10.0.1.1', 'alice@example.test', `g${i}`);
  assert.equal(dovecot.delayMs('10.0.1.2'), 0, 'perUser: false is Dovecot\'s scope: per address only');
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
  const dir = counting();
  for (let i = 0; i < 50_000; i++) await p.verify(dir, `10.${i >> 16 & 255}.${i >> 8 & 255}.${i & 255}`, `user${i}`, 'x');
  assert.ok(p.size <= 2000, `${p.size} entries`);
  c.advance(60_000);
  await p.verify(dir, '192.0.2.77', 'last', 'x');
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
  // Checked: the first guess of each connection (the address is clean) until the user's bound,
  // then nothing from this penalised address (auth-penalty.ts: the per-user bound).
  assert.ok(attackerChecks <= USER_FAILURE_LIMIT + 1, `only ${attackerChecks} of ${sent} guesses reached the password check in 3 s`);
  assert.ok(worstLag < 100, `event loop lag ${worstLag} ms`);
});
