/**
 * Tests for postdns.ts (`postern dns DOMAIN`): the printed zone lines are valid master-file
 * records that, once served by the loopback DNS server, make `--check` say OK for each; wrong
 * or missing records are reported as MISMATCH/MISSING with exit status 1; DKIM keys are real
 * keys whose p= verifies a signature; hostile domain names are refused. No test asks the
 * machine's resolver (postern_dns_servers points at test/harness/dns-server.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsServer, type Zone, type ZoneEntry } from '../../test/harness/dns-server.ts';
import { writeSelfSigned } from '../lib-tls/self-signed.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { main } from './postdns.ts';
import { checkDomainName, dnsDkimKeys, hostAddresses, reverseName } from './postdns-plan.ts';

let dir: string;
const servers: DnsServer[] = [];

before(() => { dir = mkdtempSync(join(tmpdir(), 'postern-dns-')); });
after(async () => {
  for (const s of servers) await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Run main() with stdout/stderr captured. */
async function run(args: string[], configDir: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { configDir, configDirExplicit: true, command: 'dns' }, { out: (s) => { out += s; }, err: (s) => { err += s; } });
  return { code, out, err };
}

/** A strict reader of the printed lines (RFC 1035 §5.1): absolute names, TTL, IN, type, data. */
function parseZone(text: string, withPtr: boolean): Zone {
  const zone: Record<string, ZoneEntry> = {};
  for (let line of text.split('\n')) {
    if (withPtr && /^; \S+\.(in-addr|ip6)\.arpa\.\s/.test(line)) line = line.slice(2);
    if (line === '' || line.startsWith(';')) continue;
    const m = /^(\S+)\.\s+(\d+)\s+IN\s+(MX|A|AAAA|TXT|PTR|SRV|CNAME)\s+(.+)$/.exec(line);
    assert.ok(m, `not a zone line: ${line}`);
    const [, name, , type, data] = m;
    const e = (zone[name!.toLowerCase()] ??= {});
    if (type === 'MX') {
      const mx = /^(\d+) (\S+)\.$/.exec(data!);
      assert.ok(mx, `MX data must be "PREF NAME.": ${data}`);
      (e.MX ??= []).push({ preference: Number(mx[1]), exchange: mx[2]! });
    } else if (type === 'TXT') {
      const parts = [...data!.matchAll(/"((?:[^"\\]|\\.)*)"\s*/g)];
      assert.equal(parts.map((p) => p[0]).join('').trimEnd(), data, `TXT data must be quoted strings: ${data}`);
      for (const p of parts) assert.ok(p[1]!.length <= 255, 'a TXT character-string is at most 255 octets');
      (e.TXT ??= []).push(parts.map((p) => p[1]!.replace(/\\(.)/g, '$1')).join(''));
    } else if (type === 'SRV') {
      // RFC 2782: PRIORITY WEIGHT PORT TARGET. (the client set-up records, postdns-srv.ts)
      assert.match(data!, /^\d+ \d+ \d+ (\S+\.|\.)(\s+;.*)?$/, `SRV data must be "PRIO WEIGHT PORT TARGET.": ${data}`);
    } else if (type === 'CNAME') {
      assert.match(data!, /^\S+\.$/, `CNAME data must be an absolute name: ${data}`);
    } else if (type === 'PTR') {
      (e.PTR ??= []).push(data!.replace(/\.$/, ''));
    } else {
      (e[type as 'A' | 'AAAA'] ??= []).push(data!);
    }
  }
  return zone;
}

function configDir(name: string, mainCf: string): string {
  const d = join(dir, name);
  const certFile = join(d, 'tls', 'c.crt');
  writeSelfSigned(certFile, join(d, 'tls', 'c.key'), { hostname: 'mail.example.com' }, () => {});
  writeFileSync(join(d, 'main.cf'), `myhostname = mail.example.com\nsmtpd_tls_cert_file = ${certFile}\n${mainCf}`);
  return d;
}

test('hostile domain names are refused with exit 64 and a reason', async () => {
  const d = configDir('hostile', '');
  for (const bad of ['../x', 'a b.example', `${'a'.repeat(300)}.example`, `${'a'.repeat(64)}.example`, 'a\0.example',
    'example.com\nx', 'localhost', 'a..example', '-a.example', 'a.example/..', '1.2.3.4', '']) {
    assert.ok(checkDomainName(bad), `accepted ${JSON.stringify(bad)}`);
    const r = await run([bad], d);
    assert.equal(r.code, 64, JSON.stringify(bad));
    assert.match(r.err, /^postern dns: /);
    assert.doesNotMatch(r.err, /\0/, 'the NUL is shown escaped');
    assert.equal(r.out, '');
  }
  assert.equal((await run(['example.com', '--selector', '../../etc'], d)).code, 64);
  assert.equal((await run(['example.com', '--ip', 'not-an-ip'], d)).code, 64);
  assert.equal(checkDomainName('Mail-1.Example.COM'), undefined);
  writeFileSync(join(d, 'main.cf'), 'myhostname = $(broken\n');
  const broken = await run(['example.com'], d);
  assert.equal(broken.code, 1);
  assert.match(broken.err, /main\.cf.*line 1|line 1.*main\.cf/);
});

test('DKIM keys: generated once (mode 0600), RSA 2048 and Ed25519, and p= verifies a signature', async () => {
  const kd = join(dir, 'dkim');
  const said: string[] = [];
  const cf = MainConfig.parse('', 'main.cf', dir);
  const keys = (await dnsDkimKeys(cf, kd, 'example.com', 's1', true, (l) => said.push(l))).keys;
  assert.deepEqual(keys.map((k) => [k.selector, k.algorithm]), [['s1', 'rsa'], ['s1-ed25519', 'ed25519']]);
  assert.equal(said.length, 2);
  for (const k of keys) assert.equal(statSync(k.file).mode & 0o777, 0o600);
  const again = (await dnsDkimKeys(cf, kd, 'example.com', 's1', true, (l) => said.push(l))).keys;
  assert.deepEqual(again, keys, 'existing keys are reused, not regenerated');
  assert.equal(said.length, 2);

  const data = Buffer.from('DKIM-Signature test');
  const rsaPriv = createPrivateKey(readFileSync(keys[0]!.file));
  const rsaPub = createPublicKey({ key: Buffer.from(keys[0]!.publicKey, 'base64'), format: 'der', type: 'spki' });
  assert.equal(rsaPub.asymmetricKeyDetails?.modulusLength, 2048);
  assert.ok(verify('sha256', data, rsaPub, sign('sha256', data, rsaPriv)));
  // RFC 8463 §4: p= is the bare 32-byte Ed25519 key, not an SPKI structure.
  const raw = Buffer.from(keys[1]!.publicKey, 'base64');
  assert.equal(raw.length, 32);
  const edPub = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
  assert.ok(verify(null, data, edPub, sign(null, data, createPrivateKey(readFileSync(keys[1]!.file)))));

  writeFileSync(join(kd, 'bad.example.s.rsa.key'), 'garbage', { mode: 0o600 });
  const bad = await dnsDkimKeys(cf, kd, 'bad.example', 's', true);
  assert.equal(bad.keys.length, 0, 'a broken key is not replaced behind the administrator\'s back');
  assert.match(bad.problems.join('\n'), /bad\.example\.s\.rsa\.key: not a PEM private key/);
  writeFileSync(join(kd, 'open.example.s.ed25519.key'), readFileSync(keys[1]!.file), { mode: 0o644 });
  assert.match((await dnsDkimKeys(cf, kd, 'open.example', 's', false)).problems.join('\n'), /open\.example\.s\.ed25519\.key: readable or writable by group or others \(mode 0644\): not used; run chmod 600 /);
});

test('printed records parse as zone lines and --check says OK for each once they are served', async () => {
  const d = configDir('ok', 'proxy_interfaces = 192.0.2.25\n');
  const p = await run(['Example.COM.', '--dkim-key', join(d, 'dkim'), '--mta-sts', '--tls-rpt'], d);
  assert.equal(p.code, 0, p.err);
  assert.match(p.out, /^example\.com\. +3600 IN MX +10 mail\.example\.com\.$/m);
  assert.match(p.out, /^mail\.example\.com\. +3600 IN A +192\.0\.2\.25$/m);
  assert.match(p.out, /^example\.com\. +3600 IN TXT +"v=spf1 mx ip4:192\.0\.2\.25 -all"$/m);
  assert.match(p.out, /^postern\._domainkey\.example\.com\. +3600 IN TXT +"v=DKIM1; k=rsa; p=MII[^"]+" "[^"]+"/m);
  assert.match(p.out, /^postern-ed25519\._domainkey\.example\.com\. +3600 IN TXT +"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}="$/m);
  assert.match(p.out, /^_dmarc\.example\.com\. +3600 IN TXT +"v=DMARC1; p=none; rua=mailto:postmaster@example\.com"$/m);
  assert.match(p.out, /^_smtp\._tls\.example\.com\. .* "v=TLSRPTv1; rua=mailto:postmaster@example\.com"$/m);
  assert.match(p.out, /^; 25\.2\.0\.192\.in-addr\.arpa\. +3600 IN PTR mail\.example\.com\.$/m);

  const served = await DnsServer.start(parseZone(p.out, true));
  servers.push(served);
  writeFileSync(join(d, 'main.cf'), `${readFileSync(join(d, 'main.cf'), 'utf8')}postern_dns_servers = 127.0.0.1:${served.port}\n`);
  const c = await run(['example.com', '--dkim-key', join(d, 'dkim'), '--mta-sts', '--tls-rpt', '--check'], d);
  assert.equal(c.code, 0, c.out + c.err);
  for (const what of ['MX example.com', 'A mail.example.com', 'SPF example.com', 'DKIM postern._domainkey.example.com',
    'DKIM postern-ed25519._domainkey.example.com', 'DMARC _dmarc.example.com', 'MTA-STS _mta-sts.example.com',
    'TLS-RPT _smtp._tls.example.com', 'PTR 192.0.2.25']) {
    assert.match(c.out, new RegExp(`^${what.replace(/\./g, '\\.')}: OK`, 'm'), what);
  }
  assert.match(c.out, /^TLS \S+c\.crt: WARNING - self-signed/m);
  assert.match(c.out, /^SIGNING example\.com: OK - active: signs with s=postern \(rsa-sha256\), s=postern-ed25519 \(ed25519-sha256\) from /m);
  assert.ok(!served.queries.some((q) => !/example\.com|in-addr\.arpa/.test(q)), 'only the domain and its host were asked');
});

test('--check reports MISSING, MISMATCH and ERROR and exits 1', async () => {
  const kd = join(dir, 'dkim');   // keys of the DKIM test, selector s1
  const zone: Zone = {
    'example.com': { MX: [{ preference: 10, exchange: 'mx.elsewhere.example' }], TXT: ['v=spf1 +all'] },
    'mail.example.com': { A: ['192.0.2.99'] },
    's1._domainkey.example.com': { TXT: ['v=DKIM1; k=rsa; p=AAAA'] },
    '_dmarc.example.com': { TXT: ['v=DMARC1; p=none', 'v=DMARC1; p=reject'] },
    '25.2.0.192.in-addr.arpa': { PTR: ['host-25.provider.example'] },
    'broken.example': 'SERVFAIL',
  };
  const dns = await DnsServer.start(zone);
  servers.push(dns);
  const d = configDir('bad', `postern_dns_servers = 127.0.0.1:${dns.port}\n`);
  const c = await run(['example.com', '--selector', 's1', '--dkim-key', kd, '--ip', '192.0.2.25', '--check'], d);
  assert.equal(c.code, 1);
  assert.match(c.out, /^MX example\.com: MISMATCH - published 10 mx\.elsewhere\.example; none is mail\.example\.com$/m);
  assert.match(c.out, /^A mail\.example\.com: MISMATCH - published 192\.0\.2\.99, this host is 192\.0\.2\.25$/m);
  assert.match(c.out, /^SPF example\.com: MISMATCH - .*\+all/m);
  assert.match(c.out, /^DKIM s1\._domainkey\.example\.com: MISMATCH - published p= differs/m);
  assert.match(c.out, /^DKIM s1-ed25519\._domainkey\.example\.com: MISSING - the name does not exist$/m);
  assert.match(c.out, /^DMARC _dmarc\.example\.com: MISMATCH - 2 v=dmarc1 records/m);
  assert.match(c.out, /^PTR 192\.0\.2\.25: MISMATCH - PTR names host-25\.provider\.example, not myhostname mail\.example\.com$/m);

  const s = await run(['broken.example', '--ip', '192.0.2.26', '--check'], d);
  assert.equal(s.code, 1);
  assert.match(s.out, /^MX broken\.example: ERROR - lookup failed/m);
  assert.match(s.out, /^PTR 192\.0\.2\.26: MISSING - no PTR record for 26\.2\.0\.192\.in-addr\.arpa/m);
});

test('host addresses: --ip, proxy_interfaces, inet_interfaces; loopback-only gives none and a hint', async () => {
  const cf = (t: string) => MainConfig.parse(t, 'main.cf', dir);
  assert.deepEqual(hostAddresses(cf(''), ['2001:db8::25']).addresses, ['2001:db8::25']);
  assert.deepEqual(hostAddresses(cf('proxy_interfaces = 198.51.100.7'), []).addresses, ['198.51.100.7']);
  assert.deepEqual(hostAddresses(cf('inet_interfaces = 127.0.0.1, 10.1.2.3, [2001:db8::1]'), []).addresses, ['2001:db8::1']);
  assert.deepEqual(hostAddresses(cf('inet_interfaces = loopback-only'), []).addresses, []);
  for (const a of hostAddresses(cf('inet_interfaces = all'), []).addresses) assert.doesNotMatch(a, /^(127\.|::1$|fe80|10\.|192\.168\.)/);
  assert.equal(reverseName('2001:db8::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');

  const d = configDir('loopback', 'inet_interfaces = loopback-only\n');
  const p = await run(['example.org'], d);
  assert.equal(p.code, 0);
  assert.match(p.out, /^; mail\.example\.com\. IN A <this host's public address>: not known from inet_interfaces; give --ip ADDR$/m);
  assert.match(p.out, /^example\.org\. +3600 IN TXT +"v=spf1 mx -all"$/m);
  assert.match(p.out, /^; DKIM: no key for example\.org in .*; run: postern dkim keygen example\.org$/m);
  assert.doesNotMatch(p.out, /_domainkey/);
});

test('client set-up SRV records (RFC 6186, RFC 8314) follow master.cf and dovecot.conf', async () => {
  const d = configDir('srv', 'postern_autoconfig = yes\npostern_https_listen = 127.0.0.1:8443\nmydomain = example.com\n');
  writeFileSync(join(d, 'master.cf'), [
    'smtp inet n - n - - smtpd',
    'submission inet n - n - - smtpd -o smtpd_tls_security_level=encrypt',
    'smtps inet n - n - - smtpd -o smtpd_tls_wrappermode=yes',
    '',
  ].join('\n'));
  writeFileSync(join(d, 'dovecot.conf'), 'protocols = imap lmtp\nservice imap-login {\n  inet_listener imap {\n    port = 0\n  }\n}\n');
  const r = await run(['example.com'], d);
  assert.equal(r.code, 0, r.err);
  const srv = new Map<string, string>();
  for (const m of r.out.matchAll(/^(\S+)\s+3600 IN SRV\s+(.+?)(\s+;.*)?$/gm)) srv.set(m[1]!, m[2]!);
  assert.equal(srv.get('_submissions._tcp.example.com.'), '0 1 465 mail.example.com.');
  assert.equal(srv.get('_submission._tcp.example.com.'), '5 1 587 mail.example.com.');
  assert.equal(srv.get('_imaps._tcp.example.com.'), '0 1 993 mail.example.com.');
  assert.equal(srv.get('_imap._tcp.example.com.'), '0 0 0 .', 'imap port 0: not offered');
  assert.equal(srv.get('_pop3s._tcp.example.com.'), '0 0 0 .', 'pop3 not in protocols');
  assert.equal(srv.get('_pop3._tcp.example.com.'), '0 0 0 .');
  assert.equal(srv.get('_autodiscover._tcp.example.com.'), '0 1 8443 mail.example.com.');
  assert.match(r.out, /^autoconfig\.example\.com\.\s+3600 IN CNAME mail\.example\.com\.$/m);
  parseZone(r.out, true);
});
