/**
 * virtual - virtual(8), the virtual mailbox delivery agent (Postfix src/virtual/).
 *
 * SUMMARY
 *   createVirtualAgent(settings) → DeliveryAgent for the master.cf `virtual` transport.
 *
 * DESCRIPTION
 *   Each recipient is looked up in virtual_mailbox_maps with Postfix's address search order
 *   (user@domain, then the @domain catch-all; src/global/mail-addr-find.ts). The result is a
 *   path under virtual_mailbox_base: ending in "/" means Maildir, otherwise an mbox file. Both
 *   are written by the mailbox store (lib-storage/mail-deliver.ts). Maildir delivery is
 *   Postfix's maildir.c: tmp/ → fsync → rename into new/ (deliverToNew(), no uidlist lock; the
 *   fsync of new/ is grouped and handed to qmgr as the result's `durable`); IMAP/POP3 see the
 *   message at their next sync, which gives it its UID. mbox delivery (mboxDeliver()) appends
 *   under the FILE.lock dotlock, virtual_mailbox_limit limiting the file's size. Return-Path: and Delivered-To: are prepended; a message
 *   that already carries Delivered-To: for this recipient is bounced as a mail forwarding loop,
 *   as Postfix.
 *
 * SECURITY
 *   Never writes outside virtual_mailbox_base: an absolute lookup result or one with a ".."
 *   component is a configuration error (the recipient is deferred, the log says what to fix).
 *   virtual_uid_maps/virtual_gid_maps must give ids >= virtual_minimum_uid. Postern does not yet
 *   switch to that uid per delivery (Node's seteuid is process-wide): run it as the mail owner
 *   (the embedded default uses the user running postern). See docs/virtual.md.
 *
 * DIAGNOSTICS
 *   status=sent (delivered to maildir|mailbox), status=bounced (unknown user: "x"),
 *   status=deferred (mail system configuration error) with a warning naming the parameter.
 *
 *   Sieve (docs/sieve.md): when dovecot.conf enables Pigeonhole for the LDA
 *   (`protocol lda { mail_plugins = $mail_plugins sieve }`), a Maildir delivery runs the user's
 *   scripts as Dovecot's LDA would, with the Maildir as the home (~/.dovecot.sieve beside cur/).
 *
 * PARAMETERS
 *   virtual_mailbox_base, virtual_mailbox_maps, virtual_uid_maps, virtual_gid_maps,
 *   virtual_minimum_uid, virtual_mailbox_limit, recipient_delimiter
 */
import { isAbsolute, join, normalize, sep } from 'node:path';
import type { MainConfig } from '../global/mail-conf.ts';
import { Maps } from '../global/maps.ts';
import { mailAddrFind } from '../global/mail-addr-find.ts';
import type { DeliverRequest, DeliveryAgent, RecipientResult } from '../global/deliver-request.ts';
import { deliverToNew, deliverToMaildirWithSieve, sieveScripts, maildirDeliver, maildirEnsureMailbox, mboxDeliver, MailError, MBOX_NOT_REGULAR, type SieveSend } from '../lib-storage/mail-deliver.ts';
import type { SieveSettings } from '../lib-sieve/sieve-settings.ts';
import { quarantineOf } from '../lib-authres/authres-header.ts';
import type { QueueRecipient } from '../global/queue-file.ts';
import { DictError } from '../util/dict.ts';
import { logger } from '../util/msg.ts';
import { deliveryHeaders, hasDeliveredTo } from '../global/delivered-hdr.ts';

const log = logger('virtual');

export interface VirtualSettings {
  base: string;
  mailboxMaps: Maps;
  uidMaps: Maps;
  gidMaps: Maps;
  minimumUid: number;
  mailboxLimit: number;
  recipientDelimiter: string;
  /** myhostname: the authserv-id whose DMARC quarantine mark sends mail to Junk (docs/authres.md). */
  authservId?: string;
  /** The Junk folder's name (Dovecot's special-use \\Junk mailbox of the default namespace). */
  junkMailbox?: string;
  /** Pigeonhole's settings from dovecot.conf (`protocol lda { mail_plugins = sieve }`): Maildir deliveries run the user's Sieve script. */
  sieve?: SieveSettings;
  /** Queues Sieve's redirects and replies (cleanup). */
  submit?: (m: SieveSend) => Promise<void>;
}

/** `durable` of a delivery the mailbox store made durable before it returned. */
const ALREADY_DURABLE: Promise<void> = Promise.resolve();

export async function virtualSettings(c: MainConfig): Promise<VirtualSettings> {
  const flags = c.dictFlags;
  return {
    base: c.get('virtual_mailbox_base'),
    mailboxMaps: await Maps.open(c.get('virtual_mailbox_maps'), { ...flags, paramName: 'virtual_mailbox_maps' }),
    uidMaps: await Maps.open(c.get('virtual_uid_maps'), { ...flags, paramName: 'virtual_uid_maps' }),
    gidMaps: await Maps.open(c.get('virtual_gid_maps'), { ...flags, paramName: 'virtual_gid_maps' }),
    minimumUid: c.int('virtual_minimum_uid'),
    mailboxLimit: c.int('virtual_mailbox_limit'),
    recipientDelimiter: c.get('recipient_delimiter'),
    authservId: c.get('myhostname'),
    junkMailbox: c.get('postern_junk_mailbox'),
  };
}

/** Resolve a lookup result to a path inside `base`, or explain why it is refused. */
export function mailboxPath(base: string, result: string): { path: string } | { error: string } {
  if (!base) return { error: 'virtual_mailbox_base is empty' };
  if (isAbsolute(result)) return { error: `absolute path "${result}" in virtual_mailbox_maps result (must be relative to virtual_mailbox_base)` };
  if (result.split('/').some((p) => p === '..')) return { error: `".." in virtual_mailbox_maps result "${result}"` };
  if (result.includes('\0')) return { error: 'NUL in virtual_mailbox_maps result' };
  const full = normalize(join(base, result));
  const root = normalize(base.endsWith(sep) ? base : base + sep);
  if (!full.startsWith(root)) return { error: `virtual_mailbox_maps result "${result}" escapes virtual_mailbox_base` };
  return { path: full };
}

export function createVirtualAgent(s: VirtualSettings): DeliveryAgent {
  return {
    name: 'virtual',
    async deliver(req: DeliverRequest): Promise<RecipientResult[]> {
      const out: RecipientResult[] = [];
      let content: Buffer | undefined;
      for (const r of req.recipients) {
        if (req.signal?.aborted) { out.push(res(r, 'deferred', '4.3.0', 'delivery interrupted')); continue; }
        try {
          content ??= await req.qf.content();
          out.push(await deliverOne(s, req, r, content));
        } catch (e) {
          // Unknown means defer (STYLE §9): never bounce on an exception.
          log.warn(`${req.qf.queueId}: ${r.address}: ${(e as Error).message}`);
          out.push(res(r, 'deferred', '4.3.0', `mail system error: ${(e as Error).message}`));
        }
      }
      return out;
    },
  };
}

function res(recipient: QueueRecipient, status: RecipientResult['status'], dsn: string, text: string): RecipientResult {
  return { recipient, status, dsn, text, relay: 'virtual' };
}

async function deliverOne(s: VirtualSettings, req: DeliverRequest, r: QueueRecipient, content: Buffer): Promise<RecipientResult> {
  let found;
  try {
    found = await mailAddrFind(s.mailboxMaps, r.address, { recipientDelimiter: s.recipientDelimiter });
  } catch (e) {
    if (e instanceof DictError) return res(r, 'deferred', '4.3.0', `virtual_mailbox_maps lookup failure: ${e.message}`);
    throw e;
  }
  if (!found) return res(r, 'bounced', '5.1.1', `unknown user: "${r.address}"`);
  const p = mailboxPath(s.base, found.value);
  if ('error' in p) {
    log.warn(`${req.qf.queueId}: recipient ${r.address}: ${p.error}`);
    return res(r, 'deferred', '4.3.5', 'mail system configuration error');
  }
  const uid = await idFor(s.uidMaps, r.address);
  const gid = await idFor(s.gidMaps, r.address);
  if (uid === undefined || gid === undefined) {
    log.warn(`${req.qf.queueId}: recipient ${r.address}: no ${uid === undefined ? 'virtual_uid_maps' : 'virtual_gid_maps'} result`);
    return res(r, 'deferred', '4.3.5', 'mail system configuration error');
  }
  if (uid < s.minimumUid) {
    log.warn(`${req.qf.queueId}: recipient ${r.address}: bad uid ${uid} in virtual_uid_maps (below virtual_minimum_uid ${s.minimumUid})`);
    return res(r, 'deferred', '4.3.5', 'mail system configuration error');
  }
  // An address verification probe (Postfix virtual(8) in verify mode): the user exists, nothing is written.
  if (req.verify) return res(r, 'sent', '2.0.0', found.value.endsWith('/') ? 'delivers to maildir' : 'delivers to mailbox');
  if (hasDeliveredTo(content, r.address)) return res(r, 'bounced', '5.4.6', `mail forwarding loop for ${r.address}`);
  const headers = deliveryHeaders(req.qf.sender, r.address);
  if (found.value.endsWith('/')) {
    let durable: Promise<void>;
    // DMARC p=quarantine (lib-authres): the Junk folder, created when missing.
    const junk = s.authservId && quarantineOf(content, s.authservId) ? (s.junkMailbox || 'Junk') : undefined;
    // Sieve only when the user has something for it to do (the Maildir is the home, as below):
    // otherwise the plain delivery, whose durability the queue manager batches.
    // The scripts are loaded once here and handed on (one read, one .log for a broken script).
    const loaded = s.sieve?.enabled ? sieveScripts(s.sieve, { user: r.address, home: p.path.replace(/\/+$/, '') }) : undefined;
    const sieve = loaded ? s.sieve : undefined;
    try {
      if (junk && !sieve) {
        await maildirDeliver(p.path, Buffer.concat([headers, content]), r.address, junk);
        log.info(`${req.qf.queueId}: ${r.address}: DMARC quarantine: delivered to ${junk}`);
        // Through the store, which returns once the message is on disk: already durable.
        return { ...res(r, 'sent', '2.0.0', `delivered to maildir (${junk})`), durable: ALREADY_DURABLE };
      }
      if (sieve) {
        // Pigeonhole as in Dovecot's LDA: the Maildir is the user's home (~/.dovecot.sieve).
        // A DMARC-quarantined message: the script still runs, Junk is its implicit keep (as lmtpd).
        if (junk) await maildirEnsureMailbox(p.path, r.address, junk);
        const r2 = await deliverToMaildirWithSieve(p.path, {
          ...(junk ? { defaultMailbox: junk } : {}),
          user: r.address, settings: sieve, loaded, envelope: { from: req.qf.sender, to: r.address, ...(r.orig ? { origTo: r.orig } : {}) },
          content: Buffer.concat([headers, content]), ...(s.submit ? { submit: s.submit } : {}),
          log: { info: (m) => log.info(`${req.qf.queueId}: ${m}`), warn: (m) => log.warn(`${req.qf.queueId}: ${m}`), error: (m) => log.warn(`${req.qf.queueId}: ${m}`) },
        });
        // Like the plain path, the result says when the delivery is on disk (qmgr waits for it
        // before the queue file goes): the store returned after its fsync, so it already is.
        return { ...res(r, 'sent', '2.0.0', r2.stored.length ? `delivered to maildir${r2.stored.some((b) => b !== 'INBOX') ? ` (${r2.stored.join(', ')})` : ''}` : 'delivered by sieve (no mailbox stored)'), durable: ALREADY_DURABLE };
      }
      ({ durable } = await deliverToNew(p.path, [headers, content]));
    } catch (e) {
      if (e instanceof MailError) {
        // Postfix virtual(8) maildir.c: mbox_dsn(errno, "4.2.0") — a full file system (ENOSPC)
        // defers; a file-system quota (EDQUOT/EFBIG) or the mailbox quota bounces 5.2.2.
        const full = e.code === 'NOQUOTA' && e.errno !== 'ENOSPC';
        const dsn = full ? '5.2.2' : e.code === 'TOOBIG' ? '5.2.3' : '4.2.0';
        log.warn(`${req.qf.queueId}: ${r.address}: maildir delivery failed: ${e.detail ?? e.message}`);
        // As Postfix, the reason names the file and the system error (for the log and the DSN).
        return res(r, dsn.startsWith('5') ? 'bounced' : 'deferred', dsn, `maildir delivery failed: ${e.detail ?? e.message}`);
      }
      throw e;
    }
    return { ...res(r, 'sent', '2.0.0', 'delivered to maildir'), durable };
  }
  try {
    await mboxDeliver(p.path, Buffer.concat([headers, content]), { sender: req.qf.sender, fileSizeLimit: s.mailboxLimit, makeParents: 0o700 });
  } catch (e) {
    if (!(e instanceof MailError)) throw e;
    // A mailbox that is not a regular file, or a message that would take the file over
    // virtual_mailbox_limit (EFBIG), bounces; anything else (lock, open, write) defers.
    if (e.message === MBOX_NOT_REGULAR) return res(r, 'bounced', '5.2.0', `mailbox ${p.path} is not a regular file`);
    if (e.errno === 'EFBIG') return res(r, 'bounced', '5.2.2', `cannot update mailbox ${p.path}: file too large`);
    return res(r, 'deferred', '4.2.0', `cannot update mailbox ${p.path}: ${e.detail ?? e.message}`);
  }
  return res(r, 'sent', '2.0.0', 'delivered to mailbox');
}

async function idFor(maps: Maps, address: string): Promise<number | undefined> {
  if (maps.isEmpty) return process.getuid?.() ?? 0;
  const f = await mailAddrFind(maps, address);
  if (!f) return undefined;
  const n = Number(f.value.trim());
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
