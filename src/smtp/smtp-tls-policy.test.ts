/**
 * smtp_tls_policy_maps entries, lookup keys and fingerprints (smtp-tls-policy.ts), the name
 * matching rules and TLSA matching (smtp-tls-verify.ts), with hostile policy values, and the
 * per-address DANE decision against the loopback DNS server (AD bit set or not).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, X509Certificate } from 'node:crypto';
import { MainConfig } from '../global/mail-conf.ts';
import { logger, setLogSink } from '../util/msg.ts';
import { createDnsResolver } from '../util/dns-resolver.ts';
import { generateSelfSigned } from '../lib-tls/self-signed.ts';
import { DnsServer } from '../../test/harness/dns-server.ts';
import { SmtpTlsPolicy, cipherGrade, isRefusal, nexthopDomain, normalizeFingerprint, parsePolicyEntry, parseTlsLevel, policyKeys, tlsMustMatch, tlsRequired, type TlsHostPolicy } from './smtp-tls-policy.ts';
import { certMatches, certNames, tlsaMatches } from './smtp-tls-verify.ts';

const logs: string[] = [];
setLogSink((l) => logs.push(l));
const dir = mkdtempSync(join(tmpdir(), 'postern-tlspol-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('levels: Postfix names only; required and must-match sets', () => {
  assert.equal(parseTlsLevel(''), 'none');
  assert.equal(parseTlsLevel(' Secure '), 'secure');
  assert.equal(parseTlsLevel('verified'), undefined);
  assert.equal(parseTlsLevel('may\0'), undefined);
  assert.deepEqual(['none', 'may', 'encrypt', 'fingerprint', 'dane', 'dane-only', 'verify', 'secure'].map((l) => [tlsRequired(l as never), tlsMustMatch(l as never)]),
    [[false, false], [false, false], [true, false], [true, true], [true, true], [true, true], [true, true], [true, true]]);
});

test('policy entries: match lists (":" for names, "|" for fingerprints), protocols, hostile input', () => {
  assert.deepEqual(parsePolicyEntry('secure match=.example.com:example.com'), { level: 'secure', match: ['.example.com', 'example.com'] });
  assert.deepEqual(parsePolicyEntry('fingerprint match=ab:cd|sha256:EF:01'), { level: 'fingerprint', match: ['AB:CD', 'EF:01'] });
  assert.deepEqual(parsePolicyEntry('encrypt protocols=>=TLSv1.2 ciphers=high'), { level: 'encrypt', protocols: '>=TLSv1.2', ciphers: 'high' });
  assert.throws(() => parsePolicyEntry(''), /invalid TLS security level ""/);
  assert.throws(() => parsePolicyEntry('bogus match=x'), /invalid TLS security level "bogus"/);
  assert.throws(() => parsePolicyEntry('secure nonsense'), /malformed attribute "nonsense"/);
  assert.throws(() => parsePolicyEntry('secure =x'), /malformed attribute/);
  assert.throws(() => parsePolicyEntry('secure frob=1'), /unknown attribute "frob"/);
  assert.throws(() => parsePolicyEntry('x'.repeat(100000)), /invalid TLS security level/);
  assert.throws(() => parsePolicyEntry('secure\0 match=a'), /invalid TLS security level/);
});

test('cipher grades map to OpenSSL lists; unknown grades keep the default', () => {
  assert.equal(cipherGrade('HIGH'), 'HIGH:!aNULL:!eNULL');
  assert.equal(cipherGrade('medium'), 'HIGH:MEDIUM:!aNULL:!eNULL');
  assert.equal(cipherGrade(undefined), undefined);
  assert.equal(cipherGrade('ALL:eNULL'), undefined);
});

test('lookup keys and nexthop domain', () => {
  assert.deepEqual(policyKeys('[MX.Example.com]:587'), ['[mx.example.com]:587', '[mx.example.com]']);
  assert.deepEqual(policyKeys('a.example.com'), ['a.example.com', '.example.com', '.com']);
  assert.deepEqual(policyKeys('example.com:2525'), ['example.com:2525', 'example.com', '.com']);
  assert.equal(nexthopDomain('[mx.example.com]:25'), 'mx.example.com');
  assert.equal(nexthopDomain('[ipv6:2001:db8::1]:25'), '2001:db8::1');
  assert.equal(nexthopDomain('Example.COM:2525'), 'example.com');
  assert.equal(normalizeFingerprint('sha256:abcd'), 'AB:CD');
  assert.equal(normalizeFingerprint('AB:CD'), 'AB:CD');
});

test('certificate names: SAN DNS entries win over CN; wildcards match one label; nexthop and dot-nexthop', () => {
  assert.deepEqual(certNames({ subjectaltname: 'DNS:mx.example.com, IP Address:127.0.0.1, DNS:*.mail.example.com', subject: { CN: 'ignored' } }), ['mx.example.com', '*.mail.example.com']);
  assert.deepEqual(certNames({ subject: { CN: 'Only.CN.example' } }), ['only.cn.example']);
  const names = ['mx.example.com', '*.mail.example.com'];
  assert.ok(certMatches(names, ['hostname'], 'MX.example.com', 'example.com'));
  assert.ok(certMatches(names, ['hostname'], 'a.mail.example.com', 'x'));
  assert.ok(!certMatches(names, ['hostname'], 'a.b.mail.example.com', 'x'));
  assert.ok(!certMatches(names, ['nexthop'], 'x', 'example.com'));
  assert.ok(certMatches(names, ['nexthop', 'dot-nexthop'], 'x', 'example.com'));
  assert.ok(certMatches(names, ['.example.com'], 'x', 'y'));
  assert.ok(!certMatches(names, ['.mx.example.com'], 'x', 'y'));
  assert.ok(!certMatches(['evilexample.com'], ['dot-nexthop'], 'x', 'example.com'));
  assert.ok(!certMatches(names, [], 'mx.example.com', 'example.com'));
});

test('TLSA matching: selectors 0/1, matching types 0/1/2', () => {
  const c = generateSelfSigned({ hostname: 'mx.example.test', keyType: 'ec' });
  const spki = new X509Certificate(c.certPem).publicKey.export({ type: 'spki', format: 'der' });
  const rec = (selector: number, matchingType: number, data: Buffer) => ({ usage: 3, selector, matchingType, data });
  assert.ok(tlsaMatches(rec(0, 0, c.certDer), c.certDer));
  assert.ok(tlsaMatches(rec(1, 1, createHash('sha256').update(spki).digest()), c.certDer));
  assert.ok(tlsaMatches(rec(0, 2, createHash('sha512').update(c.certDer).digest()), c.certDer));
  assert.ok(!tlsaMatches(rec(1, 1, createHash('sha256').update(c.certDer).digest()), c.certDer));
  assert.ok(!tlsaMatches(rec(1, 1, Buffer.alloc(32)), Buffer.from('not a certificate')));
});

test('forDestination/forHost: policy table wins, dane uses only AD-validated TLSA, unusable records → encrypt, lookup failure defers', async () => {
  const good = createHash('sha256').update('x').digest('hex');
  const dns = await DnsServer.start({
    '_25._tcp.mx.secure.test': { TLSA: [{ usage: 3, selector: 1, matchingType: 1, data: good }], AD: true },
    '_25._tcp.mx.plain.test': { TLSA: [{ usage: 3, selector: 1, matchingType: 1, data: good }] },
    '_25._tcp.mx.unusable.test': { TLSA: [{ usage: 1, selector: 1, matchingType: 1, data: good }, { usage: 3, selector: 1, matchingType: 255, data: '0011' }], AD: true },
    '_25._tcp.mx.nodata.test': { AD: true },
    '_25._tcp.mx.broken.test': 'SERVFAIL',
  });
  try {
    const maps = join(dir, 'policy');
    writeFileSync(maps, '[mx.example.com]:25 fingerprint match=AB:CD\n.sub.test secure match=nexthop\nbad.test verify extra\n');
    const resolver = createDnsResolver({ servers: [`127.0.0.1:${dns.port}`], timeoutMs: 500, tries: 1 });
    const pol = (extra: string) => new SmtpTlsPolicy({ config: MainConfig.parse(`smtp_tls_policy_maps = texthash:${maps}\n${extra}`, join(dir, 'main.cf'), dir), prefix: 'smtp_', resolver: () => resolver, log: logger('smtp') });
    const p = pol('smtp_tls_security_level = dane\nsmtp_dns_support_level = dnssec');
    assert.deepEqual(await p.forDestination('[MX.example.com]:25', false), { level: 'fingerprint', match: ['AB:CD'], protocols: '>=TLSv1', ciphers: undefined, nexthopDomain: 'mx.example.com', source: 'smtp_tls_policy_maps' });
    assert.equal(((await p.forDestination('a.sub.test', true)) as { level: string }).level, 'secure');
    assert.deepEqual(await p.forDestination('bad.test', true), { refuse: 'TLS policy lookup for bad.test: malformed attribute "extra" (expected name=value)', dsn: '4.7.5' });
    const d = await p.forDestination('secure.test', true);
    assert.ok(!isRefusal(d));
    const host = async (h: string) => p.forHost(d, h, '192.0.2.1', 25);
    assert.equal(((await host('mx.secure.test')) as TlsHostPolicy).level, 'dane');
    assert.equal(((await host('mx.secure.test')) as TlsHostPolicy).tlsa!.length, 1);
    assert.equal(((await host('mx.plain.test')) as TlsHostPolicy).level, 'may');
    assert.equal(((await host('mx.nodata.test')) as TlsHostPolicy).level, 'may');
    assert.equal(((await host('mx.missing.test')) as TlsHostPolicy).level, 'may');
    logs.length = 0;
    assert.equal(((await host('mx.unusable.test')) as TlsHostPolicy).level, 'encrypt');
    assert.ok(logs.some((l) => l.endsWith('warning: mx.unusable.test[192.0.2.1]:25: unusable TLSA RR: 3 1 255 0011')), logs.join('\n'));
    assert.deepEqual(await host('mx.broken.test'), { refuse: 'TLSA lookup error for mx.broken.test:25', dsn: '4.7.5' });
    const only = pol('smtp_tls_security_level = dane-only\nsmtp_dns_support_level = dnssec');
    const d2 = await only.forDestination('plain.test', true);
    assert.deepEqual(await only.forHost(d2 as never, 'mx.plain.test', '192.0.2.1', 25), { refuse: 'TLS is required, but host mx.plain.test[192.0.2.1] has no DNSSEC-validated TLSA records', dsn: '4.7.5' });
    // Without smtp_dns_support_level = dnssec the validated record is not even asked for.
    const q = dns.queries.length;
    const nodnssec = pol('smtp_tls_security_level = dane');
    assert.equal(((await nodnssec.forHost(await nodnssec.forDestination('secure.test', true) as never, 'mx.secure.test', '192.0.2.1', 25)) as TlsHostPolicy).level, 'may');
    assert.equal(dns.queries.length, q);
    assert.deepEqual(await pol('smtp_tls_security_level = sometimes').forDestination('x.test', true), { refuse: 'TLS configuration problem: invalid smtp_tls_security_level = sometimes', dsn: '4.7.5' });
  } finally {
    await dns.stop();
  }
});

test('a missing smtp_tls_policy_maps file defers instead of sending in clear', async () => {
  const p = new SmtpTlsPolicy({ config: MainConfig.parse(`smtp_tls_policy_maps = texthash:${join(dir, 'nope')}\nsmtp_tls_security_level = may`, join(dir, 'main.cf'), dir), prefix: 'smtp_', resolver: () => createDnsResolver({ servers: ['127.0.0.1:9'] }), log: logger('smtp') });
  const d = await p.forDestination('example.com', true);
  assert.ok(isRefusal(d), JSON.stringify(d));
  assert.match(d.refuse, /^TLS policy lookup for example\.com: .*nope/);
});
