/**
 * postdns - `postern dns DOMAIN`: the DNS records a mail domain needs, and a check of what is
 * published (the seed's deliverability checklist: PTR, MX, SPF, DKIM, DMARC, TLS certificate).
 * This file is the command (options, output, exit status); the records are lib-checklist/dns-plan.ts's,
 * the DNS queries of --check lib-checklist/dns-check.ts's.
 *
 * SYNOPSIS
 *   postern [-c CONFIG_DIR] dns DOMAIN [--selector S] [--dkim-key DIR] [--ip ADDR]...
 *                                      [--mta-sts] [--tls-rpt] [--check]
 *
 * DESCRIPTION
 *   Prints, in zone-file syntax (RFC 1035 §5.1, one record per line, absolute names), for DOMAIN
 *   and CONFIG_DIR/main.cf's myhostname:
 *     DOMAIN.                 MX    10 MYHOSTNAME.                       (RFC 5321 §5.1)
 *     MYHOSTNAME.             A/AAAA the host's public addresses          (when known, see below)
 *     DOMAIN.                 TXT   "v=spf1 mx [ip4:X ip6:Y] -all"       (RFC 7208)
 *     S._domainkey.DOMAIN.    TXT   "v=DKIM1; k=rsa; p=..."              (RFC 6376 §3.6.1)
 *     S-ed25519._domainkey.DOMAIN. TXT "v=DKIM1; k=ed25519; p=..."       (RFC 8463 §4)
 *     _dmarc.DOMAIN.          TXT   "v=DMARC1; p=none; rua=mailto:postmaster@DOMAIN" (RFC 7489 §6.3)
 *     _mta-sts.DOMAIN.        TXT   "v=STSv1; id=..."                    (--mta-sts, RFC 8461 §3.1)
 *     _smtp._tls.DOMAIN.      TXT   "v=TLSRPTv1; rua=mailto:..."         (--tls-rpt, RFC 8460 §3)
 *   and, as comments, the PTR records to ask the address's provider for; then the client set-up
 *   SRV records (RFC 6186, RFC 8314 §5.1: _submissions, _submission, _imaps, _imap, _pop3s,
 *   _pop3, and _autodiscover with postern_autoconfig = yes) from master.cf and dovecot.conf
 *   (postdns-srv.ts).
 *
 *   The host's addresses: every --ip ADDR; else main.cf's proxy_interfaces (the public address
 *   in front of a NAT, as Postfix uses it); else the addresses of inet_interfaces when it names
 *   addresses, or this machine's global (not loopback, link-local or private) addresses when it
 *   is `all`. With loopback-only (the default configuration) none is known: the A record is
 *   printed as a comment to fill in.
 *
 *   DKIM keys: exactly the keys Postern signs DOMAIN's mail with (the signing table:
 *   postern_dkim_signing_maps, else postern_dkim_key_directory = CONFIG_DIR/dkim, see
 *   lib-authres/dkim-sign-table.ts), then the rotated-out keys still to be published. Without a
 *   key the DKIM lines are a comment saying `postern dkim keygen DOMAIN`. --dkim-key DIR (the
 *   older form) uses DIR as the key directory and, when DOMAIN has no key there, makes one as
 *   `postern dkim keygen DOMAIN --selector S` does: DIR/DOMAIN.S.rsa.key (RSA 2048) and
 *   DIR/DOMAIN.S-ed25519.ed25519.key (PKCS#8 PEM, mode 0600). A key that cannot be used is
 *   reported on stderr (exit status 1).
 *
 *   --check asks the resolver of main.cf's postern_dns_servers (the system resolver when that
 *   is empty) and prints one line per record:
 *     WHAT NAME: OK|MISSING|MISMATCH|ERROR|WARNING - detail
 *   PTR: every host address (or, when none is known, the A/AAAA records of myhostname) must
 *   have a PTR naming myhostname whose own A/AAAA record lists that address again (the seed:
 *   "match myhostname with the PTR record, and check that the PTR has a matching A record").
 *   SIGNING: whether Postern signs DOMAIN's mail: postern_dkim_signing = yes and a usable key
 *   (the DKIM lines say whether DNS publishes each key's public half, p=, as it is).
 *   TLS: smtpd_tls_cert_file must exist, be valid now and name myhostname; a self-signed
 *   certificate is a WARNING (the checklist wants one from a CA), not a failure.
 *
 * EXIT STATUS
 *   0 printed (or, with --check, every required record is OK); 1 a record is missing, differs
 *   or could not be looked up; 64 usage error (a DOMAIN that is not a domain name included).
 */
import { isIP } from 'node:net';
import { publishedMtaSts } from '../global/mta-sts-policy.ts';
import { MainConfig } from '../global/mail-conf.ts';
import type { CliContext } from './cli-context.ts';
import { checkDomainName, dnsDkimKeys, hostAddresses, zoneText, type DnsDkimKeys } from './postdns-plan.ts';
import { checkSelector } from '../lib-authres/dkim-keys.ts';
import type { CheckLine } from './postdns-check.ts';
import { checkDepsFromConfig, checkPublished, formatCheck } from './postdns-check.ts';
import { clientSettings } from '../global/client-settings.ts';
import { loadMasterCf } from '../global/master-cf.ts';
import { loadDovecotConf } from '../global/dovecot-conf.ts';
import { clientSrvText } from './postdns-srv.ts';
import { signingCheck } from '../lib-checklist/domain-checklist.ts';

const EX_USAGE = 64;

// --check's SIGNING line is lib-checklist/domain-checklist.ts's signingCheck (shared with the web console).
const USAGE = 'usage: postern [-c CONFIG_DIR] dns DOMAIN [--selector S] [--dkim-key DIR] [--ip ADDR]... [--mta-sts] [--tls-rpt] [--check]';


export interface DnsArgs {
  domain: string;
  selector: string;
  dkimDir?: string;
  ips: string[];
  check: boolean;
  mtaSts: boolean;
  tlsRpt: boolean;
}

export function parseDnsArgs(args: string[]): DnsArgs {
  const o: DnsArgs = { domain: '', selector: 'postern', ips: [], check: false, mtaSts: false, tlsRpt: false };
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const val = () => { const v = args[++i]; if (v === undefined) throw new Error(`option ${a} needs a value`); return v; };
    if (a === '--selector') o.selector = val();
    else if (a === '--dkim-key') o.dkimDir = val();
    else if (a === '--ip') o.ips.push(val());
    else if (a === '--check') o.check = true;
    else if (a === '--mta-sts') o.mtaSts = true;
    else if (a === '--tls-rpt') o.tlsRpt = true;
    else if (a.startsWith('-') && a !== '-') throw new Error(`unknown option ${a}`);
    else pos.push(a);
  }
  if (pos.length !== 1) throw new Error('give exactly one DOMAIN');
  o.domain = pos[0]!.replace(/\.$/, '').toLowerCase();
  const bad = checkDomainName(o.domain) ?? checkSelector(o.selector);
  if (bad) throw new Error(bad);
  for (const ip of o.ips) if (isIP(ip.replace(/^\[(.*)\]$/, '$1')) === 0) throw new Error(`--ip ${JSON.stringify(ip)}: not an IPv4 or IPv6 address`);
  o.ips = o.ips.map((ip) => ip.replace(/^\[(.*)\]$/, '$1'));
  return o;
}

/** Where the output goes; tests capture it (the test runner owns process.stdout). */
export interface CliOutput {
  out: (s: string) => void;
  err: (s: string) => void;
}

export const STDIO: CliOutput = { out: (s) => { process.stdout.write(s); }, err: (s) => { process.stderr.write(s); } };

export async function main(args: string[], ctx: CliContext, io: CliOutput = STDIO): Promise<number> {
  let a: DnsArgs;
  try {
    a = parseDnsArgs(args);
  } catch (e) {
    io.err(`postern dns: ${(e as Error).message}\n${USAGE}\n`);
    return EX_USAGE;
  }
  let cf: MainConfig;
  let myhostname: string;
  try {
    cf = MainConfig.load(ctx.configDir);
    myhostname = cf.get('myhostname').toLowerCase();
  } catch (e) {
    io.err(`postern dns: ${(e as Error).message}\n`);   // ConfigError names the file and line
    return 1;
  }
  const badHost = checkDomainName(myhostname);
  if (badHost) io.err(`postern dns: warning: myhostname = ${myhostname} (${cf.file}): ${badHost}; other mail servers will not find this host\n`);
  const { addresses, source } = hostAddresses(cf, a.ips);
  const dir = a.dkimDir ?? cf.get('postern_dkim_key_directory');
  const say = (l: string) => io.err(l + '\n');
  let dk: DnsDkimKeys;
  try { dk = await dnsDkimKeys(cf, dir, a.domain, a.selector, a.dkimDir !== undefined, say); } catch (e) {
    io.err(`postern dns: ${(e as Error).message}\n`);
    return 1;
  }
  for (const p of dk.problems) io.err(`postern dns: ${p}\n`);
  let stsId: string | undefined;
  try { if (a.mtaSts) stsId = publishedMtaSts(cf).id; } catch (e) {
    io.err(`postern dns: ${(e as Error).message}\n`);
    return 1;
  }
  const plan = {
    domain: a.domain, myhostname, addresses, addressSource: source, dkim: dk.keys, mtaSts: a.mtaSts, tlsRpt: a.tlsRpt,
    // The id of the policy the HTTP service serves (global/mta-sts-policy.ts): same text, same id.
    ...(stsId ? { stsId } : {}),
    dkimHint: `DKIM: no key for ${a.domain} in ${dir}; run: postern dkim keygen ${a.domain}`,
  };
  if (!a.check) {
    io.out(zoneText(plan));
    try {
      const settings = clientSettings(cf, loadMasterCf(ctx.configDir), loadDovecotConf(ctx.configDir));
      const https = /(\d+)$/.exec(cf.list('postern_https_listen')[0] ?? '');
      io.out(clientSrvText(a.domain, settings, cf.get('postern_autoconfig') === 'yes' && https ? Number(https[1]) : undefined));
    } catch (e) {
      io.err(`postern dns: client set-up records left out: ${(e as Error).message}\n`);
    }
    return dk.problems.length > 0 ? 1 : 0;
  }
  const lines = await checkPublished({ ...plan, certFile: cf.get('smtpd_tls_cert_file') }, checkDepsFromConfig(cf));
  lines.push(signingCheck(cf, a.domain, dk));
  for (const l of lines) io.out(formatCheck(l) + '\n');
  const failed = lines.filter((l) => l.required && l.status !== 'OK');
  if (failed.length > 0) io.out(`postern dns: ${failed.length} of ${lines.length} checks failed; \`postern dns ${a.domain}\` prints the records to publish\n`);
  return failed.length > 0 ? 1 : 0;
}
