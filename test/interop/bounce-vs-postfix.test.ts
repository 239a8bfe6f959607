/**
 * bounce(8) notices (Postfix bounce_notify_service.c, bounce_warn_service.c,
 * bounce_trace_service.c, bounce_notify_util.c) from the whole Postern system and from real
 * Postfix 3.7 with the same main.cf lines, compared byte for byte as the recipient's mailbox
 * holds them (every header in order, the MIME structure, each part), after replacing queue ids,
 * dates and the MIME boundary's time stamp (test/harness/notice-normalise.ts). Each side's own
 * sendmail submits, from a sender whose alias writes to its own file:
 *   1. a non-delivery notice for an unknown local recipient (RET=FULL by default);
 *   2. one for an unknown virtual recipient with RET=HDRS;
 *   3. one for a remote refusal (a real Postfix smtpd answers RCPT with a long three-line 550
 *      via smtpd_reject_footer, so the Diagnostic-Code and the text paragraph fold), with an
 *      8-bit original (-B 8BITMIME,
 *      a UTF-8 Subject and body) and RET=FULL;
 *   4. a success notice (NOTIFY=SUCCESS) for a local delivery;
 *   5. a delay warning (delay_warning_time = 1s; the next hop answers 450);
 *   6, 7. non-delivery notices for messages sent through each side's smtpd with MAIL FROM ...
 *      SMTPUTF8 (Python smtplib), RET=HDRS and RET=FULL (RFC 6533 message/global types);
 * and the postmaster copies of the failures and the delay, and the 2bounce copy of a message from
 * the null sender that bounces (notify_classes = bounce, delay, 2bounce).
 *   8. a hostile original (a NUL, a 5000-byte line, a multipart without a usable boundary,
 *      never closed): the notice must still be complete, and the same as Postfix's.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { freePort } from '../harness/free-port.ts';
import { normaliseNotice, splitMbox, waitNotices } from '../harness/notice-normalise.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const skip = RealPostfix.unavailable();
let work = '';
let far: RealPostfix | undefined;
let farPort = 0;

const LONG = '550 5.1.1 This mailbox has been closed by its owner and mail to it is refused; '
  + 'please remove the address from your lists and contact the recipient by some other means '
  + 'if the matter is urgent (policy reference ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789)';

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'bounce-vs-pf-'));
  chmodSync(work, 0o777);
  if (skip) return;
  farPort = await freePort();
  far = await RealPostfix.start({
    mainCf: 'relay_domains = far.test\n'
      + `smtpd_recipient_restrictions = check_recipient_access inline:{ {unknown@far.test=${LONG}}, {later@far.test=450 4.2.0 try again later} }, permit_mynetworks\n`
      + 'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n'
      // A multi-line reply (Postfix smtpd turns \n in the footer into more reply lines).
      + 'smtpd_reject_footer = \\nFor assistance see https://help.far.test/refused or write to\\npostmaster at far dot test quoting this reply\n',
    masterCf: `127.0.0.1:${farPort} inet n - n - - smtpd`,
  });
});
after(async () => {
  await far?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const SENDERS = ['s1', 's2', 's3', 's4', 's5', 's6', 's7', 's8'];
const MAIN = (dir: string) => `
myhostname = mx.example.test
mail_name = Postfix
mydestination = local.test
myorigin = local.test
alias_maps = inline:{ ${SENDERS.map((s) => `{${s}=${dir}/${s}}`).join(', ')}, {postmaster=${dir}/pm} }
mail_spool_directory = ${dir}/spool
virtual_mailbox_domains = virt.test
virtual_mailbox_maps = inline:{ {v@virt.test=virt.test/v/} }
virtual_mailbox_base = ${dir}/vmail
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
transport_maps = inline:{ far.test=smtp:[127.0.0.1]:${farPort} }
notify_classes = bounce, delay, 2bounce
local_recipient_maps =
delay_warning_time = 1s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
# Postern's cleanup does not yet flag 8-bit headers from sendmail as SMTPUTF8 (docs/bounce.md).
smtputf8_autodetect_classes = verify
`;

const ASCII = 'From: Sender <SENDER@local.test>\nTo: RCPT\nSubject: test SENDER\nMessage-ID: <SENDER@local.test>\n\nHello,\nthis is the body.\n';
const EIGHT = 'From: Sender <SENDER@local.test>\nTo: RCPT\nSubject: Grüße aus Köln\nMessage-ID: <SENDER@local.test>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nSchöne Grüße — ünïcødé body.\n';

/** Hostile: a NUL, a 5000-byte line, a multipart without a usable boundary, never closed. */
const HOSTILE = 'From: SENDER@local.test\nTo: RCPT\nSubject: hostile\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\n\n--\nContent-Type: text/plain\n\nnul:\0:here\n' + 'L'.repeat(5000) + '\n--never-closed\n';

interface Case { sender: string; rcpt: string; args: string[]; body: string }
const CASES: Case[] = [
  { sender: 's1', rcpt: 'nosuch@local.test', args: [], body: ASCII },
  { sender: 's2', rcpt: 'nouser@virt.test', args: ['-R', 'hdrs'], body: ASCII },
  { sender: 's3', rcpt: 'unknown@far.test', args: ['-R', 'full', '-B', '8BITMIME'], body: EIGHT },
  { sender: 's4', rcpt: 'nobody@local.test', args: ['-N', 'success'], body: ASCII },
  { sender: 's5', rcpt: 'later@far.test', args: [], body: ASCII },
  { sender: 's8', rcpt: 'nosuch@local.test', args: [], body: HOSTILE },
];
/** Through SMTP with MAIL FROM ... SMTPUTF8 (RFC 6531): the RFC 6533 notice types. */
const UTF8_CASES = [
  { sender: 's6', rcpt: 'nosuch@local.test', opts: ['SMTPUTF8', 'BODY=8BITMIME', 'RET=HDRS'] },
  { sender: 's7', rcpt: 'nosuch@local.test', opts: ['SMTPUTF8', 'BODY=8BITMIME'] },
];

function smtpUtf8(port: number, c: { sender: string; rcpt: string; opts: string[] }): void {
  const py = 'import smtplib, sys\n'
    + 'c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)\n'
    + 'c.ehlo("client.example.org")\n'
    + 'c.sendmail(sys.argv[2], [sys.argv[3]], sys.stdin.buffer.read(), mail_options=sys.argv[4].split(","))\n'
    + 'c.quit()\n';
  const body = EIGHT.replaceAll('SENDER', c.sender).replace('RCPT', c.rcpt).replace(/\n/g, '\r\n');
  const r = spawnSync('python3', ['-c', py, String(port), `${c.sender}@local.test`, c.rcpt, c.opts.join(',')], { input: body, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

function setupDir(name: string): string {
  const d = join(work, name);
  for (const x of [d, join(d, 'spool'), join(d, 'vmail')]) { mkdirSync(x, { recursive: true }); chmodSync(x, 0o777); }
  return d;
}

/** normaliseNotice(), and the client's name in smtpd's Received: (Postfix here: smtpd_peername_lookup = no). */
function norm(m: string): string {
  return normaliseNotice(m, { from: 'start' }).replace(/\((?:localhost|unknown) \[127\.0\.0\.1\]\)/g, '(CLIENT [127.0.0.1])');
}

type Sendmail = (args: string[], input: string) => { status: number | null; stderr: string };

/** Submit every case, then collect the notices: one per sender file, three postmaster copies. */
async function run(dir: string, sm: Sendmail, smtpPort: number, log: () => string): Promise<Map<string, string>> {
  for (const c of CASES) {
    const r = sm(['-f', `${c.sender}@local.test`, ...c.args, c.rcpt], c.body.replaceAll('SENDER', c.sender).replace('RCPT', c.rcpt));
    assert.equal(r.status, 0, r.stderr);
  }
  for (const c of UTF8_CASES) smtpUtf8(smtpPort, c);
  // A bounce that bounces (the null sender): only the 2bounce copy to the postmaster.
  const nb = sm(['-f', '<>', 'nosuch@local.test'], ASCII.replaceAll('SENDER', 'null').replace('RCPT', 'nosuch@local.test'));
  assert.equal(nb.status, 0, nb.stderr);
  const out = new Map<string, string>();
  for (const s of SENDERS) {
    const msgs = splitMbox(await waitNotices(join(dir, s), 1, log, 150_000));
    out.set(s, norm(msgs[0]!));
  }
  // Postmaster copies: six failures (s1, s2, s3, s6, s7, s8), one delay (s5), one 2bounce.
  const pm = splitMbox(await waitNotices(join(dir, 'pm'), 8, log, 150_000)).map(norm).sort();
  pm.forEach((m, i) => out.set(`pm${i}`, m));
  return out;
}

test('bounce notices: the same bytes as Postfix 3.7 (failure local/virtual/remote, RET=HDRS/FULL, 8-bit, success, delay, postmaster copies)', { skip, timeout: 600_000 }, async () => {
  const pfDir = setupDir('pf');
  const pfSmtp = await freePort();
  const pf = await RealPostfix.start({ mainCf: MAIN(pfDir), masterCf: `127.0.0.1:${pfSmtp} inet n - n - - smtpd` });
  let theirs: Map<string, string>;
  try {
    theirs = await run(pfDir, (args, input) => spawnSync('/usr/sbin/sendmail', ['-C', pf.configDir, ...args], { input, encoding: 'utf8' }), pfSmtp, () => pf.log());
  } finally { await pf.stop(); }

  const pnDir = setupDir('pn');
  const sys = await PosternSystem.start();
  try {
    appendFileSync(join(sys.configDir, 'main.cf'), MAIN(pnDir));
    await sys.stop();
    await PosternSystem.start(sys);
    const ours = await run(pnDir, (args, input) => spawnSync(join(ROOT, 'bin', 'sendmail'), args, { input, encoding: 'utf8', env: { ...process.env, MAIL_CONFIG: sys.configDir } }), sys.ports.smtp, () => sys.log);
    for (const [k, v] of theirs) assert.equal(ours.get(k), v, `notice ${k} differs`);
    // What the comparison covers, stated once so a change on both sides is still noticed.
    assert.match(theirs.get('s3')!, /\nDiagnostic-Code: smtp; 550-5\.1\.1 .*\n    /, 'a multi-line reply, folded');
    assert.match(theirs.get('s4')!, /\nAction: delivered\n/);
    assert.match(theirs.get('s5')!, /\nAction: delayed\n/);
    assert.match(theirs.get('s6')!, /\nContent-Type: message\/global-headers\n/);
    assert.match(theirs.get('s7')!, /\nContent-Type: message\/global\n/);
    assert.ok(ours.get('s8')!.includes('nul:') && ours.get('s8')!.includes('L'.repeat(1000)), 'the hostile original is returned');
    assert.match(ours.get('s8')!, /\n--QID\d+\.TIME\/mx\.example\.test--\n/, 'a complete notice');
  } finally {
    await sys.destroy();
  }
});
