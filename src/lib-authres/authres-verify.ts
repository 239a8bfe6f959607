/**
 * authres-verify - inbound verification of one message from outside: SPF (RFC 7208) of the
 * MAIL FROM and of the HELO identity, DKIM (RFC 6376, RFC 8463) of every signature, ARC chain
 * validation (RFC 8617), DMARC (RFC 7489, dmarc-eval.ts), summed up in one
 * Authentication-Results header (RFC 8601) and a policy verdict. cleanup(8) runs one per
 * message from outside; smtpd answers from its verdict.
 *
 * SUMMARY
 *   const v = new AuthresVerifier(settings, { ip, helo, sender });   // SPF starts at once
 *   await v.write(chunk); ...                                          // the message, as received
 *   const r = await v.end();   // { header, action: accept|quarantine|reject|defer, reply? }
 *
 * DESCRIPTION
 *   The cryptography and the RFC logic of SPF, DKIM and ARC are the `mailauth` library's,
 *   asked through Postern's resolver (authres-dns.ts: postern_dns_servers, cache, deadline).
 *   The content streams through as it arrives (DKIM body hashes are computed on the way), so
 *   end() only waits for the key and policy lookups. The whole verification is bounded by
 *   postern_authres_timeout: past it every DNS question fails at once as a temporary error, so
 *   a DNS server that never answers gives temperror results, never a stalled session.
 *
 *   SPF: the MAIL FROM identity (for the null sender, postmaster@HELO: RFC 7208 §2.4) and,
 *   separately, the HELO identity (RFC 7208 §2.3), each its own `spf=` resinfo
 *   (smtp.mailfrom, smtp.helo). DKIM: keys under postern_dkim_min_key_bits (default 1024,
 *   RFC 8301 §3.2) fail, x= expiry and l= are checked by mailauth (an l= past the body fails the
 *   body hash; a signature with l= that passes is reported, and cannot make DMARC pass alone
 *   unless it aligns: the A-R says so).
 *
 *   Policy (verdictFor): DMARC fail with disposition reject → reject (550 5.7.1 "rejected by
 *   DMARC policy for <domain>", as OpenDMARC words it) when postern_dmarc_reject = yes, else
 *   quarantine when postern_dmarc_quarantine = yes; disposition quarantine → quarantine (the
 *   header's policy.dmarc=quarantine sends it to Junk at delivery). A temperror never rejects:
 *   accept, or 451 4.7.5 when postern_authres_temperror_action = defer.
 *
 * SECURITY
 *   Everything here is attacker-controlled input (headers, signatures, DNS answers); memory is
 *   bounded by the header block the library keeps (cleanup refuses nothing for it: a header
 *   block over postern_authres_header_limit is not verified, dkim=permerror) and time by the
 *   deadline.
 *
 * STANDARDS
 *   RFC 7208, RFC 6376, RFC 8301, RFC 8463, RFC 8617, RFC 7489, RFC 8601, RFC 7372 (5.7.x codes)
 */
import { PassThrough } from 'node:stream';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { dkimVerify, spf as spfCheck, arc as arcCheck, type DNSResolver } from 'mailauth';
import type { AuthresDns, MailauthResolver } from './authres-dns.ts';
import { formatAuthres } from './authres-header.ts';
import { memoSpf } from './spf-check.ts';
import { evaluateDmarc, dmarcResinfo, type DmarcOutcome } from './dmarc-eval.ts';
import type { PublicSuffixList } from './dmarc-psl.ts';
import { logger } from '../util/msg.ts';

const log = logger('authres');

export interface AuthresSettings {
  /** RFC 8601 authserv-id: myhostname. */
  authservId: string;
  dns: AuthresDns;
  psl: PublicSuffixList;
  timeoutMs: number;
  minKeyBits: number;
  /** Header block bigger than this: DKIM/ARC not attempted (permerror). */
  headerLimit: number;
  dmarcReject: boolean;
  dmarcQuarantine: boolean;
  temperrorAction: 'accept' | 'defer';
  /** pct sampling; tests pass a constant. */
  random?: () => number;
}

/** What smtpd knows of the client, as it passed it to cleanup (queue file attributes). */
export interface AuthresFacts { ip: string; helo: string; sender: string; queueId?: string }

export type AuthresAction = 'accept' | 'quarantine' | 'reject' | 'defer';

export interface AuthresVerdict {
  /** The whole header, LF line endings, ending in LF. */
  header: string;
  action: AuthresAction;
  /** For reject/defer: the SMTP reply. */
  reply?: { code: number; enh: string; text: string };
  spf: string;
  heloSpf: string;
  dkim: string[];
  arc: string;
  dmarc?: DmarcOutcome;
  /** Each DKIM signature's domain, selector and result (for DMARC reports, dmarc-record.ts). */
  dkimResults: { domain: string; selector?: string; result: string }[];
  /** The SPF identity checked (the MAIL FROM domain, or the HELO name for the null sender). */
  spfIdentity: { domain: string; scope: 'mfrom' | 'helo' };
}

interface SpfOut { result: string; domain?: string; info: string }

type DkimResult = Awaited<ReturnType<typeof dkimVerify>>;
type DkimOutcome = { ok: true; r: DkimResult } | { ok: false; why: string };

interface ParsedAddress { address?: string; group?: ParsedAddress[] }
/** nodemailer's address parser, the one mailauth reads From: with (same results either way). */
const addressparser = createRequire(import.meta.url)('nodemailer/lib/addressparser') as (s: string) => ParsedAddress[];

/** The addresses of every From: field of a header block (groups' members included, RFC 6854). */
export function fromAddresses(head: Buffer): string[] {
  const out: string[] = [];
  const unfolded = head.toString('utf8').replace(/\r?\n(?=[ \t])/g, '');
  for (const line of unfolded.split(/\r?\n/)) {
    const m = /^from[ \t]*:(.*)$/i.exec(line);
    if (!m) continue;
    for (const a of addressparser(m[1]!.trim())) {
      for (const mb of a.group ?? [a]) if (mb.address) out.push(mb.address);
    }
  }
  return out;
}

/** Header fields that need the body: DKIM signatures and ARC sets. */
const SIGNATURE_HEADER = /(?:^|\n)(?:dkim-signature|arc-seal|arc-message-signature|arc-authentication-results)[ \t]*:/i;
const CARRY = 64;

function escComment(s: string): string { return s.replace(/[()\\]/g, ''); }

export class AuthresVerifier {
  private readonly s: AuthresSettings;
  private readonly f: AuthresFacts;
  /** To the DKIM verifier; made once the header block shows a signature (startDkim()). */
  private stream: PassThrough | undefined;
  private readonly resolver: MailauthResolver;
  private deadline: number;
  private readonly spfP: Promise<SpfOut>;
  private readonly heloP: Promise<SpfOut | undefined>;
  private dkimP: Promise<DkimOutcome> | undefined;
  /** The header block so far, until it is known whether it has a signature. */
  private headChunks: Buffer[] = [];
  /** No signature: the From: addresses, read here (the library is not needed). */
  private unsignedFrom: string[] | undefined;
  private settled = false;
  private headerBytes = 0;
  private inHeader = true;
  /** The end of the header text seen so far (a name or an empty line may span two chunks). */
  private carry = '';
  private overLimit = false;
  /** A DKIM-Signature or ARC header was seen in the header block. */
  private signed = false;

  constructor(settings: AuthresSettings, facts: AuthresFacts) {
    this.s = settings;
    this.f = facts;
    this.deadline = Date.now() + settings.timeoutMs;
    const base = settings.dns;
    // The deadline is read at each question: end() moves it (the content may take long to arrive).
    this.resolver = (name, type) => base.withDeadline(this.deadline)(name, type);
    const helo = facts.helo;
    this.spfP = this.runSpf(facts.sender, helo).catch((e) => ({ result: 'temperror', info: `spf=temperror (${escComment((e as Error).message)}) smtp.mailfrom=${facts.sender || `postmaster@${helo}`}` }));
    this.heloP = facts.sender && helo && !/^\[|^[\d.]+$|:/.test(helo)
      ? this.runSpf('', helo).then((r) => ({ ...r, info: r.info.replace(/ smtp\.mailfrom=\S+/, '').replace(/ smtp\.helo=\S+/, '') + ` smtp.helo=${helo}` }))
        .catch(() => ({ result: 'temperror', info: `spf=temperror smtp.helo=${helo}` }))
      : Promise.resolve(undefined);
    this.spfP.catch(() => {}); this.heloP.catch(() => {});
  }

  private async runSpf(sender: string, helo: string): Promise<SpfOut> {
    const r = await memoSpf(`${this.s.dns.serversKey}|${this.s.authservId}|${this.f.ip}|${helo}|${sender}`,
      () => spfCheck({ sender, ip: this.f.ip, helo: helo || undefined, mta: this.s.authservId, resolver: this.resolver, maxElapsedTime: this.s.timeoutMs } as Parameters<typeof spfCheck>[0]));
    return { result: r.status.result, domain: (r as unknown as { domain?: string }).domain, info: r.info };
  }

  /** The DKIM (and ARC) verifier of mailauth, fed the message from here on. */
  private startDkim(): PassThrough {
    const stream = new PassThrough({ highWaterMark: 256 * 1024 });
    this.stream = stream;
    this.dkimP = dkimVerify(stream, { resolver: this.resolver as DNSResolver, sender: this.f.sender || undefined, minBitLength: this.s.minKeyBits })
      .then((r) => ({ ok: true as const, r }), (e: Error) => ({ ok: false as const, why: e.message }))
      .finally(() => { this.settled = true; stream.resume(); });
    for (const c of this.headChunks.splice(0)) stream.write(c);
    return stream;
  }

  /**
   * The message as received (LF line endings, the Received: header of smtpd first). The header
   * block is held until it is known whether it has a DKIM-Signature or ARC header: without one
   * there is nothing for the DKIM verifier to do (no body hash), and only the From: addresses
   * are read, here; with one, everything streams to the verifier.
   */
  async write(chunk: Buffer): Promise<void> {
    if (this.settled || this.overLimit || this.unsignedFrom) return;
    if (this.inHeader) {
      // Find the end of the header block (an empty line), count its size, look for signatures.
      const text = this.carry + chunk.toString('latin1');
      const m = /\n\r?\n/.exec(text);
      if (SIGNATURE_HEADER.test(m ? text.slice(0, m.index) : text)) this.signed = true;
      if (m) {
        this.inHeader = false;
        const inChunk = Math.max(0, m.index + m[0].length - this.carry.length);
        this.headerBytes += inChunk;
        if (!this.signed) {
          this.headChunks.push(chunk.subarray(0, inChunk));
          this.unsignedFrom = fromAddresses(Buffer.concat(this.headChunks));
          this.headChunks = [];
          return;
        }
      } else {
        this.headerBytes += chunk.length;
        this.carry = text.slice(-CARRY);
        if (this.headerBytes > this.s.headerLimit) {
          this.overLimit = true;
          this.headChunks = [];
          log.info(`${this.f.queueId ?? 'NOQUEUE'}: header block over ${this.s.headerLimit} bytes: DKIM and ARC not verified`);
          this.stream?.destroy();
          return;
        }
        if (!this.signed) { this.headChunks.push(chunk); return; }
      }
    }
    const stream = this.stream ?? this.startDkim();
    if (!stream.write(chunk)) await Promise.race([once(stream, 'drain'), this.dkimP]);
  }

  async end(): Promise<AuthresVerdict> {
    this.deadline = Math.max(this.deadline, Date.now() + this.s.timeoutMs);
    if (!this.overLimit && !this.unsignedFrom) {
      if (this.signed) (this.stream ?? this.startDkim()).end();
      else this.unsignedFrom = fromAddresses(Buffer.concat(this.headChunks.splice(0)));   // all header, no body
    }
    const hard = this.deadline + 1000;
    const timeout = <T>(p: Promise<T>, fallback: T): Promise<T> => {
      let t: NodeJS.Timeout | undefined;
      return Promise.race([p, new Promise<T>((r) => { t = setTimeout(() => r(fallback), Math.max(0, hard - Date.now())); })]).finally(() => clearTimeout(t));
    };
    const spf = await timeout(this.spfP, { result: 'temperror', info: `spf=temperror (timeout) smtp.mailfrom=${this.f.sender || `postmaster@${this.f.helo}`}` });
    const helo = await timeout(this.heloP, undefined);
    const dk: DkimOutcome = this.overLimit ? { ok: false, why: 'header block too large' }
      : this.unsignedFrom ? { ok: true, r: { results: [], headerFrom: this.unsignedFrom } as unknown as DkimResult }
        : await timeout(this.dkimP!, { ok: false as const, why: 'timeout' });
    const dkimInfo: string[] = [];
    const dkimPass: string[] = [];
    const dkimResults: AuthresVerdict['dkimResults'] = [];
    let headerFrom: string[] = [];
    let arcInfo = 'arc=none';
    if (dk.ok) {
      // mailauth's lenient mode leaves out signatures it cannot process at all (no d= or s=,
      // an unknown algorithm or canonicalization); RFC 6376 §6.1.1 makes each a PERMFAIL, so
      // each gets its own dkim=permerror here.
      const parsed = (dk.r as unknown as { headers?: { parsed?: { key: string }[] } }).headers?.parsed ?? [];
      const signatures = parsed.filter((h) => h.key === 'dkim-signature').length;
      const rows = (dk.r.results ?? []).filter((row) => !(signatures > 0 && row.status.result === 'none'));
      for (const row of rows) {
        dkimInfo.push(row.info);
        if (row.status.result === 'pass' && row.signingDomain) dkimPass.push(row.signingDomain);
        if (row.signingDomain) dkimResults.push({ domain: row.signingDomain, selector: (row as { selector?: string }).selector, result: row.status.result });
      }
      for (let i = rows.length; i < signatures; i++) dkimInfo.push('dkim=permerror (signature syntax error: unusable tags, algorithm or canonicalization)');
      if (dkimInfo.length === 0) dkimInfo.push('dkim=none (message not signed)');
      headerFrom = dk.r.headerFrom ?? [];
      const chain = (dk.r as unknown as { arc?: unknown }).arc;
      if (chain) {
        const a = await timeout(arcCheck(chain as Parameters<typeof arcCheck>[0], { resolver: this.resolver, minBitLength: this.s.minKeyBits } as Parameters<typeof arcCheck>[1])
          .then((r) => (r as { info?: string }).info ?? `arc=${(r as { status: { result: string } }).status.result}`, (e: Error) => `arc=temperror (${escComment(e.message)})`), 'arc=temperror (timeout)');
        arcInfo = a;
      }
    } else {
      dkimInfo.push(dk.why === 'timeout' ? 'dkim=temperror (verification timed out)' : `dkim=permerror (${escComment(dk.why)})`);
    }
    let dmarc: DmarcOutcome | undefined;
    const fromDomains = [...new Set(headerFrom.map((a) => a.slice(a.lastIndexOf('@') + 1).toLowerCase()).filter(Boolean))];
    if (fromDomains.length === 1) {
      const spfDomain = spf.result === 'pass' ? spf.domain : undefined;
      dmarc = await timeout(evaluateDmarc({ fromDomain: fromDomains[0]!, spfDomain, dkimDomains: dkimPass, resolver: this.resolver, psl: this.s.psl, random: this.s.random }),
        { result: 'temperror', fromDomain: fromDomains[0]!, disposition: 'none', spfAligned: false, dkimAligned: false, reason: 'timeout' });
    }
    const d = decide(this.s, dmarc, spf.result);
    const dmarcInfo = dmarc ? dmarcResinfo(dmarc, d.action === 'reject' ? 'reject' : d.action === 'quarantine' ? 'quarantine' : undefined)
      : fromDomains.length > 1 ? 'dmarc=permerror (multiple From domains)' : undefined;
    const resinfo = [...dkimInfo, spf.info, ...(helo ? [helo.info] : []), ...(dmarcInfo ? [dmarcInfo] : []), arcInfo];
    const header = formatAuthres(this.s.authservId, resinfo);
    const spfIdentity = { domain: this.f.sender ? this.f.sender.slice(this.f.sender.lastIndexOf('@') + 1).toLowerCase() : this.f.helo.toLowerCase(), scope: this.f.sender ? 'mfrom' as const : 'helo' as const };
    return { header, ...d, spf: spf.result, heloSpf: helo?.result ?? 'none', dkim: dkimInfo, arc: arcInfo, dmarc, dkimResults, spfIdentity };
  }

  /** Stop: the transaction is gone. */
  abort(): void { this.stream?.destroy(); this.headChunks = []; }
}

/** The policy of the top of this file. */
export function decide(s: Pick<AuthresSettings, 'dmarcReject' | 'dmarcQuarantine' | 'temperrorAction'>, d: DmarcOutcome | undefined, spf: string): Pick<AuthresVerdict, 'action' | 'reply'> {
  if (d?.result === 'fail') {
    if (d.disposition === 'reject' && s.dmarcReject) {
      return { action: 'reject', reply: { code: 550, enh: '5.7.1', text: `rejected by DMARC policy for ${d.fromDomain}` } };
    }
    if ((d.disposition === 'reject' || d.disposition === 'quarantine') && s.dmarcQuarantine) return { action: 'quarantine' };
  }
  if (s.temperrorAction === 'defer' && (d?.result === 'temperror' || spf === 'temperror')) {
    return { action: 'defer', reply: { code: 451, enh: '4.7.5', text: 'Temporary authentication failure (DNS): try again later' } };
  }
  return { action: 'accept' };
}
