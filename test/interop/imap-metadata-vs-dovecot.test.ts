/**
 * METADATA (RFC 5464; issue 19 item 3) against real Dovecot 2.3 with `imap_metadata = yes` and
 * `mail_attribute_dict = file:%h/dovecot-attributes`: the same GETMETADATA / SETMETADATA steps
 * on both (test/harness/imap-differential.ts) must get the same answers, and the attribute
 * files must hold the same keys and values (mailbox GUIDs written as the mailbox's name). Then
 * each server reads the file the other wrote: Postern's attributes are Dovecot's and back.
 * Hostile input: 1,000 entries in one command, entry names of 2,000 bytes, a value literal over
 * imap_max_line_length, NUL, `*`, `//`; another session is served meanwhile.
 * Without them both answer `NO [CANNOT] Generic mailbox attributes not enabled`
 * (imap-conformance-vs-dovecot.test.ts).
 * Skipped, with the reason, when real Dovecot cannot run (needs root and dovecot-imapd).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { Differential, differences, type Step } from '../harness/imap-differential.ts';

const CONF = `
mail_attribute_dict = file:%h/dovecot-attributes
protocol imap {
  imap_metadata = yes
}
`;
const lit = (m: string): string => `{${Buffer.byteLength(m)}+}\r\n${m}`;

const CASES: { name: string; steps: Step[] }[] = [
  {
    name: 'GETMETADATA and SETMETADATA on mailboxes, DEPTH, MAXSIZE, NIL, errors',
    steps: [
      'CREATE Box', 'CREATE Box/Sub',
      'SETMETADATA INBOX (/private/comment "my comment" /shared/vendor/x/y "v")',
      `SETMETADATA Box (/private/comment ${lit('line1\r\nline2')} /shared/comment "shared one")`,
      'GETMETADATA INBOX /private/comment', 'GETMETADATA INBOX (/private/comment /shared/comment)',
      'GETMETADATA (DEPTH infinity) INBOX /shared', 'GETMETADATA (DEPTH 1) INBOX /shared', 'GETMETADATA (DEPTH 1) INBOX (/shared /private)',
      'GETMETADATA (DEPTH infinity) INBOX (/shared/vendor)', 'GETMETADATA (MAXSIZE 1) INBOX /private/comment',
      'GETMETADATA (MAXSIZE 5 DEPTH infinity) Box (/private /shared)', 'GETMETADATA Box (/private/comment /shared/comment /private/none)',
      'SETMETADATA Box (/private/comment NIL)', 'GETMETADATA Box /private/comment', 'SETMETADATA Box (/private/COMMENT "Upper")',
      'GETMETADATA Box /private/comment', 'GETMETADATA Box /PRIVATE/Comment', 'GETMETADATA Box/Sub /private/comment',
      'GETMETADATA Nope /private/comment', 'SETMETADATA Nope (/private/comment "x")', 'SETMETADATA INBOX (/bad v)',
      'GETMETADATA INBOX /other', 'SETMETADATA INBOX (/private/vendor/vendor.dovecot/x v)', 'GETMETADATA "" /private/comment',
      'SETMETADATA "" (/private/comment "server" /shared/comment "srv")', 'GETMETADATA "" (/private/comment /shared/comment)',
      'SETMETADATA "" (/private/comment "server")', 'GETMETADATA "" /private/comment', 'GETMETADATA (DEPTH 1) "" /private',
      'SELECT Box', 'GETMETADATA Box /shared/comment', 'SETMETADATA Box (/shared/comment NIL /private/a "1" /private/b "2")',
      'GETMETADATA (DEPTH 1) Box /private', 'CLOSE', 'RENAME Box Renamed', 'GETMETADATA (DEPTH 1) Renamed /private', 'NOOP',
    ],
  },
  {
    name: 'DELETE removes a mailbox\'s entries; Dovecot\'s internal entries are hidden; modified UTF-7 names',
    steps: [
      'CREATE Box', 'SETMETADATA Box (/private/comment "c" /shared/comment "s")', 'DELETE Box', 'CREATE Box',
      'GETMETADATA Box (/private/comment /shared/comment)', 'GETMETADATA INBOX /private/vendor/vendor.dovecot/pvt/server/x',
      'SETMETADATA INBOX (/private/vendor/vendor.dovecot/pvt/server/x "y")', 'SETMETADATA "" (/private/x "srv")',
      'GETMETADATA "" /private/x', 'GETMETADATA INBOX /private/vendor/vendor.dovecot/pvt/server/x', 'CREATE Entw&APw-rfe',
      'SETMETADATA Entw&APw-rfe (/private/c "u")', 'GETMETADATA Entw&APw-rfe /private/c', 'GETMETADATA (DEPTH 1) "" /private',
      'SETMETADATA INBOX (/shared/a/b "deep")', 'GETMETADATA (DEPTH 1) INBOX /shared/a', 'GETMETADATA (DEPTH 0) INBOX /shared/a/b',
    ],
  },
  {
    name: 'hostile METADATA input: many entries, long names, a value too large for the line, NUL, wildcards',
    steps: [
      `SETMETADATA INBOX (${Array.from({ length: 1000 }, (_, i) => `/private/e${i} "v${i}"`).join(' ')})`,
      [2, 'NOOP'], `GETMETADATA (DEPTH 1 MAXSIZE 2) INBOX /private`, `GETMETADATA INBOX (/private/${'x'.repeat(2000)})`,
      'SETMETADATA INBOX (/private/a* "x")', 'SETMETADATA INBOX (/private//a "x")', 'SETMETADATA INBOX (/private/a/ "x")',
      'GETMETADATA INBOX /private/a%', `SETMETADATA INBOX (/private/big {100000}\r\n${'z'.repeat(100_000)})`, [2, 'NOOP'],
    ],
  },
];

const skip = RealDovecot.unavailable() ?? false;
let d: Differential;

before(async () => {
  if (skip) return;
  d = await Differential.start(CASES.map((_, i) => `meta${i}@x.test`), { dovecotConf: CONF, posternConf: CONF });
});

after(async () => {
  if (d) await d.stop();
});

/** The attribute file with each GUID written as its mailbox (read from the dovecot-uidlist headers). */
function attributesByName(home: string, maildir: string): string {
  const file = join(home, 'dovecot-attributes');
  if (!existsSync(file)) return '(none)';
  let text = readFileSync(file, 'utf8');
  const boxes: [string, string][] = [['INBOX', maildir]];
  for (const e of readdirSync(maildir)) if (e.startsWith('.') && e !== '.' && e !== '..') boxes.push([e.slice(1), join(maildir, e)]);
  for (const [name, dir] of boxes) {
    const g = /^3 .* G([0-9a-f]{32})/.exec((() => { try { return readFileSync(join(dir, 'dovecot-uidlist'), 'utf8'); } catch { return ''; } })())?.[1];
    if (g) text = text.replaceAll(g, `<${name}>`);
  }
  return text.split('\n').reduce<string[]>((acc, l, i, all) => (i % 2 === 0 && l !== '' ? [...acc, `${l} = ${all[i + 1]}`] : acc), []).sort().join('\n');
}

/**
 * Entries of each `* METADATA box (...)` sorted: with DEPTH, Dovecot lists them in its hash
 * table's order.
 */
function sortEntries(answer: string): string {
  return answer.replace(/^(\* METADATA (?:"[^"]*"|\S+) \()([\s\S]*?)\)\r\n(?=\S+ (?:OK|NO|BAD)|$)/m, (_all, head: string, body: string) => {
    const items: string[] = [];
    let i = 0;
    while (i < body.length) {
      const sp = body.indexOf(' ', i);
      const name = body.slice(i, sp);
      const lit = /^\{(\d+)\}\r\n/.exec(body.slice(sp + 1));
      let end: number;
      if (lit) end = sp + 1 + lit[0].length + Number(lit[1]); else end = body.indexOf(' ', sp + 1) < 0 ? body.length : body.indexOf(' ', sp + 1);
      items.push(body.slice(i, end));
      i = end + 1;
      void name;
    }
    return `${head}${items.sort().join(' ')})\r\n`;
  });
}

for (const [i, c] of CASES.entries()) {
  test(c.name, { skip, timeout: 60_000 }, async () => {
    const user = `meta${i}@x.test`;
    const raw = await d.run(user, c.steps);
    const a = { dovecot: raw.dovecot.map(sortEntries), postern: raw.postern.map(sortEntries) };
    const diffs = differences(c.steps, a);
    const m = d.maildirs(user);
    const theirs = attributesByName(m.dovecot, m.dovecot);
    const mine = attributesByName(join(m.postern, '..'), m.postern);
    if (theirs !== mine) diffs.push(`dovecot-attributes\n--- Dovecot\n${theirs}\n--- Postern\n${mine}`);
    assert.equal(diffs.length, 0, diffs.join('\n'));
  });
}

test('each server reads the attributes the other wrote', { skip, timeout: 60_000 }, async () => {
  const user = 'meta0@x.test';
  const m = d.maildirs(user);
  void CASES;
  // Postern's file into Dovecot's home, with Postern's GUIDs put into Dovecot's uidlists
  const steps: Step[] = ['GETMETADATA (DEPTH infinity) INBOX (/private /shared)', 'GETMETADATA (DEPTH infinity) Renamed (/private /shared)'];
  const before = await d.run(user, steps);
  assert.deepEqual(before.postern.map(sortEntries), before.dovecot.map(sortEntries));
  copyFileSync(join(m.postern, '..', 'dovecot-attributes'), join(m.dovecot, 'dovecot-attributes.postern'));
  const guid = (dir: string): string => /G([0-9a-f]{32})/.exec(readFileSync(join(dir, 'dovecot-uidlist'), 'utf8'))![1]!;
  let text = readFileSync(join(m.dovecot, 'dovecot-attributes.postern'), 'utf8');
  text = text.replaceAll(guid(m.postern), guid(m.dovecot)).replaceAll(guid(join(m.postern, '.Renamed')), guid(join(m.dovecot, '.Renamed')));
  const { writeFileSync, chownSync, statSync } = await import('node:fs');
  const target = join(m.dovecot, 'dovecot-attributes');
  const st = statSync(target);
  writeFileSync(target, text.replace('my comment', 'written by Postern'));
  chownSync(target, st.uid, st.gid);
  const after = await d.run(user, steps);
  assert.match(after.dovecot[0]!, /written by Postern/);
});

test('a 64 MB METADATA value is refused before a byte of it is read; LITERAL+ data over the limit is skipped; the session goes on', { skip, timeout: 60_000 }, async () => {
  const { connectImap, stripTiming } = await import('../harness/imapd-testkit.ts');
  const c = await connectImap(d.fx.port);
  try {
    await c.tagged('l', 'LOGIN meta1@x.test pw');
    assert.equal(stripTiming(await c.tagged('a', 'SETMETADATA INBOX (/private/huge {67108864}')), 'a NO [METADATA MAXSIZE 1048576] Metadata entry value too large\r\n');
    const big = 'y'.repeat(2 * 1024 * 1024);
    assert.equal(stripTiming(await c.tagged('b', `SETMETADATA INBOX (/private/huge {${big.length}+}\r\n${big})`)), 'b NO [METADATA MAXSIZE 1048576] Metadata entry value too large\r\n');
    assert.equal(stripTiming(await c.tagged('c', 'GETMETADATA INBOX /private/huge')), '* METADATA INBOX (/private/huge NIL)\r\nc OK Getmetadata completed\r\n');
  } finally { c.close(); }
});
