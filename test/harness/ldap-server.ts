/**
 * ldap-server - a private OpenLDAP slapd (Debian's slapd) for the tests: a slapd.conf with the
 * core, cosine, inetorgperson, nis and misc schemas and one mdb database (suffix dc=example,dc=test,
 * rootdn cn=admin,dc=example,dc=test) in a temp dir, listening on an OS-chosen loopback port;
 * stopped and removed after. Entries are loaded with `add(ldif)` through ldapadd.
 *
 *   const ldap = await LdapServer.start();
 *   await ldap.add(`dn: uid=alice,ou=people,dc=example,dc=test\n...`);
 *   ldap.url, ldap.port, LdapServer.BASE, LdapServer.ROOT_DN, ldap.password
 *   ldap.pause() / resume(); await ldap.halt() / restart()
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ldapts';
import { freePort } from './free-port.ts';
import { startOrClean, stopAndWait, terminate } from './proc-stop.ts';

export class LdapServer {
  static readonly BASE = 'dc=example,dc=test';
  static readonly ROOT_DN = 'cn=admin,dc=example,dc=test';
  readonly dir: string;
  readonly password = 'ldappass';
  port = 0;
  private proc: ChildProcess | undefined;
  private log = '';

  private constructor(dir: string) { this.dir = dir; }

  get url(): string { return `ldap://127.0.0.1:${this.port}`; }

  static unavailable(): string | undefined {
    if (!existsSync('/usr/sbin/slapd')) return 'Debian package slapd is not installed';
    if (!existsSync('/usr/bin/ldapadd')) return 'Debian package ldap-utils is not installed';
    return undefined;
  }

  static async start(): Promise<LdapServer> {
    const why = LdapServer.unavailable();
    if (why) throw new Error(why);
    const dir = mkdtempSync(join(tmpdir(), 'postern-ldap-'));
    const s = new LdapServer(dir);
    mkdirSync(join(dir, 'db'));
    const schema = ['core', 'cosine', 'inetorgperson', 'nis', 'misc'].map((n) => `include /etc/ldap/schema/${n}.schema`).join('\n');
    writeFileSync(join(dir, 'slapd.conf'), `${schema}
pidfile ${join(dir, 'slapd.pid')}
modulepath /usr/lib/ldap
moduleload back_mdb
sizelimit unlimited
database mdb
maxsize 33554432
suffix "${LdapServer.BASE}"
rootdn "${LdapServer.ROOT_DN}"
rootpw ${s.password}
directory ${join(dir, 'db')}
index objectClass eq
index mail,uid,mailLocalAddress eq
access to * by * read
`);
    s.port = await freePort();
    return startOrClean(async () => {
      await s.launch();
      await s.add(`dn: ${LdapServer.BASE}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,${LdapServer.BASE}
objectClass: organizationalUnit
ou: people

dn: ou=groups,${LdapServer.BASE}
objectClass: organizationalUnit
ou: groups
`);
      return s;
    }, () => s.stop());
  }

  private async launch(): Promise<void> {
    const p = spawn('/usr/sbin/slapd', ['-d', '0', '-f', join(this.dir, 'slapd.conf'), '-h', `ldap://127.0.0.1:${this.port}/`],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    this.log = '';
    p.stdout!.on('data', (d) => { this.log += d; });
    p.stderr!.on('data', (d) => { this.log += d; });
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`slapd exited: ${this.log}`);
      const c = new Client({ url: this.url, connectTimeout: 1000, timeout: 2000 });
      try {
        await c.bind(LdapServer.ROOT_DN, this.password);
        await c.unbind();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`slapd did not start: ${this.log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Add entries (LDIF) as the root DN. */
  async add(ldif: string): Promise<void> {
    const r = spawnSync('/usr/bin/ldapadd', ['-x', '-H', this.url, '-D', LdapServer.ROOT_DN, '-w', this.password],
      { input: ldif, encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`ldapadd failed: ${r.stderr}`);
  }

  /** Modify entries (LDIF changetype records) as the root DN. */
  async modify(ldif: string): Promise<void> {
    const r = spawnSync('/usr/bin/ldapmodify', ['-x', '-H', this.url, '-D', LdapServer.ROOT_DN, '-w', this.password],
      { input: ldif, encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`ldapmodify failed: ${r.stderr}`);
  }

  pause(): void { stopAndWait(this.proc?.pid); }
  resume(): void { this.proc?.kill('SIGCONT'); }

  async halt(): Promise<void> {
    await terminate(this.proc, 10_000);
    this.proc = undefined;
  }

  async restart(): Promise<void> { await this.launch(); }

  async stop(): Promise<void> {
    await this.halt();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
