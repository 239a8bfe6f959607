/**
 * postqueue - `postern queue`: the queue tools of postqueue(1), postsuper(1) and postcat(1) in
 * one subcommand.
 *
 * SYNOPSIS
 *   postern queue [list]                      postqueue -p / mailq: the queue listing
 *   postern queue flush                       postqueue -f: retry all deferred mail now
 *   postern queue site SITE                   postqueue -s SITE: retry the deferred mail for SITE
 *                                             (fast_flush_domains) now
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
import { queueCommand, triggerQmgr, type QueueIo } from '../global/queue-admin.ts';
import type { CliContext } from './cli-context.ts';

// The operations live in global/queue-admin.ts (shared with the web console).
export { formatShowqMessage, listQueue, queueCommand, showq, triggerQmgr, type QueueIo, type ShowqMessage } from '../global/queue-admin.ts';

/**
 * postqueue -s SITE (Postfix's flush service): retry now the deferred messages with a recipient
 * at SITE (or a subdomain), if SITE is in fast_flush_domains; the other deferred mail keeps its
 * retry time. Postfix's words when it is not: "Flush service is not configured for destination".
 */
async function flushSite(config: MainConfig, queue: MailQueue, site: string | undefined, io: QueueIo): Promise<number> {
  if (!site || !/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(site)) { io.err(`postern: fatal: Invalid request: "${site ?? ''}"\n`); return 64; }
  const { NamadrList } = await import('../global/namadr-list.ts');
  const { Maps } = await import('../global/maps.ts');
  const { QueueFile } = await import('../global/queue-file-reader.ts');
  const parent = config.list('parent_domain_matches_subdomains').includes('fast_flush_domains');
  const list = await NamadrList.create('fast_flush_domains', config.get('fast_flush_domains'), parent, (spec) => Maps.open(spec, config.dictFlags));
  if (!(await list.match(site, ''))) { io.err(`postern: fatal: Flush service is not configured for destination "${site}"\n`); return 69; }
  const s = site.toLowerCase();
  const now = new Date();
  for await (const qid of queue.list('deferred')) {
    const path = queue.path('deferred', qid);
    const qf = await QueueFile.open(path, qid).catch(() => undefined);
    if (!qf) continue;
    const hit = qf.undone.some((r) => { const d = r.address.slice(r.address.lastIndexOf('@') + 1).toLowerCase(); return d === s || d.endsWith(`.${s}`); });
    if (hit) await fsp.utimes(path, now, now).catch(() => {});
  }
  await triggerQmgr(queue, 'D');
  return 0;
}

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
    if (args[0] === 'site' || args[0] === '-s') return await flushSite(config, queue, args[1], io);
    return await queueCommand(queue, args, io);
  } catch (e) {
    io.err(`postern: fatal: ${(e as Error).message}\n`);
    return 64;
  }
}
