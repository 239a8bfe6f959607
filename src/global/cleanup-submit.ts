/**
 * cleanup-submit - "send this message to these recipients" through cleanup(8), for the
 * programs that make new mail at delivery time: Sieve's redirect, vacation, reject and notify
 * in lmtpd, virtual(8) and local(8) (Postfix's local/forward.c pattern: a new queue file, so
 * the reply or the redirected copy is queued, retried and logged like any other mail).
 *
 *   const submit = cleanupSubmitter(config, cleanupClient, 'lmtpd');
 *   const queueId = await submit(sender, ['rcpt@example.com'], content);   // throws on refusal
 *
 * The sender may be '' (the null sender of auto-replies, RFC 3834 §3.3). Headers are not
 * added (the message is complete) and address mapping applies as for forwarded mail.
 */
import type { CleanupClient, CleanupSettings } from './cleanup-client.ts';
import type { MainConfig } from './mail-conf.ts';
import { MailQueue } from './mail-queue.ts';

export type Submitter = (sender: string, recipients: readonly string[], content: Buffer) => Promise<string>;

export function cleanupSubmitter(config: MainConfig, client: CleanupClient, logIdent: string, notify?: (qid: string) => void): Submitter {
  let queue: MailQueue | undefined;
  const settings: CleanupSettings = {
    myhostname: config.get('myhostname'), myorigin: config.get('myorigin'),
    headerSizeLimit: config.int('header_size_limit'), messageSizeLimit: 0, alwaysAddMissingHeaders: false,
    config, ...(notify ? { notify } : {}),
  };
  return async (sender, recipients, content) => {
    queue ??= new MailQueue(config.get('queue_directory'));
    const c = await client.open(settings, queue, { sender, attrs: { log_ident: logIdent }, addMissingHeaders: false });
    for (const a of recipients) c.addRecipient({ address: a });
    await c.write(Buffer.from(content.toString('latin1').replace(/\r\n/g, '\n'), 'latin1'));
    const r = await c.finish();
    if ('reject' in r) throw new Error(`cleanup refused the message: ${r.reject.code} ${r.reject.enh} ${r.reject.text}`);
    return r.queueId;
  };
}
