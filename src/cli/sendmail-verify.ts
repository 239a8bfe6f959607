/**
 * sendmail-verify - `sendmail -bv addr...` (Postfix sendmail.c with DEL_REQ_FLAG_USR_VRFY):
 * queue a verification request instead of a message, and say where the report goes:
 *
 *   $ sendmail -bv joe@example.test nobody@example.test
 *   Mail Delivery Status Report will be mailed to <root>.
 *
 * The request is a queue file like any submission (through postdrop and pickup, so the mail
 * system does not have to run to accept it) with the attribute trace_flags=512, no message read
 * from standard input, and the headers Postfix writes: `From: SENDER` (unless the sender is
 * null), `Subject: probe`, and `To:` listing the recipients. qmgr sends every recipient through
 * its delivery agent in verify mode — nothing is delivered; local(8) expands aliases, .forward
 * and :include: files; smtp stops after RCPT TO — and bounce(8) mails the sender the report
 * (bounce-dsn.ts, "Mail Delivery Status Report": one paragraph per final address, e.g.
 * `<nobody@example.test>: delivery via local: delivers to mailbox`, a message/delivery-status
 * part with Action: deliverable / undeliverable, and the request's headers).
 *
 * EXIT STATUS: 0 once the request is queued; 64 (EX_USAGE) without recipients or with -t, -N
 * or -R (as Postfix); 75 (EX_TEMPFAIL) when the queue cannot be written.
 */
import type { MainConfig } from '../global/mail-conf.ts';
import { PostdropFile, PostdropError } from '../postdrop/postdrop.ts';
import { DEL_REQ_FLAG_USR_VRFY, TRACE_FLAGS_ATTR } from '../global/verify-client.ts';
import { EX, type SendmailOptions } from './sendmail-args.ts';
import { extractAddresses } from './sendmail-input.ts';
import { openQueue, triggerPickup } from './sendmail.ts';

function fatal(text: string, code: number): number {
  process.stderr.write(`sendmail: fatal: ${text}\n`);
  return code;
}

/** The request's message: Postfix sendmail.c's headers for DEL_REQ_TRACE_ONLY, no body. */
export function verifyRequestText(sender: string, recipients: readonly string[]): string {
  // An argument is one header line: a CR, LF or other control character cannot start another.
  // eslint-disable-next-line no-control-regex
  const clean = (s: string) => s.replace(/[\x00-\x1f\x7f]/g, ' ');
  sender = clean(sender);
  recipients = recipients.map(clean);
  let h = sender ? `From: ${sender}\n` : '';
  h += 'Subject: probe\n';
  if (recipients.length) h += 'To:' + recipients.map((r, i) => `\t${r}${i < recipients.length - 1 ? ',' : ''}\n`).join('');
  return h;
}

export async function verify(o: SendmailOptions, config: MainConfig, sender: string, fullname?: string): Promise<number> {
  if (o.extract) return fatal('-t option cannot be used with -bv', EX.USAGE);
  if (o.notify) return fatal('-N option cannot be used with -bv', EX.USAGE);
  if (o.ret) return fatal('-R option cannot be used with -bv', EX.USAGE);
  const addrs = o.recipients.flatMap((r) => extractAddresses(r));
  if (addrs.length === 0) return fatal(`${sender}(${process.getuid?.() ?? 0}): Recipient addresses must be specified on the command line or via the -t option`, EX.USAGE);
  const queue = openQueue(config);
  let f: PostdropFile;
  try {
    f = await PostdropFile.open(queue, {
      sender, fullname: o.fullname ?? fullname, attrs: { [TRACE_FLAGS_ATTR]: String(DEL_REQ_FLAG_USR_VRFY) },
      messageSizeLimit: config.int('message_size_limit'),
    });
  } catch (e) {
    if (e instanceof PostdropError) return fatal(e.message, e.exitCode);
    throw e;
  }
  try {
    for (const a of addrs) f.addRecipient({ address: a });
    await f.write(Buffer.from(verifyRequestText(sender, o.recipients.map((r) => r.trim()).filter((r) => r !== ''))));
    await f.commit();
  } catch (e) {
    await f.abort();
    if (e instanceof PostdropError) return fatal(e.message, e.exitCode);
    return fatal(`cannot submit the verification request: ${(e as Error).message}`, EX.TEMPFAIL);
  }
  await triggerPickup(queue);
  process.stdout.write(`Mail Delivery Status Report will be mailed to <${sender}>.\n`);
  return EX.OK;
}
