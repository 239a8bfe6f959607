/**
 * sendmail-smtp - `sendmail -bs`: an SMTP session (RFC 5321) on standard input and output, as
 * Postfix runs smtpd(8) in stand-alone mode for it. The session code is smtpd's own
 * (src/smtpd/smtpd-session.ts), unchanged: it is given a Duplex over stdin/stdout that looks
 * like a socket from localhost[127.0.0.1], and each accepted message is written into the
 * `maildrop` queue (PostdropSession, a CleanupStream of global/cleanup-client.ts) — so it works
 * while the daemons are down, and pickup moves it on. Restrictions: none (PERMIT_ALL), as a local user can submit anything with sendmail
 * anyway; missing headers are added (a local client).
 *
 * End of input without QUIT: the session is given up to 5 s to finish a message in progress,
 * then it ends as a lost connection.
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { MainConfig } from '../global/mail-conf.ts';
import type { MailQueue } from '../global/mail-queue.ts';
import { SmtpdSession } from '../smtpd/smtpd-session.ts';
import { smtpdSettings } from '../smtpd/smtpd-settings.ts';
import { PERMIT_ALL } from '../smtpd/smtpd-policy.ts';
import { PostdropSession } from '../postdrop/postdrop.ts';

const EOF_GRACE_MS = 5000;

/** A socket look-alike over two streams (what SmtpdSession uses of net.Socket). */
export function stdioSocket(input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Duplex {
  const d = new Duplex({
    allowHalfOpen: true,
    read() { input.resume(); },
    write(chunk: Buffer, _enc, cb) { output.write(chunk, cb); },
    final(cb) { cb(); },
  });
  input.on('data', (b: Buffer) => { if (!d.push(b)) input.pause(); });
  input.on('end', () => d.push(null));
  Object.assign(d, { remoteAddress: '127.0.0.1', remotePort: 0, localAddress: '127.0.0.1', localPort: 0, setNoDelay() { return d; }, setTimeout() { return d; } });
  return d;
}

export async function runSmtpSession(config: MainConfig, queue: MailQueue,
  input: NodeJS.ReadableStream = process.stdin, output: NodeJS.WritableStream = process.stdout): Promise<number> {
  const sock = stdioSocket(input, output);
  const limit = config.int('message_size_limit');
  const session = new SmtpdSession(sock as unknown as Socket, {
    settings: smtpdSettings(config),
    policy: PERMIT_ALL,
    service: 'sendmail',
    openCleanup: (o) => PostdropSession.open(queue, o, limit),
    isLocalClient: () => true,
  });
  const done = new Promise<void>((resolve) => {
    sock.once('close', () => resolve());
    sock.once('finish', () => { sock.destroy(); });
    sock.once('end', () => {
      const t = setTimeout(() => sock.destroy(), EOF_GRACE_MS);
      t.unref();
    });
  });
  await session.start();
  await done;
  return 0;
}
