/**
 * mail-storage - CONTRACT 5 of DESIGN.md: the mailbox store shared by delivery and access.
 *
 * WHO USES IT
 *   lmtpd and IMAP APPEND write through ONE call, `MailUser.deliver()`; Postfix's delivery
 *   agents, which are given a path rather than a user, write through mail-deliver.ts:
 *   virtual(8) with its new/-only Maildir delivery (Postfix maildir.c) or mbox, local(8) with a
 *   Maildir save (the same as deliver()) or mbox. imapd and pop3d read and change mailboxes
 *   through `Mailbox`. Protocol code never touches a path: only lib-storage writes mailboxes
 *   (STYLE §6).
 *
 * ON DISK (maildir/ backend): Dovecot 2.3's layout exactly, so real Dovecot and Postern can
 * serve the same Maildir in turn or at the same time: cur/ new/ tmp/, Maildir++ folders
 * (`.Sent`, `.Archive.2024`) or LAYOUT=fs, `dovecot-uidlist` (version 3) under the
 * `dovecot-uidlist.lock` dotlock, `dovecot-keywords`, `subscriptions`, `dovecot-uidvalidity`.
 * Dovecot's own `dovecot.index*` files are never read or written. See docs/mail-store.md.
 *
 * NAMES. Mailbox names in this API are the names the user sees, in UTF-8, with the namespace
 * hierarchy separator of `MailUser.separator` ('/' or '.'): "INBOX", "Archive/2024",
 * "Entwürfe". The IMAP layer decodes RFC 3501 modified UTF-7 from clients before calling (use
 * `mutf7Decode` from lib-imap/imap-utf7.ts) and encodes answers. "INBOX" is case-insensitive.
 * Invalid names throw MailError('PARAMS') with text safe to show the user.
 *
 * SESSION MODEL (as Dovecot's mailbox_sync and mox's change feed):
 *  - `open()` gives a Mailbox handle with a VIEW: the message list as of its last sync().
 *    The view only changes inside `sync()` (and by the handle's own setFlags/expunge, which
 *    are also reported by the next sync as flag changes so the caller can send FETCH).
 *    Sequence numbers are positions in `messages()` (1-based); they change only at sync().
 *  - `sync()` returns what happened since this handle's previous sync: new messages,
 *    expunged UIDs, flag changes (from any writer: other handles, other Postern processes,
 *    real Dovecot, a shell `mv`). This is the ONLY way a session learns about others: imapd
 *    calls it before replying to each command (NOOP, IDLE wake-up, etc.) and sends
 *    EXISTS/EXPUNGE/FETCH accordingly. Expunges are reported as UIDs; the caller turns them
 *    into sequence numbers from its previous view (highest first, RFC 3501 §7.4.1).
 *  - `watch(cb)` calls cb (no arguments) when the mailbox may have changed: in-process writes
 *    at once, other processes through fs.watch on new/ and cur/. It costs no CPU when idle.
 *    IDLE: on a call, run sync() and push the result.
 *
 * UIDs and UIDVALIDITY follow RFC 3501 §2.3.1.1: strictly ascending, never reused;
 * `uidValidity` changes only if the uidlist was lost beyond repair (warning logged).
 * `modseq` (RFC 7162 CONDSTORE): every flag change, arrival or expunge raises the mailbox's
 * `highestModseq` (a changed or new message takes the new value). Maildir keeps them in a
 * cache file, `postern-index` (maildir/maildir-index.ts): after a restart unchanged messages
 * keep their modseq, anything changed meanwhile (or any doubt) gets a higher one than ever
 * given before, so clients may see "changed" too often, never "unchanged" wrongly.
 * `\Recent` (RFC 3501 §2.3.2): a message is recent in exactly one session in this process,
 * the first non-read-only handle whose sync() sees it.
 * POP3 UIDL: `pop3Uidl(uid, uidValidity)` is Dovecot's default `%08Xu%08Xv`.
 *
 * ERRORS: every method throws MailError (mail-error.ts) — never a bare fs error.
 */
import type { Readable } from 'node:stream';
import type { UserRecord } from '../lib-auth/user-directory.ts';

export { MailError, MAIL_ERRSTR_CRITICAL_MSG } from './mail-error.ts';
import type { MailAttributes } from './mail-attribute.ts';
import type { MailboxAcl } from './mail-acl.ts';
import type { FtsIndex } from '../lib-fts/fts-index.ts';
export type { MailErrorCode } from './mail-error.ts';

/** IMAP system flags that are stored (\Recent is a session property, see MessageInfo.recent). */
export type SystemFlag = '\\Seen' | '\\Answered' | '\\Flagged' | '\\Deleted' | '\\Draft';
export const SYSTEM_FLAGS: readonly SystemFlag[] = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'];

/** Message content: the raw RFC 5322 bytes (CRLF or LF line ends are stored as given). */
export type MessageSource = Buffer | Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

export interface DeliverOptions {
  /** System flags, e.g. ['\\Seen']; unknown backslash flags throw PARAMS. */
  flags?: readonly string[];
  /** IMAP keywords (atoms such as `$Forwarded`, `Junk`); at most 26 per mailbox in maildir (LIMIT). */
  keywords?: readonly string[];
  /** IMAP INTERNALDATE; default now. Stored as the file's mtime, as Dovecot does. */
  internalDate?: Date;
  /** Reject with TOOBIG if the message is larger (bytes). */
  maxSize?: number;
  /** Skip the quota check (e.g. Dovecot's quota_grace for the message that crosses the limit). */
  ignoreQuota?: boolean;
  /**
   * A delivery (lmtpd, the LDA), not an APPEND: Dovecot's MAILBOX_FLAG_POST_SESSION. Only then
   * may the message that crosses the quota go over it by quota_grace (UserRecord.quotaGraceBytes).
   */
  postSession?: boolean;
}

export interface DeliverResult {
  uidValidity: number;
  uid: number;
  /** Physical size in bytes as stored. */
  size: number;
}

/** One message as the handle's view shows it. Objects are replaced (not mutated) on change. */
export interface MessageInfo {
  readonly uid: number;
  /** Stored system flags, in the order of SYSTEM_FLAGS. */
  readonly flags: readonly SystemFlag[];
  /** Keywords, as stored in dovecot-keywords. */
  readonly keywords: readonly string[];
  /** RFC822.SIZE is `vsize` (CRLF line ends); `size` is the bytes on disk. */
  readonly size: number;
  readonly vsize: number;
  readonly modseq: number;
  /** \Recent for THIS handle. */
  readonly recent: boolean;
  /** Dovecot's GUID for maildir: the file's base name (doveadm fetch guid). */
  readonly guid: string;
}

/**
 * `keepExpunged` (Dovecot's MAILBOX_SYNC_FLAG_NO_EXPUNGES; RFC 5465 §5.2 SELECTED-DELAYED, RFC 3501
 * §7.4.1): messages gone from the mailbox stay in the view, as if this sync had not seen them
 * go (their content reads EXPUNGED, as between two syncs); a later sync without it reports them.
 * Decided in the same step that updates the view, so no expunge slips through in between.
 */
export interface SyncOptions { keepExpunged?: boolean }

export interface MailboxChanges {
  /** Messages that were not in the view before, in UID order. */
  added: MessageInfo[];
  /** UIDs that left the view, ascending. */
  expunged: number[];
  /** Messages whose flags/keywords changed (by anyone, including this handle). */
  flagsChanged: MessageInfo[];
  /** True if UIDVALIDITY changed: the caller must drop the client (IMAP BYE). */
  uidValidityChanged: boolean;
}

export type FlagMode = 'add' | 'remove' | 'replace';

export interface StoreOptions {
  /** RFC 7162 UNCHANGEDSINCE: messages with a higher modseq are not changed but returned in `failed`. */
  unchangedSince?: number;
}

export interface StoreResult {
  changed: MessageInfo[];
  /** UIDs not changed because of unchangedSince (MODIFIED response code). */
  failed: number[];
}

export interface CopyResult {
  /** Destination UIDVALIDITY (UIDPLUS COPYUID). */
  uidValidity: number;
  /** [sourceUid, destUid] pairs in source UID order. */
  map: Array<[number, number]>;
}

export interface MailboxStatus {
  messages: number;
  recent: number;
  uidNext: number;
  uidValidity: number;
  unseen: number;
  /** Sum of vsize (RFC 8438 STATUS=SIZE). */
  size: number;
  highestModseq: number;
}

export interface MailboxInfo {
  /** UTF-8 name with MailUser.separator. */
  name: string;
  /** RFC 3501/5258/6154 attributes: \HasChildren, \HasNoChildren, \Noselect, \Subscribed, \NonExistent. */
  attributes: string[];
  subscribed: boolean;
  /** true when only subscribed (the mailbox itself does not exist). */
  nonExistent: boolean;
}

export interface QuotaUsage {
  /** Sum of the physical sizes of every message of every mailbox. */
  bytes: number;
  messages: number;
  /** From UserRecord.quotaBytes / quotaMessages; undefined = unlimited. */
  limitBytes?: number;
  limitMessages?: number;
}

/**
 * A per-mailbox file where a protocol layer keeps data DERIVED from the messages (imapd: parsed
 * ENVELOPE/BODYSTRUCTURE, src/imapd/imapd-cache-file.ts), as opaque bytes. A cache: it may be
 * missing, stale or damaged (the reader validates), and deleting it loses nothing. Maildir:
 * `postern-cache` in the control directory (maildir/maildir-cache-file.ts), ignored by Dovecot.
 */
export interface MailboxCacheFile {
  /** The same for every handle of one mailbox in this process (Maildir: the file's path). */
  readonly key: string;
  /** The bytes; undefined when there is none, or it is unusable or above maxBytes (logged). */
  read(maxBytes: number): Promise<Buffer | undefined>;
  /** Replace atomically (no fsync); dropped if the mailbox is gone. Never throws. */
  write(data: Buffer): Promise<void>;
  /** The same, synchronously (process exit). */
  writeSync(data: Buffer): void;
}

export interface Mailbox {
  /** UTF-8 name, INBOX normalised. */
  readonly name: string;
  readonly readOnly: boolean;
  readonly uidValidity: number;
  /** Next UID as of the last sync. */
  readonly uidNext: number;
  readonly highestModseq: number;
  /** Where derived data of this mailbox may be cached (undefined: the backend has no place). */
  readonly cacheFile?: MailboxCacheFile | undefined;
  /**
   * The mailbox's full-text index (lib-fts/fts-index.ts; Maildir: `postern-fts` beside
   * postern-cache), which SEARCH BODY/TEXT consults to skip messages that cannot match;
   * undefined: the backend has none (mbox) and SEARCH reads every message. Delivery, APPEND and
   * COPY add to it when it exists; the search brings it up to date (or creates it) first.
   */
  readonly ftsIndex?: FtsIndex | undefined;
  /** The view, in UID order; index + 1 = sequence number. */
  messages(): readonly MessageInfo[];
  /** Find a message of the view by UID (binary search). */
  byUid(uid: number): MessageInfo | undefined;
  /**
   * UIDs expunged at a modseq above `modseq` (QRESYNC VANISHED (EARLIER), RFC 7162 §3.2.5.2),
   * ascending; undefined when the backend's expunge history does not reach back that far (the
   * caller then reports every missing UID: a superset, which the RFC allows).
   */
  expungedSince?(modseq: number): number[] | undefined;
  /**
   * A mod-sequence above every one given so far in this mailbox, raising its HIGHESTMODSEQ, for a
   * change kept outside the mailbox (INDEXPVT private \Seen, mail-private-flags.ts), so later
   * changes of the mailbox still get higher ones. Absent: the backend keeps no modseq counter.
   */
  reserveModseq?(): number;
  /** Learn about changes by anyone since this handle's last sync. */
  sync(o?: SyncOptions): Promise<MailboxChanges>;
  /** Call cb when the mailbox may have changed; returns the unsubscribe function. */
  watch(cb: () => void): () => void;
  /** Message content. EXPUNGED if the message is gone meanwhile. */
  openContent(uid: number): Promise<Readable>;
  readContent(uid: number): Promise<Buffer>;
  /**
   * Bulk read for scans (SEARCH BODY/TEXT over a whole mailbox): calls `each(i, content)` for
   * every `uids[i]` still there (expunged ones are skipped), in no guaranteed order, and
   * resolves when all are done. `each` is synchronous and must not keep `content` beyond
   * its call unless it copies it: the backend may read many files per event-loop turn.
   */
  readMany(uids: readonly number[], each: (i: number, content: Buffer) => void): Promise<void>;
  /** INTERNALDATE (the file's mtime, as Dovecot). */
  internalDate(uid: number): Promise<Date>;
  /** Save date (RFC 8514 SAVEDATE): the file's ctime as an approximation. */
  saveDate(uid: number): Promise<Date>;
  /** STORE: change flags of the given UIDs (UIDs not in the view are ignored). */
  setFlags(uids: readonly number[], mode: FlagMode, flags: readonly string[], keywords?: readonly string[], o?: StoreOptions): Promise<StoreResult>;
  /** EXPUNGE: remove the given UIDs, or every \Deleted message when uids is undefined. Returns removed UIDs. */
  expunge(uids?: readonly number[]): Promise<number[]>;
  /** COPY (keeps flags and keywords; INTERNALDATE preserved). */
  copy(uids: readonly number[], dest: string): Promise<CopyResult>;
  /** MOVE (RFC 6851): copy then expunge from this mailbox. */
  move(uids: readonly number[], dest: string): Promise<CopyResult>;
  /** APPEND to this mailbox (same as MailUser.deliver(this.name, ...)). */
  append(content: MessageSource, o?: DeliverOptions): Promise<DeliverResult>;
  status(): MailboxStatus;
  /** Every keyword known to this mailbox (PERMANENTFLAGS / FLAGS response). */
  keywords(): readonly string[];
  close(): Promise<void>;
}

/**
 * What MailUser.watchMailboxes reports (Dovecot's mailbox_list_notify): a mailbox's messages or
 * flags may have changed, or the list of mailboxes or subscriptions may have changed (`renamed`:
 * [old, new] when this process knows it was a rename). Signals only: the listener looks.
 */
export type MailboxListEvent = { kind: 'mailbox'; name: string } | { kind: 'list'; renamed?: [string, string] | undefined };

export interface MailUser {
  readonly user: string;
  /** Namespace hierarchy separator ('.' Dovecot's default for Maildir++, or '/'). */
  readonly separator: string;
  /** Every mailbox (and subscribed-only names), INBOX first then sorted. */
  list(): Promise<MailboxInfo[]>;
  /** Subscribed names, in file order. */
  subscriptions(): Promise<string[]>;
  create(name: string): Promise<void>;
  /** Delete a mailbox (INBOX: INUSE). A mailbox with children keeps its children (\Noselect not needed in Maildir++). */
  delete(name: string): Promise<void>;
  /** Rename with children; renaming INBOX moves its messages into a new mailbox (RFC 3501 §6.3.5). */
  rename(from: string, to: string): Promise<void>;
  /** `foreign`: a name of another namespace (mail-namespace.ts), kept in this user's list as given. */
  setSubscribed(name: string, on: boolean, o?: { foreign?: boolean }): Promise<void>;
  exists(name: string): Promise<boolean>;
  open(name: string, o?: { readOnly?: boolean }): Promise<Mailbox>;
  /** STATUS without opening a view (RFC 3501 §6.3.10). */
  status(name: string): Promise<MailboxStatus>;
  /** The entry for lmtpd and IMAP APPEND (Postfix's agents: mail-deliver.ts). */
  deliver(mailbox: string, content: MessageSource, o?: DeliverOptions): Promise<DeliverResult>;
  /** Quota usage for QUOTA (RFC 9208) and LMTP 552. */
  quota(): Promise<QuotaUsage>;
  /**
   * METADATA (RFC 5464) attributes in Dovecot's `mail_attribute_dict` (mail-attribute.ts);
   * absent for backends without mailbox GUIDs (mbox).
   */
  attributes?(dictUri: string): MailAttributes;
  /**
   * The mailbox GUID Dovecot keeps (Maildir: dovecot-uidlist's `G`, written first when missing):
   * OBJECTID's MAILBOXID (RFC 8474) and METADATA's key. Absent for mbox. NOTFOUND when missing.
   */
  mailboxGuid?(name: string): Promise<string>;
  /** RFC 6154 special-use attributes given at CREATE (mail-special-use.ts); absent for mbox. */
  specialUse?(name: string): Promise<string[]>;
  setSpecialUse?(name: string, uses: readonly string[]): Promise<void>;
  /** Dovecot's `acl = vfile` files of this user's mailboxes (mail-acl.ts); absent for mbox. */
  acl?(): MailboxAcl;
  /**
   * NOTIFY (RFC 5465): hear changes of every mailbox of this user and of its mailbox list, from
   * writers of this process and its threads at once (mail-notify.ts) and, through inotify (or a
   * periodic look beyond the kernel's limits), from other processes for the mailboxes `wants`
   * accepts (default: all) and for the list. `foreign`: names in other users' shared or public
   * namespaces (mail-namespace.ts) whose owners' mailboxes are to be heard as well (message
   * events only, under their full names). Returns the unsubscribe function. Absent: the
   * backend cannot (NOTIFY then only covers the selected mailbox).
   */
  watchMailboxes?(cb: (ev: MailboxListEvent) => void, o?: { wants?: (name: string) => boolean; foreign?: readonly string[] }): () => void;
  /** The user whose mailbox a name is (mail-namespace.ts shared namespace); the user's own when absent. */
  mailboxOwner?(name: string): string;
  close(): Promise<void>;
}

export interface MailStore {
  forUser(u: UserRecord): Promise<MailUser>;
}

/**
 * Dovecot's default pop3_uidl_format `%08Xu%08Xv`. Dovecot 2.3 prints it in LOWER-case hex
 * (checked against 2.3.19: "000000016b09d921"); clients compare UIDLs as strings, so the case
 * must match or migrated clients download everything again.
 */
export function pop3Uidl(uid: number, uidValidity: number): string {
  const hex8 = (n: number) => n.toString(16).padStart(8, '0');
  return hex8(uid) + hex8(uidValidity);
}
