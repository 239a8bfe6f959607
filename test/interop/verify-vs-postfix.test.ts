/**
 * reject_unverified_recipient (ADDRESS_VERIFICATION_README) on the whole Postern system and on
 * real Postfix with the same main.cf lines, both probing the same far side: a real Postfix smtpd
 * that knows one address of far.test (relay_recipient_maps) and refuses the others with 550, and
 * a destination where nothing listens. Compared, reply by reply: a known address (250), an
 * unknown one (450 4.1.1 ... unverified address: host ... said: 550 ...), an unreachable one
 * (450 4.1.1 ... unverified address: connect to ...: Connection refused), each asked twice once
 * the probes have finished (answers from the cache; a first round started the probes); the
 * same for reject_unverified_sender on a second listener. Probes are routed by
 * address_verify_transport_maps (mail itself would go to a closed port). Postern only: its cache
 * file holds the results, probes leave nothing queued, and hosted-domain addresses are answered
 * by virtual(8) without writing anything.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { freePort } from '../harness/free-port.ts';
import { rcptReplies, rcptRepliesFrom } from '../harness/smtp-rcpt-py.ts';

const skip = RealPostfix.unavailable();
let far: RealPostfix | undefined;
let farPort = 0;
let closedPort = 0;

const MAIN = () => `
relay_domains = far.test down.test
# Mail goes nowhere (the closed port); probes go to the far side: address_verify_transport_maps.
transport_maps = inline:{ far.test=smtp:[127.0.0.1]:${closedPort}, down.test=smtp:[127.0.0.1]:${closedPort} }
address_verify_transport_maps = inline:{ far.test=smtp:[127.0.0.1]:${farPort}, down.test=smtp:[127.0.0.1]:${closedPort} }
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = reject_unverified_recipient
address_verify_poll_count = 8
address_verify_poll_delay = 1s
smtp_connect_timeout = 5s
`;

before(async () => {
  if (skip) return;
  farPort = await freePort();
  closedPort = await freePort();
  far = await RealPostfix.start({
    mainCf: 'relay_domains = far.test\nrelay_recipient_maps = inline:{ known@far.test=x }\nsmtpd_relay_restrictions = reject_unauth_destination\n',
    masterCf: `127.0.0.1:${farPort} inet n - n - - smtpd`,
  });
});
after(async () => { await far?.stop(); });

function rcpt(port: number, rcpts: string[]): Promise<string[]> {
  return rcptRepliesFrom(port, 'sender@example.org', rcpts);
}

/** reject_unverified_sender: MAIL FROM each sender, the RCPT reply (smtpd_delay_reject). */
function senders(port: number, list: string[]): Promise<string[]> {
  return rcptReplies(port, list.map((s) => [s, 'known@far.test']));
}

/** A second listener that verifies senders (the cache is shared with the first). */
const SENDER_LISTENER = (port: number) => `127.0.0.1:${port} inet n - n - - smtpd -o smtpd_sender_restrictions=reject_unverified_sender -o smtpd_recipient_restrictions=permit_mynetworks`;

const ADDRS = ['known@far.test', 'unknown@far.test', 'x@down.test'];
const ASK = [...ADDRS, ...ADDRS];

/**
 * The first question starts the probes; wait until the log shows every probe's result, so that
 * the compared answers do not depend on how fast each server probes (the machine may be loaded).
 */
async function probed(port: number, log: () => string): Promise<void> {
  await rcpt(port, ADDRS);
  const end = Date.now() + 60_000;
  while (!ADDRS.every((a) => new RegExp(`to=<${a.replace(/[.@]/g, '\\$&')}>.*status=(deliverable|undeliverable|deferred)`).test(log()))) {
    assert.ok(Date.now() < end, `probes did not finish:\n${log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('reject_unverified_recipient and _sender: the same replies as Postfix for deliverable, undeliverable and unreachable addresses', { skip }, async () => {
  const port = await freePort();
  const sport = await freePort();
  const pf = await RealPostfix.start({ mainCf: MAIN(), masterCf: `127.0.0.1:${port} inet n - n - - smtpd\n${SENDER_LISTENER(sport)}` });
  let theirs: string[];
  let theirSenders: string[];
  try {
    await probed(port, () => pf.log());
    theirs = await rcpt(port, ASK);
    theirSenders = await senders(sport, ADDRS);
  } finally { await pf.stop(); }
  const sys = await PosternSystem.start();
  try {
    appendFileSync(join(sys.configDir, 'main.cf'), MAIN());
    const ourSport = await freePort();
    appendFileSync(join(sys.configDir, 'master.cf'), SENDER_LISTENER(ourSport) + '\n');
    // A restart, not a reload: every service (qmgr in its thread too) has the new main.cf.
    await sys.stop();
    await PosternSystem.start(sys);
    await probed(sys.ports.smtp, () => sys.log);
    const ours = await rcpt(sys.ports.smtp, ASK);
    assert.deepEqual(ours, theirs);
    const ourSenders = await senders(ourSport, ADDRS);
    assert.deepEqual(ourSenders, theirSenders, 'reject_unverified_sender');
    assert.match(ourSenders[1]!, /^450 4\.1\.7 <unknown@far\.test>: Sender address rejected: unverified address: host /);
    assert.equal(ours[0], '250 2.1.5 Ok');
    assert.equal(ours[1], '450 4.1.1 <unknown@far.test>: Recipient address rejected: unverified address: host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <unknown@far.test>: Recipient address rejected: User unknown in relay recipient table (in reply to RCPT TO command)');
    assert.match(ours[2]!, /^450 4\.1\.1 <x@down\.test>: Recipient address rejected: unverified address: connect to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: Connection refused$/);
    assert.match(sys.log, /to=<unknown@far\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=undeliverable/);
    assert.match(sys.log, /to=<known@far\.test>, relay=.*status=deliverable/);
    const cache = readFileSync(join(sys.configDir, 'data', 'lib', 'verify_cache.jsonl'), 'utf8');
    assert.match(cache, /"a":"unknown@far\.test","s":2/);
    assert.match(cache, /"a":"known@far\.test","s":0/);
    // Postern only: addresses of the hosted (virtual) domain, answered by virtual(8) in verify
    // mode: the user is looked up, nothing is written to the mailbox.
    await rcpt(sys.ports.smtp, ['postmaster@example.test', 'nobody@example.test']);
    await sys.waitLog(/to=<nobody@example\.test>, .*status=undeliverable \(unknown user: "nobody@example\.test"\)/);
    await sys.waitLog(/to=<postmaster@example\.test>, .*status=deliverable \(delivers to maildir\)/);
    const local = await rcpt(sys.ports.smtp, ['postmaster@example.test', 'nobody@example.test']);
    assert.deepEqual(local, ['250 2.1.5 Ok', '450 4.1.1 <nobody@example.test>: Recipient address rejected: unverified address: unknown user: "nobody@example.test"']);
    const newDir = join(sys.maildir('postmaster@example.test'), 'new');
    assert.ok(!existsSync(newDir) || readdirSync(newDir).every((f) => !readFileSync(join(newDir, f), 'utf8').includes('address verification probe')), 'a probe is never delivered');
    const q = (await sys.cli('queue', 'list'));
    assert.doesNotMatch(q.stdout, /far\.test|down\.test/, 'probes leave nothing in the queue');
  } finally {
    await sys.destroy();
  }
});
