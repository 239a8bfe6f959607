/**
 * Issue 13 item 1 (session slots) and item 8 (smtpd error limits) against a whole Postern
 * (`postern start`) whose smtp service has maxproc 20, smtpd_client_connection_count_limit 10 and
 * mynetworks = 127.0.0.1/32, so that 127.0.0.2 and 127.0.0.3 are "outside" clients:
 *
 *   - 100 connections from 127.0.0.2 that send QUIT, read the 221 and then never close;
 *   - 200 slowloris connections from 127.0.0.2 trickling one byte of EHLO every 300 ms;
 *   - one connection from 127.0.0.3 pipelining 10,000 bad RCPTs.
 *
 * Meanwhile a normal client from 127.0.0.1 (Python smtplib) must deliver within 2 s. Before the
 * fixes, each QUIT-then-idle socket kept its slot and its anvil count until the client closed
 * (and each connection refused with 421 kept a slot too), so these sockets held all 20 slots and
 * the normal client waited behind them. Now: a session frees its slot and its count when it ends
 * (the socket lingers 2 s at most, then the server closes it), anvil refuses the 11th concurrent
 * connection of a client before it takes a slot, and the 10,000 RCPTs get 20 answers and the
 * 421 of smtpd_hard_error_limit, the last ones after smtpd_error_sleep_time each (Postfix
 * 3.7's pacing; test/interop/smtpd-error-limits-vs-postfix.test.ts compares with the real one).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { normalSmtp, rawConn, serverClosed, serverMemory, until, watchMemory, type Conn } from '../harness/attack-kit.ts';

const USER = 'postmaster@example.test';

/** A raw client from `localAddress` that never closes its end by itself (allowHalfOpen). */
function open(port: number, localAddress: string): Conn {
  return rawConn(connect({ port, host: '127.0.0.1', localAddress, allowHalfOpen: true }));
}

test('QUIT-then-idle sockets, slowloris and 10,000 bad RCPTs from outside addresses: the normal client delivers within 2 s', { timeout: 120_000 }, async () => {
  const sys = await PosternSystem.start();
  const attackers: Conn[] = [];
  try {
    const port = sys.ports.smtp;
    // The smtp service: 20 slots; 127.0.0.1 alone is mynetworks (exempt from the anvil limits,
    // smtpd_client_event_limit_exceptions = $mynetworks); past 18 errors each reply waits 1 s.
    appendFileSync(join(sys.configDir, 'main.cf'), '\nmynetworks = 127.0.0.1/32\nsmtpd_soft_error_limit = 18\n');
    const mf = join(sys.configDir, 'master.cf');
    writeFileSync(mf, readFileSync(mf, 'utf8').replace(new RegExp(`^(${port}\\s+inet\\s+\\S+\\s+\\S+\\s+\\S+\\s+\\S+\\s+)-`, 'm'), '$120'));
    await sys.setMasterOption(['smtp'], 'smtpd_client_connection_count_limit', '10');

    const pid = sys.pid!;
    await normalSmtp(port, { to: USER });     // accepted before the attack
    const before = serverMemory(pid).rssMiB;
    const mem = watchMemory(pid);

    // 1. 100 sessions from 127.0.0.2 that QUIT and then keep their sockets open, 10 at a time
    // (the count limit): each wave is admitted because the previous one's sessions ended.
    const quitters: Conn[] = [];
    for (let wave = 0; wave < 10; wave++) {
      const w = Array.from({ length: 10 }, () => open(port, '127.0.0.2'));
      quitters.push(...w);
      await until(() => w.every((c) => c.data.includes('\r\n')), 5000, 'greetings');
      for (const c of w) c.sock.write('QUIT\r\n');
      await until(() => w.every((c) => c.data.includes('221 ') || c.closed), 5000, '221 to QUIT');
    }
    attackers.push(...quitters);
    const greeted = quitters.filter((c) => c.data.startsWith('220 ')).length;
    assert.equal(greeted, 100, 'a session that ended gave its anvil count back at once');

    // 2. 200 slowloris connections from the same address, trickling EHLO.
    const slow = Array.from({ length: 200 }, () => open(port, '127.0.0.2'));
    attackers.push(...slow);
    await until(() => slow.every((c) => c.data.includes('\r\n')), 10_000, 'slowloris greetings');
    const trickle = setInterval(() => { for (const c of slow) if (!c.closed && !c.sock.destroyed) c.sock.write('E'); }, 300);

    // 3. 10,000 pipelined bad RCPTs from 127.0.0.3.
    const rcpt = open(port, '127.0.0.3');
    attackers.push(rcpt);
    await until(() => rcpt.data.includes('\r\n'), 5000, 'greeting');
    rcpt.sock.write('EHLO bad.example\r\n' + 'RCPT TO:<x@example.test>\r\n'.repeat(10_000));
    const t0 = Date.now();

    // The normal client, during all three.
    const ms = await normalSmtp(port, { to: USER });
    console.log(`# normal client: ${ms.toFixed(0)} ms during the attack`);
    assert.ok(ms < 2000, `normal client took ${ms} ms`);

    const slowAdmitted = slow.filter((c) => c.data.startsWith('220 ')).length;
    const slowRefused = slow.filter((c) => c.data.startsWith('421 4.7.0 ') && c.data.includes('Error: too many connections from 127.0.0.2')).length;
    assert.equal(slowAdmitted, 10, 'smtpd_client_connection_count_limit');
    assert.equal(slowRefused, 190);
    // The QUIT-then-idle and the refused sockets were closed by the server (after the linger).
    const refusedSocks = slow.filter((c) => c.data.startsWith('421 '));
    const closed = await Promise.all([...quitters, ...refusedSocks].map((c) => serverClosed(c, 3000)));
    assert.equal(closed.filter(Boolean).length, 290, 'the server closed every ended session');

    // The bad RCPTs: 20 answers, then 421 after the sleeps of replies 19, 20 and the 421 (3 s).
    await until(() => rcpt.closed || rcpt.data.includes('421 '), 15_000, '421 after the RCPTs');
    const took = Date.now() - t0;
    const replies = rcpt.data.split('\r\n').filter((l) => /^\d{3} /.test(l));
    assert.equal(replies.filter((l) => l === '503 5.5.1 Error: need MAIL command').length, 20);
    assert.ok(replies.at(-1)!.startsWith('421 4.7.0 ') && replies.at(-1)!.endsWith(' Error: too many errors'), replies.at(-1));
    assert.ok(took > 2000 && took < 10_000, `the error sleeps took ${took} ms`);
    assert.ok(await serverClosed(rcpt, 3000), 'disconnected after the 421');
    clearInterval(trickle);

    const m = mem.stop();
    for (const c of attackers) c.sock.destroy();
    await new Promise((r) => setTimeout(r, 500));
    const after = serverMemory(pid).rssMiB;
    console.log(`# RSS before ${before.toFixed(0)} MiB, peak ${m.peakMiB.toFixed(0)} MiB, after ${after.toFixed(0)} MiB`);
    assert.ok(m.peakMiB - before < 64, `RSS grew ${m.peakMiB - before} MiB`);

    // Nothing accepted is lost: both messages are delivered.
    const count = () => ['new', 'cur'].reduce((k, d) => { try { return k + readdirSync(join(sys.maildir(USER), d)).length; } catch { return k; } }, 0);
    await until(() => count() >= 2, 15_000, 'both messages delivered');
    assert.ok(sys.alive);
  } finally {
    for (const c of attackers) c.sock.destroy();
    await sys.destroy();
  }
});
