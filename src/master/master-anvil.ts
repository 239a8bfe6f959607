/**
 * master-anvil - one anvil table, one auth penalty table and one postscreen allowlist for the
 * whole system, however many processes serve the connections (Postfix: every smtpd process asks
 * the one anvil(8) server through global/anvil_clnt.c; Dovecot: every login process asks the
 * one anvil process for auth_penalty). The tables live in the master (anvil/anvil.ts,
 * anvil/auth-penalty.ts, postscreen/postscreen.ts); a service in a child process of its own
 * (master-process.ts) or in a pool worker (master-pool.ts) asks them over its IPC channel.
 *
 * SUMMARY
 *   master:  answerAnvil(msg, reply)          in master-process.ts, for each child's 'anvil' message
 *   child:   installRemoteAnvil(send)         in master-process-child.ts, before the service starts;
 *            onAnvilReply(msg)                for each 'anvil' message from the master
 *   either:  processAnvil(config)             the AnvilClient (global/anvil-client.ts) of this process
 *            processAuthPenalty()             the auth penalty of this process (ServiceContext.authPenalty)
 *
 * PROTOCOL (on the channel master-process.ts already has)
 *   child → master  {type: 'anvil', id, op, a: [...]}; id 0 = no answer wanted (disconnect)
 *   master → child  {type: 'anvil', id, r}
 *   op: connect(service, addr) → {count, rate}; disconnect(service, addr); event(what, service,
 *   addr) → rate; newtls(service, addr) → rate; lookup(service, addr) → AnvilStatus | null;
 *   begin(ip, user) → PenaltyBegin; finish(ip, user, outcome) → ms to hold the answer;
 *   ps-passed(addr) → boolean, ps-remember(addr, ttlMs): postscreen's temporary allowlist
 *   (postscreen/postscreen.ts), one for the system as Postfix's postscreen_cache_map.
 *   A password never crosses the channel: finish() carries the CRC-32 of (user, password) that
 *   the penalty keeps anyway.
 *
 * FAILURE
 *   An answer that does not come within ASK_TIMEOUT_MS (a master too busy, a lost message) lets
 *   the client through unlimited and logs a warning, as Postfix's smtpd goes on without anvil
 *   when it cannot reach it ("warning: problem talking to server private/anvil"): a limit may
 *   become lenient, a client is never wrongly refused. The child exits when the master is gone.
 */
import type { AnvilClient, AnvilEvent, AnvilStatus } from '../global/anvil-client.ts';
import { configureSharedAnvil, sharedAnvil } from '../anvil/anvil.ts';
import {
  penalizedDirectory, sharedAuthPenalty, sleepReal,
  type AuthPenaltyTable, type PenaltyBegin, type PenaltyOutcome,
} from '../anvil/auth-penalty.ts';
import type { UserDirectory } from '../lib-auth/user-directory.ts';
import { setPostscreenAllowlist, sharedPostscreenCache } from '../postscreen/postscreen.ts';
import { logger } from '../util/msg.ts';

/** How long a child waits for the master's answer before going on without it. */
const ASK_TIMEOUT_MS = 5000;

export type AnvilOp = 'connect' | 'disconnect' | 'event' | 'newtls' | 'lookup' | 'begin' | 'finish' | 'ps-passed' | 'ps-remember';
export interface AnvilRequest { type: 'anvil'; id: number; op: AnvilOp; a: unknown[] }
export interface AnvilReply { type: 'anvil'; id: number; r: unknown }

/** What the master answers (the one table of the system). */
export function answerAnvil(m: AnvilRequest): unknown {
  const anvil = sharedAnvil();
  const s = (i: number) => String(m.a[i] ?? '');
  switch (m.op) {
    case 'connect': return anvil.connect(s(0), s(1));
    case 'disconnect': anvil.disconnect(s(0), s(1)); return null;
    case 'event': return anvil.event(s(0) as AnvilEvent, s(1), s(2));
    case 'newtls': return anvil.newtls(s(0), s(1));
    case 'lookup': return anvil.lookup(s(0), s(1)) ?? null;
    case 'begin': return sharedAuthPenalty().begin(s(0), s(1));
    case 'finish': {
      const o = (m.a[2] ?? {}) as Partial<PenaltyOutcome>;
      const outcome: PenaltyOutcome = {
        result: o.result ?? 'mismatch', user: typeof o.user === 'string' ? o.user : undefined,
        sum: Number(o.sum) >>> 0, level: Math.max(0, Math.min(1000, Number(o.level) || 0)),
      };
      return sharedAuthPenalty().finish(s(0), s(1), outcome);
    }
    case 'ps-passed': return sharedPostscreenCache().passed(s(0));
    case 'ps-remember': sharedPostscreenCache().remember(s(0), Math.max(0, Math.min(Number(m.a[1]) || 0, 7 * 86_400_000))); return null;
    default: return null;
  }
}

type Send = (m: AnvilRequest) => void;

interface Remote {
  anvil: AnvilClient;
  penalty: { directory(dir: UserDirectory, ip: string): UserDirectory };
}

let remote: Remote | undefined;
const waiting = new Map<number, (r: unknown) => void>();
let lastId = 0;
let warned = 0;

/** Ask the master; `fallback` when no answer comes in time. */
function ask<T>(send: Send, op: AnvilOp, a: unknown[], fallback: T): Promise<T> {
  const id = lastId = lastId >= 0x7fffffff ? 1 : lastId + 1;
  return new Promise<T>((resolve) => {
    const t = setTimeout(() => {
      waiting.delete(id);
      const now = Date.now();
      if (now - warned > 60_000) {
        warned = now;
        logger('anvil').warn(`no answer from the master's anvil table within ${ASK_TIMEOUT_MS / 1000}s: going on without the limit`);
      }
      resolve(fallback);
    }, ASK_TIMEOUT_MS);
    waiting.set(id, (r) => { clearTimeout(t); waiting.delete(id); resolve(r as T); });
    try { send({ type: 'anvil', id, op, a }); } catch { clearTimeout(t); waiting.delete(id); resolve(fallback); }
  });
}

/** In a child process: every anvil and auth penalty question goes to the master through `send`. */
export function installRemoteAnvil(send: Send): void {
  const anvil: AnvilClient = {
    connect: (service, addr) => ask(send, 'connect', [service, addr], { count: 0, rate: 0 }),
    disconnect: (service, addr) => { try { send({ type: 'anvil', id: 0, op: 'disconnect', a: [service, addr] }); } catch { /* master gone */ } },
    event: (what, service, addr) => ask(send, 'event', [what, service, addr], 0),
    newtls: (service, addr) => ask(send, 'newtls', [service, addr], 0),
    lookup: async (service, addr) => (await ask<AnvilStatus | null>(send, 'lookup', [service, addr], null)) ?? undefined,
  };
  const table: AuthPenaltyTable = {
    begin: (ip, user) => ask<PenaltyBegin>(send, 'begin', [ip, user], { level: 0 }),
    // Without an answer the failure is held for Dovecot's default auth_failure_delay.
    finish: (ip, user, outcome) => ask(send, 'finish', [ip, user, outcome], outcome.result === 'ok' || outcome.result === 'tempfail' ? 0 : 2000),
  };
  remote = { anvil, penalty: { directory: (dir, ip) => penalizedDirectory(table, sleepReal, dir, ip) } };
  // postscreen's temporary allowlist: the master's too (without an answer: not passed, test again).
  setPostscreenAllowlist({
    passed: (addr) => ask(send, 'ps-passed', [addr], false),
    remember: (addr, ttlMs) => { try { send({ type: 'anvil', id: 0, op: 'ps-remember', a: [addr, ttlMs] }); } catch { /* master gone */ } },
  });
}

/** In a child process: an answer from the master. */
export function onAnvilReply(m: AnvilReply): void {
  waiting.get(m.id)?.(m.r);
}

/** This process's anvil: the master's table, directly or over IPC. */
export function processAnvil(config: { time(name: string): number }): AnvilClient {
  return remote ? remote.anvil : configureSharedAnvil(config);
}

/** This process's auth penalty: the master's table, directly or over IPC. */
export function processAuthPenalty(): { directory(dir: UserDirectory, ip: string): UserDirectory } {
  return remote ? remote.penalty : sharedAuthPenalty();
}
