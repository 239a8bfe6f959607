/**
 * check_policy_service (SMTPD_POLICY_README) compared with real Postfix 3.7: the same main.cf
 * lines, the same policy server (test/harness/policy-server.py, one private instance per side),
 * the same SMTP dialogues. Compared: every reply (DUNNO, REJECT text, NNN custom code,
 * DEFER_IF_PERMIT, HOLD) and what each server does when the policy server hangs, answers
 * garbage, answers without action=, closes mid-request, or answers a 1 MB line (the default
 * action "451 4.3.5 Server configuration problem"); the request attributes themselves (names in
 * order, and values) at RCPT and END-OF-MESSAGE; connection reuse (several requests on one
 * connection). Postern only: a hanging policy server holds only its own session.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { RealPostfix } from '../harness/real-postfix.ts';
import { freePort } from '../harness/free-port.ts';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { createSmtpd } from '../../src/smtpd/smtpd.ts';
import { smtpdClients } from '../../src/master/master-clients.ts';
import { SmtpdCheck } from '../../src/smtpd/smtpd-check.ts';
import { TrivialRewrite } from '../../src/trivial-rewrite/trivial-rewrite.ts';
import { setLogSink } from '../../src/util/msg.ts';
import { writeSelfSigned } from '../../src/lib-tls/self-signed.ts';
import { directoryAuth } from '../../src/smtpd/smtpd-sasl.ts';
import type { UserDirectory } from '../../src/lib-auth/user-directory.ts';

/** A user directory of one user for AUTH (the private Postfix has no SASL: Postern only). */
const oneUser: UserDirectory = {
  async lookup() { return undefined; },
  async verifyPlain(u, p) { return u === 'alice' && p === 'pw' ? { result: 'ok', user: u } : { result: 'mismatch' }; },
  async *iterate() { /* none */ },
  async close() {},
};

const run = promisify(execFile);
const logs: string[] = [];
setLogSink((l) => logs.push(l));
const skip = RealPostfix.unavailable();
const POLICY_SERVER = resolve(import.meta.dirname, '..', 'harness', 'policy-server.py');

let dir = '';
let pf: RealPostfix | undefined;
let server: Server | undefined;
let check: SmtpdCheck | undefined;
const sockets = new Set<Socket>();
const procs: ChildProcess[] = [];
let pfPort = 0;
let ourPort = 0;
const logOf = { pf: '', ours: '' };

const shared = (policyPort: number) => `myhostname = mx.example.test
smtpd_tls_cert_file = ${dir}/c.pem
smtpd_tls_key_file = ${dir}/k.pem
smtpd_tls_security_level = may
mydomain = example.test
mynetworks = 127.0.0.1/32
relay_domains = policy.test
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:${policyPort}
smtpd_end_of_data_restrictions = check_policy_service { inet:127.0.0.1:${policyPort}, policy_context=eod, timeout=10s }
smtpd_policy_service_timeout = 4s
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
`;

async function startPolicyServer(log: string): Promise<number> {
  const port = await freePort();
  const p = spawn('python3', [POLICY_SERVER, String(port), log], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(p);
  await new Promise<void>((res, rej) => {
    p.stdout!.once('data', () => res());
    p.once('exit', (c) => rej(new Error(`policy server exited ${c}`)));
  });
  return port;
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'postern-policy-'));
  chmodSync(dir, 0o755);
  writeSelfSigned(join(dir, 'c.pem'), join(dir, 'k.pem'), { hostname: 'mx.example.test' }, () => {});
  chmodSync(join(dir, 'k.pem'), 0o644); // Postfix's smtpd reads it after dropping privileges
  logOf.pf = join(dir, 'pf-requests.jsonl');
  logOf.ours = join(dir, 'our-requests.jsonl');
  writeFileSync(logOf.pf, '');
  writeFileSync(logOf.ours, '');
  const pfPolicy = await startPolicyServer(logOf.pf);
  const ourPolicy = await startPolicyServer(logOf.ours);
  pfPort = await freePort();
  pf = await RealPostfix.start({ mainCf: shared(pfPolicy), masterCf: `127.0.0.1:${pfPort} inet n - n - - smtpd` });
  const qdir = join(dir, 'queue');
  const cfg = MainConfig.parse(`${shared(ourPolicy)}inet_interfaces = loopback-only\ncompatibility_level = 3.6\nsmtpd_banner = $myhostname ESMTP $mail_name\nmail_name = Postfix\nqueue_directory = ${qdir}\nsmtpd_peername_lookup = no\nsmtpd_sasl_auth_enable = yes\n`, join(dir, 'main.cf'), dir);
  check = await SmtpdCheck.open(cfg, { rewrite: await TrivialRewrite.open(cfg) });
  const queue = new MailQueue(qdir);
  queue.ensureDirs();
  const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy: check, service: 'smtp', auth: directoryAuth(oneUser) });
  server = createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); smtpd.handle(s); });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  ourPort = (server.address() as { port: number }).port;
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await check?.close();
  for (const p of procs) p.kill('SIGKILL');
  await pf?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One session per recipient: EHLO, MAIL, RCPT; the RCPT reply (code and text). */
async function rcptReplies(port: number, rcpts: string[]): Promise<string[]> {
  const py = `
import smtplib, sys, json
out = []
for r in sys.argv[2:]:
    c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
    c.ehlo("client.example.org")
    c.mail("s@example.org")
    try:
        code, msg = c.rcpt(r)
        out.append("%d %s" % (code, msg.decode()))
    except smtplib.SMTPResponseException as e:
        out.append("client: %d %s" % (e.smtp_code, e.smtp_error))
        continue
    try: c.quit()
    except Exception: pass
print(json.dumps(out))
`;
  const { stdout } = await run('python3', ['-c', py, String(port), ...rcpts], { timeout: 120_000 });
  return JSON.parse(stdout) as string[];
}

type Req = { conn: number; names: string[]; attrs: Record<string, string> };
function requests(file: string): Req[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l) as Req);
}

test('policy actions and failures: the same RCPT replies as Postfix', { skip }, async () => {
  const cases = ['dunno', 'reject', 'custom', 'greylist', 'hang', 'garbage', 'noaction', 'close', 'big'].map((m) => `${m}@policy.test`);
  const [theirs, ours] = await Promise.all([rcptReplies(pfPort, cases), rcptReplies(ourPort, cases)]);
  // All but the 1 MB answer: Postfix 3.7 reads it whole and sends it on in its reply (a line
  // Python's smtplib refuses: "500 Line too long"); Postern reads at most 64 KiB of a policy
  // reply (global/attr-clnt.ts MAX_REPLY) and applies the default action, like any broken answer.
  for (let i = 0; i < cases.length - 1; i++) assert.equal(ours[i], theirs[i], `${cases[i]}: Postern "${ours[i]}", Postfix "${theirs[i]}"`);
  assert.equal(ours[8], '451 4.3.5 <big@policy.test>: Recipient address rejected: Server configuration problem');
  // The documented texts, to be sure both did what SMTPD_POLICY_README says.
  assert.equal(ours[1], '554 5.7.1 <reject@policy.test>: Recipient address rejected: go away');
  assert.equal(ours[4], '451 4.3.5 <hang@policy.test>: Recipient address rejected: Server configuration problem');
  const warn = logs.filter((l) => l.includes('warning:') && l.includes(`inet:127.0.0.1:`));
  assert.ok(warn.some((l) => /problem talking to server inet:127\.0\.0\.1:\d+: timeout/.test(l)), `the log names the server: ${warn.join('\n')}`);
});

test('the request: the attributes Postfix 3.7 sends, in its order, with the same values', { skip }, async () => {
  const py = `
import smtplib, sys
for port in sys.argv[1:]:
    c = smtplib.SMTP("127.0.0.1", int(port), timeout=30)
    c.ehlo("client.example.org")
    c.sendmail("attrs@example.org", ["dunno@policy.test", "dunno2@policy.test"], b"Subject: x\\r\\n\\r\\nbody\\r\\n")
    c.quit()
`;
  await run('python3', ['-c', py, String(pfPort), String(ourPort)], { timeout: 60_000 });
  const pick = (file: string) => requests(file).filter((r) => r.attrs.sender === 'attrs@example.org');
  const theirs = pick(logOf.pf);
  const ours = pick(logOf.ours);
  assert.deepEqual(ours.map((r) => r.attrs.protocol_state), theirs.map((r) => r.attrs.protocol_state));
  assert.deepEqual(ours.map((r) => r.attrs.protocol_state), ['RCPT', 'RCPT', 'END-OF-MESSAGE']);
  for (let i = 0; i < theirs.length; i++) {
    const t = theirs[i]!;
    const o = ours[i]!;
    // Postfix 3.8 added compatibility_level and mail_version at the end; Postern sends them too.
    assert.deepEqual(o.names.filter((n) => n !== 'compatibility_level' && n !== 'mail_version'), t.names, 'the same attributes in the same order');
    for (const k of t.names) {
      // client_name: Postern's smtpd names 127.0.0.1 "localhost" without a lookup, where Postfix
      // with smtpd_peername_lookup = no says "unknown" (the session's business, not the policy client's).
      if (['client_port', 'server_port', 'instance', 'queue_id', 'size', 'client_name', 'reverse_client_name'].includes(k)) continue;
      assert.equal(o.attrs[k], t.attrs[k], `${t.attrs.protocol_state} ${k}: Postern "${o.attrs[k]}", Postfix "${t.attrs[k]}"`);
    }
    assert.equal(o.attrs.queue_id === '', t.attrs.queue_id === '', `${t.attrs.protocol_state}: queue_id present in both or in neither`);
    assert.match(o.attrs.instance!, /^[0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+$/);
  }
  assert.equal(ours[0]!.attrs.instance, ours[2]!.attrs.instance, 'one instance per transaction');
  assert.equal(ours[2]!.attrs.policy_context, 'eod', 'the per-service policy_context');
  assert.ok(Number(ours[2]!.attrs.size) > 0 && ours[2]!.attrs.size === theirs[2]!.attrs.size, `size at END-OF-MESSAGE: ${ours[2]!.attrs.size} vs ${theirs[2]!.attrs.size}`);
});

test('after STARTTLS: encryption_protocol, encryption_cipher, encryption_keysize as Postfix sends them', { skip }, async () => {
  const py = `
import smtplib, ssl, sys
ctx = ssl._create_unverified_context()
for port in sys.argv[1:]:
    c = smtplib.SMTP("127.0.0.1", int(port), timeout=30)
    c.starttls(context=ctx)
    c.ehlo("client.example.org")
    c.mail("tls@example.org")
    c.rcpt("dunno@policy.test")
    c.quit()
`;
  await run('python3', ['-c', py, String(pfPort), String(ourPort)], { timeout: 60_000 });
  const pick = (file: string) => requests(file).find((r) => r.attrs.sender === 'tls@example.org')!;
  const t = pick(logOf.pf);
  const o = pick(logOf.ours);
  for (const k of ['encryption_protocol', 'encryption_cipher', 'encryption_keysize', 'ccert_subject', 'ccert_issuer', 'ccert_fingerprint', 'ccert_pubkey_fingerprint', 'protocol_name']) {
    assert.equal(o.attrs[k], t.attrs[k], `${k}: Postern "${o.attrs[k]}", Postfix "${t.attrs[k]}"`);
  }
  assert.equal(o.attrs.encryption_protocol, 'TLSv1.3');
});

test('after AUTH: sasl_method and sasl_username (Postern only: the private Postfix has no SASL)', { skip }, async () => {
  const py = `
import smtplib, sys
c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
c.ehlo("client.example.org")
c.login("alice", "pw")
c.mail("sasl@example.org")
c.rcpt("dunno@policy.test")
c.quit()
`;
  await run('python3', ['-c', py, String(ourPort)], { timeout: 60_000 });
  const r = requests(logOf.ours).find((x) => x.attrs.sender === 'sasl@example.org')!;
  assert.equal(r.attrs.sasl_method, 'PLAIN');
  assert.equal(r.attrs.sasl_username, 'alice');
  assert.equal(r.attrs.sasl_sender, '');
});

test('a hanging policy server holds only its own session; connections are reused', { skip }, async () => {
  const before = requests(logOf.ours).length;
  const py = `
import smtplib, sys, threading, time
port = int(sys.argv[1])
done = {}
def hang():
    c = smtplib.SMTP("127.0.0.1", port, timeout=30); c.ehlo("h.example.org"); c.mail("s@example.org")
    done["hang"] = c.rcpt("hang@policy.test")[0]
t = threading.Thread(target=hang); t.start()
threading.Event().wait(0.3)  # not time.sleep: EINVAL under test:clock (scripts/test-clock.sh)
c = smtplib.SMTP("127.0.0.1", port, timeout=30); c.ehlo("o.example.org"); c.mail("s@example.org")
codes = [c.rcpt("dunno%d@policy.test" % i)[0] for i in range(5)]
print("others", codes, "hang-still-waiting", "hang" not in done)
t.join()
print("hang", done["hang"])
`;
  const { stdout } = await run('python3', ['-c', py, String(ourPort)], { timeout: 60_000 });
  assert.match(stdout, /others \[250, 250, 250, 250, 250\] hang-still-waiting True/);
  assert.match(stdout, /hang 451/);
  const mine = requests(logOf.ours).slice(before);
  assert.equal(mine.filter((r) => r.attrs.recipient === 'hang@policy.test').length, 2, 'smtpd_policy_service_try_limit = 2: the hanging request was tried twice');
  const others = mine.filter((r) => /^dunno\d@/.test(r.attrs.recipient ?? ''));
  assert.equal(others.length, 5);
  assert.equal(new Set(others.map((r) => r.conn)).size, 1, 'the five requests of one session went over one reused connection');
});
