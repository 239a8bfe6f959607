/**
 * postern-mail-access - Postern's pop3d and lmtpd started in-process for interop tests and
 * benchmarks, on a private dovecot.conf with a passwd-file user list and Maildirs in a temp
 * dir (dovecot-fixture.ts), listening on loopback ports chosen by the OS (and an LMTP unix
 * socket).
 *
 *   const pm = await PosternMailAccess.start({ users: [{ user: 'a@x.test', pass: 'pw' }] });
 *   pm.ports.pop3, pm.ports.lmtp, pm.lmtpSocket, await pm.messages('a@x.test')
 *   await pm.stop();
 */
import { chmodSync } from 'node:fs';
import type { UserDirectory } from '../../src/lib-auth/user-directory.ts';
import { MaildirStore } from '../../src/lib-storage/maildir/maildir-storage.ts';
import { logger } from '../../src/util/msg.ts';
import { createPop3d } from '../../src/pop3d/pop3d.ts';
import { pop3dSettings } from '../../src/pop3d/pop3d-settings.ts';
import { createLmtpd } from '../../src/lmtpd/lmtpd.ts';
import { lmtpdSettings } from '../../src/lmtpd/lmtpd-settings.ts';
import { DovecotFixture } from './dovecot-fixture.ts';

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
  private readonly fx: DovecotFixture;

  private constructor(fx: DovecotFixture, store: MaildirStore, directory: UserDirectory, ports: { pop3: number; lmtp: number }, lmtpSocket: string) {
    this.fx = fx;
    this.dir = fx.dir;
    this.store = store;
    this.directory = directory;
    this.ports = ports;
    this.lmtpSocket = lmtpSocket;
  }

  static async start(o: PosternMailAccessOptions): Promise<PosternMailAccess> {
    const fx = new DovecotFixture('postern-access-');
    chmodSync(fx.dir, 0o755);
    const dc = fx.configure({
      users: o.users,
      settings: 'mail_location = maildir:~\nauth_failure_delay = 0\ndisable_plaintext_auth = no\nauth_mechanisms = plain login',
      conf: o.conf,
    });
    const directory = await fx.directory();
    const store = new MaildirStore();
    const log = logger('postern-access');
    const pop3d = createPop3d({ directory, store, settings: pop3dSettings(dc), log });
    const lmtpd = createLmtpd({ directory, store, settings: lmtpdSettings(dc), log });
    const pop3 = await fx.listen((s) => { void pop3d.handle(s); });
    const lmtp = await fx.listen((s) => { void lmtpd.handle(s); });
    const lmtpSocket = await fx.listenUnix('lmtp', (s) => { void lmtpd.handle(s); });
    chmodSync(lmtpSocket, 0o666);
    return new PosternMailAccess(fx, store, directory, { pop3, lmtp }, lmtpSocket);
  }

  /** Contents of a user's mailbox, in UID order. */
  messages(user: string, box = 'INBOX'): Promise<string[]> {
    return this.fx.messages(user, this.store, box);
  }

  async deliver(user: string, content: string): Promise<void> {
    const u = await this.store.forUser((await this.directory.lookup(user))!);
    await u.deliver('INBOX', content);
    await u.close();
  }

  async stop(): Promise<void> {
    await this.fx.stop();
  }
}
