/**
 * mail-deliver-sieve - final delivery with the user's Sieve filters (Pigeonhole's place in
 * Dovecot's LDA and LMTP): the ONE call lmtpd, virtual(8) and local(8) make when
 * `mail_plugins` has `sieve` for their protocol, instead of a plain deliver().
 *
 *   const r = await deliverWithSieve(mailUser, { settings, home, envelope, content, submit, log });
 *   r.stored            mailboxes the message went into ([] when discarded/redirected/rejected)
 *   r.protocolReject    ereject's text, when the caller said it can refuse in its protocol
 *   sieveScripts(settings, rec)  the user's scripts when there is anything for Sieve to do (a
 *                       script to run, or a broken one to report), else undefined: the caller
 *                       then delivers as without Sieve: streamed, the message never read whole
 *                       into memory, the store's batched durability kept (the usual case: most
 *                       users have no script). Otherwise it passes them on as `loaded`, so the
 *                       scripts are read (and a broken one's .log written) once per delivery
 *   deliverToMaildirWithSieve(dir, o)  the same for an agent given a Maildir path (virtual(8),
 *                       local(8)): the Maildir is the user's home, so ~/.dovecot.sieve and
 *                       ~/sieve/ are beside cur/ new/ tmp/ (Dovecot's mail_location = maildir:~)
 *
 * lib-sieve decides (sieve-run.ts: before/user/after scripts, RFC 5228 semantics); this file
 * carries the decision out against the mailbox store:
 *  - each store action is a deliver() with its IMAP flags and keywords (imap4flags) and the
 *    message as editheader left it; fileinto into a missing mailbox creates it with :create
 *    (RFC 5490), else stores into INBOX instead (Pigeonhole: "failed to store into mailbox";
 *    lda_mailbox_autocreate = no);
 *  - redirect, vacation, reject and notify messages go to `submit`, which the daemon wires to
 *    cleanup(8) (global/cleanup-client.ts): Postern's own queue. A redirect that cannot be
 *    queued keeps the message in INBOX;
 *  - duplicate marks and vacation periods are recorded only after every store succeeded.
 * Quota and other store errors propagate unchanged, so LMTP answers them as without Sieve.
 */
import type { UserRecord } from '../lib-auth/user-directory.ts';
import { planSieveDelivery, type SieveLogger, type SieveSend } from '../lib-sieve/sieve-run.ts';
import { loadScripts, type LoadedScripts } from '../lib-sieve/sieve-script.ts';
import type { SieveEnvelope } from '../lib-sieve/sieve-message.ts';
import type { SieveSettings } from '../lib-sieve/sieve-settings.ts';
import { MailError, SYSTEM_FLAGS, type MailUser } from './mail-storage.ts';
import { MaildirStore } from './maildir/maildir-storage.ts';

export type { SieveSend } from '../lib-sieve/sieve-run.ts';

export interface SieveDeliverOptions {
  settings: SieveSettings;
  rec: Pick<UserRecord, 'user' | 'home'>;
  envelope: SieveEnvelope;
  content: Buffer;
  /** Submit a message through the queue (cleanup); undefined: logged and dropped. */
  submit?: (m: SieveSend) => Promise<void>;
  log: SieveLogger;
  /** Where the implicit keep goes (LMTP's detail mailbox), default INBOX. */
  defaultMailbox?: string;
  canRejectInProtocol?: boolean;
  environment?: Record<string, string>;
  /** The scripts sieveScripts() returned for this delivery (else they are loaded here). */
  loaded?: LoadedScripts;
}

export interface SieveDeliverResult {
  stored: string[];
  protocolReject?: string;
}

function splitFlags(flags: readonly string[]): { flags: string[]; keywords: string[] } {
  const sys: string[] = [];
  const kw: string[] = [];
  for (const f of flags) {
    if (f.startsWith('\\')) {
      const known = SYSTEM_FLAGS.find((s) => s.toLowerCase() === f.toLowerCase());
      if (known && !sys.includes(known)) sys.push(known);
    } else if (/^[^\s(){%*"\\\]]+$/.test(f) && !kw.includes(f)) kw.push(f);
  }
  return { flags: sys, keywords: kw };
}

export function sieveScripts(settings: SieveSettings, rec: Pick<UserRecord, 'user' | 'home'>): LoadedScripts | undefined {
  const l = loadScripts(settings, rec.user, rec.home);
  return l.scripts.length > 0 || l.problems.length > 0 ? l : undefined;
}

export async function deliverWithSieve(user: MailUser, o: SieveDeliverOptions): Promise<SieveDeliverResult> {
  const plan = await planSieveDelivery({
    settings: o.settings, user: o.rec.user, home: o.rec.home, envelope: o.envelope, content: o.content,
    mailboxExists: (name) => user.exists(name).catch(() => false),
    ...(o.canRejectInProtocol ? { canRejectInProtocol: true } : {}),
    ...(o.environment ? { environment: o.environment } : {}),
    ...(o.loaded ? { loaded: o.loaded } : {}),
  });
  for (const l of plan.warnings) o.log.warn(`${o.rec.user}: ${l}`);
  for (const l of plan.log) o.log.info(`${o.rec.user}: ${l}`);
  if (plan.protocolReject !== undefined) {
    await plan.commit().catch((e: Error) => o.log.warn(`${o.rec.user}: sieve: duplicate database: ${e.message}`));
    return { stored: [], protocolReject: plan.protocolReject };
  }
  const stored: string[] = [];
  let fallback = false;
  for (const send of plan.sends) {
    if (!o.submit) {
      o.log.warn(`${o.rec.user}: sieve: ${send.kind} to <${send.recipients.join('>, <')}> dropped: no means to send mail`);
      if (send.kind === 'redirect') fallback = true;
      continue;
    }
    try {
      await o.submit(send);
    } catch (e) {
      o.log.error(`${o.rec.user}: sieve: failed to send ${send.kind} to <${send.recipients.join('>, <')}>: ${(e as Error).message}`);
      if (send.kind === 'redirect') fallback = true;
    }
  }
  const implicit = plan.stores.find((s) => s.implicit);
  for (const s of plan.stores) {
    let box = s.implicit ? (o.defaultMailbox ?? 'INBOX') : s.mailbox;
    // fileinto :specialuse (RFC 8579 §4): the mailbox with that special use, when there is one.
    const su = s.specialUse ? o.settings.specialUse[s.specialUse.toLowerCase()] : undefined;
    if (su !== undefined && await user.exists(su).catch(() => false)) box = su;
    const f = splitFlags(s.flags);
    if (!s.implicit && box.toUpperCase() !== 'INBOX' && !(await user.exists(box).catch(() => false))) {
      if (s.create) {
        try { await user.create(box); } catch (e) { if (!(e instanceof MailError && e.code === 'EXISTS')) { o.log.warn(`${o.rec.user}: sieve: failed to create mailbox '${box}': ${(e as Error).message}`); box = ''; } }
      } else {
        o.log.info(`${o.rec.user}: sieve: failed to store into mailbox '${box}': Mailbox doesn't exist: ${box}`);
        box = '';
      }
      if (box === '') { fallback = true; continue; }
    }
    try {
      await user.deliver(box, s.content, { flags: f.flags, keywords: f.keywords, postSession: true });
    } catch (e) {
      if (e instanceof MailError && (e.code === 'PARAMS' || e.code === 'NOTFOUND' || e.code === 'PERM') && !s.implicit && box.toUpperCase() !== 'INBOX') {
        o.log.info(`${o.rec.user}: sieve: failed to store into mailbox '${box}': ${e.message}`);
        fallback = true;
        continue;
      }
      throw e;
    }
    stored.push(box);
  }
  if (fallback && !implicit && !stored.some((b) => b.toUpperCase() === 'INBOX')) {
    await user.deliver('INBOX', o.content, { postSession: true });
    stored.push('INBOX');
  }
  await plan.commit().catch((e: Error) => o.log.warn(`${o.rec.user}: sieve: duplicate database: ${e.message}`));
  return { stored };
}

/** virtual(8)/local(8): Sieve for a Maildir given by path; the home is the Maildir itself unless given (local(8): $HOME). */
export async function deliverToMaildirWithSieve(dir: string, o: Omit<SieveDeliverOptions, 'rec'> & { user: string; home?: string }): Promise<SieveDeliverResult> {
  const maildir = dir.replace(/\/+$/, '');
  const home = o.home ?? maildir;
  const u = await new MaildirStore().forUser({ user: o.user, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, home, mail: `maildir:${maildir}` });
  try {
    return await deliverWithSieve(u, { ...o, rec: { user: o.user, home } });
  } finally {
    await u.close();
  }
}
