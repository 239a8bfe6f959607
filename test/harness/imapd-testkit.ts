/**
 * imapd-testkit - test fixture for imapd: a temp directory with a passwd-file user list, a
 * dovecot.conf (parsed by the real config reader) and Maildirs (dovecot-fixture.ts), and an
 * Imapd on 127.0.0.1 with an OS-chosen port; connectImap() opens the raw client (line-chat.ts) for transcript assertions.
 * Used by imapd.test.ts and test/interop/imap-*.test.ts. Cleans up in stop().
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Logger } from '../../src/util/msg.ts';
import { generateSelfSigned } from '../../src/lib-tls/self-signed.ts';
import { createImapd, type Imapd } from '../../src/imapd/imapd.ts';
import type { ImapdSettings } from '../../src/imapd/imapd-settings.ts';
import { LineChat } from './line-chat.ts';
import { DovecotFixture } from './dovecot-fixture.ts';

/** The namespace both servers of a differential test use: INBOX, Sent (subscribed) and Trash, separator /. */
export const NAMESPACE_CONF = `
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = create
  }
}
`;

export interface Fixture {
  dir: string;
  port: number;
  /** imaps port (implicit TLS) when started with tls. */
  tlsPort: number;
  imapd: Imapd;
  maildir(user: string): string;
  stop(): Promise<void>;
}

export async function startFixture(o: { users?: [string, string, string?][]; conf?: string; settings?: Partial<ImapdSettings>; tls?: boolean; host?: string } = {}): Promise<Fixture> {
  const fx = new DovecotFixture('postern-imapd-');
  const dir = fx.dir;
  let tlsConf = 'ssl = no';
  if (o.tls) {
    const made = generateSelfSigned({ hostname: 'localhost', keyType: 'ec' });
    writeFileSync(join(dir, 'cert.pem'), made.certPem);
    writeFileSync(join(dir, 'key.pem'), made.keyPem, { mode: 0o600 });
    tlsConf = `ssl = yes\nssl_cert = <${join(dir, 'cert.pem')}\nssl_key = <${join(dir, 'key.pem')}`;
  }
  const users = o.users ?? [['alice@example.test', 'secret']];
  const conf = fx.configure({
    users: users.map(([user, pass, extra]) => ({ user, pass, extra })),
    settings: `protocols = imap
mail_location = maildir:~/Maildir
disable_plaintext_auth = no
${tlsConf}
auth_mechanisms = plain login
auth_failure_delay = 0`,
    conf: `${NAMESPACE_CONF.slice(1)}${o.conf ?? ''}`,
  });
  const log = new Logger('imap');
  const imapd = await createImapd({ dovecot: conf, log, settings: o.settings ?? {} });
  const host = o.host ?? '127.0.0.1';
  const port = await fx.listen((sock) => { void imapd.handle(sock); }, host);
  const tlsPort = o.tls ? await fx.listen((sock) => { void imapd.handle(sock, { ssl: true }); }, host) : 0;
  return {
    dir, port, tlsPort, imapd,
    maildir: (user: string) => join(dir, 'mail', ...user.split('@').reverse(), 'Maildir'),
    async stop() {
      await imapd.close();
      await fx.stop();
    },
  };
}

/** Connect an IMAP LineChat (test/harness/line-chat.ts) and read the greeting. */
export async function connectImap(port: number, host = '127.0.0.1'): Promise<LineChat> {
  const c = await LineChat.open(port, { host, protocol: 'imap' });
  await c.waitFor(/^\* (OK|BYE|PREAUTH).*\r\n/m);
  return c;
}

/** Dovecot's timing text removed, for comparisons. */
export function stripTiming(s: string): string {
  return s.replace(/ \(\d+\.\d{3} \+ \d+\.\d{3}(?: \+ \d+\.\d{3})? secs\)\./g, '');
}
