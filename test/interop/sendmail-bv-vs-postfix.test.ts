/**
 * `sendmail -bv` (Postfix sendmail.c with DEL_REQ_FLAG_USR_VRFY; bounce_trace_service.c) on the
 * whole Postern system and on real Postfix 3.7 with the same main.cf lines: each one's own
 * sendmail verifies a UNIX account (local: "delivers to mailbox"), an alias of it (expanded:
 * "<nobody@local.test> (expanded from <alias@local.test>)"), an unknown local name, a virtual
 * mailbox ("delivers to maildir"), an unknown virtual address, and two remote addresses the
 * next hop (a third, real Postfix smtpd) accepts or refuses at RCPT, and mails the "Mail Delivery
 * Status Report" to the sender, whose alias writes it to a file. Compared: sendmail's output
 * and exit status, and the report byte for byte from its Subject on, after replacing queue ids,
 * dates and the MIME boundary's time stamp, and putting the per-recipient paragraphs in one
 * order (Postfix writes them in the order its agents finish, which varies from run to run).
 * Nothing is delivered: no mailbox file appears. Hostile input: a recipient with a CR LF and a
 * header in it, and a local user's attempt to submit an MTA probe (trace_flags=256) through
 * the maildrop (dropped by pickup, as Postfix's postdrop drops it).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { postAttrAllowed } from '../../src/global/maildrop.ts';
import { freePort } from '../harness/free-port.ts';
import { normaliseNotice, waitNotices } from '../harness/notice-normalise.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const skip = RealPostfix.unavailable();
let work = '';
let far: RealPostfix | undefined;
let farPort = 0;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'sendmail-bv-'));
  chmodSync(work, 0o777);
  if (skip) return;
  farPort = await freePort();
  far = await RealPostfix.start({
    mainCf: 'relay_domains = far.test\nrelay_recipient_maps = inline:{ known@far.test=x }\nsmtpd_relay_restrictions = reject_unauth_destination\n',
    masterCf: `127.0.0.1:${farPort} inet n - n - - smtpd`,
  });
});
after(async () => {
  await far?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const MAIN = (dir: string) => `
myhostname = mx.example.test
mail_name = Postfix
mydestination = local.test
myorigin = local.test
alias_maps = inline:{ {alias=nobody}, {rep=${dir}/report} }
mail_spool_directory = ${dir}/spool
virtual_mailbox_domains = virt.test
virtual_mailbox_maps = inline:{ {v@virt.test=virt.test/v/} }
virtual_mailbox_base = ${dir}/vmail
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
transport_maps = inline:{ far.test=smtp:[127.0.0.1]:${farPort} }
`;

const RCPTS = ['nobody@local.test', 'v@virt.test', 'nosuch@local.test', 'alias@local.test', 'nouser@virt.test', 'known@far.test', 'unknown@far.test'];

function setupDir(name: string): string {
  const d = join(work, name);
  for (const x of [d, join(d, 'spool'), join(d, 'vmail')]) { mkdirSync(x, { recursive: true }); chmodSync(x, 0o777); }
  return d;
}

test('sendmail -bv: the same output and the same Mail Delivery Status Report as Postfix; nothing delivered', { skip }, async () => {
  const pfDir = setupDir('pf');
  const pf = await RealPostfix.start({ mainCf: MAIN(pfDir), masterCf: '' });
  let theirOut: { status: number | null; stdout: string; stderr: string };
  let theirs: string;
  try {
    const r = spawnSync('/usr/sbin/sendmail', ['-C', pf.configDir, '-f', 'rep@local.test', '-bv', ...RCPTS], { input: '', encoding: 'utf8' });
    theirOut = { status: r.status, stdout: r.stdout, stderr: r.stderr };
    theirs = normaliseNotice(await waitNotices(join(pfDir, 'report'), 1, () => pf.log()));
  } finally { await pf.stop(); }

  const pnDir = setupDir('pn');
  const sys = await PosternSystem.start();
  try {
    appendFileSync(join(sys.configDir, 'main.cf'), MAIN(pnDir));
    await sys.stop();
    await PosternSystem.start(sys);
    const sm = (args: string[], input = '') => spawnSync(join(ROOT, 'bin', 'sendmail'), args, { input, encoding: 'utf8', env: { ...process.env, MAIL_CONFIG: sys.configDir } });
    const r = sm(['-f', 'rep@local.test', '-bv', ...RCPTS]);
    assert.deepEqual({ status: r.status, stdout: r.stdout, stderr: r.stderr }, theirOut);
    assert.equal(r.stdout, 'Mail Delivery Status Report will be mailed to <rep@local.test>.\n');
    const ours = normaliseNotice(await waitNotices(join(pnDir, 'report'), 1, () => sys.log));
    assert.equal(ours, theirs);
    assert.match(ours, /\n<nobody@local\.test> \(expanded from <alias@local\.test>\): delivery via local:\n    delivers to mailbox\n/);
    assert.match(ours, /\nAction: undeliverable\nStatus: 5\.1\.1\nDiagnostic-Code: X-Postfix; delivery via local: unknown user: "nosuch"\n/);
    assert.deepEqual(readdirSync(join(pnDir, 'spool')), [], 'no mailbox written');
    assert.deepEqual(readdirSync(join(pnDir, 'vmail')), [], 'no maildir written');
    await sys.waitLog(/to=<nobody@local\.test>, orig_to=<alias@local\.test>, relay=local, .*status=deliverable \(delivers to mailbox\)/);
    await sys.waitLog(/: sender delivery status notification: /);

    // Hostile: usage errors as Postfix's.
    assert.equal(sm(['-bv', '-t']).status, 64);
    assert.equal(sm(['-bv', '-N', 'never', 'x@local.test']).status, 64);
    assert.equal(sm(['-bv']).status, 64);
    // A CR LF in a recipient cannot add a header to the request.
    const evil = sm(['-f', 'rep@local.test', '-bv', 'nobody@local.test\r\nX-Injected: yes']);
    assert.equal(evil.status, 0, evil.stderr);
    const end = Date.now() + 60_000;
    while (readFileSync(join(pnDir, 'report'), 'utf8').split('\nSubject: Mail Delivery Status Report\n').length < 3) {
      assert.ok(Date.now() < end, 'the second report did not arrive');
      await new Promise((res) => setTimeout(res, 200));
    }
    const second = readFileSync(join(pnDir, 'report'), 'utf8').split('\nSubject: Mail Delivery Status Report\n')[2]!;
    assert.doesNotMatch(second, /^X-Injected/m, 'no header injected');
    assert.match(second, /^To:\tnobody@local\.test  X-Injected: yes/m, "the whole argument stays in one header line");
    // A local user cannot queue an MTA probe (whose result would enter the verify cache).
    assert.equal(postAttrAllowed('trace_flags', '256'), false);
    assert.equal(postAttrAllowed('trace_flags', '768'), false);
    assert.equal(postAttrAllowed('trace_flags', '512'), true);
  } finally {
    await sys.destroy();
  }
});
