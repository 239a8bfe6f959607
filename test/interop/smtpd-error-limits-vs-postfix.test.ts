/**
 * smtpd's error limits against real Postfix 3.7 (issue 13 item 8): the same hostile sessions
 * against both, with the same main.cf, must get the same replies, the same disconnect, and the
 * same smtpd_error_sleep_time pacing (Postfix smtpd.c smtpd_proto(), smtpd_chat.c
 * smtpd_chat_reply(): past smtpd_soft_error_limit every reply waits; at smtpd_hard_error_limit
 * "421 4.7.0 <myhostname> Error: too many errors"; junk commands past smtpd_junk_command_limit
 * count as errors; a delivered message forgives them).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealPostfix } from '../harness/real-postfix.ts';
import { freePort } from '../harness/free-port.ts';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { createSmtpd } from '../../src/smtpd/smtpd.ts';
import { smtpdClients } from '../../src/master/master-clients.ts';
import { PERMIT_ALL } from '../../src/smtpd/smtpd-policy.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});
const skip = RealPostfix.unavailable();

/** Each case: its main.cf lines, and the Postfix / Postern servers started with them. */
const CASES = {
  rcpt: 'smtpd_soft_error_limit = 17\nsmtpd_hard_error_limit = 20\nsmtpd_error_sleep_time = 1s\n',
  junk: 'smtpd_junk_command_limit = 5\nsmtpd_hard_error_limit = 3\nsmtpd_error_sleep_time = 0\n',
  forgive: 'smtpd_hard_error_limit = 3\nsmtpd_error_sleep_time = 0\n',
  sleepAll: 'smtpd_soft_error_limit = 1\nsmtpd_hard_error_limit = 5\nsmtpd_error_sleep_time = 1\n',
  deadline: 'smtpd_timeout = 2s\nsmtpd_per_request_deadline = yes\n',
  stress: '',
} as const;
/**
 * Postfix's master passes `-o stress=yes` to the smtpd processes it starts when the service's
 * slots run out; Postern's session skeleton says it per session (slot.stress). The `stress` case
 * gives the real smtpd that override and Postern's session the stress slot.
 */
const PF_ONLY: Partial<Record<Case, string>> = { stress: 'stress = yes\n' };
type Case = keyof typeof CASES;
const SHARED = 'smtpd_discard_ehlo_keywords = etrn\nmydestination = example.test\nlocal_recipient_maps =\n'; // Postern has no ETRN

const ports = new Map<Case, { pf: number; ours: number }>();
const pfs: RealPostfix[] = [];
const servers: Server[] = [];
const dirs: string[] = [];

before(async () => {
  if (skip) return;
  const names = Object.keys(CASES) as Case[];
  const pfPorts = await Promise.all(names.map(() => freePort()));
  // One real Postfix instance per case would be slow: one instance, one smtpd line per case
  // with the case's settings as -o overrides.
  const master = names.map((n, i) => `127.0.0.1:${pfPorts[i]} inet n - n - - smtpd\n${(CASES[n] + (PF_ONLY[n] ?? '')).trim().split('\n').filter(Boolean).map((l) => `  -o ${l.replace(/\s*=\s*/, '=')}`).join('\n')}`).join('\n');
  pfs.push(await RealPostfix.start({ mainCf: SHARED, masterCf: master }));
  for (const [i, n] of names.entries()) {
    const dir = mkdtempSync(join(tmpdir(), 'postern-errlim-'));
    dirs.push(dir);
    const cfg = MainConfig.parse(`myhostname = mx.example.test\nsmtpd_banner = $myhostname ESMTP $mail_name\nmail_name = Postfix\n${SHARED}${CASES[n]}`, 'main.cf', dir);
    const queue = new MailQueue(dir);
    queue.ensureDirs();
    const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy: PERMIT_ALL, service: 'smtp' });
    const server = createServer((s) => smtpd.handle(s, n === 'stress' ? { stress: true } : undefined));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    ports.set(n, { pf: pfPorts[i]!, ours: (server.address() as { port: number }).port });
  }
});
after(async () => {
  for (const s of servers) s.close();
  for (const p of pfs) await p.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Session { replies: string[]; closed: boolean; ms: number }

/**
 * Greeting, then each step written in one piece after the previous step's replies (`n` of them)
 * arrived; after the last step, everything until the server closes (or `tailMs` passes).
 */
async function session(port: number, steps: [string, number][], tailMs = 15_000): Promise<Session> {
  const sock = connect(port, '127.0.0.1');
  sock.setEncoding('latin1');
  const t0 = performance.now();
  let buf = '';
  let closed = false;
  const replies: string[] = [];
  let waiter: (() => void) | undefined;
  sock.on('data', (d: string) => {
    buf += d;
    let m;
    while ((m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(buf.replace(/\r\n/g, '\n')))) {
      const len = m[0].split('\n').length - 1;
      const lines = buf.split('\r\n').slice(0, len);
      buf = buf.split('\r\n').slice(len).join('\r\n');
      replies.push(lines.join('\n'));
    }
    waiter?.();
  });
  sock.on('error', () => {});
  sock.on('close', () => { closed = true; waiter?.(); });
  const wait = async (count: number, ms: number) => {
    const end = performance.now() + ms;
    while (replies.length < count && !closed && performance.now() < end) {
      await new Promise<void>((r) => { waiter = r; setTimeout(r, 50); });
    }
  };
  await wait(1, 5000);
  let want = 1;
  for (const [data, n] of steps) {
    sock.write(data);
    want += n;
    await wait(want, tailMs);
  }
  const end = performance.now() + tailMs;
  while (!closed && performance.now() < end) await new Promise((r) => setTimeout(r, 20));
  const ms = performance.now() - t0;
  sock.destroy();
  return { replies: replies.map((r) => r.replace(/queued as [0-9A-Z]+/, 'queued as QID')), closed, ms };
}

async function both(c: Case, steps: [string, number][]): Promise<{ ours: Session; theirs: Session }> {
  const p = ports.get(c)!;
  const [ours, theirs] = await Promise.all([session(p.ours, steps), session(p.pf, steps)]);
  return { ours, theirs };
}

test('10,000 pipelined bad RCPTs: 20 errors answered, the last 3 and the 421 after a 1 s sleep each, then the disconnect — as Postfix', { skip }, async () => {
  const rcpts = 'RCPT TO:<u@example.test>\r\n'.repeat(10_000);
  const { ours, theirs } = await both('rcpt', [['EHLO client.example\r\n', 1], [rcpts, 21]]);
  console.log(`# rcpt: Postern ${ours.replies.length} replies in ${Math.round(ours.ms)} ms, Postfix ${theirs.replies.length} in ${Math.round(theirs.ms)} ms`);
  assert.deepEqual(ours.replies, theirs.replies);
  assert.equal(ours.replies.length, 1 + 1 + 20 + 1);
  assert.equal(ours.replies.filter((r) => r === '503 5.5.1 Error: need MAIL command').length, 20);
  assert.equal(ours.replies.at(-1), '421 4.7.0 mx.example.test Error: too many errors');
  assert.ok(ours.closed && theirs.closed, 'both disconnect after the 421');
  // Replies 18, 19, 20 and the 421 each wait smtpd_error_sleep_time (1 s): about 4 s for both.
  for (const s of [ours, theirs]) assert.ok(s.ms > 3500 && s.ms < 8000, `${Math.round(s.ms)} ms`);
  assert.ok(Math.abs(ours.ms - theirs.ms) < 1500, `Postern ${Math.round(ours.ms)} ms vs Postfix ${Math.round(theirs.ms)} ms`);
});

test('junk commands (EHLO and NOOP) past smtpd_junk_command_limit count as errors, then 421 — as Postfix', { skip }, async () => {
  const steps: [string, number][] = [['EHLO client.example\r\n', 1]];
  for (let i = 0; i < 20; i++) steps.push(['NOOP\r\n', 1]);
  const { ours, theirs } = await both('junk', steps);
  assert.deepEqual(ours.replies, theirs.replies);
  assert.equal(ours.replies.filter((r) => r === '250 2.0.0 Ok').length, 8);
  assert.equal(ours.replies.at(-1), '421 4.7.0 mx.example.test Error: too many errors');
  assert.ok(ours.closed && theirs.closed);
});

test('a delivered message forgives the errors before it — as Postfix', { skip }, async () => {
  const bad: [string, number] = ['BOGUS\r\n', 1];
  const { ours, theirs } = await both('forgive', [
    ['EHLO client.example\r\n', 1], bad, bad,
    ['MAIL FROM:<a@example.org>\r\n', 1], ['RCPT TO:<b@example.test>\r\n', 1], ['DATA\r\n', 1], ['Subject: x\r\n\r\nbody\r\n.\r\n', 1],
    bad, bad, bad, ['NOOP\r\n', 1],
  ]);
  assert.deepEqual(ours.replies, theirs.replies);
  assert.equal(ours.replies.at(-1), '421 4.7.0 mx.example.test Error: too many errors');
});

test('past smtpd_soft_error_limit every reply waits smtpd_error_sleep_time, not only errors — as Postfix', { skip }, async () => {
  const { ours, theirs } = await both('sleepAll', [['BOGUS\r\n', 1], ['NOOP\r\n', 1], ['QUIT\r\n', 1]]);
  assert.deepEqual(ours.replies, theirs.replies);
  assert.deepEqual(ours.replies.slice(1), ['500 5.5.2 Error: command not recognized', '250 2.0.0 Ok', '221 2.0.0 Bye']);
  for (const s of [ours, theirs]) assert.ok(s.ms > 1800 && s.ms < 4500, `${Math.round(s.ms)} ms`);
});

test('smtpd_per_request_deadline: a command trickled byte by byte is cut off after smtpd_timeout — as Postfix', { skip }, async () => {
  const p = ports.get('deadline')!;
  const trickle = async (port: number): Promise<{ got: string; ms: number }> => {
    const sock = connect(port, '127.0.0.1');
    sock.setEncoding('latin1');
    let got = '';
    let closed = false;
    sock.on('data', (d: string) => { got += d; });
    sock.on('error', () => {});
    sock.on('close', () => { closed = true; });
    while (!got.includes('\r\n')) await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    const line = 'EHLO client.example\r\n';
    for (let i = 0; i < line.length * 2 && !closed; i++) {   // 0.3 s a byte: 6 s for the line
      if (!sock.destroyed) sock.write(line[i % line.length]!);
      await new Promise((r) => setTimeout(r, 300));
    }
    const ms = performance.now() - t0;
    sock.destroy();
    return { got: got.split('\r\n').slice(1).join('\n'), ms };
  };
  const [ours, theirs] = await Promise.all([trickle(p.ours), trickle(p.pf)]);
  assert.equal(ours.got, theirs.got);
  assert.equal(ours.got, '421 4.4.2 mx.example.test Error: timeout exceeded\n');
  for (const r of [ours, theirs]) assert.ok(r.ms > 1500 && r.ms < 4000, `${Math.round(r.ms)} ms`);
});

test('stress=yes: smtpd_hard_error_limit ${stress?{1}:{20}} and smtpd_junk_command_limit ${stress?{1}:{100}} — as Postfix', { skip }, async () => {
  const errors = await both('stress', [['EHLO client.example\r\n', 1], ['BOGUS\r\n', 2]]);
  assert.deepEqual(errors.ours.replies, errors.theirs.replies);
  assert.deepEqual(errors.ours.replies.slice(2), ['500 5.5.2 Error: command not recognized', '421 4.7.0 mx.example.test Error: too many errors']);
  const junk = await both('stress', [['EHLO client.example\r\n', 1], ['NOOP\r\n', 1], ['NOOP\r\n', 2]]);
  assert.deepEqual(junk.ours.replies, junk.theirs.replies);
  assert.equal(junk.ours.replies.at(-1), '421 4.7.0 mx.example.test Error: too many errors');
  assert.ok(junk.ours.closed && junk.theirs.closed);
});
