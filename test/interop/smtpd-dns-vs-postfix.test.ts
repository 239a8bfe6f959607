/**
 * The DNS-based smtpd restrictions on real Postfix 3.7 and on Postern, both asking the same
 * loopback DNS server (test/harness/dns-server.ts on port 53 of 127.1.2.3): Postern through
 * postern_dns_servers, real Postfix through the system resolver, started in a private mount
 * namespace whose /etc/resolv.conf names that server (real-postfix.ts `resolvConf`). The same
 * clients (python smtplib, from 127.0.0.x source addresses, with chosen HELO names, senders and
 * recipients) talk to both; every reply must be the same, byte for byte:
 * reject_rbl_client (A + TXT), permit_dnswl_client, reject_rhsbl_helo, reject_rhsbl_sender,
 * reject_unknown_helo_hostname, reject_unknown_sender_domain (MX only, null MX, NXDOMAIN,
 * SERVFAIL), reject_unknown_recipient_domain, check_sender_mx_access, check_sender_ns_access,
 * check_helo_a_access, and reject_unknown_client_hostname for a client without a PTR record.
 * Hostile: a HELO name and sender domain of 300 characters, labels of 63+ characters.
 *
 * Not compared: restrictions that need the client's verified host name (reject_rhsbl_client,
 * reject_unknown_client_hostname for a client WITH a name): Postern's smtpd does no reverse
 * lookup of the client (smtpd_peername_lookup), see docs/smtpd-restrictions.md.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RealPostfix } from '../harness/real-postfix.ts';
import { DnsServer, type Zone } from '../harness/dns-server.ts';
import { freePort } from '../harness/free-port.ts';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { createSmtpd } from '../../src/smtpd/smtpd.ts';
import { smtpdClients } from '../../src/master/master-clients.ts';
import { SmtpdCheck } from '../../src/smtpd/smtpd-check.ts';
import { TrivialRewrite } from '../../src/trivial-rewrite/trivial-rewrite.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});
const run = promisify(execFile);
const DNS_HOST = '127.1.2.3';
let skip: string | undefined = RealPostfix.unavailable();

const ZONE: Zone = {
  // RBL / DNSWL entries for client addresses (reversed octets).
  '5.0.0.127.rbl.test': { A: ['127.0.0.2'], TXT: ['listed for testing'] },
  '6.0.0.127.rbl.test': { A: ['127.0.0.2'], TXT: ['also listed'] },
  '6.0.0.127.dnswl.test': { A: ['127.0.10.0'] },
  // RHSBL: domains.
  'spam.test.rhsbl.test': { A: ['127.0.0.2'], TXT: ['spam domain'] },
  'spam.test': { A: ['192.0.2.10'], MX: [{ preference: 10, exchange: 'mx.spam.test' }] },
  'mx.spam.test': { A: ['192.0.2.11'] },
  // Names that exist.
  'good.helo.test': { A: ['192.0.2.20'] },
  'good.test': { A: ['192.0.2.21'] },
  'mxonly.test': { MX: [{ preference: 10, exchange: 'mx.good.test' }] },
  'mx.good.test': { A: ['192.0.2.22'] },
  'nullmx.test': { MX: [{ preference: 0, exchange: '' }] },
  'fail.test': 'SERVFAIL',
  // check_sender_mx_access / check_sender_ns_access / check_helo_a_access.
  'mxbad.test': { MX: [{ preference: 10, exchange: 'mx.mxbad.test' }] },
  'mx.mxbad.test': { A: ['192.0.2.66'] },
  'nsbad.test': { A: ['192.0.2.70'], NS: ['ns.nsbad.test'] },
  'ns.nsbad.test': { A: ['192.0.2.77'] },
  'ahelo.test': { A: ['192.0.2.88'] },
};

let dir = '';
let dns: DnsServer | undefined;
let pf: RealPostfix | undefined;
const servers: Server[] = [];
const sockets = new Set<Socket>();
const pfPorts: Record<string, number> = {};
const ourPorts: Record<string, number> = {};

const SHARED = (d: string) => `myhostname = mx.example.test
mydomain = example.test
myorigin = example.test
mydestination = mx.example.test
mynetworks = 127.0.0.1/32
relay_domains = good.test, nowhere.test
smtpd_relay_restrictions = reject_unauth_destination
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_recipient_restrictions = permit_dnswl_client dnswl.test, reject_rbl_client rbl.test,
  reject_rhsbl_helo rhsbl.test, reject_rhsbl_sender rhsbl.test, reject_unknown_helo_hostname,
  reject_unknown_sender_domain, reject_unknown_recipient_domain,
  check_sender_mx_access texthash:${d}/mx_access, check_sender_ns_access texthash:${d}/ns_access,
  check_helo_a_access texthash:${d}/a_access, permit
`;

const LISTENERS: Record<string, Record<string, string>> = {
  main: {},
  unknownclient: { smtpd_client_restrictions: 'reject_unknown_client_hostname' },
};

async function startOurs(name: string, o: Record<string, string>): Promise<number> {
  const base = MainConfig.parse(`${SHARED(dir)}compatibility_level = 3.6\nsmtpd_banner = $myhostname ESMTP $mail_name\nmail_name = Postfix\nqueue_directory = ${dir}/queue\npostern_dns_servers = ${DNS_HOST}:53\n`, join(dir, 'main.cf'), dir);
  const cfg = base.withOverrides(o);
  const policy = await SmtpdCheck.open(cfg, { rewrite: await TrivialRewrite.open(cfg) });
  const queue = new MailQueue(join(dir, 'queue'));
  queue.ensureDirs();
  const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy, service: name });
  const server = createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); smtpd.handle(s); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return (server.address() as { port: number }).port;
}

before(async () => {
  if (skip) return;
  try {
    dns = await DnsServer.start(ZONE, { host: DNS_HOST, port: 53 });
  } catch (e) {
    skip = `cannot listen on ${DNS_HOST}:53: ${(e as Error).message}`;
    return;
  }
  dir = mkdtempSync(join(tmpdir(), 'postern-dnspf-'));
  chmodSync(dir, 0o755);
  const files: Record<string, string> = {
    mx_access: '192.0.2.66 REJECT mail server on our blocklist\n',
    ns_access: 'ns.nsbad.test REJECT name server on our blocklist\n',
    a_access: '192.0.2.88 REJECT helo address on our blocklist\n',
  };
  for (const [f, t] of Object.entries(files)) { writeFileSync(join(dir, f), t); chmodSync(join(dir, f), 0o644); }
  let master = '';
  for (const [name, o] of Object.entries(LISTENERS)) {
    pfPorts[name] = await freePort();
    master += `127.0.0.1:${pfPorts[name]} inet n - n - - smtpd${Object.entries(o).map(([k, v]) => ` -o ${k}=${v}`).join('')}\n`;
  }
  pf = await RealPostfix.start({
    // The harness turns client name lookups off; these tests need them (as Postfix's default).
    mainCf: `${SHARED(dir)}smtpd_peername_lookup = yes\n`,
    masterCf: master,
    resolvConf: `nameserver ${DNS_HOST}\noptions timeout:2 attempts:2\n`,
  });
  for (const [name, o] of Object.entries(LISTENERS)) ourPorts[name] = await startOurs(name, o);
});

after(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
  await pf?.stop();
  await dns?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Case { from: string; helo: string; sender: string; rcpt: string }

/** python smtplib: each case's EHLO, MAIL and RCPT replies ("code text"). */
async function dialogue(port: number, cases: Case[]): Promise<string[][]> {
  const py = `
import smtplib, sys, json
out = []
for c in json.loads(sys.argv[2]):
    r = []
    try:
        s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname=c["helo"], source_address=(c["from"], 0), timeout=60)
        code, msg = s.ehlo()
        r.append("%d" % code)
        code, msg = s.mail(c["sender"])
        r.append("%d %s" % (code, msg.decode()))
        code, msg = s.rcpt(c["rcpt"])
        r.append("%d %s" % (code, msg.decode()))
        s.quit()
    except smtplib.SMTPServerDisconnected as e:
        r.append("(disconnected)")
    except smtplib.SMTPConnectError as e:
        r.append("connect %d %s" % (e.smtp_code, e.smtp_error.decode()))
    out.append(r)
print(json.dumps(out))
`;
  const { stdout } = await run('python3', ['-c', py, String(port), JSON.stringify(cases)], { timeout: 180_000 });
  return JSON.parse(stdout) as string[][];
}

const c = (from: string, helo: string, sender: string, rcpt = 'user@good.test'): Case => ({ from, helo, sender, rcpt });
const LONG = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.${'e'.repeat(40)}.test`;

const CASES: [string, Case][] = [
  ['all pass', c('127.0.0.2', 'good.helo.test', 'ok@good.test')],
  ['reject_rbl_client', c('127.0.0.5', 'good.helo.test', 'ok@good.test')],
  ['permit_dnswl_client before an RBL listing', c('127.0.0.6', 'good.helo.test', 'ok@good.test')],
  ['reject_rhsbl_helo', c('127.0.0.2', 'spam.test', 'ok@good.test')],
  ['reject_rhsbl_sender', c('127.0.0.2', 'good.helo.test', 'x@spam.test')],
  ['reject_unknown_helo_hostname', c('127.0.0.2', 'no.such.test', 'ok@good.test')],
  ['reject_unknown_sender_domain NXDOMAIN', c('127.0.0.2', 'good.helo.test', 'x@nowhere.test')],
  ['reject_unknown_sender_domain MX only', c('127.0.0.2', 'good.helo.test', 'x@mxonly.test')],
  ['reject_unknown_sender_domain null MX', c('127.0.0.2', 'good.helo.test', 'x@nullmx.test')],
  ['reject_unknown_sender_domain SERVFAIL', c('127.0.0.2', 'good.helo.test', 'x@fail.test')],
  ['reject_unknown_recipient_domain', c('127.0.0.2', 'good.helo.test', 'ok@good.test', 'y@nowhere.test')],
  ['check_sender_mx_access', c('127.0.0.2', 'good.helo.test', 'x@mxbad.test')],
  ['check_sender_ns_access', c('127.0.0.2', 'good.helo.test', 'x@nsbad.test')],
  ['check_helo_a_access', c('127.0.0.2', 'ahelo.test', 'ok@good.test')],
  ['hostile: 300-character HELO', c('127.0.0.2', LONG, 'ok@good.test')],
  ['hostile: 300-character sender domain', c('127.0.0.2', 'good.helo.test', `x@${LONG}`)],
];

test('DNS-based restrictions: the same replies as Postfix 3.7 against the same DNS data', { skip: skip ?? false }, async (t) => {
  if (skip) { t.skip(skip); return; }
  const cases = CASES.map(([, x]) => x);
  const theirs = await dialogue(pfPorts.main!, cases);
  const ours = await dialogue(ourPorts.main!, cases);
  for (let i = 0; i < CASES.length; i++) assert.deepEqual(ours[i], theirs[i], CASES[i]![0]);
  assert.match(ours[1]![2]!, /^554 5\.7\.1 Service unavailable; Client host \[127\.0\.0\.5\] blocked using rbl\.test; listed for testing$/);
  assert.match(ours[2]![2]!, /^250 /);
  assert.ok(dns!.queries.some((q) => q.startsWith('6.0.0.127.dnswl.test')), 'the DNS server was asked');
});

test('reject_unknown_client_hostname for a client without a PTR record, as Postfix', { skip: skip ?? false }, async (t) => {
  if (skip) { t.skip(skip); return; }
  const cases = [c('127.0.0.4', 'good.helo.test', 'ok@good.test')];
  const theirs = await dialogue(pfPorts.unknownclient!, cases);
  const ours = await dialogue(ourPorts.unknownclient!, cases);
  assert.deepEqual(ours, theirs);
  assert.match(ours[0]![2]!, /^450 4\.7\.25 Client host rejected: cannot find your hostname, \[127\.0\.0\.4\]$/);
});
