/**
 * smtpd-check-server - the restrictions that look at a name's mail servers (Postfix
 * smtpd_check.c check_server_access(), permit_mx_backup()): check_*_mx_access and
 * check_*_a_access look up the DNS servers of a name and search an access(5) table for each
 * server's host name (and its parent domains), then for each of the server's addresses (and
 * their parent networks); permit_mx_backup accepts mail for domains this host is a backup MX of.
 *
 *   check_{client,reverse_client,helo,sender,recipient}_mx_access type:table
 *       the MX hosts of the client name / HELO name / the address's domain; a domain without MX
 *       records is its own server (RFC 5321 §5.1, as Postfix)
 *   check_{client,reverse_client,helo,sender,recipient}_ns_access type:table
 *       the name servers of that name, or of its closest parent domain that has NS records
 *   check_{client,reverse_client,helo,sender,recipient}_a_access type:table
 *       the IPv4 and IPv6 addresses of that name
 *
 * Contract: SERVER_RESTRICTIONS maps each name to its implementation (smtpd-check-generic.ts
 * dispatches to it). An unknown client name, an address literal, the null sender and a name the
 * DNS cannot answer give DUNNO (Postfix logs "Unable to look up MX host for ..."); the first
 * table result other than DUNNO wins.
 *
 * PARAMETERS
 *   permit_mx_backup_networks, parent_domain_matches_subdomains (smtpd_access_maps), access_map_reject_code,
 *   access_map_defer_code
 */
import { logger } from '../util/msg.ts';
import { addrKeys, domainKeys } from './smtpd-check-access.ts';
import { accessCheck } from './smtpd-check-table.ts';
import {
  CLIENT, DUNNO, HELO, OK, RECIPIENT, SENDER, deferIf, namaddr, resolveAddr,
  type CheckContext, type CheckState, type Restriction, type Status,
} from './smtpd-check-reject.ts';

const log = logger('smtpd');

/** The name a restriction looks at, the reply name and the reply class. */
function subject(st: CheckState, who: string): { name: string; replyName: string; replyClass: string } | undefined {
  const s = st.s;
  const domainOf = (a: string | undefined) => {
    if (!a) return undefined;
    const at = a.lastIndexOf('@');
    return at >= 0 ? a.slice(at + 1) : undefined;
  };
  switch (who) {
    case 'client': case 'reverse_client':
      return s.clientName === 'unknown' ? undefined : { name: s.clientName, replyName: namaddr(st), replyClass: CLIENT };
    case 'helo':
      return st.helo ? { name: st.helo, replyName: st.helo, replyClass: HELO } : undefined;
    case 'sender': {
      const d = domainOf(st.sender);
      return d ? { name: d, replyName: st.sender!, replyClass: SENDER } : undefined;
    }
    case 'recipient': {
      const d = domainOf(st.recipient);
      return d ? { name: d, replyName: st.recipient!, replyClass: RECIPIENT } : undefined;
    }
  }
  return undefined;
}

async function addresses(cx: CheckContext, host: string): Promise<string[]> {
  const out: string[] = [];
  for (const f of [cx.dns.resolve4, cx.dns.resolve6]) {
    try { out.push(...await f.call(cx.dns, host)); } catch { /* none of this family */ }
  }
  return out;
}

const serverAccess: Restriction = async (cx, st, r) => {
  const table = r.mapArg();
  const m = /^check_(client|reverse_client|helo|sender|recipient)_(mx|ns|a)_access$/.exec(r.name)!;
  const who = subject(st, m[1]!);
  if (!who) return DUNNO;
  const name = who.name.toLowerCase().replace(/\.$/, '');
  if (name === '' || name.startsWith('[') || !name.includes('.') && !/^[a-z0-9-]+$/.test(name)) return DUNNO;
  const type = m[2]!;
  let hosts: string[];
  if (type === 'a') {
    hosts = [];
  } else if (type === 'ns') {
    // The name servers of the name, else of its parent domains (Postfix walks up on NOTFOUND).
    if (!cx.dns.resolveNs) { log.warn(`${r.name}: the DNS client cannot look up NS records`); return DUNNO; }
    let d = name;
    for (;;) {
      try {
        hosts = (await cx.dns.resolveNs(d)).map((x) => x.toLowerCase().replace(/\.$/, '')).filter(Boolean);
        if (hosts.length) break;
      } catch (e) {
        const kind = (e as { kind?: string }).kind ?? (e as NodeJS.ErrnoException).code;
        if (!(kind === 'NOTFOUND' || kind === 'NODATA' || kind === 'ENOTFOUND' || kind === 'ENODATA')) {
          log.warn(`Unable to look up NS host for ${name}: ${(e as Error).message}`);
          return DUNNO;
        }
      }
      const dot = d.indexOf('.');
      if (dot < 0 || d.indexOf('.', dot + 1) < 0) return DUNNO;
      d = d.slice(dot + 1);
    }
  } else {
    try {
      const mx = await cx.dns.resolveMx(name);
      hosts = mx.sort((a, b) => a.priority - b.priority).map((x) => x.exchange.toLowerCase().replace(/\.$/, '')).filter(Boolean);
      if (hosts.length === 0) hosts = [name];
    } catch (e) {
      const kind = (e as { kind?: string }).kind ?? (e as NodeJS.ErrnoException).code;
      if (kind === 'NOTFOUND' || kind === 'NODATA' || kind === 'ENOTFOUND' || kind === 'ENODATA') {
        hosts = [name];   // no MX: the domain is its own mail server
      } else {
        log.warn(`Unable to look up MX host for ${name}: ${(e as Error).message}`);
        return DUNNO;
      }
    }
  }
  const parent = cx.p.accessParent;
  const check = (keys: { key: string; partial: boolean }[]): Promise<Status> => accessCheck(cx, st, table, keys, who.replyName, who.replyClass, r.defAcl);
  if (type === 'a') {
    for (const a of await addresses(cx, name)) {
      const s = await check(addrKeys(a));
      if (s !== DUNNO) return s;
    }
    return DUNNO;
  }
  for (const host of hosts) {
    let s = await check(domainKeys(host, parent));
    if (s !== DUNNO) return s;
    for (const a of await addresses(cx, host)) {
      s = await check(addrKeys(a));
      if (s !== DUNNO) return s;
    }
  }
  return DUNNO;
};

/** i_am_mx(): does one of these hosts have an address of ours (inet_interfaces, proxy_interfaces)? */
async function iAmMx(cx: CheckContext, hosts: string[]): Promise<boolean> {
  for (const h of hosts) for (const a of await addresses(cx, h)) if (cx.tr.isLocalAddress(a)) return true;
  return false;
}

/**
 * permit_mx_backup (Postfix permit_mx_backup()): OK for a recipient we would accept anyway
 * (local, virtual, relay_domains; routed forms refused), or whose domain lists this host as a
 * backup MX and not as a primary one, with every primary MX host's address in
 * permit_mx_backup_networks when that is set. A domain without MX is OK only when its own
 * address is ours; a DNS failure turns a later rejection into "450 4.4.4 ... Unable to look up
 * mail exchanger information" (defer_if_reject).
 */
const mxBackup: Restriction = async (cx, st) => {
  const rcpt = st.recipient;
  if (rcpt === undefined) return DUNNO;
  const r = await resolveAddr(cx, st, rcpt, st.sender ?? '');
  const at = r.recipient.lastIndexOf('@');
  if (at < 0) return OK;
  if (r.class === 'local') return OK;
  if (!cx.p.untrustedRouting && r.flags.routed) return DUNNO;
  if (r.class === 'alias' || r.class === 'virtual' || r.class === 'relay') return OK;
  const domain = r.recipient.slice(at + 1);
  if (domain.startsWith('[')) return DUNNO;
  let mx;
  try {
    mx = await cx.dns.resolveMx(domain);
  } catch (e) {
    const kind = (e as { kind?: string }).kind ?? (e as NodeJS.ErrnoException).code;
    if (kind === 'NOTFOUND' || kind === 'NODATA' || kind === 'ENOTFOUND' || kind === 'ENODATA') return (await iAmMx(cx, [domain])) ? OK : DUNNO;
    return deferIf(st.deferIfReject, 'policy', 450, '4.4.4', `<${rcpt}>: ${RECIPIENT} rejected: Unable to look up mail exchanger information: Host not found, try again`);
  }
  if (mx.length === 0) return (await iAmMx(cx, [domain])) ? OK : DUNNO;
  const best = Math.min(...mx.map((x) => x.priority));
  const host = (x: { exchange: string }) => x.exchange.toLowerCase().replace(/\.$/, '');
  const primaries = mx.filter((x) => x.priority === best).map(host);
  const backups = mx.filter((x) => x.priority !== best).map(host);
  if (await iAmMx(cx, primaries)) return DUNNO;
  if (backups.length === 0 || !(await iAmMx(cx, backups))) return DUNNO;
  if (cx.mxBackupNetworks) {
    for (const h of primaries) {
      for (const a of await addresses(cx, h)) {
        let ok = false;
        try { ok = await cx.mxBackupNetworks.match('unknown', a); } catch { ok = false; }
        if (!ok) return DUNNO;
      }
    }
  }
  return OK;
};

export const SERVER_RESTRICTIONS: Record<string, Restriction> = {
  ...Object.fromEntries(['client', 'reverse_client', 'helo', 'sender', 'recipient'].flatMap((w) => [
    [`check_${w}_mx_access`, serverAccess], [`check_${w}_ns_access`, serverAccess], [`check_${w}_a_access`, serverAccess],
  ])),
  permit_mx_backup: mxBackup,
};
