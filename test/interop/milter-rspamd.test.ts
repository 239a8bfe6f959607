/**
 * rspamd (Debian's package) in milter mode, as most Postfix sites run it: its proxy worker
 * with `milter = yes` and `self_scan = yes`, a private configuration (the package's rules, our
 * local.d/override.d: loopback ports, a DNS server that does not answer, every
 * message over the add_header score) in a temp dir. Real Postfix 3.7 and Postern get the same
 * `smtpd_milters`; asserted against both: a GTUBE message is rejected with rspamd's reply, a
 * normal one is queued with rspamd's X-Spam header.
 *
 * Greylisting (rspamd's greylist module, https://rspamd.com/doc/modules/greylisting.html): a
 * private redis-server (Debian's package) on a loopback port in the temp dir, no persistence,
 * given to the greylist module only (`greylist { servers = ... }`, so redis-backed modules the
 * other tests do not want — history, ratelimit, bayes — stay off; the module's `timeout` then
 * is also its redis timeout); timeout 2 s, check_local
 * (the client is 127.0.0.1), actions greylist = 4, and a local rule scoring 5 for a Subject
 * containing "greylist me". Sent through Python's smtplib to both MTAs: the first attempt gets
 * rspamd's "451 4.7.1 Try again later", the same message retried after the timeout is queued,
 * a clean message is queued at the first attempt.
 *
 * rspamd takes ~15 s to load its rules here; the test waits up to 60 s for its port, and is
 * skipped (with the reason) when it does not come up.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealPostfix } from '../harness/real-postfix.ts';
import { MilterPair, waitListening, type Side } from '../harness/milter-kit.ts';
import { freePort } from '../harness/free-port.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});
const skip = RealPostfix.unavailable() ?? (existsSync('/usr/bin/rspamd') ? undefined : 'Debian package rspamd is not installed');
const noRedis = existsSync('/usr/bin/redis-server') ? undefined : "Debian package redis-server is not installed (rspamd's greylist module keeps its records in redis)";
const run = promisify(execFile);

let dir = '';
let rspamd: ChildProcess | undefined;
let pair: MilterPair | undefined;
let notUp: string | undefined;
let redis: ChildProcess | undefined;
let redisNotUp: string | undefined;

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const HDRS = 'From: Alice <alice@example.org>\nTo: bob@example.net\nDate: Fri, 27 Nov 2026 10:00:00 +0000\n';
const DIALOGUE = ['EHLO client.example.org', 'MAIL FROM:<alice@example.org>', 'RCPT TO:<bob@example.net>', 'DATA', '.'];
before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'postern-rspamd-'));
  chmodSync(dir, 0o755);
  for (const d of ['local/override.d', 'local/local.d', 'db', 'run', 'log']) mkdirSync(join(dir, d), { recursive: true });
  const [proxy, controller] = [await freePort(), await freePort()];
  const w = (f: string, t: string) => writeFileSync(join(dir, 'local', f), t);
  w('override.d/worker-proxy.inc', `bind_socket = "127.0.0.1:${proxy}";\nmilter = yes;\ntimeout = 120s;\nupstream "local" { default = yes; self_scan = yes; }\ncount = 1;\n`);
  w('override.d/worker-normal.inc', 'enabled = false;\n');
  w('override.d/worker-controller.inc', `bind_socket = "127.0.0.1:${controller}";\n`);
  w('override.d/logging.inc', `type = "file"; filename = "${dir}/log/rspamd.log"; level = "info";\n`);
  w('override.d/options.inc', `pidfile = "${dir}/run/rspamd.pid";\ndns { nameserver = ["127.0.0.1:1"]; timeout = 0.1s; retransmits = 0; }\n`);
  // Every scanned message reaches the add_header action: rspamd's X-Spam header is added.
  w('local.d/actions.conf', 'add_header = -100;\n');
  if (!noRedis) {
    const redisPort = await freePort();
    mkdirSync(join(dir, 'redis'));
    redis = spawn('/usr/bin/redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', join(dir, 'redis'), '--daemonize', 'no'], { stdio: 'ignore' });
    try {
      await waitListening(redisPort, 15_000);
      // A score of 5 (the rule below) is over the greylist action; greylist_min_score follows it,
      // so the other tests' messages (score under 4, action add_header) are not greylisted.
      w('local.d/actions.conf', 'add_header = -100;\ngreylist = 4;\n');
      w('local.d/greylist.conf', `servers = "127.0.0.1:${redisPort}";\nexpire = 1d;\ntimeout = 2s;\ncheck_local = true;\n`);
      w('rspamd.local.lua', `rspamd_config.POSTERN_TEST_GREY = {
  callback = function(task)
    local s = task:get_header('Subject')
    return s ~= nil and s:find('greylist me', 1, true) ~= nil
  end,
  score = 5.0,
  description = 'test message meant to be greylisted',
}
`);
    } catch {
      redisNotUp = 'redis-server did not start within 15 s';
    }
  }
  rspamd = spawn('/usr/bin/rspamd', ['-f', '-i', '-c', '/etc/rspamd/rspamd.conf', `--var=LOCAL_CONFDIR=${dir}/local`,
    `--var=DBDIR=${dir}/db`, `--var=RUNDIR=${dir}/run`, `--var=LOGDIR=${dir}/log`], { stdio: 'ignore' });
  try {
    await waitListening(proxy, 60_000);
  } catch {
    notUp = 'rspamd did not start within 60 s';
    return;
  }
  pair = await MilterPair.start('smtpd_discard_ehlo_keywords = etrn\nmilter_default_action = tempfail\nmilter_protocol = 6',
    () => `smtpd_milters = { inet:127.0.0.1:${proxy}, content_timeout=60s, command_timeout=60s }`);
  // rspamd's first scan loads its maps and compiled expressions (~15 s here): done before the tests.
  await pair.dialogue('postfix', DIALOGUE, `${HDRS}Subject: warm-up\nMessage-ID: <warm@example.org>\n\nwarm-up\n`);
}, { timeout: 180_000 });

after(async () => {
  await pair?.stop();
  if (redis && redis.exitCode === null) {
    const exited = new Promise((r) => redis!.once('exit', r));
    redis.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (redis.exitCode === null) redis.kill('SIGKILL');
  }
  if (rspamd && rspamd.exitCode === null) {
    // SIGTERM: rspamd's main process stops its workers too (SIGKILL would leave them running).
    const exited = new Promise((r) => rspamd!.once('exit', r));
    rspamd.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (rspamd.exitCode === null) rspamd.kill('SIGKILL');
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});


test('rspamd rejects a GTUBE message, as through Postfix', { skip, timeout: 120_000 }, async (t) => {
  if (notUp) return t.skip(notUp);
  const out = {} as Record<Side, string>;
  for (const side of ['postfix', 'postern'] as const) {
    const r = await pair!.dialogue(side, DIALOGUE, `${HDRS}Subject: gtube\nMessage-ID: <gtube-${side}@example.org>\n\n${GTUBE}\n`);
    out[side] = r.replies[5]!;
  }
  assert.match(out.postern, /^554 5\.7\.1 /);
  assert.equal(out.postern, out.postfix);
});

test('rspamd adds its spam header to a message it accepts, as through Postfix', { skip, timeout: 120_000 }, async (t) => {
  if (notUp) return t.skip(notUp);
  const spam = {} as Record<Side, string[]>;
  for (const side of ['postfix', 'postern'] as const) {
    const r = await pair!.dialogue(side, DIALOGUE, `${HDRS}Subject: hello\nMessage-ID: <ok-${side}@example.org>\n\nJust a note.\n`);
    assert.match(r.replies[5]!, /^250 2\.0\.0 Ok: queued as/, `${side}: ${r.replies.join(' | ')}`);
    const q = await pair!.queued(side, r.queueId!);
    spam[side] = q.content.split('\n').filter((l) => /^X-Spam:/i.test(l));
  }
  assert.deepEqual(spam.postern, ['X-Spam: Yes']);
  assert.deepEqual(spam.postern, spam.postfix);
});

// Python's smtplib sends one message; prints the end-of-data reply as "CODE TEXT".
const SEND_PY = `
import smtplib, sys
c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
c.ehlo("client.example.org")
c.mail(sys.argv[2])
c.rcpt(sys.argv[3])
code, msg = c.data(sys.stdin.buffer.read())
print("%d %s" % (code, msg.decode()))
c.quit()
`;
async function send(side: Side, from: string, message: string): Promise<string> {
  const p = run('python3', ['-c', SEND_PY, String(pair!.ports[side]), from, 'bob@example.net'], { timeout: 90_000 });
  p.child.stdin!.end(message);
  return (await p).stdout.trim();
}
const sides = ['postfix', 'postern'] as const;
// Each side its own sender and body: rspamd keys its records on the body and on sender+recipients+client network.
const msg = (side: Side, tag: string, subject: string) =>
  `From: ${tag}-${side}@example.org\nTo: bob@example.net\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nSubject: ${subject}\nMessage-ID: <${tag}-${side}@example.org>\n\nNote ${tag} for ${side}.\n`;

test('rspamd greylists a message over its greylist score, then accepts the retry after the timeout, as through Postfix', { skip: skip ?? noRedis, timeout: 120_000 }, async (t) => {
  if (notUp || redisNotUp) return t.skip(notUp ?? redisNotUp);
  const first = {} as Record<Side, string>;
  for (const side of sides) first[side] = await send(side, `grey-${side}@example.org`, msg(side, 'grey', 'please greylist me'));
  assert.equal(first.postern, '451 4.7.1 Try again later');
  assert.equal(first.postern, first.postfix);
  // timeout = 2s, counted in whole seconds from the first attempt: 3.5 s later both records have passed it.
  await new Promise((r) => setTimeout(r, 3_500));
  for (const side of sides) {
    const retry = await send(side, `grey-${side}@example.org`, msg(side, 'grey', 'please greylist me'));
    assert.match(retry, /^250 2\.0\.0 Ok: queued as /, side);
  }
});

test('rspamd never greylists a clean message, as through Postfix', { skip: skip ?? noRedis, timeout: 120_000 }, async (t) => {
  if (notUp || redisNotUp) return t.skip(notUp ?? redisNotUp);
  for (const side of sides) {
    const r = await send(side, `clean-${side}@example.org`, msg(side, 'clean', 'lunch'));
    assert.match(r, /^250 2\.0\.0 Ok: queued as /, side);
  }
});
