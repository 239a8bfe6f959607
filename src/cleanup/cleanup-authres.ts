/**
 * cleanup-authres - cleanup(8)'s part of inbound verification (docs/authres.md): the message
 * from an SMTP client outside goes through lib-authres's verifier as it arrives; at the end the
 * verdict either refuses the message (DMARC p=reject: 550 5.7.1, or 451 4.7.5 for a DNS failure
 * when postern_authres_temperror_action = defer) or adds one Authentication-Results header at
 * the top of the message (queue file ATTR.PREPEND_HEADERS: it is known only after the content
 * is written). Incoming Authentication-Results headers that claim our authserv-id are removed
 * (RFC 8601 §5) for every SMTP client. A service with receive_override_options = no_milters
 * (the re-injection smtpd behind a content filter) does neither: its mail was verified on the
 * way in, and its Authentication-Results header is ours.
 *
 * Log lines, as Postfix's milter actions: `QID: reject: END-OF-MESSAGE from host[addr]: 5.7.1
 * rejected by DMARC policy for example.com; from=<a> to=<b> proto=ESMTP helo=<h>`, and
 * `QID: authres: dkim=pass spf=pass dmarc=fail action=quarantine`.
 *
 * Each DMARC evaluation is also recorded for the aggregate reports (lib-authres/dmarc-record.ts)
 * when postern_dmarc_reporting = yes.
 */
import { ATTR } from '../global/rec-type.ts';
import type { CleanupOpenOptions, CleanupReject, CleanupSettings } from '../global/cleanup-client.ts';
import { authresSettings } from '../lib-authres/authres-settings.ts';
import { AuthresVerifier, type AuthresVerdict } from '../lib-authres/authres-verify.ts';
import { claimsAuthservId } from '../lib-authres/authres-header.ts';
import { recordDmarcEvaluation } from '../lib-authres/dmarc-record.ts';
import type { MainConfig } from '../global/mail-conf.ts';
import { logger } from '../util/msg.ts';

const log = logger('cleanup');

export interface AuthresLogContext { client: string; sender: string; recipient?: string; proto?: string; helo?: string }

export class CleanupAuthres {
  private readonly id: string;
  private readonly verifier: AuthresVerifier | undefined;
  private readonly queueId: string;
  /** For the DMARC report records (lib-authres/dmarc-record.ts). */
  private readonly config: MainConfig | undefined;
  private readonly ip: string;

  private constructor(id: string, queueId: string, verifier: AuthresVerifier | undefined, config?: MainConfig, ip = '') {
    this.id = id; this.queueId = queueId; this.verifier = verifier; this.config = config; this.ip = ip;
  }

  /** undefined: nothing to do for this submission. */
  static start(settings: CleanupSettings, opts: CleanupOpenOptions, queueId: string): CleanupAuthres | undefined {
    if (!opts.inbound) return undefined;
    let s;
    try {
      s = opts.inbound === 'verify' && settings.config ? authresSettings(settings.config) : undefined;
    } catch (e) {
      // A bad postern_* value (an unreadable postern_public_suffix_list...): said loudly, and the
      // mail still flows, unverified.
      log.warn(`${queueId}: inbound verification off: ${(e as Error).message}`);
    }
    const a = opts.attrs;
    const verifier = s ? new AuthresVerifier(s, { ip: a[ATTR.CLIENT_ADDR] ?? '', helo: a[ATTR.HELO_NAME] ?? '', sender: opts.sender, queueId }) : undefined;
    return new CleanupAuthres(s?.authservId ?? settings.myhostname, queueId, verifier, settings.config, a[ATTR.CLIENT_ADDR] ?? '');
  }

  /** The content as received, before cleanup changes anything. */
  write(chunk: Buffer): Promise<void> { return this.verifier ? this.verifier.write(chunk) : Promise.resolve(); }

  /** A primary header to drop: an Authentication-Results claiming our authserv-id. */
  drops(h: Buffer, lname: string): boolean {
    if (lname !== 'authentication-results') return false;
    if (!claimsAuthservId(h.toString('latin1'), this.id)) return false;
    log.info(`${this.queueId}: removed Authentication-Results header claiming ${this.id} (RFC 8601 section 5)`);
    return true;
  }

  /** The verdict: a refusal, or the header to add (undefined when not verifying). */
  async finish(ctx: AuthresLogContext): Promise<{ reject: CleanupReject } | { header: string } | undefined> {
    if (!this.verifier) return undefined;
    let v: AuthresVerdict;
    try {
      v = await this.verifier.end();
    } catch (e) {
      // A library failure never loses mail: accept without a header, say why.
      log.warn(`${this.queueId}: authentication checks failed: ${(e as Error).message}`);
      return undefined;
    }
    const summary = [v.dkim.map((d) => d.split(' ')[0]).join(' '), `spf=${v.spf}`, v.dmarc ? `dmarc=${v.dmarc.result}` : '', v.arc.split(' ')[0]].filter(Boolean).join(' ');
    log.info(`${this.queueId}: authres: ${summary} action=${v.action}`);
    if (this.config) recordDmarcEvaluation(this.config, v, this.ip);
    if (v.reply) {
      log.info(`${this.queueId}: ${v.action === 'reject' ? 'reject' : 'defer'}: END-OF-MESSAGE from ${ctx.client}: ${v.reply.enh} ${v.reply.text}; from=<${ctx.sender}>${ctx.recipient ? ` to=<${ctx.recipient}>` : ''}${ctx.proto ? ` proto=${ctx.proto}` : ''}${ctx.helo ? ` helo=<${ctx.helo}>` : ''}`);
      return { reject: v.reply };
    }
    return { header: v.header };
  }

  abort(): void { this.verifier?.abort(); }
}
