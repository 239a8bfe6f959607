/**
 * Hostile milters (test/harness/hostile-milter.ts): one that never answers, closes in the middle
 * of the message, answers with an unknown or malformed reply, adds a 1 MB header, replaces the
 * body with 100 MB, or asks for an edit and dies before its final reply. Real Postfix 3.7 and
 * Postern get the same main.cf ({ inet:..., timeouts=2s, default_action=... }) and the same
 * dialogue; asserted: the replies are Postfix's, the default action decides within the
 * milter's timeout, a message is queued untouched or not at all (never half-modified), nothing
 * is left behind, other sessions are served meanwhile, and the log names the milter.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RealPostfix } from '../harness/real-postfix.ts';
import { MilterPair, type Side } from '../harness/milter-kit.ts';
import { HostileMilter, type HostileMode } from '../harness/hostile-milter.ts';
import { LineChat } from '../harness/line-chat.ts';
import { setLogSink } from '../../src/util/msg.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); });
const skip = RealPostfix.unavailable();

let hostile: HostileMilter | undefined;
const pairs: Partial<Record<'tempfail' | 'accept', MilterPair>> = {};

before(async () => {
  if (skip) return;
  hostile = await HostileMilter.start('silent');
  for (const action of ['tempfail', 'accept'] as const) {
    pairs[action] = await MilterPair.start('smtpd_discard_ehlo_keywords = etrn',
      () => `smtpd_milters = { inet:127.0.0.1:${hostile!.port}, connect_timeout=2s, command_timeout=2s, content_timeout=2s, default_action=${action} }`);
  }
});

after(async () => {
  await pairs.tempfail?.stop();
  await pairs.accept?.stop();
  await hostile?.stop();
});

const MESSAGE = 'From: a@example.org\nTo: b@example.net\nSubject: hostile\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <h@example.org>\n\nthe original body\n';
const DIALOGUE = ['EHLO client.example.org', 'MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.net>', 'DATA', '.'];

function masked(r: string[]): string[] {
  return r.map((x) => x.replace(/queued as [0-9A-Za-z]+/, 'queued as QID').replace(/\(closed: .*/, '(closed)'));
}

async function run(mode: HostileMode, action: 'tempfail' | 'accept'): Promise<Record<Side, { replies: string[]; ms: number; content?: string }>> {
  hostile!.mode = mode;
  const pair = pairs[action]!;
  const out = {} as Record<Side, { replies: string[]; ms: number; content?: string }>;
  for (const side of ['postfix', 'postern'] as const) {
    const t0 = Date.now();
    const r = await pair.dialogue(side, DIALOGUE, MESSAGE);
    const ms = Date.now() - t0;
    const q = r.queueId ? await pair.queued(side, r.queueId).catch(() => undefined) : undefined;
    out[side] = { replies: masked(r.replies), ms, content: q?.content.replace(/^Received: [^\n]*\n(?:[ \t][^\n]*\n)*/m, '') };
  }
  return out;
}

const CASES: [HostileMode, 'tempfail' | 'accept', RegExp][] = [
  ['silent', 'tempfail', /^451 4\.7\.1 Service unavailable - try again later/],
  ['silent', 'accept', /^250 2\.0\.0 Ok: queued as/],
  ['hang-eom', 'tempfail', /^451 4\.7\.1 Service unavailable - try again later/],
  ['hang-eom', 'accept', /^250 2\.0\.0 Ok: queued as/],
  ['close-body', 'tempfail', /^451 4\.7\.1 Service unavailable - try again later/],
  ['unknown-eom', 'tempfail', /^451 4\.7\.1 Service unavailable - try again later/],
  ['malformed', 'accept', /^250 2\.0\.0 Ok: queued as/],
  ['malformed', 'tempfail', /^451 4\.3\.5 Server configuration problem - try again later/],
  ['half-edit', 'accept', /^250 2\.0\.0 Ok: queued as/],
];

for (const [mode, action, expect] of CASES) {
  test(`a milter that is ${mode}, default_action = ${action}: Postfix's replies, in time, nothing half-done`, { skip }, async () => {
    logs.length = 0;
    const r = await run(mode, action);
    assert.deepEqual(r.postern.replies, r.postfix.replies, 'replies (Postern vs Postfix)');
    assert.ok(r.postern.replies.some((x) => expect.test(x)), `${expect} in ${r.postern.replies.join(' | ')}`);
    // Resolved by the default action within the milter's timeouts (2 s per wait), not later.
    assert.ok(r.postern.ms < 9000, `took ${r.postern.ms} ms`);
    if (r.postern.content !== undefined) {
      // Postfix applies a milter's edits as they arrive: an X-Half header from a milter that died
      // before its final reply stays in Postfix's queue file; Postern applies none of them.
      if (mode !== 'half-edit') assert.equal(r.postern.content, r.postfix.content, 'queued message (Postern vs Postfix)');
      assert.match(r.postern.content, /the original body/);
      assert.doesNotMatch(r.postern.content, /X-Half|X-Huge/);
    }
    assert.ok(logs.some((l) => l.includes(`milter inet:127.0.0.1:${hostile!.port}`) || l.includes(`Milter service inet:127.0.0.1:${hostile!.port}`)), `log names the milter:\n${logs.join('\n')}`);
  });
}

test('a milter that adds a 1 MB header: accepted as by Postfix, the header cut at header_size_limit', { skip }, async () => {
  const r = await run('big-header', 'tempfail');
  assert.deepEqual(r.postern.replies, r.postfix.replies, 'replies (Postern vs Postfix)');
  const huge = /X-Huge:[^\n]*/.exec(r.postern.content ?? '')?.[0] ?? '';
  assert.equal(huge.length, 102400);
  assert.match(r.postern.content ?? '', /\n\nthe original body\n$/);
});

test('a milter that replaces the body with 100 MB: refused as too big, nothing queued', { skip, timeout: 60_000 }, async () => {
  logs.length = 0;
  const before = pairs.tempfail!.leftovers().length;
  const r = await run('big-body', 'tempfail');
  assert.deepEqual(r.postern.replies, r.postfix.replies, 'replies (Postern vs Postfix)');
  assert.match(r.postern.replies[5]!, /^552 5\.3\.4 /);
  assert.ok(logs.some((l) => /queue file size limit exceeded/.test(l)), logs.join('\n'));
  assert.equal(pairs.tempfail!.leftovers().length, before, 'no queue file left behind');
});

test('while a milter hangs, other sessions are served', { skip }, async () => {
  hostile!.mode = 'hang-eom';
  const pair = pairs.tempfail!;
  const before = pair.leftovers().length;
  const slow = pair.dialogue('postern', DIALOGUE, MESSAGE);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  const { c, greeting } = await LineChat.greet(pair.ports.postern);
  assert.match(greeting, /^220 /);
  assert.match(await c.cmd('NOOP'), /^250 /);
  await c.cmd('QUIT');
  assert.ok(Date.now() - t0 < 1500, 'another session was answered while the milter hung');
  const r = await slow;
  assert.match(r.replies[5]!, /^451 4\.7\.1 /);
  assert.equal(pair.leftovers().length, before, 'no queue file left behind');
});

test('a milter that asks for 200 headers of 1 MB: refused as too big, as Postfix, memory bounded', { skip, timeout: 60_000 }, async () => {
  logs.length = 0;
  const before = pairs.tempfail!.leftovers().length;
  const rss0 = process.memoryUsage().rss;
  const r = await run('many-headers', 'tempfail');
  assert.deepEqual(r.postern.replies, r.postfix.replies, 'replies (Postern vs Postfix)');
  assert.match(r.postern.replies[5]!, /^552 5\.3\.4 /);
  assert.ok(process.memoryUsage().rss - rss0 < 150 * 1024 * 1024, 'the 200 MB of requests were not kept');
  assert.equal(pairs.tempfail!.leftovers().length, before, 'no queue file left behind');
});
