import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigSet } from './master-config.ts';
import { planServices } from './master-plan.ts';
import type { ServiceImpl } from '../lib-master/master-service.ts';

const impl = async (): Promise<ServiceImpl> => ({ name: 'x', async start() { return { async stop() {} }; } });

/** The inet listeners planned for dovecot.conf `conf` ("name port ssl" each). */
function dovecotInet(conf: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'postern-plan-'));
  try {
    writeFileSync(join(dir, 'main.cf'), `queue_directory = ${dir}/queue\ninet_interfaces = loopback-only\ninet_protocols = ipv4\n`);
    writeFileSync(join(dir, 'master.cf'), '');
    writeFileSync(join(dir, 'dovecot.conf'), `listen = 127.0.0.1\n${conf}`);
    const plan = planServices(loadConfigSet(dir), { imapd: impl, pop3d: impl });
    return plan.services.flatMap((s) => s.listens).filter((l) => l.kind === 'inet').map((l) => `${l.name} ${l.port} ${l.ssl}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('ssl = no: neither the default imaps/pop3s listeners nor a declared ssl = yes one are bound (as Dovecot 2.3)', () => {
  // Measured against the real Dovecot 2.3: with `ssl = no`, `inet_listener imaps { port = N
  // ssl = yes }` is not listening (connect refused), nor is pop3s.
  assert.deepEqual(dovecotInet('protocols = imap pop3\nssl = no\n'), ['imap 143 false', 'pop3 110 false']);
  assert.deepEqual(dovecotInet('protocols = imap\nssl = no\nservice imap-login {\n  inet_listener imap {\n    port = 1143\n  }\n' +
    '  inet_listener imaps {\n    port = 1993\n    ssl = yes\n  }\n}\n'), ['imap 1143 false']);
  // ssl = yes (Dovecot's default) and required keep them.
  for (const ssl of ['yes', 'required']) {
    assert.deepEqual(dovecotInet(`protocols = imap pop3\nssl = ${ssl}\nssl_cert = </dev/null\nssl_key = </dev/null\n`),
      ['imap 143 false', 'imaps 993 true', 'pop3 110 false', 'pop3s 995 true']);
  }
});

test('a stock master.cf (Debian\'s) plans every entry: Postfix\'s helper servers are mapped, nothing is "not available yet"', async () => {
  const { SERVICES } = await import('./master-services.ts');
  const { readFileSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'postern-plan-'));
  try {
    writeFileSync(join(dir, 'main.cf'), `queue_directory = ${dir}/queue\ninet_interfaces = loopback-only\ninet_protocols = ipv4\n`);
    writeFileSync(join(dir, 'master.cf'), readFileSync(join(import.meta.dirname, '../global/testdata/postfix/master.cf.debian'), 'utf8'));
    const plan = planServices(loadConfigSet(dir), SERVICES);
    assert.deepEqual(plan.notYetAvailable, []);
    assert.deepEqual(plan.notImplemented, []);
    const planned = new Set(plan.services.map((s) => s.entry.service));
    for (const s of ['tlsmgr', 'verify', 'flush', 'proxymap', 'proxywrite', 'showq', 'anvil', 'scache', 'postlog']) assert.ok(planned.has(s), s);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
