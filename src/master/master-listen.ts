/**
 * master-listen - bind the sockets of the services (Postfix master/master_listen.c, Dovecot's
 * master service listeners) and route connections to whichever service instance is current.
 *
 * Addresses: inet_interfaces `all` → 0.0.0.0 and :: (IPv6-only socket, as Postfix), `loopback-only`
 * → 127.0.0.1 and ::1, limited by inet_protocols (`all`, `ipv4`, `ipv6`). Host names other than
 * `localhost` are refused: Postern never asks the resolver at start-up (Postfix would resolve them;
 * write the IP address). An IPv6 address the host cannot bind (IPv6 disabled) is skipped with a
 * warning, like Postfix's "inet_protocols: disabling IPv6 name/address support".
 *
 * Unix sockets: the parent directory is created (`private/` 0700, `public/` 0711 — Postfix uses
 * 0710 with group postdrop, which needs a setgid postdrop helper Postern does not have), a stale
 * socket file (one nobody answers on) is removed, the socket is made 0666 (the directory protects it) or the
 * unix_listener's `mode`.
 *
 * A bind failure is a ListenError whose message names what to change (the master.cf line, the
 * dovecot.conf inet_listener port, inet_interfaces). Connections arriving while no instance has
 * called accept() (a restart in progress) are held paused for up to HOLD_MS, then dropped.
 *
 * The servers accept with `pauseOnConnect`: the master reads nothing from a new connection, so
 * it can pass the connection to a child process (master-process.ts) with every byte the client
 * sent still in the kernel. A route handler marked with handOff() gets the socket untouched;
 * any other handler gets it resumed (reading), as a plain net.Server would give it.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, isIP, type Server, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import { ConfigError } from '../global/config-error.ts';
import type { Logger } from '../util/msg.ts';
import type { ListenSpec } from './master-plan.ts';

export interface IpVersions { ipv4: boolean; ipv6: boolean }

/** How long a connection waits for a service instance to accept it, and how many may wait. */
const HOLD_MS = 10_000;
const HOLD_MAX = 256;
/** sockaddr_un.sun_path is 108 bytes on Linux, including the NUL. */
const MAX_SOCKET_PATH = 107;

export class ListenError extends Error {
  override name = 'ListenError';
}

const HANDOFF = Symbol('handOff');
type Handler = ((s: Socket) => void) & { [HANDOFF]?: boolean };

/** Mark a route handler that passes sockets on (to another process) without reading them. */
export function handOff(h: (s: Socket) => void): (s: Socket) => void {
  (h as Handler)[HANDOFF] = true;
  return h;
}

/** inet_protocols (Postfix default "all"). */
export function inetProtocols(list: string[]): IpVersions {
  const l = list.map((x) => x.toLowerCase());
  if (l.length === 0 || l.includes('all')) return { ipv4: true, ipv6: true };
  return { ipv4: l.includes('ipv4'), ipv6: l.includes('ipv6') };
}

function loopback(v: IpVersions): string[] {
  return [...(v.ipv4 ? ['127.0.0.1'] : []), ...(v.ipv6 ? ['::1'] : [])];
}

/** One host part of a master.cf service name or inet_interfaces item → IP addresses. */
export function hostAddresses(host: string, v: IpVersions, what: string): string[] {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  if (h.toLowerCase() === 'localhost') return loopback(v);
  const fam = isIP(h);
  if (fam === 4 || fam === 6) return [h];
  throw new ConfigError(what, 0, `"${host}" is not an IP address; Postern does not resolve host names to listen on: write the address (e.g. 127.0.0.1 or [::1])`);
}

/** inet_interfaces → the addresses to bind. */
export function interfaceAddresses(list: string[], v: IpVersions, what: string): string[] {
  const out: string[] = [];
  for (const item of list.length ? list : ['all']) {
    const i = item.toLowerCase();
    if (i === 'all') out.push(...(v.ipv4 ? ['0.0.0.0'] : []), ...(v.ipv6 ? ['::'] : []));
    else if (i === 'loopback-only') out.push(...loopback(v));
    else out.push(...hostAddresses(item, v, what));
  }
  return [...new Set(out)];
}

/** One item of Dovecot's `listen` / `address`: `*` = every IPv4 address, `::` = every IPv6 address. */
export function dovecotAddress(a: string, v: IpVersions, what: string): string[] {
  if (a === '*') return v.ipv4 ? ['0.0.0.0'] : [];
  if (a === '::' || a === '[::]') return v.ipv6 ? ['::'] : [];
  return hostAddresses(a, v, what);
}

function fmtAddr(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** A bound ListenSpec: one server per address (or the one unix socket) plus connection routing. */
export class BoundSocket {
  readonly spec: ListenSpec;
  readonly servers: { server: Server; address: string }[] = [];
  private route: ((s: Socket) => void) | undefined;
  private held: { sock: Socket; timer: NodeJS.Timeout }[] = [];
  private readonly log: Logger;

  constructor(spec: ListenSpec, log: Logger) {
    this.spec = spec;
    this.log = log;
  }

  /** Where new connections go; undefined holds them (briefly) until the next setRoute. */
  setRoute(handler: ((s: Socket) => void) | undefined): void {
    this.route = handler;
    if (!handler) return;
    const held = this.held;
    this.held = [];
    for (const h of held) {
      clearTimeout(h.timer);
      if (h.sock.destroyed) continue;
      this.dispatch(handler, h.sock);
    }
  }

  private dispatch(handler: Handler, sock: Socket): void {
    try {
      if (!handler[HANDOFF] && sock.isPaused()) sock.resume();
      handler(sock);
    } catch (err) {
      this.log.error(`${this.spec.name}: connection handler: ${err instanceof Error ? err.message : String(err)}`);
      sock.destroy();
    }
  }

  /** The one 'connection' listener of every server of this socket. */
  onConnection(sock: Socket): void {
    if (this.route) { this.dispatch(this.route, sock); return; }
    if (this.held.length >= HOLD_MAX) { sock.destroy(); return; }
    sock.pause();
    const timer = setTimeout(() => {
      this.held = this.held.filter((h) => h.sock !== sock);
      sock.destroy();
    }, HOLD_MS);
    timer.unref();
    this.held.push({ sock, timer });
  }

  /** Stop listening (existing connections are the services' business) and remove a socket file. */
  async close(): Promise<void> {
    this.setRoute(undefined);
    for (const h of this.held) { clearTimeout(h.timer); h.sock.destroy(); }
    this.held = [];
    await Promise.all(this.servers.map(({ server }) => new Promise<void>((resolve) => {
      if (!server.listening) { resolve(); return; }
      server.close(() => resolve());
      // server.close() waits for open connections; the listening socket itself is gone now.
      setImmediate(resolve);
    })));
    if (this.spec.kind === 'unix' && this.spec.path) {
      try { unlinkSync(this.spec.path); } catch { /* already gone */ }
    }
  }
}

function listenOn(server: Server, opts: { host?: string; port?: number; path?: string; ipv6Only?: boolean }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => { server.off('listening', onListening); reject(err); };
    const onListening = () => { server.off('error', onError); resolve(); };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ ...opts, exclusive: true, backlog: 4096 }); // a flood of connections must not leave clients half-open (anvil answers them)
  });
}

function bindError(spec: ListenSpec, what: string, err: NodeJS.ErrnoException): ListenError {
  switch (err.code) {
    case 'EADDRINUSE':
      return new ListenError(`bind ${what}: address already in use; change ${spec.where}, or stop the program using it`);
    case 'EACCES':
      return new ListenError(`bind ${what}: permission denied${spec.kind === 'inet' && (spec.port ?? 0) < 1024 ? ' (ports below 1024 need root)' : ''}; change ${spec.where}`);
    case 'EADDRNOTAVAIL':
      return new ListenError(`bind ${what}: this host has no such address; change ${spec.where}`);
    default:
      return new ListenError(`bind ${what}: ${err.message}; check ${spec.where}`);
  }
}

/** Bind every address of `spec`. Throws ListenError (after closing what it had bound). */
export async function bindListen(spec: ListenSpec, log: Logger): Promise<BoundSocket> {
  const bound = new BoundSocket(spec, log);
  const make = (): Server => {
    const server = createServer({ pauseOnConnect: true }, (sock) => bound.onConnection(sock));
    // After the bind (listenOn reports bind errors itself): accept(2) errors such as EMFILE.
    server.once('listening', () => server.on('error', (err) => log.warn(`${spec.name}: accept: ${err.message}`)));
    return server;
  };
  try {
    if (spec.kind === 'unix') {
      const path = spec.path!;
      if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
        throw new ListenError(`socket path too long (${Buffer.byteLength(path)} bytes, at most ${MAX_SOCKET_PATH}): ${path}; use a shorter ${spec.where}`);
      }
      const dir = dirname(path);
      const dirMode = basename(dir) === 'private' ? 0o700 : basename(dir) === 'public' ? 0o711 : 0o755;
      mkdirSync(dir, { recursive: true, mode: dirMode });
      await removeStaleSocket(path, spec);
      const server = make();
      try {
        await listenOn(server, { path });
      } catch (err) {
        throw bindError(spec, path, err as NodeJS.ErrnoException);
      }
      chmodSync(path, spec.mode ?? 0o666);
      bound.servers.push({ server, address: path });
      return bound;
    }
    for (const addr of spec.addresses ?? []) {
      const what = fmtAddr(addr, spec.port!);
      const server = make();
      try {
        await listenOn(server, { host: addr, port: spec.port!, ...(isIP(addr) === 6 ? { ipv6Only: true } : {}) });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (isIP(addr) === 6 && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) {
          log.warn(`${spec.name}: IPv6 is not available on this host: not listening on ${what} (set inet_protocols = ipv4 to silence this)`);
          continue;
        }
        throw bindError(spec, what, err as NodeJS.ErrnoException);
      }
      bound.servers.push({ server, address: what });
    }
    if (bound.servers.length === 0) {
      throw new ListenError(`${spec.name}: no address to listen on; check ${spec.where}`);
    }
    return bound;
  } catch (err) {
    await bound.close();
    throw err;
  }
}

/**
 * A socket file left by a dead master is removed; one that still answers belongs to a live
 * program (another Postern, a real Dovecot under the same base_dir) and is left alone.
 */
async function removeStaleSocket(path: string, spec: ListenSpec): Promise<void> {
  let st;
  try { st = lstatSync(path); } catch { return; }
  if (!st.isSocket()) throw new ListenError(`${path} exists and is not a socket; remove it or change ${spec.where}`);
  const live = await new Promise<boolean>((resolve) => {
    const c = connect(path);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
  if (live) throw new ListenError(`bind ${path}: another program is listening on this socket; stop it or change ${spec.where}`);
  unlinkSync(path);
}
