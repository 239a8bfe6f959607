import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DnsServer } from '../../test/harness/dns-server.ts';
import { createDnsResolver, type DnsResolver } from '../util/dns-resolver.ts';
import { setLogSink } from '../util/msg.ts';
import type { SmtpdState } from '../smtpd/smtpd-state.ts';
import {
  DnsblCache, DnsblSyntaxError, RblChecker, dnsblScore, parseDnsblSite, parseDnsblSites, parseReplyFilter, reverseAddr,
} from './dnsbl.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); });

const TEMPLATE = '$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}';
let dns: DnsServer;
let resolver: DnsResolver;

before(async () => {
  dns = await DnsServer.start({
    '1.2.0.192.zen.example.test': { A: ['127.0.0.2'], TXT: ['https://zen.example.test/query/ip/192.0.2.1'] },
    '2.2.0.192.zen.example.test': { A: ['127.0.0.10'] },
    '3.2.0.192.zen.example.test': { A: ['127.0.0.2', '127.0.0.4'], TXT: ['first reason', 'second reason'] },
    '4.2.0.192.zen.example.test': { A: ['127.0.0.2'], TXT: ['$rbl_code ${client_address} \u0007bell\u00e9'] },
    '5.2.0.192.zen.example.test': 'SERVFAIL',
    '1.2.0.192.bl.example.test': { A: ['127.0.0.4'] },
    '1.2.0.192.pbl.example.test': { A: ['127.0.0.11'] },
    [`${[...'20010db8000000000000000000000001'].reverse().join('.')}.zen.example.test`]: { A: ['127.0.0.3'] },
    'spammer.example.dbl.example.test': { A: ['127.0.1.2'], TXT: ['spam domain'] },
    'bad-helo.example.dbl.example.test': { A: ['127.0.1.2'] },
    '1.0.0.127.zen.example.test': { A: ['127.0.0.2'] },
  });
  resolver = createDnsResolver({ servers: [`127.0.0.1:${dns.port}`], timeoutMs: 500, tries: 1 });
});
after(async () => { await dns.stop(); });

function state(addr: string, extra: Partial<SmtpdState> = {}): SmtpdState {
  return {
    sessionId: 'X', clientAddr: addr, clientPort: 1234, clientName: 'unknown', serverAddr: '127.0.0.1', serverPort: 25,
    service: 'smtp', protocol: 'ESMTP', tls: false, errorCount: 0, junkCount: 0, messages: 0, ...extra,
  };
}

test('query names: reversed IPv4 octets, reversed IPv6 nibbles (find_dnsxl_addr)', () => {
  assert.equal(reverseAddr('192.0.2.1'), '1.2.0.192');
  assert.equal(reverseAddr('::ffff:192.0.2.1'), '1.2.0.192');
  assert.equal(reverseAddr('2001:db8::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2');
  assert.equal(reverseAddr('not an address'), undefined);
});

test('reply filters: d.d.d.d with [n;n..m] octets (ip_match); bad syntax is a clear error', () => {
  const f = parseReplyFilter('127.0.0.[2..11]');
  assert.deepEqual(['127.0.0.1', '127.0.0.2', '127.0.0.11', '127.0.0.12', '127.0.1.2'].map(f), [false, true, true, false, false]);
  const g = parseReplyFilter('127.[0;1].0.[2;4;10..11]');
  assert.deepEqual(['127.1.0.4', '127.0.0.3', '127.0.0.10'].map(g), [true, false, true]);
  for (const bad of ['127.0.0', '127.0.0.256', '127.0.0.[5..2]', '127.0.0.[x]', '127.0.0.2.', '127.0.0.2\0', '']) {
    assert.throws(() => parseReplyFilter(bad), DnsblSyntaxError, bad);
  }
});

test('postscreen_dnsbl_sites: domain=filter*weight; errors name the parameter and the entry', () => {
  const s = parseDnsblSites('zen.example.test=127.0.0.[2..11]*3, bl.example.test*-2\n  pbl.example.test');
  assert.deepEqual(s.map((x) => [x.domain, x.weight, !!x.filter]), [['zen.example.test', 3, true], ['bl.example.test', -2, false], ['pbl.example.test', 1, false]]);
  assert.throws(() => parseDnsblSites('zen.example.test*two'), /postscreen_dnsbl_sites: bad DNSBL weight factor "two" in "zen.example.test\*two"/);
  assert.throws(() => parseDnsblSites('../etc/passwd'), /postscreen_dnsbl_sites: bad DNSBL domain name "\.\.\/etc\/passwd"/);
  assert.throws(() => parseDnsblSite('x'.repeat(300)), /bad DNSBL domain name/);
  assert.throws(() => parseDnsblSite('zen.example.test=127.0.0'), /bad DNSBL filter syntax: "127\.0\.0"/);
});

test('reject_rbl_client: Postfix\'s default_rbl_reply text with the TXT reason; not listed → no reply', async () => {
  const rbl = new RblChecker(resolver, { template: TEMPLATE, code: 554 });
  assert.deepEqual(await rbl.rejectRblClient(state('192.0.2.1'), 'zen.example.test'),
    { code: 554, enh: '5.7.1', text: 'Service unavailable; Client host [192.0.2.1] blocked using zen.example.test; https://zen.example.test/query/ip/192.0.2.1' });
  assert.deepEqual(await rbl.rejectRblClient(state('192.0.2.2'), 'zen.example.test'),
    { code: 554, enh: '5.7.1', text: 'Service unavailable; Client host [192.0.2.2] blocked using zen.example.test' }, 'no TXT: no "; reason"');
  assert.equal(await rbl.rejectRblClient(state('192.0.2.99'), 'zen.example.test'), undefined);
  assert.equal(await rbl.rejectRblClient(state('192.0.2.2'), 'zen.example.test=127.0.0.[2..9]'), undefined, '127.0.0.10 is outside the filter');
  assert.deepEqual((await rbl.rejectRblClient(state('192.0.2.2'), 'zen.example.test=127.0.0.[2..11]'))?.text,
    'Service unavailable; Client host [192.0.2.2] blocked using zen.example.test', 'the reply names the domain without the filter');
  assert.match((await rbl.rejectRblClient(state('2001:db8::1'), 'zen.example.test'))!.text, /Client host \[2001:db8::1\] blocked using zen\.example\.test$/);
  assert.equal((await new RblChecker(resolver, { template: TEMPLATE, code: 450 }).rejectRblClient(state('192.0.2.1'), 'zen.example.test'))?.enh, '4.7.1', 'maps_rbl_reject_code 450 → 4.7.1');
});

test('several TXT records are joined with " / "; DNS text cannot inject $names or control bytes', async () => {
  const rbl = new RblChecker(resolver, { template: TEMPLATE, code: 554 });
  assert.match((await rbl.rejectRblClient(state('192.0.2.3'), 'zen.example.test'))!.text, /blocked using zen\.example\.test; (first reason \/ second reason|second reason \/ first reason)$/);
  const r = await rbl.rejectRblClient(state('192.0.2.4'), 'zen.example.test');
  assert.equal(r!.text, 'Service unavailable; Client host [192.0.2.4] blocked using zen.example.test; $rbl_code ${client_address} _bell__');
});

test('a DNS server failure never rejects: DUNNO with Postfix\'s warning', async () => {
  const rbl = new RblChecker(resolver, { template: TEMPLATE, code: 554 });
  logs.length = 0;
  assert.equal(await rbl.rejectRblClient(state('192.0.2.5'), 'zen.example.test'), undefined);
  assert.ok(logs.some((l) => /warning: 5\.2\.0\.192\.zen\.example\.test: RBL lookup error: Name service error for name=5\.2\.0\.192\.zen\.example\.test type=A: Host not found, try again/.test(l)), logs.join('\n'));
});

test('a bad filter in reject_rbl_client is a logged server configuration error (451 4.3.5)', async () => {
  const rbl = new RblChecker(resolver, { template: TEMPLATE, code: 554 });
  assert.deepEqual(await rbl.rejectRblClient(state('192.0.2.1'), 'zen.example.test=127.0.0.[9..2]'), { code: 451, enh: '4.3.5', text: 'Server configuration error' });
});

test('reject_rhsbl_sender / helo / client: domain lookups with Postfix\'s classes; numeric and [literal] names are skipped', async () => {
  const rbl = new RblChecker(resolver, { template: TEMPLATE, code: 554 });
  assert.deepEqual(await rbl.rejectRhsbl('sender', state('192.0.2.9'), 'dbl.example.test', { sender: 'bob@Spammer.Example' }),
    { code: 554, enh: '5.7.1', text: 'Service unavailable; Sender address [bob@Spammer.Example] blocked using dbl.example.test; spam domain' });
  assert.match((await rbl.rejectRhsbl('helo', state('192.0.2.9', { helo: 'bad-helo.example' }), 'dbl.example.test'))!.text, /^Service unavailable; Helo command \[bad-helo\.example\] blocked using dbl\.example\.test$/);
  assert.match((await rbl.rejectRhsbl('client', state('192.0.2.9', { clientName: 'spammer.example' }), 'dbl.example.test'))!.text, /Client host \[spammer\.example\]/);
  assert.equal(await rbl.rejectRhsbl('client', state('192.0.2.9'), 'dbl.example.test'), undefined, 'unknown client name: no lookup');
  const before = dns.queries.length;
  assert.equal(await rbl.rejectRhsbl('sender', state('192.0.2.9'), 'dbl.example.test', { sender: 'x@[192.0.2.1]' }), undefined);
  assert.equal(await rbl.rejectRhsbl('helo', state('192.0.2.9', { helo: '192.0.2.1' }), 'dbl.example.test'), undefined);
  assert.equal(await rbl.rejectRhsbl('helo', state('192.0.2.9', { helo: 'a..b\r\n' }), 'dbl.example.test'), undefined);
  assert.equal(dns.queries.length, before, 'no DNS query for literals, numeric or invalid names');
});

test('postscreen score: each listing site adds its weight once; filters apply; negative weights allowlist', async () => {
  const sites = parseDnsblSites('zen.example.test*2 bl.example.test=127.0.0.4 pbl.example.test=127.0.0.[2..10] nowhere.example.test');
  const r = await dnsblScore(resolver, sites, '192.0.2.1');
  assert.equal(r.score, 3, 'zen 2 + bl 1; pbl answered 127.0.0.11, outside its filter');
  assert.equal(r.domain, 'zen.example.test', 'named after the heaviest listing site');
  const allow = await dnsblScore(resolver, parseDnsblSites('zen.example.test*2, bl.example.test*-5'), '192.0.2.1');
  assert.equal(allow.score, -3);
  assert.equal((await dnsblScore(resolver, sites, '198.51.100.1')).score, 0);
});

test('the DNSBL answer cache ages on the monotonic clock: a wall clock stepped back does not keep an answer', async (t) => {
  const cache = new DnsblCache(1000);
  let asked = 0;
  const q = () => { asked++; return Promise.resolve({ addrs: ['127.0.0.2'] }); };
  await cache.get('2.0.0.127.zen.example', q);
  await cache.get('2.0.0.127.zen.example', q);
  assert.equal(asked, 1, 'cached');
  const wall = Date.now;
  t.mock.method(Date, 'now', () => wall() - 3600_000);   // an hour back
  await new Promise((r) => setTimeout(r, 1100));
  await cache.get('2.0.0.127.zen.example', q);
  assert.equal(asked, 2, 'asked again once the answer is older than its time to live');
});
