/**
 * imapd-notify - what a session does after NOTIFY SET (RFC 5465; cmd-notify.ts parses it):
 * pushes untagged STATUS for changes of other mailboxes (§5.1, §5.3-5.5), LIST for created,
 * deleted and renamed mailboxes and subscription changes (§5.6, §5.7), and EXISTS / EXPUNGE /
 * FETCH for the selected mailbox outside of commands (§5.2), as Dovecot 2.3's imap-notify.c.
 *
 * WHERE EVENTS COME FROM. The same signals IDLE uses (lib-storage/mail-notify.ts), never a poll:
 * MailUser.watchMailboxes hears every mailbox of the user changed by this process and its
 * threads (IMAP sessions, lmtpd, virtual/local in the delivery thread) at once, and by other
 * processes (real Dovecot, doveadm, another Postern process) through inotify on the Maildir root
 * and on new/ and cur/ of every mailbox a filter with message events matches, one watcher per
 * Maildir root per process shared by the user's sessions (lib-storage maildir-watch.ts; beyond
 * the kernel's watch limit a look every mailbox_idle_check_interval); the selected mailbox
 * through Mailbox.watch.
 * A signal only says "look": the session reads the mailbox's STATUS and compares it with what
 * it last saw (its baseline) to tell arrivals, expunges and flag changes apart, as Dovecot's
 * mailbox-list-notify-index compares list-index records. What is reported:
 *   arrivals or expunges  `* STATUS box (MESSAGES n UIDNEXT n UNSEEN n [HIGHESTMODSEQ m])`
 *   UIDVALIDITY changed   the same with UIDVALIDITY
 *   \Seen changes         `* STATUS box (UNSEEN n)`; other flag changes only HIGHESTMODSEQ, and
 *                         only after ENABLE CONDSTORE (Dovecot sends nothing without it)
 *   MailboxName           `* LIST (attrs) "/" new`, `* LIST (\NonExistent) "/" gone`,
 *                         `* LIST (attrs) "/" new ("OLDNAME" (old))`
 *   SubscriptionChange    `* LIST (attrs \Subscribed) "/" box`, or without \Subscribed
 * Changes of the selected mailbox never produce STATUS (§5.1; Dovecot likewise). Mailboxes of
 * other users' shared namespaces and of public ones: message events when a MAILBOXES or SUBTREE
 * filter names them (their owners' watchers, through mail-namespace.ts), as Dovecot 2.3.
 *
 * WHEN. Only between commands and during IDLE, never inside another command's output: a
 * command waits until a push in progress is written (quiesce) and pending events are written
 * before its tagged reply. SELECTED-DELAYED (§5.2): EXPUNGE is only sent in reply to a command;
 * between commands the selected mailbox is synced with its expunges held back (Mailbox.sync's
 * keepExpunged, Dovecot's MAILBOX_SYNC_FLAG_NO_EXPUNGES): new messages and flag changes are
 * pushed, the expunged messages stay in the session's view until a command that allows EXPUNGE.
 *
 * BOUNDS. A client that does not read gets no queue: events are coalesced per mailbox into a
 * set; when the socket's buffer is full nothing is written and when that set exceeds
 * NOTIFY_MAX_PENDING mailboxes the session sends `* OK [NOTIFICATIONOVERFLOW]` and behaves as
 * after NOTIFY NONE (§5.8). Baselines: at most NOTIFY_BASELINE_MAX mailboxes; NOTIFY SET reads
 * NOTIFY_BASELINE_AT_SET of them at once (all with STATUS), the rest at their first change, which
 * is then reported whole (MESSAGES UIDNEXT UIDVALIDITY UNSEEN), as Dovecot does for a mailbox its
 * list index did not know.
 */
import type { ImapArg } from '../lib-imap/imap-parser.ts';
import type { MailboxInfo, MailboxListEvent, MailboxStatus } from '../lib-storage/mail-storage.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import { imapString } from '../lib-imap/imap-compose.ts';
import type { ImapSession } from './imapd-session.ts';
import { mailboxOut } from './imapd-names.ts';
import { syncToClient } from './imapd-sync.ts';
import { cmdFetch } from './cmd-fetch.ts';
import { aclOn, myRights } from './imapd-acl.ts';

export const EV_MESSAGE_NEW = 0x01;
export const EV_MESSAGE_EXPUNGE = 0x02;
export const EV_FLAG_CHANGE = 0x04;
export const EV_ANNOTATION_CHANGE = 0x08;
export const EV_MAILBOX_NAME = 0x10;
export const EV_SUBSCRIPTION_CHANGE = 0x20;
export const EV_MAILBOX_METADATA_CHANGE = 0x40;
export const EV_SERVER_METADATA_CHANGE = 0x80;
const EV_MESSAGES = EV_MESSAGE_NEW | EV_MESSAGE_EXPUNGE | EV_FLAG_CHANGE;

/** How long a change of the selected mailbox waits before it is pushed (SELECTED, SELECTED-DELAYED). */
export const NOTIFY_SELECTED_DELAY_MS = 200;
/** Mailboxes with undelivered events while the client does not read, before NOTIFICATIONOVERFLOW. */
export const NOTIFY_MAX_PENDING = 256;
/** Mailboxes whose STATUS a session remembers to tell events apart. */
export const NOTIFY_BASELINE_MAX = 10_000;
/** Mailboxes whose STATUS NOTIFY SET (without STATUS) reads at once; the others at their first change. */
export const NOTIFY_BASELINE_AT_SET = 100;

/** A filter-mailboxes with its events (Dovecot's imap_notify_mailboxes). `personal`/`inboxes`: subtree "". */
export interface NotifyFilter { type: 'subtree' | 'mailboxes' | 'subscribed'; names: string[]; events: number }

export interface NotifySelected { events: number; immediate: boolean; fetchAtts: ImapArg | undefined }

// list-notify record events (Dovecot's mailbox_list_notify_event)
const R_UIDVALIDITY = 1, R_APPENDS = 2, R_EXPUNGES = 4, R_SEEN = 8, R_MODSEQ = 16;

interface Snap { messages: number; uidNext: number; unseen: number; modseq: number; uidValidity: number }
/** The mailbox list as NOTIFY compares it; one object shared by the sessions that read it together (sharedList). */
export interface ListSnap { exists: Set<string>; subs: Set<string>; noselect: Set<string> }

export class NotifyState {
  readonly filters: NotifyFilter[];
  readonly selected: NotifySelected | undefined;
  readonly used: number;
  private readonly s: ImapSession;
  private readonly baseline = new Map<string, Snap>();
  /** Mailboxes with a change not yet looked at → when the last signal came (performance.now()). */
  private readonly dirty = new Map<string, number>();
  private listDirty = false;
  /** When the first list signal not yet looked at came (performance.now()). */
  private listSince = 0;
  private renames: [string, string][] = [];
  private listSnap: ListSnap | undefined;
  private subs: ReadonlySet<string> = new Set<string>();
  private offList: (() => void) | undefined;
  private offSelected: (() => void) | undefined;
  private watchedBox: unknown;
  private running: Promise<void> | undefined;
  private scheduled = false;
  private selectedPending = false;
  private selectedTimer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  private stopped = false;
  private overflowed = false;

  constructor(s: ImapSession, filters: NotifyFilter[], selected: NotifySelected | undefined, used: number) {
    this.s = s;
    this.filters = filters;
    this.selected = selected;
    this.used = used;
  }

  private get wantsList(): boolean { return this.filters.some((f) => (f.events & (EV_MAILBOX_NAME | EV_SUBSCRIPTION_CHANGE)) !== 0); }

  /** The mailboxes whose changes by other processes must be watched: those a message-event filter matches (`subscribed`: all, the subscriptions change). */
  private wantsMailbox(name: string): boolean {
    return this.filters.some((f) => (f.events & EV_MESSAGES) !== 0 && (f.type === 'subscribed' || this.filterMatches(f, name)));
  }

  /**
   * Dovecot's imap_notify_match_mailbox, per namespace as Dovecot registers filters: a mailbox
   * of another user's shared namespace (`shared/OWNER/...`) or of a public one matches only a
   * MAILBOXES filter naming it or a SUBTREE rooted inside that same namespace at the owner's
   * level or below (`shared/OWNER`, `Public`); never PERSONAL/INBOXES, SUBSCRIBED, nor a
   * SUBTREE of the bare `shared` root (Dovecot cannot notify on it: checked against 2.3.19).
   */
  filterMatches(f: NotifyFilter, name: string): boolean {
    const sep = this.s.shared.settings.separator;
    const foreign = this.foreignOwner(name);
    if (f.type === 'subscribed') return foreign === undefined && this.subs.has(name);
    if (f.type === 'mailboxes') return f.names.includes(name);
    for (const n of f.names) {
      if (!(n === '' || name === n || name.startsWith(n + sep))) continue;
      if (foreign === undefined || (n !== '' && this.foreignOwner(n) === foreign)) return true;
    }
    return false;
  }

  /** The owner of a mailbox of another namespace (shared: the user; public: `public:PREFIX`; the bare shared root: ''), undefined for the user's own. */
  private foreignOwner(name: string): string | undefined {
    const u = this.s.user!;
    const o = u.mailboxOwner?.(name);
    return o === undefined || o === u.user ? undefined : o;
  }

  /** Names the filters give that lie in other users' or public namespaces: the owners NOTIFY must watch too. */
  private foreignRoots(): string[] {
    const out: string[] = [];
    for (const f of this.filters) {
      if ((f.events & EV_MESSAGES) === 0 || f.type === 'subscribed') continue;
      for (const n of f.names) { const o = this.foreignOwner(n); if (o !== undefined && o !== '') out.push(n); }
    }
    return out;
  }

  /** Starts listening, from the mailbox list of now. */
  async start(list: ListSnap): Promise<void> {
    const u = this.s.user!;
    this.subs = list.subs;
    if (this.wantsList) this.listSnap = list;
    if (this.filters.length > 0 && u.watchMailboxes) {
      const anyMessages = this.filters.some((f) => (f.events & EV_MESSAGES) !== 0);
      this.offList = u.watchMailboxes((ev) => this.onEvent(ev), { wants: anyMessages ? (n) => this.wantsMailbox(n) : () => false, foreign: this.foreignRoots() });
    }
    this.rearmSelected();
  }

  /** The STATUS each mailbox had at NOTIFY SET: what later events are compared with. */
  seed(statuses: ReadonlyMap<string, MailboxStatus>): void {
    for (const [n, st] of statuses) {
      if (this.baseline.size >= NOTIFY_BASELINE_MAX) break;
      if (!this.baseline.has(n)) this.baseline.set(n, snap(st));
    }
  }

  stop(): void {
    this.stopped = true;
    this.unlisten();
  }

  /** Stopped (NOTIFY NONE or another NOTIFY SET, the end of the connection) or overflowed. */
  get ended(): boolean { return this.stopped || this.overflowed; }

  private unlisten(): void {
    if (this.selectedTimer) { clearTimeout(this.selectedTimer); this.selectedTimer = undefined; }
    this.offList?.();
    this.offSelected?.();
    this.offList = this.offSelected = undefined;
    this.dirty.clear();
    this.renames = [];
    this.listDirty = this.selectedPending = false;
  }

  private onEvent(ev: MailboxListEvent): void {
    if (this.ended) return;
    if (ev.kind === 'list') {
      if (!this.wantsList && !this.filters.some((f) => f.type === 'subscribed')) return; // nothing depends on the list
      if (!this.listDirty) this.listSince = performance.now();
      this.listDirty = true;
      if (ev.renamed) this.renames.push(ev.renamed);
      if (this.renames.length > NOTIFY_MAX_PENDING) { this.overflow(); return; }
    } else {
      if (this.s.box?.name === ev.name) { this.baseline.delete(ev.name); return; } // §5.1: selected → not STATUS
      if (!this.filters.some((f) => (f.events & EV_MESSAGES) !== 0 && this.filterMatches(f, ev.name))) return;
      this.dirty.delete(ev.name); // re-inserted: the order is that of the latest signal
      this.dirty.set(ev.name, performance.now());
      if (this.dirty.size > NOTIFY_MAX_PENDING) { this.overflow(); return; }
    }
    this.schedule();
  }

  /** RFC 5465 §5.8: too much for this client: tell it, and behave as after NOTIFY NONE. */
  private overflow(): void {
    this.s.shared.log.info(`${this.s.who()}: NOTIFY overflow: the client is not reading, ${this.dirty.size} mailboxes pending`);
    this.unlisten();
    this.overflowed = true; // the response waits for a moment when it may be written
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.stopped || !this.s.pushAllowed) return; // commandDone() picks it up
      void this.run();
    });
  }

  /** One writer at a time; resolves when what is pending has been written (or cannot be now). */
  private run(): Promise<void> {
    if (this.running) return this.running.then(() => (this.pendingWork() ? this.run() : undefined));
    this.running = this.flush().catch((e: unknown) => {
      this.s.shared.log.warn(`${this.s.who()}: NOTIFY: ${(e as Error).message}`);
    }).finally(() => { this.running = undefined; });
    return this.running;
  }

  private pendingWork(): boolean { return !this.stopped && (this.overflowed || this.dirty.size > 0 || this.listDirty || this.selectedPending); }

  /** Waits for a push in progress (a command must not interleave with it). */
  async quiesce(): Promise<void> { while (this.running) await this.running; }

  /** Before a tagged reply: what is pending for other mailboxes, written now. */
  async beforeTagged(): Promise<void> {
    this.selectedPending = false; // the command's own sync reports the selected mailbox
    if (this.overflowed || this.dirty.size > 0 || this.listDirty) await this.run();
  }

  /** The command is over: write what waited, watch the selected mailbox again. */
  commandDone(): void {
    if (this.stopped) return;
    if (!this.overflowed) this.rearmSelected();
    if (this.pendingWork()) this.schedule();
  }

  private rearmSelected(): void {
    const box = this.s.box;
    if (this.watchedBox === box) return;
    this.offSelected?.();
    this.offSelected = undefined;
    this.watchedBox = box;
    if (!box || !this.selected || this.selected.events === 0) return;
    this.offSelected = box.watch(() => {
      if (this.ended || this.s.box !== box || this.selectedTimer) return;
      // a moment first: the session that made the change (an APPEND of another session of this
      // process) reports it in its own reply and takes \Recent, as with Dovecot (which looks
      // 0.5-1 s later); a burst of changes is pushed once
      this.selectedTimer = setTimeout(() => {
        this.selectedTimer = undefined;
        if (this.ended || this.s.box !== box) return;
        this.selectedPending = true;
        this.schedule();
      }, NOTIFY_SELECTED_DELAY_MS);
      this.selectedTimer.unref();
    });
  }

  private blocked(): boolean {
    if (!this.s.outputBlocked) return false;
    if (!this.waitingDrain) {
      this.waitingDrain = true;
      void this.s.whenDrained().then(() => { this.waitingDrain = false; if (this.pendingWork()) this.schedule(); });
    }
    return true;
  }

  private async flush(): Promise<void> {
    if (this.overflowed) {
      // RFC 5465 §5.8: one line, whatever the buffer holds; then as after NOTIFY NONE
      this.stopped = true;
      if (this.s.notify === this) this.s.notify = undefined;
      await this.s.send('* OK [NOTIFICATIONOVERFLOW] Too many notifications, NOTIFY is now off\r\n');
      return;
    }
    while (this.pendingWork() && !this.blocked()) {
      if (this.selectedPending && this.s.pushAllowed && !this.s.inIdle) { this.selectedPending = false; await this.pushSelected(); continue; }
      this.selectedPending = false;
      if (this.listDirty) { this.listDirty = false; await this.pushList(); continue; }
      const [name, at] = this.dirty.entries().next().value as [string, number];
      this.dirty.delete(name);
      await this.pushStatus(name, at);
    }
  }

  private async pushStatus(name: string, since: number): Promise<void> {
    const s = this.s;
    if (s.box?.name === name) return;
    let st: MailboxStatus;
    try {
      if (aclOn(s) && !(await myRights(s, name)).includes('r')) return; // not told about what it may not read
      st = await sharedStatus(s, name, since);
    } catch (e) {
      if (e instanceof MailError) { this.baseline.delete(name); return; } // gone, or no right: told nothing (Dovecot)
      throw e;
    }
    const now = snap(st);
    const old = this.baseline.get(name);
    if (old || this.baseline.size < NOTIFY_BASELINE_MAX) this.baseline.set(name, now);
    let rec = 0;
    if (!old) rec = R_UIDVALIDITY | R_APPENDS | R_EXPUNGES; // first sight: all of it (Dovecot: a mailbox new to its list index)
    else {
      // Dovecot's list index has no UIDVALIDITY for a mailbox that never held a message: its
      // first arrival reports one (checked against 2.3.19)
      if (old.uidValidity !== now.uidValidity || (old.uidNext === 1 && now.uidNext > 1)) rec |= R_UIDVALIDITY;
      if (now.uidNext !== old.uidNext) rec |= R_APPENDS;
      if (now.messages < old.messages + (now.uidNext - old.uidNext)) rec |= R_EXPUNGES;
      if (now.unseen !== old.unseen) rec |= R_SEEN;
      if (now.modseq !== old.modseq) rec |= R_MODSEQ;
    }
    if (rec === 0 || !this.filters.some((f) => matchEvent(f.events, rec) && this.filterMatches(f, name))) return;
    // Dovecot's imap_notify_status: the items follow what happened, not what was asked
    const items: string[] = [];
    const counts = (rec & (R_UIDVALIDITY | R_APPENDS | R_EXPUNGES)) !== 0;
    if (counts) items.push(`MESSAGES ${now.messages}`, `UIDNEXT ${now.uidNext}`);
    if (rec & R_UIDVALIDITY) items.push(`UIDVALIDITY ${now.uidValidity}`);
    if (counts || (rec & R_SEEN)) items.push(`UNSEEN ${now.unseen}`);
    if (s.condstore) items.push(`HIGHESTMODSEQ ${Math.max(1, now.modseq)}`);
    if (items.length === 0) return;
    await s.send(Buffer.concat([Buffer.from('* STATUS '), mailboxOut(s, name), Buffer.from(` (${items.join(' ')})\r\n`)]));
  }

  private async pushList(): Promise<void> {
    const s = this.s;
    const { snap: now } = await sharedList(s, this.listSince);
    this.subs = now.subs;
    const old = this.listSnap;
    if (!old) return;
    this.listSnap = now;
    const renames = this.renames;
    this.renames = [];
    const sep = s.shared.settings.separator;
    const wants = (ev: number, name: string): boolean => this.filters.some((f) => (f.events & ev) !== 0 && (f.type === 'subscribed' ? old.subs.has(name) || now.subs.has(name) : this.filterMatches(f, name)));
    const lines: Buffer[] = [];
    const line = (attrs: readonly string[], name: string, oldName?: string): void => {
      const tail = oldName !== undefined ? Buffer.concat([Buffer.from(' ("OLDNAME" ('), mailboxOut(s, oldName), Buffer.from('))')]) : Buffer.alloc(0);
      lines.push(Buffer.concat([Buffer.from(`* LIST (${attrs.join(' ')}) ${imapString(sep).toString('latin1')} `), mailboxOut(s, name), tail, Buffer.from('\r\n')]));
    };
    const created = [...now.exists].filter((n) => !old.exists.has(n));
    const deleted = new Set([...old.exists].filter((n) => !now.exists.has(n)));
    const renamedTo = new Map<string, string>();
    for (const [f, t] of renames) {
      for (const d of deleted) {
        if (d === f || d.startsWith(f + sep)) {
          const to = t + d.slice(f.length);
          if (now.exists.has(to) && !old.exists.has(to)) { renamedTo.set(to, d); deleted.delete(d); }
        }
      }
    }
    for (const n of created) {
      if (!wants(EV_MAILBOX_NAME, n)) continue;
      line(attrsOf(now, n), n, renamedTo.get(n));
    }
    for (const n of deleted) if (wants(EV_MAILBOX_NAME, n)) line(['\\NonExistent'], n);
    for (const n of now.subs) if (!old.subs.has(n) && wants(EV_SUBSCRIPTION_CHANGE, n)) line([...attrsOf(now, n), '\\Subscribed'], n);
    for (const n of old.subs) if (!now.subs.has(n) && wants(EV_SUBSCRIPTION_CHANGE, n)) line(attrsOf(now, n), n);
    for (const l of lines) { if (this.ended) return; await s.send(l); }
  }

  /** The selected mailbox between commands (§5.2), as IDLE would, with the FETCH of MessageNew. */
  private async pushSelected(): Promise<void> {
    const s = this.s;
    const box = s.box;
    const sel = this.selected;
    if (!box || !sel) return;
    const uidNext = box.uidNext;
    // SELECTED-DELAYED: no EXPUNGE outside a command; the expunged messages stay in the view
    // (decided in the same step as the sync, so none slips through) until one that allows it
    await syncToClient(s, true, { holdExpunges: !sel.immediate });
    if (s.box !== box || !sel.fetchAtts || (sel.events & EV_MESSAGE_NEW) === 0) return;
    const view = box.messages();
    const seqs: number[] = [];
    for (let i = view.length - 1; i >= 0 && view[i]!.uid >= uidNext; i--) seqs.unshift(i + 1);
    if (seqs.length === 0) return;
    const set = seqs.length === 1 ? `${seqs[0]}` : `${seqs[0]}:${seqs[seqs.length - 1]}`;
    await cmdFetch(s, { tag: '*', name: 'FETCH', uid: false, args: [{ type: 'atom', value: set }, sel.fetchAtts], start: performance.now() });
  }
}

/**
 * One STATUS read shared by the sessions that look at the same mailbox at the same time (one
 * delivery wakes every NOTIFY session of the user): a session joins a read in progress only if
 * that read started after the signal it is answering, so it can never miss the change.
 */
const inFlight = new Map<string, { started: number; p: Promise<MailboxStatus> }>();
function sharedStatus(s: ImapSession, name: string, since: number): Promise<MailboxStatus> {
  const key = `${userKey(s)}\0${name}`; // one mail location
  const cur = inFlight.get(key);
  if (cur && cur.started >= since) return cur.p;
  const started = performance.now();
  const p = s.user!.status(name);
  const entry = { started, p };
  inFlight.set(key, entry);
  const done = (): void => { if (inFlight.get(key) === entry) inFlight.delete(key); };
  p.then(done, done);
  return p;
}

/** Dovecot's imap_notify_match_event for message events (list events are matched apart). */
function matchEvent(wanted: number, rec: number): boolean {
  if ((wanted & EV_MESSAGES) !== 0 && (rec & R_UIDVALIDITY)) return true;
  if ((wanted & EV_MESSAGE_NEW) && (rec & R_APPENDS)) return true;
  if ((wanted & EV_MESSAGE_EXPUNGE) && (rec & R_EXPUNGES)) return true;
  if ((wanted & EV_FLAG_CHANGE) && (rec & (R_SEEN | R_MODSEQ))) return true;
  return false;
}

function snap(st: MailboxStatus): Snap {
  return { messages: st.messages, uidNext: st.uidNext, unseen: st.unseen, modseq: st.highestModseq, uidValidity: st.uidValidity };
}

function snapOf(all: readonly MailboxInfo[]): ListSnap {
  const exists = new Set<string>();
  const subs = new Set<string>();
  const noselect = new Set<string>();
  for (const m of all) {
    if (!m.nonExistent) exists.add(m.name);
    if (m.subscribed) subs.add(m.name);
    if (m.attributes.includes('\\Noselect')) noselect.add(m.name);
  }
  return { exists, subs, noselect };
}

/**
 * The LIST attributes of an event: Dovecot's mailbox_list_mailbox() flags, which for Maildir
 * carry no children information — none, but \Noselect for a level that is no mailbox.
 */
function attrsOf(l: ListSnap, name: string): string[] {
  return l.noselect.has(name) ? ['\\Noselect'] : [];
}

/**
 * One mailbox list read shared by the sessions of one user that need it at about the same time
 * (50 sessions of a user doing NOTIFY SET, or hearing the same CREATE): a session takes a read
 * that STARTED after `since` (the signal it answers, or its command's start), so it never misses
 * a change; the result (and its ListSnap, which the sessions then keep) is one object for all.
 * A finished read is kept LIST_REUSE_MS for latecomers.
 */
const LIST_REUSE_MS = 5000;
const lists = new Map<string, { started: number; p: Promise<{ all: MailboxInfo[]; snap: ListSnap }> }>();
export function sharedList(s: ImapSession, since: number): Promise<{ all: MailboxInfo[]; snap: ListSnap }> {
  const key = userKey(s);
  const cur = lists.get(key);
  if (cur && cur.started >= since) return cur.p;
  const started = performance.now();
  const p = s.user!.list().then((all) => ({ all, snap: snapOf(all) }));
  const entry = { started, p };
  lists.set(key, entry);
  const done = (): void => { setTimeout(() => { if (lists.get(key) === entry) lists.delete(key); }, LIST_REUSE_MS).unref(); };
  p.then(done, () => { if (lists.get(key) === entry) lists.delete(key); });
  return p;
}

/** One key per user and mail location (the sessions of one user share reads). */
function userKey(s: ImapSession): string {
  const rec = s.userRecord;
  return `${s.user!.user}\0${rec?.home ?? ''}\0${rec?.mail ?? ''}`;
}
