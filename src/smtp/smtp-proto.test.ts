/**
 * smtp-proto / smtp-conn against scripted servers on loopback: what real servers rarely do
 * on demand — exact write grouping (RFC 2920 PIPELINING), SIZE limits, EHLO refused, a 554
 * greeting, per-recipient LMTP replies that differ, and hostile replies (endless lines, NUL
 * bytes, garbage, a code that changes mid-reply, silence after DATA).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../global/mail-conf.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { CleanupSession } from '../cleanup/cleanup.ts';
import { setLogSink } from '../util/msg.ts';
import { createSmtpAgent, createLmtpAgent } from './smtp.ts';

setLogSink(() => {});
const dir = mkdtempSync(join(tmpdir(), 'postern-smtpproto-'));
const queue = new MailQueue(join(dir, 'queue'));
queue.ensureDirs();
const servers: Server[] = [];
after(() => { for (const s of servers) s.close(); rmSync(dir, { recursive: true, force: true }); });

/**
 * A server driven by a function that sees each chunk the client wrote (as one string) and
 * returns what to answer. `chunks` keeps every chunk, to check how commands were grouped.
 */
async function scripted(onChunk: (chunk: string, sock: Socket, state: { data: boolean; buf: string }) => string | undefined, greeting = '220 fake ESMTP\r\n'): Promise<{ port: number; chunks: string[] }> {
  const chunks: string[] = [];
  const srv = createServer((sock) => {
    const state = { data: false, buf: '' };
    sock.on('error', () => {});
    if (greeting) sock.write(greeting);
    sock.on('data', (d) => {
      const s = d.toString('latin1');
      chunks.push(s);
      const out = onChunk(s, sock, state);
      if (out) sock.write(out);
    });
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as { port: number }).port, chunks };
}

async function queued(rcpts: string[], content = 'Subject: t\n\nbody\n'): Promise<QueueFile> {
  const c = await CleanupSession.open({ myhostname: 'h', myorigin: 'h', headerSizeLimit: 102400, messageSizeLimit: 10240000, alwaysAddMissingHeaders: false }, queue, { sender: 's@h.test', attrs: {}, addMissingHeaders: false });
  for (const r of rcpts) c.addRecipient({ address: r, orig: r });
  await c.write(Buffer.from(content));
  const res = await c.finish();
  assert.ok('queueId' in res);
  return QueueFile.open(queue.path('incoming', res.queueId), res.queueId);
}

const cfg = (extra = '') => MainConfig.parse(`myhostname = client.test\nsmtp_helo_timeout = 2s\nsmtp_data_done_timeout = 1s\nsmtp_connection_cache_on_demand = no\nlmtp_connection_cache_on_demand = no\n${extra}`, join(dir, 'main.cf'), dir);
const req = (qf: QueueFile, nexthop: string) => ({ qf, transport: 'smtp', nexthop, recipients: qf.recipients, activeSince: Date.now() });

/** A well-behaved ESMTP server whose EHLO reply and per-command answers can be changed. */
function esmtp(ehlo: string[], answers: { rcpt?: (addr: string) => string; dot?: string } = {}) {
  return (chunk: string, _s: Socket, st: { data: boolean; buf: string }): string | undefined => {
    let out = '';
    st.buf += chunk;
    for (;;) {
      if (st.data) {
        const end = st.buf.indexOf('\r\n.\r\n');
        if (end < 0) return out || undefined;
        st.buf = st.buf.slice(end + 5);
        st.data = false;
        out += answers.dot ?? '250 2.0.0 Ok: queued as FAKE1\r\n';
        continue;
      }
      const nl = st.buf.indexOf('\r\n');
      if (nl < 0) return out || undefined;
      const line = st.buf.slice(0, nl);
      st.buf = st.buf.slice(nl + 2);
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === 'EHLO' || verb === 'LHLO') out += ehlo.map((k, i) => `250${i === ehlo.length - 1 ? ' ' : '-'}${k}\r\n`).join('');
      else if (verb === 'HELO') out += '250 fake\r\n';
      else if (verb === 'MAIL') out += '250 2.1.0 Ok\r\n';
      else if (verb === 'RCPT') out += answers.rcpt ? answers.rcpt(/<([^>]*)>/.exec(line)![1]!) : '250 2.1.5 Ok\r\n';
      else if (verb === 'DATA') { out += '354 go\r\n'; st.data = true; }
      else if (verb === 'QUIT') out += '221 bye\r\n';
      else if (verb === 'RSET') out += '250 Ok\r\n';
      else out += '502 5.5.2 what\r\n';
    }
  };
}

test('PIPELINING: MAIL, every RCPT and DATA leave in one write (RFC 2920 §3.1); SIZE= sent', async () => {
  const srv = await scripted(esmtp(['fake', 'PIPELINING', 'SIZE 100000', '8BITMIME']));
  const agent = createSmtpAgent(cfg());
  const res = await agent.deliver(req(await queued(['a@x.test', 'b@x.test', 'c@x.test']), `[127.0.0.1]:${srv.port}`));
  assert.deepEqual(res.map((r) => r.status), ['sent', 'sent', 'sent']);
  const batch = srv.chunks.find((c) => c.startsWith('MAIL FROM'));
  assert.equal(batch, 'MAIL FROM:<s@h.test> SIZE=20\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n');
});

test('DATA: a CR before the LF in queued content is sent as it is ("x\\r" + CRLF), dot lines are stuffed', async () => {
  const srv = await scripted(esmtp(['fake', 'PIPELINING']));
  const agent = createSmtpAgent(cfg());
  const [r] = await agent.deliver(req(await queued(['a@x.test'], 'Subject: t\n\nline with CR\r\n.dot\n'), `[127.0.0.1]:${srv.port}`));
  assert.equal(r!.status, 'sent');
  const wire = srv.chunks.join('');
  assert.ok(wire.includes('\r\n\r\nline with CR\r\r\n..dot\r\n.\r\n'), JSON.stringify(wire.slice(-80)));
});

test('SIZE: a message over the server limit bounces 5.3.4 before MAIL FROM is sent', async () => {
  const srv = await scripted(esmtp(['fake', 'SIZE 10']));
  const agent = createSmtpAgent(cfg());
  const [r] = await agent.deliver(req(await queued(['a@x.test']), `[127.0.0.1]:${srv.port}`));
  assert.deepEqual([r!.status, r!.dsn, r!.text], ['bounced', '5.3.4', 'message size 20 exceeds size limit 10 of server 127.0.0.1[127.0.0.1]']);
  assert.ok(!srv.chunks.some((c) => c.includes('MAIL FROM')));
});

test('EHLO refused with 502: falls back to HELO (RFC 5321 §4.1.1.1) and delivers', async () => {
  const srv = await scripted((chunk) => {
    if (chunk.startsWith('EHLO')) return '502 5.5.1 no ESMTP here\r\n';
    if (chunk.startsWith('HELO')) return '250 hi\r\n';
    if (chunk.startsWith('MAIL')) return '250 ok\r\n';
    if (chunk.startsWith('RCPT')) return '250 ok\r\n';
    if (chunk.startsWith('DATA')) return '354 go\r\n';
    if (chunk.endsWith('\r\n.\r\n')) return '250 queued\r\n';
    return undefined;
  });
  const agent = createSmtpAgent(cfg());
  const [r] = await agent.deliver(req(await queued(['a@x.test']), `[127.0.0.1]:${srv.port}`));
  assert.equal(r!.status, 'sent', r!.text);
  assert.equal(r!.dsn, '2.0.0');
  assert.equal(r!.text, '250 queued');
  assert.ok(srv.chunks.includes('HELO client.test\r\n'));
});

test('a 554 greeting: "refused to talk to me", deferred (smtp_skip_5xx_greeting = yes); bounced with = no', async () => {
  const srv = await scripted(() => undefined, '554 5.7.1 go away\r\n');
  const [r] = await createSmtpAgent(cfg()).deliver(req(await queued(['a@x.test']), `[127.0.0.1]:${srv.port}`));
  assert.deepEqual([r!.status, r!.dsn, r!.text], ['deferred', '4.7.1', 'host 127.0.0.1[127.0.0.1] refused to talk to me: 554 5.7.1 go away']);
  const [r2] = await createSmtpAgent(cfg('smtp_skip_5xx_greeting = no')).deliver(req(await queued(['a@x.test']), `[127.0.0.1]:${srv.port}`));
  assert.deepEqual([r2!.status, r2!.dsn], ['bounced', '5.7.1']);
});

test('LMTP: one reply per accepted recipient after the dot, each applied to its own recipient (RFC 2033 §4.2)', async () => {
  let n = 0;
  const replies = ['250 2.0.0 <a@x.test> Saved', '452 4.2.2 <b@x.test> Mailbox full, try later', '552 5.2.2 <d@x.test> Over quota'];
  const srv = await scripted(esmtp(['fake', 'PIPELINING', 'ENHANCEDSTATUSCODES'], {
    rcpt: (a) => (a === 'c@x.test' ? '550 5.1.1 <c@x.test> User doesn\'t exist\r\n' : '250 2.1.5 OK\r\n'),
    get dot() { n++; return replies.map((r) => r + '\r\n').join(''); },
  }));
  const agent = createLmtpAgent(cfg());
  const res = await agent.deliver(req(await queued(['a@x.test', 'b@x.test', 'c@x.test', 'd@x.test']), `inet:[127.0.0.1]:${srv.port}`));
  assert.equal(n, 1);
  assert.deepEqual(res.map((r) => [r.recipient.address, r.status, r.dsn]), [
    ['a@x.test', 'sent', '2.0.0'], ['b@x.test', 'deferred', '4.2.2'], ['c@x.test', 'bounced', '5.1.1'], ['d@x.test', 'bounced', '5.2.2'],
  ]);
  assert.equal(res[1]!.text, 'host 127.0.0.1[127.0.0.1] said: 452 4.2.2 <b@x.test> Mailbox full, try later (in reply to end of DATA command)');
  assert.ok(srv.chunks.some((c) => c.startsWith('LHLO client.test')));
});

test('hostile replies: an endless line, NUL bytes, garbage, a code change mid-reply — deferred, never a crash', async () => {
  // The script rejects MAIL with 550, so a session that survives the EHLO reply ends in that bounce.
  const survived = /^host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.5\.1 no \(in reply to MAIL FROM command\)$/;
  const cases: [string, RegExp][] = [
    ['250-' + 'x'.repeat(200000) + '\r\n250 ok\r\n', survived], // cut at 4096 bytes, then parsed
    ['250-fake\r\n251 other\r\n', /^malformed reply from 127\.0\.0\.1\[127\.0\.0\.1\] while performing the EHLO handshake: "251 other"$/],
    ['hello there\r\n', /^malformed reply from .* while performing the EHLO handshake: "hello there"$/],
    ['250 fa\0ke\r\n', survived],
  ];
  for (const [ehloReply, want] of cases) {
    const srv = await scripted((chunk) => (chunk.startsWith('EHLO') ? ehloReply : chunk.startsWith('QUIT') ? '221 bye\r\n' : '550 5.5.1 no\r\n'));
    const [r] = await createSmtpAgent(cfg()).deliver(req(await queued(['a@x.test']), `[127.0.0.1]:${srv.port}`));
    assert.match(r!.text, want);
    assert.equal(r!.status, want === survived ? 'bounced' : 'deferred');
  }
});

test('no reply after the final dot: deferred after smtp_data_done_timeout, "message may be sent more than once"', async () => {
  const srv = await scripted(esmtp(['fake', 'PIPELINING'], { dot: '' }));
  const t0 = Date.now();
  const [r] = await createSmtpAgent(cfg()).deliver(req(await queued(['a@x.test']), `[127.0.0.1]:${srv.port}`));
  assert.ok(Date.now() - t0 < 2500);
  assert.deepEqual([r!.status, r!.dsn, r!.text], ['deferred', '4.4.2', 'conversation with 127.0.0.1[127.0.0.1] timed out while sending end of data -- message may be sent more than once']);
});

test('a wall clock stepped back while waiting for a reply does not stretch the timeout', async (t) => {
  const server = esmtp(['fake', 'PIPELINING'], { dot: '' });
  let peer: Socket | undefined;
  const srv = await scripted((chunk, sock, state) => { peer = sock; return server(chunk, sock, state); });
  const msg = await queued(['a@x.test']);
  let offset = 0;
  const wall = Date.now;
  t.mock.method(Date, 'now', () => wall() + offset);
  const step = setTimeout(() => { offset = -3600_000; }, 300);   // an hour back, mid-wait
  const t0 = performance.now();
  const r = await Promise.race([
    createSmtpAgent(cfg()).deliver(req(msg, `[127.0.0.1]:${srv.port}`)).then(([x]) => x!.text),
    new Promise<string>((res) => setTimeout(() => res('still waiting after 5 s'), 5000).unref()),
  ]);
  clearTimeout(step);
  peer?.destroy();   // a client still waiting (the bug) sees the connection lost and ends
  assert.match(r, /timed out while sending end of data/);
  assert.ok(performance.now() - t0 < 2500);
});

test('MAIL FROM rejected (pipelined): every recipient gets the MAIL reply, 5xx bounces', async () => {
  const srv = await scripted((chunk) => {
    if (chunk.startsWith('EHLO')) return '250-fake\r\n250 PIPELINING\r\n';
    if (chunk.startsWith('MAIL')) return '553 5.7.1 <s@h.test>: Sender address rejected\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n';
    return chunk.startsWith('QUIT') ? '221 bye\r\n' : undefined;
  });
  const res = await createSmtpAgent(cfg()).deliver(req(await queued(['a@x.test', 'b@x.test']), `[127.0.0.1]:${srv.port}`));
  assert.deepEqual(res.map((r) => [r.status, r.dsn]), [['bounced', '5.7.1'], ['bounced', '5.7.1']]);
  assert.equal(res[0]!.text, 'host 127.0.0.1[127.0.0.1] said: 553 5.7.1 <s@h.test>: Sender address rejected (in reply to MAIL FROM command)');
});

test('an aborted request (shutdown signal) defers without connecting', async () => {
  const ac = new AbortController();
  ac.abort();
  const qf = await queued(['a@x.test']);
  const [r] = await createSmtpAgent(cfg()).deliver({ ...req(qf, '[127.0.0.1]:1'), signal: ac.signal });
  assert.deepEqual([r!.status, r!.text], ['deferred', 'delivery aborted']);
});

test('a recipient refused with 4xx by the first MX host is retried at the next one; 5xx is final', async () => {
  const first = await scripted(esmtp(['first', 'PIPELINING'], {
    rcpt: (a) => (a === 'soft@x.test' ? '451 4.3.0 <soft@x.test> try later\r\n' : a === 'hard@x.test' ? '550 5.1.1 <hard@x.test> unknown\r\n' : '250 2.1.5 Ok\r\n'),
  }));
  const second = await scripted(esmtp(['second', 'PIPELINING']));
  // Two addresses for one destination list: the first refuses "soft" with 4xx.
  const agent = createSmtpAgent(cfg());
  const res = await agent.deliver(req(await queued(['ok@x.test', 'soft@x.test', 'hard@x.test']), `[127.0.0.1]:${first.port}, [127.0.0.1]:${second.port}`));
  assert.deepEqual(res.map((r) => [r.recipient.address, r.status, r.relay]), [
    ['ok@x.test', 'sent', `127.0.0.1[127.0.0.1]:${first.port}`],
    ['soft@x.test', 'sent', `127.0.0.1[127.0.0.1]:${second.port}`],
    ['hard@x.test', 'bounced', `127.0.0.1[127.0.0.1]:${first.port}`],
  ]);
  assert.ok(second.chunks.some((c) => c.includes('RCPT TO:<soft@x.test>') && !c.includes('ok@x.test')));
  // On the last server a 4xx is final: deferred with that server's words.
  const only = await agent.deliver(req(await queued(['soft@x.test']), `[127.0.0.1]:${first.port}`));
  assert.deepEqual([only[0]!.status, only[0]!.text], ['deferred', 'host 127.0.0.1[127.0.0.1] said: 451 4.3.0 <soft@x.test> try later (in reply to RCPT TO command)']);
});
