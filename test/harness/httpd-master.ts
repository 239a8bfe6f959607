/**
 * httpd-master - a real Master running only the HTTP service, for the tests of httpd(8) and of
 * what is served through it (ACME challenges): a private directory with a test CA and a
 * certificate for `names`, two free loopback ports (postern_http_listen, postern_https_listen),
 * main.cf written from the test's extra lines, an empty master.cf, Dovecot off, and the log
 * collected in `lines`.
 *
 *   const h = await startHttpdMaster({ prefix: 'postern-httpd-', names: ['mail.example.test'],
 *     mainCf: (h) => ['postern_http_timeout = 2s'], registry: { httpd: ... } });
 *   ... curl http://127.0.0.1:${h.httpPort}/ ...
 *   after(() => h?.stop());
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setLogSink } from '../../src/util/msg.ts';
import { Master } from '../../src/master/master.ts';
import { loadConfigSet } from '../../src/master/master-config.ts';
import type { ServiceRegistry } from '../../src/master/master-services.ts';
import { freePort } from './free-port.ts';
import { TestCa, type TestLeaf } from './test-ca.ts';

export interface HttpdMaster {
  dir: string;
  httpPort: number;
  httpsPort: number;
  ca: TestCa;
  leaf: TestLeaf;
  master: Master;
  /** The log lines written so far. */
  lines: string[];
  stop(): Promise<void>;
}

export async function startHttpdMaster(o: {
  prefix: string;
  names: string[];
  /** The http listen value (default "127.0.0.1:PORT"). */
  httpListen?: (port: number) => string;
  /** main.cf lines after the listeners and the certificate; may prepare files in h.dir first. */
  mainCf: (h: Pick<HttpdMaster, 'dir' | 'httpPort' | 'httpsPort'>) => string[];
  registry: ServiceRegistry;
}): Promise<HttpdMaster> {
  const dir = mkdtempSync(join(tmpdir(), o.prefix));
  const lines: string[] = [];
  const restore = setLogSink((l) => { lines.push(l); });
  const ca = TestCa.create(dir);
  const leaf = ca.issue('mail', o.names);
  const httpPort = await freePort();
  const httpsPort = await freePort();
  writeFileSync(join(dir, 'main.cf'), [
    `queue_directory = ${dir}/queue`, 'inet_interfaces = loopback-only', 'inet_protocols = ipv4',
    `postern_http_listen = ${(o.httpListen ?? ((p) => `127.0.0.1:${p}`))(httpPort)}`, `postern_https_listen = ${httpsPort}`,
    `smtpd_tls_cert_file = ${leaf.certFile}`, `smtpd_tls_key_file = ${leaf.keyFile}`,
    ...o.mainCf({ dir, httpPort, httpsPort }), '',
  ].join('\n'));
  writeFileSync(join(dir, 'master.cf'), '');
  writeFileSync(join(dir, 'dovecot.conf'), 'protocols = none\n');
  const master = new Master({ configDir: dir, load: () => loadConfigSet(dir), registry: o.registry });
  const stop = async () => {
    await master.stop();
    setLogSink(restore);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await master.start();
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
  return { dir, httpPort, httpsPort, ca, leaf, master, lines, stop };
}
