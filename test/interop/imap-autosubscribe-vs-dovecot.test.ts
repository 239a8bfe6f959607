/**
 * Small conformance cases against real Dovecot 2.3 (the same namespace on both: Sent with
 * `auto = subscribe`, Trash with `auto = create`):
 *  - `auto = subscribe` is virtual: after login the user's `subscriptions` file is not written
 *    (on both servers), LSUB / LIST (SUBSCRIBED) / RETURN (SUBSCRIBED) show Sent subscribed,
 *    UNSUBSCRIBE Sent answers OK and Sent stays subscribed, an explicit SUBSCRIBE writes the
 *    same file on both;
 *  - THREADID (RFC 8474): Postern offers OBJECTID and answers `THREADID NIL` (§5.2: a server
 *    without thread identifiers), SEARCH THREADID finds nothing; Dovecot 2.3 has no OBJECTID and
 *    answers BAD - both checked, as they are;
 *  - UTF8=ONLY (RFC 6855 §7) is offered by neither; ENABLE UTF8=ONLY enables nothing on either.
 * Skipped, with the reason, when real Dovecot cannot run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { Differential, differences, runSteps, type Step } from '../harness/imap-differential.ts';

const MSG = 'Subject: t\r\n\r\nbody\r\n';
const skip = RealDovecot.unavailable() ?? false;
let d: Differential;
before(async () => { if (!skip) d = await Differential.start(['s1@x.test', 's2@x.test', 't@x.test', 'u@x.test']); });
after(async () => { if (d) await d.stop(); });

const subsFile = (user: string): { dovecot: string; postern: string } => {
  const m = d.maildirs(user);
  return { dovecot: join(m.dovecot, 'subscriptions'), postern: join(m.postern, 'subscriptions') };
};

test('auto = subscribe: subscribed without a line in the subscriptions file, UNSUBSCRIBE leaves it subscribed, as Dovecot', { skip, timeout: 60_000 }, async () => {
  const steps: Step[] = ['LSUB "" "*"', 'LIST (SUBSCRIBED) "" "*"', 'LIST "" "*" RETURN (SUBSCRIBED)', 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'];
  const a = await d.run('s1@x.test', steps);
  assert.deepEqual(differences(steps, a), []);
  assert.match(a.postern[0]!, /^\* LSUB \(\\Sent\) "\/" Sent\r\n/m);
  const f = subsFile('s1@x.test');
  assert.equal(existsSync(f.dovecot), false, 'Dovecot writes no subscriptions file at login');
  assert.equal(existsSync(f.postern), false, 'nor does Postern');

  const more: Step[] = ['UNSUBSCRIBE Sent', 'LSUB "" "*"', 'LIST (SUBSCRIBED) "" "S%"', 'SUBSCRIBE Trash', 'LSUB "" "*"', 'SUBSCRIBE Sent', 'UNSUBSCRIBE Sent', 'LSUB "" "*"'];
  const b = await d.run('s2@x.test', more);
  assert.deepEqual(differences(more, b), []);
  assert.match(b.postern[1]!, /^\* LSUB \(\\Sent\) "\/" Sent\r\n/m, 'still subscribed after UNSUBSCRIBE');
  const g = subsFile('s2@x.test');
  assert.equal(readFileSync(g.postern, 'utf8'), readFileSync(g.dovecot, 'utf8'), 'the same file once the user subscribes');
});

test('THREADID: Postern answers NIL (RFC 8474 §5.2), Dovecot 2.3 has no OBJECTID', { skip, timeout: 60_000 }, async () => {
  const steps: Step[] = [`APPEND INBOX {${MSG.length}+}\r\n${MSG}`, 'SELECT INBOX', 'FETCH 1 (THREADID)', 'UID FETCH 1 (EMAILID THREADID)', 'SEARCH THREADID T1', 'CAPABILITY'];
  const a = await d.run('t@x.test', steps);
  assert.equal(a.postern[2], '* 1 FETCH (THREADID NIL)\r\nt2 OK Fetch completed\r\n');
  assert.match(a.postern[3]!, /^\* 1 FETCH \(UID 1 EMAILID \(M[0-9a-f]+\) THREADID NIL\)\r\n/);
  assert.equal(a.postern[4], '* SEARCH\r\nt4 OK Search completed\r\n');
  assert.equal(a.dovecot[2], 't2 BAD Error in IMAP command FETCH: Unknown parameter: THREADID\r\n');
  assert.equal(a.dovecot[4], 't4 BAD Error in IMAP command SEARCH: Unknown argument THREADID\r\n');
});

test('UTF8=ONLY is offered by neither server; ENABLE UTF8=ONLY enables nothing', { skip, timeout: 60_000 }, async () => {
  const steps: Step[] = ['ENABLE UTF8=ONLY', 'NOOP'];
  const a = await d.run('u@x.test', steps);
  // Dovecot 2.3 sends no ENABLED line when nothing was enabled; Postern an empty one (RFC 5161 §3.1)
  assert.equal(a.dovecot[0], 't0 OK Enabled\r\n');
  assert.equal(a.postern[0], '* ENABLED\r\nt0 OK Enabled\r\n');
  for (const port of [d.dc.ports.imap!, d.fx.port]) {
    const [caps] = await runSteps(port, 'u@x.test', ['CAPABILITY']);
    assert.doesNotMatch(caps!, /UTF8=ONLY/);
  }
});
