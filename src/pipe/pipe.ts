/**
 * pipe - pipe(8), delivery to an external command named by a master.cf entry
 * (Postfix src/pipe/pipe.c):
 *
 *   uucp unix - n n - - pipe
 *     flags=Fqhu user=uucp argv=uux -r -n -z -a$sender - $nexthop!rmail ($recipient)
 *
 * SUMMARY
 *   createPipeAgent(config, { entries }) → DeliveryAgent. One agent serves every pipe entry: the
 *   request's `transport` (the master.cf service name) picks the entry and its flags=, user=,
 *   size=, null_sender=, eol=, directory= and argv=. The entries are master.cf as the master
 *   parsed it, passed down through qmgr's agent factory (master/master-agents.ts): pipe(8)
 *   never reads master.cf itself, so what it runs is what the master read at start or reload.
 *
 * DESCRIPTION
 *   One command runs per request, for all its recipients (pipe.c): an argument holding a
 *   per-recipient macro repeats once per recipient (pipe-argv.ts). Set
 *   `<transport>_destination_recipient_limit = 1` to get one command per recipient, as Postfix
 *   documents; the D and O flags require it (else: deferred, "mail system configuration error",
 *   and a warning saying which parameter to set). Every recipient of the request gets the
 *   command's status (global/pipe-command.ts: sysexits.h table, signals defer, time limit
 *   `<transport>_time_limit` (default $command_time_limit) bounces as Postfix).
 *   size=N: a larger message bounces 5.2.3 "message too large". With the D flag a message that
 *   already has `Delivered-To: <recipient>` bounces 5.4.6 "mail forwarding loop for X".
 *
 * SECURITY
 *   The command runs as user= (and :group, else the user's login group), never as root: user=root
 *   is refused by the master.cf parser, and a user= that resolves to uid 0 is refused here.
 *   When Postern itself is not root it cannot switch users: the command then runs as the
 *   current user (a warning is logged once per transport).
 */
import type { MainConfig } from '../global/mail-conf.ts';
import type { MasterEntry } from '../global/master-cf.ts';
import type { DeliverRequest, DeliveryAgent, RecipientResult } from '../global/deliver-request.ts';
import { allRecipients, deferOnError } from '../global/deliver-request.ts';
import { getgrnam, getpwnam } from '../util/dict-unix.ts';
import { hasDeliveredTo } from '../global/delivered-hdr.ts';
import { logger } from '../util/msg.ts';
import { expandArgv, ArgvError } from './pipe-argv.ts';
import { mailCopy } from '../global/mail-copy.ts';
import { commandEnv, runCommand } from '../global/pipe-command.ts';

const log = logger('pipe');
const isRoot = process.getuid?.() === 0;

export interface PipeAgentOptions {
  /** master.cf's entries, as the master parsed them. */
  entries: readonly MasterEntry[];
}

export function createPipeAgent(config: MainConfig, o: PipeAgentOptions): DeliveryAgent {
  const entries = o.entries;
  const warned = new Set<string>();
  return {
    name: 'pipe',
    async deliver(req: DeliverRequest): Promise<RecipientResult[]> {
      try {
        const e = entries.find((x) => x.service === req.transport && x.pipe);
        if (!e?.pipe) {
          log.warn(`${req.qf.queueId}: no pipe(8) entry for transport "${req.transport}" in master.cf`);
          return allRecipients(req, 'deferred', '4.3.5', 'mail system configuration error', req.transport);
        }
        return await deliverPipe(config, e, req, warned);
      } catch (err) {
        log.warn(`${req.qf.queueId}: ${(err as Error).message}`);
        return deferOnError(req, err, req.transport);
      }
    },
  };
}

function configError(req: DeliverRequest, relay: string, why: string): RecipientResult[] {
  log.warn(`${req.qf.queueId}: ${why}`);
  return allRecipients(req, 'deferred', '4.3.5', 'mail system configuration error', relay);
}

async function deliverPipe(config: MainConfig, e: MasterEntry, req: DeliverRequest, warned: Set<string>): Promise<RecipientResult[]> {
  const p = e.pipe!;
  const relay = e.service;
  const cfg = Object.keys(e.overrides).length ? config.withOverrides(e.overrides) : config;
  const flags = p.flags;
  if (req.recipients.length > 1) {
    for (const f of ['D', 'O']) {
      if (flags.includes(f)) return configError(req, relay, `${e.file}:${e.line}: pipe flag ${f} requires ${e.service}_destination_recipient_limit = 1`);
    }
  }
  // user= and group (pipe.c get_service_attr: the user's login group unless :group is given).
  const pw = getpwnam(p.user);
  if (!pw) return configError(req, relay, `${e.file}:${e.line}: pipe: unknown user name in user= attribute: ${p.user}`);
  let gid = pw.gid;
  if (p.group) {
    const gr = getgrnam(p.group);
    if (!gr) return configError(req, relay, `${e.file}:${e.line}: pipe: unknown group name in user= attribute: ${p.group}`);
    gid = gr.gid;
  }
  if (pw.uid === 0 || gid === 0) return configError(req, relay, `${e.file}:${e.line}: pipe: user= command-line attribute specifies root privileges`);
  if (!isRoot && pw.uid !== process.getuid?.() && !warned.has(e.service)) {
    warned.add(e.service);
    log.warn(`${e.service}: not running as root: running the command as uid ${process.getuid?.()} instead of ${p.user}`);
  }

  const qf = req.qf;
  if (p.size !== undefined && p.size > 0 && qf.contentLength > p.size) {
    return allRecipients(req, 'bounced', '5.2.3', 'message too large', relay);
  }
  // An address verification probe (Postfix pipe.c, DEL_REQ_TRACE_ONLY): nothing runs.
  if (req.verify) return allRecipients(req, 'sent', '2.0.0', `delivers to command: ${p.argv[0] ?? ''}`, relay);
  const content = await qf.content();
  if (flags.includes('D') && hasDeliveredTo(content, req.recipients[0]!.address)) {
    return allRecipients(req, 'bounced', '5.4.6', `mail forwarding loop for ${req.recipients[0]!.address}`, relay);
  }
  const sender = qf.sender === '' ? (p.nullSender ?? 'MAILER-DAEMON') : qf.sender;
  let argv: string[];
  try {
    argv = expandArgv(p.argv, {
      sender, nexthop: req.nexthop, size: qf.contentLength, queueId: qf.queueId,
      attrs: Object.fromEntries(qf.attrs), recipients: req.recipients.map((r) => ({ address: r.address, orig: r.orig })),
      flags, recipientDelimiter: cfg.get('recipient_delimiter'),
    });
  } catch (err) {
    if (err instanceof ArgvError) return configError(req, relay, `${e.file}:${e.line}: ${err.message}`);
    throw err;
  }
  const r0 = req.recipients[0]!;
  const input = mailCopy(content, { sender, recipient: r0.address, originalRecipient: r0.orig ?? r0.address, flags, eol: p.eol });
  const timeLimit = cfg.time(`${e.service}_time_limit`);
  const out = await runCommand({
    argv, uid: isRoot ? pw.uid : undefined, gid: isRoot ? gid : undefined, cwd: p.directory,
    env: commandEnv(cfg.get('export_environment'), {}), input, timeLimitMs: timeLimit * 1000, signal: req.signal,
  });
  const text = out.status === 'sent' ? `delivered via ${e.service} service` : out.text;
  return allRecipients(req, out.status, out.dsn, text, relay, out.status === 'sent' ? undefined : `x-unix; ${out.output || out.text}`);
}
