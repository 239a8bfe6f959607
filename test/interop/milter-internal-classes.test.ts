/**
 * internal_mail_filter_classes (Postfix int_filt.c): whether mail the system makes itself —
 * here a non-delivery notice from bounce(8) — goes through non_smtpd_milters. Real Postfix 3.7
 * and the whole Postern system, with the same main.cf lines, each get a message with their own
 * sendmail(1) for an unknown local user; the bounce goes back to the sender. The python3-milter
 * test milter records the envelope senders of the messages it is shown: with the default
 * (empty) only the submitted message; with `internal_mail_filter_classes = bounce` the bounce
 * (MAIL FROM:<>) too, and a header the milter adds ends up in the bounce as delivered.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { TestMilter, type MilterEvent } from '../harness/milter-kit.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const skip = RealPostfix.unavailable() ?? TestMilter.unavailable();
const work = mkdtempSync(join(tmpdir(), 'milter-int-'));
chmodSync(work, 0o777);
after(() => rmSync(work, { recursive: true, force: true }));

const PLAN = { edits: [['addheader', 'X-Milter-Saw', 'yes']] };

const MAIN = (dir: string, milter: string, classes: string) => `
myhostname = mx.example.test
mydestination = local.test
myorigin = local.test
alias_maps = inline:{ {rep=${dir}/mbox} }
non_smtpd_milters = ${milter}
internal_mail_filter_classes = ${classes}
`;

const MESSAGE = 'From: rep@local.test\nTo: nosuch@local.test\nSubject: to nobody\n\nhello\n';

function senders(ev: MilterEvent[]): string[] {
  return ev.filter((e) => e.ev === 'mail').map((e) => String(e.addr)).sort();
}

async function waitBounce(mbox: string, log: () => string): Promise<string> {
  const end = Date.now() + 60_000;
  while (!existsSync(mbox) || !readFileSync(mbox, 'utf8').includes('Undelivered Mail Returned to Sender')) {
    assert.ok(Date.now() < end, `no bounce in ${mbox}:\n${log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return readFileSync(mbox, 'utf8');
}

/** The bounce's own header block (not the returned message's, which the milter edited too). */
function bounceHeaders(mbox: string): string {
  const at = mbox.lastIndexOf('\nFrom MAILER-DAEMON');
  const b = mbox.slice(at < 0 ? 0 : at + 1);
  return b.slice(0, b.indexOf('\n\n'));
}

/** One run: the milter's senders, and whether the bounce carries the milter's header. */
async function runPostfix(classes: string): Promise<{ senders: string[]; edited: boolean }> {
  const dir = join(work, `pf-${classes || 'none'}`);
  mkdirSync(dir, { mode: 0o777 }); chmodSync(dir, 0o777);
  const m = await TestMilter.start(PLAN);
  const pf = await RealPostfix.start({ mainCf: MAIN(dir, m.spec, classes), masterCf: '' });
  try {
    const r = spawnSync('/usr/sbin/sendmail', ['-C', pf.configDir, '-f', 'rep@local.test', 'nosuch@local.test'], { input: MESSAGE });
    assert.equal(r.status, 0, String(r.stderr));
    const bounce = await waitBounce(join(dir, 'mbox'), () => pf.log());
    await new Promise((res) => setTimeout(res, 500));
    return { senders: senders(m.events()), edited: /^X-Milter-Saw: yes$/m.test(bounceHeaders(bounce)) };
  } finally { await pf.stop(); await m.stop(); }
}

async function runPostern(classes: string): Promise<{ senders: string[]; edited: boolean }> {
  const dir = join(work, `pn-${classes || 'none'}`);
  mkdirSync(dir, { mode: 0o777 }); chmodSync(dir, 0o777);
  const m = await TestMilter.start(PLAN);
  const sys = await PosternSystem.start();
  try {
    appendFileSync(join(sys.configDir, 'main.cf'), MAIN(dir, m.spec, classes));
    await sys.stop();
    await PosternSystem.start(sys);
    const r = spawnSync(join(ROOT, 'bin', 'sendmail'), ['-f', 'rep@local.test', 'nosuch@local.test'], { input: MESSAGE, env: { ...process.env, MAIL_CONFIG: sys.configDir } });
    assert.equal(r.status, 0, String(r.stderr));
    const bounce = await waitBounce(join(dir, 'mbox'), () => sys.log);
    await new Promise((res) => setTimeout(res, 500));
    return { senders: senders(m.events()), edited: /^X-Milter-Saw: yes$/m.test(bounceHeaders(bounce)) };
  } finally { await sys.destroy(); await m.stop(); }
}

test('internal_mail_filter_classes: bounces reach non_smtpd_milters only with "bounce", as in Postfix', { skip }, async () => {
  const seen: Record<string, { senders: string[]; edited: boolean }> = {};
  for (const classes of ['', 'bounce']) {
    const theirs = await runPostfix(classes);
    const ours = await runPostern(classes);
    assert.deepEqual(ours, theirs, `internal_mail_filter_classes = ${classes}`);
    seen[classes] = ours;
  }
  assert.deepEqual(seen[''], { senders: ['rep@local.test'], edited: false });
  assert.deepEqual(seen['bounce'], { senders: ['', 'rep@local.test'], edited: true });
});
