/**
 * sieve-duplicate - the per-user record of what was already seen or answered, with an expiry
 * (Pigeonhole's duplicate database, ~/.dovecot.lda-dupes, which Postern does not read or
 * write: its own file is ~/.postern-sieve-dupes). Used by vacation (one reply per sender per
 * period), the duplicate test (RFC 7352), and redirect (a message redirected once per
 * recipient address: the loop guard).
 *
 * File format: one "KEY<TAB>EXPIRY-UNIX-SECONDS" per line, keys hashed (SHA-1 hex). Rewritten
 * whole through a temporary file and rename; at most DUPLICATE_MAX_ENTRIES entries (expired ones
 * first, then the oldest, are dropped). A file that cannot be read counts as empty; one that
 * cannot be written is logged by the caller (a reply may then be sent twice, never lost mail).
 */
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';

export const DUPLICATE_MAX_ENTRIES = 10_000;

export class SieveDuplicateDb {
  private readonly path: string | undefined;
  private entries: Map<string, number> | undefined;
  private dirty = false;
  private readonly now: () => number;

  /** path undefined: nothing is remembered (a user without home). */
  constructor(path: string | undefined, now: () => number = () => Date.now()) {
    this.path = path;
    this.now = now;
  }

  static hash(key: string): string {
    return createHash('sha1').update(key).digest('hex');
  }

  private async load(): Promise<Map<string, number>> {
    if (this.entries) return this.entries;
    const m = new Map<string, number>();
    if (this.path) {
      try {
        const t = await readFile(this.path, 'utf8');
        const nowS = this.now() / 1000;
        for (const line of t.split('\n')) {
          const [k, e] = line.split('\t');
          const exp = Number(e);
          if (k && Number.isFinite(exp) && exp > nowS) m.set(k, exp);
        }
      } catch { /* none yet */ }
    }
    this.entries = m;
    return m;
  }

  async seen(key: string): Promise<boolean> {
    const m = await this.load();
    const exp = m.get(SieveDuplicateDb.hash(key));
    return exp !== undefined && exp > this.now() / 1000;
  }

  /** Remember key for `seconds`; `refresh` false keeps an existing, later expiry. */
  async mark(key: string, seconds: number, refresh = true): Promise<void> {
    const m = await this.load();
    const k = SieveDuplicateDb.hash(key);
    const exp = Math.floor(this.now() / 1000) + seconds;
    const old = m.get(k);
    if (old !== undefined && !refresh && old > this.now() / 1000) return;
    m.delete(k);
    m.set(k, exp);
    this.dirty = true;
  }

  async flush(): Promise<void> {
    if (!this.dirty || !this.path || !this.entries) return;
    const nowS = this.now() / 1000;
    let list = [...this.entries].filter(([, e]) => e > nowS);
    if (list.length > DUPLICATE_MAX_ENTRIES) list = list.slice(list.length - DUPLICATE_MAX_ENTRIES);
    const tmp = `${this.path}.tmp.${process.pid}.${Math.random().toString(36).slice(2)}`;
    await writeFile(tmp, list.map(([k, e]) => `${k}\t${e}`).join('\n') + '\n', { mode: 0o600 });
    await rename(tmp, this.path);
    this.dirty = false;
  }
}
