/**
 * dnsbl - DNS allow/deny list lookups as Postfix does them, for smtpd's reject_rbl_client /
 * reject_rhsbl_* restrictions (smtpd_check.c) and postscreen's weighted score
 * (postscreen_dnsbl_sites, psc_dnsbl.c). Mail knowledge both daemons share, so it lives in
 * global/: the session is seen through DnsblClient (smtpd's SmtpdState fits it), the reply is a
 * plain code/enhanced code/text.
 *
 * SUMMARY
 *   const rbl = new RblChecker(resolver, { template: c.get('default_rbl_reply'), code: c.int('maps_rbl_reject_code') });
 *   const reply = await rbl.rejectRblClient(state, 'zen.example.test=127.0.0.[2..11]');
 *   const { score, domain } = await dnsblScore(resolver, parseDnsblSites(c.get('postscreen_dnsbl_sites')), addr);
 *
 * DESCRIPTION
 *   Query names: an IPv4 client 192.0.2.1 is looked up as 1.2.0.192.<domain>; an IPv6 client as
 *   its 32 nibbles reversed (find_dnsxl_addr()); a domain (rhsbl) as <domain>.<list> — names
 *   that are not valid hostnames or end in a numeric label are skipped (find_dnsxl_domain()).
 *   A listing is any A record, or with "=filter" an A record matching the filter: d.d.d.d where
 *   each d is a number or "[n;n..m;...]" (ip_match.c). The reason is the TXT records joined by
 *   " / " up to 500 characters (rbl_pagein()).
 *
 *   A DNS error other than "not found" never rejects (the client gets the benefit of the doubt)
 *   and logs "warning: <query>: RBL lookup error: ...". Results are cached per query for a
 *   minute, at most 1000 queries (Postfix's smtpd_rbl_cache).
 *
 *   The reply is default_rbl_reply expanded once, without recursion, so a TXT record cannot
 *   inject $names (mac_expand MAC_EXP_FLAG_NONE); its values pass smtpd_expansion_filter:
 *     554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.example.test; <TXT>
 *
 * SECURITY
 *   DNS answers are hostile input: TXT is cut at 500 characters and control and 8-bit characters
 *   become "_" before they reach a reply line.
 *
 * PARAMETERS
 *   default_rbl_reply, maps_rbl_reject_code, postscreen_dnsbl_sites, postscreen_dnsbl_threshold
 */
import { isIP } from 'node:net';
import { macExpand } from '../util/mac-expand.ts';
import { splitList } from './mail-conf.ts';
import { DnsError, type DnsResolver } from '../util/dns-resolver.ts';
import { logger } from '../util/msg.ts';

const log = logger('smtpd');

/** A reply for smtpd to send (the shape of smtpd's SmtpdReply): code, RFC 3463 code, text. */
export interface DnsblReply { code: number; enh: string; text: string }

/** What a list check needs to know of the SMTP session (a subset of smtpd's SmtpdState). */
export interface DnsblClient {
  clientAddr: string;
  /** "unknown" when the client has no verified name. */
  clientName: string;
  helo?: string;
  tx?: { sender: string };
}

/** rbl_pagein() RBL_TXT_LIMIT */
const TXT_LIMIT = 500;

export class DnsblSyntaxError extends Error {
  override name = 'DnsblSyntaxError';
}

/** An A-record filter (ip_match.c): returns whether an IPv4 reply address matches. */
export type ReplyFilter = (addr: string) => boolean;

/** Parse "d.d.d.d" with "[n;n..m]" octets; throws DnsblSyntaxError like "bad DNSBL filter syntax". */
export function parseReplyFilter(pattern: string): ReplyFilter {
  const octets: ((n: number) => boolean)[] = [];
  const re = /^(?:(\d{1,3})|\[([0-9;.]+)\])(?:\.|$)/;
  let rest = pattern;
  while (rest.length > 0) {
    const m = re.exec(rest);
    if (!m) throw new DnsblSyntaxError(`bad DNSBL filter syntax: "${pattern}"`);
    if (m[1] !== undefined) {
      const v = Number(m[1]);
      if (v > 255) throw new DnsblSyntaxError(`bad DNSBL filter syntax: "${pattern}": ${v} > 255`);
      octets.push((n) => n === v);
    } else {
      const parts = m[2]!.split(';').map((p) => {
        const r = /^(\d{1,3})(?:\.\.(\d{1,3}))?$/.exec(p);
        if (!r) throw new DnsblSyntaxError(`bad DNSBL filter syntax: "${pattern}": bad range "${p}"`);
        const lo = Number(r[1]);
        const hi = r[2] === undefined ? lo : Number(r[2]);
        if (lo > 255 || hi > 255 || lo > hi) throw new DnsblSyntaxError(`bad DNSBL filter syntax: "${pattern}": bad range "${p}"`);
        return [lo, hi] as const;
      });
      octets.push((n) => parts.some(([lo, hi]) => n >= lo && n <= hi));
    }
    rest = rest.slice(m[0].length);
    if (m[0].endsWith('.') && rest === '') throw new DnsblSyntaxError(`bad DNSBL filter syntax: "${pattern}"`);
  }
  if (octets.length !== 4) throw new DnsblSyntaxError(`bad DNSBL filter syntax: "${pattern}": need 4 octets`);
  return (addr) => {
    const b = addr.split('.').map(Number);
    return b.length === 4 && b.every((n, i) => octets[i]!(n));
  };
}

export interface DnsblSite {
  /** The list's domain, without filter or weight. */
  domain: string;
  filter?: ReplyFilter;
  weight: number;
  /** As written in main.cf. */
  spec: string;
}

/** One postscreen_dnsbl_sites entry, domain[=filter][*weight] (psc_dnsbl_add_site()). */
export function parseDnsblSite(spec: string): DnsblSite {
  let s = spec;
  let weight = 1;
  const star = s.lastIndexOf('*');
  if (star >= 0) {
    const w = s.slice(star + 1);
    if (!/^-?\d{1,6}$/.test(w)) throw new DnsblSyntaxError(`bad DNSBL weight factor "${w}" in "${spec}"`);
    weight = Number(w);
    s = s.slice(0, star);
  }
  const eq = s.indexOf('=');
  const domain = (eq >= 0 ? s.slice(0, eq) : s).toLowerCase().replace(/\.$/, '');
  if (!validHostname(domain)) throw new DnsblSyntaxError(`bad DNSBL domain name "${domain}" in "${spec}"`);
  return { domain, filter: eq >= 0 ? parseReplyFilter(s.slice(eq + 1)) : undefined, weight, spec };
}

/** postscreen_dnsbl_sites: errors name the parameter (and main.cf line when given). */
export function parseDnsblSites(value: string, where = 'postscreen_dnsbl_sites'): DnsblSite[] {
  return splitList(value).map((spec) => {
    try { return parseDnsblSite(spec); } catch (e) {
      throw new DnsblSyntaxError(`${where}: ${(e as Error).message}`);
    }
  });
}

/** The query name for an address: reversed IPv4 octets or IPv6 nibbles (find_dnsxl_addr()). */
export function reverseAddr(addr: string): string | undefined {
  const a = addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
  const v = isIP(a);
  if (v === 4) return a.split('.').reverse().join('.');
  if (v !== 6) return undefined;
  const [head = '', tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const hex = groups.map((g) => g.padStart(4, '0')).join('').toLowerCase();
  return [...hex].reverse().join('.');
}

/** Postfix valid_hostname(DONT_GRIPE), plus find_dnsxl_domain()'s "no numeric last label". */
function validHostname(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false;
  return name.split('.').every((l) => /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l));
}

export interface DnsblAnswer {
  /** A records (possibly filtered out later); empty = not listed. */
  addrs: string[];
  /** TXT joined with " / ", up to 500 characters; undefined when none. */
  txt?: string;
  /** A DNS error other than "not found": treated as not listed. */
  error?: string;
}

/** A small per-query cache (Postfix ctable smtpd_rbl_cache: 1000 entries). */
export class DnsblCache {
  private readonly m = new Map<string, { at: number; p: Promise<DnsblAnswer> }>();
  private readonly ttlMs: number;
  private readonly max: number;
  constructor(ttlMs = 60_000, max = 1000) { this.ttlMs = ttlMs; this.max = max; }

  get(q: string, f: () => Promise<DnsblAnswer>): Promise<DnsblAnswer> {
    const t = performance.now();   // an age: a wall clock stepped back must not keep answers
    const hit = this.m.get(q);
    if (hit && t - hit.at < this.ttlMs) return hit.p;
    const p = f();
    this.m.delete(q);
    this.m.set(q, { at: t, p });
    if (this.m.size > this.max) this.m.delete(this.m.keys().next().value!);
    return p;
  }
}

/** The two lookups a DNS list needs (util/dns-resolver.ts's DnsResolver or node:dns's Resolver). */
export type DnsblResolver = Pick<DnsResolver, 'resolve4' | 'resolveTxt'>;

/** Look up one query name: A records, then TXT when listed (rbl_pagein()). */
export async function dnsblQuery(dns: DnsblResolver, qname: string): Promise<DnsblAnswer> {
  let addrs: string[];
  try {
    addrs = await dns.resolve4(qname);
  } catch (e) {
    if (e instanceof DnsError && (e.kind === 'NOTFOUND' || e.kind === 'NODATA')) return { addrs: [] };
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') return { addrs: [] };
    const why = e instanceof DnsError ? e.message : String(e);
    log.warn(`${qname}: RBL lookup error: ${why}`);
    return { addrs: [], error: why };
  }
  let txt: string | undefined;
  try {
    const recs = await dns.resolveTxt(qname);
    let buf = '';
    for (const r of recs) {
      if (buf.length >= TXT_LIMIT) break;
      if (buf.length > 0) buf += ' / ';
      buf += r.join('');
    }
    txt = buf.slice(0, TXT_LIMIT);
  } catch { /* no TXT: no reason */ }
  return { addrs, txt };
}

export interface DnsblScore {
  score: number;
  /** The listing site with the largest weight (what postscreen names in its reply). */
  domain?: string;
  /** Every site that listed the client. */
  hits: DnsblSite[];
}

/**
 * postscreen's combined score: each site whose (filtered) reply lists the client adds its
 * weight once (psc_dnsbl_receive()). Lookups run in parallel; `timeoutMs` bounds the wait
 * (postscreen_dnsbl_timeout), replies that come later do not count.
 */
export async function dnsblScore(dns: DnsblResolver, sites: readonly DnsblSite[], addr: string,
                                 opts: { timeoutMs?: number; cache?: DnsblCache } = {}): Promise<DnsblScore> {
  const rev = reverseAddr(addr);
  const out: DnsblScore = { score: 0, hits: [] };
  if (!rev || sites.length === 0) return out;
  let best = -Infinity;
  const one = async (site: DnsblSite) => {
    const q = `${rev}.${site.domain}`;
    const a = opts.cache ? await opts.cache.get(q, () => dnsblQuery(dns, q)) : await dnsblQuery(dns, q);
    if (!a.addrs.some((x) => !site.filter || site.filter(x))) return;
    out.score += site.weight;
    out.hits.push(site);
    if (site.weight > best) { best = site.weight; out.domain = site.domain; }
  };
  let timer: NodeJS.Timeout | undefined;
  const all = Promise.all(sites.map(one));
  const limit = new Promise<void>((r) => { timer = setTimeout(r, opts.timeoutMs ?? 10_000); timer.unref?.(); });
  await Promise.race([all, limit]);
  clearTimeout(timer);
  return { ...out, hits: [...out.hits] };
}

/** Which restriction, what it looks up and how the reply names it (SMTPD_NAME_*). */
export type RhsblKind = 'client' | 'reverse_client' | 'helo' | 'sender' | 'recipient';
const RHSBL_CLASS: Record<RhsblKind, string> = {
  client: 'Client host', reverse_client: 'Client host', helo: 'Helo command', sender: 'Sender address', recipient: 'Recipient address',
};

export interface RblCheckerOptions {
  /** default_rbl_reply */
  template: string;
  /** maps_rbl_reject_code (default 554) */
  code?: number;
}

/** smtpd_expansion_filter default: tab and printable ASCII; anything else becomes "_". */
function filterValue(v: string): string {
  // eslint-disable-next-line no-control-regex
  return v.replace(/[^\t\x20-\x7e]/g, '_');
}

/**
 * reject_rbl_client and reject_rhsbl_* as smtpd-check.ts calls them. Each returns the reply to
 * send, or undefined (not listed, or a DNS error: DUNNO).
 */
export class RblChecker {
  private readonly dns: DnsblResolver;
  private readonly template: string;
  private readonly code: number;
  private readonly cache = new DnsblCache();

  constructor(dns: DnsblResolver, opts: RblCheckerOptions) {
    this.dns = dns;
    this.template = opts.template;
    this.code = opts.code && opts.code >= 400 && opts.code <= 599 ? opts.code : 554;
  }

  /** reject_rbl_client domain[=filter]: the client address, reversed. */
  async rejectRblClient(s: DnsblClient, arg: string): Promise<DnsblReply | undefined> {
    const rev = reverseAddr(s.clientAddr);
    if (!rev) return undefined;
    return this.check(s, arg, rev, s.clientAddr, 'Client host', {});
  }

  /** reject_rhsbl_client/reverse_client/helo/sender/recipient domain[=filter]. */
  async rejectRhsbl(kind: RhsblKind, s: DnsblClient, arg: string, value: { sender?: string; recipient?: string } = {}): Promise<DnsblReply | undefined> {
    let what: string | undefined;
    switch (kind) {
      case 'client': case 'reverse_client': what = s.clientName === 'unknown' ? undefined : s.clientName; break;
      case 'helo': what = s.helo; break;
      case 'sender': what = value.sender ?? s.tx?.sender; break;
      case 'recipient': what = value.recipient; break;
    }
    if (!what) return undefined;
    const at = what.lastIndexOf('@');
    const domain = (at >= 0 ? what.slice(at + 1) : what).replace(/\.$/, '');
    if (domain.startsWith('[') || !validHostname(domain) || /^\d+$/.test(domain.slice(domain.lastIndexOf('.') + 1))) return undefined;
    return this.check(s, arg, domain.toLowerCase(), what, RHSBL_CLASS[kind], value);
  }

  /**
   * permit_dnswl_client / permit_rhswl_client: is `name` (a reversed address or a host name)
   * listed in the allow list `arg` (domain[=filter])? 'error' for a DNS failure or a bad filter.
   */
  async allowListed(name: string, arg: string): Promise<'listed' | 'not' | 'error'> {
    const r = await this.ask(name, arg);
    if (r === 'bad-filter') return 'error';
    if (r.listed) return 'listed';
    return r.answer.error ? 'error' : 'not';
  }

  /**
   * Ask list `arg` (domain[=filter]) about `name`: listed when an answer passes the filter.
   * Postfix compiles the filter when first used and exits on a bad one ("RBL reply error");
   * here it is logged and the caller answers as for other server errors ('bad-filter').
   */
  private async ask(name: string, arg: string): Promise<{ domain: string; answer: DnsblAnswer; listed: boolean } | 'bad-filter'> {
    const eq = arg.indexOf('=');
    const domain = eq >= 0 ? arg.slice(0, eq) : arg;
    let filter: ReplyFilter | undefined;
    if (eq >= 0) {
      try { filter = parseReplyFilter(arg.slice(eq + 1)); } catch (e) {
        log.warn(`RBL reply error: ${(e as Error).message}`);
        return 'bad-filter';
      }
    }
    const q = `${name}.${domain}`;
    const answer = await this.cache.get(q, () => dnsblQuery(this.dns, q));
    return { domain, answer, listed: answer.addrs.some((x) => !filter || filter(x)) };
  }

  private async check(s: DnsblClient, arg: string, name: string, what: string, cls: string,
                      value: { sender?: string; recipient?: string }): Promise<DnsblReply | undefined> {
    const r = await this.ask(name, arg);
    if (r === 'bad-filter') return { code: 451, enh: '4.3.5', text: 'Server configuration error' };
    if (!r.listed) return undefined;
    return this.reply(s, r.domain, what, cls, r.answer.txt ?? '', value);
  }

  /** rbl_reject_reply(): expand the template once, then split code and DSN. */
  private reply(s: DnsblClient, domain: string, what: string, cls: string, txt: string,
                value: { sender?: string; recipient?: string }): DnsblReply {
    const sender = value.sender ?? s.tx?.sender;
    const vars: Record<string, string | undefined> = {
      rbl_code: String(this.code), rbl_domain: domain, rbl_reason: txt, rbl_txt: txt, rbl_what: what, rbl_class: cls,
      client: `${s.clientName}[${s.clientAddr}]`, client_address: s.clientAddr, client_name: s.clientName,
      reverse_client_name: s.clientName, helo_name: s.helo ?? '',
      sender: sender === undefined ? undefined : sender || '<>', recipient: value.recipient,
    };
    const text = macExpand(this.template, (n) => { const v = vars[n]; return v === undefined ? undefined : filterValue(v); }, { recurse: false });
    const m = /^([45]\d\d) (?:([45])\.(\d{1,3}\.\d{1,3}) )?(.*)$/s.exec(text);
    if (!m) {
      log.warn(`rbl response code configuration error: ${text}`);
      return { code: 450, enh: '4.7.1', text: 'Service unavailable' };
    }
    const code = Number(m[1]);
    return { code, enh: `${m[1]![0]}.${m[3] ?? '7.1'}`, text: m[4] || 'Service unavailable' };
  }
}
