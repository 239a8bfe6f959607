/**
 * Crash safety of ONE service (issue 8 item 2: "SIGKILLs the whole system AND EACH SERVICE
 * SEPARATELY"): smtpd and qmgr each run in a child process of their own
 * (`-o postern_process_mode=process`, applied by `postern reload`), real SMTP clients (Python
 * smtplib, 8 at a time) send to both Maildirs, and
 *   (1) the smtpd process is SIGKILLed twice while the clients are inside DATA (20 KB messages);
 *   (2) the qmgr process (with its delivery agents) is SIGKILLed twice right after a delivery
 *       is logged, i.e. while it is delivering.
 * Each time the master must log Postfix's line with the CHILD's pid ("warning: process
 * postern/smtpd pid N killed by signal 9"), restart the service (clients connecting meanwhile
 * wait in the master and are then served by the new process), and leave the master and the
 * other services running. Afterwards, with the queue drained, counting: every message that got
 * a 250 is in every recipient's Maildir, never truncated; a message answered 4xx/5xx is not;
 * killing smtpd causes no duplicate at all (it delivers nothing); killing qmgr may re-deliver a
 * message whose delivery it interrupted, at most once per recipient and kill (duplicates are
 * counted, and matched against the deliveries the log shows interrupted, and reported); a
 * restarted qmgr does not deliver finished messages again; real Dovecot opens every Maildir
 * without a complaint. Last, (3) the master itself is SIGKILLed: its service processes exit
 * with it (Postfix's "master disconnect"; an orphaned qmgr would deliver beside the next one),
 * and the restarted system runs them in their own processes again and loses nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { checkDovecot, countKinds, sleep, startLoad, tallyDeliveries, waitQueueEmpty, warmMaildirs, type Outcome, type Tally } from '../harness/fault-kit.ts';

const USERS = ['postmaster@example.test', 'bob@example.test'];
let sys: PosternSystem;
let smtpdKey = '';
const warmed = new Map<string, Outcome>();
let emptyLocks = 0;
let seed = 0x5e2d;
const rand = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };

before(async () => {
  sys = await PosternSystem.start();
  const r = (await sys.cli('user', 'add', 'bob@example.test', '-p', 'bob-password'));
  assert.equal(r.status, 0, r.stderr);
  await sys.setMasterOption(['smtp', 'qmgr'], 'postern_process_mode', 'process');
  smtpdKey = `${sys.ports.smtp}/inet`;
  for (const [k, v] of await warmMaildirs(sys, USERS)) warmed.set(k, v);
});
after(async () => { await sys?.destroy(); });

const acks = (m: Map<string, Outcome>) => countKinds(m).ACK;

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}\n${sys.log.slice(-3000)}`);
    await sleep(5);
  }
}

/**
 * SIGKILL the one process of the service whose status key starts with `key`; wait for the
 * master's exit line (with that pid) and for a new process. Returns the old and new pids.
 */
async function killService(key: string, impl: string): Promise<{ pid: number; next: number; ms: number; exitAt: number }> {
  const pid = (await sys.servicePid(key));
  assert.notEqual(pid, sys.pid, `${impl} runs in a process of its own`);
  const t0 = Date.now();
  process.kill(pid, 'SIGKILL');
  const exit = await sys.waitLog(new RegExp(`postern/master\\[${sys.pid}\\]: warning: process postern/${impl} pid ${pid} killed by signal 9`));
  // An EMPTY uidlist lock left by a kill would stall that Maildir for 120 s: a known bug with its
  // own todo test (stale-lock.test.ts); counted and removed so that this test measures loss.
  for (const u of USERS) {
    const lock = join(sys.maildir(u), 'dovecot-uidlist.lock');
    try { if (statSync(lock).size === 0) { rmSync(lock); emptyLocks++; } } catch { /* no lock */ }
  }
  let next = 0;
  await until(`a new ${impl} process`, async () => {
    const s = (await sys.services()).find((x) => x.key.startsWith(key));
    next = s?.running && s.pids.length === 1 ? s.pids[0]! : 0;
    return next !== 0 && next !== pid;
  });
  return { pid, next, ms: Date.now() - t0, exitAt: exit.index };
}

/** Compare the clients' outcomes with the Maildirs; at most `maxCopies(queue ID)` per recipient. */
function tally(sent: Map<string, Outcome>, maxCopies: (qid: string | undefined) => number, all: Map<string, Outcome>): Tally {
  return tallyDeliveries({ maildirs: USERS.map((u) => ({ user: u, path: sys.maildir(u) })), sent, all, allowed: maxCopies });
}


const everSent = new Map<string, Outcome>();

test('SIGKILL of the smtpd process mid-load: restarted alone, every 250-acknowledged message delivered once', async (t) => {
  const qmgrPid = (await sys.servicePid('qmgr/'));
  const load = startLoad({ port: sys.ports.smtp, threads: 8, count: 300, tag: 'sk', size: 20_000, rcpts: USERS });
  const kills: string[] = [];
  for (let round = 0; round < 2; round++) {
    const base = acks(load.outcomes());
    await until('messages acknowledged by the running smtpd', () => acks(load.outcomes()) >= base + 10);
    await sleep(Math.floor(rand() * 100));
    const k = await killService(smtpdKey, 'smtpd');
    kills.push(`pid ${k.pid} → ${k.next} in ${k.ms} ms`);
  }
  // The clients reconnect (their connections were held while smtpd restarted): the new
  // process accepts mail.
  const afterKills = acks(load.outcomes());
  await until('messages acknowledged by the restarted smtpd', () => acks(load.outcomes()) >= afterKills + 10);
  load.stop();
  const out = await load.done();
  for (const [k, v] of out) everSent.set(k, v);
  await waitQueueEmpty(sys);

  assert.ok(sys.alive, 'the master survives');
  assert.equal((await sys.servicePid('qmgr/')), qmgrPid, 'the other services were not restarted');
  const c = countKinds(out);
  const r = tally(out, () => 1, new Map([...warmed, ...everSent]));
  t.diagnostic(`smtpd kills: ${kills.join('; ')}; ${out.size} messages attempted: ${c.ACK} acked (250), ${c.DROP} cut by the kills, ${c.TEMP} 4xx, ${c.PERM} 5xx; `
    + `lost ${r.lost.length}, duplicates ${r.dups.size}, delivered without a 250: ${r.deliveredUnacked}, truncated ${r.truncated.length}`);
  assert.ok(c.DROP >= 2, `the kills cut sessions in flight (${c.DROP} cut)`);
  assert.deepEqual(r.lost, [], 'no 250-acknowledged message lost');
  assert.deepEqual(r.truncated, [], 'no partial message delivered');
  assert.deepEqual(r.refusedButDelivered, [], 'a message answered 4xx/5xx is not delivered');
  assert.deepEqual(r.excess, [], 'killing smtpd never duplicates a message (it delivers nothing)');
  checkDovecot(join(sys.configDir, 'data', 'vmail'), t);
});

test('SIGKILL of the qmgr process mid-delivery: restarted alone, no loss, at most one duplicate per interrupted delivery', async (t) => {
  const smtpdPid = (await sys.servicePid(smtpdKey));
  const load = startLoad({ port: sys.ports.smtp, threads: 8, count: 100, tag: 'qk', size: 500, rcpts: USERS });
  const kills: string[] = [];
  /** Queue ID → how many kills found it taken by qmgr (queue active) and not removed, per the log. */
  const interrupted = new Map<string, number>();
  let life = sys.log.length;   // where the log of the running qmgr process's life starts
  for (let round = 0; round < 2; round++) {
    const mark = sys.log.length;
    const target = 20 + Math.floor(rand() * 30);
    await until('deliveries flowing', () => (sys.log.slice(mark).match(/status=sent/g) ?? []).length >= target);
    await sleep(Math.floor(rand() * 5));
    const k = await killService('qmgr/', 'qmgr');
    const lived = sys.log.slice(life, k.exitAt);
    life = k.exitAt;
    const active = [...lived.matchAll(/ (\w+): from=<[^>]*>, size=\d+, nrcpt=\d+ \(queue active\)/g)].map((m) => m[1]!);
    const removed = new Set([...lived.matchAll(/ (\w+): removed/g)].map((m) => m[1]!));
    for (const q of new Set(active)) if (!removed.has(q)) interrupted.set(q, (interrupted.get(q) ?? 0) + 1);
    kills.push(`pid ${k.pid} → ${k.next} in ${k.ms} ms`);
  }
  const mark = sys.log.length;
  // ... and enough acknowledged traffic for the final check, however slowly a loaded machine runs
  await until('deliveries by the restarted qmgr', () => (sys.log.slice(mark).match(/status=sent/g) ?? []).length >= 10
    && countKinds(load.outcomes()).ACK > 50);
  load.stop();
  const out = await load.done();
  for (const [k, v] of out) everSent.set(k, v);
  await waitQueueEmpty(sys);

  assert.ok(sys.alive, 'the master survives');
  assert.equal((await sys.servicePid(smtpdKey)), smtpdPid, 'smtpd was not restarted');
  const c = countKinds(out);
  const all = new Map([...warmed, ...everSent]);
  // Each kill may re-deliver a message whose delivery it interrupted, once per recipient: at most
  // 1 + (number of kills) copies. Which kills interrupted which message is read from the log as
  // a diagnostic only: a SIGKILLed process loses the log lines of its last moment (as in
  // crash-sigkill.test.ts).
  const r = tally(out, () => 1 + kills.length, all);
  const explained = [...r.dups].filter(([d, n]) => (interrupted.get(d.split(' ')[0]!) ?? 0) >= n - 1).length;
  const twice = [...interrupted.values()].filter((n) => n > 1).length;
  t.diagnostic(`qmgr kills: ${kills.join('; ')}; ${out.size} messages attempted: ${c.ACK} acked, ${c.DROP} cut, ${c.TEMP} 4xx, ${c.PERM} 5xx; `
    + `${interrupted.size} queue files taken but not finished at the kills (per the log; ${twice} at both), lost ${r.lost.length}, `
    + `duplicates ${r.dups.size} (${explained} of them of a message the log shows interrupted that often)${r.dups.size ? `, e.g. ${[...r.dups].slice(0, 4).map(([k, n]) => `${k} ×${n}`).join(', ')}` : ''}, `
    + `delivered without a 250: ${r.deliveredUnacked}, truncated ${r.truncated.length}; empty uidlist locks left by the kills: ${emptyLocks}`);
  assert.ok(c.ACK > 50, `enough traffic (${c.ACK} acked)`);
  assert.deepEqual(r.lost, [], 'no 250-acknowledged message lost');
  assert.deepEqual(r.truncated, [], 'no partial message delivered');
  assert.deepEqual(r.refusedButDelivered, [], 'a message answered 4xx/5xx is not delivered');
  assert.deepEqual(r.excess, [], 'at most one duplicate per recipient per kill');
  // The messages of the smtpd test, delivered long before, were not delivered again.
  const earlier = tally(new Map([...everSent].filter(([k]) => k.startsWith('sk-'))), () => 1, all);
  assert.deepEqual(earlier.excess, [], 'a qmgr restart does not re-deliver finished messages');
  checkDovecot(join(sys.configDir, 'data', 'vmail'), t);
});

test('SIGKILL of the master takes its service processes with it (no orphan qmgr or smtpd); the restart serves again', async (t) => {
  const pids = [(await sys.servicePid(smtpdKey)), (await sys.servicePid('qmgr/'))];
  const load = startLoad({ port: sys.ports.smtp, threads: 4, count: 100, tag: 'mk', size: 500, rcpts: USERS });
  await until('traffic', () => acks(load.outcomes()) >= 20);
  await sys.kill();
  load.stop();
  const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
  // Postfix daemons exit on "master disconnect"; an orphaned qmgr would deliver next to the new one.
  const end = Date.now() + 10_000;
  while (pids.some(alive) && Date.now() < end) await sleep(20);
  assert.deepEqual(pids.filter(alive), [], 'the children exit with the master');
  const out = await load.done();
  for (const [k, v] of out) everSent.set(k, v);
  await PosternSystem.start(sys);
  const after = [(await sys.servicePid(smtpdKey)), (await sys.servicePid('qmgr/'))];
  assert.ok(after.every((p) => p !== sys.pid && !pids.includes(p)), 'new service processes after the restart (the mode is in master.cf)');
  await waitQueueEmpty(sys);
  const r = tally(out, () => 2, new Map([...warmed, ...everSent]));
  t.diagnostic(`master kill: ${countKinds(out).ACK} acked before the kill, lost ${r.lost.length}, duplicates ${r.dups.size}`);
  assert.deepEqual(r.lost, [], 'no 250-acknowledged message lost');
  assert.deepEqual(r.truncated, [], 'no partial message delivered');
  assert.deepEqual(r.excess, [], 'at most one duplicate per recipient');
});
