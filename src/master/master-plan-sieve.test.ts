/**
 * The master's plan for dovecot.conf `protocols = sieve`: Pigeonhole's service names
 * (`service managesieve-login { inet_listener sieve { port = 4190 } }`), its default port, and
 * no ManageSieve unless dovecot.conf enables it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigSet } from './master-config.ts';
import { planServices } from './master-plan.ts';
import type { ServiceImpl } from '../lib-master/master-service.ts';

const impl = async (): Promise<ServiceImpl> => ({ name: 'x', async start() { return { async stop() {} }; } });

test('master plan: protocols = sieve runs managesieve on service managesieve-login { inet_listener sieve } (default 4190)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-ms-plan-'));
  try {
    writeFileSync(join(dir, 'main.cf'), `queue_directory = ${dir}/queue\ninet_interfaces = loopback-only\ninet_protocols = ipv4\n`);
    writeFileSync(join(dir, 'master.cf'), '');
    const plan = (conf: string) => {
      writeFileSync(join(dir, 'dovecot.conf'), `listen = 127.0.0.1\n${conf}`);
      return planServices(loadConfigSet(dir), { imapd: impl, managesieve: impl });
    };
    let p = plan('protocols = imap sieve\n');
    const ms = p.services.find((s) => s.impl === 'managesieve');
    assert.ok(ms, 'managesieve planned');
    assert.equal(ms.protocol, 'sieve');
    assert.deepEqual(ms.listens.map((l) => `${l.name} ${l.port} ${l.ssl} ${l.addresses}`), ['sieve 4190 false 127.0.0.1']);
    p = plan('protocols = sieve\nservice managesieve-login {\n  inet_listener sieve {\n    address = 127.0.0.1\n    port = 14190\n  }\n}\n');
    assert.deepEqual(p.services.find((s) => s.impl === 'managesieve')!.listens.map((l) => `${l.name} ${l.port}`), ['sieve 14190']);
    p = plan('protocols = imap\n');
    assert.equal(p.services.find((s) => s.impl === 'managesieve'), undefined, 'not started unless dovecot.conf enables it');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

