/**
 * master-plan: dovecot.conf `service quota-status { executable = quota-status -p postfix;
 * inet_listener { port } }` plans Postern's quota-status on that listener (and unix_listener
 * paths under base_dir); without a listener nothing runs; another `-p` than postfix is a
 * configuration error naming the line to change.
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

function plan(conf: string) {
  const dir = mkdtempSync(join(tmpdir(), 'postern-plan-'));
  try {
    writeFileSync(join(dir, 'main.cf'), `queue_directory = ${dir}/queue\ninet_interfaces = loopback-only\ninet_protocols = ipv4\n`);
    writeFileSync(join(dir, 'master.cf'), '');
    writeFileSync(join(dir, 'dovecot.conf'), `listen = 127.0.0.1\nprotocols = none\nbase_dir = /run/pd\n${conf}`);
    return planServices(loadConfigSet(dir), { 'quota-status': impl });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('service quota-status with listeners is planned as Postern\'s quota-status', () => {
  const p = plan('service quota-status {\n  executable = quota-status -p postfix\n  inet_listener {\n    port = 12340\n  }\n  unix_listener quota-status {\n    mode = 0660\n  }\n  client_limit = 1\n}\n');
  const s = p.services.find((x) => x.key === 'dovecot/quota-status');
  assert.ok(s, JSON.stringify(p.services.map((x) => x.key)));
  assert.equal(s.impl, 'quota-status');
  assert.deepEqual(s.listens.map((l) => l.kind === 'inet' ? `inet ${(l.addresses ?? []).join(',')}:${l.port}` : `unix ${l.path}`),
    ['inet 127.0.0.1:12340', 'unix /run/pd/quota-status']);
});

test('no listener: not run; no service quota-status: not run', () => {
  assert.equal(plan('service quota-status {\n  executable = quota-status -p postfix\n}\n').services.length, 0);
  assert.equal(plan('').services.length, 0);
});

test('executable without "-p postfix" is an error naming the setting', () => {
  assert.throws(() => plan('service quota-status {\n  executable = quota-status\n  inet_listener {\n    port = 12340\n  }\n}\n'),
    /service quota-status .*executable = quota-status: quota-status needs "-p postfix"/);
});
