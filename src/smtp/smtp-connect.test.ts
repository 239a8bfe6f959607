/**
 * smtp-connect: nexthop syntax (Postfix smtp(8)/lmtp(8) "DESTINATION SYNTAX", with hostile
 * input) and address ordering against the loopback DNS server: MX preference, loops back to
 * myself, smtp_mx_address_limit, AAAA per inet_protocols, A fallback, temporary failures.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { parseDestination, resolveDestination, seededRandom, DestinationSyntaxError, type ResolveOptions, type SmtpDestination } from './smtp-connect.ts';
import { createDnsResolver } from '../util/dns-resolver.ts';
import { DnsServer } from '../../test/harness/dns-server.ts';

let dns: DnsServer;
before(async () => {
  dns = await DnsServer.start({
    'multi.test': { MX: [{ preference: 10, exchange: 'mx1.multi.test' }, { preference: 20, exchange: 'me.postern.test' }, { preference: 30, exchange: 'mx3.multi.test' }] },
    'mx1.multi.test': { A: ['192.0.2.1', '192.0.2.2'], AAAA: ['2001:db8::1'] },
    'mx3.multi.test': { A: ['192.0.2.3'] },
    'self.test': { MX: [{ preference: 10, exchange: 'me.postern.test' }] },
    'noaddr.test': { MX: [{ preference: 10, exchange: 'nx.noaddr.test' }] },
    'tempaddr.test': { MX: [{ preference: 10, exchange: 'sf.tempaddr.test' }] },
    'sf.tempaddr.test': 'SERVFAIL',
    'many.test': { A: ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.5', '192.0.2.6', '192.0.2.7'] },
  });
});
after(async () => { await dns.stop(); });

const opts = (o: Partial<ResolveOptions> = {}): ResolveOptions => ({
  resolver: createDnsResolver({ servers: [`127.0.0.1:${dns.port}`], timeoutMs: 500, tries: 1 }),
  mxAddressLimit: 5, ipv4: true, ipv6: true, myhostname: 'me.postern.test', native: false, random: seededRandom(7), ...o,
});

test('nexthop syntax: SMTP and LMTP forms', () => {
  const inet = (d: SmtpDestination) => { if (d.kind !== 'inet') throw new Error('not inet'); return d; };
  const smtp = (s: string) => inet(parseDestination(s, { lmtp: false, defaultPort: 25 }));
  const lmtp = (s: string) => parseDestination(s, { lmtp: true, defaultPort: 24 });
  assert.deepEqual(smtp('example.com'), { kind: 'inet', host: 'example.com', port: 25, mx: true, text: 'example.com' });
  assert.deepEqual(smtp('example.com:2525'), { kind: 'inet', host: 'example.com', port: 2525, mx: true, text: 'example.com:2525' });
  assert.equal(smtp('[mail.isp.example]:submission').port, 587);
  assert.equal(smtp('[mail.isp.example]').mx, false);
  assert.deepEqual(smtp('[ipv6:2001:db8::1]:26'), { kind: 'inet', host: '2001:db8::1', port: 26, mx: false, text: '[ipv6:2001:db8::1]:26' });
  assert.equal(smtp('192.0.2.1').mx, false);
  assert.deepEqual(lmtp('unix:/var/run/dovecot/lmtp'), { kind: 'unix', path: '/var/run/dovecot/lmtp', text: 'unix:/var/run/dovecot/lmtp' });
  assert.deepEqual(lmtp('inet:mailbox.example:24'), { kind: 'inet', host: 'mailbox.example', port: 24, mx: false, text: 'inet:mailbox.example:24' });
  assert.equal(inet(lmtp('inet:[127.0.0.1]:2424')).port, 2424);
  assert.equal(inet(lmtp('mailbox.example')).mx, false, 'LMTP never looks up MX');
});

test('nexthop syntax: hostile input is a DestinationSyntaxError naming the problem', () => {
  const bad: [string, RegExp][] = [
    ['', /empty destination/], ['[x', /missing "\]"/], ['[x]junk', /garbage after/], ['host:99999', /unknown service port "99999"/],
    ['host:nosuchservice', /unknown service port/], ['a b', /control or space/], ['ex\0ample.com', /control or space/],
    ['ex\r\nample.com', /control or space/], ['2001:db8::1', /IPv6 address must be written as \[ipv6:address\]/], ['../etc', /bad host name syntax/],
    ['x'.repeat(100000) + ':25:26', /IPv6/], [':25', /empty host name/], ['[]', /empty host name/],
  ];
  for (const [s, re] of bad) {
    assert.throws(() => parseDestination(s, { lmtp: false, defaultPort: 25 }), (e: Error) => e instanceof DestinationSyntaxError && re.test(e.message), JSON.stringify(s.slice(0, 40)));
  }
  assert.throws(() => parseDestination('unix:', { lmtp: true, defaultPort: 24 }), /empty socket path/);
});

test('MX list: preference order, truncated before this host\'s own MX entry, A then AAAA per host', async () => {
  const r = await resolveDestination(parseDestination('multi.test:2525', { lmtp: false, defaultPort: 25 }), opts());
  assert.ok(Array.isArray(r));
  assert.deepEqual(r.map((a) => `${a.host}[${a.addr}]:${a.port}`), ['mx1.multi.test[192.0.2.1]:2525', 'mx1.multi.test[192.0.2.2]:2525', 'mx1.multi.test[2001:db8::1]:2525']);
  const v4 = await resolveDestination(parseDestination('multi.test', { lmtp: false, defaultPort: 25 }), opts({ ipv6: false, mxAddressLimit: 1 }));
  assert.ok(Array.isArray(v4));
  assert.deepEqual(v4.map((a) => a.addr), ['192.0.2.1']);
});

test('MX pointing only at this host: bounced "mail for X loops back to myself"', async () => {
  const r = await resolveDestination(parseDestination('self.test', { lmtp: false, defaultPort: 25 }), opts());
  assert.deepEqual(r, { status: 'bounced', dsn: '5.4.6', text: 'mail for self.test loops back to myself' });
});

test('MX hosts without address: NXDOMAIN bounces, SERVFAIL defers', async () => {
  const r = await resolveDestination(parseDestination('noaddr.test', { lmtp: false, defaultPort: 25 }), opts());
  assert.ok(!Array.isArray(r) && r.status === 'bounced' && r.dsn === '5.4.4', JSON.stringify(r));
  const t = await resolveDestination(parseDestination('tempaddr.test', { lmtp: false, defaultPort: 25 }), opts());
  assert.ok(!Array.isArray(t) && t.status === 'deferred' && t.dsn === '4.4.3', JSON.stringify(t));
  assert.match((t as { text: string }).text, /name=sf\.tempaddr\.test type=A: Host not found, try again/);
});

test('implicit MX (no MX record) and smtp_mx_address_limit', async () => {
  const r = await resolveDestination(parseDestination('many.test', { lmtp: false, defaultPort: 25 }), opts({ ipv6: false }));
  assert.ok(Array.isArray(r));
  assert.equal(r.length, 5);
  assert.ok(r.every((a) => a.host === 'many.test'));
  const all = await resolveDestination(parseDestination('many.test', { lmtp: false, defaultPort: 25 }), opts({ ipv6: false, mxAddressLimit: 0 }));
  assert.ok(Array.isArray(all) && all.length === 7);
});
