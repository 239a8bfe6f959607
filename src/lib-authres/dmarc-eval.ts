/**
 * dmarc-eval - DMARC evaluation of one message, RFC 7489: the policy record (§6.1, §6.6.3), the
 * identifier alignment of SPF and DKIM with the RFC5322.From domain (§3.1, relaxed or strict),
 * the Organizational Domain from the Public Suffix List (§3.2, dmarc-psl.ts), the policy to
 * apply (p, sp for subdomains) and the pct sampling (§6.6.4).
 *
 * DESCRIPTION
 *   Policy discovery (§6.6.3): `_dmarc.<From domain>` TXT, else `_dmarc.<Organizational
 *   Domain>`; a name with no record starting "v=DMARC1" has none; more than one such record
 *   means no record. A temporary DNS failure makes the result temperror (and the caller never
 *   rejects on it).
 *   Tags (§6.3): v (first), p (required; an invalid or missing p with a valid rua acts as
 *   p=none, §6.6.3 step 6), sp, adkim, aspf (r|s, default r), pct (0-100, default 100);
 *   others are ignored.
 *   pct (§6.6.4): a failing message not selected by the sample gets the next less strict
 *   policy (reject → quarantine, quarantine → none); `disposition` is what is applied.
 *
 *   Why not mailauth's own DMARC: mailauth 7 implements the DMARCbis draft (the DNS "Tree Walk"
 *   instead of the Public Suffix List, no pct), which the project's requirements (RFC 7489 with
 *   a replaceable Public Suffix List) do not ask for; its SPF and DKIM results are used here.
 *
 * STANDARDS
 *   RFC 7489 §3, §6.3, §6.6, §11.2 (header.from); RFC 8601 §2.3 (the policy ptype)
 */
import type { MailauthResolver } from './authres-dns.ts';
import { orgDomain, type PublicSuffixList } from './dmarc-psl.ts';

export type DmarcPolicy = 'none' | 'quarantine' | 'reject';
export type DmarcResultCode = 'pass' | 'fail' | 'none' | 'temperror' | 'permerror';

export interface DmarcRecord {
  p: DmarcPolicy;
  sp?: DmarcPolicy;
  adkim: 'r' | 's';
  aspf: 'r' | 's';
  pct: number;
  rua?: string;
  /** The name the record was found at (the From domain or its Organizational Domain). */
  domain: string;
}

export interface DmarcInput {
  /** The RFC5322.From domain (lower case). */
  fromDomain: string;
  /** The SPF-authenticated domain (MAIL FROM, or HELO for the null sender), when SPF passed. */
  spfDomain?: string;
  /** d= of each DKIM signature that verified. */
  dkimDomains: string[];
  resolver: MailauthResolver;
  psl: PublicSuffixList;
  /** [0, 1): the pct sample (tests pass a constant). */
  random?: () => number;
}

export interface DmarcOutcome {
  result: DmarcResultCode;
  fromDomain: string;
  record?: DmarcRecord;
  /** The policy the record asks for this domain (p, or sp for a subdomain). */
  policy?: DmarcPolicy;
  /** What to do with a failing message after pct sampling; 'none' when it passed. */
  disposition: DmarcPolicy;
  spfAligned: boolean;
  dkimAligned: boolean;
  /** Why temperror/permerror, for the comment. */
  reason?: string;
}

const POLICIES = new Set(['none', 'quarantine', 'reject']);

/** Parse one TXT record; undefined when it is not a DMARC record (no v=DMARC1 first). */
export function parseDmarcRecord(txt: string, domain: string): DmarcRecord | undefined {
  const tags = new Map<string, string>();
  const parts = txt.split(';').map((t) => t.trim()).filter(Boolean);
  const first = parts[0] ?? '';
  if (!/^v\s*=\s*DMARC1$/.test(first)) return undefined;
  for (const t of parts.slice(1)) {
    const i = t.indexOf('=');
    if (i <= 0) continue;
    const k = t.slice(0, i).trim().toLowerCase();
    if (!tags.has(k)) tags.set(k, t.slice(i + 1).trim());
  }
  const pol = (v: string | undefined): DmarcPolicy | undefined => (v && POLICIES.has(v.toLowerCase()) ? v.toLowerCase() as DmarcPolicy : undefined);
  let p = pol(tags.get('p'));
  const rua = tags.get('rua');
  if (!p) {
    if (!rua) return undefined;
    p = 'none'; // §6.6.3 step 6
  }
  const mode = (v: string | undefined): 'r' | 's' => (v?.toLowerCase() === 's' ? 's' : 'r');
  const pctRaw = tags.get('pct');
  const pctN = pctRaw !== undefined && /^\d{1,3}$/.test(pctRaw) ? Number(pctRaw) : 100;
  return { p, sp: pol(tags.get('sp')), adkim: mode(tags.get('adkim')), aspf: mode(tags.get('aspf')), pct: Math.min(100, pctN), rua, domain };
}

type Lookup = { record?: DmarcRecord; temp?: string };

async function lookupRecord(resolver: MailauthResolver, domain: string): Promise<Lookup> {
  let txt: string[][];
  try {
    txt = await resolver(`_dmarc.${domain}`, 'TXT') as string[][];
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') return {};
    return { temp: `DNS error looking up _dmarc.${domain}: ${code ?? (e as Error).message}` };
  }
  const recs = txt.map((r) => r.join('')).filter((r) => /^v\s*=\s*DMARC1\s*(;|$)/.test(r));
  if (recs.length !== 1) return {}; // §6.6.3 step 5: none, or more than one
  return { record: parseDmarcRecord(recs[0]!, domain) };
}

function aligned(psl: PublicSuffixList, id: string, from: string, mode: 'r' | 's'): boolean {
  const a = id.toLowerCase().replace(/\.$/, '');
  if (a === from) return true;
  return mode === 'r' && orgDomain(psl, a) === orgDomain(psl, from);
}

const WEAKER: Record<DmarcPolicy, DmarcPolicy> = { reject: 'quarantine', quarantine: 'none', none: 'none' };

export async function evaluateDmarc(inp: DmarcInput): Promise<DmarcOutcome> {
  const from = inp.fromDomain.toLowerCase().replace(/\.$/, '');
  const base: DmarcOutcome = { result: 'none', fromDomain: from, disposition: 'none', spfAligned: false, dkimAligned: false };
  let found = await lookupRecord(inp.resolver, from);
  const org = orgDomain(inp.psl, from);
  if (!found.record && !found.temp && org !== from) found = await lookupRecord(inp.resolver, org);
  if (found.temp) return { ...base, result: 'temperror', reason: found.temp };
  const rec = found.record;
  if (!rec) return base;
  const policy = rec.domain === from ? rec.p : (rec.sp ?? rec.p);
  const spfAligned = !!inp.spfDomain && aligned(inp.psl, inp.spfDomain, from, rec.aspf);
  const dkimAligned = inp.dkimDomains.some((d) => aligned(inp.psl, d, from, rec.adkim));
  if (spfAligned || dkimAligned) return { ...base, result: 'pass', record: rec, policy, spfAligned, dkimAligned };
  const sampled = rec.pct >= 100 || (inp.random ?? Math.random)() * 100 < rec.pct;
  return { ...base, result: 'fail', record: rec, policy, disposition: sampled ? policy : WEAKER[policy] };
}

/** The resinfo of the Authentication-Results header (RFC 8601 §2.2), OpenDMARC's comment style. */
export function dmarcResinfo(o: DmarcOutcome, applied?: 'quarantine' | 'reject'): string {
  const r = o.record;
  const comment = r ? ` (p=${r.p.toUpperCase()} sp=${(r.sp ?? r.p).toUpperCase()} pct=${r.pct} dis=${o.disposition.toUpperCase()})`
    : o.reason ? ` (${o.reason.replace(/[()\\]/g, '')})` : '';
  let s = `dmarc=${o.result}${comment} header.from=${o.fromDomain}`;
  // RFC 8601 §2.3 "policy" ptype: what this server did with the message; delivery honours
  // policy.dmarc=quarantine (authres-header.ts).
  if (applied) s += ` policy.dmarc=${applied}`;
  return s;
}
