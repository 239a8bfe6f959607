/**
 * anvil-testkit - test helpers for the abuse-protection tests (the raw client is
 * test/harness/line-chat.ts): a real smtpd
 * (createSmtpd with the master's clients, as src/smtpd/smtpd.test.ts builds it) on an OS-chosen
 * port with a temp queue.
 * Not used by production code.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { createSmtpd, type Smtpd } from '../../src/smtpd/smtpd.ts';
import type { SmtpdPolicy } from '../../src/smtpd/smtpd-policy.ts';
import type { SmtpdAuth } from '../../src/smtpd/smtpd-sasl.ts';
import type { UserDirectory } from '../../src/lib-auth/user-directory.ts';
import { smtpdClients } from '../../src/master/master-clients.ts';

export interface TestSmtpd {
  port: number;
  smtpd: Smtpd;
  server: Server;
  queue: MailQueue;
  config: MainConfig;
  close(): void;
}

/** A user directory with one account: alice@example.test / s3cret. */
export const ALICE: UserDirectory = {
  async lookup() { return undefined; },
  async verifyPlain(u, p) { return u === 'alice@example.test' && p === 's3cret' ? { result: 'ok', user: u } : { result: 'mismatch' }; },
  async *iterate() { /* none */ },
  async close() {},
};

/**
 * A real smtpd on 127.0.0.1. `accept` runs first for each connection (the wiring a patch puts
 * into smtpd.ts handle()); it returns false when it has already answered the connection.
 */
export async function startSmtpd(mainCf: string, opts: {
  policy?: (c: MainConfig) => Promise<SmtpdPolicy> | SmtpdPolicy;
  auth?: (c: MainConfig) => Promise<SmtpdAuth | undefined> | SmtpdAuth | undefined;
  accept?: (sock: Socket) => Promise<boolean>;
} = {}): Promise<TestSmtpd> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-anvil-'));
  const config = MainConfig.parse(`myhostname = mx.example.test\nqueue_directory = ${dir}\nsmtpd_sasl_auth_enable = yes\n${mainCf}`, 'main.cf', dir);
  const queue = new MailQueue(dir);
  queue.ensureDirs();
  let policy: SmtpdPolicy;
  let auth: SmtpdAuth | undefined;
  try {
    policy = opts.policy ? await opts.policy(config) : {};
    auth = opts.auth ? await opts.auth(config) : undefined;
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const smtpd = createSmtpd(config, { ...smtpdClients, queue, policy, auth, service: 'smtp' });
  const server = createServer((s) => {
    s.on('error', () => {});
    if (!opts.accept) { smtpd.handle(s); return; }
    void opts.accept(s).then((go) => { if (go) smtpd.handle(s); });
  });
  server.maxConnections = 10_000;
  // A deep accept queue, as a production listener needs under a flood: Node's default of 511
  // lets the kernel park the rest half-open for up to ~30 s of SYN-ACK retries.
  await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, r));
  const port = (server.address() as { port: number }).port;
  return {
    port, smtpd, server, queue, config,
    close() {
      for (const c of smtpd.sessions) c.destroy();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
