/**
 * dovecot-fixture - the Dovecot side of a pop3d, lmtpd or imapd test: a temp directory with a
 * passwd-file user list (scheme PLAIN, this process's uid and gid, Dovecot's passwd-file(5)
 * format), a dovecot.conf whose passdb and userdb read it, parsed by the real reader
 * (src/global/dovecot-conf.ts), and the user directory and Maildir store the servers are built
 * on; loopback and unix-socket listeners whose connections stop() ends before it removes the
 * directory.
 *
 *   const fx = new DovecotFixture('postern-pop3d-');
 *   const dc = fx.configure({ users: [{ user: 'a@x.test', pass: 'pw', home: 'a' }], settings: 'mail_location = maildir:~' });
 *   const directory = await fx.directory();  const store = new MaildirStore();
 *   const port = await fx.listen((s) => { void pop3d.handle(s); });
 *   await fx.messages('a@x.test');  await fx.stop();
 *
 * Users get the home DIR/mail/DOMAIN/LOCAL unless they name one (relative to DIR).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDovecotConf, type DovecotConfig } from '../../src/global/dovecot-conf.ts';
import { openUserDirectory } from '../../src/lib-auth/user-directory-open.ts';
import type { UserDirectory } from '../../src/lib-auth/user-directory.ts';
import { MaildirStore } from '../../src/lib-storage/maildir/maildir-storage.ts';

export interface FixtureUser {
  user: string;
  pass: string;
  /** The home, relative to the fixture's directory; default mail/DOMAIN/LOCAL. */
  home?: string;
  /** The passwd-file's extra fields (userdb_quota_rule=..., ...). */
  extra?: string;
}

export interface FixtureConf {
  users: FixtureUser[];
  /** dovecot.conf settings before the passdb and userdb sections. */
  settings: string;
  /** dovecot.conf text after them (a test's own settings, which win). */
  conf?: string;
}

export class DovecotFixture {
  readonly dir: string;
  /** The parsed dovecot.conf, once configure() ran. */
  conf!: DovecotConfig;
  private readonly servers: Server[] = [];
  private readonly socks: Socket[] = [];
  private readonly directories: UserDirectory[] = [];
  private ownStore: MaildirStore | undefined;

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }

  /** The home of a user (absolute). */
  home(u: FixtureUser): string {
    return join(this.dir, u.home ?? join('mail', ...u.user.split('@').reverse()));
  }

  /** Write the users file and dovecot.conf; returns the parsed configuration. */
  configure(o: FixtureConf): DovecotConfig {
    const users = join(this.dir, 'users');
    const ids = `${process.getuid!()}:${process.getgid!()}`;
    writeFileSync(users, o.users.map((u) => `${u.user}:{PLAIN}${u.pass}:${ids}::${this.home(u)}::${u.extra ?? ''}`).join('\n') + '\n');
    const text = `
${o.settings}
passdb {
  driver = passwd-file
  args = scheme=PLAIN ${users}
}
userdb {
  driver = passwd-file
  args = ${users}
}
${o.conf ?? ''}
`;
    const file = join(this.dir, 'dovecot.conf');
    writeFileSync(file, text);
    this.conf = parseDovecotConf(text, file);
    return this.conf;
  }

  /** The user directory of the configuration (closed by stop()). */
  async directory(): Promise<UserDirectory> {
    const d = await openUserDirectory(this.conf);
    this.directories.push(d);
    return d;
  }

  /** Listen on 127.0.0.1 (or `host`), an OS-chosen port; returns the port. */
  async listen(handler: (s: Socket) => void, host = '127.0.0.1'): Promise<number> {
    const server = this.server(handler);
    await new Promise<void>((r) => server.listen(0, host, r));
    return (server.address() as { port: number }).port;
  }

  /** Listen on the unix socket DIR/NAME; returns its path. */
  async listenUnix(name: string, handler: (s: Socket) => void): Promise<string> {
    const path = join(this.dir, name);
    await new Promise<void>((r) => this.server(handler).listen(path, r));
    return path;
  }

  private server(handler: (s: Socket) => void): Server {
    const server = createServer((s) => { this.socks.push(s); handler(s); });
    this.servers.push(server);
    return server;
  }

  /** A user's messages in UID order (through the first directory and `store`). */
  async messages(user: string, store: MaildirStore = this.store(), box = 'INBOX'): Promise<string[]> {
    const d = this.directories[0] ?? await this.directory();
    const rec = await d.lookup(user);
    if (!rec) throw new Error(`no user ${user}`);
    const u = await store.forUser(rec);
    const mb = await u.open(box);
    try {
      await mb.sync();
      return await Promise.all(mb.messages().map((m) => mb.readContent(m.uid).then((b) => b.toString())));
    } finally {
      await mb.close();
      await u.close();
    }
  }

  private store(): MaildirStore {
    this.ownStore ??= new MaildirStore();
    return this.ownStore;
  }

  /** End every connection, close the listeners and directories, remove the directory. */
  async stop(): Promise<void> {
    for (const s of this.socks) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const d of this.directories) await d.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
