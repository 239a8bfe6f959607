/**
 * Hostile-client limits of IMAP (issue 13, items 3, 6 and 8) against real Dovecot 2.3: the same
 * byte script sent to a private Dovecot instance (test/harness/real-dovecot.ts) and to Postern's
 * imapd must get the same replies and the same end (closed or not), after normalising the timing
 * texts and capability lists. What is compared:
 *   before login  3 invalid commands (or lines without a tag) → the third is
 *                 `* BYE Too many invalid IMAP commands.`;
 *                 a line over the input buffer → `* BYE Input buffer full, aborting`;
 *                 a literal that does not fit the 8192-byte command → `* BYE Literal size too large`,
 *                 also when it is the ninth literal of 1000 bytes of one command;
 *                 an AUTHENTICATE response over 8192 bytes → closed without a reply
 *   after login   20 BADs in a row (unknown commands, syntax errors, lines without a tag:
 *                 `* BAD Error in IMAP tag: Invalid tag`) → `* BYE Too many invalid IMAP commands.`
 *                 (a good command in between resets the count); a 70k line → `BAD ... Too long argument` and the
 *                 session goes on; a literal over imap_max_line_length, or the 65th 1000-byte
 *                 literal of one command → `* BYE Literal size too large`; IDLE answered with a
 *                 100k line → `BAD Expected DONE` and the session goes on.
 * Skipped, with the reason, when real Dovecot cannot run (needs root and dovecot-imapd).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { startFixture } from '../harness/imapd-testkit.ts';

interface Step { send: string | Buffer; until?: RegExp }
interface Case { name: string; login: boolean; steps: Step[] }

const junk = (n: number, p = 'j'): Step[] => Array.from({ length: n }, (_, i) => ({ send: `${p}${i} FOO\r\n`, until: new RegExp(`(${p}${i} BAD|BYE)[^\\n]*\\n$`) }));
const literals = (first: string, n: number): Step[] => {
  const steps: Step[] = [{ send: `${first} {1000}\r\n`, until: /(\+ OK|BYE[^\n]*)\r\n$/ }];
  for (let i = 0; i < n; i++) steps.push({ send: 'x'.repeat(1000) + ' TEXT {1000}\r\n', until: /(\+ OK|BYE[^\n]*)\r\n$/ });
  return steps;
};

const CASES: Case[] = [
  { name: 'before login: invalid commands', login: false, steps: junk(4) },
  { name: 'before login: lines without a tag', login: false, steps: Array.from({ length: 4 }, () => ({ send: ')))\r\n', until: /(BAD|BYE)[^\n]*\n$/ })) },
  { name: 'before login: a line of 9000 bytes', login: false, steps: [{ send: 'a LOGIN ' + 'x'.repeat(9000) + ' y\r\n', until: /BYE[^\n]*\n$/ }] },
  { name: 'before login: a literal of 9000 bytes', login: false, steps: [{ send: 'a LOGIN {9000}\r\n', until: /BYE[^\n]*\n$/ }] },
  { name: 'before login: many 1000-byte literals in one command', login: false, steps: literals('a LOGIN', 12) },
  { name: 'before login: many non-synchronising literals', login: false, steps: [{ send: 'a LOGIN' + ' {1000+}\r\n'.concat('x'.repeat(1000)).repeat(20) + '\r\n', until: /BYE[^\n]*\n$/ }] },
  { name: 'before login: AUTHENTICATE response of 20000 bytes', login: false, steps: [
    { send: 'a AUTHENTICATE PLAIN\r\n', until: /\+ \r\n$/ }, { send: 'A'.repeat(20_000) + '\r\n' }, { send: 'b NOOP\r\n' }] },
  { name: 'after login: 25 invalid commands', login: true, steps: junk(25) },
  { name: 'after login: 15 invalid, NOOP, 15 invalid', login: true, steps: [...junk(15), { send: 'n NOOP\r\n', until: /n OK[^\n]*\n$/ }, ...junk(15, 'k')] },
  { name: 'after login: 25 syntax errors', login: true, steps: Array.from({ length: 25 }, (_, i) => ({ send: `s${i} FETCH )\r\n`, until: /(BAD|BYE)[^\n]*\n$/ })) },
  { name: 'after login: 25 lines without a tag', login: true, steps: Array.from({ length: 25 }, () => ({ send: ')))\r\n', until: /(BAD|BYE)[^\n]*\n$/ })) },
  { name: 'after login: a line of 70000 bytes', login: true, steps: [
    { send: 'a SEARCH TEXT ' + 'x'.repeat(70_000) + '\r\n', until: /a BAD[^\n]*\n$/ }, { send: 'b NOOP\r\n', until: /b OK[^\n]*\n$/ }] },
  { name: 'after login: a literal of 100000 bytes', login: true, steps: [
    { send: 's SELECT INBOX\r\n', until: /s OK[^\n]*\n$/ }, { send: 'a SEARCH TEXT {100000}\r\n', until: /BYE[^\n]*\n$/ }] },
  { name: 'after login: many 1000-byte literals in one command', login: true, steps: [
    { send: 's SELECT INBOX\r\n', until: /s OK[^\n]*\n$/ }, ...literals('a SEARCH TEXT', 70)] },
  { name: 'after login: IDLE answered with a 100000-byte line', login: true, steps: [
    { send: 's SELECT INBOX\r\n', until: /s OK[^\n]*\n$/ }, { send: 'i IDLE\r\n', until: /\+ idling\r\n$/ },
    { send: 'D'.repeat(100_000) + '\r\n', until: /i BAD[^\n]*\n$/ }, { send: 'b NOOP\r\n', until: /b OK[^\n]*\n$/ }] },
];

/** Runs one case; the transcript and whether the server closed the connection. */
async function run(port: number, c: Case): Promise<{ text: string; closed: boolean }> {
  const sock = connect(port, '127.0.0.1');
  let buf = '';
  let closed = false;
  sock.on('data', (d) => { buf += d.toString('latin1'); });
  sock.on('close', () => { closed = true; });
  sock.on('error', () => { closed = true; });
  const wait = async (re: RegExp, ms = 3000): Promise<boolean> => {
    const end = Date.now() + ms;
    while (!re.test(buf) && !closed) {
      if (Date.now() > end) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
    return true;
  };
  await wait(/^\* OK[^\n]*\n/);
  const out: string[] = [];
  const take = (): void => { out.push(buf); buf = ''; };
  take();
  if (c.login) {
    sock.write('l LOGIN a@x.test pw\r\n');
    await wait(/l OK[^\n]*\n$/);
    take();
  }
  for (const st of c.steps) {
    if (closed) break;
    sock.write(st.send);
    if (st.until) await wait(st.until);
    else await wait(/(?!)/, 1500); // no reply expected: give the server time to answer or close
    take();
  }
  await wait(/(?!)/, 200);
  take();
  sock.destroy();
  return { text: out.join(''), closed };
}

function normalise(s: string): string {
  return s
    .replace(/ \(\d+\.\d{3} \+ \d+\.\d{3}(?: \+ \d+\.\d{3})? secs\)\./g, '')
    .replace(/\[CAPABILITY [^\]]*\]/g, '[CAPABILITY ...]')
    .replace(/^\* OK \[CAPABILITY \.\.\.\] .*$/m, '* OK [CAPABILITY ...] greeting')
    .replace(/UIDVALIDITY \d+/g, 'UIDVALIDITY V')
    .replace(/^\* OK \[HIGHESTMODSEQ \d+\].*\r\n/m, '')
    // RFC 8474 OBJECTID, which Dovecot 2.3 lacks: SELECT's MAILBOXID left out
    .replace(/^\* OK \[MAILBOXID \([\w-]+\)\] Ok\r\n/gm, '');
}

test('hostile input gets the same answers and the same end as from real Dovecot 2.3', { skip: RealDovecot.unavailable() ?? false, timeout: 120_000 }, async () => {
  const dc = await RealDovecot.start({ protocols: ['imap'], users: [{ user: 'a@x.test', pass: 'pw' }] });
  const f = await startFixture({ users: [['a@x.test', 'pw']] });
  try {
    const diffs: string[] = [];
    for (const c of CASES) {
      const theirs = await run(dc.ports.imap!, c);
      const ours = await run(f.port, c);
      const a = normalise(theirs.text);
      const b = normalise(ours.text);
      if (process.env.SHOW_TRANSCRIPTS) console.log(`=== ${c.name} closed=${ours.closed}\n${b.length > 1500 ? b.slice(0, 700) + "\n...\n" + b.slice(-700) : b}`);
      if (a !== b || theirs.closed !== ours.closed) {
        diffs.push(`=== ${c.name}\n--- Dovecot (closed=${theirs.closed})\n${a}--- Postern (closed=${ours.closed})\n${b}`);
      }
    }
    assert.equal(diffs.length, 0, diffs.join('\n'));
  } finally {
    await f.stop();
    await dc.stop();
  }
});
