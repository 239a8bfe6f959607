/**
 * mbox-mailbox - a READ-ONLY Mailbox on a UNIX mbox file (the seed's virtual(8) mailboxes
 * without a trailing '/', e.g. /var/mail/vhosts/myoffice.space/info).
 *
 * UIDs: when Dovecot has been here (X-IMAPbase in the first message, X-UID in each, ascending)
 * they are used as is, with Dovecot's UIDVALIDITY. Otherwise a message's UID is its position
 * and UIDVALIDITY is derived from the file (its birth or change time), which stays valid as
 * long as the file is only appended to — what delivery agents do. sync() checks that every
 * known message is still where it was; if the file was rewritten (a MUA expunged), all UIDs
 * are void and sync() reports uidValidityChanged with a new, higher UIDVALIDITY (the session
 * must end, RFC 3501 §2.3.1.1). Flags come from Status/X-Status/X-Keywords and cannot be
 * changed (PERM); APPEND and delivery append through mbox-deliver.ts.
 */
import { promises as fsp, watch, type FSWatcher } from 'node:fs';
import { Readable } from 'node:stream';
import { EventEmitter } from 'node:events';
import type {
  CopyResult, DeliverOptions, DeliverResult, FlagMode, Mailbox, MailboxChanges, MailboxStatus, MessageInfo,
  MessageSource, StoreResult,
} from '../mail-storage.ts';
import { MailError, mailErrorFromErrno } from '../mail-error.ts';
import { messageContent, parseMbox, type MboxMessage } from './mbox-format.ts';
import { countBareLf } from '../maildir/maildir-state.ts';

const READ_ONLY = 'Mailbox is read-only (mbox).';
const bus = new EventEmitter();
bus.setMaxListeners(0);
/** Tell in-process watchers that the mbox at `path` grew. */
export function notifyMboxChanged(path: string): void { bus.emit(path); }

export interface MboxOwner {
  deliver(mailbox: string, content: MessageSource, o?: DeliverOptions): Promise<DeliverResult>;
}

interface Entry { info: MessageInfo; msg: MboxMessage }

export class MboxMailbox implements Mailbox {
  readonly name: string;
  readonly readOnly = true;
  readonly path: string;
  private readonly owner: MboxOwner;
  private buf: Buffer = Buffer.alloc(0);
  private key = '';
  private entries: Entry[] = [];
  private byU = new Map<number, Entry>();
  private _uidValidity = 0;
  private _uidNext = 1;
  private modseq = 1;
  private closed = false;
  private offs: Array<() => void> = [];

  constructor(name: string, path: string, owner: MboxOwner) {
    this.name = name; this.path = path; this.owner = owner;
  }

  get uidValidity(): number { return this._uidValidity; }
  get uidNext(): number { return this._uidNext; }
  get highestModseq(): number { return this.modseq; }
  messages(): readonly MessageInfo[] { return this.entries.map((e) => e.info); }
  byUid(uid: number): MessageInfo | undefined { return this.byU.get(uid)?.info; }

  private async load(): Promise<{ changed: boolean; st?: import('node:fs').Stats }> {
    let st;
    try { st = await fsp.stat(this.path); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') { st = undefined; } else throw mailErrorFromErrno(e, `stat(${this.path})`);
    }
    const key = st ? `${st.ino}/${st.size}/${st.mtimeMs}` : 'none';
    if (key === this.key) return { changed: false };
    this.key = key;
    this.buf = st ? await fsp.readFile(this.path).catch((e) => { throw mailErrorFromErrno(e, `read(${this.path})`); }) : Buffer.alloc(0);
    return { changed: true, st };
  }

  private build(parsed: ReturnType<typeof parseMbox>, st: import('node:fs').Stats | undefined, prev: Entry[]): Entry[] {
    const xs = parsed.messages;
    const useX = parsed.imapBase !== undefined && xs.every((m, i) => m.xUid !== undefined && (i === 0 || m.xUid > xs[i - 1]!.xUid!));
    if (this._uidValidity === 0) {
      this._uidValidity = useX ? parsed.imapBase!.uidValidity : Math.max(1, Math.floor(((st?.birthtimeMs || st?.ctimeMs) ?? Date.now()) / 1000));
    }
    const out: Entry[] = xs.map((m, i) => {
      const uid = useX ? m.xUid! : i + 1;
      const old = prev[i];
      const same = old && old.info.uid === uid && old.msg.fromOffset === m.fromOffset && old.msg.length === m.length;
      let info: MessageInfo;
      if (same) info = old.info;
      else {
        const c = messageContent(this.buf, m);   // RFC822.SIZE is the size of what we serve
        info = { uid, flags: m.flags, keywords: m.keywords, size: c.length, vsize: c.length + countBareLf(c), modseq: this.modseq, recent: false, guid: `${m.fromOffset}` };
      }
      return { info, msg: m };
    });
    const last = out.length > 0 ? out[out.length - 1]!.info.uid : 0;
    this._uidNext = Math.max(useX ? parsed.imapBase!.uidNext : 0, last + 1, this._uidNext);
    return out;
  }

  async init(): Promise<void> {
    const { st } = await this.load();
    this.entries = this.build(parseMbox(this.buf), st, []);
    this.byU = new Map(this.entries.map((e) => [e.info.uid, e]));
  }

  async sync(): Promise<MailboxChanges> {
    if (this.closed) throw new MailError('PARAMS', 'Mailbox is closed.');
    const ch: MailboxChanges = { added: [], expunged: [], flagsChanged: [], uidValidityChanged: false };
    const { changed, st } = await this.load();
    if (!changed) return ch;
    const parsed = parseMbox(this.buf);
    const prev = this.entries;
    const prefixOk = prev.every((e, i) => {
      const m = parsed.messages[i];
      return m !== undefined && m.fromOffset === e.msg.fromOffset && m.fromLine === e.msg.fromLine;
    });
    this.modseq++;
    if (!prefixOk) {
      ch.uidValidityChanged = true;
      ch.expunged = prev.map((e) => e.info.uid);
      const oldUv = this._uidValidity;
      this._uidValidity = 0; this._uidNext = 1;
      this.entries = this.build(parsed, st, []);
      if (this._uidValidity <= oldUv) this._uidValidity = Math.max(oldUv + 1, Math.floor(Date.now() / 1000));
      ch.added = this.entries.map((e) => e.info);
    } else {
      this.entries = this.build(parsed, st, prev);
      ch.added = this.entries.slice(prev.length).map((e) => e.info);
      for (let i = 0; i < prev.length; i++) if (this.entries[i]!.info !== prev[i]!.info) ch.flagsChanged.push(this.entries[i]!.info);
    }
    this.byU = new Map(this.entries.map((e) => [e.info.uid, e]));
    return ch;
  }

  watch(cb: () => void): () => void {
    bus.on(this.path, cb);
    let fw: FSWatcher | undefined;
    try { fw = watch(this.path, { persistent: false }, () => cb()); fw.on('error', () => {}); } catch { /* file not there yet */ }
    const off = () => { bus.off(this.path, cb); fw?.close(); };
    this.offs.push(off);
    return off;
  }

  private entry(uid: number): Entry {
    const e = this.byU.get(uid);
    if (!e) throw new MailError('EXPUNGED', 'Message was expunged.');
    return e;
  }

  async readContent(uid: number): Promise<Buffer> { return messageContent(this.buf, this.entry(uid).msg); }
  async readMany(uids: readonly number[], each: (i: number, content: Buffer) => void): Promise<void> {
    // the mbox is in memory already: nothing to batch
    for (let i = 0; i < uids.length; i++) {
      let b: Buffer;
      try { b = await this.readContent(uids[i]!); } catch (e) { if (e instanceof MailError && e.code === 'EXPUNGED') continue; throw e; }
      each(i, b);
    }
  }
  async openContent(uid: number): Promise<Readable> { return Readable.from([await this.readContent(uid)]); }
  async internalDate(uid: number): Promise<Date> {
    // the From_ line's asctime is the delivery time
    const m = /\s(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})\s*$/.exec(this.entry(uid).msg.fromLine);
    const d = m ? new Date(m[1]! + ' UTC') : new Date(NaN);
    return Number.isNaN(d.getTime()) ? (await fsp.stat(this.path)).mtime : d;
  }
  saveDate(uid: number): Promise<Date> { return this.internalDate(uid); }

  async setFlags(_u: readonly number[], _m: FlagMode, _f: readonly string[]): Promise<StoreResult> { throw new MailError('PERM', READ_ONLY); }
  async expunge(): Promise<number[]> { throw new MailError('PERM', READ_ONLY); }
  async move(): Promise<CopyResult> { throw new MailError('PERM', READ_ONLY); }

  async copy(uids: readonly number[], dest: string): Promise<CopyResult> {
    const map: Array<[number, number]> = [];
    let uv = 0;
    for (const u of [...new Set(uids)].sort((a, b) => a - b)) {
      const e = this.byU.get(u);
      if (!e) continue;
      const r = await this.owner.deliver(dest, await this.readContent(u), { flags: e.info.flags, keywords: e.info.keywords, internalDate: await this.internalDate(u) });
      uv = r.uidValidity; map.push([u, r.uid]);
    }
    return { uidValidity: uv, map };
  }

  append(content: MessageSource, o?: DeliverOptions): Promise<DeliverResult> { return this.owner.deliver(this.name, content, o); }

  status(): MailboxStatus {
    let unseen = 0, size = 0;
    for (const e of this.entries) { if (!e.info.flags.includes('\\Seen')) unseen++; size += e.info.vsize; }
    return { messages: this.entries.length, recent: 0, uidNext: this._uidNext, uidValidity: this._uidValidity, unseen, size, highestModseq: this.modseq };
  }

  keywords(): readonly string[] { return [...new Set(this.entries.flatMap((e) => e.info.keywords))]; }

  async close(): Promise<void> { this.closed = true; for (const off of this.offs) off(); }
}

