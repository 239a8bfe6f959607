/**
 * maildir-keywords - Dovecot's `dovecot-keywords` (maildir-keywords.c): which keyword each
 * filename letter a..z stands for in this mailbox.
 *
 *   0 $Forwarded
 *   1 Junk
 *
 * A file is per mailbox directory; line "<n> <name>" gives letter chr(97+n). At most 26
 * keywords fit in file names (MAILDIR_MAX_KEYWORDS); Dovecot keeps more only in its index,
 * Postern refuses the 27th with MailError LIMIT. Updates are written through the dotlock
 * `dovecot-keywords.lock` and renamed over the file (file_dotlock_replace), re-reading first
 * so a keyword added meanwhile by Dovecot keeps its letter.
 */
import { promises as fsp, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { MailError } from '../mail-error.ts';
import { dotlockCreate } from './maildir-dotlock.ts';

export const KEYWORDS_NAME = 'dovecot-keywords';
export const MAILDIR_MAX_KEYWORDS = 26;

/** RFC 3501 flag-keyword = atom: no atom-specials, no '\\' (system flags). */
export function validKeyword(k: string): boolean {
  return k.length > 0 && k.length <= 200 && !/[\x00-\x20\x7f-\uffff(){%*"\\\]]/.test(k);
}

export function parseKeywords(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d{1,2}) (.+)$/.exec(line);
    if (!m) continue;                    // Dovecot ignores broken lines too
    const idx = Number(m[1]);
    if (idx >= MAILDIR_MAX_KEYWORDS || !validKeyword(m[2]!)) continue;
    out[idx] = m[2]!;
  }
  return out;
}

export function formatKeywords(list: readonly (string | undefined)[]): string {
  let s = '';
  list.forEach((k, i) => { if (k !== undefined) s += `${i} ${k}\n`; });
  return s;
}

/** The keyword table of one mailbox directory. */
export class MaildirKeywords {
  readonly path: string;
  private list: (string | undefined)[] = [];
  private mtime = -1;
  /** Bumped whenever the table may have changed (caches of index → name compare it). */
  generation = 0;
  constructor(dir: string) { this.path = join(dir, KEYWORDS_NAME); }

  /** Re-read if the file changed. */
  async refresh(): Promise<void> {
    // statSync: one metadata syscall per sync, no thread-pool round trip, and no exception
    // object for the usual case of a mailbox without keywords (maildir-sync.ts statDir)
    let st: Stats | undefined;
    try { st = statSync(this.path, { throwIfNoEntry: false }); } catch { st = undefined; }
    if (!st) {
      if (this.list.length > 0) this.generation++;
      this.list = []; this.mtime = -1; return;
    }
    const key = st.mtimeMs * 1e3 + st.size + st.ino;
    if (key === this.mtime) return;
    this.list = parseKeywords(await fsp.readFile(this.path, 'utf8').catch(() => ''));
    this.mtime = key;
    this.generation++;
  }

  names(): string[] { return this.list.filter((k): k is string => k !== undefined); }
  nameOf(idx: number): string | undefined { return this.list[idx]; }
  indexOf(name: string): number {
    const lower = name.toLowerCase();   // IMAP keywords are case-insensitive (Dovecot compares so)
    return this.list.findIndex((k) => k !== undefined && k.toLowerCase() === lower);
  }

  /** Indexes for names, adding missing ones to the file under the dotlock. */
  async indexesFor(names: readonly string[]): Promise<number[]> {
    for (const n of names) if (!validKeyword(n)) throw new MailError('PARAMS', `Invalid keyword: ${n.slice(0, 50)}`);
    let missing = names.filter((n) => this.indexOf(n) < 0);
    if (missing.length > 0) {
      const lock = await dotlockCreate(this.path);
      try {
        this.mtime = -1;
        await this.refresh();
        missing = [...new Set(names.filter((n) => this.indexOf(n) < 0))];
        for (const n of missing) {
          let free = this.list.findIndex((k) => k === undefined);
          if (free < 0) free = this.list.length;
          if (free >= MAILDIR_MAX_KEYWORDS) throw new MailError('LIMIT', `Too many keywords in this mailbox (maximum ${MAILDIR_MAX_KEYWORDS}).`);
          this.list[free] = n;
          this.generation++;
        }
        if (missing.length > 0) await lock.replace(formatKeywords(this.list));
      } finally { await lock.release(); }
      this.mtime = -1;
    }
    return names.map((n) => this.indexOf(n));
  }
}
