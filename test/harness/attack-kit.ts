/**
 * attack-kit - what every hostile-client test (issue 13) checks while an attack runs against a
 * whole Postern (PosternSystem: `bin/postern start`, one Node process):
 *
 *   serverMemory(pid)          the server's RSS and peak RSS in MiB, from /proc/PID/status
 *   watchMemory(pid)           samples RSS every 50 ms until stop(): { peakMiB, lastMiB }
 *   normalSmtp(port, opts)     one message from a normal client (Python smtplib), timed
 *   normalImap(port, u, p)     LOGIN, SELECT INBOX, LOGOUT from a normal client (Python imaplib), timed
 *   normalPop3(port, u, p)     USER/PASS, STAT, QUIT from a normal client (Python poplib), timed
 *   rawConn(sock)              an attacker's socket that keeps what it reads and knows when it closed
 *   until(cond, ms, what)      poll a condition every 20 ms, fail the test after ms
 *   serverClosed(conn, ms)     write until the connection breaks: the server closed it fully
 *
 * The normal clients are real ones nobody here wrote, run in a child Python process with their
 * own timeout; each returns the milliseconds its whole exchange took (the process start-up is not
 * counted: Python prints its own monotonic timing) and throws with the client's error otherwise.
 * A test asserts `ms < 2000` during the attack (issue 13: "a normal client on another connection
 * still completes its login or message within 2 s").
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

export interface Memory { rssMiB: number; peakMiB: number }

/** VmRSS and VmHWM of a process, in MiB. */
export function serverMemory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
}

export interface MemoryWatch { stop(): { peakMiB: number; lastMiB: number; samples: number } }

/** Sample a process's RSS every `everyMs` until stop(). */
export function watchMemory(pid: number, everyMs = 50): MemoryWatch {
  let peak = 0;
  let last = 0;
  let samples = 0;
  const sample = () => {
    try { last = serverMemory(pid).rssMiB; peak = Math.max(peak, last); samples++; } catch { /* gone */ }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return { stop() { clearInterval(timer); sample(); return { peakMiB: peak, lastMiB: last, samples }; } };
}

function python(script: string, args: string[], timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', script, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) { reject(new Error(`${err.message.split('\n')[0]}\n${stderr}`)); return; }
      const ms = Number(/^ms=(\d+(?:\.\d+)?)$/m.exec(stdout)?.[1]);
      if (!Number.isFinite(ms)) { reject(new Error(`no timing from the client: ${stdout}${stderr}`)); return; }
      resolve(ms);
    });
  });
}

const SMTP = `
import smtplib, sys, time
port, sender, rcpt, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
t0 = time.monotonic()
s = smtplib.SMTP('127.0.0.1', port, timeout=timeout)
s.ehlo('normal.client.test')
s.sendmail(sender, [rcpt], 'From: <%s>\\r\\nTo: <%s>\\r\\nSubject: normal traffic\\r\\n\\r\\nhello\\r\\n' % (sender, rcpt))
s.quit()
print('ms=%.1f' % ((time.monotonic() - t0) * 1000))
`;

/** One message from a normal SMTP client; resolves to the exchange's duration in ms. */
export function normalSmtp(port: number, o: { from?: string; to?: string; timeoutMs?: number } = {}): Promise<number> {
  const timeout = o.timeoutMs ?? 10_000;
  return python(SMTP, [String(port), o.from ?? 'normal@example.org', o.to ?? 'postmaster@example.test', String(timeout / 1000)], timeout + 2000);
}

const IMAP = `
import imaplib, sys, time
port, user, pw, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
t0 = time.monotonic()
m = imaplib.IMAP4('127.0.0.1', port, timeout=timeout)
m.login(user, pw)
typ, _ = m.select('INBOX')
assert typ == 'OK', typ
m.logout()
print('ms=%.1f' % ((time.monotonic() - t0) * 1000))
`;

/** LOGIN, SELECT INBOX, LOGOUT from a normal IMAP client; resolves to the duration in ms. */
export function normalImap(port: number, user: string, pass: string, timeoutMs = 10_000): Promise<number> {
  return python(IMAP, [String(port), user, pass, String(timeoutMs / 1000)], timeoutMs + 2000);
}

const POP3 = `
import poplib, sys, time
port, user, pw, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
t0 = time.monotonic()
p = poplib.POP3('127.0.0.1', port, timeout=timeout)
p.user(user)
p.pass_(pw)
p.stat()
p.quit()
print('ms=%.1f' % ((time.monotonic() - t0) * 1000))
`;

/** USER/PASS, STAT, QUIT from a normal POP3 client; resolves to the duration in ms. */
export function normalPop3(port: number, user: string, pass: string, timeoutMs = 10_000): Promise<number> {
  return python(POP3, [String(port), user, pass, String(timeoutMs / 1000)], timeoutMs + 2000);
}

/** An attacker's connection: everything it read (latin1) and whether it is closed. */
export interface Conn { sock: Socket; data: string; closed: boolean }

export function rawConn(sock: Socket): Conn {
  const c: Conn = { sock, data: '', closed: false };
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => { c.data += d; });
  sock.on('error', () => {});
  sock.on('close', () => { c.closed = true; });
  return c;
}

/** Poll `cond` every 20 ms; fail with "timed out: what" after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Write until the connection breaks: the server closed it fully, not just half-closed it. */
export async function serverClosed(c: Conn, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!c.closed && Date.now() < end) {
    if (!c.sock.destroyed) c.sock.write('NOOP\r\n');
    await new Promise((r) => setTimeout(r, 50));
  }
  return c.closed;
}
