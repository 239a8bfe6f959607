/**
 * cleanup-dkim-sign - DKIM signing in cleanup(8), after every rewrite (header address rewriting,
 * the added From:/Date:/Message-Id:, header_checks): what a Postfix site gets from OpenDKIM as
 * smtpd_milters on submission plus non_smtpd_milters, with no milter.
 *
 * SUMMARY
 *   const d = await CleanupDkimSign.open(config, origin, queueId, forwardingDomain);   // undefined: neither
 *   d.emit(bytes, write) ...; await d.finish(write);
 *
 * DESCRIPTION
 *   Which mail: a message of our own users (CleanupOpenOptions.origin: SASL-authenticated,
 *   $mynetworks, sendmail/pickup, qmqpd, bounces) whose header From: domain has a key in the
 *   signing table (lib-authres/dkim-sign-table.ts), with postern_dkim_signing = yes. Mail from
 *   outside and forwards are not signed.
 *
 *   The signature goes on top of the message, and the queue file's content is one stream:
 *   cleanup holds the header section until it ends (at most 1 MiB); when the From: domain has
 *   no key the content streams on as before; when it has one, the message is held in memory
 *   (bounded by message_size_limit) and written, signatures first, at the end.
 *
 *   8-bit content: a message with 8-bit bytes is converted to 7bit (quoted-printable, the
 *   conversion of lib-mail/mail-mime-downgrade.ts) before it is signed. Postern's smtp(8) makes
 *   that same conversion for a server without 8BITMIME, and a second pass changes nothing, so
 *   what is signed is what every receiver gets (an 8BITMIME downgrade after signing breaks the
 *   body hash; Postfix leaves that to the administrator's disable_mime_output_conversion).
 *
 *   ARC sealing (RFC 8617; lib-authres/arc-seal.ts), the other half: a message from outside
 *   (no origin) that a virtual alias sends on to a remote domain (forwardingDomain(): the domain
 *   of the address it was sent to, when a recipient it expanded to resolves to relay or default)
 *   gets an ARC set signed with the RSA key of that domain (ARC verifiers know rsa-sha256 only,
 *   RFC 8617 §4.1.3 names no other), with postern_arc_sealing = yes. Content is not converted.
 *   Such a message is held in memory only up to SEAL_SIZE_LIMIT (4 MiB; a larger one goes on
 *   unsealed): it comes from strangers.
 *
 * DIAGNOSTICS
 *   `QID: DKIM-Signature field added (s=SELECTOR, d=DOMAIN)` as OpenDKIM logs it;
 *   `QID: ARC-Seal field added (i=N, s=SELECTOR, d=DOMAIN)` as OpenARC does. A key that
 *   cannot be used, a table that fails, a signing error: a warning naming the file or table,
 *   and the message goes on unsigned; never lost, never delayed.
 *
 * PARAMETERS
 *   postern_dkim_signing, postern_arc_sealing, postern_dkim_signed_headers, postern_dkim_oversigned_headers, and those
 *   of lib-authres/dkim-sign-table.ts
 */
import type { MainConfig } from '../global/mail-conf.ts';
import type { SubmissionOrigin } from '../global/cleanup-client.ts';
import { logger } from '../util/msg.ts';
import { dkimSigningTable, type DkimSigningTable } from '../lib-authres/dkim-sign-table.ts';
import { dkimSignatures, headerFromDomain, type DkimSignParams, type DkimSigningKey } from '../lib-authres/dkim-sign.ts';
import { downgradeTo7bit, hasEightBit } from '../lib-mail/mail-mime-downgrade.ts';
import { arcSeal } from '../lib-authres/arc-seal.ts';

const log = logger('cleanup');
const LF = 0x0a;
/** The most of a header section held before deciding whether to sign. */
const HOLD_HEADERS = 1024 * 1024;
/** The largest forwarded message from outside held in memory to be ARC-sealed. */
export const SEAL_SIZE_LIMIT = 4 * 1024 * 1024;

type Write = (b: Buffer) => Promise<void>;

export class CleanupDkimSign {
  private readonly table: DkimSigningTable;
  private readonly params: DkimSignParams;
  private readonly queueId: string;
  private chunks: Buffer[] = [];
  private size = 0;
  private state: 'head' | 'sign' | 'seal' | 'pass' = 'head';
  private lastByte = LF;
  private keys: DkimSigningKey[] = [];
  /** ARC mode (mail from outside): the forwarding domain, if the message is forwarded. */
  private readonly forwardingDomain: (() => Promise<string | undefined>) | undefined;
  private readonly authservId: string;

  private constructor(table: DkimSigningTable, params: DkimSignParams, queueId: string, authservId: string, forwardingDomain?: () => Promise<string | undefined>) {
    this.table = table;
    this.params = params;
    this.queueId = queueId;
    this.authservId = authservId;
    this.forwardingDomain = forwardingDomain;
  }

  /**
   * The signer of one message: DKIM for our users' mail (origin set), ARC sealing for mail
   * from outside that may be forwarded (forwardingDomain answers once the header section is
   * complete); undefined when neither applies.
   */
  static async open(config: MainConfig | undefined, origin: SubmissionOrigin | undefined, queueId: string,
    forwardingDomain?: () => Promise<string | undefined>): Promise<CleanupDkimSign | undefined> {
    if (!config) return undefined;
    const sign = !!origin && config.bool('postern_dkim_signing');
    const seal = !origin && !!forwardingDomain && config.bool('postern_arc_sealing');
    if (!sign && !seal) return undefined;
    let table: DkimSigningTable;
    try {
      table = await dkimSigningTable(config);
    } catch (e) {
      log.warn(`${queueId}: DKIM signing is off for this message: ${(e as Error).message}`);
      return undefined;
    }
    return new CleanupDkimSign(table, {
      signedHeaders: config.list('postern_dkim_signed_headers'),
      overSigned: config.list('postern_dkim_oversigned_headers'),
    }, queueId, config.get('myhostname'), sign ? undefined : forwardingDomain);
  }

  /** Content as cleanup writes it: held while the header section lasts and, if signing, to the end. */
  async emit(b: Buffer, write: Write): Promise<void> {
    if (this.state === 'pass') return write(b);
    if (b.length === 0) return;
    const ended = this.state === 'head' && (b[0] === LF && this.lastByte === LF || b.indexOf('\n\n') >= 0);
    this.chunks.push(b);
    this.size += b.length;
    this.lastByte = b[b.length - 1]!;
    // A header section that never ends (hostile) is not held past HOLD_HEADERS: decide on what
    // came so far (From: comes early).
    if (ended || (this.state === 'head' && this.size > HOLD_HEADERS)) await this.decide(write);
    else if (this.state === 'seal' && this.size > SEAL_SIZE_LIMIT) {
      // Forwarded mail from outside is held for sealing up to SEAL_SIZE_LIMIT, not to
      // message_size_limit: strangers must not make us hold large messages in memory.
      log.info(`${this.queueId}: not ARC-sealed: larger than ${SEAL_SIZE_LIMIT} bytes`);
      this.state = 'pass';
      await write(this.take());
    }
  }

  /** Called once the content is complete: writes what is held, signed when it is to be. */
  async finish(write: Write, authResults?: string): Promise<void> {
    if (this.state === 'head') await this.decide(write);
    if (this.state === 'seal') return this.seal(write, authResults);
    if (this.state !== 'sign') return;
    let content = this.take();
    try {
      // Sign what every receiver gets (see the top): the same conversion smtp(8) would make.
      if (hasEightBit(content)) content = downgradeTo7bit(content);
      const fields = await dkimSignatures(content, this.keys, this.params);
      await write(Buffer.from(fields, 'latin1'));
      for (const k of this.keys) log.info(`${this.queueId}: DKIM-Signature field added (s=${k.selector}, d=${k.domain})`);
    } catch (e) {
      log.warn(`${this.queueId}: DKIM signing failed, message sent unsigned: ${(e as Error).message}`);
    }
    await write(content);
  }

  private take(): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    this.size = 0;
    return all;
  }

  /**
   * ARC: one set with the forwarding domain's RSA key, then the content unchanged.
   * `authResults`: the Authentication-Results field cleanup's inbound checks made for this
   * message (it goes on top at delivery, ATTR.PREPEND_HEADERS), the ARC-Authentication-Results.
   */
  private async seal(write: Write, authResults?: string): Promise<void> {
    const content = this.take();
    const k = this.keys[0]!;
    try {
      const r = await arcSeal(content, k, { authservId: this.authservId, authResults });
      if ('fields' in r) {
        await write(Buffer.from(r.fields, 'latin1'));
        const i = /^ARC-Seal: i=(\d+)/.exec(r.fields)?.[1];
        log.info(`${this.queueId}: ARC-Seal field added (i=${i}, s=${k.selector}, d=${k.domain})`);
      } else {
        log.info(`${this.queueId}: not ARC-sealed: ${r.skip}`);
      }
    } catch (e) {
      log.warn(`${this.queueId}: ARC sealing failed, message forwarded without an ARC set: ${(e as Error).message}`);
    }
    await write(content);
  }

  /** The header section is complete: find the keys of its From: domain (or, forwarding, ARC's). */
  private async decide(write: Write): Promise<void> {
    const held = this.take();
    this.chunks = [held];
    this.size = held.length;
    if (this.forwardingDomain) {
      const fwd = await this.forwardingDomain().catch(() => undefined);
      if (fwd) {
        const found = await this.table.keysFor(fwd);
        for (const w of found.warnings) log.warn(`${this.queueId}: ${w}; the message is forwarded without an ARC set`);
        this.keys = found.keys.filter((k) => k.key.asymmetricKeyType === 'rsa').slice(0, 1);
      }
      if (this.keys.length > 0) { this.state = 'seal'; return; }
      this.state = 'pass';
      await write(this.take());
      return;
    }
    const domain = headerFromDomain(held);
    if (domain) {
      const found = await this.table.keysFor(domain);
      for (const w of found.warnings) log.warn(`${this.queueId}: ${w}; the message is sent without this signature`);
      this.keys = found.keys;
    }
    if (this.keys.length > 0) { this.state = 'sign'; return; }
    this.state = 'pass';
    await write(this.take());
  }
}
