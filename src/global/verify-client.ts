/**
 * verify-client - address verification (Postfix ADDRESS_VERIFICATION_README, verify(8) and
 * global/verify_clnt.c): the status cache every party shares, the query smtpd asks
 * (reject_unverified_sender / reject_unverified_recipient), the update qmgr makes with a probe's
 * result, and the probe itself (a message through cleanup, qmgr and the delivery agents).
 *
 * SUMMARY
 *   const v = new VerifyClient(config, VerifyCache.forConfig(config), probeSender(cleanup, queue, config, notify));
 *   const { status, text } = await v.query('user@example.com');   // VRFY.OK | DEFER | BOUNCE | TODO
 *   VerifyCache.forConfig(config).update(addr, VRFY.BOUNCE, 'host ... said: 550 ...');  // qmgr
 *
 * THE CACHE (address_verify_map; compact() every address_verify_cache_cleanup_interval, by qmgr)
 *   One line per change, `{"a":address,"s":status,"u":updated,"p":probed,"t":text}` (JSON),
 *   appended to a file every process and thread reads (smtpd in the master's thread, qmgr in its
 *   own, perhaps in child processes): the last line of an address wins. The file is the path of
 *   address_verify_map (default btree:$data_directory/verify_cache) with ".jsonl" appended;
 *   the table type is ignored (Postfix's btree/lmdb are not written by Postern). An empty
 *   address_verify_map is $data_directory/verify_cache too (Postfix: in memory only).
 *
 * QUERY (verify.c verify_query_service)
 *   No entry, or one older than address_verify_positive_expire_time (OK) or
 *   address_verify_negative_expire_time (others) while no probe is out: TODO, "Address
 *   verification in progress" (without address_verify_negative_cache the old entry is
 *   forgotten). Otherwise the entry answers. A probe is sent when the answer is older than
 *   address_verify_positive_refresh_time (OK) or address_verify_negative_refresh_time
 *   (undeliverable, deferred, in progress) and no probe for the address went out in the last
 *   PROBE_TTL (1000 s, as verify.c); the old answer stands until the probe's result arrives.
 *   At most address_verify_pending_request_limit probes are being queued at once.
 *
 * UPDATE (verify.c verify_update_service, global/verify.c verify_append)
 *   A result replaces the entry, except that a failure (undeliverable or deferred) never
 *   replaces a deliverable entry (the address stays good while the next hop has trouble, and
 *   is probed again at the next refresh), and that without address_verify_negative_cache
 *   failures are not written at all (logged "undeliverable-but-not-cached").
 *
 * PROBE
 *   A message from address_verify_sender ($double_bounce_sender, qualified with $myorigin; empty
 *   or <> = the null sender) to the address, with the queue file attribute trace_flags =
 *   DEL_REQ_FLAG_MTA_VRFY: qmgr routes it like any mail, with address_verify_transport_maps,
 *   address_verify_relayhost and the other address_verify_* routing parameters in place of
 *   transport_maps, relayhost, ... (probeRoutingConfig()); the
 *   smtp/lmtp agents stop after RCPT TO, and qmgr writes each recipient's result into the cache
 *   instead of bounce logs, then removes the probe. Probes are logged as deliverable /
 *   undeliverable / deferred.
 */
import { appendFileSync, closeSync, mkdirSync, openSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { MainConfig } from './mail-conf.ts';
import type { MailQueue } from './mail-queue.ts';
import type { CleanupClient } from './cleanup-client.ts';
import { cleanupSettings } from './cleanup-client.ts';

/** Postfix DEL_RCPT_STAT_*: the status of an address. */
export const VRFY = { OK: 0, DEFER: 1, BOUNCE: 2, TODO: 3 } as const;
export type VrfyStatus = (typeof VRFY)[keyof typeof VRFY];

/** Postfix DEL_REQ_FLAG_MTA_VRFY: the trace_flags bit of a verification probe. */
export const DEL_REQ_FLAG_MTA_VRFY = 0x100;
/**
 * Postfix DEL_REQ_FLAG_USR_VRFY: `sendmail -bv` — every recipient is verified (aliases
 * expanded), nothing delivered, and a "Mail Delivery Status Report" goes to the sender.
 */
export const DEL_REQ_FLAG_USR_VRFY = 0x200;
/** The queue file attribute that carries it (Postfix MAIL_ATTR_TRACE_FLAGS). */
export const TRACE_FLAGS_ATTR = 'trace_flags';

/** verify.c: the same address is probed again only after this long. */
export const PROBE_TTL_MS = 1000 * 1000;

export interface VerifyEntry { status: VrfyStatus; updated: number; probed: number; text: string }

/** Is a queue file (its trace_flags attribute) an address verification probe? */
export function isVerifyProbe(traceFlags: string | undefined): boolean {
  return traceFlags !== undefined && /^\d+$/.test(traceFlags) && (Number(traceFlags) & DEL_REQ_FLAG_MTA_VRFY) !== 0;
}

/** Is a queue file a `sendmail -bv` request (DEL_REQ_FLAG_USR_VRFY)? */
export function isUserVerify(traceFlags: string | undefined): boolean {
  return traceFlags !== undefined && /^\d+$/.test(traceFlags) && (Number(traceFlags) & DEL_REQ_FLAG_USR_VRFY) !== 0;
}

const caches = new Map<string, VerifyCache>();

/** The shared status file; reads pick up lines other processes appended since the last read. */
export class VerifyCache {
  readonly path: string;
  private readonly map = new Map<string, VerifyEntry>();
  private offset = 0;
  private partial = '';
  /** The file read so far (a compaction replaces it: read the new one from the start). */
  private ino = -1;

  private constructor(path: string) { this.path = path; }

  /** The cache of a configuration (one object per file in a process). */
  static forConfig(config: MainConfig): VerifyCache {
    const spec = config.get('address_verify_map').trim();
    const colon = spec.indexOf(':');
    const base = spec === '' ? `${config.get('data_directory')}/verify_cache` : colon > 0 ? spec.slice(colon + 1) : spec;
    const path = `${base}.jsonl`;
    let c = caches.get(path);
    if (!c) { c = new VerifyCache(path); caches.set(path, c); }
    return c;
  }

  /** The entry of an address (lower case), after reading what others wrote. */
  get(addr: string): VerifyEntry | undefined {
    this.refresh();
    return this.map.get(addr.toLowerCase());
  }

  put(addr: string, e: VerifyEntry): void {
    const a = addr.toLowerCase();
    this.map.set(a, e);
    mkdirSync(dirname(this.path), { recursive: true });
    appendFileSync(this.path, JSON.stringify({ a, s: e.status, u: e.updated, p: e.probed, t: e.text.slice(0, 1000) }) + '\n');
  }

  /**
   * A probe's result (qmgr; Postfix verify_append() and verify.c verify_update_service()).
   * 'not-cached': a failure with address_verify_negative_cache = no (logged by the caller as
   * "undeliverable-but-not-cached"). 'kept': a failure (undeliverable or deferred) for an
   * address cached as deliverable is ignored, so a probe that fails for a while (the next hop
   * is down) never turns a good address bad; the next query after the refresh time probes
   * again. Otherwise the result replaces what was there.
   */
  update(addr: string, status: VrfyStatus, text: string, negativeCache = true, now = Date.now()): 'updated' | 'kept' | 'not-cached' {
    if (status !== VRFY.OK) {
      if (!negativeCache) return 'not-cached';
      if (this.get(addr)?.status === VRFY.OK) return 'kept';
    }
    this.put(addr, { status, updated: now, probed: 0, text: text.replace(/[^\x20-\x7e]/g, '?') });
    return 'updated';
  }

  /** Forget an address (Postfix dict_cache_delete): a line that reads as "never probed". */
  forget(addr: string): void {
    this.put(addr, { status: VRFY.TODO, updated: 0, probed: 0, text: '' });
  }

  /**
   * address_verify_cache_cleanup_interval (verify.c verify_cache_cleanup()): rewrite the file
   * with the last entry of each address that has not expired (and recent probe marks), then
   * rename it into place; readers notice the new file and read it whole. A line another
   * process appends meanwhile is lost: at worst an address is probed once more.
   */
  compact(positiveExpireMs: number, negativeExpireMs: number, now = Date.now()): { retained: number; dropped: number } {
    this.refresh();
    const keep: string[] = [];
    let dropped = 0;
    for (const [a, e] of this.map) {
      // verify.c verify_cache_validator(): a probe in progress, or not expired.
      const live = now - e.probed < PROBE_TTL_MS
        || (e.updated > 0 && now - e.updated < (e.status === VRFY.OK ? positiveExpireMs : negativeExpireMs));
      if (!live) { dropped++; this.map.delete(a); continue; }
      keep.push(JSON.stringify({ a, s: e.status, u: e.updated, p: e.probed, t: e.text }) + '\n');
    }
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, keep.join(''));
    renameSync(tmp, this.path);
    const st = statSync(this.path);
    this.ino = st.ino;
    this.offset = st.size;
    this.partial = '';
    return { retained: keep.length, dropped };
  }

  private refresh(): void {
    let size: number;
    try {
      const st = statSync(this.path);
      size = st.size;
      if (st.ino !== this.ino || size < this.offset) { this.map.clear(); this.offset = 0; this.partial = ''; this.ino = st.ino; }
    } catch { return; }
    if (size === this.offset) return;
    const fd = openSync(this.path, 'r');
    try {
      const buf = Buffer.alloc(size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      const text = this.partial + buf.subarray(0, n).toString('utf8');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const l of lines) {
        try {
          const j = JSON.parse(l) as { a: string; s: VrfyStatus; u: number; p: number; t: string };
          // A line that is not what put() writes (a torn or edited file) is skipped.
          if (typeof j.a === 'string' && [0, 1, 2, 3].includes(j.s) && Number.isFinite(j.u) && Number.isFinite(j.p)) {
            this.map.set(j.a, { status: j.s, updated: j.u, probed: j.p, text: typeof j.t === 'string' ? j.t : '' });
          }
        } catch { /* a torn line: skipped */ }
      }
    } finally { closeSync(fd); }
  }
}

/** Sends one probe for an address. */
export type ProbeSender = (addr: string) => Promise<void>;

/** Postfix safe_ultostr(): digits of base 31 without vowels (no words in addresses). */
const SAFE_CHARS = '0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz';

/**
 * The probes' envelope sender (Postfix verify_sender_addr.c make_verify_sender_addr()):
 * address_verify_sender (`<>` or empty: the null sender), qualified with $myorigin; with
 * address_verify_sender_ttl > 0 its local part gets a time stamp (the time divided by the ttl, in
 * Postfix's base-31 digits), so that a sender whose probes get blocklisted changes over time.
 */
export function probeSenderAddress(config: MainConfig, now = Date.now()): string {
  let sender = config.get('address_verify_sender').trim();
  if (sender === '<>' || sender === '') return '';
  const ttl = config.time('address_verify_sender_ttl');
  if (ttl > 0) {
    let epoch = Math.floor(now / 1000 / ttl);
    let stamp = '';
    while (epoch > 0) { stamp = SAFE_CHARS[epoch % 31]! + stamp; epoch = Math.floor(epoch / 31); }
    const at = sender.indexOf('@');
    sender = at < 0 ? sender + stamp : sender.slice(0, at) + stamp + sender.slice(at);
  }
  return sender.includes('@') ? sender : `${sender}@${config.get('myorigin')}`;
}

/** Probes through cleanup, as smtpd submits mail: the queue file carries trace_flags. */
export function probeSender(cleanup: CleanupClient, queue: MailQueue, config: MainConfig, notify?: (qid: string) => void): ProbeSender {
  return async (addr) => {
    const sender = probeSenderAddress(config);
    const s = await cleanup.open(cleanupSettings(config, notify), queue, {
      sender, attrs: { [TRACE_FLAGS_ATTR]: String(DEL_REQ_FLAG_MTA_VRFY) }, addMissingHeaders: false, contentChecks: false,
    });
    s.addRecipient({ address: addr, orig: addr, notify: 0 });
    await s.write(Buffer.from(`Subject: address verification probe\n\n`));
    const r = await s.finish();
    if ('reject' in r) throw new Error(`probe for ${addr} refused by cleanup: ${r.reject.code} ${r.reject.text}`);
  };
}

/** smtpd's side: the status of an address, sending probes as verify(8) does. */
export class VerifyClient {
  private readonly cache: VerifyCache;
  private readonly send: ProbeSender;
  private readonly c: MainConfig;
  private pending = 0;

  constructor(config: MainConfig, cache: VerifyCache, send: ProbeSender) {
    this.c = config;
    this.cache = cache;
    this.send = send;
  }

  /**
   * Throws when the cache cannot be read or the probe cannot be queued (smtpd defers).
   * verify.c verify_query_service(), step by step (times in ms; `now` for tests).
   */
  async query(addr: string, now = Date.now()): Promise<{ status: VrfyStatus; text: string }> {
    const ms = (p: string) => this.c.time(p) * 1000;
    const negativeCache = this.c.bool('address_verify_negative_cache');
    const expired = (s: VrfyStatus, updated: number) =>
      updated + ms(s === VRFY.OK ? 'address_verify_positive_expire_time' : 'address_verify_negative_expire_time') < now;
    const refresh = (s: VrfyStatus, updated: number) =>
      updated + ms(s === VRFY.OK ? 'address_verify_positive_refresh_time' : 'address_verify_negative_refresh_time') < now;
    const e = this.cache.get(addr);
    let status: VrfyStatus;
    let probed: number;
    let updated: number;
    let text: string;
    if (!e || (now - e.probed > PROBE_TTL_MS && expired(e.status, e.updated))) {
      // Nothing usable (never probed, or expired and no probe out): in progress.
      status = VRFY.TODO; probed = 0; updated = 0; text = 'Address verification in progress';
      if (e && e.updated > 0 && !negativeCache) this.cache.forget(addr);
    } else {
      // A result (perhaps expired, while its refresh probe is out) or a probe in progress.
      ({ status, probed, updated, text } = e);
      if (status === VRFY.TODO) text = 'Address verification in progress';
    }
    // A new probe when the information needs refreshing and none is out (PROBE_TTL): the
    // answer above stands meanwhile. Without negative caching only a result is marked.
    if (now - probed > PROBE_TTL_MS && refresh(status, updated) && this.pending < Math.max(1, this.c.int('address_verify_pending_request_limit'))) {
      if (updated !== 0 || negativeCache) this.cache.put(addr, { status, updated, probed: now, text: status === VRFY.TODO ? '' : text });
      this.pending++;
      try { await this.send(addr); } finally { this.pending--; }
    }
    return { status, text };
  }
}

/** address_verify_* parameters that replace a routing parameter for probes (ADDRESS_VERIFICATION_README). */
const PROBE_ROUTING: readonly (readonly [string, string])[] = [
  ['transport_maps', 'address_verify_transport_maps'],
  ['relayhost', 'address_verify_relayhost'],
  ['default_transport', 'address_verify_default_transport'],
  ['local_transport', 'address_verify_local_transport'],
  ['virtual_transport', 'address_verify_virtual_transport'],
  ['relay_transport', 'address_verify_relay_transport'],
  ['sender_dependent_relayhost_maps', 'address_verify_sender_dependent_relayhost_maps'],
  ['sender_dependent_default_transport_maps', 'address_verify_sender_dependent_default_transport_maps'],
];

/**
 * The configuration probes are routed with (qmgr resolves probe recipients with it): each
 * routing parameter replaced by its address_verify_* counterpart, or undefined when none differs
 * (the defaults are the parameters themselves: $transport_maps, $relayhost, ...).
 */
export function probeRoutingConfig(config: MainConfig): MainConfig | undefined {
  const o: Record<string, string> = {};
  for (const [param, vparam] of PROBE_ROUTING) {
    const v = config.get(vparam);
    if (v !== config.get(param)) o[param] = v;
  }
  return Object.keys(o).length ? config.withOverrides(o) : undefined;
}
