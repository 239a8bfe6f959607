/**
 * Metrics end to end: a running system with postern_metrics = yes on a loopback HTTP listener,
 * mail sent with Python's smtplib, and a real Prometheus (Debian's package) scraping /metrics
 * every second with basic authentication; its HTTP API must report what the test sent — N
 * messages received, N delivered by virtual(8), the rejected recipients under the restriction
 * that rejected them — and the series of the qmgr worker thread and of an smtpd child process
 * (postern_process_mode = process) must be in the same scrape. `promtool check metrics` must
 * find nothing to complain about in the page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { PosternSystem } from '../harness/postern-system.ts';
import { freePort, freePortBase } from '../harness/free-port.ts';

const haveProm = spawnSync('prometheus', ['--version'], { encoding: 'utf8' }).status === 0;

/** Send `ok` messages to postmaster@example.test, each with `bad` unknown recipients refused first. */
function sendMail(port: number, ok: number, bad: number): void {
  const py = `
import smtplib, sys
ok, bad = int(sys.argv[1]), int(sys.argv[2])
s = smtplib.SMTP('127.0.0.1', ${port}, timeout=20)
s.ehlo('client.example')
for i in range(ok):
    s.mail('sender@example.org')
    for j in range(bad):
        code, _ = s.rcpt('nobody%d@example.test' % j)
        assert code == 550, code
    code, _ = s.rcpt('postmaster@example.test')
    assert code == 250, code
    code, _ = s.data(b'Subject: metrics %d\\r\\n\\r\\nbody\\r\\n' % i)
    assert code == 250, code
s.quit()
`;
  const r = spawnSync('python3', ['-c', py, String(ok), String(bad)], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
}

/** One message to a recipient whose delivery is deferred. */
function sendDeferred(port: number): void {
  const r = spawnSync('python3', ['-c', `
import smtplib
s = smtplib.SMTP('127.0.0.1', ${port}, timeout=20)
s.sendmail('postmaster@example.test', ['joe@remote.test'], b'Subject: wait\\r\\n\\r\\nbody\\r\\n')
s.quit()
`], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
}

/** IMAP over TLS (imaps): one failed login, then a login, SELECT, FETCH, a bogus command. */
function imapSession(port: number, password: string): void {
  const r = spawnSync('python3', ['-c', `
import imaplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL('127.0.0.1', ${port}, ssl_context=ctx, timeout=30)
try:
    m.login('postmaster@example.test', 'wrong')
    sys.exit('login with a wrong password succeeded')
except imaplib.IMAP4.error:
    pass
m.login('postmaster@example.test', sys.argv[1])
typ, data = m.select('INBOX'); assert typ == 'OK', data
typ, data = m.fetch('1', '(FLAGS)'); assert typ == 'OK', data
imaplib.Commands['XYZZY'] = ('SELECTED',)
try:
    m._simple_command('XYZZY')
except imaplib.IMAP4.error:
    pass
m.logout()
`, password], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
}

function curl(url: string, ...args: string[]): { code: number; body: string } {
  const r = spawnSync('curl', ['-s', '-o', '-', '-w', '\n%{http_code}', ...args, url], { encoding: 'utf8', timeout: 20_000 });
  const i = r.stdout.lastIndexOf('\n');
  return { code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

async function query(promPort: number, q: string): Promise<number | undefined> {
  const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
  const j = await res.json() as { status: string; data: { result: { value: [number, string] }[] } };
  if (j.status !== 'success' || j.data.result.length === 0) return undefined;
  return j.data.result.reduce((a, r) => a + Number(r.value[1]), 0);
}

/** On failure: the log lines that say what happened to the mail. */
let mailLog: () => string = () => '';

/** Wait until Prometheus answers `q` with `want` (it scrapes every second). */
async function expectValue(promPort: number, q: string, want: number | ((v: number) => boolean)): Promise<void> {
  const ok = typeof want === 'number' ? (v: number) => v === want : want;
  const end = Date.now() + 40_000;
  let last: number | undefined;
  for (;;) {
    try { last = await query(promPort, q); } catch { last = undefined; }
    if (last !== undefined && ok(last)) return;
    if (Date.now() > end) assert.fail(`Prometheus: ${q} = ${last}, expected ${typeof want === 'number' ? want : want.toString()}\n${mailLog()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('a real Prometheus scrapes /metrics and sees what was sent', { skip: !haveProm && 'prometheus not installed (scripts/install-test-deps.sh)', timeout: 180_000 }, async () => {
  const sys = await PosternSystem.start();
  mailLog = () => sys.log.split('\n').filter((l) => /status=|removed|reload|qmgr|warning|error/.test(l)).slice(-80).join('\n');
  let prom: ChildProcess | undefined;
  const promDir = join(sys.dir, 'prometheus');
  try {
    const httpPort = await freePort();
    const dead = await freePortBase(1); // nothing listens there: mail to remote.test is deferred
    writeFileSync(join(sys.configDir, 'metrics.auth'), '# who may scrape\nprom:s3cret\n', { mode: 0o600 });
    writeFileSync(join(sys.configDir, 'transport'), `remote.test smtp:[127.0.0.1]:${dead}\n`);
    appendFileSync(join(sys.configDir, 'main.cf'), [
      '', `postern_http_listen = 127.0.0.1:${httpPort}`, 'postern_metrics = yes',
      `transport_maps = texthash:${join(sys.configDir, 'transport')}`,
      `postern_metrics_auth_file = ${join(sys.configDir, 'metrics.auth')}`, '',
    ].join('\n'));
    assert.equal((await sys.cli('reload')).status, 0);
    const url = `http://127.0.0.1:${httpPort}/metrics`;
    const end = Date.now() + 20_000;
    while (curl(url).code !== 401) {
      if (Date.now() > end) assert.fail(`no HTTP listener on ${httpPort}:\n${sys.log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    // Authentication: none, wrong password, unknown user, garbage: 401; right: the page.
    assert.equal(curl(url, '-u', 'prom:wrong').code, 401);
    assert.equal(curl(url, '-u', 'other:s3cret').code, 401);
    assert.equal(curl(url, '-H', 'Authorization: Basic %%%').code, 401);
    const page = curl(url, '-u', 'prom:s3cret');
    assert.equal(page.code, 200);
    assert.match(page.body, /^# TYPE postern_sessions_total counter$/m);
    assert.match(page.body, /^postern_memory_bytes\{thread="qmgr",kind="heap_used"\} \d+/m, 'the qmgr worker thread answers');
    const check = spawnSync('promtool', ['check', 'metrics'], { input: page.body, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.equal((check.stdout + check.stderr).trim(), '', 'promtool check metrics is clean');

    // A real Prometheus, private, on loopback, scraping every second.
    mkdirSync(promDir);
    const promPort = await freePort();
    writeFileSync(join(promDir, 'prometheus.yml'), [
      'global:', '  scrape_interval: 1s', '  scrape_timeout: 1s',
      'scrape_configs:', '  - job_name: postern', '    basic_auth:', '      username: prom', '      password: s3cret',
      '    static_configs:', `      - targets: ['127.0.0.1:${httpPort}']`, '',
    ].join('\n'));
    prom = spawn('prometheus', [
      `--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let promLog = '';
    prom.stderr!.on('data', (d) => { promLog += d; });
    await expectValue(promPort, 'up{job="postern"}', 1).catch((e) => { throw new Error(`${(e as Error).message}\n${promLog}`); });

    // 5 messages, each after 2 unknown recipients refused (reject_unlisted_recipient).
    sendMail(sys.ports.smtp, 5, 2);
    await expectValue(promPort, 'postern_messages_received_total', 5);
    await expectValue(promPort, 'postern_deliveries_total{transport="virtual",status="sent"}', 5);
    await expectValue(promPort, 'postern_delivery_delay_seconds_count{transport="virtual"}', 5);
    await expectValue(promPort, 'postern_smtpd_replies_total{class="5xx",restriction="reject_unlisted_recipient"}', 10);
    // 220, EHLO, per message MAIL, RCPT and end of data, QUIT; 354 per message.
    await expectValue(promPort, 'postern_smtpd_replies_total{class="2xx",restriction=""}', 3 + 5 * 3);
    await expectValue(promPort, 'postern_smtpd_replies_total{class="3xx"}', 5);
    await expectValue(promPort, 'postern_sessions_total{daemon="smtpd"}', (v) => v >= 1);
    await expectValue(promPort, 'postern_connections_total{daemon="smtpd",result="accepted"}', (v) => v >= 1);
    await expectValue(promPort, 'sum(postern_queue_messages)', 0);
    await expectValue(promPort, 'postern_fsync_duration_seconds_count', (v) => v >= 5);
    await expectValue(promPort, 'postern_eventloop_lag_seconds{thread="master",stat="max"}', (v) => v >= 0);

    // IMAP: commands by status, their latency, the auth penalty's counts, the TLS version.
    imapSession(sys.ports.imaps, sys.password);
    await expectValue(promPort, 'postern_imap_commands_total{command="LOGIN",status="OK"}', 1);
    await expectValue(promPort, 'postern_imap_commands_total{command="LOGIN",status="NO"}', 1);
    await expectValue(promPort, 'postern_imap_commands_total{command="SELECT",status="OK"}', 1);
    await expectValue(promPort, 'postern_imap_commands_total{command="unknown",status="BAD"}', 1);
    await expectValue(promPort, 'postern_imap_command_duration_seconds_count{command="FETCH"}', 1);
    await expectValue(promPort, 'postern_auth_attempts_total{result="success"}', 1);
    await expectValue(promPort, 'postern_auth_attempts_total{result="failure"}', 1);
    await expectValue(promPort, 'postern_tls_handshakes_total{version="TLSv1.3"}', (v) => v >= 1);
    await expectValue(promPort, 'postern_sessions_total{daemon="imapd"}', 1);

    // smtpd (and the cleanup it calls) in a child process: its counts join the same scrape.
    await sys.setMasterOption(['smtp'], 'postern_process_mode', 'process');
    sendMail(sys.ports.smtp, 3, 1);
    await expectValue(promPort, 'postern_messages_received_total', 8);
    await expectValue(promPort, 'postern_smtpd_replies_total{class="5xx",restriction="reject_unlisted_recipient"}', 13);
    await expectValue(promPort, 'postern_smtpd_replies_total{class="2xx",restriction=""}', 18 + 3 + 3 * 3);
    // One count per `status=sent` log line. (A reload that restarts qmgr while a message is
    // being delivered can deliver it twice — the master starts the new qmgr before the old one
    // has stopped — and the count then rightly says 9: compare with the log, not with 8.)
    const sentLines = () => sys.log.split('\n').filter((l) => /postern\/virtual\[\d+\]: \w+: to=.*status=sent/.test(l)).length;
    await expectValue(promPort, 'postern_deliveries_total{transport="virtual",status="sent"}', (v) => v >= 8 && v === sentLines());
    await expectValue(promPort, 'count(postern_memory_bytes{kind="rss",thread=~".+-[0-9]+"})', (v) => v >= 1);

    // A message that cannot be delivered: counted as deferred, and seen in the deferred queue
    // (qshape's youngest age bucket).
    sendDeferred(sys.ports.smtp);
    await expectValue(promPort, 'postern_deliveries_total{transport="smtp",status="deferred"}', (v) => v >= 1);
    await expectValue(promPort, 'postern_queue_messages{queue="deferred"}', 1);
    await expectValue(promPort, 'postern_queue_messages_by_age{queue="deferred",age_max_minutes="5"}', 1);
    await expectValue(promPort, 'postern_messages_received_total', 9);
  } finally {
    if (prom) { prom.kill('SIGTERM'); await new Promise((r) => prom!.once('exit', r)); }
    await sys.stop();
    rmSync(sys.dir, { recursive: true, force: true });
  }
});
