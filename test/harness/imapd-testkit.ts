/**
 * imapd-testkit - test fixture for imapd: a temp directory with a passwd-file user list, a
 * dovecot.conf (parsed by the real config reader), Maildirs, and an Imapd on 127.0.0.1 with
 * an OS-chosen port; plus a raw line-oriented IMAP client for transcript assertions.
 * Used by imapd.test.ts and test/interop/imap-*.test.ts. Cleans up in stop().
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDovecotConf } from '../../src/global/dovecot-conf.ts';
import { Logger } from '../../src/util/msg.ts';
import { generateSelfSigned } from '../../src/lib-tls/self-signed.ts';
import { createImapd, type Imapd } from '../../src/imapd/imapd.ts';
import type { ImapdSettings } from '../../src/imapd/imapd-settings.ts';

export interface Fixture {
  dir: string;
  port: number;
  /** imaps port (implicit TLS) when started with tls. */
  tlsPort: number;
  imapd: Imapd;
  server: Server;
  maildir(user: string): string;
  stop(): Promise<void>;
}

export async function startFixture(o: { users?: [string, string, string?][]; conf?: string; settings?: Partial<ImapdSettings>; tls?: boolean; host?: string } = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-imapd-'));
  let tlsConf = 'ssl = no';
  if (o.tls) {
    const made = generateSelfSigned({ hostname: 'localhost', keyType: 'ec' });
    writeFileSync(join(dir, 'cert.pem'), made.certPem);
    writeFileSync(join(dir, 'key.pem'), made.keyPem, { mode: 0o600 });
    tlsConf = `ssl = yes\nssl_cert = <${join(dir, 'cert.pem')}\nssl_key = <${join(dir, 'key.pem')}`;
  }
  const users = o.users ?? [['alice@example.test', 'secret']];
  const uid = process.getuid!();
  const gid = process.getgid!();
  writeFileSync(join(dir, 'users'), users.map(([u, p, extra]) =>
    `${u}:{PLAIN}${p}:${uid}:${gid}::${join(dir, 'mail', ...u.split('@').reverse())}::${extra ?? ''}`).join('\n') + '\n');
  const confText = `
protocols = imap
mail_location = maildir:~/Maildir
disable_plaintext_auth = no
${tlsConf}
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN ${join(dir, 'users')}
}
userdb {
  driver = passwd-file
  args = ${join(dir, 'users')}
}
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
${o.conf ?? ''}
`;
  writeFileSync(join(dir, 'dovecot.conf'), confText);
  const conf = parseDovecotConf(confText, join(dir, 'dovecot.conf'));
  const log = new Logger('imap');
  const imapd = await createImapd({ dovecot: conf, log, settings: o.settings ?? {} });
  const host = o.host ?? '127.0.0.1';
  const server = createServer((sock) => { void imapd.handle(sock); });
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as { port: number }).port;
  const tlsServer = createServer((sock) => { void imapd.handle(sock, { ssl: true }); });
  if (o.tls) await new Promise<void>((r) => tlsServer.listen(0, host, r));
  const tlsPort = o.tls ? (tlsServer.address() as { port: number }).port : 0;
  return {
    dir, port, tlsPort, imapd, server,
    maildir: (user: string) => join(dir, 'mail', ...user.split('@').reverse(), 'Maildir'),
    async stop() {
      await imapd.close();
      await new Promise<void>((r) => server.close(() => r()));
      if (o.tls) await new Promise<void>((r) => tlsServer.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A raw IMAP client: send lines, wait for a tagged reply, collect everything. */
export class RawClient {
  readonly sock: Socket;
  buf = '';
  private waiters: (() => void)[] = [];
  constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (d) => { this.buf += d.toString('latin1'); for (const w of this.waiters.splice(0)) w(); });
    sock.on('close', () => { for (const w of this.waiters.splice(0)) w(); });
  }
  static async connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    const sock = connect(port, host);
    await new Promise<void>((r, j) => { sock.once('connect', r); sock.once('error', j); });
    const c = new RawClient(sock);
    await c.waitFor(/^\* (OK|BYE|PREAUTH).*\r\n/m);
    return c;
  }
  /** Wait until the buffer matches; returns and consumes everything up to the end of the match. */
  async waitFor(re: RegExp, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.buf);
      if (m) {
        const end = m.index + m[0].length;
        const out = this.buf.slice(0, end);
        this.buf = this.buf.slice(end);
        return out;
      }
      if (this.sock.destroyed || Date.now() > deadline) throw new Error(`timeout waiting for ${re}; have: ${JSON.stringify(this.buf.slice(-500))}`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
  }
  /** Send `tag command` and return the full response up to and including the tagged line. */
  async cmd(tag: string, line: string | Buffer, timeoutMs = 5000): Promise<string> {
    this.sock.write(typeof line === 'string' ? `${tag} ${line}\r\n` : Buffer.concat([Buffer.from(`${tag} `), line, Buffer.from('\r\n')]));
    return this.waitFor(new RegExp(`(^|\\n)${tag.replace(/[.*+?^$()[\]\\|{}]/g, '\\$&')} (OK|NO|BAD)[^\\n]*\\r\\n`), timeoutMs);
  }
  write(s: string | Buffer): void { this.sock.write(s); }
  close(): void { this.sock.destroy(); }
}

/** Dovecot's timing text removed, for comparisons. */
export function stripTiming(s: string): string {
  return s.replace(/ \(\d+\.\d{3} \+ \d+\.\d{3}(?: \+ \d+\.\d{3})? secs\)\./g, '');
}
