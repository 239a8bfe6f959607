/**
 * mail-params-computed - the main.cf defaults that are not text but computed from the machine and
 * the rest of the configuration, as Postfix computes them (global/mail_params.c check_myhostname,
 * check_mydomainname; global/mynetworks.c; util/inet_addr_local.c): myhostname, mydomain,
 * mynetworks, and the values the running program supplies (config_directory, process_id,
 * mail_name...). Their entry in the table (mail-params.ts) holds ''; postconf -d prints the
 * result computed here.
 */
import { availableParallelism, hostname, networkInterfaces } from 'node:os';
import { POSTERN_MAIL_NAME, POSTERN_MAIL_VERSION } from './mail-params.ts';

/**
 * What a computed default may ask of the configuration it belongs to: the expanded value of
 * another parameter, or the expanded main.cf setting (undefined when main.cf does not set it).
 */
export interface DefaultContext {
  get(name: string): string;
  setting(name: string): string | undefined;
  configDir: string;
}

/** Parameters whose default is computed, and how. */
export const COMPUTED: Readonly<Record<string, (c: DefaultContext) => string>> = {
  myhostname: (c) => defaultMyHostname(hostname(), c.setting('mydomain')),
  mydomain: (c) => defaultMyDomain(c.get('myhostname')),
  mynetworks: (c) => defaultMyNetworks(c.get('mynetworks_style')),
  config_directory: (c) => c.configDir,
  process_id: () => String(process.pid),
  process_name: () => 'postconf',
  mail_name: () => POSTERN_MAIL_NAME,
  mail_version: () => POSTERN_MAIL_VERSION,
  postern_process_count: () => String(defaultProcessCount()),
};

/**
 * postern_process_count default: one child per CPU but one, at least 1. The master's own
 * process keeps working beside the children (it accepts and hands connections over, answers
 * anvil, and runs qmgr with the delivery agents in a thread), so it is given the remaining CPU;
 * on a machine with one or two CPUs that makes 1, and everything runs in the master as before.
 */
export function defaultProcessCount(cpus: number = availableParallelism()): number {
  return Math.max(1, cpus - 1);
}

/** Postfix's default when a name is not a FQDN (DEF_MYDOMAIN). */
export const DEF_MYDOMAIN = 'localdomain';

/**
 * myhostname default (check_myhostname): the machine's name (gethostname(), never DNS); when it
 * has no dot, `.` + main.cf's mydomain (evaluated) or `.localdomain` is appended — so a main.cf
 * that sets only `mydomain = myoffice.space` on host `localhost` gives `localhost.myoffice.space`.
 */
export function defaultMyHostname(machineName: string = hostname(), mydomainSetting?: string): string {
  if (machineName.includes('.')) return machineName;
  return `${machineName}.${mydomainSetting ?? DEF_MYDOMAIN}`;
}

/**
 * mydomain default: $myhostname minus its first label, unless that would leave a bare top-level
 * domain, in which case $myhostname itself (the rule of the seed's Table 3: `myoffice.space`
 * gives `myoffice.space`); `localdomain` when myhostname has no dot.
 * NB this is where Postern differs from Postfix 3.7, whose check_mydomainname() always strips
 * the first label (`myoffice.space` gives `space`); the seed's rule is Postfix <= 2.2's. Set
 * `mydomain` in main.cf to get either value explicitly (docs/main-cf.md).
 */
export function defaultMyDomain(myhostname: string): string {
  const dot = myhostname.indexOf('.');
  if (dot < 0) return DEF_MYDOMAIN;
  const parent = myhostname.slice(dot + 1);
  // A trailing dot (`myoffice.space.`) is not a further label; `localdomain` (the default
  // myhostname of a machine without a domain, `vm.localdomain`) is Postfix's placeholder, kept.
  return parent.replace(/\.$/, '').includes('.') || parent.toLowerCase() === DEF_MYDOMAIN ? parent : myhostname;
}

export interface LocalAddress { address: string; family: 'IPv4' | 'IPv6'; prefix: number }

/** The machine's interface addresses, IPv4 first then IPv6, as Postfix's inet_addr_local() lists them. */
export function localAddresses(): LocalAddress[] {
  const v4: LocalAddress[] = [];
  const v6: LocalAddress[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const prefix = Number(a.cidr?.split('/')[1] ?? (a.family === 'IPv4' ? 32 : 128));
      const address = a.address.replace(/%.*$/, '');
      (a.family === 'IPv4' ? v4 : v6).push({ address, family: a.family, prefix });
    }
  }
  return [...v4, ...v6];
}

/**
 * mynetworks default (global/mynetworks.c): `host` → each interface address /32 or [addr]/128;
 * `subnet` → each interface's network; `class` → the IPv4 class A/B/C/D network (IPv6 as subnet).
 */
export function defaultMyNetworks(style: string, addrs: LocalAddress[] = localAddresses()): string {
  const s = style.trim().toLowerCase();
  if (s !== 'host' && s !== 'subnet' && s !== 'class') {
    throw new Error(`unknown mynetworks_style parameter value: ${style}`);
  }
  const out: string[] = [];
  for (const a of addrs) {
    if (a.family === 'IPv4') {
      let prefix = a.prefix;
      if (s === 'host') prefix = 32;
      else if (s === 'class') {
        const first = Number(a.address.split('.')[0]);
        prefix = first < 128 ? 8 : first < 192 ? 16 : first < 224 ? 24 : 4;
      }
      out.push(`${maskIPv4(a.address, prefix)}/${prefix}`);
    } else {
      const prefix = s === 'host' ? 128 : a.prefix;
      out.push(`[${maskIPv6(a.address, prefix)}]/${prefix}`);
    }
  }
  return out.join(' ');
}

function maskIPv4(addr: string, prefix: number): string {
  const n = addr.split('.').reduce((acc, o) => (acc * 256) + Number(o), 0);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const m = (n & mask) >>> 0;
  return [m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255].join('.');
}

/** Mask an IPv6 address and print it as inet_ntop does (RFC 5952: longest zero run → ::). */
export function maskIPv6(addr: string, prefix: number): string {
  const words = expandIPv6(addr);
  for (let i = 0; i < 8; i++) {
    const bits = Math.max(0, Math.min(16, prefix - i * 16));
    words[i] = words[i]! & (bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff);
  }
  return compressIPv6(words);
}

function expandIPv6(addr: string): number[] {
  let a = addr;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    a = a.slice(0, v4.index) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = a.includes('::') ? a.split('::') as [string, string] : [a, undefined];
  const h = head ? head.split(':').map((x) => parseInt(x, 16)) : [];
  const t = tail ? tail.split(':').map((x) => parseInt(x, 16)) : [];
  const fill = tail === undefined ? [] : new Array<number>(8 - h.length - t.length).fill(0);
  return [...h, ...fill, ...t];
}

function compressIPv6(w: number[]): string {
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
