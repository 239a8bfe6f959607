/**
 * NOTIFY (RFC 5465) on shared and public namespaces (issue 19 items 2 and 3), a differential
 * test against real Dovecot 2.3 with the acl plugin, a `type = shared` namespace (prefix
 * `shared/%%u/`, acl_shared_dict) and a `type = public` one (prefix `Public/`), configured alike
 * on both servers. User A shares a mailbox with B (SETACL); B's session sets NOTIFY over
 * `personal`, `subtree shared`, `mailboxes shared/a@x.test/Foo` and the public mailbox, with and
 * without STATUS; then A (another user) appends, flags, expunges, creates and deletes there,
 * and a third user appends into the public mailbox; B's next NOOP shows what it was pushed.
 * Every answer of B is compared with Dovecot's (test/harness/imap-differential.ts normalising).
 * Skipped, with the reason, when real Dovecot cannot run (needs root and dovecot-imapd).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DOVECOT_MAIL_UID, RealDovecot } from '../harness/real-dovecot.ts';
import { Differential, loggedInSessions, normalise } from '../harness/imap-differential.ts';
import { aclConf } from '../harness/dovecot-acl-conf.ts';

const run = promisify(execFile);
const lit = (m: string): string => `{${Buffer.byteLength(m)}+}\r\n${m}`;
const M = 'Subject: x\r\n\r\nbody\r\n';

const skip = RealDovecot.unavailable() ?? false;
const dictDir = skip ? '' : mkdtempSync(join(tmpdir(), 'postern-notify-shared-'));
if (!skip) chmodSync(dictDir, 0o777);

const conf = (dict: string, pub: string): string => aclConf({ dict: join(dictDir, dict), publicDir: join(dictDir, pub) });

/** A step: [user, session, command], or a pause. */
type Step = [string, number, string] | { sleep: number };
const PAUSE = { sleep: 1500 };

async function runSteps(port: number, steps: Step[]): Promise<string[]> {
  const pools = new Map<string, ReturnType<typeof loggedInSessions>>();
  const out: string[] = [];
  try {
    for (const [i, st] of steps.entries()) {
      if (!Array.isArray(st)) { await new Promise((r) => setTimeout(r, st.sleep)); out.push(''); continue; }
      const [user, n, c] = st;
      let pool = pools.get(user);
      if (!pool) { pool = loggedInSessions(port, user); pools.set(user, pool); }
      out.push(normalise(await (await pool.session(n)).command(`t${i}`, c)));
    }
  } finally { for (const p of pools.values()) p.close(); }
  return out;
}

let d: Differential;
before(async () => {
  if (skip) return;
  for (const pub of ['public-dovecot', 'public-postern']) {
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(dictDir, pub, '.Team', sub), { recursive: true });
    writeFileSync(join(dictDir, pub, '.Team', 'dovecot-acl'), 'anyone lrwsi\n');
  }
  await run('chown', ['-R', `${DOVECOT_MAIL_UID}:${DOVECOT_MAIL_UID}`, join(dictDir, 'public-dovecot')]);
  d = await Differential.start(['a@x.test', 'b@x.test', 'c@x.test'], { dovecotConf: conf('dovecot.db', 'public-dovecot'), posternConf: conf('postern.db', 'public-postern') });
});
after(async () => {
  if (d) await d.stop();
  if (dictDir) rmSync(dictDir, { recursive: true, force: true });
});

const A = 'a@x.test', B = 'b@x.test', C = 'c@x.test';

const CASES: { name: string; steps: Step[]; known?: Record<number, string> }[] = [
  {
    name: 'another user changes a mailbox shared with B: what B\'s NOTIFY session is told',
    steps: [
      [A, 1, 'CREATE Foo'], [A, 1, `APPEND Foo ${lit(M)}`], [A, 1, 'SETACL Foo b@x.test lrs'],
      [B, 1, 'LIST "" shared/*'],
      [B, 1, 'NOTIFY SET STATUS (mailboxes shared/a@x.test/Foo (MessageNew MessageExpunge FlagChange))'],
      [A, 1, `APPEND Foo ${lit(M)}`], PAUSE, [B, 1, 'NOOP'],
      [B, 1, 'NOTIFY SET STATUS (subtree shared (MessageNew MessageExpunge FlagChange MailboxName))'],
      [A, 1, `APPEND Foo ${lit(M)}`], [A, 1, 'SELECT Foo'], [A, 1, 'STORE 1 +FLAGS \\Seen'], PAUSE, [B, 1, 'NOOP'],
      [A, 1, 'STORE 2 +FLAGS \\Deleted'], [A, 1, 'EXPUNGE'], PAUSE, [B, 1, 'NOOP'],
      [A, 1, 'CREATE Foo/Sub'], [A, 1, 'SETACL Foo/Sub b@x.test lr'], PAUSE, [B, 1, 'NOOP'],
      [B, 1, 'NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))'],
      [A, 1, `APPEND Foo ${lit(M)}`], PAUSE, [B, 1, 'NOOP'],
      [B, 1, 'NOTIFY SET STATUS (subtree shared/a@x.test (MessageNew MessageExpunge FlagChange MailboxName))'],
      [A, 1, `APPEND Foo ${lit(M)}`], PAUSE, [B, 1, 'NOOP'],
      [B, 1, 'NOTIFY SET STATUS (subtree shared/a@x.test/Foo (MessageNew MessageExpunge))'],
      [A, 1, `APPEND Foo/Sub ${lit(M)}`], PAUSE, [B, 1, 'NOOP'],
      [B, 1, 'NOTIFY SET (mailboxes (shared/a@x.test/Foo shared/a@x.test/Foo/Sub) (MessageNew MessageExpunge))'],
      [A, 1, `APPEND Foo/Sub ${lit(M)}`], PAUSE, [B, 1, 'NOOP'],
      [B, 1, 'NOTIFY NONE'], [B, 1, 'LIST "" shared/a@x.test/*'], [B, 1, 'MYRIGHTS shared/a@x.test/Foo/Sub'],
    ],
    // Dovecot does not show B shared/a@x.test/Foo/Sub, created by A after B first listed A's
    // mailboxes (its LIST leaves it out too, t39, though MYRIGHTS gives lr): its STATUS
    // indicator has no line for it, Postern's has; the events that follow are the same
    known: { 26: 'Foo/Sub in the STATUS indicator', 30: 'Foo/Sub in the STATUS indicator', 39: 'LIST shows Foo/Sub' },
  },
  {
    name: 'the public namespace: a third user appends, B\'s NOTIFY session is told',
    steps: [
      [B, 1, 'NOTIFY SET STATUS (mailboxes Public/Team (MessageNew MessageExpunge))'],
      [C, 1, `APPEND Public/Team ${lit(M)}`], PAUSE, [B, 1, 'NOOP'],
      [B, 1, 'NOTIFY SET (subtree Public (MessageNew MessageExpunge MailboxName))'],
      [C, 1, `APPEND Public/Team ${lit(M)}`], PAUSE, [B, 1, 'NOOP'],
      [B, 1, 'SELECT Public/Team'], [B, 1, 'NOTIFY SET (selected (MessageNew MessageExpunge))'],
      [C, 1, `APPEND Public/Team ${lit(M)}`], PAUSE, [B, 1, 'NOOP'],
    ],
  },
];

for (const c of CASES) {
  test(c.name, { skip, timeout: 90_000 }, async () => {
    const dovecot = await runSteps(d.dc.ports.imap!, c.steps);
    const postern = await runSteps(d.fx.port, c.steps);
    if (process.env.NOTIFY_SHOW) for (let k = 0; k < c.steps.length; k++) console.log(`t${k} ${JSON.stringify(c.steps[k])}\n--- Dovecot\n${dovecot[k]}--- Postern\n${postern[k]}`);
    const diffs: string[] = [];
    for (let k = 0; k < c.steps.length; k++) {
      if (c.known?.[k] === undefined && dovecot[k] !== postern[k]) diffs.push(`t${k} ${JSON.stringify(c.steps[k]).slice(0, 100)}\n--- Dovecot\n${dovecot[k]}--- Postern\n${postern[k]}`);
    }
    assert.equal(diffs.length, 0, diffs.join('\n'));
  });
}
