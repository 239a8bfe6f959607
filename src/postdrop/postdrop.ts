/**
 * postdrop - postdrop(1), the mail posting agent: writes one locally submitted message into the
 * `maildrop` queue, where pickup(8) finds it. Postern's sendmail(1) calls it in-process (Postfix
 * runs it as a set-gid helper fed with records on stdin; the result on disk is the same).
 *
 * SUMMARY
 *   const d = await PostdropFile.open(queue, { sender, fullname, attrs, uid });
 *   d.addRecipient(r)*  → d.write(chunk)*  → d.addRecipient(extracted)*  → await d.commit()
 *
 * DESCRIPTION
 *   The file is a queue file in the CONTRACT 1 format (src/global/rec-type.ts), written by
 *   QueueFileWriter.create(queue, 'maildrop'): temporary name, fsync, rename to
 *   `maildrop/<qid>`, fsync of the directory. commit() resolves only then, so `sendmail` exits
 *   0 only once the message is safe on disk, whether or not the mail system is running.
 *   Recipients added before the content are envelope recipients (command line); those added
 *   after it go to the extracted segment (X), as Postfix's sendmail -t writes them.
 *   Only the attributes a local user may set are written (postdrop.c: encoding, dsn_envid,
 *   dsn_ret, rewrite_context, full_name; the list is global/maildrop.ts, which pickup checks too); anything else is dropped with Postfix's warning
 *   `uid=N: ignoring attribute record: name=value`. pickup(8) checks all of it again: the
 *   maildrop directory is where untrusted files come from.
 *
 *   PostdropSession wraps PostdropFile as a CleanupStream (global/cleanup-client.ts: open → addRecipient →
 *   write → finish → {queueId} | {reject}) so that `sendmail -bs` can run the smtpd session code
 *   while writing into the maildrop queue instead of `incoming`.
 *
 * SECURITY
 *   Runs with the privileges of the submitting user. Never trusts the caller's time (pickup uses
 *   the file's mtime) nor its attributes.
 *
 * DIAGNOSTICS
 *   `postern/postdrop[pid]: warning: uid=N: ...`.
 *
 * PARAMETERS
 *   queue_directory, message_size_limit
 */
import { QueueFileWriter } from '../global/queue-file-writer.ts';
import type { QueueRecipient } from '../global/queue-file.ts';
import type { MailQueue } from '../global/mail-queue.ts';
import { ATTR } from '../global/rec-type.ts';
import { logger } from '../util/msg.ts';
import type { CleanupOpenOptions, CleanupResult, CleanupStream } from '../global/cleanup-client.ts';
import { ATTR_FULL_NAME, POST_ATTRS, postAttrAllowed } from '../global/maildrop.ts';

const log = logger('postdrop');

export interface PostdropEnvelope {
  /** Envelope sender ('' = null sender). */
  sender: string;
  /** sendmail -F. */
  fullname?: string;
  /** dsn_envid, dsn_ret, encoding, ...; filtered through POST_ATTRS. */
  attrs?: Record<string, string>;
  /** Submitting user's uid, for log lines (default: this process's uid). */
  uid?: number;
  /** message_size_limit in bytes (0 = none). */
  messageSizeLimit?: number;
}

export class PostdropError extends Error {
  override name = 'PostdropError';
  /** sysexits.h status for sendmail. */
  readonly exitCode: number;
  constructor(message: string, exitCode: number) { super(message); this.exitCode = exitCode; }
}

export class PostdropFile {
  private readonly w: QueueFileWriter;
  private readonly uid: number;
  private readonly limit: number;
  private size = 0;
  private done = false;

  private constructor(w: QueueFileWriter, uid: number, limit: number) {
    this.w = w; this.uid = uid; this.limit = limit;
  }

  static async open(queue: MailQueue, env: PostdropEnvelope): Promise<PostdropFile> {
    const uid = env.uid ?? process.getuid?.() ?? 0;
    let w: QueueFileWriter;
    try {
      w = await QueueFileWriter.create(queue, 'maildrop');
    } catch (e) {
      throw new PostdropError(`cannot create a file in the maildrop queue ${queue.dirOf('maildrop', '')}: ${(e as Error).message}`, 75);
    }
    w.setSender(env.sender);
    const attrs: Record<string, string> = { ...(env.attrs ?? {}) };
    if (env.fullname) attrs[ATTR_FULL_NAME] = env.fullname;
    for (const [n, v] of Object.entries(attrs)) {
      if (postAttrAllowed(n, v)) w.addAttr(n, v);
      else log.warn(`uid=${uid}: ignoring attribute record: ${n.slice(0, 200)}=${v.slice(0, 200)}`);
    }
    return new PostdropFile(w, uid, env.messageSizeLimit ?? 0);
  }

  get queueId(): string { return this.w.queueId; }
  get recipientCount(): number { return this.w.recipientCount; }

  /** Before the first write(): an envelope recipient; after: an extracted one (X segment). */
  addRecipient(r: QueueRecipient): void {
    if (/[\0\r\n]/.test(r.address)) throw new PostdropError(`bad recipient address: ${JSON.stringify(r.address)}`, 65);
    this.w.addRecipient(r);
  }

  /** Message content with LF line endings. */
  async write(chunk: Buffer): Promise<void> {
    this.size += chunk.length;
    if (this.limit > 0 && this.size > this.limit) {
      throw new PostdropError(`uid=${this.uid}: message file too big (message_size_limit = ${this.limit})`, 65);
    }
    await this.w.writeContent(chunk);
  }

  /** fsync + rename into maildrop + directory fsync; returns the maildrop queue ID. */
  async commit(): Promise<string> {
    if (this.w.recipientCount === 0) {
      await this.abort();
      throw new PostdropError('no recipients specified', 64);
    }
    try {
      const id = await this.w.commit();
      this.done = true;
      return id;
    } catch (e) {
      await this.abort();
      log.warn(`uid=${this.uid}: ${(e as Error).message}`);
      throw new PostdropError(`cannot write the maildrop queue file: ${(e as Error).message}`, 75);
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.w.abort();
  }
}

/**
 * A CleanupStream over a maildrop file, for `sendmail -bs` (Postfix's stand-alone
 * smtpd also posts through postdrop). Client attributes from the SMTP session (client_address
 * etc.) are not the user's to set: they are dropped here, and pickup adds its own.
 */
export class PostdropSession implements CleanupStream {
  private readonly file: PostdropFile;
  private readonly seen = new Set<string>();
  private constructor(file: PostdropFile) { this.file = file; }

  static async open(queue: MailQueue, o: CleanupOpenOptions, messageSizeLimit = 0): Promise<PostdropSession> {
    const attrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.attrs)) if (POST_ATTRS.has(k)) attrs[k] = v;
    const f = await PostdropFile.open(queue, { sender: o.sender, attrs, messageSizeLimit });
    return new PostdropSession(f);
  }

  get queueId(): string { return this.file.queueId; }

  addRecipient(r: QueueRecipient): void {
    const key = `${r.address.toLowerCase()}\0${r.notify ?? 0}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.file.addRecipient({ address: r.address, notify: r.notify });
  }

  async write(chunk: Buffer): Promise<void> {
    await this.file.write(chunk);
  }

  async finish(): Promise<CleanupResult> {
    try {
      return { queueId: await this.file.commit() };
    } catch (e) {
      const tooBig = e instanceof PostdropError && e.exitCode === 65;
      return { reject: tooBig ? { code: 552, enh: '5.3.4', text: 'Error: message file too big' } : { code: 451, enh: '4.3.0', text: 'Error: queue file write error' } };
    }
  }

  async abort(): Promise<void> { await this.file.abort(); }
}
