/**
 * free-port - unused TCP ports on loopback for servers a test starts in another process.
 *
 * freePort(): one port chosen by the OS (from the ephemeral range; only safe to bind at once).
 * freePortBase(n): a run of n consecutive free ports for a configuration that is written once and
 * bound later, perhaps more than once (a restart). Chosen BELOW the kernel's ephemeral range
 * (net.ipv4.ip_local_port_range, 32768-60999 on Debian): every outgoing connection of a parallel
 * test takes its local port from that range, and CI once saw a restarted Postern find its LMTP
 * port taken that way between stop and start.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** The lowest port the kernel hands out to outgoing connections and listen(0). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'latin1').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 11000) return low;
  } catch { /* not Linux: fall through */ }
  return 32768;
}

/** A base port with `count` ports from it free on 127.0.0.1 now, all outside the ephemeral range. */
export async function freePortBase(count: number): Promise<number> {
  const low = 10000;
  const high = ephemeralLow() - count;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = low + Math.floor(Math.random() * (high - low));
    const servers = [];
    let ok = true;
    for (let p = base; p < base + count && ok; p++) {
      const s = createServer();
      ok = await new Promise<boolean>((r) => { s.once('error', () => r(false)); s.listen(p, '127.0.0.1', () => r(true)); });
      if (ok) servers.push(s);
    }
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    if (ok) return base;
  }
  throw new Error('no free port range below the ephemeral range');
}
