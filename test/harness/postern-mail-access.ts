/**
 * postern-mail-access - Postern's pop3d and lmtpd started in-process for interop tests and
 * benchmarks, on a private dovecot.conf with a passwd-file user list and Maildirs in a temp
 * dir, listening on loopback ports chosen by the OS (and an LMTP unix socket).
 *
 *   const pm = await PosternMailAccess.start({ users: [{ user: 'a@x.test', pass: 'pw' }] });
 *   pm.ports.pop3, pm.ports.lmtp, pm.lmtpSocket, await pm.messages('a@x.test')
 *   await pm.stop();
 */
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDovecotConf } from '../../src/global/dovecot-conf.ts';
import { openUserDirectory } from '../../src/lib-auth/user-directory-open.ts';
import type { UserDirectory } from '../../src/lib-auth/user-directory.ts';
import { MaildirStore } from '../../src/lib-storage/maildir/maildir-storage.ts';
import { logger } from '../../src/util/msg.ts';
import { createPop3d } from '../../src/pop3d/pop3d.ts';
import { pop3dSettings } from '../../src/pop3d/pop3d-settings.ts';
import { createLmtpd } from '../../src/lmtpd/lmtpd.ts';
import { lmtpdSettings } from '../../src/lmtpd/lmtpd-settings.ts';

export interface PosternUser { user: string; pass: string; extra?: string }

export interface PosternMailAccessOptions {
  users: PosternUser[];
  /** Extra dovecot.conf text. */
  conf?: string;
}

export class PosternMailAccess {
  readonly dir: string;
  readonly store: MaildirStore;
  readonly directory: UserDirectory;
  readonly ports: { pop3: number; lmtp: number };
  readonly lmtpSocket: string;
  private readonly servers: Server[];
  private readonly socks: Socket[];

  private constructor(dir: string, store: MaildirStore, directory: UserDirectory, ports: { pop3: number; lmtp: number }, servers: Server[], socks: Socket[]) {
    this.dir = dir;
    this.store = store;
    this.directory = directory;
    this.ports = ports;
    this.lmtpSocket = join(dir, 'lmtp');
    this.servers = servers;
    this.socks = socks;
  }

  static async start(o: PosternMailAccessOptions): Promise<PosternMailAccess> {
    const dir = mkdtempSync(join(tmpdir(), 'postern-access-'));
    chmodSync(dir, 0o755);
    const ids = `${process.getuid!()}:${process.getgid!()}`;
    writeFileSync(join(dir, 'users'), o.users.map((u) =>
      `${u.user}:{PLAIN}${u.pass}:${ids}::${join(dir, 'mail', ...u.user.split('@').reverse())}::${u.extra ?? ''}`).join('\n') + '\n');
    const dc = parseDovecotConf(`
mail_location = maildir:~
auth_failure_delay = 0
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN ${join(dir, 'users')}
}
userdb {
  driver = passwd-file
  args = ${join(dir, 'users')}
}
${o.conf ?? ''}
`, join(dir, 'dovecot.conf'));
    const directory = await openUserDirectory(dc);
    const store = new MaildirStore();
    const log = logger('postern-access');
    const pop3d = createPop3d({ directory, store, settings: pop3dSettings(dc), log });
    const lmtpd = createLmtpd({ directory, store, settings: lmtpdSettings(dc), log });
    const socks: Socket[] = [];
    const track = (h: (s: Socket) => Promise<void>) => (s: Socket) => { socks.push(s); void h(s); };
    const p = createServer(track((s) => pop3d.handle(s)));
    const l = createServer(track((s) => lmtpd.handle(s)));
    const u = createServer(track((s) => lmtpd.handle(s)));
    await new Promise<void>((r) => p.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => l.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => u.listen(join(dir, 'lmtp'), r));
    chmodSync(join(dir, 'lmtp'), 0o666);
    const port = (s: Server) => (s.address() as { port: number }).port;
    return new PosternMailAccess(dir, store, directory, { pop3: port(p), lmtp: port(l) }, [p, l, u], socks);
  }

  /** Contents of a user's mailbox, in UID order. */
  async messages(user: string, box = 'INBOX'): Promise<string[]> {
    const rec = await this.directory.lookup(user);
    if (!rec) throw new Error(`no user ${user}`);
    const u = await this.store.forUser(rec);
    const mb = await u.open(box);
    try {
      await mb.sync();
      return await Promise.all(mb.messages().map((m) => mb.readContent(m.uid).then((b) => b.toString())));
    } finally {
      await mb.close();
      await u.close();
    }
  }

  async deliver(user: string, content: string): Promise<void> {
    const u = await this.store.forUser((await this.directory.lookup(user))!);
    await u.deliver('INBOX', content);
    await u.close();
  }

  async stop(): Promise<void> {
    for (const s of this.socks) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    await this.directory.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
