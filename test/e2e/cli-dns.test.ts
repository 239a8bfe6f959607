/**
 * A postern command run by a test (PosternSystem.cli) while the test's own loopback DNS server
 * answers in the same process: `postern dns example.test --check` asks that server (main.cf
 * postern_dns_servers) and sees the published MX, which a blocking run (spawnSync) could never
 * get: the server's event loop would wait for the command that waits for it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PosternSystem } from '../harness/postern-system.ts';
import { DnsServer } from '../harness/dns-server.ts';

let sys: PosternSystem;
let dns: DnsServer;
before(async () => {
  dns = await DnsServer.start({
    'example.test': { MX: [{ preference: 10, exchange: 'mail.example.test' }], TXT: ['v=spf1 mx -all'] },
    'mail.example.test': { A: ['192.0.2.25'] },
  });
  sys = await PosternSystem.start();
});
after(async () => {
  await sys?.destroy();
  await dns?.stop();
});

test('postern dns --check, run by the test, is answered by the test\'s in-process DNS server', async () => {
  const set = await sys.cli('conf', '-e', `postern_dns_servers = 127.0.0.1:${dns.port}`, 'myhostname = mail.example.test');
  assert.equal(set.status, 0, set.stderr);
  const started = Date.now();
  const r = await sys.cli('dns', 'example.test', '--check');
  assert.ok(dns.queries.some((q) => /^example\.test MX$/i.test(q)), `asked: ${dns.queries.join(', ')}\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^MX example\.test: OK - 10 mail\.example\.test$/m);
  assert.match(r.stdout, /^SPF example\.test: OK - v=spf1 mx -all$/m);
  assert.ok(Date.now() - started < 25_000, 'answered, not timed out');
});
