/**
 * postexplain-smtpd - the smtpd part of `postern explain ADDRESS`: a dry run of the
 * smtpd_*_restrictions for one client, HELO name, sender and recipient, through smtpd's own
 * SmtpdCheck (src/smtpd/smtpd-check.ts) — the object the smtpd service builds — with a
 * SmtpdState made up from the command line instead of a socket: connect, EHLO, MAIL FROM, RCPT
 * TO, then DATA and end of data (smtpd_data_restrictions, smtpd_end_of_data_restrictions) with
 * that one recipient.
 *
 * Each restriction evaluated is reported through SessionExtras.checkTrace (smtpd-check-reject.ts),
 * each table lookup through traceMapsLookups (global/maps.ts), so the output shows the
 * restriction, the table and key that decided, and the reply smtpd would send.
 *
 * What is not done for real:
 *   - DNS (reject_unknown_*, reject_rbl_client, ...): without --dns, every query is answered
 *     "not looked up" and listed as "would look up NAME TYPE"; such a restriction then gives
 *     the temporary-failure answer it gives when DNS fails. With --dns the resolver of
 *     postern_dns_servers (else the system's) is used, as by smtpd.
 *   - address verification (reject_unverified_*): no probe is sent; the verify service counts
 *     as unavailable.
 *   - check_policy_service IS asked (a policy server has no dry-run request); its socket must
 *     be reachable, e.g. the master running.
 */
import type { MainConfig } from '../global/mail-conf.ts';
import type { ResolveClient } from '../global/resolve-client.ts';
import type { MasterEntry } from '../global/master-cf.ts';
import { SmtpdCheck } from '../smtpd/smtpd-check.ts';
import type { CheckTraceEvent, SessionExtras } from '../smtpd/smtpd-check-reject.ts';
import type { SmtpdVerdict } from '../smtpd/smtpd-policy.ts';
import { DnsError, dnsResolverFromConfig, type DnsResolver } from '../util/dns-resolver.ts';
import type { DnsblResolver } from '../global/dnsbl.ts';

export interface ExplainClient {
  addr: string;
  name: string;
  helo?: string;
  sender: string;
  saslUser?: string;
  /** master.cf service whose -o overrides apply (smtp, submission, ...). */
  service: string;
  useDns: boolean;
}

/** A resolver that answers nothing and remembers what it was asked. */
export function noNetworkResolver(asked: string[]): DnsResolver & DnsblResolver {
  const no = (type: string) => async (name: string): Promise<never> => {
    asked.push(`${name} ${type}`);
    throw new DnsError('TEMP', name, type, 'not looked up: postern explain runs without DNS unless --dns is given');
  };
  return {
    resolveMx: no('MX'), resolve4: no('A'), resolve6: no('AAAA'), resolveTxt: no('TXT'), resolvePtr: no('PTR'),
    resolveTlsa: no('TLSA'), servers: [],
  } as DnsResolver & DnsblResolver;
}

/** The main.cf an smtpd of this master.cf service sees (main.cf + the entry's -o overrides). */
export function serviceConfig(config: MainConfig, masterCf: readonly MasterEntry[], service: string | undefined, command: string): { config: MainConfig; entry?: MasterEntry } {
  // Default: the first inet entry running the command (the "smtp" line, whatever its port).
  const entry = service === undefined
    ? masterCf.find((e) => e.type === 'inet' && e.command === command)
    : masterCf.find((e) => e.service === service && e.command === command) ?? masterCf.find((e) => e.service === service);
  return { config: entry ? config.withOverrides(entry.overrides) : config, entry };
}

function describeEvent(ev: CheckTraceEvent): string {
  const indent = '  '.repeat(ev.depth);
  const args = ev.args.length ? ` ${ev.args.join(' ')}` : '';
  const reply = ev.reply ? ` -> ${ev.reply.code} ${ev.reply.enh} ${ev.reply.text}` : '';
  return `${indent}${ev.restriction}${args}: ${ev.status}${reply}`;
}

/**
 * Run connect, HELO, MAIL and RCPT through SmtpdCheck as smtpd would, and write what each
 * stage decided. `lookups` is called to flush the table lookups made since the last call.
 */
export async function explainSmtpd(config: MainConfig, rewrite: ResolveClient, c: ExplainClient, recipient: string,
                                   out: (s: string) => void, lookups: (indent: string) => void): Promise<void> {
  const asked: string[] = [];
  const dns = c.useDns ? dnsResolverFromConfig(config) : noNetworkResolver(asked);
  const check = await SmtpdCheck.open(config, { rewrite, dns, rblDns: dns as DnsblResolver });
  const s: SessionExtras = {
    sessionId: 'explain', clientAddr: c.addr, clientPort: 0, clientName: c.name,
    serverAddr: '127.0.0.1', serverPort: 25, service: c.service, protocol: 'ESMTP', tls: false,
    errorCount: 0, junkCount: 0, messages: 0,
    ...(c.saslUser ? { saslUsername: c.saslUser, saslMethod: 'PLAIN' } : {}),
    // Lookups made while a restriction ran are printed right under it.
    checkTrace: (ev) => { out(`    ${describeEvent(ev)}\n`); lookups(`      ${'  '.repeat(ev.depth)}`); },
  };
  const show = (stage: string, v: SmtpdVerdict | undefined, okText: string): boolean => {
    lookups('      ');
    for (const q of asked.splice(0)) out(`      would look up ${q} (DNS not used: give --dns)\n`);
    if (v?.reply) {
      out(`  ${stage}: ${v.reply.code} ${v.reply.enh} ${v.reply.text}${v.restriction ? `  [${v.restriction}]` : ''}\n`);
      return v.reply.code >= 400;
    }
    if (v?.action) out(`  ${stage}: accepted, then ${v.action.toUpperCase()}${v.reason ? ` (${v.reason})` : ''}\n`);
    else out(`  ${stage}: ${okText}\n`);
    if (v?.prepend?.length) for (const h of v.prepend) out(`    PREPEND ${h}\n`);
    return false;
  };
  try {
    out(`smtpd restrictions (service ${c.service}, client ${c.name}[${c.addr}]${c.saslUser ? `, SASL user ${c.saslUser}` : ''}):\n`);
    const delay = config.bool('smtpd_delay_reject');
    if (delay) out('  smtpd_delay_reject = yes: the client, HELO and sender restrictions run again at RCPT\n');
    const mynet = await check.mynetworks(s);
    out(`  client ${mynet ? 'IS' : 'is not'} in mynetworks (${config.get('mynetworks') || '(empty)'})\n`);
    lookups('    ');
    if (show('CONNECT', await check.connect(s), delay ? 'nothing decided yet (delayed)' : '220 (accepted)')) return;
    const helo = c.helo ?? c.name;
    s.helo = helo;
    if (show(`EHLO ${helo}`, await check.helo(s, helo), delay ? 'nothing decided yet (delayed)' : '250')) return;
    s.tx = { sender: c.sender, senderArg: { address: c.sender, params: new Map(), utf8: false }, recipients: [], smtputf8: false, rcptCount: 0 };
    if (show(`MAIL FROM:<${c.sender}>`, await check.mail(s, c.sender), delay ? 'nothing decided yet (delayed)' : '250 2.1.0 Ok')) return;
    s.tx.rcptCount++;
    if (show(`RCPT TO:<${recipient}>`, await check.rcpt(s, recipient), '250 2.1.5 Ok')) return;
    // smtpd_data_restrictions and smtpd_end_of_data_restrictions, with this one recipient.
    s.tx.recipients.push({ address: recipient, orig: recipient, notify: 0 });
    if (show('DATA', await check.data(s), '354 End data with <CR><LF>.<CR><LF>')) return;
    show('END-OF-MESSAGE', await check.endOfData(s), '250 2.0.0 Ok: queued (the message itself is not checked here: header_checks, milters)');
  } finally {
    await check.close();
  }
}
