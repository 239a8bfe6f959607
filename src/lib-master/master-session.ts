/**
 * master-session - the accept-loop skeleton for connection-oriented services (Postfix
 * master/multi_server.c + the process limit of master_spawn.c; Dovecot's client_limit), so that
 * smtpd, imapd, pop3d, lmtpd and the unix-socket services do not each re-implement it:
 *
 *   export const service: ServiceImpl = {
 *     name: 'smtpd',
 *     async start(ctx) { return serveSessions(ctx, (sock, listener) => smtpdSession(ctx, sock, listener)); },
 *   };
 *
 * - Every listener of the context is accepted on; each connection runs `session(socket, listener)`.
 *   A session ends when its socket closes (the promise returned by `session` only reports errors).
 * - At most `maxSessions` sessions at once (default: the master.cf maxproc column; 0 = no limit).
 *   Further connections wait, paused, in arrival order — as they would wait in the listen backlog
 *   for a free Postfix process — and the service logs Postfix's warning
 *   `service "smtp" (25) has reached its process limit "100": new clients may experience noticeable delays`
 *   at most once a minute. More than `maxSessions` waiting connections are closed.
 * - stop(): waiting connections are closed, running sessions may finish for `drainMs`
 *   (default 30 s); then their sockets are destroyed. The listening sockets belong to the master.
 * - A session that throws or rejects is logged with the client and its socket destroyed; the
 *   other sessions go on.
 */
import type { Socket } from 'node:net';
import type { BoundListener, RunningService, ServiceContext } from './master-service.ts';

export interface SessionOptions {
  /** Concurrent sessions; default ctx.entry.maxproc (0 = unlimited). */
  maxSessions?: number;
  /** How long stop() lets running sessions finish, in ms (default 30000). */
  drainMs?: number;
}

export type SessionHandler = (socket: Socket, listener: BoundListener) => void | Promise<void>;

export interface SessionServer extends RunningService {
  /** Sessions running now. */
  active(): number;
  /** Connections waiting for a free session slot. */
  waiting(): number;
}

const LIMIT_WARNING_INTERVAL_MS = 60_000;

function peer(sock: Socket): string {
  // Postfix's client form without a reverse lookup: unknown[addr]:port.
  return sock.remoteAddress ? `unknown[${sock.remoteAddress}]:${sock.remotePort}` : 'local socket';
}

export function serveSessions(ctx: ServiceContext, session: SessionHandler, o: SessionOptions = {}): SessionServer {
  const max = o.maxSessions ?? ctx.entry.maxproc;
  const drainMs = o.drainMs ?? 30_000;
  const active = new Set<Socket>();
  const queue: { sock: Socket; listener: BoundListener }[] = [];
  let stopping = false;
  let lastWarning = 0;
  let drained: (() => void) | undefined;

  const run = (sock: Socket, listener: BoundListener): void => {
    active.add(sock);
    sock.once('close', () => {
      active.delete(sock);
      next();
      if (active.size === 0) drained?.();
    });
    if (sock.isPaused()) sock.resume();
    const fail = (err: unknown) => {
      ctx.log.error(`${listener.name}: session with ${peer(sock)}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      sock.destroy();
    };
    try {
      const r = session(sock, listener);
      if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).catch(fail);
    } catch (err) {
      fail(err);
    }
  };

  const next = (): void => {
    while (!stopping && queue.length > 0 && (max === 0 || active.size < max)) {
      const q = queue.shift()!;
      if (!q.sock.destroyed) run(q.sock, q.listener);
    }
  };

  const onConnection = (listener: BoundListener) => (sock: Socket): void => {
    if (stopping) { sock.destroy(); return; }
    if (max === 0 || active.size < max) { run(sock, listener); return; }
    const now = Date.now();
    if (now - lastWarning >= LIMIT_WARNING_INTERVAL_MS) {
      lastWarning = now;
      ctx.log.warn(`service "${ctx.entry.service}" (${listener.address}) has reached its process limit "${max}": new clients may experience noticeable delays`);
    }
    if (queue.length >= max) { sock.destroy(); return; }
    sock.pause();
    queue.push({ sock, listener });
    sock.once('close', () => {
      const i = queue.findIndex((q) => q.sock === sock);
      if (i >= 0) queue.splice(i, 1);
    });
  };

  for (const l of ctx.listeners) l.accept(onConnection(l));

  return {
    active: () => active.size,
    waiting: () => queue.length,
    async stop(): Promise<void> {
      stopping = true;
      for (const q of queue.splice(0)) q.sock.destroy();
      if (active.size === 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainMs);
        timer.unref();
        drained = () => { clearTimeout(timer); resolve(); };
      });
      for (const s of active) s.destroy();
    },
  };
}
