/**
 * mail-quota - Dovecot's quota plugin decisions, shared by every path that adds mail (delivery
 * through lmtpd/virtual, IMAP APPEND) and by the quota-status policy service
 * (plugins/quota/quota.c: quota_test_alloc, quota_warnings_execute; doc "Quota configuration").
 *
 *   quotaTestAlloc(usage, size, grace) → 'ok' | 'over' | 'toolarge'
 *     Over when the user is already at or over a limit, when one more message exceeds the
 *     message limit, or when usage + size exceeds the storage limit plus quota_grace (the
 *     message that crosses the limit may go over it by the grace, as in Dovecot). 'toolarge'
 *     when the message alone is larger than the storage limit plus grace (Dovecot's
 *     quota_status_toolarge case).
 *
 *   quotaWarningToRun(warnings, before, after, limits) → the FIRST warning whose threshold the
 *     change crossed (upwards; downwards for a `-rule`), as Dovecot runs only the first match.
 *
 *   runQuotaWarning(w, user, log) starts the warning's script and returns at once: it never
 *     blocks or fails the delivery. stdin is /dev/null, stdout/stderr are logged (first 4 KB),
 *     the script (its process group) is killed after QUOTA_WARNING_TIMEOUT_MS, and at most QUOTA_WARNING_MAX_RUNNING
 *     run at a time per process (more are dropped with a log line, never queued without
 *     bound). When Postern runs as root the script runs as the service's `user`, else as the
 *     mail user (the userdb uid/gid).
 *
 * Usage is physical bytes (the ,S= sizes of Maildir file names) over every mailbox.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { QuotaLimitSpec, QuotaWarning } from '../lib-auth/auth-quota-warning.ts';
import type { QuotaUsage } from './mail-storage.ts';

export type QuotaAllocResult = 'ok' | 'over' | 'toolarge';

export const QUOTA_WARNING_TIMEOUT_MS = 60_000;
export const QUOTA_WARNING_MAX_RUNNING = 16;

/** The user's quota_grace in bytes: as configured, else Dovecot's default 10% of the storage limit. */
export function quotaGrace(rec: { quotaBytes?: number; quotaGraceBytes?: number }): number {
  if (rec.quotaBytes === undefined) return 0;
  return rec.quotaGraceBytes ?? Math.floor(rec.quotaBytes / 10);
}

export function quotaTestAlloc(u: QuotaUsage, size: number, graceBytes = 0): QuotaAllocResult {
  if (u.limitMessages !== undefined && u.messages + 1 > u.limitMessages) return 'over';
  if (u.limitBytes !== undefined) {
    const ceiling = u.limitBytes + graceBytes;
    if (size > ceiling) return 'toolarge';
    if (u.bytes >= u.limitBytes || u.bytes + size > ceiling) return 'over';
  }
  return 'ok';
}

interface Point { bytes: number; messages: number }

function threshold(spec: { value: number; percent: boolean } | undefined, limit: number | undefined): number | undefined {
  if (!spec) return undefined;
  if (!spec.percent) return spec.value;
  if (limit === undefined || limit === 0) return undefined;
  return Math.floor(limit * spec.value / 100);
}

function crossed(limit: QuotaLimitSpec, reverse: boolean, before: Point, after: Point, lim: QuotaUsage): string | undefined {
  const b = threshold(limit.bytes, lim.limitBytes);
  const m = threshold(limit.messages, lim.limitMessages);
  if (!reverse) {
    if (b !== undefined && b > 0 && before.bytes < b && after.bytes >= b) return `bytes=${before.bytes} -> ${after.bytes} reached ${b}`;
    if (m !== undefined && m > 0 && before.messages < m && after.messages >= m) return `messages=${before.messages} -> ${after.messages} reached ${m}`;
  } else {
    if (b !== undefined && b > 0 && before.bytes >= b && after.bytes < b) return `bytes=${before.bytes} -> ${after.bytes} below ${b}`;
    if (m !== undefined && m > 0 && before.messages >= m && after.messages < m) return `messages=${before.messages} -> ${after.messages} below ${m}`;
  }
  return undefined;
}

/** The first warning the change from `before` to `after` crossed, with why; undefined if none. */
export function quotaWarningToRun(warnings: readonly QuotaWarning[], before: Point, after: Point, limits: QuotaUsage):
  { warning: QuotaWarning; reason: string } | undefined {
  for (const w of warnings) {
    const reason = crossed(w.limit, w.reverse, before, after, limits);
    if (reason) return { warning: w, reason };
  }
  return undefined;
}

let running = 0;

export interface QuotaWarningLog { info(m: string): void; warn(m: string): void }

/** Start the warning's script (see the header); resolves when it has finished (tests), callers need not wait. */
export function runQuotaWarning(w: QuotaWarning, user: { user: string; uid: number; gid: number }, reason: string,
  log: QuotaWarningLog, timeoutMs = QUOTA_WARNING_TIMEOUT_MS): Promise<void> {
  if (running >= QUOTA_WARNING_MAX_RUNNING) {
    log.warn(`quota(${user.user}): ${w.setting}: ${QUOTA_WARNING_MAX_RUNNING} quota warning scripts already running; not running ${w.argv[0]}`);
    return Promise.resolve();
  }
  log.info(`quota(${user.user}): ${w.setting} (${reason}): executing ${w.argv.join(' ')}`);
  const ids: { uid?: number; gid?: number } = {};
  if (process.getuid?.() === 0) {
    const who = w.runAs !== undefined ? lookupIds(w.runAs) : { uid: user.uid, gid: user.gid };
    if (!who) { log.warn(`quota(${user.user}): ${w.setting}: user "${w.runAs}" of the warning service does not exist; script not run`); return Promise.resolve(); }
    Object.assign(ids, who);
  }
  running++;
  return new Promise<void>((resolve) => {
    let out = '';
    let done = false;
    const finish = (msg?: string) => {
      if (done) return;
      done = true; running--; clearTimeout(timer);
      if (msg) log.warn(`quota(${user.user}): ${w.setting}: ${w.argv[0]}: ${msg}`);
      resolve();
    };
    let child: ChildProcess;
    let timer: NodeJS.Timeout | undefined;
    try {
      child = spawn(w.argv[0]!, w.argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...ids, env: { PATH: '/usr/local/bin:/usr/bin:/bin', USER: user.user } });
    } catch (e) { finish((e as Error).message); return; }
    timer = setTimeout(() => {
      // The script's whole process group: a child it left behind would otherwise live on.
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { child.kill('SIGKILL'); }
      finish(`killed after ${timeoutMs} ms`);
    }, timeoutMs);
    timer.unref();
    const keep = (d: Buffer) => { if (out.length < 4096) out += d.toString('utf8', 0, Math.min(d.length, 4096 - out.length)); };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('error', (e) => finish(e.message));
    child.once('close', (code, sig) => {
      if (code === 0) { if (out.trim()) log.info(`quota(${user.user}): ${w.argv[0]}: ${out.trim()}`); finish(); }
      else finish(`exit ${code ?? sig}${out.trim() ? `: ${out.trim()}` : ''}`);
    });
  });
}

function lookupIds(name: string): { uid: number; gid: number } | undefined {
  if (/^\d+$/.test(name)) return { uid: Number(name), gid: Number(name) };
  try {
    // /etc/passwd: name:x:uid:gid:...
    const line = readPasswd().split('\n').find((l) => l.startsWith(`${name}:`));
    if (!line) return undefined;
    const f = line.split(':');
    return { uid: Number(f[2]), gid: Number(f[3]) };
  } catch { return undefined; }
}

function readPasswd(): string { return readFileSync('/etc/passwd', 'utf8'); }
