/**
 * Client autoconfiguration end to end (lib-http/autoconfig-route.ts): a running system (the
 * embedded default: submission STARTTLS, submissions implicit TLS, imap/imaps, pop3/pop3s) with
 * postern_autoconfig = yes on a loopback HTTPS listener, fetched with curl and checked by
 * Python: the Thunderbird file against the documented clientConfig 1.1 fields, the Autodiscover
 * answer to Microsoft's published request against the structure of Microsoft's published POX
 * response, the .mobileconfig by plistlib. Hostile: a 2 MB POST, "billion laughs", path
 * traversal and junk in every parameter; the service keeps answering meanwhile.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { PosternSystem } from '../harness/postern-system.ts';
import { freePort } from '../harness/free-port.ts';

function curl(args: string[], input?: string): { code: number; body: string; type: string } {
  const r = spawnSync('curl', ['-sk', '--max-time', '20', '-o', '-', '-w', '\n%{http_code} %{content_type}', ...args], { encoding: 'utf8', input, timeout: 30_000, maxBuffer: 1 << 24 });
  const i = r.stdout.lastIndexOf('\n');
  const [code, type] = r.stdout.slice(i + 1).split(' ');
  return { code: Number(code), body: r.stdout.slice(0, i), type: type ?? '' };
}

function python(script: string, input: string, ...args: string[]): string {
  const r = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8', input, timeout: 30_000 });
  assert.equal(r.status, 0, `${r.stderr}\n--- input ---\n${input}`);
  return r.stdout;
}

/** The clientConfig 1.1 fields (wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat). */
const MOZILLA_CHECK = `
import sys, json, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
assert root.tag == 'clientConfig' and root.get('version') == '1.1', root.tag
[prov] = root.findall('emailProvider')
assert prov.get('id'), 'emailProvider id'
assert [d.text for d in prov.findall('domain')] == [sys.argv[1]]
allowed = {'domain', 'displayName', 'displayShortName', 'incomingServer', 'outgoingServer', 'documentation'}
assert {c.tag for c in prov} <= allowed, {c.tag for c in prov} - allowed
out = []
for s in prov.findall('incomingServer') + prov.findall('outgoingServer'):
    t = s.get('type')
    assert t in (('imap', 'pop3') if s.tag == 'incomingServer' else ('smtp',)), t
    fields = {c.tag: c.text for c in s}
    assert set(fields) <= {'hostname', 'port', 'socketType', 'authentication', 'username', 'pop3', 'password'}, fields
    assert fields['socketType'] in ('plain', 'SSL', 'STARTTLS')
    assert fields['authentication'] in ('password-cleartext', 'password-encrypted', 'NTLM', 'GSSAPI', 'client-IP-address', 'TLS-client-cert', 'OAuth2', 'none')
    assert fields['username'] in ('%EMAILADDRESS%', '%EMAILLOCALPART%', '%EMAILDOMAIN%')
    assert 0 < int(fields['port']) < 65536
    out.append([t, fields['hostname'], int(fields['port']), fields['socketType']])
print(json.dumps(out))
`;

/** Microsoft's published example request (Autodiscover for Outlook, POX). */
const AUTODISCOVER_REQUEST = `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>postmaster@example.test</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>
`;

/** The structure of Microsoft's published POX response (Autodiscover/Response/Account/Protocol). */
const AUTODISCOVER_CHECK = `
import sys, json, xml.etree.ElementTree as ET
A = '{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}'
R = '{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}'
root = ET.fromstring(sys.stdin.read())
assert root.tag == A + 'Autodiscover', root.tag
[resp] = root.findall(R + 'Response')
[acct] = resp.findall(R + 'Account')
assert acct.find(R + 'AccountType').text == 'email'
assert acct.find(R + 'Action').text == 'settings'
known = {'Type', 'Server', 'Port', 'DomainRequired', 'LoginName', 'SPA', 'SSL', 'Encryption', 'AuthRequired', 'UsePOPAuth', 'SMTPLast', 'TTL', 'DomainName'}
out = []
for p in acct.findall(R + 'Protocol'):
    f = {c.tag[len(R):]: c.text for c in p}
    assert set(f) <= known, set(f) - known
    assert f['Type'] in ('IMAP', 'POP3', 'SMTP')
    assert f['SSL'] in ('on', 'off') and f['SPA'] in ('on', 'off') and f['AuthRequired'] == 'on'
    assert f['Encryption'] in ('None', 'SSL', 'TLS', 'Auto')
    out.append([f['Type'], f['Server'], int(f['Port']), f['Encryption'], f['LoginName']])
print(json.dumps(out))
`;

const PLIST_CHECK = `
import sys, json, plistlib
p = plistlib.loads(sys.stdin.buffer.read())
assert p['PayloadType'] == 'Configuration' and p['PayloadVersion'] == 1
assert p['PayloadUUID'] and p['PayloadIdentifier']
[m] = p['PayloadContent']
assert m['PayloadType'] == 'com.apple.mail.managed'
print(json.dumps({k: m[k] for k in ('EmailAccountType', 'EmailAddress', 'IncomingMailServerHostName', 'IncomingMailServerPortNumber', 'IncomingMailServerUseSSL', 'IncomingMailServerUsername', 'OutgoingMailServerPortNumber', 'OutgoingMailServerUseSSL', 'IncomingMailServerAuthentication')}))
`;

test('autoconfig, Autodiscover and .mobileconfig from the running configuration; hostile requests refused', { timeout: 120_000 }, async () => {
  const sys = await PosternSystem.start();
  try {
    const port = await freePort();
    appendFileSync(join(sys.configDir, 'main.cf'), [
      '', `postern_https_listen = 127.0.0.1:${port}`, 'postern_autoconfig = yes',
      'postern_autoconfig_hostname = mail.example.test', 'postern_autoconfig_domains = example.test', '',
    ].join('\n'));
    assert.equal((await sys.cli('reload')).status, 0);
    const base = `https://127.0.0.1:${port}`;
    const resolve = (h: string) => ['--resolve', `${h}:${port}:127.0.0.1`];
    const end = Date.now() + 20_000;
    while (curl([`${base}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a@example.test`]).code !== 200) {
      if (Date.now() > end) assert.fail(`no autoconfig on ${port}:\n${sys.log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    // Thunderbird: autoconfig.DOMAIN host, and the well-known path with ?emailaddress=.
    const tb = curl([...resolve('autoconfig.example.test'), `https://autoconfig.example.test:${port}/mail/config-v1.1.xml?emailaddress=joe%40example.test`]);
    assert.equal(tb.code, 200);
    assert.match(tb.type, /xml/);
    const servers = JSON.parse(python(MOZILLA_CHECK, tb.body, 'example.test')) as [string, string, number, string][];
    const p = sys.ports;
    assert.deepEqual(servers, [
      ['imap', 'mail.example.test', p.imaps, 'SSL'], ['imap', 'mail.example.test', p.imap, 'STARTTLS'],
      ['pop3', 'mail.example.test', p.pop3s, 'SSL'], ['pop3', 'mail.example.test', p.pop3, 'STARTTLS'],
      ['smtp', 'mail.example.test', p.submissions, 'SSL'], ['smtp', 'mail.example.test', p.submission, 'STARTTLS'],
    ]);
    const noAddr = curl([...resolve('autoconfig.example.test'), `https://autoconfig.example.test:${port}/mail/config-v1.1.xml`]);
    assert.equal(noAddr.code, 200, 'the domain from the autoconfig. host name');
    assert.equal(curl([`${base}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=joe%40other.test`]).code, 404, 'a foreign domain');
    assert.equal(curl([`${base}/.well-known/autoconfig/mail/config-v1.1.xml`]).code, 404, 'no address, host is an IP');

    // Outlook: Microsoft's example request; the answer has the structure of its example response.
    const ad = curl(['-X', 'POST', '-H', 'Content-Type: text/xml', '--data-binary', '@-', `${base}/autodiscover/autodiscover.xml`], AUTODISCOVER_REQUEST);
    assert.equal(ad.code, 200, ad.body);
    assert.deepEqual(JSON.parse(python(AUTODISCOVER_CHECK, ad.body)), [
      ['IMAP', 'mail.example.test', p.imaps, 'SSL', 'postmaster@example.test'],
      ['POP3', 'mail.example.test', p.pop3s, 'SSL', 'postmaster@example.test'],
      ['SMTP', 'mail.example.test', p.submissions, 'SSL', 'postmaster@example.test'],
    ]);
    const ad2 = curl(['-X', 'POST', '--data-binary', '@-', `${base}/Autodiscover/Autodiscover.xml`], AUTODISCOVER_REQUEST);
    assert.equal(ad2.code, 200, 'the capitalised path Outlook sends');
    assert.equal(curl([`${base}/autodiscover/autodiscover.xml`]).code, 405, 'GET is not Autodiscover');

    // Apple: the profile parses with plistlib and carries the implicit-TLS ports.
    const mc = curl([`${base}/apple/postern.mobileconfig?emailaddress=joe%40example.test`]);
    assert.equal(mc.code, 200);
    assert.equal(mc.type, 'application/x-apple-aspen-config');
    assert.deepEqual(JSON.parse(python(PLIST_CHECK, mc.body)), {
      EmailAccountType: 'EmailTypeIMAP', EmailAddress: 'joe@example.test', IncomingMailServerHostName: 'mail.example.test',
      IncomingMailServerPortNumber: p.imaps, IncomingMailServerUseSSL: true, IncomingMailServerUsername: 'joe@example.test',
      OutgoingMailServerPortNumber: p.submissions, OutgoingMailServerUseSSL: true, IncomingMailServerAuthentication: 'EmailAuthPassword',
    });

    // Hostile: a 2 MB body (413), billion laughs (400, nothing expanded), junk addresses.
    const big = '<Autodiscover><Request><EMailAddress>' + 'a'.repeat(2 << 20) + '</EMailAddress></Request></Autodiscover>';
    assert.equal(curl(['-X', 'POST', '--data-binary', '@-', `${base}/autodiscover/autodiscover.xml`], big).code, 413);
    const lol = ['<?xml version="1.0"?>', '<!DOCTYPE lolz [', '<!ENTITY lol "lol">',
      ...Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`), ']>',
      '<Autodiscover><Request><EMailAddress>&lol9;@example.test</EMailAddress></Request></Autodiscover>'].join('\n');
    const laughs = curl(['-X', 'POST', '--data-binary', '@-', `${base}/autodiscover/autodiscover.xml`], lol);
    assert.equal(laughs.code, 400);
    assert.match(laughs.body, /DOCTYPE and ENTITY/);
    const xxe = '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>';
    assert.equal(curl(['-X', 'POST', '--data-binary', '@-', `${base}/autodiscover/autodiscover.xml`], xxe).code, 400);
    assert.equal(curl(['-X', 'POST', '--data-binary', '@-', `${base}/autodiscover/autodiscover.xml`], '<Autodiscover><Request></Request></Autodiscover>').code, 400);
    for (const bad of ['..%2F..%2Fetc%2Fpasswd', '..%2F..%40example.test', '%3Cscript%3E%40example.test', 'a%00b%40example.test', 'joe%40example.test%0d%0aX-Evil:%201', 'x'.repeat(300) + '%40example.test']) {
      assert.equal(curl([`${base}/apple/postern.mobileconfig?emailaddress=${bad}`]).code, 400, bad);
      assert.equal(curl([`${base}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=${bad}`]).code, 400, bad);
    }
    for (const path of ['/.well-known/autoconfig/../../../etc/passwd', '/.well-known/autoconfig/mail/%2e%2e/config-v1.1.xml', '/apple/..%2fpostern.mobileconfig', '/autodiscover/../autodiscover/autodiscover.xml']) {
      const r = curl(['--path-as-is', `${base}${path}`]);
      assert.ok(r.code === 400 || r.code === 404, `${path}: ${r.code}`);
      assert.doesNotMatch(r.body, /root:/);
    }
    // Still serving.
    assert.equal(curl([`${base}/apple/postern.mobileconfig?emailaddress=joe%40example.test`]).code, 200);

    // Off: no page once postern_autoconfig = no.
    appendFileSync(join(sys.configDir, 'main.cf'), 'postern_autoconfig = no\n');
    assert.equal((await sys.cli('reload')).status, 0);
    const end2 = Date.now() + 20_000;
    while (curl([`${base}/apple/postern.mobileconfig?emailaddress=joe%40example.test`]).code !== 404) {
      if (Date.now() > end2) assert.fail('autoconfig still served after postern_autoconfig = no');
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await sys.stop();
    rmSync(sys.dir, { recursive: true, force: true });
  }
});
