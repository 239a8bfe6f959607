/**
 * smtp-sink - run Postfix's real smtp-sink(1) (Debian `postfix` package, /usr/sbin/smtp-sink)
 * on a loopback address for delivery tests: every message is dumped to its own file (`-d`),
 * so a test can compare bytes.
 *
 *   const sink = await SmtpSink.start({ host: '127.0.0.3', args: ['-8'] });  // no 8BITMIME
 *   ... deliver to [127.0.0.3]:${sink.port} ...
 *   const msgs = await sink.messages();   // [{ headers: {mail, rcpts, helo, proto}, body }]
 *   await sink.stop();
 *
 * Options worth knowing (smtp-sink(1)): -8 no 8BITMIME, -p no PIPELINING, -E no
 * ENHANCEDSTATUSCODES, -N no DSN, -L LMTP, -f CMDS reject with 5xx, -r CMDS reject with 4xx,
 * -q CMDS disconnect, -a no AUTH, -v print the conversation (kept in `transcript`).
 * `-f`/`-r` imply -p. Needs root for `-u root` (the harness runs as root, as the tests do).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';

export interface SinkMessage {
  /** X-Mail-Args (e.g. "FROM:<a@b> SIZE=123 BODY=8BITMIME"). */
  mailArgs: string;
  rcptArgs: string[];
  heloArgs?: string;
  proto: string;
  /** The message exactly as received, with the transparency dots removed, LF line endings. */
  body: Buffer;
  file: string;
}

export const SMTP_SINK = '/usr/sbin/smtp-sink';

export class SmtpSink {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  private readonly proc: ChildProcess;
  transcript = '';

  private constructor(host: string, port: number, dir: string, proc: ChildProcess) {
    this.host = host; this.port = port; this.dir = dir; this.proc = proc;
    proc.stdout?.on('data', (d: Buffer) => { this.transcript += d.toString('latin1'); });
    proc.stderr?.on('data', (d: Buffer) => { this.transcript += d.toString('latin1'); });
  }

  static available(): boolean { return existsSync(SMTP_SINK); }

  static async start(o: { host?: string; port?: number; args?: string[] } = {}): Promise<SmtpSink> {
    const host = o.host ?? '127.0.0.1';
    const port = o.port ?? await freePort(host);
    const dir = mkdtempSync(join(tmpdir(), 'postern-sink-'));
    const proc = spawn(SMTP_SINK, ['-u', 'root', '-d', `${dir}/msg.`, ...(o.args ?? []), `${host}:${port}`, '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const sink = new SmtpSink(host, port, dir, proc);
    // Wait until it listens.
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect({ host, port });
        s.once('connect', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
      });
      if (ok) return sink;
      if (proc.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    proc.kill('SIGKILL');
    throw new Error(`smtp-sink did not start on ${host}:${port}: ${sink.transcript}`);
  }

  /** Parse every dump file (smtp-sink(1) "DUMP FILE FORMAT"). */
  messages(): SinkMessage[] {
    const out: SinkMessage[] = [];
    for (const f of readdirSync(this.dir).sort()) {
      const raw = readFileSync(join(this.dir, f));
      // smtp-sink headers end with its three-line Received: header.
      const rec = raw.indexOf('\nReceived: from ');
      let pos = 0;
      const head = raw.subarray(0, rec + 1).toString('latin1');
      const m: SinkMessage = { mailArgs: '', rcptArgs: [], proto: '', body: Buffer.alloc(0), file: f };
      for (const line of head.split('\n')) {
        const [k, ...v] = line.split(': ');
        const val = v.join(': ');
        if (k === 'X-Mail-Args') m.mailArgs = val;
        else if (k === 'X-Rcpt-Args') m.rcptArgs.push(val);
        else if (k === 'X-Helo-Args') m.heloArgs = val;
        else if (k === 'X-Client-Proto') m.proto = val;
      }
      // Skip "Received: from ...\n\tby ...;\n\tdate\n".
      pos = rec + 1;
      for (let n = 0; n < 3; n++) pos = raw.indexOf(0x0a, pos) + 1;
      // The dump ends with one empty line after the message.
      let body = raw.subarray(pos);
      if (body.length && body[body.length - 1] === 0x0a) body = body.subarray(0, body.length - 1);
      m.body = body;
      out.push(m);
    }
    return out;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      const done = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      await Promise.race([done, new Promise((r) => setTimeout(r, 2000))]);
      if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
