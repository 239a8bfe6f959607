/**
 * local - local(8), delivery for the local address class (Postfix src/local/).
 *
 * SUMMARY
 *   createLocalAgent(config, deps) → DeliveryAgent for the master.cf `local` transport.
 *
 * DESCRIPTION (Postfix local/recipient.c order, per recipient)
 *   0. A message that already has `Delivered-To: <recipient>` bounces 5.4.6 "mail forwarding
 *      loop for X".
 *   1. alias_maps, looked up with the local part (then without its extension,
 *      recipient_delimiter). The value (local-token.ts) expands to addresses, /files, |commands
 *      and :include: files. An alias `owner-NAME` makes `owner-NAME@$myorigin` (or, with
 *      expand_owner_alias = yes, its expansion) the envelope sender of NAME's expansion.
 *   2. the user's ~/.forward (forward_path, local-dotforward.ts), for UNIX accounts.
 *   3. the mailbox (local-mailbox.ts): mailbox_transport, mailbox_command, home_mailbox,
 *      mail_spool_directory.
 *   Unknown names: fallback_transport (a redirect), else luser_relay, else bounce 5.1.1
 *   `unknown user: "name"`.
 *
 *   Addresses in an expansion whose domain is local (mydestination, or no domain) are
 *   delivered again in this process, recursively (Postfix deliver_recursive); other addresses
 *   are re-submitted as ONE new queue file per envelope sender through cleanup, with
 *   `Delivered-To: <recipient>` prepended; the recipient is then "forwarded as QID".
 *   Loops: an address that reappears inside its own expansion bounces 5.4.6 "mail forwarding
 *   loop"; a name that expands to itself (`bob: bob, bob@elsewhere`, or `bob` in bob's
 *   .forward) goes to its mailbox; an address reached twice by different paths is delivered
 *   once; more than 100 levels bounce.
 *   One recipient's result is the worst of its expansion: deferred > bounced > sent.
 *
 * SECURITY
 *   Files and commands are never delivered as root: alias targets run with the alias table
 *   owner's rights (if not root) else default_privs (nobody); .forward targets with the user's;
 *   :include: targets with the include file owner's (if not root) else inherited rights.
 *   allow_mail_to_commands / allow_mail_to_files (alias, forward, include) are enforced
 *   (bounce 5.7.1 "mail to command/file is restricted"). An :include: file is read by a child
 *   running with those rights, so a user cannot include a file they cannot read.
 *
 * FILES (as Postfix's local/)
 *   local.ts the agent; local-recipient.ts one recipient (recipient.c); local-alias.ts
 *   (alias.c); local-dotforward.ts (dotforward.c); local-include.ts (include.c);
 *   local-expand.ts and local-token.ts the targets of an expansion (token.c); local-file.ts
 *   (file.c); local-command.ts (command.c); local-mailbox.ts (mailbox.c); local-unknown.ts
 *   (unknown.c); local-forward.ts re-submission through cleanup (forward.c); local-state.ts
 *   what they share (local.h).
 *
 * PARAMETERS
 *   alias_maps, expand_owner_alias, owner_request_special, allow_mail_to_commands,
 *   allow_mail_to_files, default_privs, forward_path, forward_expansion_filter, home_mailbox,
 *   mail_spool_directory, mailbox_command, command_expansion_filter, local_command_shell,
 *   mailbox_transport, fallback_transport, luser_relay, recipient_delimiter,
 *   mailbox_size_limit (the size of an mbox file, not of a message), command_time_limit (local_time_limit), export_environment, myorigin,
 *   mydestination.
 */
import type { MainConfig } from '../global/mail-conf.ts';
import { Maps } from '../global/maps.ts';
import type { DeliverRequest, DeliveryAgent, RecipientResult } from '../global/deliver-request.ts';
import { redirectResult } from '../global/deliver-redirect.ts';
import { MailQueue } from '../global/mail-queue.ts';
import type { CleanupClient, CleanupSettings } from '../global/cleanup-client.ts';
import { aliasTableOwner } from './local-alias.ts';
import type { Forwarder } from './local-forward.ts';
import { deliverRecipient } from './local-recipient.ts';
import { log, type LocalContext, type Settings, type State } from './local-state.ts';
import type { SieveSettings } from '../lib-sieve/sieve-settings.ts';

export interface LocalDeps {
  /** Where forwarded mail is queued (default: queue_directory). */
  queue?: MailQueue;
  cleanup?: CleanupSettings;
  /** cleanup(8), through which forwarded mail is queued (global/cleanup-client.ts). */
  cleanupClient: CleanupClient;
  /** Is this domain ours (mydestination)? Default: a literal match against mydestination. */
  isLocalDomain?: (domain: string) => boolean;
  /** Pigeonhole's settings (dovecot.conf `protocol lda { mail_plugins = sieve }`): home_mailbox Maildir deliveries run the user's scripts. */
  sieve?: SieveSettings;
}

export async function createLocalAgent(config: MainConfig, deps: LocalDeps): Promise<DeliveryAgent> {
  const s: Settings = {
    aliasMaps: await Maps.open(config.get('alias_maps'), { ...config.dictFlags, paramName: 'alias_maps' }),
    myorigin: config.get('myorigin'),
    delim: config.get('recipient_delimiter'),
    mydest: new Set(config.list('mydestination').map((d) => d.toLowerCase())),
  };
  const owner = await aliasTableOwner(s.aliasMaps);
  if (owner !== undefined) s.aliasOwner = owner;
  const isLocalDomain = deps.isLocalDomain ?? ((d: string) => s.mydest.has(d.toLowerCase()) || d.toLowerCase() === 'localhost');
  const lc: LocalContext = { config, s, isLocalDomain, forwarder: cleanupForwarder(config, deps), ...(deps.sieve?.enabled ? { sieve: deps.sieve } : {}) };

  return {
    name: 'local',
    async deliver(req: DeliverRequest): Promise<RecipientResult[]> {
      const out: RecipientResult[] = [];
      let content: Buffer | undefined;
      for (const r of req.recipients) {
        if (req.signal?.aborted) { out.push({ recipient: r, status: 'deferred', dsn: '4.3.0', text: 'delivery interrupted', relay: 'local' }); continue; }
        try {
          content ??= await req.qf.content();
          const st: State = { lc, req, content, top: r, forwards: new Map(), seen: new Set(), ...(req.userVerify ? { traces: [] } : {}) };
          const o = await deliverRecipient(st, r);
          if (o.redirect) out.push(redirectResult(r, o.redirect, 'local'));
          else out.push({ recipient: r, status: o.status, dsn: o.dsn, text: o.text, relay: 'local', ...(st.traces?.length ? { traces: st.traces } : {}) });
        } catch (e) {
          log.warn(`${req.qf.queueId}: ${r.address}: ${(e as Error).message}`);
          out.push({ recipient: r, status: 'deferred', dsn: '4.3.0', text: `mail system error: ${(e as Error).message}`, relay: 'local' });
        }
      }
      return out;
    },
  };
}

/**
 * local(8)'s one use of cleanup(8), the CleanupClient in deps: forwarded mail becomes a new queue
 * file (local-forward.ts), without headers added, in queue_directory unless deps say otherwise.
 */
function cleanupForwarder(config: MainConfig, deps: LocalDeps): Forwarder {
  let queue = deps.queue;
  const cleanup: CleanupSettings = deps.cleanup ?? { myhostname: config.get('myhostname'), myorigin: config.get('myorigin'), headerSizeLimit: config.int('header_size_limit'), messageSizeLimit: 0, alwaysAddMissingHeaders: false };
  return async (sender, recipients, message, logIdent) => {
    queue ??= new MailQueue(config.get('queue_directory'));
    const c = await deps.cleanupClient.open(cleanup, queue, { sender, attrs: { log_ident: logIdent }, addMissingHeaders: false, forwarded: true });
    for (const a of recipients) c.addRecipient({ address: a });
    await c.write(message);
    const r = await c.finish();
    return 'reject' in r ? { reject: r.reject.text } : { queueId: r.queueId };
  };
}
