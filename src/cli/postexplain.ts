/**
 * postexplain - `postern explain ADDRESS` and `postern explain QUEUE_ID`: the whole decision
 * trace of the mail system for one address, or the path of one message.
 *
 * SYNOPSIS
 *   postern explain [--client IP[,NAME]] [--sender S] [--helo H] [--service NAME]
 *                   [--sasl USER] [--dns] ADDRESS
 *   postern explain [--log FILE] QUEUE_ID
 *
 * DESCRIPTION
 *   For an ADDRESS, in the order mail meets them:
 *     1. the "canonical" rewrite of trivial-rewrite (user → user@$myorigin, ...);
 *     2. with --client: smtpd's restrictions for that client, HELO name (default: the client
 *        name), sender (default: the null sender) and the address as recipient, each restriction
 *        with its answer and the table lines that decided (postexplain-smtpd.ts);
 *     3. cleanup's address mapping: recipient_canonical_maps, canonical_maps, masquerading,
 *        virtual_alias_maps expansion, through cleanup's own CleanupEnvelope;
 *     4. for each resulting recipient: trivial-rewrite's resolve() (address class, transport,
 *        nexthop, transport_maps, relocated_maps) and smtpd's recipient table check;
 *     5. for smtp/lmtp transports: the TLS policy smtp(8) would apply (smtp_tls_policy_maps,
 *        smtp_tls_security_level, DANE, MTA-STS) through smtp's own SmtpTlsPolicy. DNS is not
 *        used unless --dns is given: "would look up TLSA / MTA-STS" says what smtp(8) would ask.
 *   Every table lookup made on the way is shown (parameter, table, key, answer), with the file
 *   and line of the entry for texthash/hash tables: the lookups come from the daemons' own code
 *   (global/maps.ts traceMapsLookups), not from a second implementation.
 *
 *   For a QUEUE_ID: postexplain-queue.ts.
 *
 * SECURITY
 *   Reads main.cf, master.cf and the lookup tables (as postmap -q); reading the queue and
 *   maillog_file needs the rights of the mail system. Changes nothing, sends no mail.
 */
import { MainConfig } from '../global/mail-conf.ts';
import { loadDovecotConf } from '../global/dovecot-conf.ts';
import { loadMasterCf, type MasterEntry } from '../global/master-cf.ts';
import { isQueueId } from '../global/mail-queue.ts';
import { traceMapsLookups, type MapsLookup } from '../global/maps.ts';
import { authDictTypesFor } from '../lib-auth/dict-auth.ts';
import { TrivialRewrite } from '../trivial-rewrite/trivial-rewrite.ts';
import { sourceLineOf } from '../trivial-rewrite/never-rules.ts';
import { addressMappingTables, cleanupTables } from '../cleanup/cleanup-tables.ts';
import { CleanupEnvelope } from '../cleanup/cleanup-envelope.ts';
import { agentTlsPolicy, isRefusal } from '../smtp/smtp-tls-policy.ts';
import { parseDestination, resolveDestination } from '../smtp/smtp-connect.ts';
import { dnsResolverFromConfig } from '../util/dns-resolver.ts';
import { logger } from '../util/msg.ts';
import { explainSmtpd, noNetworkResolver, serviceConfig, type ExplainClient } from './postexplain-smtpd.ts';
import { explainQueueId } from './postexplain-queue.ts';
import type { CliContext } from './cli-context.ts';

const USAGE = 'usage: postern explain [--client IP[,NAME]] [--sender S] [--helo H] [--service NAME] [--sasl USER] [--dns] ADDRESS\n'
  + '       postern explain [--log FILE] QUEUE_ID\n';

const CLASS_PARAM: Record<string, string> = {
  local: 'mydestination (or an [address] of inet_interfaces/proxy_interfaces)',
  alias: 'virtual_alias_domains',
  virtual: 'virtual_mailbox_domains',
  relay: 'relay_domains',
  default: 'none of mydestination, virtual_alias_domains, virtual_mailbox_domains, relay_domains',
};

/** The domain list that puts a domain in each class. */
const CLASS_LIST: Record<string, string | undefined> = {
  local: 'mydestination', alias: 'virtual_alias_domains', virtual: 'virtual_mailbox_domains', relay: 'relay_domains', default: undefined,
};

export interface ExplainArgs {
  target: string;
  client?: { addr: string; name: string };
  sender: string;
  helo?: string;
  service?: string;
  sasl?: string;
  dns: boolean;
  /** QUEUE_ID: the log to read instead of maillog_file (a rotated one). */
  log?: string;
}

export function parseExplainArgs(args: string[]): ExplainArgs | string {
  const a: Partial<ExplainArgs> & { sender: string; dns: boolean } = { sender: '', dns: false };
  for (let i = 0; i < args.length; i++) {
    const o = args[i]!;
    const val = (): string | undefined => args[++i];
    switch (o) {
      case '--client': {
        const v = val();
        if (!v) return 'option --client requires IP[,NAME]';
        const [addr, name] = v.split(',', 2);
        a.client = { addr: addr!, name: name || 'unknown' };
        break;
      }
      case '--sender': { const v = val(); if (v === undefined) return 'option --sender requires an address (use "" for <>)'; a.sender = v.replace(/^<(.*)>$/, '$1'); break; }
      case '--helo': { const v = val(); if (!v) return 'option --helo requires a name'; a.helo = v; break; }
      case '--service': { const v = val(); if (!v) return 'option --service requires a master.cf service name'; a.service = v; break; }
      case '--sasl': { const v = val(); if (!v) return 'option --sasl requires a user name'; a.sasl = v; break; }
      case '--dns': a.dns = true; break;
      case '--log': { const v = val(); if (!v) return 'option --log requires a file name'; a.log = v; break; }
      default:
        if (o.startsWith('-')) return `unknown option ${o}`;
        if (a.target !== undefined) return 'give one ADDRESS or QUEUE_ID';
        a.target = o.replace(/^<(.*)>$/, '$1');
    }
  }
  if (a.target === undefined) return 'give an ADDRESS or a QUEUE_ID';
  if (a.target.length > 4096 || /[\0\r\n]/.test(a.target)) return 'the address is not valid (too long, or NUL/CR/LF)';
  return a as ExplainArgs;
}

/** Collects the table lookups of the daemons' code and prints them with their source lines. */
class LookupLog {
  private readonly seen: MapsLookup[] = [];
  private readonly configDir: string;
  private readonly out: (s: string) => void;
  constructor(configDir: string, out: (s: string) => void) { this.configDir = configDir; this.out = out; }
  add = (l: MapsLookup): void => { this.seen.push(l); };
  flush = (indent: string): void => {
    for (const l of this.seen.splice(0)) {
      const who = l.paramName ? `${l.paramName} ` : '';
      if (l.error) { this.out(`${indent}${who}${l.table}: key ${l.key}: LOOKUP ERROR ${l.error}\n`); continue; }
      if (l.value === undefined) { this.out(`${indent}${who}${l.table}: key ${l.key}: not found\n`); continue; }
      const src = sourceLineOf(l.table, l.key, this.configDir);
      const where = src ? ` (${src.file}, line ${src.line})` : '';
      this.out(`${indent}${who}${l.table}: key ${l.key} -> ${l.value}${where}\n`);
    }
  };
  discard(): void { this.seen.length = 0; }
}

function loadConfig(configDir: string): { config: MainConfig; masterCf: MasterEntry[] } {
  const config = MainConfig.load(configDir).withDictTypes(authDictTypesFor(() => loadDovecotConf(configDir)));
  let masterCf: MasterEntry[] = [];
  try { masterCf = loadMasterCf(configDir); } catch { /* no master.cf: the transports are not described */ }
  return { config, masterCf };
}

async function explainTls(config: MainConfig, entry: MasterEntry, nexthop: string, useDns: boolean,
                          out: (s: string) => void, lookups: LookupLog): Promise<void> {
  const lmtp = entry.command === 'lmtp';
  const pfx = lmtp ? 'lmtp_' : 'smtp_';
  const c = config.withOverrides(entry.overrides);
  const asked: string[] = [];
  const resolver = useDns ? dnsResolverFromConfig(c) : noNetworkResolver(asked);
  // The agent's own policy object (smtp-tls-policy.ts agentTlsPolicy), on the explain resolver.
  const policy = agentTlsPolicy(c, lmtp, () => resolver, logger(lmtp ? 'lmtp' : 'smtp'));
  const wouldAsk = (indent: string) => {
    for (const q of asked.splice(0)) out(`${indent}would look up ${q} (DNS not used: give --dns)\n`);
  };
  let dest;
  try { dest = parseDestination(nexthop, { lmtp, defaultPort: lmtp ? 24 : 25 }); } catch (e) {
    out(`    TLS: nexthop ${nexthop} is not a valid destination: ${(e as Error).message}\n`);
    return;
  }
  const mxLookup = dest.kind === 'inet' && dest.mx;
  const d = await policy.forDestination(nexthop, mxLookup);
  lookups.flush('      ');
  if (isRefusal(d)) { out(`    TLS: delivery would be deferred: ${d.dsn} ${d.refuse}\n`); return; }
  out(`    TLS policy (${pfx}): level ${d.level} from ${d.source}${d.match.length ? `, match ${d.match.join(':')}` : ''}${d.protocols ? `, protocols ${d.protocols}` : ''}\n`);
  if (d.mtaSts) out(`      MTA-STS policy of ${d.mtaSts.domain}: mode ${d.mtaSts.mode}, mx ${d.mtaSts.mx.join(', ')}\n`);
  if (asked.some((q) => q.startsWith('_mta-sts.'))) out(`      (postern_mta_sts = yes: an MTA-STS policy found there would decide the level)\n`);
  wouldAsk('      ');
  if (d.level !== 'dane' && d.level !== 'dane-only') return;
  // DANE is decided per server address: the MX hosts, then their TLSA records.
  const servers = await resolveDestination(dest, { resolver, mxAddressLimit: c.int(pfx + 'mx_address_limit'), ipv4: true, ipv6: true, myhostname: c.get('myhostname'), native: false, random: Math.random });
  if (!Array.isArray(servers)) {
    wouldAsk('      ');
    if (!useDns) {
      const port = dest.kind === 'inet' ? dest.port : 25;
      out(`      then TLSA records _${port}._tcp.HOST of each ${mxLookup ? 'MX host' : 'host'} (DNSSEC-validated)\n`);
    } else {
      out(`      MX/address lookup: ${servers.status}: ${servers.dsn} ${servers.text}\n`);
    }
    return;
  }
  for (const sv of servers) {
    const h = await policy.forHost(d, sv.host, sv.addr, sv.port);
    if (isRefusal(h)) out(`      ${sv.host}[${sv.addr}]:${sv.port}: deferred: ${h.dsn} ${h.refuse}\n`);
    else out(`      ${sv.host}[${sv.addr}]:${sv.port}: level ${h.level}${h.tlsa ? ` (${h.tlsa.length} usable TLSA records)` : ''}\n`);
    wouldAsk('        ');
  }
}

export async function explainAddress(configDir: string, a: ExplainArgs, out: (s: string) => void): Promise<number> {
  const { config, masterCf } = loadConfig(configDir);
  const lookups = new LookupLog(config.configDir, out);
  traceMapsLookups(lookups.add);
  try {
    const tr = await TrivialRewrite.open(config);
    lookups.discard(); // opening tables is not a decision
    out(`address: ${a.target}\n`);
    const canon = a.target === '' ? '' : tr.rewrite(a.target);
    out(`canonical rewrite (trivial-rewrite): ${canon === a.target ? 'unchanged' : canon}\n`);
    const sender = a.sender === '' ? '' : tr.rewrite(a.sender);

    if (a.client) {
      const sc = serviceConfig(config, masterCf, a.service, 'smtpd');
      const client: ExplainClient = { addr: a.client.addr, name: a.client.name, helo: a.helo, sender: a.sender, saslUser: a.sasl, service: sc.entry?.service ?? 'smtp', useDns: a.dns };
      const str = sc.config === config ? tr : await TrivialRewrite.open(sc.config);
      lookups.discard();
      await explainSmtpd(sc.config, str, client, a.target, out, lookups.flush);
    } else {
      out('smtpd restrictions: not evaluated (give --client IP[,NAME], and --sender, --helo)\n');
    }

    // cleanup: the envelope mapping, through cleanup's own code.
    out(`cleanup address mapping (sender <${sender}>):\n`);
    const tables = await cleanupTables(config, async () => tr);
    lookups.discard();
    const env = new CleanupEnvelope(addressMappingTables(tables), 'explain', true);
    let finalSender = sender;
    try {
      finalSender = await env.sender(sender);
      lookups.flush('    ');
      if (finalSender !== sender) out(`  sender rewritten to <${finalSender}>\n`);
      await env.recipient({ address: canon, orig: a.target });
      await env.finish();
    } catch (e) {
      lookups.flush('    ');
      out(`  cleanup would not accept the message: ${(e as Error).message}\n`);
      return 0;
    }
    lookups.flush('    ');
    const rcpts = env.out.map((r) => r.address);
    out(`  recipients after mapping: ${rcpts.map((r) => `<${r}>`).join(', ') || '(none)'}\n`);

    for (const r of env.out) {
      out(`recipient <${r.address}>${r.notify ? ' (BCC, no DSN)' : ''}:\n`);
      const reply = await tr.resolve(r.address, finalSender);
      const rl = reply; // the reply is a copy: safe to keep
      lookups.flush('    ');
      for (const w of rl.warnings) out(`  warning: ${w}\n`);
      out(`  address class: ${rl.class} (${CLASS_PARAM[rl.class]})\n`);
      const listParam = CLASS_LIST[rl.class];
      if (listParam) {
        const line = config.lineOf(listParam);
        out(`    ${listParam} = ${config.get(listParam)}${line > 0 ? ` (${config.file}, line ${line})` : ' (default)'}\n`);
      }
      if (rl.flags.error) out('  bad address syntax: would bounce\n');
      if (rl.flags.fail) out('  resolver failure (a table could not be read): would be deferred\n');
      if (rl.flags.routed) out('  routing operators (@ ! %) remain in the local part\n');
      if (rl.relocated) out(`  relocated_maps: user has moved to ${rl.relocated}\n`);
      out(`  transport: ${rl.transport}, nexthop: ${rl.nexthop}, recipient: ${rl.recipient}\n`);
      const verdict = await tr.checkRecipient(rl).catch((e: Error) => ({ ok: false as const, code: 451, dsn: '4.3.0', text: `table lookup failure: ${e.message}`, paramName: '' }));
      lookups.flush('    ');
      out(verdict.ok ? '  smtpd recipient check: known (or not checked for this class)\n'
        : `  smtpd recipient check: ${verdict.code} ${verdict.dsn} ${verdict.text}${verdict.paramName ? ` (${verdict.paramName})` : ''}\n`);
      if (rl.transport === 'error' || rl.transport === 'retry') {
        out(`  delivery: ${rl.transport === 'error' ? 'bounced' : 'deferred'} with "${rl.nexthop}"\n`);
        continue;
      }
      const entry = masterCf.find((e) => e.service === rl.transport && e.type === 'unix')
        ?? masterCf.find((e) => e.service === rl.transport);
      if (!entry) { out(`  delivery: master.cf has no service "${rl.transport}": mail would stay deferred\n`); continue; }
      const ov = Object.entries(entry.overrides).map(([k, v]) => ` -o ${k}=${v}`).join('');
      out(`  delivery agent: master.cf ${entry.service} (${entry.file}, line ${entry.line}): ${entry.command}${ov}\n`);
      if (entry.command === 'smtp' || entry.command === 'lmtp') await explainTls(config, entry, rl.nexthop, a.dns, out, lookups);
    }
    return 0;
  } finally {
    traceMapsLookups(undefined);
  }
}

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const a = parseExplainArgs(args);
  const out = (s: string) => { process.stdout.write(s); };
  if (typeof a === 'string') { process.stderr.write(`postern explain: ${a}\n${USAGE}`); return 64; }
  if (!a.target.includes('@') && isQueueId(a.target)) return explainQueueId(ctx.configDir, a.target, out, a.log);
  return explainAddress(ctx.configDir, a, out);
}
