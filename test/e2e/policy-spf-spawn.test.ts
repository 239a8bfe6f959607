/**
 * postfix-policyd-spf-python (Debian's /usr/bin/policyd-spf) started from master.cf by spawn(8)
 * exactly as Postfix sites configure it:
 *
 *   policyd-spf  unix  -  n  n  -  0  spawn
 *       user=policyd-spf argv=/usr/bin/policyd-spf CONF
 *   main.cf: smtpd_recipient_restrictions = check_policy_service unix:private/policyd-spf
 *            policyd-spf_time_limit = 3600
 *
 * on the whole Postern system and on real Postfix with the same lines. The SPF records come from
 * the loopback DNS server (test/harness/dns-server.ts): policyd-spf resolves through dnspython,
 * whose default resolver a sitecustomize.py (on PYTHONPATH, passed through export_environment as
 * Postfix passes environment to spawned commands) points at that server. CONF is Debian's
 * policyd-spf.conf with skip_addresses emptied of 127.0.0.0/8 (the test client is 127.0.0.1).
 * Compared: the RCPT replies for a sender whose SPF fails (550 5.7.23 from policyd-spf), passes,
 * soft-fails and has no SPF record; PREPEND's Received-SPF header; hostile spawned commands (one
 * that hangs past its time limit, one that crashes); stopping Postern ends policyd-spf.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PosternSystem } from '../harness/postern-system.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { DnsServer } from '../harness/dns-server.ts';
import { freePort } from '../harness/free-port.ts';
import { rcptReplies } from '../harness/smtp-rcpt-py.ts';

const run = promisify(execFile);
const POLICYD_SPF = '/usr/bin/policyd-spf';
const skip = existsSync(POLICYD_SPF) ? undefined : 'Debian package postfix-policyd-spf-python is not installed';

let sys: PosternSystem | undefined;
let dns: DnsServer | undefined;
let dir = '';

const SITECUSTOMIZE = `# Test only: point dnspython's default resolver at the test's loopback DNS server.
import os
spec = os.environ.get("POSTERN_TEST_DNS")
if spec:
    import dns.resolver
    host, port = spec.rsplit(":", 1)
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [host]
    r.port = int(port)
    r.timeout = r.lifetime = 5
    dns.resolver.default_resolver = r
`;

const MASTER = (conf: string) => `
policyd-spf  unix  -       n       n       -       0       spawn
    user=policyd-spf argv=${POLICYD_SPF} ${conf}
`;

const MAIN = (d: string, dnsPort: number) => `
policyd-spf_time_limit = 3600
export_environment = TZ MAIL_CONFIG LANG PYTHONPATH=${d}/py POSTERN_TEST_DNS=127.0.0.1:${dnsPort}
mynetworks = 127.0.0.1/32
relay_domains = spf-rcpt.test
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = check_policy_service unix:private/policyd-spf
`;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'postern-spf-'));
  chmodSync(dir, 0o755);
  const py = join(dir, 'py');
  mkdirSync(py, { mode: 0o755 });
  writeFileSync(join(py, 'sitecustomize.py'), SITECUSTOMIZE, { mode: 0o644 });
  const conf = readFileSync('/etc/postfix-policyd-spf-python/policyd-spf.conf', 'utf8')
    .replace(/^skip_addresses\s*=.*$/m, 'skip_addresses = 192.0.2.255/32');
  writeFileSync(join(dir, 'policyd-spf.conf'), conf, { mode: 0o644 });
  dns = await DnsServer.start({
    'spf-fail.test': { TXT: ['v=spf1 ip4:192.0.2.1 -all'] },
    'spf-pass.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
    'spf-soft.test': { TXT: ['v=spf1 ~all'] },
    'nospf.test': { A: ['192.0.2.2'] },
  });
});

after(async () => {
  await sys?.destroy();
  await dns?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function spfRcptReplies(port: number, senders: string[]): Promise<string[]> {
  return rcptReplies(port, senders.map((s) => [s, 'user@spf-rcpt.test']));
}

/** The policyd-spf processes this test started (their command line names its conf file). */
function spfProcesses(): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(join(dir, 'policyd-spf.conf')); } catch { return false; }
  }).map(Number);
}

const SENDERS = ['a@spf-fail.test', 'b@spf-pass.test', 'c@spf-soft.test', 'd@nospf.test'];

let ours: string[] = [];

test('policyd-spf spawned from master.cf: SPF fail is refused with its reply, pass/softfail/none accepted', { skip }, async () => {
  sys = await PosternSystem.start();
  appendFileSync(join(sys.configDir, 'master.cf'), MASTER(join(dir, 'policyd-spf.conf')));
  appendFileSync(join(sys.configDir, 'main.cf'), MAIN(dir, dns!.port));
  await sys.stop();
  await PosternSystem.start(sys);
  const sock = join(sys.configDir, 'data', 'queue', 'private', 'policyd-spf');
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
  ours = await spfRcptReplies(sys.ports.smtp, SENDERS);
  assert.match(ours[0]!, /^550 5\.7\.23 <user@spf-rcpt\.test>: Recipient address rejected: Message rejected due to: SPF fail - not authorized\./);
  assert.match(ours[1]!, /^250 /);
  assert.match(ours[2]!, /^250 /);
  assert.match(ours[3]!, /^250 /);
  assert.ok(!/warning: .*policyd-spf/.test(sys.log), `no warnings about the policy service:\n${sys.log.split('\n').filter((l) => l.includes('warning')).join('\n')}`);
});

test('real Postfix with the same master.cf and main.cf lines: the same replies', { skip: skip ?? RealPostfix.unavailable() }, async () => {
  assert.ok(ours.length, 'the Postern test ran first');
  const port = await freePort();
  const pf = await RealPostfix.start({
    mainCf: MAIN(dir, dns!.port),
    masterCf: `127.0.0.1:${port} inet n - n - - smtpd\n${MASTER(join(dir, 'policyd-spf.conf'))}`,
  });
  try {
    const theirs = await spfRcptReplies(port, SENDERS);
    assert.deepEqual(ours, theirs);
  } finally {
    await pf.stop();
  }
});

test('PREPEND from policyd-spf: the Received-SPF header is the first header smtpd wrote, above its Received:', { skip }, async () => {
  assert.ok(sys, 'the Postern test ran first');
  const py = `
import smtplib, sys
c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
c.ehlo("client.example.org")
c.sendmail("b@spf-pass.test", ["postmaster@example.test"], b"Subject: spf\\r\\n\\r\\nbody\\r\\n")
c.quit()
`;
  await run('python3', ['-c', py, String(sys.ports.smtp)], { timeout: 60_000 });
  const newDir = join(sys.maildir('postmaster@example.test'), 'new');
  let text = '';
  for (let i = 0; i < 300 && !text; i++) {
    const files = existsSync(newDir) ? readdirSync(newDir) : [];
    for (const f of files) {
      const t = readFileSync(join(newDir, f), 'utf8');
      if (t.includes('Subject: spf')) text = t;
    }
    if (!text) await new Promise((r) => setTimeout(r, 100));
  }
  // virtual(8) adds Return-Path: and Delivered-To: above what smtpd wrote.
  const lines = text.split('\n').filter((l) => !/^(Return-Path|Delivered-To): /.test(l));
  assert.match(lines[0]!, /^Received-SPF: Pass \(mailfrom\) identity=mailfrom; client-ip=127\.0\.0\.1; helo=client\.example\.org; envelope-from=b@spf-pass\.test; receiver=/, text.slice(0, 400));
  assert.match(lines[1]!, /^Received: from client\.example\.org /);
});

test('hostile spawned policy servers: one that hangs is killed at its time limit, one that crashes is logged; the default actions apply', { skip }, async () => {
  assert.ok(sys, 'the Postern test ran first');
  appendFileSync(join(sys.configDir, 'master.cf'), `
hangpol   unix  -       n       n       -       0       spawn
    user=nobody argv=/bin/sleep 60
crashpol  unix  -       n       n       -       0       spawn
    user=nobody argv=/bin/sh -c { echo broken policy >&2; exit 3 }
`);
  appendFileSync(join(sys.configDir, 'main.cf'), `
hangpol_time_limit = 2s
smtpd_sender_restrictions =
    check_policy_service { unix:private/hangpol, timeout=30s, try_limit=1, default_action=DUNNO }
    check_policy_service { unix:private/crashpol, try_limit=1, default_action={451 4.3.5 policy crashed} }
`);
  const mark = sys.log.length;
  // Stopping ends the spawned policyd-spf processes: smtpd closes its policy connections.
  assert.ok(spfProcesses().length > 0, 'policyd-spf runs while smtpd holds a connection to it');
  await sys.stop();
  const end = Date.now() + 20_000;
  while (spfProcesses().length > 0) {
    assert.ok(Date.now() < end, `policyd-spf still running after stop: ${spfProcesses().join(' ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await PosternSystem.start(sys);
  const t0 = Date.now();
  const [reply] = await spfRcptReplies(sys.ports.smtp, ['x@nospf.test']);
  assert.equal(reply, '451 4.3.5 <x@nospf.test>: Sender address rejected: policy crashed');
  assert.ok(Date.now() - t0 < 25_000, 'the hanging command was killed at its time limit, not at the 30 s timeout');
  // The command's exit is logged once its pipes are closed: wait for the line.
  await sys.waitLog(/warning: command \/bin\/sh exit status 3/);
  const log = sys.log.slice(mark);
  assert.match(log, /warning: command \/bin\/sleep time limit exceeded/);
  assert.match(log, /warning: command \/bin\/sh: broken policy/);
  assert.match(log, /warning: command \/bin\/sh exit status 3/, log.split('\n').filter((l) => /warning/.test(l)).join('\n'));
  assert.match(log, /warning: problem talking to server unix:private\/hangpol: lost connection; using default action "DUNNO"/);
  assert.match(log, /warning: problem talking to server unix:private\/crashpol: lost connection; using default action "451 4\.3\.5 policy crashed"/);
});

