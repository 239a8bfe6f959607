/**
 * NOTIFY (RFC 5465; issue 19 item 3), a differential test against real Dovecot 2.3: the same
 * steps on a fresh user of a private Dovecot instance and of Postern's imapd, every answer
 * compared after normalising timing texts and UIDVALIDITY (test/harness/imap-differential.ts).
 * A second session of the same user makes the changes (APPEND, STORE, EXPUNGE, CREATE, RENAME,
 * DELETE, SUBSCRIBE), or a delivery does (Dovecot's LMTP server; Postern's MailUser.deliver, the
 * call lmtpd and virtual(8) deliver through); the first session's next NOOP shows what it was pushed meanwhile (a pause
 * lets Dovecot's list-index notification arrive; Postern writes its events before NOOP's reply).
 * The cases:
 *   NOTIFY SET / NONE parsing and errors (BAD texts, [BADEVENT], [NOTIFICATIONOVERFLOW] for 101
 *   names), the STATUS indicator, MessageNew / MessageExpunge / FlagChange of another mailbox
 *   (\Seen changes UNSEEN; other flags nothing without CONDSTORE, HIGHESTMODSEQ with it),
 *   MailboxName on CREATE / RENAME (OLDNAME) / DELETE, SubscriptionChange, SELECTED with
 *   MessageNew (fetch-att) pushing EXISTS and FETCH, SELECTED pushing a flag change and an
 *   expunge, SELECTED-DELAYED holding the expunge back until a command that allows it, and
 *   pushing an arrival that follows an expunge (the expunged message still counted).
 * Dovecot watches the selected mailbox again only 1 s after a command (and coalesces changes
 * within 0.5 s): the second session waits a moment after the first one's commands, so both
 * servers see the same sequence of events.
 * Skipped, with the reason, when real Dovecot cannot run (needs root and dovecot-imapd).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { Differential, loggedInSessions, normalise, Session } from '../harness/imap-differential.ts';

/** A command (session 1 or [session, command]), a pause, or a delivery to INBOX of the user. */
type Step = string | [number, string] | { sleep: number } | { deliver: string };

/** A delivery into Dovecot: its LMTP server, as Postfix's lmtp(8) or any MTA would use it. */
async function lmtpDeliver(port: number, rcpt: string, msg: string): Promise<void> {
  const s = new Session(port);
  try {
    await s.wait(/^220 [^\n]*\n/);
    for (const [line, re] of [['LHLO x.test', /^250 [^\n]*\n/m], ['MAIL FROM:<s@x.test>', /^250 [^\n]*\n/m], [`RCPT TO:<${rcpt}>`, /^250 [^\n]*\n/m],
      ['DATA', /^354 [^\n]*\n/m], [msg.replace(/\r?\n/g, '\r\n') + '.', /^250 [^\n]*\n/m]] as const) {
      s.write(line + '\r\n');
      const got = await s.wait(re);
      if (got.includes('<timeout>') || got.includes('<closed>')) throw new Error(`LMTP ${line}: ${got}`);
    }
  } finally { s.close(); }
}

const lit = (m: string): string => `{${Buffer.byteLength(m)}+}\r\n${m}`;
const M = 'Subject: x\r\n\r\nbody\r\n';
const PAUSE = { sleep: 1500 };

/** STATUS lines in one answer sorted too (Dovecot iterates mailboxes in directory order). */
function sortStatus(s: string): string {
  const lines = s.split('\n');
  const st = lines.filter((l) => l.startsWith('* STATUS ')).sort();
  let k = 0;
  return lines.map((l) => (l.startsWith('* STATUS ') ? st[k++]! : l)).join('\n');
}

async function runSteps(port: number, user: string, steps: Step[], deliver: (msg: string) => Promise<void>): Promise<string[]> {
  const pool = loggedInSessions(port, user);
  const out: string[] = [];
  try {
    await pool.session(1);
    for (const [i, st] of steps.entries()) {
      if (typeof st === 'object' && !Array.isArray(st)) {
        if ('sleep' in st) await new Promise((r) => setTimeout(r, st.sleep)); else await deliver(st.deliver);
        out.push('');
        continue;
      }
      const [n, c] = Array.isArray(st) ? st : [1, st];
      out.push(sortStatus(normalise(await (await pool.session(n)).command(`t${i}`, c))));
    }
  } finally {
    pool.close();
  }
  return out;
}

interface Case { name: string; steps: Step[]; known?: Record<number, string> }

const names101 = Array.from({ length: 101 }, (_, i) => `m${i}`).join(' ');

const CASES: Case[] = [
  {
    name: 'NOTIFY SET / NONE: parsing and errors',
    steps: [
      'NOTIFY', 'NOTIFY FOO', 'NOTIFY NONE', 'NOTIFY NONE x', 'NOTIFY SET', 'NOTIFY SET STATUS',
      'NOTIFY SET (selected (MessageNew))', 'NOTIFY SET (selected (MessageExpunge))', 'NOTIFY SET (selected (FlagChange))',
      'NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed NONE)', 'NOTIFY SET (selected NONE)',
      'NOTIFY SET (personal (MailboxMetadataChange AnnotationChange))', 'NOTIFY SET (personal (ServerMetadataChange MessageNew))',
      'NOTIFY SET (personal ())', 'NOTIFY SET (personal (Bogus))', 'NOTIFY SET (personal NONE)', 'NOTIFY SET (bogus (MessageNew))',
      'NOTIFY SET (mailboxes (MessageNew))', 'NOTIFY SET (mailboxes INBOX (MessageNew))', 'NOTIFY SET (mailboxes (INBOX Sent) (MessageNew MessageExpunge))',
      'NOTIFY SET (subtree INBOX (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))',
      `NOTIFY SET (mailboxes (${names101}) (MessageNew))`, 'NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge))',
      'NOTIFY SET (inboxes (MessageNew)) (subscribed (MailboxName))', 'NOTIFY SET personal', 'NOTIFY SET (personal (messagenew messageexpunge))',
      'NOTIFY NONE', 'NOOP',
    ],
  },
  {
    name: 'NOTIFY SET STATUS: the initial STATUS of each mailbox matched, not the selected one',
    steps: [
      'CREATE a', 'CREATE a/b', 'CREATE c', `APPEND a ${lit(M)}`, `APPEND a ${lit(M)}`, `APPEND c ${lit(M)}`,
      'NOTIFY SET STATUS (personal (MessageNew MessageExpunge))',
      'NOTIFY SET STATUS (subtree a (MessageNew MessageExpunge FlagChange))',
      'NOTIFY SET STATUS (mailboxes (c Trash) (MessageNew MessageExpunge))',
      'NOTIFY SET STATUS (personal (MailboxName))',
      'SELECT a', 'NOTIFY SET STATUS (personal (MessageNew MessageExpunge))', 'NOTIFY NONE', 'NOOP',
    ],
  },
  {
    name: 'MessageNew / MessageExpunge / FlagChange of another mailbox, changed by a second session',
    steps: [
      'CREATE b', 'NOTIFY SET (personal (MessageNew MessageExpunge FlagChange))',
      [2, `APPEND b ${lit(M)}`], PAUSE, 'NOOP',
      [2, `APPEND b ${lit(M)}`], [2, `APPEND INBOX ${lit(M)}`], PAUSE, 'NOOP',
      [2, 'SELECT b'], [2, 'STORE 1 +FLAGS \\Seen'], PAUSE, 'NOOP',
      [2, 'STORE 2 +FLAGS \\Flagged'], PAUSE, 'NOOP',
      [2, 'STORE 1 +FLAGS \\Deleted'], [2, 'EXPUNGE'], PAUSE, 'NOOP',
      'SELECT b', [2, `APPEND b ${lit(M)}`], PAUSE, 'NOOP',
    ],
    known: { 8: 'Dovecot reports the first arrival in a never-opened INBOX twice (two list-index changes); Postern once' },
  },
  {
    name: 'a delivery (LMTP into Dovecot, the delivery call of lmtpd into Postern) told to a session with another mailbox selected',
    steps: [
      'CREATE b', 'SELECT b', 'NOTIFY SET (selected (MessageNew MessageExpunge)) (personal (MessageNew MessageExpunge FlagChange))', PAUSE,
      { deliver: 'From: a@x.test\nSubject: delivered\n\nbody\n' }, PAUSE, 'NOOP', { deliver: 'Subject: two\n\nbody\n' }, PAUSE, 'NOOP',
      [2, 'SELECT INBOX'], [2, 'STORE 1:2 +FLAGS \\Seen'], PAUSE, 'NOOP',
    ],
    known: { 6: 'Dovecot reports the first arrival in a never-opened INBOX twice (two list-index changes); Postern once' },
  },
  {
    name: 'FlagChange with CONDSTORE: HIGHESTMODSEQ',
    steps: [
      'CREATE b', `APPEND b ${lit(M)}`, 'ENABLE CONDSTORE', 'NOTIFY SET (mailboxes b (MessageNew MessageExpunge FlagChange))',
      [2, 'SELECT b'], [2, 'STORE 1 +FLAGS \\Flagged'], PAUSE, 'NOOP', [2, `APPEND b ${lit(M)}`], PAUSE, 'NOOP',
    ],
  },
  {
    name: 'MailboxName: CREATE, RENAME (OLDNAME), DELETE by another session',
    steps: [
      'NOTIFY SET (personal (MailboxName))',
      [2, 'CREATE x'], PAUSE, 'NOOP', [2, 'RENAME x y'], PAUSE, 'NOOP', [2, 'DELETE y'], PAUSE, 'NOOP',
      [2, `APPEND INBOX ${lit(M)}`], PAUSE, 'NOOP',
    ],
    known: { 6: 'Dovecot also sends `* LIST () "/" INBOX` for a Maildir++ rename (its list index rewrites the INBOX record); Postern only the renamed mailbox' },
  },
  {
    name: 'SubscriptionChange',
    steps: [
      'CREATE s', 'NOTIFY SET (personal (SubscriptionChange))',
      [2, 'SUBSCRIBE s'], PAUSE, 'NOOP', [2, 'UNSUBSCRIBE s'], PAUSE, 'NOOP',
    ],
  },
  {
    name: 'SELECTED with MessageNew (fetch-att): EXISTS and FETCH pushed without a command',
    steps: [
      'SELECT INBOX', 'NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge))',
      [2, `APPEND INBOX ${lit(M)}`], PAUSE, [2, 'NOOP'], 'NOOP',
    ],
  },
  {
    name: 'SELECTED: another session\'s flag change and expunge pushed without a command',
    steps: [
      `APPEND INBOX ${lit(M)}`, `APPEND INBOX ${lit(M)}`, 'SELECT INBOX', 'NOTIFY SET (selected (MessageNew MessageExpunge FlagChange))',
      [2, 'SELECT INBOX'], PAUSE, [2, 'STORE 1 +FLAGS \\Deleted'], PAUSE, [2, 'EXPUNGE'], PAUSE, [2, 'NOOP'], 'FETCH 1:* (UID FLAGS)', 'NOOP',
    ],
  },
  {
    name: 'SELECTED-DELAYED: the flag change pushed, the expunge only in reply to a command that allows it',
    steps: [
      `APPEND INBOX ${lit(M)}`, `APPEND INBOX ${lit(M)}`, 'SELECT INBOX', 'NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))',
      [2, 'SELECT INBOX'], PAUSE, [2, 'STORE 1 +FLAGS \\Deleted'], PAUSE, [2, 'NOOP'], [2, 'EXPUNGE'], PAUSE, [2, 'NOOP'],
      'FETCH 1:* (UID FLAGS)', 'NOOP', PAUSE, [2, `APPEND INBOX ${lit(M)}`], PAUSE, [2, 'NOOP'], 'FETCH 1:* (UID)',
    ],
  },
  {
    name: 'SELECTED-DELAYED: an arrival after an expunge is pushed, the expunged message kept until a command that allows EXPUNGE',
    steps: [
      `APPEND INBOX ${lit(M)}`, `APPEND INBOX ${lit(M)}`, `APPEND INBOX ${lit(M)}`, 'SELECT INBOX',
      'NOTIFY SET (selected-delayed (MessageNew (UID) MessageExpunge FlagChange))',
      [2, 'SELECT INBOX'], PAUSE, [2, 'STORE 2 +FLAGS \\Deleted'], PAUSE, [2, 'EXPUNGE'], [2, `APPEND INBOX ${lit(M)}`], PAUSE, [2, 'NOOP'],
      'UID FETCH 1:* (FLAGS)', 'SEARCH ALL', 'NOOP', 'FETCH 1:* (UID)',
    ],
  },
];

let d: Differential | undefined;
let skip: string | undefined;

before(async () => {
  skip = RealDovecot.unavailable();
  if (skip) return;
  d = await Differential.start(CASES.map((_, i) => `n${i}@x.test`), { lmtp: true });
});

after(async () => { await d?.stop(); });

for (const [i, c] of CASES.entries()) {
  test(c.name, { timeout: 60_000 }, async (t) => {
    if (skip) { t.skip(skip); return; }
    const user = `n${i}@x.test`;
    const dovecot = await runSteps(d!.dc.ports.imap!, user, c.steps, (m) => lmtpDeliver(d!.dc.ports.lmtp!, user, m));
    // Postern: the call lmtpd and virtual(8) deliver through (MailUser.deliver, a delivery session)
    const shared = d!.fx.imapd.shared;
    const postern = await runSteps(d!.fx.port, user, c.steps, async (m) => {
      const mu = await shared.store.forUser((await shared.directory.lookup(user))!);
      try { await mu.deliver('INBOX', m, { postSession: true }); } finally { await mu.close(); }
    });
    const diffs: string[] = [];
    for (let k = 0; k < c.steps.length; k++) {
      if (c.known?.[k] !== undefined) continue;
      if (dovecot[k] !== postern[k]) diffs.push(`t${k} ${JSON.stringify(c.steps[k]).slice(0, 100)}\n--- Dovecot\n${dovecot[k]}--- Postern\n${postern[k]}`);
    }
    assert.equal(diffs.length, 0, diffs.join('\n'));
  });
}
