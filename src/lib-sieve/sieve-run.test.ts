/**
 * sieve-run tests: one delivery's plan from real script files in a temp home (the layout
 * Pigeonhole reads: ~/.dovecot.sieve, ~/sieve/), and the hostile cases, each refused or bounded
 * with a clear message while the message is still kept: a catastrophic regular expression,
 * 10,000 actions, include loops, a redirect loop between two users, two users on vacation
 * answering each other, a script that does not compile (its errors in ~/.dovecot.sieve.log).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planSieveDelivery, type SievePlan } from './sieve-run.ts';
import { sieveSettings, type SieveSettings } from './sieve-settings.ts';
import { compileSieveRegex } from './sieve-regex.ts';

function settings(extra: Record<string, string> = {}): SieveSettings {
  const conf: Record<string, string> = { mail_plugins: 'sieve', hostname: 'mx.x.test', ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [`plugin/${k}`, v])) };
  return sieveSettings({ get: (n) => conf[n] }, 'lmtp');
}

function home(script: string, files: Record<string, string> = {}): string {
  const h = mkdtempSync(join(tmpdir(), 'sieve-run-'));
  mkdirSync(join(h, 'sieve'));
  writeFileSync(join(h, '.dovecot.sieve'), script);
  for (const [n, t] of Object.entries(files)) writeFileSync(join(h, 'sieve', `${n}.sieve`), t);
  return h;
}

const MSG = (o: { from?: string; to?: string; subject?: string; extra?: string } = {}) =>
  Buffer.from(`From: ${o.from ?? 'a@x.test'}\nTo: ${o.to ?? 'b@x.test'}\nSubject: ${o.subject ?? 'hi'}\nMessage-ID: <m1@x.test>\n${o.extra ?? ''}\nbody\n`);

async function plan(h: string, o: { from?: string; to?: string; content?: Buffer; s?: SieveSettings } = {}): Promise<SievePlan> {
  return planSieveDelivery({
    settings: o.s ?? settings(), user: o.to ?? 'b@x.test', home: h,
    envelope: { from: o.from ?? 'a@x.test', to: o.to ?? 'b@x.test' }, content: o.content ?? MSG(),
    mailboxExists: async () => true,
  });
}

const boxes = (p: SievePlan) => p.stores.map((s) => s.mailbox);

test('fileinto, flags, implicit keep', async () => {
  const p = await plan(home('require ["fileinto","imap4flags"];\nif header :contains "subject" "hi" { fileinto :flags "\\\\Seen" "Work"; }\n'));
  assert.deepEqual(p.stores.map((s) => [s.mailbox, s.flags, s.implicit]), [['Work', ['\\Seen'], false]]);
  const q = await plan(home('require "imap4flags";\naddflag "$Label1";\n'));
  assert.deepEqual(q.stores.map((s) => [s.mailbox, s.flags, s.implicit]), [['INBOX', ['$Label1'], true]]);
});

test('a regular expression built for backtracking takes linear time', async () => {
  const r = compileSieveRegex('(a+)+$', false);
  assert.ok(!('error' in r));
  const t0 = process.hrtime.bigint();
  assert.equal(r.exec('a'.repeat(30_000) + 'b'), null);
  assert.ok(Number(process.hrtime.bigint() - t0) / 1e9 < 20, 'bounded');
  const p = await plan(home('require ["regex","fileinto"];\nif header :regex "subject" "^(a|aa)+$" { fileinto "Work"; }\n'), { content: MSG({ subject: 'a'.repeat(5000) + 'b' }) });
  assert.deepEqual(boxes(p), ['INBOX']);
});

test('a regular expression past the step limit fails the script: message kept, error logged', async () => {
  const big = '(' + 'a?'.repeat(2000) + ')' + 'a'.repeat(2000);
  const p = await plan(home(`require ["body","regex"];\nif body :regex "${big}" { discard; }\n`), { content: Buffer.concat([MSG(), Buffer.from('x'.repeat(50_000))]) });
  assert.deepEqual(boxes(p), ['INBOX']);
  assert.ok(p.log.some((l) => /runtime error: regular expression match exceeded/.test(l)), p.log.join('\n'));
});

test('10,000 actions: the 33rd is refused (sieve_max_actions), the message is kept', async () => {
  const script = 'require ["fileinto","copy"];\n' + Array.from({ length: 10_000 }, (_, i) => `fileinto :copy "F${i}";\n`).join('');
  const p = await plan(home(script));
  assert.deepEqual(boxes(p), ['INBOX']);
  assert.ok(p.log.some((l) => /total number of actions exceeds policy limit/.test(l)), p.log.join('\n'));
});

test('include loops are refused at load time; the user sees why in .dovecot.sieve.log', async () => {
  const h = home('require "include";\ninclude "a";\n', { a: 'require "include";\ninclude "b";\n', b: 'require "include";\ninclude "a";\ndiscard;\n' });
  const p = await plan(h);
  assert.deepEqual(boxes(p), ['INBOX']);
  assert.match(readFileSync(join(h, '.dovecot.sieve.log'), 'utf8'), /include loop/);
  const self = home('require "include";\ninclude :personal "me";\n', { me: 'require "include";\ninclude :personal "me";\n' });
  assert.deepEqual(boxes(await plan(self)), ['INBOX']);
});

test('a script that does not compile: INBOX, errors in ~/.dovecot.sieve.log as sievec prints them', async () => {
  const h = home('if foo { discard; }\n');
  const p = await plan(h);
  assert.deepEqual(boxes(p), ['INBOX']);
  assert.match(readFileSync(join(h, '.dovecot.sieve.log'), 'utf8'), /line 1: error: unknown test 'foo'/);
});

test('redirect loop between two users ends at the loop header; nothing is lost', async () => {
  const ha = home('redirect "b@x.test";\n');
  const hb = home('redirect "a@x.test";\n');
  let content: Buffer = MSG({ to: 'a@x.test' });
  let to = 'a@x.test';
  let hops = 0;
  for (;;) {
    const p = await plan(to === 'a@x.test' ? ha : hb, { to, content });
    await p.commit();
    if (p.sends.length === 0) { assert.deepEqual(boxes(p), ['INBOX']); assert.ok(p.log.some((l) => /indicates a mail loop|discarded duplicate forward/.test(l)), p.log.join('\n')); break; }
    assert.ok(++hops <= 4, 'loop not bounded');
    content = p.sends[0]!.content;
    to = p.sends[0]!.recipients[0]!;
  }
  assert.equal(hops, 2);
});

test('two users on vacation answer each other once: the replies have the null sender and are not answered', async () => {
  const ha = home('require "vacation";\nvacation "A is away";\n');
  const hb = home('require "vacation";\nvacation "B is away";\n');
  const p1 = await plan(hb, { from: 'a@x.test', to: 'b@x.test', content: MSG({ from: 'a@x.test', to: 'b@x.test' }) });
  assert.equal(p1.sends.length, 1);
  const reply = p1.sends[0]!;
  assert.equal(reply.sender, '');
  assert.match(reply.content.toString(), /^Auto-Submitted: auto-replied \(vacation\)\r$/m);
  const p2 = await plan(ha, { from: reply.sender, to: 'a@x.test', content: reply.content });
  assert.equal(p2.sends.length, 0);
  assert.ok(p2.log.some((l) => /discarded vacation reply to <>/.test(l)));
  // The same sender again within :days gets no second reply.
  await p1.commit();
  const p3 = await plan(hb, { from: 'a@x.test', to: 'b@x.test', content: MSG({ from: 'a@x.test', to: 'b@x.test' }) });
  assert.equal(p3.sends.length, 0);
});

test('sieve_before files spam into Junk and the user script is not run; otherwise the user script runs after it', async () => {
  const g = mkdtempSync(join(tmpdir(), 'sieve-global-'));
  writeFileSync(join(g, 'spam.sieve'), 'require "fileinto";\nif header :contains "x-spam-flag" "YES" { fileinto "Junk"; stop; }\n');
  const s = settings({ sieve_before: g });
  const h = home('require "fileinto";\nfileinto "Work";\n');
  const spam = await plan(h, { s, content: MSG({ extra: 'X-Spam-Flag: YES\n' }) });
  assert.deepEqual(boxes(spam), ['Junk']);
  const ham = await plan(h, { s });
  assert.deepEqual(boxes(ham), ['Work']);
});

test('a 1 MB script is refused before it is parsed; delivery keeps the message', async () => {
  const h = home('# ' + 'x'.repeat(1024 * 1024) + '\ndiscard;\n');
  const p = await plan(h);
  assert.deepEqual(boxes(p), ['INBOX']);
  assert.match(readFileSync(join(h, '.dovecot.sieve.log'), 'utf8'), /too large/);
});

test('locations: the active symlink into ~/sieve, include :global from sieve_global, sieve_default, a single-file location', async () => {
  const { symlinkSync } = await import('node:fs');
  const h = mkdtempSync(join(tmpdir(), 'sieve-loc-'));
  mkdirSync(join(h, 'sieve'));
  writeFileSync(join(h, 'sieve', 'main.sieve'), 'require ["include"];\ninclude :personal "helper";\ninclude :global "corp";\n');
  writeFileSync(join(h, 'sieve', 'helper.sieve'), 'require "imap4flags";\naddflag "Helped";\n');
  symlinkSync('sieve/main.sieve', join(h, '.dovecot.sieve'));
  const g = mkdtempSync(join(tmpdir(), 'sieve-glob-'));
  writeFileSync(join(g, 'corp.sieve'), 'require "fileinto";\nif header :contains "subject" "hi" { fileinto "Corp"; }\n');
  const p = await plan(h, { s: settings({ sieve_global: g }) });
  assert.deepEqual(p.stores.map((x) => [x.mailbox, x.flags]), [['Corp', ['Helped']]]);
  // No user script: sieve_default.
  const d = mkdtempSync(join(tmpdir(), 'sieve-def-'));
  writeFileSync(join(d, 'default.sieve'), 'require "fileinto";\nfileinto "Default";\n');
  const empty = mkdtempSync(join(tmpdir(), 'sieve-empty-'));
  assert.deepEqual(boxes(await plan(empty, { s: settings({ sieve_default: join(d, 'default.sieve') }) })), ['Default']);
  // sieve = ~/.dovecot.sieve: the file itself.
  const f = mkdtempSync(join(tmpdir(), 'sieve-file-'));
  writeFileSync(join(f, '.dovecot.sieve'), 'discard;\n');
  const pf = await plan(f, { s: settings({ sieve: '~/.dovecot.sieve' }) });
  assert.deepEqual(pf.stores, []);
  // A missing :global include without sieve_global: the script is not run, the user is told why.
  const ng = await plan(h);
  assert.deepEqual(boxes(ng), ['INBOX']);
  assert.match(readFileSync(join(h, '.dovecot.sieve.log'), 'utf8'), /global location for included script `corp' is unavailable/);
});

test('matching work is bounded per run: many heavy tests fail the script (runtime error), not the server', async () => {
  const { SieveExec, SieveResult } = await import('./sieve-interp.ts');
  const { SieveMessage } = await import('./sieve-message.ts');
  const { compileSieve } = await import('./sieve-compile.ts');
  const tests = Array.from({ length: 500 }, (_, i) => `if body :regex "(a|b)*c${i}" { discard; }\n`).join('');
  const c = compileSieve(`require ["body","regex"];\n${tests}`);
  assert.ok(c.ok);
  const msg = new SieveMessage(Buffer.concat([Buffer.from('Subject: x\n\n'), Buffer.alloc(20_000, 'ab')]));
  const x = new SieveExec({
    message: msg, envelope: { from: 'a@x.test', to: 'b@x.test' }, now: new Date(),
    limits: { maxActions: 32, maxRedirects: 4, maxWork: 5_000_000 }, recipientDelimiter: '+',
    vacation: { minPeriod: 0, maxPeriod: 1, defaultPeriod: 1 }, environment: {}, mailboxExists: async () => true,
  }, new SieveResult({ maxActions: 32, maxRedirects: 4 }));
  await assert.rejects(x.run(c.script), /exceeded its matching budget/);
});

test('a redirect address made by variables is checked at run time; a bad one keeps the message', async () => {
  const p = await plan(home('require "variables";\nset "to" "not an address";\nredirect "${to}";\n'));
  assert.deepEqual(boxes(p), ['INBOX']);
  assert.equal(p.sends.length, 0);
  assert.ok(p.log.some((l) => /specified redirect address 'not an address' is invalid/.test(l)), p.log.join('\n'));
});

test('nested foreverypart loops with break run to the end (Pigeonhole 0.5.19 crashes here)', async () => {
  const mime = Buffer.from('Subject: m\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\na\n--B\nContent-Type: text/html\n\nb\n--B--\n');
  const p = await plan(home('require ["foreverypart","mime","imap4flags"];\nforeverypart :name "outer" { foreverypart { addflag "Inner"; break; } addflag "Outer"; }\n'), { content: mime });
  assert.deepEqual(p.stores.map((s) => [s.mailbox, s.flags]), [['INBOX', ['Outer']]]);
});

test('sieve_vacation_default_subject(_template) and sieve_user_email', async () => {
  const s = settings({ sieve_vacation_default_subject: 'Away', sieve_vacation_default_subject_template: 'Re: %{subject} [away]', sieve_user_email: 'me@alias.test' });
  const h = home('require "vacation";\nvacation "gone";\n');
  const p = await plan(h, { s, content: MSG({ to: 'me@alias.test', subject: 'Lunch?' }) });
  assert.equal(p.sends.length, 1, p.log.join('\n'));
  assert.match(p.sends[0]!.content.toString(), /^Subject: Re: Lunch\? \[away\]\r$/m);
  const q = await plan(home('require "vacation";\nvacation "gone";\n'), { s, content: Buffer.from('From: a@x.test\nTo: b@x.test\nMessage-ID: <q@x>\n\nno subject\n') });
  assert.match(q.sends[0]!.content.toString(), /^Subject: Away\r$/m);
});

test('older configurations: sieve = ~/.dovecot.sieve with sieve_dir = ~/sieve for :personal includes', async () => {
  const h = home('require "include";\ninclude :personal "lists";\n', { lists: 'require "fileinto";\nfileinto "Lists";\n' });
  const p = await plan(h, { s: settings({ sieve: '~/.dovecot.sieve', sieve_dir: '~/sieve' }) });
  assert.deepEqual(boxes(p), ['Lists']);
});
