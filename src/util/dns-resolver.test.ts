/**
 * dns-resolver against the loopback DNS server: the three Postfix outcomes (not found, no
 * data, try again), postern_dns_servers from main.cf, and bad server values named clearly.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createDnsResolver, dnsResolverFromConfig, checkDnsServer, DnsError } from './dns-resolver.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { DnsServer } from '../../test/harness/dns-server.ts';

let dns: DnsServer;
before(async () => {
  dns = await DnsServer.start({
    'example.test': { MX: [{ preference: 10, exchange: 'mx.example.test' }], TXT: ['v=spf1 -all'] },
    'mx.example.test': { A: ['192.0.2.25'], AAAA: ['2001:db8::25'] },
    'fail.test': 'SERVFAIL',
  });
});
after(async () => { await dns.stop(); });

test('MX, A, AAAA, TXT answers from the configured server', async () => {
  const r = dnsResolverFromConfig(MainConfig.parse(`postern_dns_servers = 127.0.0.1:${dns.port}\n`));
  assert.deepEqual(r.servers, [`127.0.0.1:${dns.port}`]);
  assert.deepEqual(await r.resolveMx('example.test'), [{ exchange: 'mx.example.test', priority: 10 }]);
  assert.deepEqual(await r.resolve4('mx.example.test'), ['192.0.2.25']);
  assert.deepEqual(await r.resolve6('MX.Example.Test'), ['2001:db8::25']);
  assert.deepEqual(await r.resolveTxt('example.test'), [['v=spf1 -all']]);
  assert.ok(dns.queries.includes('example.test MX'));
});

test('NXDOMAIN → NOTFOUND, no record of the type → NODATA, SERVFAIL → TEMP, in Postfix words', async () => {
  const r = createDnsResolver({ servers: [`127.0.0.1:${dns.port}`], timeoutMs: 500, tries: 1 });
  const kind = async (p: Promise<unknown>) => { try { await p; return 'ok'; } catch (e) { assert.ok(e instanceof DnsError); return `${e.kind}: ${e.message}`; } };
  assert.equal(await kind(r.resolveMx('nx.test')), 'NOTFOUND: Name service error for name=nx.test type=MX: Host not found');
  assert.equal(await kind(r.resolveMx('mx.example.test')), 'NODATA: Name service error for name=mx.example.test type=MX: No address associated with hostname');
  assert.equal(await kind(r.resolve4('fail.test')), 'TEMP: Name service error for name=fail.test type=A: Host not found, try again');
});

test('a server that does not answer: TEMP, not NOTFOUND (mail is deferred, never bounced)', async () => {
  const r = createDnsResolver({ servers: ['127.0.0.1:9'], timeoutMs: 200, tries: 1 });
  await assert.rejects(r.resolveMx('example.test'), (e: DnsError) => e.kind === 'TEMP');
});

test('bad postern_dns_servers values are refused with the parameter name', () => {
  for (const bad of ['dns.example', '127.0.0.1:0', '127.0.0.1:70000', '[::1', '1.2.3.4; rm -rf /']) {
    assert.ok(checkDnsServer(bad), bad);
    assert.throws(() => createDnsResolver({ servers: [bad] }), /^Error: postern_dns_servers: /);
  }
  for (const good of ['127.0.0.1', '127.0.0.1:5353', '[::1]:53', '::1']) assert.equal(checkDnsServer(good), undefined, good);
});
