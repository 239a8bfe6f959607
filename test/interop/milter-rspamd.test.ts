/**
 * rspamd (Debian's package) in milter mode, as most Postfix sites run it: its proxy worker
 * with `milter = yes` and `self_scan = yes`, a private configuration (the package's rules, our
 * local.d/override.d: loopback ports, no redis, a DNS server that does not answer, every
 * message over the add_header score) in a temp dir. Real Postfix 3.7 and Postern get the same
 * `smtpd_milters`; asserted against both: a GTUBE message is rejected with rspamd's reply, a
 * normal one is queued with rspamd's X-Spam header.
 *
 * rspamd takes ~15 s to load its rules here; the test waits up to 60 s for its port, and is
 * skipped (with the reason) when it does not come up.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealPostfix } from '../harness/real-postfix.ts';
import { MilterPair, waitListening, type Side } from '../harness/milter-kit.ts';
import { freePort } from '../harness/free-port.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});
const skip = RealPostfix.unavailable() ?? (existsSync('/usr/bin/rspamd') ? undefined : 'Debian package rspamd is not installed');

let dir = '';
let rspamd: ChildProcess | undefined;
let pair: MilterPair | undefined;
let notUp: string | undefined;

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
