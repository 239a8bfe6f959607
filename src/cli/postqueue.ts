/**
 * postqueue - `postern queue`: the queue tools of postqueue(1), postsuper(1) and postcat(1) in
 * one subcommand.
 *
 * SYNOPSIS
 *   postern queue [list]                      postqueue -p / mailq: the queue listing
 *   postern queue flush                       postqueue -f: retry all deferred mail now
 *   postern queue deliver ID                  postqueue -i ID: retry one deferred message now
 *   postern queue delete ID|ALL [QUEUE]       postsuper -d
 *   postern queue hold ID|ALL [QUEUE]         postsuper -h
 *   postern queue release ID|ALL              postsuper -H
 *   postern queue requeue ID|ALL [QUEUE]      postsuper -r
 *   postern queue show ID                     postcat -q ID
 *   postern qshape [QUEUE...]                 qshape(1): age buckets × recipient domains
 *   ID may be `-`: read queue IDs from standard input, one per line (as postsuper).
 *
 * DESCRIPTION
 *   The listing has exactly the layout of Postfix's postqueue -p with short queue IDs
 *   (showq_compat.c): the heading line, per message `ID[*!] size arrival-time sender` where
 *   `*` = active and `!` = hold, a `(reason)` line right-aligned to column 78 before the
 *   recipients it applies to (deferred mail, from the defer log), recipients indented by 42
 *   columns, a blank line between messages, and `-- N Kbytes in N Request(s).` (or "Mail queue
 *   is empty"). Delivered recipients are not listed. The null sender shows as MAILER-DAEMON.
 *
 *   flush/deliver/release notify a running qmgr through $queue_directory/public/qmgr.trigger
 *   (Postfix uses the public/qmgr fifo); without a running qmgr the mail waits for the next
 *   start. requeue moves messages to incoming so that qmgr resolves their recipients again
 *   (transport_maps, relocated_maps changes apply); cleanup's rewriting is not redone.
 *
 * SECURITY
 *   Needs access to the queue directory (root or mail_owner). Queue IDs from the command line
 *   are checked against the queue ID syntax, so `../x` never names a file.
 *
 * PARAMETERS
 *   queue_directory, hash_queue_depth, hash_queue_names
 */
import { promises as fsp } from 'node:fs';
import { MainConfig } from '../global/mail-conf.ts';
import { MailQueue, type QueueName } from '../global/mail-queue.ts';
import { queueCommand, type QueueIo } from '../global/queue-admin.ts';
import type { CliContext } from './cli-context.ts';

// The operations live in global/queue-admin.ts (shared with the web console).
export { formatShowqMessage, listQueue, queueCommand, showq, triggerQmgr, type QueueIo, type ShowqMessage } from '../global/queue-admin.ts';

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const config = MainConfig.load(ctx.configDir);
  const queue = MailQueue.fromConfig(config);
  const io: QueueIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };
  if (ctx.command === 'qshape') {
    const { qshape } = await import('./qshape.ts');
    io.out(await qshape(queue, args.length ? args as QueueName[] : ['incoming', 'active']));
    return 0;
  }
  try {
    await fsp.access(queue.dir);
  } catch {
    io.err(`postern: fatal: queue_directory ${queue.dir} (${config.file}): not accessible; set queue_directory in main.cf\n`);
    return 1;
  }
  try {
    return await queueCommand(queue, args, io);
  } catch (e) {
    io.err(`postern: fatal: ${(e as Error).message}\n`);
    return 64;
  }
}
