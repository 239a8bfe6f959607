/**
 * pickup - pickup(8), the local mail pickup service (Postfix src/pickup/pickup.c): moves mail
 * from the `maildrop` queue (written by sendmail(1)/postdrop) through cleanup(8) into
 * `incoming`.
 *
 * SUMMARY
 *   master.cf:  pickup  unix  n  -  y  60  1  pickup
 *   pickupService(cleanup) → the service; cleanup is the CleanupClient (global/cleanup-client.ts)
 *   the master passes in
 *
 * DESCRIPTION
 *   A scan of maildrop/ runs at start, at every master.cf `wakeup` (60 s), when something
 *   connects to the pickup socket (Postfix's trigger), and — so that mail moves at once —
 *   whenever a file-system watch on maildrop/ sees a new name. Scans never overlap; a request
 *   during a scan makes the scan go round again, and a scan repeats until a pass finds nothing.
 *
 *   Each file is checked with the strict local-submission allowlist (pickup-file.ts). Then,
 *   as Postfix's pickup_copy():
 *     QID: uid=UID from=<sender>                      (logged; QID is cleanup's new queue ID)
 *     Received: by $myhostname ($mail_name, from userid UID)
 *             id QID; DATE                           (prepended to the content)
 *   and the message goes through CleanupSession (missing From:/Date:/Message-Id: added, with
 *   the -F full name). The maildrop file is removed only after cleanup's commit (fsync +
 *   rename into incoming), so a crash in between can duplicate a message, never lose one.
 *
 *   Outcomes: corrupt file → moved to the `corrupt` queue with a warning; a symlink or a hard
 *   link → removed unread with a warning; a file without recipients → removed with a warning
 *   (Postfix ≥ 2.7 does the same); cleanup temporary failure (4xx) → the file stays and is
 *   tried again at the next scan; permanent rejection (5xx, e.g. message_size_limit) → moved
 *   to `corrupt` with a warning, since Postern has no bounce service yet to return it.
 *
 * SECURITY
 *   The maildrop directory is where local users' files come in: nothing in them is trusted
 *   (allowlist, O_NOFOLLOW, one link, record size limits). The submitting uid comes from the
 *   file's owner, never from its contents.
 *
 * DIAGNOSTICS
 *   `postern/pickup[pid]: QID: uid=0 from=<root>`; warnings as
 *   `warning: maildrop/ID: uid=N: unexpected or malformed record type 'D' at offset 120`.
 *
 * PARAMETERS
 *   queue_directory, line_length_limit, myhostname, mail_name, hash_queue_depth,
 *   hash_queue_names; cleanup's (myorigin, header_size_limit, message_size_limit,
 *   always_add_missing_headers)
 */
import { ContentReader } from '../global/queue-content.ts';
import { watch, promises as fsp, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { MainConfig } from '../global/mail-conf.ts';
import { isQueueId, MailQueue } from '../global/mail-queue.ts';
import { mailDate } from '../global/mail-date.ts';
import { cleanupSettings, type CleanupClient, type CleanupOpenOptions, type CleanupSettings, type CleanupStream } from '../global/cleanup-client.ts';
import { ATTR_FULL_NAME, ATTR_RWR_CONTEXT } from '../global/maildrop.ts';
import { logger, type Logger } from '../util/msg.ts';
import type { RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import { MaildropError, openMaildropFile, type MaildropFile } from './pickup-file.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;

export type PickupOutcome = 'queued' | 'kept' | 'corrupt' | 'removed' | 'gone';

export interface PickupOptions {
  queue: MailQueue;
  cleanup: CleanupSettings;
  /** The cleanup service (global/cleanup-client.ts), passed in by the master or the command. */
  cleanupClient: CleanupClient;
  myhostname: string;
  mailName: string;
  lineLimit: number;
  log?: Logger;
}

export function pickupOptions(config: MainConfig, cleanupClient: CleanupClient, log?: Logger): PickupOptions {
  return {
    queue: MailQueue.fromConfig(config),
    cleanup: cleanupSettings(config),
    cleanupClient,
    myhostname: config.get('myhostname'),
    mailName: config.get('mail_name') || 'Postern',
    lineLimit: config.int('line_length_limit') || 2048,
    log,
  };
}

export class Pickup {
  private o: PickupOptions;
  private log: Logger;
  private running: Promise<number> | undefined;
  private again = false;

  constructor(o: PickupOptions) {
    this.o = o;
    this.log = o.log ?? logger('pickup');
  }

  get maildrop(): string { return this.o.queue.dirOf('maildrop', ''); }

  /** New settings (reload); they apply from the next file on. One Pickup per maildrop, so scans never overlap. */
  configure(o: PickupOptions): void {
    this.o = o;
    this.log = o.log ?? logger('pickup');
  }

  /**
   * Scan maildrop until a pass finds nothing; resolves with the number of files handled.
   * A call during a scan makes that scan go round once more and shares its promise.
   */
  scan(): Promise<number> {
    if (this.running) { this.again = true; return this.running; }
    this.running = (async () => {
      let total = 0;
      try {
        for (;;) {
          this.again = false;
          const n = await this.pass();
          total += n;
          if (n === 0 && !this.again) break;
        }
      } finally {
        this.running = undefined;
      }
      return total;
    })();
    return this.running;
  }

  /** Resolves when no scan is running. */
  async idle(): Promise<void> {
    await this.running?.catch(() => 0);
  }

  private async pass(): Promise<number> {
    let names: string[];
    try {
      names = await fsp.readdir(this.maildrop);
    } catch (e) {
      this.log.warn(`scan ${this.maildrop}: ${(e as Error).message}`);
      return 0;
    }
    let handled = 0;
    for (const id of names) {
      if (!isQueueId(id)) continue; // temporary files of a sendmail still writing, or garbage
      const r = await this.pickupFile(id);
      if (r !== 'kept' && r !== 'gone') handled++;
    }
    return handled;
  }

  /** Handle one maildrop file (exported for tests). */
  async pickupFile(id: string): Promise<PickupOutcome> {
    const path = join(this.maildrop, id);
    let uid = -1;
    try { uid = (await fsp.lstat(path)).uid; } catch { return 'gone'; }
    const where = `maildrop/${id}: uid=${uid}`;
    let f: MaildropFile;
    try {
      f = await openMaildropFile(path, this.o.lineLimit, where);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
      if (e instanceof MaildropError && e.kind === 'unsafe') {
        try {
          await fsp.unlink(path);
        } catch (u) {
          // A directory, or no permission: leave it for the administrator (Postfix leaves garbage too).
          this.log.warn(`${e.message}; cannot remove it: ${(u as Error).message}`);
          return 'kept';
        }
        this.log.warn(`${e.message}; removed`);
        return 'removed';
      }
      if (e instanceof MaildropError) return this.toCorrupt(id, e.message);
      this.log.warn(`${where}: open: ${(e as Error).message}`);
      return 'kept';
    }
    try {
      return await this.copy(id, path, f, where);
    } finally {
      await f.fh.close().catch(() => {});
    }
  }

  private async toCorrupt(id: string, why: string): Promise<PickupOutcome> {
    this.log.warn(`${why}; moved to the corrupt queue`);
    try {
      await this.o.queue.move(id, 'maildrop', 'corrupt');
    } catch (e) {
      this.log.warn(`maildrop/${id}: cannot move to the corrupt queue: ${(e as Error).message}`);
      return 'kept';
    }
    return 'corrupt';
  }

  private async copy(id: string, path: string, f: MaildropFile, where: string): Promise<PickupOutcome> {
    for (const a of f.ignoredAttrs) this.log.warn(`${where}: ignoring attribute record: ${a}`);
    if (f.recipients.length === 0) {
      this.log.warn(`${where}: no recipients: message discarded`);
      await fsp.unlink(path).catch(() => {});
      return 'removed';
    }
    // Protect against time-warped time stamps (pickup.c pickup_copy()).
    const now = Date.now();
    let mtime = f.st.mtimeMs;
    if (mtime > now + 2 * HOUR) {
      this.log.warn(`${id}: message ${path} dated ${Math.round((mtime - now) / 1000)} seconds into the future`);
      mtime = now;
    } else if (mtime < now - DAY) {
      this.log.warn(`${id}: message ${path} has been queued for ${Math.floor((now - mtime) / DAY)} days`);
    }
    const attrs: Record<string, string> = {};
    for (const [k, v] of f.attrs) if (k !== ATTR_FULL_NAME) attrs[k] = v;
    if (!attrs[ATTR_RWR_CONTEXT]) attrs[ATTR_RWR_CONTEXT] = 'local';
    const opts: CleanupOpenOptions & { fullname?: string } = { sender: f.sender, attrs, addMissingHeaders: true, nonSmtpdMilters: true, origin: 'local' };
    // content_filter (FILTER_README): pickup records it like smtpd and qmqpd.
    const filter = this.o.cleanup.config?.get('content_filter').trim();
    if (filter) opts.filter = filter;
    const fullname = f.attrs.get(ATTR_FULL_NAME);
    if (fullname) opts.fullname = fullname;
    let c: CleanupStream;
    try {
      c = await this.o.cleanupClient.open(this.o.cleanup, this.o.queue, opts);
    } catch (e) {
      this.log.warn(`${where}: cannot open a queue file: ${(e as Error).message}`);
      return 'kept';
    }
    try {
      for (const r of f.recipients) c.addRecipient(r.notify ? { address: r.address, notify: r.notify } : { address: r.address });
      this.log.info(`${c.queueId}: uid=${f.st.uid} from=<${f.sender}>`);
      await c.write(Buffer.from(`Received: by ${this.o.myhostname} (${this.o.mailName}, from userid ${f.st.uid})\n\tid ${c.queueId}; ${mailDate(new Date(mtime))}\n`, 'utf8'));
      await this.copyContent(f, c);
    } catch (e) {
      await c.abort();
      this.log.warn(`${where}: read error: ${(e as Error).message}`);
      return 'kept';
    }
    const res = await c.finish();
    if ('reject' in res) {
      const r = res.reject;
      if (r.code >= 500) return this.toCorrupt(id, `${where}: message rejected by cleanup: ${r.code} ${r.enh} ${r.text} (no bounce service yet)`);
      this.log.warn(`${where}: error writing ${c.queueId}: ${r.code} ${r.enh} ${r.text}; will retry`);
      return 'kept';
    }
    await fsp.unlink(path).catch((e: Error) => this.log.warn(`remove ${path}: ${e.message}`));
    return 'queued';
  }

  /** The content records (checked by openMaildropFile: N and L only) as LF text. */
  private async copyContent(f: MaildropFile, c: CleanupStream): Promise<void> {
    const r = new ContentReader(f.fh, f.contentOffset, f.st.size);
    let first = true;
    for (let chunk = await r.next(); chunk; chunk = await r.next()) {
      if (first) {
        first = false;
        // pickup.c: content that starts with white space would continue our Received: header.
        if (chunk[0] === 0x20 || chunk[0] === 0x09) await c.write(Buffer.from('\n'));
      }
      await c.write(chunk);
    }
  }

}

/** The master.cf `pickup` service, writing through `cleanup` (the master passes it in). */
export function pickupService(cleanup: CleanupClient): ServiceImpl {
  return {
    name: 'pickup',
    async start(ctx: ServiceContext): Promise<RunningService> {
      const p = new Pickup(pickupOptions(ctx.config, cleanup, ctx.log));
      let watcher: FSWatcher | undefined;
      let stopped = false;
      const kick = (): void => {
        if (stopped) return;
        p.scan().catch((e: unknown) => ctx.log.error(`scan: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`));
      };
      const startWatch = (): void => {
        watcher?.close();
        watcher = undefined;
        try {
          watcher = watch(p.maildrop, { persistent: false }, () => kick());
          watcher.on('error', (e) => { ctx.log.warn(`watch ${p.maildrop}: ${e.message}; relying on wakeup`); watcher?.close(); watcher = undefined; });
        } catch (e) {
          ctx.log.warn(`watch ${p.maildrop}: ${(e as Error).message}; relying on the ${ctx.entry.wakeup}s wakeup`);
        }
      };
      // A connection to the pickup socket is a trigger (Postfix postdrop → public/pickup).
      for (const l of ctx.listeners) l.accept((sock) => { sock.on('error', () => {}); sock.resume(); sock.end(); kick(); });
      startWatch();
      kick();
      return {
        wakeup: kick,
        async reload(next: ServiceContext) {
          p.configure(pickupOptions(next.config, cleanup, next.log));
          startWatch();
          kick();
        },
        async stop() {
          stopped = true;
          watcher?.close();
          await p.idle();
        },
      };
    },
  };
}
