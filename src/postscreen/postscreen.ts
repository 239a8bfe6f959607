/**
 * postscreen - postscreen(8)'s "before 220 greeting" tests, run for smtpd before its banner:
 * the PREGREET test (a client that talks before its turn is a bot) and the DNSBL score.
 *
 * SUMMARY
 *   const ps = postscreenSettings(config);            // throws ConfigError on bad syntax
 *   if (ps.enabled) {
 *     const v = await postscreen(sock, ps, { dns });
 *     if (!v.pass) return;                            // answered with 521 and closed
 *     ... v.enforce: every RCPT gets this reply (smtpd-policy.ts enforcePolicy)
 *   }
 *   ... start the session, THEN sock.resume()         // early bytes were pushed back
 *   openPostscreen: the same as the PostscreenOpener of global/postscreen-client.ts, the only
 *   contract smtpd knows; the master passes it in (postscreen knows no smtpd)
 *
 * DESCRIPTION
 *   As postscreen (psc_early.c): when postscreen_greet_banner is not empty, send "220-<banner>"
 *   first, the multi-line greeting trick that makes bad clients talk too early; then wait
 *   postscreen_greet_wait for the client to talk, while the DNSBL lookups of
 *   postscreen_dnsbl_sites run. Logging (service "postscreen"):
 *     CONNECT from [addr]:port to [addr]:port
 *     PREGREET 11 after 0.05 from [127.0.0.1]:12345: EHLO x\r\n
 *     DNSBL rank 3 for [addr]:port
 *     PASS NEW [addr]:port / PASS OLD [addr]:port / DISCONNECT [addr]:port
 *   Actions (postscreen_greet_action, postscreen_dnsbl_action):
 *     ignore   log only, go on (the bytes the client sent early are given back to smtpd)
 *     enforce  go on, but every RCPT gets "550 5.5.1 Protocol error" (PREGREET) or "550 5.7.1
 *              Service unavailable; client [addr] blocked using <domain>" (DNSBL)
 *     drop     "521 5.5.1 Protocol error" / "521 5.7.1 Service unavailable; client [addr]
 *              blocked using <domain>", then close
 *   A client that passed every test is remembered for postscreen_greet_ttl and skips the wait
 *   (postscreen's temporary allowlist); the cache is capped, least recently used first out.
 *
 *   The check is "enabled" when something would be enforced: postscreen_greet_action or
 *   postscreen_dnsbl_action is not "ignore" (Postfix enables postscreen in master.cf; Postern
 *   runs it inside smtpd, so a default configuration costs no greeting delay).
 *
 * SECURITY
 *   Runs before anything else on a new connection; reads at most what one read() delivers and
 *   logs at most 100 escaped characters of it.
 *
 * PARAMETERS
 *   postscreen_greet_action, postscreen_greet_wait, postscreen_greet_banner,
 *   postscreen_greet_ttl, postscreen_dnsbl_sites, postscreen_dnsbl_threshold,
 *   postscreen_dnsbl_action, postscreen_dnsbl_timeout
 */
import type { Socket } from 'node:net';
import type { MainConfig } from '../global/mail-conf.ts';
import { ConfigError } from '../global/config-error.ts';
import { dnsResolverFromConfig, type DnsResolver } from '../util/dns-resolver.ts';
import { logger } from '../util/msg.ts';
import type { PostscreenOpener, PostscreenVerdict } from '../global/postscreen-client.ts';
import { DnsblCache, dnsblScore, parseDnsblSites, type DnsblSite } from '../global/dnsbl.ts';

const log = logger('postscreen');

export type PostscreenAction = 'ignore' | 'enforce' | 'drop';

export interface PostscreenSettings {
  enabled: boolean;
  greetAction: PostscreenAction;
  greetWaitMs: number;
  /** postscreen_greet_banner; '' = no "220-" line. */
  greetBanner: string;
  greetTtlMs: number;
  dnsblSites: DnsblSite[];
  dnsblThreshold: number;
  dnsblAction: PostscreenAction;
  dnsblTimeoutMs: number;
}

function action(c: MainConfig, name: string): PostscreenAction {
  const v = c.get(name).trim().toLowerCase();
  if (v === 'ignore' || v === 'enforce' || v === 'drop') return v;
  throw new ConfigError(c.file, c.lineOf(name), `${name}: unknown action "${c.get(name)}": specify ignore, enforce or drop`);
}

/** Read the postscreen_* parameters; a bad value is a ConfigError naming file, line and parameter. */
export function postscreenSettings(c: MainConfig): PostscreenSettings {
  let sites: DnsblSite[];
  try { sites = parseDnsblSites(c.get('postscreen_dnsbl_sites')); } catch (e) {
    throw new ConfigError(c.file, c.lineOf('postscreen_dnsbl_sites'), (e as Error).message);
  }
  const greetAction = action(c, 'postscreen_greet_action');
  const dnsblAction = action(c, 'postscreen_dnsbl_action');
  return {
    enabled: greetAction !== 'ignore' || (sites.length > 0 && dnsblAction !== 'ignore'),
    greetAction,
    greetWaitMs: (c.time('postscreen_greet_wait') || 6) * 1000,
    greetBanner: c.get('postscreen_greet_banner'),
    greetTtlMs: c.time('postscreen_greet_ttl') * 1000,
    dnsblSites: sites,
    dnsblThreshold: c.int('postscreen_dnsbl_threshold') || 1,
    dnsblAction,
    dnsblTimeoutMs: (c.time('postscreen_dnsbl_timeout') || 10) * 1000,
  };
}

export interface PostscreenDeps {
  dns?: DnsResolver;
  cache?: PostscreenCache;
}

/** postscreen's temporary allowlist: clients that passed, until postscreen_greet_ttl. */
export class PostscreenCache {
  private readonly m = new Map<string, number>();
  private readonly max: number;
  private readonly dnsbl = new DnsblCache();
  constructor(max = 100_000) { this.max = max; }
  passed(addr: string, now = Date.now()): boolean {
    const until = this.m.get(addr);
    if (until === undefined) return false;
    if (until < now) { this.m.delete(addr); return false; }
    return true;
  }
  remember(addr: string, ttlMs: number, now = Date.now()): void {
    if (ttlMs <= 0) return;
    this.m.delete(addr);
    this.m.set(addr, now + ttlMs);
    if (this.m.size > this.max) this.m.delete(this.m.keys().next().value!);
  }
  get size(): number { return this.m.size; }
  get dnsblCache(): DnsblCache { return this.dnsbl; }
}

const sharedCache = new PostscreenCache();

/**
 * postscreen's temporary allowlist as the tests use it: the process's PostscreenCache, or (in a
 * worker process of the master's pool) the master's, asked over IPC (master/master-anvil.ts), so
 * that a client that passed with one worker is PASS OLD with every other, as Postfix's one
 * postscreen process and its postscreen_cache_map give.
 */
export interface PostscreenAllowlist {
  passed(addr: string): boolean | Promise<boolean>;
  remember(addr: string, ttlMs: number): void;
}
let allowlist: PostscreenAllowlist = sharedCache;
export function setPostscreenAllowlist(a: PostscreenAllowlist): void { allowlist = a; }
/** The process's own allowlist (what the master answers its workers from). */
export function sharedPostscreenCache(): PostscreenCache { return sharedCache; }

/** Postfix escape(): C escapes for control characters, \ooo for the rest. */
export function escapeBytes(b: Buffer): string {
  const names: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 92: '\\\\' };
  let s = '';
  for (const c of b) s += names[c] ?? (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\${c.toString(8).padStart(3, '0')}`);
  return s;
}

/** psc_format_delta_time(): seconds with two significant digits, at most 2 decimals. */
export function formatDelta(ms: number): string {
  const s = ms / 1000;
  const whole = Math.floor(s);
  const decimals = whole >= 10 ? 0 : whole >= 1 ? 1 : 2;
  const f = Math.floor(s * 10 ** decimals) / 10 ** decimals;
  return String(Number(f.toFixed(decimals)));
}

/**
 * Run the before-greeting tests on a new connection. Leaves the socket paused with any early
 * bytes pushed back: the caller attaches its reader and then calls sock.resume().
 */
export async function postscreen(sock: Socket, ps: PostscreenSettings, deps: PostscreenDeps = {}): Promise<PostscreenVerdict> {
  const cache = deps.cache ?? sharedCache;
  const allowed: PostscreenAllowlist = deps.cache ?? allowlist;
  const addr = (sock.remoteAddress ?? '').replace(/^::ffff:(?=\d)/, '');
  const who = `[${addr}]:${sock.remotePort ?? 0}`;
  log.info(`CONNECT from ${who} to [${(sock.localAddress ?? '').replace(/^::ffff:(?=\d)/, '')}]:${sock.localPort ?? 0}`);
  if (sock.destroyed) return { pass: false };
  sock.pause();
  if (await allowed.passed(addr)) {
    log.info(`PASS OLD ${who}`);
    return { pass: true };
  }
  const start = Date.now();
  const dnsbl = ps.dnsblSites.length > 0 && deps.dns
    ? dnsblScore(deps.dns, ps.dnsblSites, addr, { timeoutMs: Math.min(ps.dnsblTimeoutMs, ps.greetWaitMs), cache: cache.dnsblCache })
    : undefined;
  if (ps.greetBanner) sock.write(`220-${ps.greetBanner}\r\n`);

  // Wait for the greet time, or the first bytes from the client, or the end of the connection.
  const early = await new Promise<Buffer | 'closed' | undefined>((resolve) => {
    const done = (v: Buffer | 'closed' | undefined) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      sock.off('error', onClose);
      sock.pause();
      resolve(v);
    };
    const onData = (b: Buffer) => done(b);
    const onClose = () => done('closed');
    const timer = setTimeout(() => done(undefined), ps.greetWaitMs);
    sock.on('data', onData);
    sock.once('close', onClose);
    sock.once('error', onClose);
    sock.resume();
  });
  if (early === 'closed') {
    log.info(`HANGUP after ${formatDelta(Date.now() - start)} from ${who} in tests before SMTP handshake`);
    return { pass: false };
  }
  let enforce: PostscreenVerdict['enforce'];
  let failed = false;
  if (early) {
    failed = true;
    log.info(`PREGREET ${early.length} after ${formatDelta(Date.now() - start)} from ${who}: ${escapeBytes(early).slice(0, 100)}`);
    if (ps.greetAction === 'drop') return drop(sock, who, '521 5.5.1 Protocol error');
    if (ps.greetAction === 'enforce') enforce = { code: 550, enh: '5.5.1', text: 'Protocol error' };
    sock.unshift(early);
  }
  let score: number | undefined;
  if (dnsbl) {
    const r = await dnsbl;
    score = r.score;
    if (r.score >= ps.dnsblThreshold && r.domain) {
      failed = true;
      log.info(`DNSBL rank ${r.score} for ${who}`);
      const text = `Service unavailable; client [${addr}] blocked using ${r.domain}`;
      if (ps.dnsblAction === 'drop') return drop(sock, who, `521 5.7.1 ${text}`);
      if (ps.dnsblAction === 'enforce') enforce ??= { code: 550, enh: '5.7.1', text };
    }
  }
  if (!failed) {
    log.info(`PASS NEW ${who}`);
    allowed.remember(addr, ps.greetTtlMs);
  }
  return { pass: true, enforce, pregreet: early, dnsblScore: score };
}

function drop(sock: Socket, who: string, reply: string): PostscreenVerdict {
  sock.end(`${reply}\r\n`);
  log.info(`DISCONNECT ${who}`);
  return { pass: false };
}

/**
 * The PostscreenOpener of global/postscreen-client.ts, which the master passes to smtpd:
 * undefined when no test is enforced; the DNS resolver only when postscreen_dnsbl_sites is set.
 */
export const openPostscreen: PostscreenOpener = (config, deps) => {
  const ps = postscreenSettings(config);
  if (!ps.enabled) return undefined;
  const dns = ps.dnsblSites.length > 0 ? (deps.dns ?? dnsResolverFromConfig(config)) : undefined;
  return { screen: (sock) => postscreen(sock, ps, { dns }) };
};
