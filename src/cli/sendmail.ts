/**
 * sendmail - sendmail(1), the Sendmail-compatible submission command (Postfix
 * src/sendmail/sendmail.c): `postern sendmail`, also installed as bin/sendmail and bin/mailq so
 * that scripts calling `sendmail -t -i` or `mailq` work unchanged.
 *
 * SYNOPSIS
 *   sendmail [-bm] [-t] [-i|-oi] [-f sender] [-F fullname] [-N dsn] [-R ret] [-V envid]
 *            [-B body] [-C config] [recipient ...]
 *   sendmail -bs        an SMTP session on standard input/output
 *   sendmail -bv addr   address verification report
 *   sendmail -bp        the mail queue (mailq)
 *   sendmail -q         flush the queue
 *
 * DESCRIPTION
 *   The default mode (-bm) reads the message on standard input and writes it into the
 *   `maildrop` queue through postdrop (src/postdrop/postdrop.ts); pickup(8) moves it on when the
 *   mail system runs. The exit status is 0 only once the queue file is on disk (fsync'd), so mail
 *   can be submitted while the daemons are down. See sendmail-args.ts for the options and
 *   sendmail-input.ts for how the input is read (-t, -i). Recipients given on the command line
 *   are added to those -t finds in the headers (Postfix ≥ 2.1).
 *
 *   -bs runs the SMTP server session (src/smtpd/smtpd-session.ts) over standard input and
 *   output, as a local client (localhost[127.0.0.1]); accepted mail goes into `maildrop`.
 *
 *   -bv queues a verification request (sendmail-verify.ts): every recipient goes through the
 *   delivery agents without delivery, and the "Mail Delivery Status Report" is mailed to the
 *   sender, as Postfix does.
 *
 * EXIT STATUS (sysexits.h)
 *   0 ok, 64 EX_USAGE (bad option, no recipients), 65 EX_DATAERR (message too big),
 *   69 EX_UNAVAILABLE (mode not available),
 *   75 EX_TEMPFAIL (queue not writable, configuration unreadable), 78 EX_CONFIG.
 *
 * SECURITY
 *   Runs as the invoking user; postdrop writes only into maildrop, and pickup re-validates
 *   every file there (a user can write any bytes into a maildrop file).
 *
 * DIAGNOSTICS
 *   `sendmail: fatal: ...` on stderr. Warnings from postdrop as maillog lines on stderr;
 *   info lines only with -v.
 *
 * PARAMETERS
 *   queue_directory, message_size_limit, header_size_limit, myhostname, myorigin, mail_name,
 *   smtpd_* (for -bs), and trivial-rewrite's for -bv.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { MainConfig } from '../global/mail-conf.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { ConfigError } from '../global/config-error.ts';
import { PostdropFile, PostdropError } from '../postdrop/postdrop.ts';
import { setLogSink } from '../util/msg.ts';
import type { CliContext } from './cli-context.ts';
import { EX, parseSendmailArgs, UsageError, type SendmailOptions } from './sendmail-args.ts';
import { extractAddresses, readMessage } from './sendmail-input.ts';
import { ATTR } from '../global/rec-type.ts';

function fatal(text: string, code: number): number {
  process.stderr.write(`sendmail: fatal: ${text}\n`);
  return code;
}

/** The configuration directory: -C FILE|DIR, else the CLI's -c / MAIL_CONFIG / default. */
function configDirOf(o: SendmailOptions, ctx: CliContext): string {
  if (!o.config) return ctx.configDir;
  try {
    return statSync(o.config).isDirectory() ? o.config : dirname(o.config);
  } catch {
    return dirname(o.config);
  }
}

/**
 * The sender's full name when -F is not given (Postfix sendmail.c / fullname.c): $NAME, else
 * the GECOS field of the password file up to the first comma, with "&" replaced by the
 * capitalised login name.
 */
export function defaultFullName(passwd = '/etc/passwd'): string | undefined {
  if (process.env.NAME) return process.env.NAME;
  const uid = process.getuid?.();
  if (uid === undefined) return undefined;
  let text: string;
  try { text = readFileSync(passwd, 'utf8'); } catch { return undefined; }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 5 || Number(f[2]) !== uid) continue;
    const login = f[0]!;
    const gecos = f[4]!.split(',')[0]!.replace(/&/g, login.charAt(0).toUpperCase() + login.slice(1)).trim();
    return gecos || undefined;
  }
  return undefined;
}

/** Postfix: the login name of the real uid is the default sender. */
function loginName(): string {
  try { return userInfo().username; } catch { return `uid${process.getuid?.() ?? 0}`; }
}

export function openQueue(config: MainConfig): MailQueue {
  return MailQueue.fromConfig(config);
}

export async function main(args: string[], ctx: CliContext): Promise<number> {
  let o: SendmailOptions;
  try {
    o = parseSendmailArgs(args);
  } catch (e) {
    if (e instanceof UsageError) return fatal(`${e.message}\nusage: sendmail [-t] [-i] [-f sender] [-F fullname] [-N dsn] [-R ret] [-V envid] [-bm|-bs|-bv|-bp] [recipient ...]`, EX.USAGE);
    throw e;
  }
  // Postfix's sendmail logs to syslog, not to the terminal: show only problems unless -v.
  const old = setLogSink((line) => {
    if (o.verbose > 0 || / (warning|error|fatal|panic): /.test(line)) process.stderr.write(line + '\n');
  });
  try {
    let config: MainConfig;
    const dir = configDirOf(o, ctx);
    try {
      config = MainConfig.load(dir);
    } catch (e) {
      if (e instanceof ConfigError) return fatal(e.message, EX.CONFIG);
      throw e;
    }
    switch (o.mode) {
      case 'deliver': return await deliver(o, config);
      case 'smtp': return await (await import('./sendmail-smtp.ts')).runSmtpSession(config, openQueue(config));
      case 'verify': return await (await import('./sendmail-verify.ts')).verify(o, config, o.sender ?? loginName(), defaultFullName());
      case 'mailq': return await queueCommand(['list'], ctx, 'the queue listing (mailq)', config);
      case 'flush': return await queueCommand(['flush'], ctx, 'flushing the queue (sendmail -q)', config);
      case 'daemon': return fatal('daemon mode is "postern start" (run it instead of sendmail -bd)', EX.USAGE);
      case 'newaliases': return fatal('newaliases (sendmail -bi) is not available yet in this version of Postern: run "postern map /etc/aliases" for hash: aliases', EX.UNAVAILABLE);
      default: return fatal(`mode ${o.mode} not supported`, EX.USAGE);
    }
  } finally {
    setLogSink(old);
  }
}

/**
 * mailq / sendmail -q: `postern queue` (src/cli/postqueue.ts, written with qmgr). Until it
 * exists, say so plainly.
 */
async function queueCommand(args: string[], ctx: CliContext, desc: string, config: MainConfig): Promise<number> {
  const path = new URL('./postqueue.ts', import.meta.url);
  if (!existsSync(path)) {
    return fatal(`${desc} is not available yet in this version of Postern (no "postern queue"); the files are under ${config.get('queue_directory')}`, EX.UNAVAILABLE);
  }
  const mod = (await import(path.href)) as { main(a: string[], c: CliContext): Promise<number> };
  return mod.main(args, { ...ctx, command: 'queue' });
}

/**
 * Wake up pickup (Postfix mail_trigger(MAIL_CLASS_PUBLIC, var_pickup_service)): a connection to
 * $queue_directory/public/pickup. Best effort: pickup also watches maildrop and wakes up every
 * 60 s, and the message is already safe on disk.
 */
export async function triggerPickup(queue: MailQueue): Promise<void> {
  const path = join(queue.dir, 'public', 'pickup');
  if (!existsSync(path)) return;
  await new Promise<void>((resolve) => {
    const s = connect(path);
    const done = (): void => { clearTimeout(t); s.destroy(); resolve(); };
    const t = setTimeout(done, 200);
    s.on('connect', () => s.end('W'));
    s.on('error', done);
    s.on('close', done);
  });
}

/** -bm: stdin → maildrop. */
async function deliver(o: SendmailOptions, config: MainConfig): Promise<number> {
  const recipients = o.recipients.flatMap((r) => extractAddresses(r));
  if (!o.extract && recipients.length === 0) {
    return fatal('Recipient addresses must be specified on the command line or via the -t option', EX.USAGE);
  }
  const attrs: Record<string, string> = {};
  if (o.envid) attrs[ATTR.DSN_ENVID] = o.envid;
  if (o.ret) attrs[ATTR.DSN_RET] = o.ret;
  if (o.body) attrs[ATTR.ENCODING] = o.body;
  const queue = openQueue(config);
  let f: PostdropFile;
  try {
    f = await PostdropFile.open(queue, {
      sender: o.sender ?? loginName(),
      fullname: o.fullname ?? defaultFullName(),
      attrs,
      messageSizeLimit: config.int('message_size_limit'),
    });
  } catch (e) {
    if (e instanceof PostdropError) return fatal(e.message, e.exitCode);
    throw e;
  }
  try {
    for (const r of recipients) f.addRecipient({ address: r, notify: o.notify || undefined });
    const res = await readMessage(process.stdin, {
      dotEnds: o.dotEnds,
      extract: o.extract,
      headerLimit: config.int('header_size_limit') || 102400,
    }, (b) => f.write(b));
    for (const r of res.extracted) f.addRecipient({ address: r, notify: o.notify || undefined });
    if (f.recipientCount === 0) {
      await f.abort();
      return fatal('No recipient addresses found in message header', EX.USAGE);
    }
    const id = await f.commit();
    if (o.verbose) process.stderr.write(`sendmail: queued as ${id} in maildrop\n`);
    await triggerPickup(queue);
    return EX.OK;
  } catch (e) {
    await f.abort();
    if (e instanceof PostdropError) return fatal(e.message, e.exitCode);
    return fatal(`cannot submit the message: ${(e as Error).message}`, EX.TEMPFAIL);
  }
}

/** bin/sendmail and bin/mailq run this file directly (no `postern` option parsing in between). */
if (import.meta.main) {
  const { defaultConfigDir } = await import('../global/config-dir.ts');
  const ctx: CliContext = {
    configDir: process.env.MAIL_CONFIG ?? defaultConfigDir(),
    configDirExplicit: process.env.MAIL_CONFIG !== undefined,
    command: 'sendmail',
  };
  main(process.argv.slice(2), ctx).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => { process.exitCode = fatal(err instanceof Error ? (err.stack ?? err.message) : String(err), EX.SOFTWARE); },
  );
}
