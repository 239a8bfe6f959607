/**
 * qmgr - the queue manager (Postfix qmgr(8), the "nqmgr" scheduler simplified to
 * per-transport/per-destination concurrency).
 *
 * SUMMARY
 *   const q = new Qmgr({ config, queue, resolver, agents, bounce });
 *   await q.start();  q.notify();  q.flush();  await q.stop();
 *   qmgrService(agents, { openRewrite, bounce }): ServiceImpl  (master.cf: qmgr unix n - n 300
 *       1 qmgr), calling the delivery agents of the table it is given, trivial-rewrite and bounce
 *       through their global/ contracts
 *
 * DESCRIPTION
 *   Messages move incoming → active → (agents) → removed | deferred (qmgr-active.ts). The active
 *   queue is bounded: at most qmgr_message_active_limit messages and about
 *   qmgr_message_recipient_limit in-memory recipients; beyond that, files wait on disk and the
 *   directory scans (qmgr-scan.ts, incremental opendir) pause where they are, so memory stays
 *   flat however many messages are queued. New mail is taken before deferred mail: a trigger
 *   naming the queue file cleanup just committed (notify(qid), from smtpd/pickup/qmqpd in this
 *   thread or passed on by the master from another thread or child process) admits that file
 *   at once without reading the directory; a bare trigger, or a change in `incoming` seen
 *   through fs.watch (other writers; one scan per WATCH_SCAN_DELAY_MS) starts a scan — no
 *   polling; the deferred queue is scanned every queue_run_delay (and on the master's wakeup) and a
 *   deferred file is admitted when its mtime (next retry time) has come. flush() (postqueue -f)
 *   scans the deferred queue ignoring retry times. Each message's recipients are resolved
 *   (trivial-rewrite), grouped by transport and nexthop in batches of
 *   <transport>_destination_recipient_limit (qmgr-message.ts), and scheduled with maxproc per
 *   transport and <transport>_destination_concurrency_limit per destination
 *   (qmgr-transport.ts). Results are recorded per recipient (qmgr-deliver.ts). A destination
 *   that an smtp/lmtp delivery could not reach at all is dead for minimal_backoff_time: its
 *   other entries are deferred without an attempt (qmgr-dead.ts); flush() revives it.
 *   At start, files left in `active` by a crash go back to `incoming`.
 *   Mail in `hold` is never scheduled.
 *
 * SECURITY
 *   Reads and renames queue files; talks to delivery agents in-process through CONTRACT 4.
 *
 * DIAGNOSTICS
 *   `QID: from=<s>, size=N, nrcpt=N (queue active)`, one delivery line per recipient,
 *   `QID: from=<s>, status=expired, returned to sender`, `QID: removed`.
 *
 * PARAMETERS
 *   queue_directory, hash_queue_depth, hash_queue_names, qmgr_message_active_limit,
 *   qmgr_message_recipient_limit, default_process_limit, default_destination_concurrency_limit,
 *   default_destination_recipient_limit, minimal_backoff_time, maximal_backoff_time,
 *   queue_run_delay, maximal_queue_lifetime, bounce_queue_lifetime, delay_warning_time
 */
import { existsSync, watch, type FSWatcher, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { MainConfig } from '../global/mail-conf.ts';
import { isQueueId, MailQueue } from '../global/mail-queue.ts';
import { QMGR_TRIGGER } from '../global/mail-trigger.ts';
import { entryLogName, type MasterEntry } from '../global/master-cf.ts';
import type { DeliveryAgent, DeliveryAgentFactory, DovecotSettingsView, RecipientResult } from '../global/deliver-request.ts';
import type { BounceClient, BounceClientFactory } from '../global/bounce-client.ts';
import type { ResolveOpener } from '../global/resolve-client.ts';
import { logger } from '../util/msg.ts';
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { QmgrScan } from './qmgr-scan.ts';
import { admitMessage, finishMessage, recoverActive, type ActiveSettings, removeUncommitted } from './qmgr-active.ts';
import type { QmgrEntry, QmgrMessage, Resolver } from './qmgr-message.ts';
import { QmgrScheduler, type TransportLimits } from './qmgr-transport.ts';
import { deliverEntry, recordResults, type DeliverContext } from './qmgr-deliver.ts';
import { DeadDestinations } from './qmgr-dead.ts';
import { TRACE_FLAGS_ATTR, VerifyCache, isVerifyProbe, probeRoutingConfig } from '../global/verify-client.ts';

const log = logger('qmgr');

/** Messages admitted (renamed, read, resolved) at the same time. */
const ADMIT_PARALLEL = 16;

/**
 * Queue IDs named by triggers, waiting for admission (in-process cleanup says which file it
 * committed, so qmgr takes that file without reading the directory). Beyond this many, a
 * trigger asks for a scan of incoming instead.
 */
const HINTS_MAX = 4096;
/**
 * A watch event on incoming/ (every create, write, chmod and rename of a file there) asks for a
 * scan this much later, once: mail from this process and its threads and children comes with
 * its queue ID through a trigger, so the watch is only the safety net for other writers.
 */
const WATCH_SCAN_DELAY_MS = 100;
/**
 * The same while triggers name new files (one came within this time): the events are then
 * mostly those files' own (create, write, chmod, rename), and a scan every 100 ms took files
 * from incoming before their trigger was read, with the look-ups a named file is spared
 * (qmgr-active.ts, `fresh`). Other writers' mail still waits at most this long.
 */
const WATCH_SCAN_DELAY_BUSY_MS = 1000;


export interface QmgrOptions {
  config: MainConfig;
  queue: MailQueue;
  resolver: Resolver;
  /** Resolves address verification probes (address_verify_* routing); default `resolver`. */
  probeResolver?: Resolver;
  /** Delivery agents by master.cf command name (smtp, lmtp, virtual, local, pipe, discard, error). */
  agents: ReadonlyMap<string, DeliveryAgent>;
  /**
   * Agents made for one master.cf entry with its own -o overrides, by service (transport) name
   * (loadTransportAgents()); a transport found here uses its own agent instead of `agents`'.
   */
  transportAgents?: ReadonlyMap<string, DeliveryAgent>;
  /** master.cf's entries, as the master parsed them (qmgr never reads master.cf itself). */
  masterEntries: readonly MasterEntry[];
  /** bounce/defer/trace (global/bounce-client.ts), made for this queue with qmgr's own wake-up. */
  bounce: BounceClientFactory;
  /** Watch `incoming` and `public/` for other processes' mail and triggers (default true). */
  watch?: boolean;
}

/** The queue of a configuration (queue_directory, hash_queue_depth, hash_queue_names). */
export function queueFromConfig(config: MainConfig): MailQueue {
  return MailQueue.fromConfig(config);
}

function intParam(config: MainConfig, name: string, fallback: number): number {
  try { const v = config.get(name).trim(); return /^-?\d+$/.test(v) ? Number(v) : fallback; } catch { return fallback; }
}

export class Qmgr {
  readonly queue: MailQueue;
  readonly bounce: BounceClient;
  private readonly opts: QmgrOptions;
  private readonly settings: ActiveSettings;
  private readonly incoming: QmgrScan;
  private readonly deferred: QmgrScan;
  private readonly scheduler: QmgrScheduler;
  private readonly services = new Map<string, MasterEntry>();
  private readonly ctx: DeliverContext;
  private readonly dead: DeadDestinations;
  private readonly abort = new AbortController();
  private readonly activeLimit: number;
  private readonly rcptLimit: number;
  /** default_filter_nexthop and myhostname, for a content filter without a nexthop. */
  private readonly filterNexthop: string;
  private readonly myhostname: string;
  private readonly active = new Set<QmgrMessage>();
  private rcptInMemory = 0;
  private loop: Promise<void> | undefined;
  private again = false;
  private stopping = false;
  private started = false;
  private timer: NodeJS.Timeout | undefined;
  private verifyTimer: NodeJS.Timeout | undefined;
  private watchers: FSWatcher[] = [];
  private finishing = new Set<Promise<void>>();
  private admitting = new Set<Promise<void>>();
  /** Queue IDs from triggers, admitted before the scans' next names (HINTS_MAX). */
  private hints: string[] = [];
  /** When the last trigger naming a queue file came (WATCH_SCAN_DELAY_BUSY_MS). */
  private lastHintAt = 0;
  private watchTimer: NodeJS.Timeout | undefined;
  /** Messages being admitted (counted against the active limits before they are active). */
  private reserved = 0;
  /** Peak number of messages in the active queue (for tests and benchmarks). */
  peakActive = 0;

  constructor(opts: QmgrOptions) {
    this.opts = opts;
    const c = opts.config;
    this.queue = opts.queue;
    this.bounce = opts.bounce(c, opts.queue, () => this.notify());
    this.settings = {
      minimalBackoffTime: c.time('minimal_backoff_time'),
      maximalBackoffTime: c.time('maximal_backoff_time'),
      maximalQueueLifetime: c.time('maximal_queue_lifetime'),
      bounceQueueLifetime: c.time('bounce_queue_lifetime'),
      delayWarningTime: c.time('delay_warning_time'),
    };
    this.activeLimit = Math.max(1, c.int('qmgr_message_active_limit'));
    this.rcptLimit = Math.max(1, c.int('qmgr_message_recipient_limit'));
    this.filterNexthop = c.get('default_filter_nexthop').trim();
    this.myhostname = c.get('myhostname');
    for (const e of opts.masterEntries) {
      if (e.type === 'unix' || e.type === 'pass') this.services.set(e.service, e);
    }
    this.incoming = new QmgrScan(this.queue, 'incoming');
    this.deferred = new QmgrScan(this.queue, 'deferred');
    this.dead = new DeadDestinations(c.time('minimal_backoff_time'), this.rcptLimit);
    this.ctx = {
      dead: this.dead,
      queue: this.queue,
      commandOf: (t) => this.services.get(t)?.command,
      agents: opts.agents,
      transportAgents: opts.transportAgents,
      logNameOf: (t) => transportLogName(this.services.get(t), t, c),
      verify: { cache: VerifyCache.forConfig(c), negativeCache: c.bool('address_verify_negative_cache') },
      signal: this.abort.signal,
    };
    this.scheduler = new QmgrScheduler((t) => this.limitsOf(t), (e) => this.runEntry(e));
  }

  private limitsOf(transport: string): TransportLimits {
    const e = this.services.get(transport);
    const maxproc = e ? e.maxproc : intParam(this.opts.config, 'default_process_limit', 100);
    return {
      processLimit: maxproc > 0 ? maxproc : Infinity,
      destinationConcurrency: intParam(this.opts.config, `${transport}_destination_concurrency_limit`,
        intParam(this.opts.config, 'default_destination_concurrency_limit', 20)),
    };
  }

  private recipientLimit(transport: string): number {
    return intParam(this.opts.config, `${transport}_destination_recipient_limit`,
      intParam(this.opts.config, 'default_destination_recipient_limit', 50));
  }

  async start(): Promise<void> {
    // Before recovering active (whose files are committed), drop what a dead writer left.
    await removeUncommitted(this.queue, Date.now() - process.uptime() * 1000 - 1000);
    const n = await recoverActive(this.queue);
    this.started = true;
    if (n) log.info(`moved ${n} message(s) from the active queue back to incoming after a restart`);
    if (this.opts.watch !== false) this.startWatching();
    const delay = this.opts.config.time('queue_run_delay');
    // Each queue run also rescans incoming: a file a watch event was missed for (or one left
    // in progress by a crash, taken after an hour) is never stranded.
    this.timer = setInterval(() => { this.scanDeferred(false); this.notify(); }, Math.max(1, delay) * 1000);
    this.timer.unref();
    // The address verification cache's cleanup (Postfix's verify(8) does it; qmgr writes the
    // results here, so it keeps the file small): at start, then every cleanup interval.
    const cleanup = this.opts.config.time('address_verify_cache_cleanup_interval');
    if (cleanup > 0) {
      this.cleanVerifyCache();
      this.verifyTimer = setInterval(() => this.cleanVerifyCache(), cleanup * 1000);
      this.verifyTimer.unref();
    }
    this.incoming.request();
    this.deferred.request();
    this.kick();
  }

  private cleanVerifyCache(): void {
    const c = this.opts.config;
    const cache = VerifyCache.forConfig(c);
    if (!existsSync(cache.path)) return;
    try {
      const r = cache.compact(c.time('address_verify_positive_expire_time') * 1000, c.time('address_verify_negative_expire_time') * 1000);
      log.info(`cache ${cache.path} full cleanup: retained=${r.retained} dropped=${r.dropped} entries`);
    } catch (e) {
      log.warn(`cache ${cache.path}: cleanup failed: ${(e as Error).message}`);
    }
  }

  private startWatching(): void {
    const onErr = (e: Error) => log.warn(`queue directory watch: ${e.message}`);
    try {
      const w = watch(join(this.queue.dir, 'incoming'), { persistent: false }, () => {
        if (this.watchTimer) return;
        const delay = Date.now() - this.lastHintAt < WATCH_SCAN_DELAY_BUSY_MS ? WATCH_SCAN_DELAY_BUSY_MS : WATCH_SCAN_DELAY_MS;
        this.watchTimer = setTimeout(() => { this.watchTimer = undefined; this.notify(); }, delay);
        this.watchTimer.unref();
      });
      w.on('error', onErr);
      this.watchers.push(w);
    } catch (e) { onErr(e as Error); }
    try {
      const w = watch(join(this.queue.dir, 'public'), { persistent: false }, (_ev, name) => {
        if (name === QMGR_TRIGGER) void this.readTrigger();
      });
      w.on('error', onErr);
      this.watchers.push(w);
    } catch (e) { onErr(e as Error); }
  }

  private async readTrigger(): Promise<void> {
    const p = join(this.queue.dir, 'public', QMGR_TRIGGER);
    const text = await fsp.readFile(p, 'utf8').catch(() => '');
    if (!text) return;
    await fsp.unlink(p).catch(() => {});
    // F = flush (postqueue -f), D = scan deferred (postsuper -H), I = new mail in incoming.
    if (text.includes('F')) this.flush();
    else { if (text.includes('D')) this.scanDeferred(false); this.notify(); }
  }

  /**
   * New mail in incoming (cleanup's "I" trigger). With the queue ID of the file cleanup just
   * committed, that file is admitted without a directory scan.
   */
  notify(queueId?: string): void {
    if (this.stopping || !this.started) return;
    if (queueId !== undefined && isQueueId(queueId) && this.hints.length < HINTS_MAX) {
      this.hints.push(queueId);
      this.lastHintAt = Date.now();
    } else this.incoming.request();
    this.kick();
  }

  /** postqueue -f: deliver all deferred mail now, ignoring retry times. */
  flush(): void {
    if (this.stopping || !this.started) return;
    this.dead.clear();
    this.incoming.request();
    this.deferred.request(true);
    this.kick();
  }

  /** Master wakeup (every 300 s by default): look at the deferred queue. */
  wakeup(): void { this.scanDeferred(false); }

  private scanDeferred(all: boolean): void {
    if (this.stopping || !this.started) return;
    this.deferred.request(all);
    this.kick();
  }

  private hasRoom(): boolean {
    const n = this.active.size + this.reserved;
    return n < this.activeLimit && (this.rcptInMemory < this.rcptLimit || n === 0);
  }

  private kick(): void {
    if (this.loop) { this.again = true; return; }
    this.loop = this.admitLoop().catch((e: unknown) => {
      log.error(`queue scan: ${(e as Error).message}`);
    }).finally(() => {
      this.loop = undefined;
      if (this.again && !this.stopping) { this.again = false; this.kick(); }
    });
  }

  /**
   * Take files from the scans while there is room. Admission (rename, read, resolve) of up to
   * ADMIT_PARALLEL messages overlaps, so the file system round trips of one message do not
   * serialise the whole queue; admitting messages count against the active limits.
   */
  private async admitLoop(): Promise<void> {
    this.again = false;
    while (!this.stopping && this.hasRoom()) {
      if (this.admitting.size >= ADMIT_PARALLEL) { await Promise.race(this.admitting); continue; }
      let qid = this.hints.shift();
      const fresh = qid !== undefined;
      qid ??= await this.incoming.next();
      let from: 'incoming' | 'deferred' = 'incoming';
      if (qid === undefined) { qid = await this.deferred.next(); from = 'deferred'; }
      if (qid === undefined) break;
      const p = this.admitOne(qid, from, this.deferred.flags.all, fresh);
      this.admitting.add(p);
      void p.finally(() => this.admitting.delete(p));
    }
    await Promise.all(this.admitting);
  }

  private async admitOne(qid: string, from: 'incoming' | 'deferred', ignoreTime: boolean, fresh: boolean): Promise<void> {
    this.reserved++;
    try {
      const msg = await admitMessage(this.queue, qid, from, { ignoreTime, now: Date.now(), fresh });
      if (msg) await this.activate(msg);
    } catch (e) {
      log.error(`${qid}: cannot take from ${from}: ${(e as Error).message}`);
    } finally {
      this.reserved--;
    }
  }

  private async activate(msg: QmgrMessage): Promise<void> {
    this.active.add(msg);
    this.rcptInMemory += msg.rcptCount;
    this.peakActive = Math.max(this.peakActive, this.active.size);
    const probe = isVerifyProbe(msg.qf.attr(TRACE_FLAGS_ATTR));
    const resolver = this.opts.probeResolver && probe ? this.opts.probeResolver : this.opts.resolver;
    // FILTER_README: the queue file's content filter replaces the route (never for probes).
    const filter = msg.qf.filter && !probe ? { filter: msg.qf.filter, defaultNexthop: this.filterNexthop, myhostname: this.myhostname } : undefined;
    const redirect = msg.qf.redirect && !probe ? msg.qf.redirect : undefined;
    const { entries, early } = await msg.assign(resolver, (t) => this.recipientLimit(t), filter, redirect);
    if (early.length) {
      const results: RecipientResult[] = early.map((e) => ({ ...e, relay: 'none' }));
      await recordResults(this.ctx, msg, 'qmgr', results);
    }
    msg.pending = entries.length;
    if (entries.length === 0) { this.finish(msg); return; }
    for (const e of entries) this.scheduler.enqueue(e);
  }

  private async runEntry(e: QmgrEntry): Promise<void> {
    await deliverEntry(this.ctx, e);
    if (--e.message.pending === 0) this.finish(e.message);
  }

  private finish(msg: QmgrMessage): void {
    const p = (async () => {
      try {
        if (this.stopping && msg.deferred) {
          // Shutting down: leave it in active; the next start moves it back to incoming.
          return;
        }
        await finishMessage(this.queue, this.bounce, this.settings, msg);
      } catch (e) {
        log.error(`${msg.queueId}: ${(e as Error).message}`);
      } finally {
        this.active.delete(msg);
        this.rcptInMemory -= msg.rcptCount;
        this.kick();
      }
    })();
    this.finishing.add(p);
    void p.finally(() => this.finishing.delete(p));
  }

  /** Resolves when nothing is active and no scan has anything left (for tests). */
  async idle(): Promise<void> {
    for (;;) {
      if (this.loop) await this.loop;
      await this.scheduler.idle();
      await Promise.all([...this.finishing]);
      if (!this.loop && this.active.size === 0 && !this.incoming.isRunning && !this.deferred.isRunning) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  get activeCount(): number { return this.active.size; }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    if (this.verifyTimer) clearInterval(this.verifyTimer);
    if (this.watchTimer) clearTimeout(this.watchTimer);
    for (const w of this.watchers) w.close();
    this.watchers = [];
    this.abort.abort();
    if (this.loop) await this.loop;
    await Promise.race([this.scheduler.idle(), new Promise((r) => setTimeout(r, 10_000).unref())]);
    await Promise.all([...this.finishing]);
    await this.incoming.close();
    await this.deferred.close();
  }
}

/** Every agent of `table` (master.cf command name → factory), made for this configuration. */
export async function loadAgents(config: MainConfig, masterCf: readonly MasterEntry[], table: Readonly<Record<string, DeliveryAgentFactory>>, dovecot?: DovecotSettingsView): Promise<Map<string, DeliveryAgent>> {
  const out = new Map<string, DeliveryAgent>();
  for (const [name, make] of Object.entries(table)) out.set(name, await make(config, masterCf, undefined, dovecot));
  return out;
}

/**
 * One agent per master.cf delivery entry that has `-o` overrides, by service name, made with
 * main.cf plus that entry's overrides (Postfix runs each master.cf entry as its own processes,
 * which read main.cf and then apply their -o options): `relay unix - - n - - smtp -o
 * smtp_tls_security_level=encrypt` gets an smtp(8) that requires TLS, while `smtp` keeps
 * main.cf's level. service_name and process_name are set as Postfix's daemons set them, so
 * `-o syslog_name=postfix/$service_name` expands. `base` is qmgr's configuration (main.cf; qmgr's own -o
 * overrides, rare, are under the entry's).
 */
export async function loadTransportAgents(base: MainConfig, masterCf: readonly MasterEntry[], table: Readonly<Record<string, DeliveryAgentFactory>>, dovecot?: DovecotSettingsView): Promise<Map<string, DeliveryAgent>> {
  const out = new Map<string, DeliveryAgent>();
  for (const e of masterCf) {
    if (e.type !== 'unix' || Object.keys(e.overrides).length === 0) continue;
    const make = table[e.command];
    if (!make) continue;
    const config = base.withOverrides({ service_name: e.service, process_name: e.command, ...e.overrides });
    out.set(e.service, await make(config, masterCf, e, dovecot));
  }
  return out;
}

/**
 * The service name delivery log lines carry for a transport: the transport name, or with
 * `-o syslog_name=prefix/name` on its entry the `name/command` Postfix logs (postfix/relay/smtp).
 */
export function transportLogName(entry: MasterEntry | undefined, transport: string, config: MainConfig): string {
  if (!entry || entry.overrides['syslog_name'] === undefined) return transport;
  const sn = config.withOverrides({ service_name: entry.service, process_name: entry.command, ...entry.overrides }).get('syslog_name');
  return entryLogName(entry, sn) ?? transport;
}

/**
 * master.cf `qmgr unix n - n 300 1 qmgr`, delivering through the agents of `table` (master.cf
 * command name → factory; a transport whose command is not in it defers with "mail transport
 * unavailable"). qmgr knows no agent: whoever starts it passes the table (the master its
 * registry of agents, a test its own), with the services qmgr is a client of: trivial-rewrite
 * and bounce (global/resolve-client.ts, global/bounce-client.ts).
 */
export function qmgrService(table: Readonly<Record<string, DeliveryAgentFactory>>, clients: { openRewrite: ResolveOpener; bounce: BounceClientFactory }): ServiceImpl {
  return {
    name: 'qmgr',
    async start(sctx) {
      const config = sctx.config;
      const queue = queueFromConfig(config);
      queue.ensureDirs();
      const resolver = await clients.openRewrite(config);
      const probeConfig = probeRoutingConfig(config);
      const probeResolver = probeConfig ? await clients.openRewrite(probeConfig) : undefined;
      const agents = await loadAgents(config, sctx.masterCf, table, sctx.dovecot);
      const transportAgents = await loadTransportAgents(config, sctx.masterCf, table, sctx.dovecot);
      const q = new Qmgr({ config, queue, resolver, probeResolver, agents, transportAgents, masterEntries: sctx.masterCf, bounce: clients.bounce });
      await q.start();
      // smtpd, pickup and qmqpd (through cleanup) name each queue file they commit, from this
      // thread or through the master (mail-trigger.ts); the watch on incoming/ covers other writers.
      const { onTrigger } = await import('../global/mail-trigger.ts');
      // "F" (postqueue -f, smtpd's ETRN): retry the deferred queue now; anything else is new mail.
      const off = onTrigger('qmgr', (what) => { if (what === 'F') q.flush(); else q.notify(what); });
      return {
        stop: async () => {
          off();
          await q.stop();
          for (const a of [...agents.values(), ...transportAgents.values()]) await a.close?.();
        },
        wakeup: () => q.wakeup(),
      };
    },
  };
}
