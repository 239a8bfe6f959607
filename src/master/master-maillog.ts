/**
 * master-maillog - maillog_file, Postfix's postlogd(8) (Postfix >= 3.4): with `maillog_file =
 * /path` every log line of the mail system is appended to that file, in the shape postlogd
 * writes (checked against Postfix 3.7.11):
 *
 *   Dec 07 21:17:58 mx postfix/master[18855]: daemon started -- version 3.7.11, configuration ...
 *
 * i.e. the day of the month with a leading zero and the first label of $myhostname as the host.
 * The master owns the file: its own lines come through util/msg.ts (setLogCopy), and the lines
 * of the services in worker threads and child processes come to the master as whole lines on
 * their stderr (forwardLogLines) and go to the file from here, so two writers never interleave
 * and a rotation has one file descriptor to reopen. stderr keeps getting every line as before
 * (Postern has no syslog: stderr is what a supervisor collects).
 *
 * maillog_file must start with one of maillog_file_prefixes (default `/var, /dev/stdout`), as
 * Postfix checks, else the start fails with Postfix's text:
 *   maillog_file value '/home/x/maillog' does not match any prefix in maillog_file_prefixes
 * `postern reload` (SIGHUP) reopens the file, so rotation is "rename, then reload", which is
 * what `postfix logrotate` does (rename to $maillog_file.$maillog_file_rotate_suffix, reload,
 * then run $maillog_file_compressor on the renamed file): `rotateMaillog()`.
 *
 * PARAMETERS
 *   maillog_file, maillog_file_prefixes, maillog_file_rotate_suffix, maillog_file_compressor,
 *   myhostname
 */
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { ConfigError } from '../global/config-error.ts';
import type { MainConfig } from '../global/mail-conf.ts';
import { setLogCopy, writeLogLines } from '../util/msg.ts';

interface Open { path: string; fd: number; host: string }
let current: Open | undefined;

/** Postfix allowed_prefix(): the value starts with one of the prefixes (plain string prefix). */
export function maillogPrefixError(file: string, prefixes: readonly string[]): string | undefined {
  if (file === '' || prefixes.some((p) => p !== '' && file.startsWith(p))) return undefined;
  return `maillog_file value '${file}' does not match any prefix in maillog_file_prefixes`;
}

/** Rewrite a batch of Postern log lines into postlogd's shape: `Dec 07`, host = `host`. */
export function postlogLines(text: string, host: string): string {
  return text.replace(/^([A-Z][a-z]{2}) ([ \d])(\d) (\d\d:\d\d:\d\d) \S+ /gm,
    (_m, mon: string, d1: string, d2: string, time: string) => `${mon} ${d1 === ' ' ? '0' : d1}${d2} ${time} ${host} `);
}

/**
 * Open (or reopen, after a reload) the maillog_file of `main`; close it when the setting is
 * gone. Throws ConfigError when the file is outside maillog_file_prefixes or cannot be opened.
 */
export function applyMaillog(main: MainConfig): void {
  const path = main.get('maillog_file').trim();
  if (path !== '') {
    const err = maillogPrefixError(path, main.list('maillog_file_prefixes'));
    if (err) throw new ConfigError(main.file, main.lineOf('maillog_file'), err);
  }
  const host = main.get('myhostname').split('.')[0] || 'localhost';
  let fd = -1;
  if (path !== '') {
    try { fd = openSync(path, 'a', 0o600); } catch (e) {
      throw new ConfigError(main.file, main.lineOf('maillog_file'), `maillog_file: cannot open ${path}: ${(e as Error).message}`);
    }
  }
  const old = current;
  current = fd >= 0 ? { path, fd, host } : undefined;
  if (old) { try { closeSync(old.fd); } catch { /* already gone */ } }
  if (!current) { setLogCopy(undefined); return; }
  setLogCopy((text) => {
    const c = current;
    if (!c) return;
    try { writeSync(c.fd, postlogLines(text, c.host)); } catch { /* disk full: the lines still went to stderr */ }
  });
}

/** Stop writing the file (master stop). */
export function closeMaillog(): void {
  setLogCopy(undefined);
  if (current) { try { closeSync(current.fd); } catch { /* gone */ } }
  current = undefined;
}

/** Pass a thread's or child's stderr on in whole lines (writeLogLines: stderr and maillog_file). */
export function forwardLogLines(stream: Readable | null | undefined): void {
  if (!stream) return;
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    const text = rest + d;
    const nl = text.lastIndexOf('\n');
    if (nl < 0) { rest = text; return; }
    rest = text.slice(nl + 1);
    writeLogLines(text.slice(0, nl + 1));
  });
  stream.on('end', () => { if (rest) { writeLogLines(rest + '\n'); rest = ''; } });
}

/** strftime() for maillog_file_rotate_suffix (the conversions Postfix's default uses, and %%). */
export function rotateSuffix(fmt: string, d: Date = new Date()): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  const map: Record<string, string> = {
    Y: String(d.getFullYear()), m: p2(d.getMonth() + 1), d: p2(d.getDate()),
    H: p2(d.getHours()), M: p2(d.getMinutes()), S: p2(d.getSeconds()), s: String(Math.floor(d.getTime() / 1000)), '%': '%',
  };
  return fmt.replace(/%(.)/g, (m, c: string) => map[c] ?? m);
}

/**
 * `postfix logrotate`'s first step: rename maillog_file to NAME.SUFFIX and return the new name;
 * the caller then reloads the master (which reopens the file) and compresses the old one.
 * Throws with postfix-script's texts when rotation is impossible.
 */
export function rotateMaillog(main: MainConfig, now: Date = new Date()): string {
  for (const name of ['maillog_file', 'maillog_file_compressor', 'maillog_file_rotate_suffix']) {
    if (main.get(name).trim() === '') throw new Error(`empty '${name}' parameter value - logfile rotation failed`);
  }
  const file = main.get('maillog_file').trim();
  if (file.startsWith('/dev/')) throw new Error(`not rotating '${file}'`);
  const to = `${file}.${rotateSuffix(main.get('maillog_file_rotate_suffix'), now)}`;
  renameSync(file, to);
  return to;
}
