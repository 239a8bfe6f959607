/**
 * A bounded, seeded fuzz pass over the running system's SMTP port (issue 8 item 3/4; the
 * coverage-guided parser fuzzers are separate): 500 sessions, each a valid SMTP session
 * (EHLO/HELO, MAIL with ESMTP parameters, RCPTs, DATA or BDAT, RSET, NOOP, VRFY, STARTTLS,
 * AUTH, QUIT) mutated at random — bytes flipped, inserted (NUL, CR, LF, 0xff, '.'), lines
 * duplicated, dropped, swapped, cut short, blown up to 20 KB, the connection closed at a
 * random byte. 10 sessions run at a time. Afterwards the master is still alive, `postern status`
 * is 0, the log has no crash (uncaught/panic/fatal), and a fresh client can still send a
 * message that is delivered. SEED=n in the environment reproduces another run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { PosternSystem } from '../harness/postern-system.ts';
import { startLoad, warmMaildirs } from '../harness/fault-kit.ts';

const ITERATIONS = 500;
const SEED = Number(process.env.SEED ?? 20261127);
let sys: PosternSystem;
before(async () => { sys = await PosternSystem.start(); await warmMaildirs(sys, ['postmaster@example.test']); });
after(async () => { await sys?.destroy(); });

let state = SEED >>> 0;
function rnd(n: number): number {   // xorshift32
  state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0;
  return state % n;
}
const pick = <T>(a: readonly T[]): T => a[rnd(a.length)]!;

const BASES: string[][] = [
  ['EHLO fuzz.example.org', 'MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME', 'RCPT TO:<postmaster@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@example.test', 'DATA', 'Subject: fuzz\r\n\r\nbody\r\n..dot\r\n.', 'QUIT'],
  ['HELO fuzz', 'MAIL FROM:<>', 'RCPT TO:<postmaster@example.test>', 'RCPT TO:<nobody@example.test>', 'DATA', 'x\r\n.', 'RSET', 'NOOP', 'VRFY postmaster', 'QUIT'],
  ['EHLO fuzz', 'MAIL FROM:<a@example.org> SMTPUTF8', 'RCPT TO:<postmaster@example.test>', 'BDAT 20 LAST\r\nSubject: b\r\n\r\nbdat\r\n', 'QUIT'],
  ['EHLO fuzz', 'AUTH PLAIN AHBvc3RtYXN0ZXJAZXhhbXBsZS50ZXN0AHd4', 'AUTH LOGIN', 'cG9zdG1hc3Rlcg==', 'eA==', 'STARTTLS', 'QUIT'],
  ['EHLO fuzz', 'MAIL FROM:<a@example.org> RET=HDRS ENVID=abc+2B', 'RCPT TO:<"quoted local"@example.test>', 'RCPT TO:<@route:postmaster@example.test>', 'DATA', '.', 'QUIT'],
];
const JUNK = ['\0', '\r', '\n', '\r\n', '\xff', '.', ':', '<', '>', '"', '\\', ' ', '\t', '=', '+', '%', '@', 'BDAT 5\r\n', 'DATA\r\n', '\r\n.\r\n'];

function mutate(lines: string[]): string {
  const l = [...lines];
  const n = 1 + rnd(4);
  for (let i = 0; i < n; i++) {
    const k = rnd(l.length);
    switch (rnd(8)) {
      case 0: { const s = l[k]!; const p = rnd(s.length + 1); l[k] = s.slice(0, p) + String.fromCharCode(rnd(256)) + s.slice(p + 1); break; }
      case 1: { const s = l[k]!; const p = rnd(s.length + 1); l[k] = s.slice(0, p) + pick(JUNK) + s.slice(p); break; }
      case 2: l.splice(k, 0, l[k]!); break;
      case 3: if (l.length > 1) l.splice(k, 1); break;
      case 4: { const j = rnd(l.length); [l[k], l[j]] = [l[j]!, l[k]!]; break; }
      case 5: l[k] = l[k]!.slice(0, rnd(l[k]!.length + 1)); break;
      case 6: l[k] = l[k]! + pick(['x', 'A', '\0', ' ']).repeat(1000 + rnd(20000)); break;
      default: l[k] = l[k]!.toLowerCase(); break;
    }
  }
  let bytes = l.join('\r\n') + (rnd(4) ? '\r\n' : '');
  if (rnd(5) === 0) bytes = bytes.slice(0, rnd(bytes.length + 1));   // connection cut at a random byte
  return bytes;
}

function session(bytes: string): Promise<number> {
  return new Promise((resolve) => {
    const s = connect({ port: sys.ports.smtp, host: '127.0.0.1' });
    let got = 0;
    const done = () => { clearTimeout(timer); s.destroy(); resolve(got); };
    const timer = setTimeout(done, 800);
    s.on('data', (d) => { got += d.length; });
    s.on('error', done);
    s.on('close', done);
    s.once('data', () => { s.write(Buffer.from(bytes, 'latin1')); if (rnd(2)) s.end(); });
  });
}

test(`${ITERATIONS} mutated SMTP sessions (seed ${SEED}): the server survives and still delivers`, async (t) => {
  const start = Date.now();
  let answered = 0;
  let sent = 0;
  const queue = Array.from({ length: ITERATIONS }, () => mutate(pick(BASES)));
  const workers = Array.from({ length: 10 }, async () => {
    for (let b = queue.shift(); b !== undefined; b = queue.shift()) {
      sent += b.length;
      if ((await session(b)) > 0) answered++;
    }
  });
  await Promise.all(workers);
  t.diagnostic(`${ITERATIONS} sessions, ${(sent / 1024).toFixed(0)} KB sent, ${answered} answered, ${((Date.now() - start) / 1000).toFixed(1)} s`);
  assert.ok(sys.alive, 'the master process is alive');
  assert.equal((await sys.cli('status')).status, 0, 'postern status');
  assert.doesNotMatch(sys.log, /uncaught|panic:|fatal:|TypeError|RangeError|SyntaxError|ReferenceError|at .*\.ts:\d+/i, 'no crash or stack trace in the log');
  const out = await startLoad({ port: sys.ports.smtp, threads: 1, count: 1, tag: 'after-fuzz', rcpts: ['postmaster@example.test'] }).done();
  const qid = out.get('after-fuzz-0-0')?.qid;
  assert.ok(qid, `a fresh client is served: ${JSON.stringify([...out])}`);
  // (the queue may keep fuzzed mail for odd destinations from 127.0.0.1, which is in mynetworks)
  await sys.waitLog(new RegExp(`${qid}: to=<postmaster@example\\.test>, relay=virtual, .*status=sent`), 10_000);
  assert.equal(answered, ITERATIONS, 'every session got at least a greeting');
});
