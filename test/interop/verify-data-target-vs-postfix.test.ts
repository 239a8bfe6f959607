/**
 * smtp_address_verify_target = data (Postfix smtp_proto.c SMTP_VRFY_TGT_DATA): probes go on to
 * the DATA command, for next hops that refuse recipients only after DATA. The whole Postern
 * system and real Postfix 3.7, with the same main.cf lines, probe the same far side: a real
 * Postfix smtpd that knows known@far.test and late@far.test (relay_recipient_maps) but refuses
 * DATA for late@far.test (smtpd_data_restrictions = check_recipient_access), and refuses
 * unknown@far.test at RCPT. Compared, reply by reply (python smtplib), once the probes finished:
 * known@ is deliverable (250), late@ undeliverable "... (in reply to DATA command)", unknown@
 * undeliverable at RCPT. The same far side probed with the default target (rcpt) finds late@
 * deliverable (Postern only). Probes never send the message: the far side logs no queued mail.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { freePort } from '../harness/free-port.ts';
import { rcptRepliesFrom } from '../harness/smtp-rcpt-py.ts';

const skip = RealPostfix.unavailable();
let far: RealPostfix | undefined;
let farPort = 0;

const MAIN = (target: string) => `
relay_domains = far.test
transport_maps = inline:{ far.test=smtp:[127.0.0.1]:${farPort} }
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = reject_unverified_recipient
address_verify_poll_count = 8
address_verify_poll_delay = 1s
smtp_address_verify_target = ${target}
`;

before(async () => {
  if (skip) return;
  farPort = await freePort();
  far = await RealPostfix.start({
    mainCf: [
      'relay_domains = far.test',
      'relay_recipient_maps = inline:{ known@far.test=x, late@far.test=x }',
      'smtpd_relay_restrictions = reject_unauth_destination',
      'smtpd_data_restrictions = check_recipient_access inline:{ {late@far.test=REJECT late rejection} }',
      // Mail that gets through would be relayed nowhere: keep it in the hold queue.
      'smtpd_end_of_data_restrictions = check_client_access inline:{ 127.0.0.1=HOLD }',
      '',
    ].join('\n'),
    masterCf: `127.0.0.1:${farPort} inet n - n - - smtpd`,
  });
});
after(async () => { await far?.stop(); });

const ADDRS = ['known@far.test', 'late@far.test', 'unknown@far.test'];

function rcpt(port: number): Promise<string[]> {
  return rcptRepliesFrom(port, 'sender@example.org', ADDRS);
}

async function probed(port: number, log: () => string): Promise<string[]> {
  await rcpt(port);
  const end = Date.now() + 60_000;
  while (!ADDRS.every((a) => new RegExp(`to=<${a.replace(/[.@]/g, '\\$&')}>.*status=(deliverable|undeliverable)`).test(log()))) {
    assert.ok(Date.now() < end, `probes did not finish:\n${log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return rcpt(port);
}

test('smtp_address_verify_target = data: a recipient refused at DATA is undeliverable, as Postfix; nothing is sent', { skip }, async () => {
  const port = await freePort();
  const pf = await RealPostfix.start({ mainCf: MAIN('data'), masterCf: `127.0.0.1:${port} inet n - n - - smtpd` });
  let theirs: string[];
  try { theirs = await probed(port, () => pf.log()); } finally { await pf.stop(); }
  const sys = await PosternSystem.start();
  try {
    appendFileSync(join(sys.configDir, 'main.cf'), MAIN('data'));
    await sys.stop();
    await PosternSystem.start(sys);
    const ours = await probed(sys.ports.smtp, () => sys.log);
    assert.deepEqual(ours, theirs);
    assert.equal(ours[0], '250 2.1.5 Ok');
    assert.match(ours[1]!, /^450 4\.1\.1 <late@far\.test>: Recipient address rejected: unverified address: host 127\.0\.0\.1\[127\.0\.0\.1\] said: 5\d\d 5\.7\.1 <late@far\.test>: Recipient address rejected: late rejection \(in reply to DATA command\)$/);
    assert.match(ours[2]!, /in reply to RCPT TO command\)$/);
    assert.match(sys.log, /to=<known@far\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*dsn=2\.0\.0, status=deliverable \(354 /);
  } finally {
    await sys.destroy();
  }
  // The far side never received a message: every probe stopped at DATA.
  assert.doesNotMatch(far!.log(), /: (from=<[^>]*>, size=|hold: )/);
  assert.match(far!.log(), /lost connection after DATA/);

  // The default target (rcpt) cannot see the late refusal.
  const sys2 = await PosternSystem.start();
  try {
    appendFileSync(join(sys2.configDir, 'main.cf'), MAIN('rcpt'));
    await sys2.stop();
    await PosternSystem.start(sys2);
    const ours = await probed(sys2.ports.smtp, () => sys2.log);
    assert.deepEqual(ours.slice(0, 2), ['250 2.1.5 Ok', '250 2.1.5 Ok']);
  } finally {
    await sys2.destroy();
  }
});
