/**
 * maildir-list - mailbox names ↔ directories, the folder list, `subscriptions` and
 * `dovecot-uidvalidity`, as Dovecot 2.3's mailbox-list drivers lay them out.
 *
 * LAYOUT=maildir++ (default, mailbox-list-maildir.c): INBOX is the root; "Archive/2024" is
 * `<root>/.Archive.2024` ('.' is the on-disk separator, so names may not contain '.'),
 * subfolders carry an empty `maildirfolder` file. LAYOUT=fs (mailbox-list-fs.c): INBOX is the
 * root, "Archive/2024" is `<root>/Archive/2024`; "cur", "new", "tmp" cannot be folder names.
 * Each level is stored in modified UTF-7 ("Entwürfe" → `.Entw&APw-rfe`) unless the UTF8 option.
 *
 * `subscriptions` (subscription-file.c, version 2): "V\t2\n\n", then one name per line with
 * TAB between hierarchy levels, each level in its storage (mUTF-7) form:
 *   V<TAB>2 / (empty line) / Sent / Archive<TAB>2024
 * Version-1 files (no header, levels separated by the storage separator) are read too and
 * rewritten as version 2 on the next change. Updates go through `subscriptions.lock`.
 *
 * `dovecot-uidvalidity` (mailbox-uidvalidity.c): the last UIDVALIDITY given out, in hex, plus an
 * empty read-only marker file `dovecot-uidvalidity.<hex>`; a new mailbox gets
 * max(now, last + 1) so UIDVALIDITYs never repeat.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { MailError, mailErrorFromErrno } from '../mail-error.ts';
import type { MailLocation } from '../../global/mail-location.ts';
import { MAILBOX_NAME_TOO_LONG, validateMailboxName } from '../mailbox-name.ts';
import { mutf7ToUtf8, mutf7Encode } from '../../lib-imap/imap-utf7.ts';
import { dotlockCreate } from './maildir-dotlock.ts';
import { inheritOwner } from './maildir-owner.ts';
import { logger } from '../../util/msg.ts';

const log = logger('lib-storage');

export const SUBSCRIPTIONS_NAME = 'subscriptions';
export const UIDVALIDITY_NAME = 'dovecot-uidvalidity';
export const MAILDIRFOLDER_NAME = 'maildirfolder';
const NAME_MAX = 255;

export class MaildirList {
  readonly loc: MailLocation;
  /** Namespace separator shown to users. */
  readonly sep: string;
  private readonly subsName: string;
  /** `subsName`: the subscriptions file name ("subscriptions"; Dovecot's mbox driver uses ".subscriptions"). */
  constructor(loc: MailLocation, sep: string, subsName = SUBSCRIPTIONS_NAME) {
    if (sep !== '/' && sep !== '.') throw new MailError('PARAMS', `namespace separator "${sep}" is not supported (use '/' or '.')`);
    this.loc = loc; this.sep = sep; this.subsName = subsName;
  }

  private encodeLevel(p: string): string { return this.loc.utf8 ? p : mutf7Encode(p); }
  private decodeLevel(p: string): string | undefined { return this.loc.utf8 ? p : mutf7ToUtf8(p); }

  /** Validate a name; returns normalised components (INBOX upper-cased). Throws PARAMS. */
  components(name: string): string[] {
    const parts = validateMailboxName(name, this.sep);
    for (const p of parts) {
      if (this.loc.layout === 'maildir++' && p.includes('.')) throw new MailError('PARAMS', "Character not allowed in mailbox name: '.'");
      if (this.loc.layout === 'fs' && (p.startsWith('.') || p === 'cur' || p === 'new' || p === 'tmp')) {
        throw new MailError('PARAMS', `Mailbox name level "${p}" is reserved.`);
      }
    }
    if (this.loc.layout === 'maildir++') {
      const dirName = '.' + parts.map((p) => this.encodeLevel(p)).join('.');
      if (Buffer.byteLength(dirName) > NAME_MAX) throw new MailError('PARAMS', MAILBOX_NAME_TOO_LONG);
    } else {
      for (const p of parts) if (Buffer.byteLength(this.encodeLevel(p)) > NAME_MAX) throw new MailError('PARAMS', MAILBOX_NAME_TOO_LONG);
    }
    return parts;
  }

  /** The normalised UTF-8 name. */
  normalize(name: string): string { return this.components(name).join(this.sep); }

  /** Directory of a mailbox (always inside the root: components cannot contain '/' or be '..'). */
  dirOf(name: string): string {
    const parts = this.components(name);
    if (parts.length === 1 && parts[0] === 'INBOX') return this.loc.inbox ?? this.loc.root;
    const enc = parts.map((p) => this.encodeLevel(p));
    const dir = this.loc.layout === 'maildir++' ? join(this.loc.root, '.' + enc.join('.')) : join(this.loc.root, ...enc);
    if (!dir.startsWith(this.loc.root + '/')) throw new MailError('PARAMS', 'Invalid mailbox name.', `path ${dir} escapes ${this.loc.root}`);
    return dir;
  }

  /** Where dovecot-uidlist/-keywords of a mailbox live (CONTROL= moves them, as in Dovecot). */
  controlDirOf(name: string): string {
    if (!this.loc.control) return this.dirOf(name);
    const d = this.dirOf(name);
    const rel = d === this.loc.root || d === this.loc.inbox ? '' : d.slice(this.loc.root.length + 1);
    return rel ? join(this.loc.control, rel) : this.loc.control;
  }

  /** Every existing mailbox name (UTF-8), INBOX included; undecodable directories are skipped with a warning. */
  async listNames(): Promise<string[]> {
    const names = ['INBOX'];
    if (this.loc.layout === 'maildir++') {
      let ents: import('node:fs').Dirent[] = [];
      try { ents = await fsp.readdir(this.loc.root, { withFileTypes: true }); } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw mailErrorFromErrno(e, `readdir(${this.loc.root})`);
      }
      for (const e of ents) {
        if (!e.name.startsWith('.') || e.name === '.' || e.name === '..') continue;
        if (!e.isDirectory()) continue;   // symlinked folders are not followed (they could leave the root)
        if (e.name.startsWith('.DOVECOT-TRASHED')) continue;
        const levels = e.name.slice(1).split('.');
        const dec = levels.map((l) => this.decodeLevel(l));
        if (levels.some((l) => l === '') || dec.some((d) => d === undefined || d.includes(this.sep) && this.sep !== '.')) {
          log.warn(`${join(this.loc.root, e.name)}: directory name is not a valid mailbox name; ignored`);
          continue;
        }
        const n = (dec as string[]).join(this.sep);
        if (n.toUpperCase() === 'INBOX') continue;
        names.push(n);
      }
    } else {
      const walk = async (dir: string, prefix: string[]): Promise<void> => {
        let ents: import('node:fs').Dirent[] = [];
        try { ents = await fsp.readdir(dir, { withFileTypes: true }); } catch { return; }
        for (const e of ents) {
          if (e.name.startsWith('.') || !e.isDirectory()) continue;
          if (e.name === 'cur' || e.name === 'new' || e.name === 'tmp') continue;
          const d = this.decodeLevel(e.name);
          if (d === undefined) { log.warn(`${join(dir, e.name)}: directory name is not a valid mailbox name; ignored`); continue; }
          const parts = [...prefix, d];
          if (!(parts.length === 1 && d.toUpperCase() === 'INBOX')) names.push(parts.join(this.sep));
          if (prefix.length < 20) await walk(join(dir, e.name), parts);
        }
      };
      await walk(this.loc.root, []);
    }
    return names;
  }

  // ---- subscriptions --------------------------------------------------------------------

  private get subsPath(): string { return join(this.loc.control ?? this.loc.root, this.subsName); }

  /** Subscribed names (UTF-8, with this.sep), in file order. */
  async readSubscriptions(): Promise<string[]> {
    let text: string;
    try { text = await fsp.readFile(this.subsPath, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw mailErrorFromErrno(e, `read(${this.subsPath})`);
    }
    const lines = text.split('\n');
    let v2 = false;
    if (lines[0] === 'V\t2') { v2 = true; lines.shift(); if ((lines[0] as string | undefined) === '') lines.shift(); }
    const out: string[] = [];
    lines.forEach((line, i) => {
      if (line === '') return;
      const levels = v2 ? line.split('\t') : line.split(this.loc.layout === 'fs' ? '/' : '.');
      const dec = levels.map((l) => this.decodeLevel(l));
      if (dec.some((d) => d === undefined || d === '')) { log.warn(`${this.subsPath}:${i + (v2 ? 3 : 1)}: invalid mailbox name ignored`); return; }
      // a name of another namespace (shared/OWNER/...) as Dovecot writes it with Maildir++: its
      // '.' are the level breaks, its '/' stay (see setSubscribed)
      const n = (dec as string[]).join(this.sep === '/' && this.loc.layout === 'maildir++' && dec.some((d) => d!.includes('/')) ? '.' : this.sep);
      if (!out.includes(n)) out.push(n);
    });
    return out;
  }

  /** A subscription line: the levels tab-separated (Dovecot writes another namespace's name with '.' as the break in Maildir++). */
  private subscriptionLine(n: string): string {
    if (this.sep === '/' && this.loc.layout === 'maildir++' && n.includes('.')) return n.split('.').map((p) => this.encodeLevel(p)).join('\t');
    return n.split(this.sep).map((p) => this.encodeLevel(p)).join('\t');
  }

  /** `foreign`: a name of another namespace (shared/OWNER/...), checked only as a name, not as one of ours. */
  async setSubscribed(name: string, on: boolean, foreign = false): Promise<void> {
    const norm = foreign ? validateMailboxName(name, this.sep).join(this.sep) : this.normalize(name);
    await fsp.mkdir(this.loc.control ?? this.loc.root, { recursive: true }).catch(() => {});
    const lock = await dotlockCreate(this.subsPath);
    try {
      const cur = await this.readSubscriptions();
      const has = cur.includes(norm);
      if (has === on) return;
      const next = on ? [...cur, norm] : cur.filter((n) => n !== norm);
      let text = 'V\t2\n\n';
      for (const n of next) text += this.subscriptionLine(n) + '\n';
      await lock.replace(text);
    } finally { await lock.release(); }
  }

  // ---- UIDVALIDITY -------------------------------------------------------------------------

  /** A fresh UIDVALIDITY for a new mailbox (mailbox_uidvalidity_next). */
  async nextUidValidity(): Promise<number> {
    const path = join(this.loc.control ?? this.loc.root, UIDVALIDITY_NAME);
    await fsp.mkdir(this.loc.control ?? this.loc.root, { recursive: true });
    const lock = await dotlockCreate(path);
    try {
      let last = 0;
      try { last = parseInt((await fsp.readFile(path, 'latin1')).trim(), 16) || 0; } catch { /* none yet */ }
      const dir = this.loc.control ?? this.loc.root;
      let marker: string | undefined;
      for (const n of await fsp.readdir(dir)) {
        const m = /^dovecot-uidvalidity\.([0-9a-f]{1,8})$/.exec(n);
        if (m) { marker = n; last = Math.max(last, parseInt(m[1]!, 16)); }
      }
      let next = Math.floor(Date.now() / 1000);
      if (next <= last) next = last + 1;
      if (next > 0xffffffff) next = 1;
      const hex = next.toString(16).padStart(8, '0');
      const newMarker = join(dir, `${UIDVALIDITY_NAME}.${hex}`);
      if (marker) await fsp.rename(join(dir, marker), newMarker).catch(() => {});
      else await fsp.writeFile(newMarker, '', { mode: 0o444 }).then(() => inheritOwner(newMarker), () => {});
      await lock.replace(hex);
      return next;
    } finally { await lock.release(); }
  }
}
