/**
 * hostile-milter - a milter that misbehaves on purpose, speaking just enough of the protocol
 * (negotiation, "continue" to every event) to get where it breaks. No real milter misbehaves on
 * command, so this one is written here; the MTAs under test are real.
 *
 *   const h = await HostileMilter.start('hang-eom');  h.port; h.connections; await h.stop();
 *
 * Modes:
 *   silent       accepts the connection and never answers, not even the negotiation
 *   hang-eom     answers everything but the end of the message
 *   close-body   closes the connection at the first body chunk
 *   unknown-eom  answers the end of the message with an unknown reply code
 *   malformed    answers the end of the message with a malformed SMTP reply ("999 nonsense")
 *   big-header   adds a 1 MB header at the end of the message, then continues
 *   big-body     replaces the body with 100 MB (64 KB chunks), then continues
 *   half-edit    adds a header, then closes before its final reply
 *   many-headers adds 200 headers of 1 MB each (200 MB of requests), then continues
 */
import { createServer, type Server, type Socket } from 'node:net';

export type HostileMode = 'silent' | 'hang-eom' | 'close-body' | 'unknown-eom' | 'malformed' | 'big-header' | 'big-body' | 'half-edit' | 'many-headers';

function packet(cmd: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(data.length + 1);
  h[4] = cmd.charCodeAt(0);
  return Buffer.concat([h, data]);
}
const z = (s: string) => Buffer.from(s + '\0', 'latin1');

export class HostileMilter {
  readonly port: number;
  connections = 0;
  private readonly server: Server;
  private readonly socks = new Set<Socket>();
  mode: HostileMode;

  private constructor(server: Server, port: number, mode: HostileMode) { this.server = server; this.port = port; this.mode = mode; }

  static async start(mode: HostileMode): Promise<HostileMilter> {
    let self: HostileMilter | undefined;
    const server = createServer((s) => self!.serve(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    self = new HostileMilter(server, (server.address() as { port: number }).port, mode);
    return self;
  }

  private serve(s: Socket): void {
    this.connections++;
    this.socks.add(s);
    s.on('close', () => this.socks.delete(s));
    s.on('error', () => {});
    if (this.mode === 'silent') return;
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const cmd = String.fromCharCode(buf[4]!);
        buf = buf.subarray(4 + len);
        this.event(s, cmd);
      }
    });
  }

  private event(s: Socket, cmd: string): void {
    if (s.destroyed) return;
    switch (cmd) {
      case 'O': {
        const d = Buffer.alloc(12);
        d.writeUInt32BE(6, 0); d.writeUInt32BE(0x1ff, 4); d.writeUInt32BE(0, 8);
        s.write(packet('O', d));
        return;
      }
      case 'D': case 'A': return; // macros and abort have no reply
      case 'Q': s.end(); return;
      case 'B':
        if (this.mode === 'close-body') { s.destroy(); return; }
        break;
      case 'E':
        switch (this.mode) {
          case 'hang-eom': return;
          case 'unknown-eom': s.write(packet('Z')); return;
          case 'malformed': s.write(packet('y', z('999 nonsense'))); return;
          case 'big-header':
            s.write(packet('h', Buffer.concat([z('X-Huge'), z('x'.repeat(1024 * 1024))])));
            s.write(packet('c'));
            return;
          case 'big-body': {
            const chunk = packet('b', Buffer.alloc(65535, 'y'));
            let sent = 0;
            const total = 100 * 1024 * 1024;
            const more = (): void => {
              while (sent < total && !s.destroyed) {
                sent += 65535;
                if (!s.write(chunk)) { s.once('drain', more); return; }
              }
              if (!s.destroyed) s.write(packet('c'));
            };
            more();
            return;
          }
          case 'many-headers': {
            const h = packet('h', Buffer.concat([z('X-Many'), z('m'.repeat(1024 * 1024))]));
            let n = 0;
            const more = (): void => {
              while (n < 200 && !s.destroyed) {
                n++;
                if (!s.write(h)) { s.once('drain', more); return; }
              }
              if (!s.destroyed) s.write(packet('c'));
            };
            more();
            return;
          }
          case 'half-edit':
            s.write(packet('h', Buffer.concat([z('X-Half'), z('never')])));
            setTimeout(() => s.destroy(), 50);
            return;
        }
        break;
    }
    s.write(packet('c'));
  }

  async stop(): Promise<void> {
    for (const s of this.socks) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
