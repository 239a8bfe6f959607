/**
 * mbox-storage - MailUser for `mail_location = mbox:~/mail:INBOX=/var/mail/%u`, the layout of
 * the seed's mbox mailboxes. Read-only except for delivery: INBOX is the INBOX= file (default
 * <root>/inbox), other mailboxes are files under the root ("Lists/work" = <root>/Lists/work),
 * names in modified UTF-7 on disk. Subscriptions: <root>/.subscriptions (Dovecot's mbox name
 * for the file, same version-2 format as Maildir). deliver() appends with mbox-deliver.ts.
 * create() makes an empty file; delete/rename/flag changes are refused (PERM) in this version.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { UserRecord } from '../../lib-auth/user-directory.ts';
import type { DeliverOptions, DeliverResult, MailboxInfo, MailboxStatus, MailUser, MessageSource, QuotaUsage } from '../mail-storage.ts';
import { MailError } from '../mail-error.ts';
import type { MailLocation } from '../../global/mail-location.ts';
import { validateMailboxName } from '../mailbox-name.ts';
import { mutf7ToUtf8, mutf7Encode } from '../../lib-imap/imap-utf7.ts';
import { MaildirList } from '../maildir/maildir-list.ts';
import { mboxDeliver } from './mbox-deliver.ts';
import { MboxMailbox, notifyMboxChanged } from './mbox-mailbox.ts';

const NOT_SUPPORTED = 'Not supported for mbox mailboxes.';

async function toBuffer(src: MessageSource): Promise<Buffer> {
  if (typeof src === 'string') return Buffer.from(src);
  if (src instanceof Uint8Array) return Buffer.from(src);
  const parts: Buffer[] = [];
  for await (const c of src as AsyncIterable<Uint8Array>) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

export class MboxUser implements MailUser {
  readonly user: string;
  readonly separator: string;
  private readonly loc: MailLocation;
  private readonly rec: UserRecord;
  private readonly subs: MaildirList;

  constructor(u: UserRecord, loc: MailLocation, sep: string) {
    this.user = u.user; this.rec = u; this.loc = loc; this.separator = sep;
    // subscriptions use the same file format; only the file name differs (.subscriptions)
    const { control: _c, ...rest } = loc;
    this.subs = new MaildirList({ ...rest, layout: 'fs' }, sep, '.subscriptions');
  }

  private pathOf(name: string): { norm: string; path: string } {
    const parts = validateMailboxName(name, this.separator);
    for (const p of parts) if (p.startsWith('.')) throw new MailError('PARAMS', 'Invalid mailbox name.');
    const norm = parts.join(this.separator);
    if (norm === 'INBOX') return { norm, path: this.loc.inbox ?? join(this.loc.root, 'inbox') };
    return { norm, path: join(this.loc.root, ...parts.map((p) => (this.loc.utf8 ? p : mutf7Encode(p)))) };
  }

  async exists(name: string): Promise<boolean> {
    const { norm, path } = this.pathOf(name);
    if (norm === 'INBOX') return true;
    return fsp.stat(path).then((s) => s.isFile(), () => false);
  }

  async open(name: string): Promise<MboxMailbox> {
    const { norm, path } = this.pathOf(name);
    if (!(await this.exists(norm))) throw new MailError('NOTFOUND', `Mailbox doesn't exist: ${norm}`);
    const mb = new MboxMailbox(norm, path, this);
    await mb.init();
    return mb;
  }

  async status(name: string): Promise<MailboxStatus> {
    const mb = await this.open(name);
    try { return mb.status(); } finally { await mb.close(); }
  }

  async deliver(mailbox: string, content: MessageSource, o: DeliverOptions = {}): Promise<DeliverResult> {
    const { norm, path } = this.pathOf(mailbox);
    if (!(await this.exists(norm))) throw new MailError('NOTFOUND', `Mailbox doesn't exist: ${norm}`);
    const buf = await toBuffer(content);
    const size = await mboxDeliver(path, buf, { date: o.internalDate ?? new Date(), ...(o.maxSize !== undefined ? { maxSize: o.maxSize } : {}) });
    notifyMboxChanged(path);
    const mb = new MboxMailbox(norm, path, this);
    await mb.init();
    const last = mb.messages().at(-1);
    return { uidValidity: mb.uidValidity, uid: last?.uid ?? 0, size };
  }

  async list(): Promise<MailboxInfo[]> {
    const out: MailboxInfo[] = [{ name: 'INBOX', attributes: ['\\NoInferiors'], subscribed: false, nonExistent: false }];
    const walk = async (dir: string, prefix: string[]): Promise<void> => {
      let ents: import('node:fs').Dirent[] = [];
      try { ents = await fsp.readdir(dir, { withFileTypes: true }); } catch { return; }
      for (const e of ents) {
        if (e.name.startsWith('.')) continue;
        const d = this.loc.utf8 ? e.name : mutf7ToUtf8(e.name);
        if (d === undefined) continue;
        const name = [...prefix, d].join(this.separator);
        if (e.isFile() && name.toUpperCase() !== 'INBOX' && join(dir, e.name) !== this.loc.inbox) out.push({ name, attributes: ['\\NoInferiors'], subscribed: false, nonExistent: false });
        else if (e.isDirectory() && prefix.length < 20) { out.push({ name, attributes: ['\\Noselect', '\\HasChildren'], subscribed: false, nonExistent: false }); await walk(join(dir, e.name), [...prefix, d]); }
      }
    };
    await walk(this.loc.root, []);
    const subs = new Set(await this.subscriptions());
    for (const i of out) if (subs.has(i.name)) { i.subscribed = true; i.attributes.push('\\Subscribed'); }
    return out;
  }

  subscriptions(): Promise<string[]> { return this.subs.readSubscriptions(); }

  async setSubscribed(name: string, on: boolean): Promise<void> {
    this.pathOf(name);
    return this.subs.setSubscribed(name, on);
  }

  async create(name: string): Promise<void> {
    const { norm, path } = this.pathOf(name);
    if (norm === 'INBOX' || (await this.exists(norm))) throw new MailError('EXISTS', 'Mailbox already exists');
    await fsp.mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
    await fsp.writeFile(path, '', { flag: 'wx', mode: 0o600 });
  }

  async delete(): Promise<void> { throw new MailError('PERM', NOT_SUPPORTED); }
  async rename(): Promise<void> { throw new MailError('PERM', NOT_SUPPORTED); }

  async quota(): Promise<QuotaUsage> {
    let bytes = 0, messages = 0;
    for (const i of await this.list()) {
      if (i.attributes.includes('\\Noselect')) continue;
      const s = await this.status(i.name).catch(() => undefined);
      if (s) { bytes += s.size; messages += s.messages; }
    }
    const q: QuotaUsage = { bytes, messages };
    if (this.rec.quotaBytes !== undefined) q.limitBytes = this.rec.quotaBytes;
    if (this.rec.quotaMessages !== undefined) q.limitMessages = this.rec.quotaMessages;
    return q;
  }

  async close(): Promise<void> {}
}
