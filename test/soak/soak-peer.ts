/**
 * soak-peer - the raw attacking client of the hostile-client soak (hostile-soak.ts): one TCP or
 * TLS connection from a chosen loopback address (127.0.0.2 ... 127.0.0.9 are "outside" clients
 * when mynetworks = 127.0.0.1/32), that keeps only the last 16 KB it received (an attack that
 * makes the server talk must not grow the attacker), writes with backpressure, and waits for a
 * pattern with a bounded time. Every peer is registered in one set, so the soak destroys them
 * all at its deadline; a destroyed peer wakes every wait, so every attack loop ends by itself.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

const KEEP = 16 * 1024;

/** Every open peer, destroyed by destroyAll() at the soak's deadline. */
const open = new Set<Peer>();

export class Peer {
  readonly sock: Socket;
  /** The tail of what was received and not yet consumed by wait() (latin1). */
  got = '';
  received = 0;
  closed = false;
  /** The server ended its side (FIN); the peer keeps its own side open (allowHalfOpen). */
  ended = false;
  readonly opened = Date.now();
  closedAt = 0;
  private wakers: (() => void)[] = [];

  private constructor(sock: Socket, record: boolean) {
    this.sock = sock;
    open.add(this);
    sock.on('error', () => {});
    sock.on('close', () => { this.closed = true; this.closedAt ||= Date.now(); open.delete(this); this.wake(); });
    sock.on('end', () => { this.ended = true; this.closedAt ||= Date.now(); this.wake(); });
    if (record) {
      sock.setEncoding('latin1');
      sock.on('data', (d: string) => {
        this.received += d.length;
        this.got = (this.got + d).slice(-KEEP);
        this.wake();
      });
    }
  }

  /**
   * Connect from `localAddress`; `tls` wraps it (self-signed certificate accepted). record=false
   * never reads the socket (the kernel buffers fill, the server must hold back). Resolves when
   * connected; rejects when the connection fails within 10 s.
   */
  static connect(port: number, localAddress: string, o: { tls?: boolean; record?: boolean } = {}): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const opts = { port, host: '127.0.0.1', localAddress, allowHalfOpen: true };
      let p: Peer;
      const ok = () => { clearTimeout(t); resolve(p); };
      const sock = o.tls
        ? tlsConnect({ ...opts, rejectUnauthorized: false }, ok)
        : connect(opts, ok);
      p = new Peer(sock, o.record ?? true);
      const t = setTimeout(() => { sock.destroy(); reject(new Error('connect timeout')); }, 10_000);
      sock.once('error', (e) => { clearTimeout(t); sock.destroy(); reject(e); });
    });
  }

  private wake(): void { const w = this.wakers; this.wakers = []; for (const f of w) f(); }

  /** Wait until `re` matches the unconsumed input; returns the match and consumes up to its end, or undefined on timeout or close. */
  async wait(re: RegExp, ms: number): Promise<RegExpExecArray | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.got);
      if (m) { this.got = this.got.slice(m.index + m[0].length); return m; }
      if (this.gone || Date.now() >= end) return undefined;
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(1000, end - Date.now()));
        this.wakers.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  /** Write with backpressure: resolves when the kernel took it (drain) or the peer closed. */
  async write(data: string | Buffer): Promise<boolean> {
    if (this.closed || this.sock.destroyed) return false;
    if (this.sock.write(data)) return true;
    await new Promise<void>((r) => {
      const done = () => { this.sock.off('drain', done); this.sock.off('close', done); r(); };
      this.sock.on('drain', done);
      this.sock.on('close', done);
    });
    return !this.closed;
  }

  /** Did the server close the connection (FIN or reset)? */
  get gone(): boolean { return this.closed || this.ended; }

  /** Wait up to `ms` for the server to close the connection; true if it did. */
  async closedWithin(ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (!this.gone && Date.now() < end) {
      await new Promise<void>((r) => { const t = setTimeout(r, Math.min(500, end - Date.now())); this.wakers.push(() => { clearTimeout(t); r(); }); });
    }
    return this.gone;
  }

  destroy(): void { this.sock.destroy(); }
}

/** Destroy every open peer (the soak's end); their waits return at once. */
export function destroyAll(): number {
  const n = open.size;
  for (const p of [...open]) p.destroy();
  return n;
}

/** How many peers are open now. */
export function openPeers(): number { return open.size; }
