/**
 * pebble - Let's Encrypt's ACME test server (Debian's /usr/bin/pebble) and its challenge test
 * server (pebble-challtestsrv, here only as the DNS server pebble's validation uses), started
 * privately on loopback ports for one test and stopped after. Never a system service, never
 * anything but loopback: pebble resolves every name through the challtestsrv DNS server, which
 * answers 127.0.0.1 for every A query (no AAAA), and validates http-01 on `httpPort` and
 * tls-alpn-01 on `tlsPort` of that address.
 *
 *   const ca = await Pebble.start(dir, { httpPort, tlsPort, validitySeconds: 60 });
 *   ca.directoryUrl      https://localhost:PORT/dir   (its TLS certificate: ca.tlsCaFile)
 *   await ca.rootPem()   the root that signs the issued certificates (for openssl -CAfile)
 *   await ca.setTxt('_acme-challenge.mail.example.test.', 'value')   (dns-01 through the mock)
 *   await ca.stop()
 *
 * PEBBLE_VA_NOSLEEP=1 (no random validation delays) and PEBBLE_WFE_NONCEREJECT=0 (no injected
 * badNonce errors) keep the tests deterministic; PEBBLE_AUTHZREUSE=0 so every order validates.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { freePort } from './free-port.ts';
import { TestCa } from './test-ca.ts';

export interface PebbleOptions {
  httpPort: number;
  tlsPort: number;
  /** Lifetime of issued certificates (pebble's certificateValidityPeriod). */
  validitySeconds?: number;
  /** The ACME port (default: a free one); the directory is https://localhost:PORT/dir. */
  port?: number;
  /** The CA of pebble's own HTTPS certificate (default: a new one under dir). */
  tlsCa?: TestCa;
}

async function waitPort(port: number, child: ChildProcess, out: () => string): Promise<void> {
  const end = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited: ${out()}`);
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1', () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`not listening on ${port}: ${out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class Pebble {
  directoryUrl = '';
  tlsCaFile = '';
  out = '';
  private mgmtPort = 0;
  private challMgmtPort = 0;
  private procs: ChildProcess[] = [];

  static async start(dir: string, o: PebbleOptions): Promise<Pebble> {
    const p = new Pebble();
    const ca = o.tlsCa ?? TestCa.create(dir, 'Pebble Listener CA');
    const leaf = ca.issue('pebble-localhost', ['localhost']);
    p.tlsCaFile = ca.certFile;
    const dnsPort = await freePort();
    p.challMgmtPort = await freePort();
    const chall = spawn('pebble-challtestsrv', [
      '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '',
      '-management', `127.0.0.1:${p.challMgmtPort}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.procs.push(chall);
    chall.stdout!.on('data', (d) => { p.out += d; });
    chall.stderr!.on('data', (d) => { p.out += d; });
    await waitPort(p.challMgmtPort, chall, () => p.out);
    const port = o.port ?? await freePort();
    p.mgmtPort = await freePort();
    const cfg = join(dir, 'pebble-config.json');
    writeFileSync(cfg, JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`, managementListenAddress: `127.0.0.1:${p.mgmtPort}`,
        certificate: leaf.certFile, privateKey: leaf.keyFile,
        httpPort: o.httpPort, tlsPort: o.tlsPort, ocspResponderURL: '', externalAccountBindingRequired: false,
        ...(o.validitySeconds ? { certificateValidityPeriod: o.validitySeconds } : {}),
      },
    }));
    const peb = spawn('pebble', ['-config', cfg, '-dnsserver', `127.0.0.1:${dnsPort}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
    });
    p.procs.push(peb);
    peb.stdout!.on('data', (d) => { p.out += d; });
    peb.stderr!.on('data', (d) => { p.out += d; });
    await waitPort(port, peb, () => p.out);
    p.directoryUrl = `https://localhost:${port}/dir`;
    return p;
  }

  /** The root of the issued certificates' chain (pebble makes a new one at each start). */
  rootPem(): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request(`https://localhost:${this.mgmtPort}/roots/0`, { ca: readFileSync(this.tlsCaFile, 'utf8') }, (res) => {
        let s = '';
        res.on('data', (d) => { s += d; });
        res.on('end', () => resolve(s));
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** pebble-challtestsrv management API: publish or remove a TXT record. */
  challtest(path: 'set-txt' | 'clear-txt', body: Record<string, string>): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: this.challMgmtPort, path: `/${path}`, method: 'POST' }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${path}: HTTP ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  }

  get challtestManagement(): string { return `http://127.0.0.1:${this.challMgmtPort}`; }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((c) => new Promise<void>((r) => {
      if (c.exitCode !== null || c.signalCode !== null) { r(); return; }
      c.once('exit', () => r());
      c.kill('SIGTERM');
    })));
  }
}
