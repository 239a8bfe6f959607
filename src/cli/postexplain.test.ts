/**
 * postern explain: the decision trace of a running system's configuration (the embedded
 * default plus virtual aliases, transport_maps and a TLS policy table), and the path of real
 * messages sent with Python's smtplib, read back from maillog_file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { POSTERN, PosternSystem } from '../../test/harness/postern-system.ts';
import { freePortBase } from '../../test/harness/free-port.ts';
import { DnsServer } from '../../test/harness/dns-server.ts';

function send(port: number, from: string, to: string): string {
  const py = `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', ${port}, timeout=20)
s.ehlo('client.example')
s.mail(sys.argv[1]); s.rcpt(sys.argv[2])
code, msg = s.data(b'Subject: explain\\r\\n\\r\\nhello\\r\\n')
print(code, msg.decode())
s.quit()
`;
  const r = spawnSync('python3', ['-c', py, from, to], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const m = /queued as ([0-9A-F]+)/.exec(r.stdout);
  assert.ok(m, r.stdout);
  return m[1]!;
}

test('postern explain ADDRESS and QUEUE_ID', { timeout: 120_000 }, async () => {
  const sys = await PosternSystem.start();
  const dns = await DnsServer.start({
    'dane.test': { MX: [{ preference: 10, exchange: 'mx.dane.test' }] },
    'mx.dane.test': { A: ['127.0.0.1'] },
    '_25._tcp.mx.dane.test': { TLSA: [{ usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(32) }], AD: true },
  });
  try {
    const conf = sys.configDir;
    const dead = await freePortBase(1); // nothing listens there: mail to it is deferred
    writeFileSync(join(conf, 'virtual'), '# aliases\nsales@example.test postmaster@example.test\n');
    writeFileSync(join(conf, 'transport'), `remote.test smtp:[127.0.0.1]:${dead}\n`);
    writeFileSync(join(conf, 'tls_policy'), `[127.0.0.1]:${dead} encrypt\ndane.test dane\n`);
    appendFileSync(join(conf, 'main.cf'), [
      '',
      `maillog_file_prefixes = ${sys.dir}`,
      `maillog_file = ${join(sys.dir, 'maillog')}`,
      `virtual_alias_maps = texthash:${join(conf, 'virtual')}`,
      `transport_maps = texthash:${join(conf, 'transport')}`,
      `smtp_tls_policy_maps = texthash:${join(conf, 'tls_policy')}`,
      'postern_mta_sts = yes',
      `postern_dns_servers = 127.0.0.1:${dns.port}`,
      'smtp_dns_support_level = dnssec',
      '',
    ].join('\n'));
    const mark = sys.log.length;
    assert.equal((await sys.cli('reload')).status, 0);
    await sys.waitLog(/reload/);
    void mark;

    // An alias: the virtual_alias_maps line that rewrote it, then the virtual mailbox class.
    let r = (await sys.cli('explain', 'sales@example.test'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /virtual_alias_maps texthash:\S+virtual: key sales@example\.test -> postmaster@example\.test \(\S+virtual, line 2\)/);
    assert.match(r.stdout, /recipients after mapping: <postmaster@example\.test>/);
    assert.match(r.stdout, /address class: virtual \(virtual_mailbox_domains\)/);
    assert.match(r.stdout, /virtual_mailbox_domains = auth:domains \(\S+main\.cf, line \d+\)/);
    assert.match(r.stdout, /transport: virtual, nexthop: example\.test/);

    // A remote domain with a transport_maps entry and a TLS policy entry; MTA-STS is not looked up.
    r = (await sys.cli('explain', 'joe@remote.test'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`transport_maps texthash:\\S+transport: key remote\\.test -> smtp:\\[127\\.0\\.0\\.1\\]:${dead} \\(\\S+, line 1\\)`));
    assert.match(r.stdout, /address class: default/);
    assert.match(r.stdout, new RegExp(`transport: smtp, nexthop: \\[127\\.0\\.0\\.1\\]:${dead}`));
    assert.match(r.stdout, /TLS policy \(smtp_\): level encrypt from smtp_tls_policy_maps/);
    r = (await sys.cli('explain', 'joe@elsewhere.test'));
    assert.match(r.stdout, /level may from main\.cf/);
    assert.match(r.stdout, /would look up _mta-sts\.elsewhere\.test TXT \(DNS not used: give --dns\)/);

    // DANE: without --dns, the questions smtp(8) would ask; with --dns, the answers of the
    // configured resolver (a loopback DNS server), per MX host.
    r = (await sys.cli('explain', 'joe@dane.test'));
    assert.match(r.stdout, /level dane from smtp_tls_policy_maps/);
    assert.match(r.stdout, /would look up dane\.test MX/);
    assert.match(r.stdout, /then TLSA records _25\._tcp\.HOST of each MX host/);
    // (not spawnSync: the DNS server answers from this process's event loop)
    r = await promisify(execFile)(POSTERN, ['-c', conf, 'explain', '--dns', 'joe@dane.test'], { encoding: 'utf8', timeout: 30_000 })
      .then((x) => ({ status: 0, stdout: x.stdout, stderr: x.stderr }));
    assert.match(r.stdout, /mx\.dane\.test\[127\.0\.0\.1\]:25: level dane \(1 usable TLSA records\)/);

    // Restrictions for an outside client: the relay restriction that fires, with Postfix's reply.
    r = (await sys.cli('explain', '--client', '192.0.2.7,mail.example.org', '--sender', 'a@example.org', 'joe@remote.test'));
    assert.match(r.stdout, /defer_unauth_destination: REJECT -> 454 4\.7\.1 <joe@remote\.test>: Relay access denied/);
    assert.match(r.stdout, /RCPT TO:<joe@remote\.test>: 454 4\.7\.1 .*\[defer_unauth_destination\]/);
    // SASL counts only where smtpd_sasl_auth_enable = yes (the submission service's -o), as in Postfix.
    r = (await sys.cli('explain', '--client', '192.0.2.7', '--sasl', 'postmaster@example.test', 'joe@remote.test'));
    assert.match(r.stdout, /permit_sasl_authenticated: DUNNO/);
    r = (await sys.cli('explain', '--service', String(sys.ports.submission), '--client', '192.0.2.7', '--sasl', 'postmaster@example.test', 'joe@remote.test'));
    assert.match(r.stdout, new RegExp(`service ${sys.ports.submission}, client unknown\\[192\\.0\\.2\\.7\\], SASL user postmaster@example\\.test`));
    assert.match(r.stdout, /permit_sasl_authenticated: OK/);
    assert.match(r.stdout, /RCPT TO:<joe@remote\.test>: 250 2\.1\.5 Ok/);
    r = (await sys.cli('explain', '--client', '127.0.0.1,localhost', 'joe@remote.test'));
    assert.match(r.stdout, /client IS in mynetworks/);
    assert.match(r.stdout, /permit_mynetworks: OK/);
    assert.match(r.stdout, /DATA: 354 /);
    assert.match(r.stdout, /END-OF-MESSAGE: 250 2\.0\.0 Ok: queued/);
    assert.match(r.stdout, /RCPT TO:<joe@remote\.test>: 250 2\.1\.5 Ok/);

    // Hostile input: a clear usage error, not a crash.
    r = (await sys.cli('explain', `a\r\nRCPT TO:<b@example.test>`));
    assert.notEqual(r.status, 0);
    r = (await sys.cli('explain', `${'x'.repeat(5000)}@example.test`));
    assert.equal(r.status, 64);
    assert.match(r.stderr, /not valid/);
    r = (await sys.cli('explain'));
    assert.equal(r.status, 64);

    // A delivered message: its path from smtpd to the mailbox, from the log.
    const qid = send(sys.ports.smtp, 'a@example.org', 'sales@example.test');
    await sys.waitLog(new RegExp(`${qid}: removed`));
    r = (await sys.cli('explain', qid));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /not in the queue/);
    assert.match(r.stdout, new RegExp(`receive +\\w{3} [ \\d]\\d [\\d:]+ \\S*smtpd: client=`));
    assert.match(r.stdout, /cleanup +.*message-id=/);
    assert.match(r.stdout, /queue +.*from=<a@example\.org>/);
    assert.match(r.stdout, /deliver +.*to=<postmaster@example\.test>, orig_to=<sales@example\.test>.*status=sent/);
    assert.match(r.stdout, /<postmaster@example\.test>: sent/);
    assert.match(r.stdout, /the message left the queue \(removed\)/);

    // A deferred message: still queued, with the reason beside the recipient.
    const q2 = send(sys.ports.smtp, 'postmaster@example.test', 'joe@remote.test');
    await sys.waitLog(new RegExp(`${q2}: to=<joe@remote\\.test>.*status=deferred`));
    r = (await sys.cli('explain', q2));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`queue: (deferred|active)/${q2}`));
    assert.match(r.stdout, /recipient <joe@remote\.test>: waiting/);
    assert.match(r.stdout, /<joe@remote\.test>: deferred .*\(.+\)/);
    // On hold: the queue says how to release it; postsuper's log line is in the trace.
    assert.equal((await sys.cli('queue', 'hold', q2)).status, 0);
    r = (await sys.cli('explain', q2));
    assert.match(r.stdout, new RegExp(`queue: hold/${q2} \\(on hold: postern queue release to send it\\)`));

    // --log: another (rotated) log file.
    const rotated = join(sys.dir, 'maillog.old');
    writeFileSync(rotated, `Dec  7 10:00:00 mx postfix/smtpd[1]: 0123456789AB: client=old.example[192.0.2.9]\nnot a log line\n\0\n`);
    r = (await sys.cli('explain', '--log', rotated, '0123456789AB'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /receive +Dec  7 10:00:00 postfix\/smtpd: client=old\.example\[192\.0\.2\.9\]/);
    r = (await sys.cli('explain', '--log', join(sys.dir, 'nonexistent'), '0123456789AB'));
    assert.equal(r.status, 1);
    assert.match(r.stdout, /cannot read/);

    // An unknown queue ID.
    r = (await sys.cli('explain', 'ABCDEF123456'));
    assert.equal(r.status, 1);
    assert.match(r.stdout, /no line names ABCDEF123456/);
  } finally {
    await dns.stop();
    await sys.stop();
    rmSync(sys.dir, { recursive: true, force: true });
  }
});
