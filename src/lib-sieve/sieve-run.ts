/**
 * sieve-run - one delivery's Sieve run, as Pigeonhole's multiscript execution in LDA/LMTP:
 * the sieve_before scripts, the user's script (or sieve_default), the sieve_after scripts, in
 * that order; after a script that cancelled the implicit keep (fileinto, redirect, discard,
 * reject, explicit keep) the next ones are not run. A script that fails at run time (a limit,
 * a conflict, error) has its actions dropped and ends the sequence with the implicit keep; a
 * personal script's errors also go to its .log file for the user.
 *
 *   const plan = await planSieveDelivery({ settings, user, home, envelope, content, ... });
 *   plan.stores   -> mailboxes to store into (with flags, the message as edited)
 *   plan.sends    -> messages to submit through the queue (redirect, vacation, reject, notify)
 *   plan.commit() -> after the delivery succeeded: remember duplicates and vacation replies
 *
 * The plan knows no mailbox store and no queue: lib-storage's deliverWithSieve() carries it
 * out (mail-deliver-sieve.ts), and `postern sieve test` prints it.
 */
import { join } from 'node:path';
import { appendFileSync } from 'node:fs';
import { SieveExec, SieveRuntimeError, normalizeFlags, type SieveRuntime } from './sieve-interp.ts';
import { SieveMessage, type SieveEnvelope } from './sieve-message.ts';
import { SieveResult, type SieveAction } from './sieve-result.ts';
import { loadScripts, type LoadedScripts, type RunnableScript } from './sieve-script.ts';
import type { SieveSettings } from './sieve-settings.ts';
import { SieveDuplicateDb } from './sieve-duplicate.ts';
import { decideVacation } from './sieve-vacation.ts';
import { notifyMessage, redirectMessage, rejectMessage } from './sieve-mime-out.ts';
import { SieveRegexLimit } from './sieve-regex.ts';

export interface SieveStore {
  mailbox: string;
  flags: string[];
  create: boolean;
  specialUse?: string;
  content: Buffer;
  /** The implicit keep (a failure to store elsewhere also falls back to it). */
  implicit: boolean;
}

export interface SieveSend {
  kind: 'redirect' | 'vacation' | 'reject' | 'notify';
  sender: string;
  recipients: string[];
  content: Buffer;
}

export interface SievePlan {
  /** The scripts' actions as decided (sieve-test's "Performed actions"), before execution. */
  actions: SieveAction[];
  /** The implicit keep applies at the end (sieve-test's "Implicit keep"). */
  implicitKeep: boolean;
  stores: SieveStore[];
  sends: SieveSend[];
  /** ereject where the protocol can refuse: the reply text. */
  protocolReject?: string;
  /** What happened, for the mail log (one line each). */
  log: string[];
  /** Problems the administrator should fix (a global script that does not compile or is missing). */
  warnings: string[];
  /** The scripts that ran (paths). */
  ran: string[];
  /** Call once the delivery succeeded: records duplicate marks and vacation replies. */
  commit(): Promise<void>;
}

export interface SieveLogger { info(s: string): void; warn(s: string): void; error(s: string): void }

export interface SieveDeliveryInput {
  settings: SieveSettings;
  user: string;
  home: string;
  envelope: SieveEnvelope;
  content: Buffer;
  mailboxExists(name: string): Promise<boolean>;
  specialUseExists?(mailbox: string | undefined, flags: string[]): Promise<boolean>;
  /** Extra environment items (remote-host, remote-ip). */
  environment?: Record<string, string>;
  now?: Date;
  /** Default: ~/.postern-sieve-dupes. */
  duplicates?: SieveDuplicateDb;
  /** The protocol can refuse the message itself (LMTP: ereject). */
  canRejectInProtocol?: boolean;
  /** Precompiled scripts instead of the configured ones (postern sieve test). */
  scripts?: RunnableScript[];
  /**
   * The configured scripts as the caller already loaded them for this delivery (loadScripts():
   * the check whether Sieve has anything to do), so they are read, and a broken one reported
   * to its .log, once per delivery.
   */
  loaded?: LoadedScripts;
}

function tmpl(s: SieveSettings): { postmaster: string; hostname: string } {
  const hostname = s.hostname || 'localhost';
  return { postmaster: s.postmasterAddress ?? `postmaster@${hostname}`, hostname };
}

export async function planSieveDelivery(input: SieveDeliveryInput): Promise<SievePlan> {
  const s = input.settings;
  const now = input.now ?? new Date();
  const log: string[] = [];
  const ran: string[] = [];
  const dupes = input.duplicates ?? new SieveDuplicateDb(input.home ? join(input.home, '.postern-sieve-dupes') : undefined);
  const loaded = input.scripts ? { scripts: input.scripts, problems: [] } : input.loaded ?? loadScripts(s, input.user, input.home);
  const warnings: string[] = [];
  for (const p of loaded.problems) {
    (p.phase === 'personal' ? log : warnings).push(`sieve: ${p.phase} script ${p.path}: ${p.message.split('\n').slice(0, 3).join(' ')}`);
  }
  const msg = new SieveMessage(input.content);
  const { postmaster, hostname } = tmpl(s);
  const actions: SieveAction[] = [];
  let keep = true;
  let lastFlags: string[] = [];
  const marks: { key: string; seconds: number; refresh: boolean }[] = [];
  for (const sc of loaded.scripts) {
    const result = new SieveResult({ maxActions: s.maxActions, maxRedirects: s.maxRedirects });
    const rt: SieveRuntime = {
      message: msg,
      envelope: input.envelope,
      now,
      limits: { maxActions: s.maxActions, maxRedirects: s.maxRedirects },
      recipientDelimiter: s.recipientDelimiter,
      vacation: { minPeriod: s.vacationMinPeriod, maxPeriod: s.vacationMaxPeriod, defaultPeriod: s.vacationDefaultPeriod },
      environment: {
        domain: hostname.replace(/^[^.]*\./, ''), host: hostname, location: 'MDA', name: 'Pigeonhole Sieve', phase: 'during',
        version: '0.5.19', ...input.environment,
      },
      mailboxExists: input.mailboxExists,
      specialUseExists: input.specialUseExists ?? (async (mailbox, flags) => {
        for (const f of flags) {
          const box = s.specialUse[f.toLowerCase()];
          if (box === undefined || (mailbox !== undefined && box !== mailbox) || !(await input.mailboxExists(box))) return false;
        }
        return true;
      }),
      duplicateSeen: (id) => dupes.seen(`duplicate\0${id}`),
      includes: sc.includes,
      spamtest: testSettings(s.spamtest),
      virustest: testSettings(s.virustest),
    };
    const x = new SieveExec(rt, result);
    // Pigeonhole keeps the imap4flags internal variable from one script of the sequence to the next.
    x.flags = [...lastFlags];
    const version = msg.version;
    const savedFields = msg.fields;
    try {
      await x.run(sc.script);
    } catch (e) {
      if (!(e instanceof SieveRuntimeError) && !(e instanceof SieveRegexLimit)) throw e;
      msg.fields = savedFields;
      msg.version = version;
      const line = `${sc.path}: runtime error: ${e.message}; executed implicit keep`;
      log.push(`sieve: ${line}`);
      if (sc.logPath) { try { appendFileSync(sc.logPath, `${line}\n`); } catch { /* read-only */ } }
      keep = true;
      lastFlags = [];
      break;
    }
    ran.push(sc.path);
    actions.push(...result.actions);
    for (const d of x.duplicateMarks) {
      const secs = Math.min(d.seconds || s.duplicateDefaultPeriod, s.duplicateMaxPeriod);
      marks.push({ key: `duplicate\0${d.id}`, seconds: secs, refresh: d.last });
    }
    lastFlags = x.flags;
    keep = result.keep;
    if (!keep) break;
  }
  const plan: SievePlan = { actions, implicitKeep: keep, stores: [], sends: [], log, warnings, ran, commit: async () => {} };
  const env = input.envelope;
  // Executing actions in script order, as Pigeonhole does (its action execution order).
  for (const a of actions) {
    switch (a.type) {
      case 'store':
        plan.stores.push({
          mailbox: a.mailbox, flags: normalizeFlags(a.flags), create: a.create, ...(a.specialUse ? { specialUse: a.specialUse } : {}),
          content: msg.content(a.fields), implicit: false,
        });
        break;
      case 'discard':
        log.push('sieve: marked message to be discarded if not explicitly delivered (discard action)');
        break;
      case 'redirect': {
        const msgid = msg.header('message-id')[0] ?? '';
        const dupKey = `redirect\0${msgid}-${env.origTo ?? env.to}-${a.address}-${msg.header('resent-message-id')[0] ?? msg.header('resent-from')[0] ?? ''}-${msg.header('list-id')[0] ?? ''}`;
        if (await dupes.seen(dupKey)) {
          log.push(`sieve: discarded duplicate forward to <${a.address}>`);
          keep = true;
          break;
        }
        if (msg.header('x-sieve-redirected-from').some((h) => h.trim().toLowerCase() === env.to.toLowerCase())) {
          log.push(`sieve: not forwarding message to <${a.address}>: the \`x-sieve-redirected-from' header indicates a mail loop`);
          keep = true;
          break;
        }
        const sender = redirectSender(s, env, postmaster);
        plan.sends.push({ kind: 'redirect', sender, recipients: [a.address], content: redirectMessage(msg.content(a.fields), env.to) });
        marks.push({ key: dupKey, seconds: s.duplicateDefaultPeriod, refresh: true });
        log.push(`sieve: forwarded to <${a.address}>`);
        break;
      }
      case 'reject': {
        if (a.ereject && input.canRejectInProtocol) {
          plan.protocolReject = a.reason.replace(/\s+/g, ' ').trim();
          log.push('sieve: rejected message at protocol level (ereject)');
          break;
        }
        if (env.from === '') { log.push('sieve: discarded reject to <>'); break; }
        plan.sends.push({
          kind: 'reject', sender: '', recipients: [env.from],
          content: rejectMessage(msg, { sender: env.from, recipient: env.to, ...(env.origTo && env.origTo !== env.to ? { origRecipient: env.origTo } : {}), reason: a.reason, postmaster, hostname, now }),
        });
        log.push(`sieve: rejected message from <${env.from}> (reject)`);
        break;
      }
      case 'vacation': {
        const d = await decideVacation(a, msg, env, {
          sendFromRecipient: s.vacationSendFromRecipient, dontCheckRecipient: s.vacationDontCheckRecipient,
          useOriginalRecipient: s.vacationUseOriginalRecipient, postmaster, hostname,
          ...(s.vacationDefaultSubject !== undefined ? { defaultSubject: s.vacationDefaultSubject } : {}),
          ...(s.vacationDefaultSubjectTemplate !== undefined ? { defaultSubjectTemplate: s.vacationDefaultSubjectTemplate } : {}),
          ...(s.userEmail !== undefined ? { userEmail: s.userEmail } : {}),
        }, (k) => dupes.seen(k), now);
        if (!d.send) { log.push(`sieve: ${d.log}`); break; }
        plan.sends.push({ kind: 'vacation', sender: d.smtpFrom, recipients: [d.to], content: d.content });
        if (a.seconds > 0) marks.push({ key: d.dupKey, seconds: a.seconds, refresh: true });
        log.push(`sieve: sent vacation response to <${d.to}>`);
        break;
      }
      case 'notify': {
        const n = notifyMessage(msg, a, { user: env.to, postmaster, hostname, now, nullSender: env.from === '' });
        if (n.to.length === 0) break;
        plan.sends.push({ kind: 'notify', sender: n.sender, recipients: n.to, content: n.content });
        log.push(`sieve: sent mail notification to <${n.to.join('>, <')}>`);
        break;
      }
    }
  }
  if (keep) {
    plan.stores.push({ mailbox: 'INBOX', flags: normalizeFlags(lastFlags), create: false, content: msg.content(), implicit: true });
  }
  plan.commit = async () => {
    for (const m of marks) await dupes.mark(m.key, m.seconds, m.refresh);
    await dupes.flush();
  };
  return plan;
}

function testSettings(m: Record<string, string>): SieveRuntime['spamtest'] {
  if (!m['status_header']) return undefined;
  const textValues: Record<number, string> = {};
  for (let i = 0; i <= 10; i++) { const v = m[`text_value${i}`]; if (v !== undefined) textValues[i] = v; }
  const maxValue = m['max_value'] !== undefined ? Number.parseFloat(m['max_value']) : undefined;
  return {
    statusHeader: m['status_header'], statusType: m['status_type'] ?? 'score', textValues,
    ...(maxValue !== undefined && !Number.isNaN(maxValue) ? { maxValue } : {}),
    ...(m['max_header'] ? { maxHeader: m['max_header'] } : {}),
  };
}

/** sieve_redirect_envelope_from; the null sender always stays null (RFC 5228 §4.2). */
function redirectSender(s: SieveSettings, env: SieveEnvelope, postmaster: string): string {
  if (env.from === '') return '';
  const v = s.redirectEnvelopeFrom.trim().toLowerCase();
  if (v === 'sender' || v === '') return env.from;
  if (v === 'recipient') return env.to;
  if (v === 'orig_recipient') return env.origTo ?? env.to;
  if (v === 'user_email') return env.to;
  if (v === 'postmaster') return postmaster;
  const m = /^<(.*)>$/.exec(s.redirectEnvelopeFrom.trim());
  return m ? m[1]! : env.from;
}

export { SieveRuntimeError };
