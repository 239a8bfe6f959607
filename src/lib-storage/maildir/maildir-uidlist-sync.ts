/**
 * maildir-uidlist-sync - the dovecot-uidlist side of a Maildir's sync (Dovecot
 * maildir-uidlist.c): re-read the uidlist when it changed (keeping UIDVALIDITY and never
 * lowering the next UID when it is damaged, with Dovecot's dovecot.index header as the last
 * resort), number files that have no UID under the `dovecot-uidlist.lock` dotlock (appending
 * "<uid> :<base>" records in delivery order, or rewriting the whole file through
 * dovecot-uidlist.tmp when it must be recreated). UIDs are assigned only under the lock, so
 * Postern and Dovecot never give one UID twice. The state it updates is maildir-state.ts's.
 */
import { promises as fsp, statSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { mailErrorFromErrno } from '../mail-error.ts';
import { logger } from '../../util/msg.ts';
import { dotlockCreate } from './maildir-dotlock.ts';
import { inheritOwner } from './maildir-owner.ts';
import { nameTime } from './maildir-filename.ts';
import {
  formatRecord, formatUidlist, newMailboxGuid, parseUidlist, type UidlistRecord,
} from './maildir-uidlist.ts';
import { MaildirRecords } from './maildir-state.ts';

const log = logger('lib-storage');

/** Read Dovecot's dovecot.index header for UIDVALIDITY/next UID (mail-index.h, offsets 24/28). */
async function readIndexHeader(path: string): Promise<{ uidValidity: number; nextUid: number } | undefined> {
  try {
    const fh = await fsp.open(path, 'r');
    try {
      const b = Buffer.alloc(32);
      const { bytesRead } = await fh.read(b, 0, 32, 0);
      if (bytesRead < 32 || b[0] !== 7) return undefined;
      const uv = b.readUInt32LE(24), nu = b.readUInt32LE(28);
      return uv > 0 && nu > 0 ? { uidValidity: uv, nextUid: nu } : undefined;
    } finally { await fh.close(); }
  } catch { return undefined; }
}

export abstract class MaildirUidlistSync extends MaildirRecords {
  protected hdrExt: string[] = [];
  /** Every uidlist record, by base name (also those whose file is gone). */
  protected ulByBase = new Map<string, UidlistRecord>();
  protected ulMaxUid = 0;
  protected ulKey = '';
  protected ulNeedsRewrite = false;
  protected expungedBases = new Set<string>();

  /** UID the uidlist gives a base name. */
  uidOfBase(base: string): number | undefined { return this.ulByBase.get(base)?.uid; }

  protected uidlistChanged(): boolean {
    let st: BigIntStats | undefined;
    try { st = statSync(this.uidlistPath, { bigint: true, throwIfNoEntry: false }); } catch { st = undefined; }
    if (!st) return this.ulKey !== 'none';
    return `${st.ino}/${st.size}/${st.mtimeNs}` !== this.ulKey;
  }

  /** (Re-)read dovecot-uidlist if it changed. */
  protected async readUidlist(force = false): Promise<void> {
    let st: BigIntStats | undefined;
    try { st = statSync(this.uidlistPath, { bigint: true, throwIfNoEntry: false }); } catch { st = undefined; }
    if (!st) {
      if (this.ulKey !== 'none' && this.ulKey !== '' && this.uidValidity !== 0) {
        log.warn(`${this.uidlistPath}: file disappeared; recreating it with the UIDs known to this process`);
        this.ulNeedsRewrite = true;
      }
      this.ulKey = 'none';
      return;
    }
    const key = `${st.ino}/${st.size}/${st.mtimeNs}`;
    if (key === this.ulKey && !force) return;
    const text = await fsp.readFile(this.uidlistPath, 'latin1').catch((e) => { throw mailErrorFromErrno(e, `read(${this.uidlistPath})`); });
    this.ulKey = key;
    const p = parseUidlist(text, this.uidlistPath);
    for (const w of p.problems) log.warn(w);
    if (p.needsRewrite) this.ulNeedsRewrite = true;
    let d = p.data;
    if (!d) {
      // header unusable: try Dovecot's index before giving up UIDVALIDITY (as Dovecot does)
      const idx = await readIndexHeader(join(this.indexDir, 'dovecot.index'));
      const uv = idx?.uidValidity ?? (this.uidValidity || undefined);
      if (uv !== undefined) {
        log.warn(`${this.uidlistPath}: broken header; keeping UIDVALIDITY ${uv}`);
        d = { version: 3, uidValidity: uv, nextUid: Math.max(idx?.nextUid ?? 1, this.nextUid), guid: '', hdrExt: [], records: [] };
      } else if (text.length > 0) {
        log.warn(`${this.uidlistPath}: broken header and no index; mailbox gets a new UIDVALIDITY`);
      }
      // with the UIDVALIDITY known, the records that parse keep their UIDs
      if (d) {
        const again = parseUidlist(`3 V${d.uidValidity} N${d.nextUid}\n` + text.slice(text.indexOf('\n') + 1), this.uidlistPath);
        if (again.data) d.records = again.data.records;
      }
    }
    if (!d) {
      if (this.uidValidity !== 0) this.epoch++;
      this.uidValidity = 0; this.nextUid = 1; this.guid = ''; this.hdrExt = [];
      this.ulByBase.clear(); this.ulMaxUid = 0;
      this.ulNeedsRewrite = true;
      return;
    }
    if (this.uidValidity !== 0 && d.uidValidity !== this.uidValidity) {
      log.warn(`${this.uidlistPath}: UIDVALIDITY changed ${this.uidValidity} -> ${d.uidValidity}`);
      this.epoch++;
      this.expunges = []; this.expungesFrom = this.highestModseq;
      this.byBase.clear(); this.byUid.clear(); this.byFnameStale = true; this.recs = [];
    }
    const next = Math.max(d.nextUid, this.uidValidity === d.uidValidity ? this.nextUid : 0);
    if (this.uidValidity === d.uidValidity && d.nextUid < this.nextUid && this.ulMaxUid >= d.nextUid) {
      log.warn(`${this.uidlistPath}: next_uid was lowered (${this.nextUid} -> ${d.nextUid}); keeping ${this.nextUid}`);
      this.ulNeedsRewrite = true;
    }
    this.uidValidity = d.uidValidity;
    this.nextUid = next;
    this.guid = d.guid || this.guid || newMailboxGuid();
    this.hdrExt = d.hdrExt;
    this.ulByBase.clear();
    this.ulMaxUid = 0;
    for (const r of d.records) { this.ulByBase.set(r.base, r); this.ulMaxUid = Math.max(this.ulMaxUid, r.uid); }
    if (this.nextUid <= this.ulMaxUid) this.nextUid = this.ulMaxUid + 1;
    if (p.problems.length > 0) {
      // records may be lost: never hand out a UID Dovecot's index already knows
      const idx = await readIndexHeader(join(this.indexDir, 'dovecot.index'));
      if (idx && idx.uidValidity === this.uidValidity && idx.nextUid > this.nextUid) this.nextUid = idx.nextUid;
    }
  }

  /** Under the uidlist dotlock: number `bases` (if still unnumbered) and write the uidlist. */
  async assignUids(bases: string[], extra?: () => Promise<void>, lateBases?: () => string[]): Promise<void> {
    await fsp.mkdir(this.ctlDir, { recursive: true }).catch(() => {});
    const lock = await dotlockCreate(this.uidlistPath);
    try {
      await this.readUidlist();
      if (extra) await extra();
      let recreate = this.ulNeedsRewrite || this.ulKey === 'none';
      if (this.uidValidity === 0) {
        this.uidValidity = await this.newUidValidity();
        this.nextUid = 1;
        this.guid = newMailboxGuid();
        recreate = true;
      }
      const todo = [...new Set([...bases, ...(lateBases ? lateBases() : [])])].filter((b) => !this.ulByBase.has(b));
      // delivery order: each name's time read once, not once per comparison
      const times = new Map<string, number>();
      for (const b of todo) times.set(b, nameTime(b));
      todo.sort((a, b) => times.get(a)! - times.get(b)! || (a < b ? -1 : a > b ? 1 : 0));
      const added: UidlistRecord[] = [];
      for (const b of todo) {
        const r: UidlistRecord = { uid: this.nextUid++, base: b, ext: [] };
        this.ulByBase.set(b, r); this.ulMaxUid = r.uid; added.push(r);
      }
      const stale = this.expungedBases.size;
      if (stale > 100 && stale > this.ulByBase.size / 2) recreate = true;
      if (recreate) {
        for (const b of this.expungedBases) this.ulByBase.delete(b);
        this.expungedBases.clear();
        await this.writeUidlist();
      } else if (added.length > 0) {
        const fh = await fsp.open(this.uidlistPath, 'a');
        try {
          await fh.write(added.map(formatRecord).join(''));
          await fh.datasync();
        } finally { await fh.close(); }
        await this.rememberUidlistKey();
      }
    } finally { await lock.release(); }
  }

  /** Recreate the whole uidlist via dovecot-uidlist.tmp + rename (caller holds the lock). */
  protected async writeUidlist(): Promise<void> {
    const records = [...this.ulByBase.values()].sort((a, b) => a.uid - b.uid);
    const text = formatUidlist({ version: 3, uidValidity: this.uidValidity, nextUid: this.nextUid, guid: this.guid || newMailboxGuid(), hdrExt: this.hdrExt, records });
    const tmp = this.uidlistPath + '.tmp';
    const fh = await fsp.open(tmp, 'w', 0o600);
    try { await fh.write(text, 0, 'latin1'); await fh.datasync(); } finally { await fh.close(); }
    await inheritOwner(tmp);
    await fsp.rename(tmp, this.uidlistPath);
    this.ulNeedsRewrite = false;
    await this.rememberUidlistKey();
  }

  protected async rememberUidlistKey(): Promise<void> {
    const st = await fsp.stat(this.uidlistPath, { bigint: true });
    this.ulKey = `${st.ino}/${st.size}/${st.mtimeNs}`;
  }
}
