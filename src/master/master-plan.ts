/**
 * master-plan - from the configuration to the list of services the master runs, with the sockets
 * each one needs (Postfix master/master_ent.c reading master.cf; Dovecot's master reading
 * `protocols` and `service X { inet_listener Y { address port ssl } unix_listener P {} }`).
 *
 * master.cf: every entry whose command is in the registry becomes a service. inet entries listen
 * on "[host:]port" (no host = every address of inet_interfaces); unix and fifo entries on
 * $queue_directory/private/NAME or public/NAME (a fifo becomes a stream socket: Node cannot open
 * FIFOs as servers, and Postern's clients connect to sockets); unix-dgram and pass get no socket.
 *
 * dovecot.conf: each protocol of `protocols` maps to an implementation (imap → imapd, pop3 →
 * pop3d, lmtp → lmtpd, sieve → managesieve) with the inet listeners of `service imap-login` (or
 * `service imap`; for sieve `service managesieve-login`) etc.; when none are declared, Dovecot's
 * defaults (143/993, 110/995, 4190). `port = 0` disables a listener
 * (as in Dovecot), and so does `ssl = no` for every `ssl = yes` listener (Dovecot 2.3 binds
 * neither the default imaps/pop3s nor a declared one then: checked against the real Dovecot). Addresses are the listener's `address`, else `listen` (`*` = all IPv4,
 * `::` = all IPv6). Relative unix_listener paths are under `base_dir`.
 *
 * Commands Postern will never run are reported in one warning line; commands Postern implements
 * but this build does not have yet are reported in one info line. Neither is fatal.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import { POSTERN_SERVICES, inetEndpoint, type MasterEntry } from '../global/master-cf.ts';
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import { ConfigError } from '../global/config-error.ts';
import type { MainConfig } from '../global/mail-conf.ts';
import type { MasterConfigSet } from './master-config.ts';
import { dovecotAddress, hostAddresses, inetProtocols, interfaceAddresses, type IpVersions } from './master-listen.ts';
import { DOVECOT_DEFAULT_INET, DOVECOT_PROTOCOL_SERVICES, DOVECOT_SERVICE_NAMES, type ServiceRegistry } from './master-services.ts';

/** One socket to bind. `identity` is equal for two specs exactly when they are the same socket. */
export interface ListenSpec {
  kind: 'inet' | 'unix';
  name: string;
  ssl: boolean;
  /** inet: the IP addresses to bind (resolved from the host part, inet_interfaces or `listen`). */
  addresses?: string[];
  port?: number;
  /** unix: the socket file, and its mode. */
  path?: string;
  mode?: number;
  /** What the administrator changes when this socket cannot be bound. */
  where: string;
}

export interface ServicePlan {
  /** "smtp/inet", "cleanup/unix" (Postfix's service/type), or "dovecot/imap". */
  key: string;
  /** The implementation name: master.cf command or imapd/pop3d/lmtpd. */
  impl: string;
  entry: MasterEntry;
  protocol?: string;
  listens: ListenSpec[];
  /** Changes when anything this service sees changes (entry, main.cf, dovecot.conf). */
  fingerprint: string;
}

export interface Plan {
  services: ServicePlan[];
  /** "spawn(line 40)": commands Postern does not implement. */
  notImplemented: string[];
  /** "smtpd(line 12)": commands Postern implements but this build lacks (not in the registry). */
  notYetAvailable: string[];
}

function mainFingerprint(main: MainConfig): string {
  return main.explicitNames().map((n) => `${n}=${main.raw(n) ?? ''}`).join('\n');
}

function dovecotFingerprint(d: DovecotConfig): string {
  let text = '';
  try { text = readFileSync(d.file, 'latin1'); } catch { /* missing file: Postern's defaults */ }
  return JSON.stringify(d) + '\n' + text;
}

function hash(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

/**
 * Postfix's helper servers whose work Postern does inside other services (master-services.ts
 * builtInService): no socket, so nothing connects to a listener that never answers.
 */
const SOCKETLESS: ReadonlySet<string> = new Set(['tlsmgr', 'verify', 'flush', 'proxymap', 'showq', 'anvil', 'scache', 'postlogd']);

export function planServices(cfg: MasterConfigSet, registry: ServiceRegistry): Plan {
  const plan: Plan = { services: [], notImplemented: [], notYetAvailable: [] };
  const common = hash(mainFingerprint(cfg.main), dovecotFingerprint(cfg.dovecot));
  const queueDir = cfg.main.get('queue_directory');
  const protocols = inetProtocols(cfg.main.list('inet_protocols'));

  for (const e of cfg.masterCf) {
    const command = basename(e.command);
    const label = `${command}(line ${e.line})`;
    if (!Object.hasOwn(registry, command)) {
      if (POSTERN_SERVICES.has(command)) plan.notYetAvailable.push(label);
      else plan.notImplemented.push(label);
      continue;
    }
    const where = `${e.file}, line ${e.line}`;
    const listens: ListenSpec[] = [];
    if (e.type === 'inet') {
      const { host, port } = inetEndpoint(e);
      const addresses = host
        ? hostAddresses(host, protocols, `${where}: service "${e.service}"`)
        : interfaceAddresses(cfg.main.list('inet_interfaces'), protocols, `${cfg.main.configDir}/main.cf: inet_interfaces`);
      listens.push({
        kind: 'inet', name: e.service, ssl: false, addresses, port,
        where: `the service name "${e.service}" in ${where}${host ? '' : ' (or inet_interfaces in main.cf)'}`,
      });
    } else if ((e.type === 'unix' || e.type === 'fifo') && !SOCKETLESS.has(command)) {
      listens.push({
        kind: 'unix', name: e.service, ssl: false,
        path: join(queueDir, e.private ? 'private' : 'public', e.service),
        where: `queue_directory in main.cf or the service name "${e.service}" in ${where}`,
      });
    }
    plan.services.push({
      key: `${e.service}/${e.type}`, impl: command, entry: e, listens,
      fingerprint: hash(common, JSON.stringify(e.fields), JSON.stringify(listens)),
    });
  }

  mainCfServices(cfg, registry, plan, common, protocols);

  const d = cfg.dovecot;
  for (const proto of d.protocols) {
    if (proto === 'none' || proto === '') continue;
    const impl = DOVECOT_PROTOCOL_SERVICES[proto];
    const label = `${impl ?? proto}(${basename(d.file)} protocols)`;
    if (impl === undefined) { plan.notImplemented.push(label); continue; }
    if (!Object.hasOwn(registry, impl)) { plan.notYetAvailable.push(label); continue; }
    const listens = dovecotListens(proto, d, protocols);
    const entry: MasterEntry = {
      service: proto, type: 'inet', private: false, unpriv: true, chroot: false,
      wakeup: 0, wakeupIfUsed: false, maxproc: 0, command: impl, args: [], overrides: {},
      file: d.file, line: 0, fields: [],
    };
    plan.services.push({
      key: `dovecot/${proto}`, impl, entry, protocol: proto, listens,
      fingerprint: hash(common, proto, JSON.stringify(listens)),
    });
  }
  dovecotPolicyServices(d, registry, plan, common, protocols);
  return plan;
}

/**
 * Dovecot services that are not protocols: `service quota-status { executable = quota-status
 * -p postfix; inet_listener { port } }` runs Postern's quota-status (quota-status/) on its
 * listeners. Without a listener, or with another `-p` than postfix, it is reported and not run.
 */
function dovecotPolicyServices(d: DovecotConfig, registry: ServiceRegistry, plan: Plan, common: string, protocols: IpVersions): void {
  const svc = d.services.find((s) => s.name === 'quota-status');
  if (!svc) return;
  const exe = (svc.settings.executable ?? 'quota-status').trim().split(/\s+/);
  const where = `service quota-status in ${d.file}`;
  if (!/(^|\/)quota-status$/.test(exe[0] ?? '')) { plan.notImplemented.push(`${exe[0]}(${where})`); return; }
  const p = exe.indexOf('-p');
  if (p < 0 || exe[p + 1] !== 'postfix') {
    throw new ConfigError(d.file, 0, `${where}: executable = ${svc.settings.executable ?? ''}: quota-status needs "-p postfix" (the only protocol it speaks)`);
  }
  if (!Object.hasOwn(registry, 'quota-status')) { plan.notYetAvailable.push(`quota-status(${where})`); return; }
  const listens = dovecotListens('quota-status', d, protocols);
  if (listens.length === 0) return;
  const entry: MasterEntry = {
    service: 'quota-status', type: 'inet', private: false, unpriv: true, chroot: false,
    wakeup: 0, wakeupIfUsed: false, maxproc: 0, command: 'quota-status', args: [], overrides: {},
    file: d.file, line: 0, fields: [],
  };
  plan.services.push({
    key: 'dovecot/quota-status', impl: 'quota-status', entry, listens,
    fingerprint: hash(common, 'quota-status', JSON.stringify(listens)),
  });
}

/**
 * Postern's own services, planned from main.cf rather than master.cf: the HTTP service when
 * postern_http_listen or postern_https_listen names a listener (httpd/httpd.ts), the ACME
 * client when postern_acme_directory is set, the TLS-RPT sender when postern_tlsrpt_reporting = yes, the DMARC report sender when
 * postern_dmarc_reporting = yes. Listener items are master.cf service names
 * (`port`, `host:port`, `[host]:port`; no host = inet_interfaces).
 */
function mainCfServices(cfg: MasterConfigSet, registry: ServiceRegistry, plan: Plan, common: string, protocols: IpVersions): void {
  const file = `${cfg.main.configDir}/main.cf`;
  const synth = (service: string, impl: string): MasterEntry => ({
    service, type: 'inet', private: false, unpriv: true, chroot: false,
    wakeup: 0, wakeupIfUsed: false, maxproc: 0, command: impl, args: [], overrides: {}, file, line: 0, fields: [],
  });
  const add = (key: string, impl: string, listens: ListenSpec[]) => {
    if (!Object.hasOwn(registry, impl)) { plan.notYetAvailable.push(`${impl}(main.cf)`); return; }
    plan.services.push({ key, impl, entry: synth(key, impl), listens, fingerprint: hash(common, key, JSON.stringify(listens)) });
  };
  const inet = (param: string, name: string, ssl: boolean): ListenSpec[] => cfg.main.list(param).map((item) => {
    const { host, port } = inetEndpoint({ ...synth(item, 'httpd'), line: cfg.main.lineOf(param) });
    const addresses = host
      ? hostAddresses(host, protocols, `${file}: ${param}`)
      : interfaceAddresses(cfg.main.list('inet_interfaces'), protocols, `${file}: inet_interfaces`);
    return { kind: 'inet' as const, name, ssl, addresses, port, where: `"${item}" in ${param} in ${file}` };
  });
  const http = [...inet('postern_http_listen', 'http', false), ...inet('postern_https_listen', 'https', true)];
  if (http.length) add('postern/httpd', 'httpd', http);
  if (cfg.main.get('postern_acme_directory').trim()) add('postern/acme', 'acme', []);
  if (cfg.main.bool('postern_tlsrpt_reporting')) add('postern/tlsrpt', 'tlsrpt', []);
  if (cfg.main.bool('postern_dmarc_reporting')) add('postern/dmarcrep', 'dmarcrep', []);
}

function dovecotListens(proto: string, d: DovecotConfig, protocols: IpVersions): ListenSpec[] {
  const base = DOVECOT_SERVICE_NAMES[proto] ?? proto;
  const services = d.services.filter((s) => s.name === base || s.name === `${base}-login`);
  const out: ListenSpec[] = [];
  let inet = services.flatMap((s) => s.inetListeners.map((l) => ({ ...l, service: s.name })));
  if (inet.length === 0 && !services.some((s) => s.unixListeners.length > 0)) {
    inet = (DOVECOT_DEFAULT_INET[proto] ?? []).map((l) => ({ ...l, service: `${base}-login` }));
  }
  for (const l of inet) {
    if (!l.port) continue;                              // Dovecot: port = 0 disables the listener
    // Dovecot 2.3 (master service_create_inet_listeners): with `ssl = no` an `ssl = yes`
    // listener is not created at all, its defaults (imaps 993, pop3s 995) and explicit ones alike.
    if (l.ssl && d.ssl === 'no') continue;
    const list = 'address' in l && l.address && l.address.length > 0 ? l.address : d.listen;
    const addresses = list.flatMap((a) => dovecotAddress(a, protocols, `${d.file}: listen/address`));
    out.push({
      kind: 'inet', name: l.name, ssl: l.ssl, port: l.port, addresses: [...new Set(addresses)],
      where: `"port = ${l.port}" of inet_listener ${l.name} in service ${l.service} of ${d.file}`,
    });
  }
  const baseDir = d.get('base_dir') ?? '/var/run/dovecot';
  for (const s of services) {
    for (const u of s.unixListeners) {
      out.push({
        kind: 'unix', name: basename(u.path), ssl: false,
        path: isAbsolute(u.path) ? u.path : join(baseDir, u.path),
        ...(u.mode !== undefined && /^[0-7]{3,4}$/.test(u.mode) ? { mode: parseInt(u.mode, 8) } : {}),
        where: `unix_listener ${u.path} in service ${s.name} of ${d.file}`,
      });
    }
  }
  return out;
}

/** The socket identity: two specs with the same identity are the same bound socket. */
export function listenIdentity(s: ListenSpec): string {
  return s.kind === 'unix' ? `unix:${s.path}` : `inet:${(s.addresses ?? []).join(',')}|${s.port}|${s.ssl}`;
}
