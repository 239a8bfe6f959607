/**
 * Fuzz targets: whole protocol sessions over loopback TCP (smtpd with PERMIT_ALL and a temp
 * queue; pop3d and lmtpd with a passwd-file directory and temp Maildirs). Each input is one
 * client connection: the bytes are written in random chunks, then the client half-closes. A
 * finding is a server-side internal error (the daemons catch it, log its stack and answer
 * 421 / -ERR [SYS/TEMP]: a client must never be able to cause that), an uncaught exception,
 * or a session that does not close within 3 s of the client's FIN.
 */

import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../../../src/global/mail-conf.ts';
import { MailQueue } from '../../../src/global/mail-queue.ts';
import { createSmtpd } from '../../../src/smtpd/smtpd.ts';
import { smtpdClients } from '../../../src/master/master-clients.ts';
import { PERMIT_ALL } from '../../../src/smtpd/smtpd-policy.ts';
import { directoryAuth } from '../../../src/smtpd/smtpd-sasl.ts';
import { parseDovecotConf } from '../../../src/global/dovecot-conf.ts';
import { openUserDirectory } from '../../../src/lib-auth/user-directory-open.ts';
import type { UserDirectory } from '../../../src/lib-auth/user-directory.ts';
import { MaildirStore } from '../../../src/lib-storage/maildir/maildir-storage.ts';
import { createPop3d } from '../../../src/pop3d/pop3d.ts';
import { pop3dSettings } from '../../../src/pop3d/pop3d-settings.ts';
import { createLmtpd } from '../../../src/lmtpd/lmtpd.ts';
import { lmtpdSettings } from '../../../src/lmtpd/lmtpd-settings.ts';
import { logger, setLogSink, type LogSink } from '../../../src/util/msg.ts';
import { Rng, type FuzzTarget } from '../fuzz-engine.ts';
import { literalsFrom, texts } from '../fuzz-seeds.ts';

/** A server-side failure seen through the log or the process: a finding. */
export class ServerInternalError extends Error {
  override name = 'ServerInternalError';
  constructor(message: string, stack?: string) {
    super(message);
    if (stack) this.stack = `ServerInternalError: ${message}\n${stack}`;
  }
}

interface Recent { start: number; end: number; input: Buffer }

interface Running {
  port: number;
  close(): Promise<void>;
  /** Remove what accumulated (delivered mail, queue files). */
  wipe?(): void;
  /** After a session closed: a problem left behind (leaked temp file...), with the recent input
   * that caused it when known, or undefined. */
  check?(recent: readonly Recent[]): Promise<{ message: string; input?: Buffer } | undefined>;
}

function sessionTarget(name: string, coverage: string[], start: () => Promise<Running>, seeds: () => Buffer[], dictionary: string[]): FuzzTarget {
  let srv: Running | undefined;
  const logs: string[] = [];
  let oldSink: LogSink | undefined;
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => { uncaught.push(e); };
  let runs = 0;
  const recent: Recent[] = [];
  return {
    name, coverage, dictionary, seeds, maxLen: 64 * 1024,
    async setup() {
      oldSink = setLogSink((l) => { if (logs.length < 100) logs.push(l); });
      process.on('uncaughtException', onUncaught);
      process.on('unhandledRejection', onUncaught);
      srv = await start();
    },
    async teardown() {
      await srv?.close();
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
      if (oldSink) setLogSink(oldSink);
    },
    async run(data) {
      if (++runs % 300 === 0) srv!.wipe?.();
      logs.length = 0;
      uncaught.length = 0;
      const rng = new Rng(data.length * 31 + (data[0] ?? 0));
      const started = Date.now();
      const sock: Socket = connect(srv!.port, '127.0.0.1');
      sock.on('error', () => {});
      sock.on('data', () => {});
      const closed = new Promise<boolean>((r) => {
        const t = setTimeout(() => r(false), 3000);
        sock.on('close', () => { clearTimeout(t); r(true); });
      });
      await new Promise<void>((r) => { sock.once('connect', () => r()); sock.once('error', () => r()); });
      for (let pos = 0; pos < data.length && !sock.destroyed;) {
        const n = 1 + rng.int(rng.next() < 0.5 ? 64 : 4096);
        sock.write(data.subarray(pos, pos + n));
        pos += n;
        if (rng.next() < 0.3) await new Promise((r) => setImmediate(r));
      }
      sock.end();
      const ok = await closed;
      if (!ok) sock.destroy();
      await new Promise((r) => setImmediate(r));
      const bad = logs.find((l) => /\n\s+at /.test(l));
      if (bad) {
        const [first, ...rest] = bad.split('\n');
        throw new ServerInternalError(first!.slice(0, 300), rest.join('\n'));
      }
      if (uncaught.length) throw uncaught[0];
      if (!ok) throw new ServerInternalError(`${name}: the session did not close within 3 s of the client's FIN`);
      recent.push({ start: started, end: Date.now(), input: data });
      if (recent.length > 200) recent.shift();
      const left = await srv!.check?.(recent);
      if (left) {
        const e = new ServerInternalError(left.message);
        // report the input that created the file (the current one may be innocent)
        if (left.input) (e as ServerInternalError & { input?: Buffer }).input = left.input;
        throw e;
      }
    },
    expected: () => false,
  };
}

const quiet = { async lookup() { return undefined; }, async *iterate() {}, async close() {} };
const fakeDir: UserDirectory = {
  ...quiet,
  async verifyPlain(u: string, p: string) { return u === 'alice@example.test' && p === 's3cret' ? { result: 'ok', user: u } : { result: 'mismatch' }; },
} as unknown as UserDirectory;

export const smtpd = sessionTarget('smtpd-session', ['src/smtpd/', 'src/lib-smtp/', 'src/cleanup/'], async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-fuzz-smtpd-'));
  const cfg = MainConfig.parse(`myhostname = mx.example.test\nqueue_directory = ${dir}\nsmtpd_sasl_auth_enable = yes\n` +
    'smtpd_error_sleep_time = 0\nsmtpd_soft_error_limit = 1000\nsmtpd_hard_error_limit = 1000\nsmtpd_junk_command_limit = 1000\n' +
    'message_size_limit = 100000\nsmtpd_authorized_xclient_hosts = 127.0.0.1\nsmtpd_authorized_xforward_hosts = 127.0.0.1\n', 'main.cf', dir);
  const queue = new MailQueue(dir);
  queue.ensureDirs();
  const d = createSmtpd(cfg, { ...smtpdClients, queue, policy: PERMIT_ALL, service: 'smtp', auth: directoryAuth(fakeDir) });
  const server: Server = createServer((s) => d.handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    wipe() {
      // committed queue files only: a session still running may be creating a temporary one
      for (const f of readdirSync(join(dir, 'incoming'))) if (!f.startsWith('t')) rmSync(join(dir, 'incoming', f), { force: true });
    },
    async check(recent) {
      // cleanup's abort() removes the temporary queue file of a transaction that did not finish;
      // one still there 300 ms after it was written belongs to a session that is long gone
      // (sessions here last milliseconds): blame the input that ran when it was created
      const now = Date.now();
      for (const f of readdirSync(join(dir, 'incoming'))) {
        if (!f.startsWith('t')) continue;
        let mtime: number;
        try { mtime = statSync(join(dir, 'incoming', f)).mtimeMs; } catch { continue; }
        if (now - mtime < 300) continue;
        rmSync(join(dir, 'incoming', f), { force: true });
        const culprit = recent.find((r) => r.start <= mtime + 5 && mtime <= r.end + 50);
        return { message: `smtpd left temporary queue file ${f} (and its open file handle) after the client disconnected`, input: culprit?.input };
      }
      return undefined;
    },
    async close() { for (const c of d.sessions) c.destroy(); await new Promise((r) => server.close(r)); rmSync(dir, { recursive: true, force: true }); },
  };
}, () => [
  ...texts('EHLO client.example.org\r\nMAIL FROM:<a@example.org> BODY=8BITMIME SIZE=100\r\nRCPT TO:<b@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.test\r\nDATA\r\nSubject: hi\r\n\r\nbody\r\n..dot\r\n.\r\nQUIT\r\n',
    'EHLO c\r\nAUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzM2NyZXQ=\r\nMAIL FROM:<>\r\nRCPT TO:<x@y>\r\nBDAT 5 LAST\r\nhello',
    'HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 3\r\nabcBDAT 0 LAST\r\nRSET\r\nNOOP\r\nVRFY x\r\nQUIT\r\n',
    'EHLO c\r\nXCLIENT NAME=spike.porcupine.org ADDR=168.100.189.2 HELO=x\r\nEHLO d\r\nXFORWARD PROTO=ESMTP\r\nMAIL FROM:<a@b> AUTH=<>\r\nQUIT\r\n',
    'EHLO c\r\nAUTH LOGIN\r\nYWxpY2VAZXhhbXBsZS50ZXN0\r\nczNjcmV0\r\nSTARTTLS\r\n', 'EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\n.\nsmuggled\r\n.\r\n'),
  ...literalsFrom(['src/smtpd/smtpd.test.ts'], /\r\n/),
], ['EHLO ', 'HELO ', 'MAIL FROM:', 'RCPT TO:', 'DATA\r\n', 'BDAT ', ' LAST', 'RSET\r\n', 'QUIT\r\n', 'AUTH PLAIN ', 'AUTH LOGIN',
  'XCLIENT ', 'XFORWARD ', 'STARTTLS\r\n', 'VRFY ', 'ETRN ', '<>', '<a@b>', '\r\n.\r\n', '\r\n', 'SIZE=', 'BODY=BINARYMIME', 'SMTPUTF8',
  'NOTIFY=', 'ORCPT=', 'RET=', 'ENVID=', 'AUTH=', '=', '*\r\n']);

async function dovecotEnv(kind: string): Promise<{ dir: string; directory: UserDirectory; conf: ReturnType<typeof parseDovecotConf> }> {
  const dir = mkdtempSync(join(tmpdir(), `postern-fuzz-${kind}-`));
  const ids = `${process.getuid!()}:${process.getgid!()}`;
  writeFileSync(join(dir, 'users'), [`alice@x.test:{PLAIN}pw:${ids}::${dir}/alice::`,
    `bob@x.test:{PLAIN}pw:${ids}::${dir}/bob::userdb_quota_rule=*:storage=1K`].join('\n') + '\n');
  const conf = parseDovecotConf(`mail_location = maildir:~/Maildir\nhostname = ${kind}.x.test\nauth_failure_delay = 0\n` +
    `disable_plaintext_auth = no\npop3_lock_session = no\npassdb {\n  driver = passwd-file\n  args = scheme=PLAIN ${dir}/users\n}\n` +
    `userdb {\n  driver = passwd-file\n  args = ${dir}/users\n}\n`, join(dir, 'dovecot.conf'));
  return { dir, directory: await openUserDirectory(conf), conf };
}

function serve(handle: (s: Socket) => void): Promise<{ server: Server; port: number; socks: Set<Socket> }> {
  const socks = new Set<Socket>();
  const server = createServer((s) => { socks.add(s); s.on('close', () => socks.delete(s)); handle(s); });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r({ server, port: (server.address() as { port: number }).port, socks })));
}

export const lmtpd = sessionTarget('lmtpd-session', ['src/lmtpd/', 'src/lib-smtp/'], async () => {
  const { dir, directory, conf } = await dovecotEnv('lmtp');
  const d = createLmtpd({ directory, store: new MaildirStore(), settings: lmtpdSettings(conf), log: logger('lmtpd') });
  const { server, port, socks } = await serve((s) => { void d.handle(s); });
  return {
    port,
    wipe() {
      // delivered messages only (a session still running may be delivering): the folders stay
      for (const sub of ['new', 'cur']) {
        let names: string[] = [];
        try { names = readdirSync(join(dir, 'alice', 'Maildir', sub)); } catch { continue; }
        for (const f of names) rmSync(join(dir, 'alice', 'Maildir', sub, f), { force: true });
      }
    },
    async close() { for (const s of socks) s.destroy(); await new Promise((r) => server.close(r)); await directory.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}, () => texts('LHLO c\r\nMAIL FROM:<a@b> BODY=8BITMIME\r\nRCPT TO:<alice@x.test>\r\nRCPT TO:<bob+box@x.test>\r\nRCPT TO:<nobody@x.test>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n',
  'LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice+Sent@x.test>\r\nBDAT 4 LAST\r\nabcdRSET\r\nNOOP\r\nQUIT\r\n', 'LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice+../../etc@x.test>\r\nDATA\r\nx\r\n.\r\n'),
['LHLO ', 'MAIL FROM:', 'RCPT TO:', 'DATA\r\n', 'BDAT ', ' LAST', 'RSET\r\n', 'QUIT\r\n', '<alice@x.test>', '<bob@x.test>', '+', '+../', '<>',
  '\r\n.\r\n', '\r\n', 'SIZE=', 'BODY=8BITMIME', 'SMTPUTF8', 'ORCPT=rfc822;', 'NOTIFY=']);

export const pop3d = sessionTarget('pop3d-session', ['src/pop3d/'], async () => {
  const { dir, directory, conf } = await dovecotEnv('pop3');
  const store = new MaildirStore();
  // alice's maildrop: a few messages to LIST/RETR/TOP/DELE
  const ld = createLmtpd({ directory, store, settings: lmtpdSettings(conf), log: logger('lmtpd') });
  const l = await serve((s) => { void ld.handle(s); });
  await new Promise<void>((r) => {
    const c = connect(l.port, '127.0.0.1');
    c.on('data', () => {}); c.on('close', () => r()); c.on('error', () => r());
    let msgs = '';
    for (let i = 0; i < 3; i++) msgs += `MAIL FROM:<a@b>\r\nRCPT TO:<alice@x.test>\r\nDATA\r\nSubject: m${i}\r\n\r\nline 1\r\n..dot\r\nline 3\r\n.\r\n`;
    c.end(`LHLO c\r\n${msgs}QUIT\r\n`);
  });
  for (const s of l.socks) s.destroy();
  await new Promise((r) => l.server.close(r));
  const d = createPop3d({ directory, store, settings: { ...pop3dSettings(conf), lockWaitMs: 1000 }, log: logger('pop3d') });
  const { server, port, socks } = await serve((s) => { void d.handle(s); });
  return {
    port,
    async close() { for (const s of socks) s.destroy(); await new Promise((r) => server.close(r)); await directory.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}, () => texts('CAPA\r\nUSER alice@x.test\r\nPASS pw\r\nSTAT\r\nLIST\r\nUIDL\r\nTOP 1 1\r\nRETR 2\r\nDELE 3\r\nRSET\r\nLIST 4294967296\r\nNOOP\r\n',
  'AUTH PLAIN AGFsaWNlQHgudGVzdABwdw==\r\nLIST 1\r\nUIDL 2\r\nTOP 3 0\r\nRETR 0\r\nQUIT\r\n', 'AUTH PLAIN\r\nAGFsaWNlQHgudGVzdABwdw==\r\nSTAT\r\n',
  'USER bob@x.test\r\nPASS wrong\r\nUSER alice@x.test\r\nPASS pw\r\nTOP 1 -1\r\nDELE 1\r\nDELE 1\r\nRETR 1\r\n'),
['USER ', 'PASS ', 'APOP ', 'AUTH ', 'PLAIN', 'LOGIN', 'CAPA\r\n', 'STAT\r\n', 'LIST', 'UIDL', 'TOP ', 'RETR ', 'DELE ', 'RSET\r\n', 'NOOP\r\n',
  'QUIT\r\n', 'STLS\r\n', 'alice@x.test', 'pw', '\r\n', ' ', '0', '1', '4294967295', '-1', '*\r\n', 'AGFsaWNlQHgudGVzdABwdw==']);

export const target = smtpd;
