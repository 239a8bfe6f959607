/**
 * Address verification over time (Postfix verify(8): address_verify_positive_refresh_time,
 * address_verify_negative_refresh_time; a failed probe never replaces a deliverable answer),
 * on the whole Postern system and on real Postfix 3.7 with the same short main.cf times. The
 * far side is a real Postfix smtpd that knows known@far.test and refuses unknown@far2.test
 * (550), on two ports so each address has its own next hop. The same RCPT rounds (python
 * smtplib) on both systems:
 *   A. far side up, once both probes finished: 250, and 450 "... said: 550 ...";
 *   B. far side stopped, after the refresh times passed: the old answers still (each query
 *      sends a refresh probe);
 *   C. once both refresh probes were deferred: known@ stays deliverable (250: the deferral is
 *      ignored), unknown@ now says what the last probe found ("connect to ...: Connection
 *      refused").
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
let portA = 0;
let portB = 0;

before(async () => {
  if (skip) return;
  portA = await freePort();
  portB = await freePort();
});

const MAIN = () => `
relay_domains = far.test far2.test
transport_maps = inline:{ far.test=smtp:[127.0.0.1]:${portA}, far2.test=smtp:[127.0.0.1]:${portB} }
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = reject_unverified_recipient
address_verify_poll_count = 8
address_verify_poll_delay = 1s
address_verify_positive_refresh_time = 2s
address_verify_negative_refresh_time = 2s
smtp_connect_timeout = 5s
`;

const ADDRS = ['known@far.test', 'unknown@far2.test'];

function startFar(): Promise<RealPostfix> {
  return RealPostfix.start({
    mainCf: 'relay_domains = far.test far2.test\nrelay_recipient_maps = inline:{ known@far.test=x }\nsmtpd_relay_restrictions = reject_unauth_destination\n',
    masterCf: `127.0.0.1:${portA} inet n - n - - smtpd\n127.0.0.1:${portB} inet n - n - - smtpd`,
  });
}

async function rcpt(port: number): Promise<string[]> {
  return (await rcptRepliesFrom(port, 'sender@example.org', ADDRS)).map((l) => l.replace(/:\d+: Connection refused/, ':PORT: Connection refused'));
}

/** How many probe results for each address the log shows. */
function results(log: string): number[] {
  return ADDRS.map((a) => log.split('\n').filter((l) => l.includes(`to=<${a}>`) && /status=(deliverable|undeliverable|deferred)/.test(l)).length);
}

async function waitResults(log: () => string, n: number): Promise<void> {
  const end = Date.now() + 60_000;
  while (results(log()).some((c) => c < n)) {
    assert.ok(Date.now() < end, `probes did not finish:\n${log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The three rounds of the header against one system's smtpd. */
async function scenario(port: number, log: () => string): Promise<string[][]> {
  const far = await startFar();
  const rounds: string[][] = [];
  try {
    await rcpt(port);
    await waitResults(log, 1);
    rounds.push(await rcpt(port));
  } finally { await far.stop(); }
  await new Promise((r) => setTimeout(r, 3000));   // past both refresh times
  rounds.push(await rcpt(port));
  await waitResults(log, 2);
  rounds.push(await rcpt(port));
  return rounds;
}

test('refresh probes: old answers stand while probing; a deferral keeps a deliverable address and replaces an undeliverable one, as Postfix', { skip }, async () => {
  const port = await freePort();
  const pf = await RealPostfix.start({ mainCf: MAIN(), masterCf: `127.0.0.1:${port} inet n - n - - smtpd` });
  let theirs: string[][];
  let theirLog = '';
  try {
    theirs = await scenario(port, () => pf.log());
    theirLog = pf.log();
  } finally { await pf.stop(); }
  const sys = await PosternSystem.start();
  try {
    appendFileSync(join(sys.configDir, 'main.cf'), MAIN());
    await sys.stop();
    await PosternSystem.start(sys);
    const ours = await scenario(sys.ports.smtp, () => sys.log);
    assert.deepEqual(ours, theirs);
    const said550 = '450 4.1.1 <unknown@far2.test>: Recipient address rejected: unverified address: host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <unknown@far2.test>: Recipient address rejected: User unknown in relay recipient table (in reply to RCPT TO command)';
    assert.deepEqual(ours, [
      ['250 2.1.5 Ok', said550],
      ['250 2.1.5 Ok', said550],
      ['250 2.1.5 Ok', '450 4.1.1 <unknown@far2.test>: Recipient address rejected: unverified address: connect to 127.0.0.1[127.0.0.1]:PORT: Connection refused'],
    ]);
    // A deferred probe is logged "undeliverable" (Postfix defer.c), on both.
    const deferred = /to=<known@far\.test>, .*status=undeliverable \(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: Connection refused\)/;
    assert.match(theirLog, deferred);
    assert.match(sys.log, deferred, 'the refresh probe was deferred (and ignored)');
  } finally {
    await sys.destroy();
  }
});
