/**
 * The server side of a TLS session in Postfix 3.7's words: real Postfix and Postern's smtpd get
 * the same messages over STARTTLS from Python's smtplib (TLS 1.3, and TLS 1.2 with a chosen
 * cipher), with the same RSA certificate; the "Anonymous TLS connection established from" log
 * line and the Received: header's TLS comment must have the same text, except the TLS 1.3
 * "key-exchange GROUP" words that a Node server cannot know (tls-describe.ts).
 * Postfix's copy is held (HOLD) and read back with `postcat -c DIR -h -q QID`.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { QueueFile } from '../../src/global/queue-file-reader.ts';
import { createSmtpd } from '../../src/smtpd/smtpd.ts';
import { smtpdClients } from '../../src/master/master-clients.ts';
import { PERMIT_ALL } from '../../src/smtpd/smtpd-policy.ts';
import { writeSelfSigned } from '../../src/lib-tls/self-signed.ts';
import { setLogSink } from '../../src/util/msg.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { freePort } from '../harness/free-port.ts';

const run = promisify(execFile);
const why = RealPostfix.unavailable();
const dir = mkdtempSync(join(tmpdir(), 'postern-tls-recv-'));
chmodSync(dir, 0o755);
const cert = join(dir, 'c.pem');
const key = join(dir, 'k.pem');
writeSelfSigned(cert, key, { hostname: 'mx.example.test' }, () => {});
chmodSync(key, 0o644); // Postfix's smtpd reads it after dropping privileges
const logs: string[] = [];
let pf: RealPostfix | undefined;
let pfPort = 0;
let server: Server | undefined;
let sessions: ReadonlySet<Socket> = new Set();
let queue: MailQueue;
let ptPort = 0;

before(async () => {
  setLogSink((l) => { logs.push(l); });
  if (why) return;
  pfPort = await freePort();
  pf = await RealPostfix.start({
    mainCf: [`smtpd_tls_cert_file = ${cert}`, `smtpd_tls_key_file = ${key}`, 'smtpd_tls_security_level = may',
      'smtpd_tls_loglevel = 1', 'smtpd_tls_received_header = yes', 'mydestination = mx.example.test',
      'local_recipient_maps =', 'smtpd_data_restrictions = check_client_access static:HOLD'].join('\n'),
    masterCf: `127.0.0.1:${pfPort} inet n - n - - smtpd`,
  });
  const qdir = mkdtempSync(join(dir, 'q-'));
  const cfg = MainConfig.parse(`myhostname = mx.example.test\nsmtpd_tls_cert_file = ${cert}\nsmtpd_tls_key_file = ${key}\nsmtpd_tls_security_level = may\n`, 'main.cf', qdir);
  queue = new MailQueue(qdir);
  queue.ensureDirs();
  const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy: PERMIT_ALL, service: 'smtp' });
  sessions = smtpd.sessions;
  server = createServer((s) => smtpd.handle(s));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  ptPort = (server.address() as { port: number }).port;
});
after(async () => {
  for (const c of sessions) c.destroy();
  server?.close();
  await pf?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function send(port: number, tls: string): Promise<void> {
  await run('python3', ['-c', `import smtplib, ssl
ctx = ssl._create_unverified_context(); ${tls}
c = smtplib.SMTP("127.0.0.1", ${port}); c.starttls(context=ctx); c.ehlo("client.example.org")
c.sendmail("a@client.example.org", ["u@mx.example.test"], b"Subject: t\\r\\n\\r\\nhi\\r\\n"); c.quit()`], { timeout: 20_000 });
}

/** The Received: TLS comment lines ("\t(using ...)" up to "(No client certificate requested)"). */
function tlsComment(content: string): string {
  const m = /\n(\t\(using [\s\S]*?\(No client certificate requested\))\n/.exec(content);
  assert.ok(m, content);
  return m[1]!;
}

const sansKex = (s: string) => s.replace(/ key-exchange \S+/, '').replace(/\n\t key-exchange \S+ /, '\n\t ');

for (const [label, py] of [
  ['TLS 1.3', ''],
  ['TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256', "ctx.maximum_version = ssl.TLSVersion.TLSv1_2; ctx.set_ciphers('ECDHE-RSA-AES128-GCM-SHA256')"],
  ['TLS 1.2 ECDHE-RSA-AES256-GCM-SHA384', "ctx.maximum_version = ssl.TLSVersion.TLSv1_2"],
] as const) {
  test(`${label}: the smtpd log line and Received: TLS comment match real Postfix 3.7`, { skip: why }, async () => {
    const pfMark = pf!.log().length;
    const mark = logs.length;
    await send(pfPort, py);
    await send(ptPort, py);
    // Postfix: log line and held queue file.
    let pfLog = '';
    for (let i = 0; i < 100 && !/: hold: /.test(pfLog); i++) { await new Promise((r) => setTimeout(r, 50)); pfLog = pf!.log().slice(pfMark); }
    const pfLine = /Anonymous TLS connection established from unknown\[127\.0\.0\.1\]: (.*)/.exec(pfLog)![1]!;
    const qid = /: ([0-9A-F]{6,}): client=/.exec(pfLog)![1]!;
    const { stdout } = await run('/usr/sbin/postcat', ['-c', pf!.configDir, '-h', '-q', qid]);
    const pfComment = tlsComment(stdout);
    // Postern: log line and queue file.
    const ptLine = logs.slice(mark).map((l) => /Anonymous TLS connection established from \S+: (.*)/.exec(l)?.[1]).find(Boolean)!;
    const ids: string[] = [];
    for await (const id of queue.list('incoming')) ids.push(id);
    let ptComment = '';
    for (const id of ids) {
      const qf = await QueueFile.open(queue.path('incoming', id), id);
      const c = tlsComment((await qf.content()).toString());
      await queue.move(id, 'incoming', 'hold').catch(() => {});
      ptComment = c;
    }
    assert.equal(ptLine, sansKex(pfLine), `Postfix: ${pfLine}`);
    assert.equal(ptComment, sansKex(pfComment), `Postfix: ${JSON.stringify(pfComment)}`);
    if (label === 'TLS 1.3') assert.match(ptLine, /server-signature RSA-PSS \(2048 bits\) server-digest SHA256$/);
    else assert.doesNotMatch(ptLine, /server-signature/);
  });
}
