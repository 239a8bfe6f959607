/**
 * msg - logging in Postfix's maillog shape.
 *
 * Every line is `<syslog_name>/<service>[pid]: <text>`, prefixed with a syslog-style timestamp and
 * the host name, exactly like Postfix's maillog_file, so existing log tools (pflogsumm, grep by
 * queue ID) keep working:
 *
 *   Nov 27 18:52:23 mail postern/smtpd[4242]: 3F2A1C0042: client=localhost[127.0.0.1]
 *
 * Severities follow Postfix's msg(3): info (no prefix), `warning: `, `error: `, `fatal: `,
 * `panic: `. Lines go to stderr unless `setLogSink()` redirects them (tests capture them).
 * `setLogCopy()` gives every batch written to stderr to a second writer as well: the master's
 * maillog_file (master/master-maillog.ts); `writeLogLines()` is how the master passes on the
 * whole lines its threads and child processes logged, to stderr and that copy. Never log secrets.
 */
import { hostname } from 'node:os';

export type Severity = 'info' | 'warning' | 'error' | 'fatal' | 'panic';
export type LogSink = (line: string) => void;

let syslogName = 'postern';
let host = hostname().split('.')[0] ?? 'localhost';
/**
 * The default sink batches the lines of one event-loop turn into one write (stderr is a pipe
 * under a supervisor, and pipe writes are synchronous on Linux: one syscall per line cost ~6%
 * of CPU under load). Fatal errors and process exit flush at once.
 */
let pending: string[] = [];
let scheduled = false;
function flushLog(): void {
  scheduled = false;
  if (pending.length === 0) return;
  const text = pending.join('');
  pending = [];
  try { process.stderr.write(text); } catch { /* stderr gone: nothing to do */ }
  copy?.(text);
}
let copy: ((text: string) => void) | undefined;
/** Also give every batch of lines to `fn` (undefined: stop); returns the previous one. */
export function setLogCopy(fn: ((text: string) => void) | undefined): ((text: string) => void) | undefined {
  const old = copy;
  copy = fn;
  return old;
}
/** Whole log lines (each ending in a newline) another thread or process wrote: stderr and the copy. */
export function writeLogLines(text: string): void {
  if (text === '') return;
  try { process.stderr.write(text); } catch { /* stderr gone */ }
  copy?.(text);
}
process.once('exit', flushLog);
const defaultSink: LogSink = (line) => {
  pending.push(line + '\n');
  if (!scheduled) { scheduled = true; setImmediate(flushLog); }
};
let sink: LogSink = defaultSink;
/** Write out buffered log lines now (before a fatal exit). */
export function flushLogs(): void { flushLog(); }
let verbose = 0;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `Nov 27 18:52:23`, the classic syslog timestamp Postfix's maillog_file also uses. */
export function syslogTime(d: Date = new Date()): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

export function setSyslogName(name: string): void { syslogName = name; }
export function setLogHost(name: string): void { host = name.split('.')[0] || name; }
export function setLogSink(s: LogSink): LogSink { const old = sink; sink = s; return old; }
export function setVerbose(level: number): void { verbose = level; }
export function isVerbose(): boolean { return verbose > 0; }

/** A logger for one service, e.g. `logger('smtpd')` → `postern/smtpd[pid]: ...`. */
export class Logger {
  readonly service: string;
  constructor(service: string) { this.service = service; }

  private emit(sev: Severity, text: string): void {
    const prefix = sev === 'info' ? '' : `${sev}: `;
    sink(`${syslogTime()} ${host} ${syslogName}/${this.service}[${process.pid}]: ${prefix}${text}`);
  }
  info(text: string): void { this.emit('info', text); }
  warn(text: string): void { this.emit('warning', text); }
  error(text: string): void { this.emit('error', text); }
  /** Logs and throws: the caller's process or request ends here. */
  fatal(text: string): never { this.emit('fatal', text); flushLog(); throw new FatalError(text); }
  debug(text: string): void { if (verbose > 0) this.emit('info', text); }
}

/** Thrown by Logger.fatal; the CLI turns it into exit status 1 without a stack trace. */
export class FatalError extends Error {
  override name = 'FatalError';
}

const loggers = new Map<string, Logger>();
export function logger(service: string): Logger {
  let l = loggers.get(service);
  if (!l) { l = new Logger(service); loggers.set(service, l); }
  return l;
}
