/**
 * Address verification probes answered by local(8) and pipe(8) (Postfix local/alias.c,
 * mailbox.c, indirect.c, unknown.c, pipe.c: "Don't deliver trace-only requests"), on the whole
 * Postern system and on real Postfix 3.7 with the same main.cf lines: a UNIX account ("delivers
 * to mailbox"), an alias to a local name and one to a remote address ("aliased to ..."), an
 * unknown local name (undeliverable: `unknown user: "name"`, with local_recipient_maps empty
 * so smtpd lets it reach the probe), an address whose transport is a pipe(8) entry ("delivers
 * to command: /bin/cat"). Compared: each RCPT reply (python smtplib), asked once the probes
 * have finished, and each probe's logged status and text. Nothing is delivered: no mailbox file
 * appears and the pipe command never runs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { freePort } from '../harness/free-port.ts';
import { rcptRepliesFrom } from '../harness/smtp-rcpt-py.ts';

const skip = RealPostfix.unavailable();
let work = '';

before(() => {
  work = mkdtempSync(join(tmpdir(), 'verify-local-'));
  chmodSync(work, 0o777);
});
after(() => { if (work) rmSync(work, { recursive: true, force: true }); });

const MAIN = (spool: string) => `
mydestination = local.test
alias_maps = inline:{ {alias=nobody}, {remote=someone@remote.test} }
local_recipient_maps =
mail_spool_directory = ${spool}
relay_domains = pipe.test
transport_maps = inline:{ pipe.test=mypipe }
smtpd_recipient_restrictions = reject_unverified_recipient
address_verify_poll_count = 8
address_verify_poll_delay = 1s
`;
/** A pipe that would leave a mark if it ever ran. */
const PIPE = (marker: string) => `mypipe unix - n n - - pipe user=nobody argv=/bin/touch ${marker}`;

const ADDRS = ['nobody@local.test', 'alias@local.test', 'remote@local.test', 'nosuch@local.test', 'x@pipe.test'];

function rcpt(port: number, rcpts: string[]): Promise<string[]> {
  return rcptRepliesFrom(port, 'sender@example.org', rcpts);
}

/** Each address's probe result in a log: "deliverable (delivers to mailbox)". */
function statuses(log: string): string[] {
  return ADDRS.map((a) => {
    const m = new RegExp(`to=<${a.replace(/[.@]/g, '\\$&')}>, .*status=((?:un)?deliverable|deferred) \\((.*)\\)`).exec(log);
    return m ? `${m[1]} (${m[2]})` : 'none';
  });
}

async function probed(port: number, log: () => string): Promise<void> {
  await rcpt(port, ADDRS);
  const end = Date.now() + 60_000;
  while (statuses(log()).includes('none')) {
    assert.ok(Date.now() < end, `probes did not finish:\n${log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('local(8) and pipe(8) answer probes as Postfix: mailbox, aliases, unknown user, pipe command; nothing delivered', { skip }, async () => {
  const port = await freePort();
  const theirSpool = join(work, 'pf-spool');
  const theirMark = join(work, 'pf-ran');
  mkdirSync(theirSpool, { mode: 0o1777 });
  const pf = await RealPostfix.start({ mainCf: MAIN(theirSpool), masterCf: `127.0.0.1:${port} inet n - n - - smtpd\n${PIPE(theirMark)}` });
  let theirs: string[];
  let theirStatus: string[];
  try {
    await probed(port, () => pf.log());
    theirs = await rcpt(port, ADDRS);
    theirStatus = statuses(pf.log());
  } finally { await pf.stop(); }
  assert.ok(!existsSync(theirMark), 'Postfix ran no command');

  const ourSpool = join(work, 'pn-spool');
  const ourMark = join(work, 'pn-ran');
  mkdirSync(ourSpool, { mode: 0o1777 });
  const sys = await PosternSystem.start();
  try {
    appendFileSync(join(sys.configDir, 'main.cf'), MAIN(ourSpool));
    appendFileSync(join(sys.configDir, 'master.cf'), PIPE(ourMark) + '\n');
    await sys.stop();
    await PosternSystem.start(sys);
    await probed(sys.ports.smtp, () => sys.log);
    const ours = await rcpt(sys.ports.smtp, ADDRS);
    assert.deepEqual(statuses(sys.log), theirStatus, 'the probes\' logged results');
    assert.deepEqual(ours, theirs, 'the RCPT replies');
    assert.deepEqual(theirStatus, [
      'deliverable (delivers to mailbox)',
      'deliverable (aliased to nobody)',
      'deliverable (aliased to someone@remote.test)',
      'undeliverable (unknown user: "nosuch")',
      'deliverable (delivers to command: /bin/touch)',
    ]);
    assert.equal(ours[3], '450 4.1.1 <nosuch@local.test>: Recipient address rejected: unverified address: unknown user: "nosuch"');
    assert.deepEqual(readdirSync(ourSpool), [], 'no mailbox written');
    assert.ok(!existsSync(ourMark), 'the pipe command never ran');
    assert.doesNotMatch((await sys.cli('queue', 'list')).stdout, /local\.test|pipe\.test|remote\.test/, 'probes leave nothing queued (the remote alias is not forwarded)');
  } finally {
    await sys.destroy();
  }
});
