/**
 * master-session - the accept-loop skeleton for connection-oriented services (Postfix
 * master/multi_server.c + the process limit and stress policy of master_avail.c/master_spawn.c;
 * Dovecot's client_limit), so that smtpd, imapd, pop3d, lmtpd and the unix-socket services do not
 * each re-implement it:
 *
 *   export const service: ServiceImpl = {
 *     name: 'smtpd',
 *     async start(ctx) { return serveSessions(ctx, (sock, listener, slot) => smtpdSession(ctx, sock, listener, slot)); },
 *   };
 *
 * - Every listener of the context is accepted on; each connection runs `session(socket, listener, slot)`.
 *   A session holds its slot until it ENDS: its socket closes, the server half-closes it (the
 *   reply to QUIT/LOGOUT written and `end()` called: the 'finish' of the accepted socket), or the
 *   session calls `slot.end()` (needed when the session runs on a TLS socket over the accepted
 *   one). An ended session's socket is not kept for the client to close: it lingers at most
 *   `lingerMs` (default 2 s) so that the last reply reaches the client and its FIN is read, then
 *   it is destroyed — as Postfix's smtpd closes its end after 221 and the process takes the next
 *   client. At most max(maxSessions, 100) sockets linger; beyond that the oldest is destroyed.
 *   (The promise returned by `session` only reports errors.)
 * - `admit` (optional) runs on each new connection BEFORE it takes or waits for a slot: smtpd's
 *   anvil check of smtpd_client_connection_count_limit/_rate_limit. A refused connection gets
 *   the reply, lingers as above and never holds a slot; an admitted one gets `release()` called
 *   once when its session ends (or when it leaves the wait queue).
 * - At most `maxSessions` sessions at once (default: the master.cf maxproc column; 0 = no limit).
 *   Further connections wait, paused, in arrival order — as they would wait in the listen backlog
 *   for a free Postfix process — and the service logs Postfix's warning
 *   `service "smtp" (25) has reached its process limit "100": new clients may experience noticeable delays`
 *   at most once a minute. More than `maxSessions` waiting connections are closed.
 * - Stress (Postfix STRESS_README, master_avail.c): when a connection arrives and every slot is
 *   busy, the service is under stress for the next 1000 s (renewed each time); every session that
 *   starts meanwhile gets `slot.stress = true`, the `stress=yes` Postfix's master passes to the
 *   processes it spawns, so that `${stress?{10}:{300}}`-style defaults (smtpd_timeout,
 *   smtpd_hard_error_limit, smtpd_junk_command_limit, smtpd_starttls_timeout) take their stress
 *   value per session. As in master_ent.c, only services with maxproc > 1 that listen on some
 *   non-loopback address can be under stress (unix sockets and loopback-only listeners never are).
 * - stop(): waiting connections are closed, running sessions may finish for `drainMs`
 *   (default 30 s); then their sockets are destroyed. The listening sockets belong to the master.
 * - A session that throws or rejects is logged with the client and its socket destroyed; the
 *   other sessions go on.
 */
import type { Socket } from 'node:net';
import type { BoundListener, RunningService, ServiceContext } from './master-service.ts';
import { metrics } from '../util/metrics.ts';

/** What `admit` decides for a new connection. */
export interface Admission {
  /** Refuse: this text (with its CRLF) is written, then the connection is closed. */
  reply?: string;
  /** Admitted: called once when the session ends. */
  release?: () => void;
}

export interface SessionOptions {
  /** Concurrent sessions; default ctx.entry.maxproc (0 = unlimited). */
  maxSessions?: number;
  /** How long stop() lets running sessions finish, in ms (default 30000). */
  drainMs?: number;
  /**
   * Per-client admission before a slot is taken (smtpd: anvil's connection count and rate);
   * `stress` is the service's stress state as this connection arrived.
   */
  admit?: (socket: Socket, listener: BoundListener, stress: boolean) => Admission | Promise<Admission>;
  /** How long an ended session's socket may stay open for its last reply (ms, default 2000). */
  lingerMs?: number;
  /** How long the service stays under stress after its slots ran out (ms; Postfix: 1000 s). */
  stressHoldMs?: number;
}

/** What a session knows of its slot. */
export interface SessionSlot {
  /** Postfix's `stress` parameter for this session: the slots ran out recently. */
  readonly stress: boolean;
  /** The session is over (its last reply is written): free the slot now; the socket lingers, then is destroyed. */
  end(): void;
}

export type SessionHandler = (socket: Socket, listener: BoundListener, slot: SessionSlot) => void | Promise<void>;

export interface SessionServer extends RunningService {
  /** Sessions running now. */
  active(): number;
  /** Connections waiting for a free session slot. */
  waiting(): number;
  /** Ended sessions whose sockets are still lingering. */
  lingering(): number;
  /** Is the service under stress now (new sessions get stress = true)? */
  stressed(): boolean;
}

const LIMIT_WARNING_INTERVAL_MS = 60_000;
const DEFAULT_LINGER_MS = 2_000;
/** master_avail.c: stress lasts until the process limit has not been hit for 1000 seconds. */
const STRESS_HOLD_MS = 1_000_000;

function peer(sock: Socket): string {
  // Postfix's client form without a reverse lookup: unknown[addr]:port.
  return sock.remoteAddress ? `unknown[${sock.remoteAddress}]:${sock.remotePort}` : 'local socket';
}

/** Is a listener reachable from loopback only (Postfix MASTER_FLAG_LOCAL_ONLY)? */
function localOnly(l: BoundListener): boolean {
  if (l.kind !== 'inet') return true;
  const host = l.address.startsWith('[') ? l.address.slice(1, l.address.indexOf(']')) : l.address.slice(0, l.address.lastIndexOf(':'));
  return /^127\./.test(host) || host === '::1' || /^::ffff:127\./i.test(host);
}

/**
 * Close `sock` once the peer has closed its end or after `ms`, whichever comes first; meanwhile
 * its input is read and dropped (unread input would turn the close into a reset and could cost
 * the client our last reply). For sessions that run without serveSessions (tests, sendmail -bs).
 */
export function closeAfterLinger(sock: Socket, ms = DEFAULT_LINGER_MS): void {
  if (sock.destroyed) return;
  const timer = setTimeout(() => sock.destroy(), ms);
  timer.unref();
  sock.once('close', () => clearTimeout(timer));
  sock.once('end', () => { if (sock.writableFinished) sock.destroy(); else sock.once('finish', () => sock.destroy()); });
  sock.on('error', () => {});
  sock.resume();
}

const SESSIONS = metrics.counter('postern_sessions_total', 'Client sessions started, by daemon and master.cf service', ['daemon', 'service']);
const CONNECTIONS = metrics.counter('postern_connections_total', 'Connections to a service, by daemon, master.cf service and result: accepted (a session runs or waits for a slot), refused (by the admission check: anvil limits, postscreen), dropped (no slot and the wait queue full, or stopping)', ['daemon', 'service', 'result']);
const ACTIVE = metrics.gauge('postern_sessions_active', 'Client sessions in progress, by daemon and master.cf service', ['daemon', 'service']);

export function serveSessions(ctx: ServiceContext, session: SessionHandler, o: SessionOptions = {}): SessionServer {
  const max = o.maxSessions ?? ctx.entry.maxproc;
  const drainMs = o.drainMs ?? 30_000;
  const lingerMs = o.lingerMs ?? DEFAULT_LINGER_MS;
  const stressHoldMs = o.stressHoldMs ?? STRESS_HOLD_MS;
  const canStress = max > 1 && !ctx.listeners.every(localOnly);
  const maxLinger = Math.max(max, 100);
  const active = new Set<Socket>();
  const linger = new Set<Socket>();
  const queue: { sock: Socket; listener: BoundListener; release?: () => void }[] = [];
  let stopping = false;
  let lastWarning = 0;
  let stressUntil = 0;
  let drained: (() => void) | undefined;

  /** After the session: the socket may stay a little for its last reply, never for the client's sake. */
  const startLinger = (sock: Socket): void => {
    if (sock.destroyed) return;
    if (linger.size >= maxLinger) {
      const oldest = linger.values().next().value!;
      linger.delete(oldest);
      oldest.destroy();
    }
    linger.add(sock);
    sock.once('close', () => linger.delete(sock));
    closeAfterLinger(sock, lingerMs);
  };

  const started = SESSIONS.labels(ctx.entry.command, ctx.entry.service);
  const accepted = CONNECTIONS.labels(ctx.entry.command, ctx.entry.service, 'accepted');
  const refused = CONNECTIONS.labels(ctx.entry.command, ctx.entry.service, 'refused');
  const dropped = CONNECTIONS.labels(ctx.entry.command, ctx.entry.service, 'dropped');
  const running = ACTIVE.labels(ctx.entry.command, ctx.entry.service);
  const run = (sock: Socket, listener: BoundListener, release?: () => void): void => {
    active.add(sock);
    started.inc();
    running.inc();
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      running.dec();
      active.delete(sock);
      release?.();
      startLinger(sock);
      next();
      if (active.size === 0) drained?.();
    };
    sock.once('close', end);
    sock.once('finish', end); // the server half-closed the accepted socket: its session is over
    if (sock.isPaused()) sock.resume();
    const fail = (err: unknown) => {
      ctx.log.error(`${listener.name}: session with ${peer(sock)}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      sock.destroy();
    };
    const slot: SessionSlot = { stress: canStress && Date.now() < stressUntil, end };
    try {
      const r = session(sock, listener, slot);
      if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).catch(fail);
    } catch (err) {
      fail(err);
    }
  };

  const next = (): void => {
    while (!stopping && queue.length > 0 && (max === 0 || active.size < max)) {
      const q = queue.shift()!;
      if (!q.sock.destroyed) run(q.sock, q.listener, q.release);
      else q.release?.();
    }
  };

  const place = (sock: Socket, listener: BoundListener, release?: () => void): void => {
    if (stopping || sock.destroyed) { dropped.inc(); release?.(); sock.destroy(); return; }
    if (max === 0 || active.size < max) { accepted.inc(); run(sock, listener, release); return; }
    const now = Date.now();
    if (now - lastWarning >= LIMIT_WARNING_INTERVAL_MS) {
      lastWarning = now;
      ctx.log.warn(`service "${ctx.entry.service}" (${listener.address}) has reached its process limit "${max}": new clients may experience noticeable delays`);
    }
    if (queue.length >= max) { dropped.inc(); release?.(); sock.destroy(); return; }
    accepted.inc();
    sock.pause();
    const q = { sock, listener, release };
    queue.push(q);
    sock.once('close', () => {
      const i = queue.indexOf(q);
      if (i >= 0) { queue.splice(i, 1); release?.(); }
    });
  };

  const onConnection = (listener: BoundListener) => (sock: Socket): void => {
    if (stopping) { dropped.inc(); sock.destroy(); return; }
    // master_avail.c: a connection that finds every slot busy puts the service under stress.
    if (canStress && active.size >= max) stressUntil = Date.now() + stressHoldMs;
    if (!o.admit) { place(sock, listener); return; }
    sock.pause();
    sock.on('error', () => {}); // until the session has its own handler
    const refuse = (a: Admission): void => {
      refused.inc();
      a.release?.();
      sock.end(a.reply ?? '');
      startLinger(sock);
    };
    const decide = (a: Admission): void => { if (a.reply !== undefined) refuse(a); else place(sock, listener, a.release); };
    const failed = (err: unknown): void => {
      ctx.log.error(`${listener.name}: connection from ${peer(sock)}: ${err instanceof Error ? err.message : String(err)}`);
      sock.destroy();
    };
    try {
      const a = o.admit(sock, listener, canStress && Date.now() < stressUntil);
      if (a instanceof Promise) a.then(decide, failed); else decide(a);
    } catch (err) {
      failed(err);
    }
  };

  for (const l of ctx.listeners) l.accept(onConnection(l));

  return {
    active: () => active.size,
    waiting: () => queue.length,
    lingering: () => linger.size,
    stressed: () => canStress && Date.now() < stressUntil,
    async stop(): Promise<void> {
      stopping = true;
      for (const q of queue.splice(0)) { q.release?.(); q.sock.destroy(); }
      if (active.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, drainMs);
          timer.unref();
          drained = () => { clearTimeout(timer); resolve(); };
        });
        for (const s of active) s.destroy();
      }
      for (const s of linger) s.destroy();
    },
  };
}
