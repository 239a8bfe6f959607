/**
 * pop3d-maildrop - the POP3 maildrop of one session (RFC 1939 §3, §8): a snapshot of INBOX taken
 * at login, as Dovecot's pop3 does. Message numbers never change during the session; messages
 * another session expunges meanwhile stay listed, and RETR/TOP of them answer
 * "-ERR Message N expunged." (Dovecot 2.3). DELE only marks; `update()` (QUIT, the UPDATE state
 * of §6) sets \Seen on the messages retrieved (unless pop3_no_flag_updates) and expunges the
 * marked ones, in that order, through lib-storage: one expunge call, so a vanished client (no
 * QUIT) deletes nothing at all.
 *
 * Sizes are the virtual sizes (CRLF line ends, RFC 1939 §11 "exact size"), the size RETR sends
 * before dot-stuffing.
 */
import type { Mailbox, MailUser } from '../lib-storage/mail-storage.ts';
import { formatUidl } from './pop3d-settings.ts';

export interface Pop3Message {
  uid: number;
  size: number;
  uidl: string;
  deleted: boolean;
  retrieved: boolean;
}

export class Pop3Maildrop {
  readonly user: MailUser;
  readonly box: Mailbox;
  readonly messages: Pop3Message[];
  /** Counters for pop3_logout_format. */
  readonly stats = { top: 0, topBytes: 0, retr: 0, retrBytes: 0, del: 0 };

  private constructor(user: MailUser, box: Mailbox, messages: Pop3Message[]) {
    this.user = user;
    this.box = box;
    this.messages = messages;
  }

  static async open(user: MailUser, uidlFormat: string): Promise<Pop3Maildrop> {
    const box = await user.open('INBOX');
    try {
      await box.sync();
      const msgs = box.messages().map((m) => ({
        uid: m.uid, size: m.vsize, uidl: formatUidl(uidlFormat, m.uid, box.uidValidity, m.guid), deleted: false, retrieved: false,
      }));
      return new Pop3Maildrop(user, box, msgs);
    } catch (e) {
      await box.close().catch(() => {});
      throw e;
    }
  }

  /** Messages not marked deleted: [count, octets] (STAT). */
  stat(): [number, number] {
    let n = 0;
    let size = 0;
    for (const m of this.messages) if (!m.deleted) { n++; size += m.size; }
    return [n, size];
  }

  /** Sum of the sizes of all messages at login (for the logout line's size=%s). */
  totalSize(): number { return this.messages.reduce((s, m) => s + m.size, 0); }

  rset(): void { for (const m of this.messages) m.deleted = false; this.stats.del = 0; }

  /** The UPDATE state. Returns how many messages were expunged. */
  async update(setSeen: boolean): Promise<number> {
    const seen = this.messages.filter((m) => m.retrieved && !m.deleted).map((m) => m.uid);
    const del = this.messages.filter((m) => m.deleted).map((m) => m.uid);
    if (setSeen && seen.length > 0) await this.box.setFlags(seen, 'add', ['\\Seen']);
    if (del.length === 0) return 0;
    const removed = await this.box.expunge(del);
    return removed.length;
  }

  async close(): Promise<void> {
    await this.box.close().catch(() => {});
    await this.user.close().catch(() => {});
  }
}
