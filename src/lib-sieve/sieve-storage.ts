/**
 * sieve-storage - a user's Sieve scripts on disk in Pigeonhole's `file` storage layout
 * (lib-sieve/storage/file/sieve-file-storage*.c), so real Dovecot finds what Postern wrote and
 * the other way round:
 *
 *   ~/sieve/NAME.sieve          one file per script (the location's path, global/sieve-location.ts)
 *   ~/sieve/tmp/                uploads are written here, fsynced, then renamed into place
 *   ~/.dovecot.sieve            symlink to the active script: `sieve/NAME.sieve` (relative when
 *                               the storage is below the link's directory, else absolute);
 *                               replaced atomically (new symlink `.dovecot.sieve-new.<sec>.P<pid>M<usec>.<host>`,
 *                               then rename over the old one), as Pigeonhole does
 *
 * Names (RFC 5804 §1.6, Pigeonhole sieve_script_name_is_valid()): valid UTF-8, 1-256 characters,
 * none of U+0000-001F, '/', U+007F, U+0080-009F, U+00FF, U+2028, U+2029. A name is never used
 * in a path before it passed that check, and every path is NAME + ".sieve" inside the storage
 * directory, so `..` cannot leave it.
 *
 * Quota (sieve_quota_max_scripts, sieve_quota_max_storage; Pigeonhole's
 * sieve_file_storage_quota_havespace()): the directory is scanned in readdir order, the script
 * being replaced is not counted, and the first limit passed is the one reported.
 *
 * Used by the ManageSieve server (managesieve/) and the web console's vacation switch
 * (console/console-vacation.ts).
 *
 * Files are created 0600 and directories 0700; when Postern runs as root they are given to the
 * user's uid/gid from the user directory, as Dovecot's managesieve runs as the mail user.
 */
import { promises as fsp, constants as C } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { SieveLocation } from '../global/sieve-location.ts';

export const SIEVE_MAX_SCRIPT_NAME_LEN = 256;

export type StorageErrorCode = 'NONEXISTENT' | 'ACTIVE' | 'ALREADYEXISTS' | 'TEMP';

export class SieveStorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'SieveStorageError';
  }
}

export type QuotaResult =
  | { ok: true }
  | { ok: false; code: 'QUOTA/MAXSCRIPTS' | 'QUOTA/MAXSTORAGE'; limit: number };

/** Pigeonhole's name check (see the header); `raw` as received, before any decoding. */
export function isValidScriptName(raw: Buffer | string): boolean {
  const b = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  if (b.length === 0 || b.length > SIEVE_MAX_SCRIPT_NAME_LEN * 4) return false;
  let s: string;
  try {
    s = new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return false;
  }
  const chars = [...s];
  if (chars.length > SIEVE_MAX_SCRIPT_NAME_LEN) return false;
  for (const ch of chars) {
    const c = ch.codePointAt(0)!;
    if (c <= 0x1f || c === 0x2f || c === 0x7f || (c >= 0x80 && c <= 0x9f) || c === 0xff || c === 0x2028 || c === 0x2029) return false;
  }
  return true;
}

/** Dovecot's str_sanitize(name, 80): control characters as '?', long names cut with "...". */
export function sanitizeName(raw: Buffer | string): string {
  const s = (typeof raw === 'string' ? raw : raw.toString('utf8')).replace(/[\x00-\x1f\x7f]/g, '?');
  const chars = [...s];
  return chars.length > 80 ? chars.slice(0, 77).join('') + '...' : s;
}

export interface SieveStorageOwner { uid: number; gid: number }

let tmpCounter = 0;

export class SieveFileStorage {
  readonly dir: string;
  readonly active: string | undefined;
  private readonly owner: SieveStorageOwner | undefined;

  constructor(loc: SieveLocation, owner?: SieveStorageOwner) {
    this.dir = loc.path;
    this.active = loc.active;
    // Only root can (and must) give the files to the mail user.
    this.owner = owner && process.getuid?.() === 0 && (owner.uid !== 0 || owner.gid !== 0) ? owner : undefined;
  }

  private file(name: string): string { return join(this.dir, `${name}.sieve`); }

  private async chown(path: string): Promise<void> {
    if (this.owner) await fsp.lchown(path, this.owner.uid, this.owner.gid);
  }

  private async ensureDir(path: string): Promise<void> {
    try {
      await fsp.mkdir(path, { mode: 0o700 });
      await this.chown(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        await this.ensureDir(dirname(path));
        return this.ensureDir(path);
      }
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }

  /** The name of the active script, or undefined (no link, a broken one, or one outside the storage). */
  async activeName(): Promise<string | undefined> {
    if (!this.active) return undefined;
    let target: string;
    try {
      target = await fsp.readlink(this.active);
    } catch {
      return undefined; // missing, or a regular file: no active script in the storage
    }
    const abs = isAbsolute(target) ? target : resolve(dirname(this.active), target);
    const b = basename(abs);
    if (!b.endsWith('.sieve') || b.length === '.sieve'.length) return undefined;
    if (resolve(dirname(abs)) !== resolve(this.dir)) return undefined;
    return b.slice(0, -'.sieve'.length);
  }

  /** Scripts in readdir order (as Pigeonhole lists them), with the active one marked. */
  async list(): Promise<{ name: string; active: boolean }[]> {
    const active = await this.activeName();
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fsp.readdir(this.dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: { name: string; active: boolean }[] = [];
    for (const d of entries) {
      if (!d.name.endsWith('.sieve') || d.name.length === '.sieve'.length) continue;
      if (!d.isFile()) continue;
      const name = d.name.slice(0, -'.sieve'.length);
      if (this.active && resolve(this.file(name)) === resolve(this.active)) continue;
      out.push({ name, active: name === active });
    }
    return out;
  }

  async exists(name: string): Promise<boolean> {
    try {
      return (await fsp.stat(this.file(name))).isFile();
    } catch {
      return false;
    }
  }

  async get(name: string): Promise<Buffer> {
    try {
      return await fsp.readFile(this.file(name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new SieveStorageError('NONEXISTENT', `Sieve script \`${sanitizeName(name)}' not found`);
      throw e;
    }
  }

  /** Write NAME.sieve atomically: tmp/ file, fsync, rename (replacing an older version). */
  async put(name: string, data: Buffer): Promise<void> {
    const tmpDir = join(this.dir, 'tmp');
    await this.ensureDir(tmpDir);
    const now = process.hrtime.bigint();
    const tmp = join(tmpDir, `${Buffer.from(name).toString('hex').slice(0, 64)}.M${now}P${process.pid}.${(++tmpCounter).toString(36)}.${hostname().replace(/[/:]/g, '_')}.tmp`);
    const fh = await fsp.open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
      if (this.owner) await fh.chown(this.owner.uid, this.owner.gid);
    } catch (e) {
      await fh.close().catch(() => {});
      await fsp.unlink(tmp).catch(() => {});
      throw e;
    }
    await fh.close();
    try {
      await fsp.rename(tmp, this.file(name));
    } catch (e) {
      await fsp.unlink(tmp).catch(() => {});
      throw e;
    }
  }

  async delete(name: string): Promise<void> {
    if ((await this.activeName()) === name) throw new SieveStorageError('ACTIVE', 'Cannot delete the active Sieve script.');
    try {
      await fsp.unlink(this.file(name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new SieveStorageError('NONEXISTENT', `Sieve script \`${sanitizeName(name)}' not found`);
      throw e;
    }
  }

  /** RENAMESCRIPT: link + unlink (never replaces an existing script); the active link follows. */
  async rename(from: string, to: string): Promise<void> {
    if (!(await this.exists(from))) throw new SieveStorageError('NONEXISTENT', `Sieve script \`${sanitizeName(from)}' not found`);
    const wasActive = (await this.activeName()) === from;
    try {
      await fsp.link(this.file(from), this.file(to));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new SieveStorageError('ALREADYEXISTS', 'A sieve script with that name already exists.');
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new SieveStorageError('NONEXISTENT', `Sieve script \`${sanitizeName(from)}' not found`);
      throw e;
    }
    if (wasActive) await this.replaceLink(to);
    await fsp.unlink(this.file(from));
  }

  /**
   * SETACTIVE NAME: 'already' when it is the active one; SETACTIVE "": 'deactivated' or 'none'.
   * A regular file where the link belongs (a script written by hand) is kept as the script
   * `dovecot.orig` before the link replaces it, so no user script is lost.
   */
  async setActive(name: string): Promise<'activated' | 'already' | 'deactivated' | 'none'> {
    if (!this.active) throw new SieveStorageError('TEMP', 'Sieve storage has no active script link (set active= in plugin { sieve })');
    if (name === '') {
      try {
        const st = await fsp.lstat(this.active);
        if (!st.isSymbolicLink()) return 'none';
        const was = await this.activeName();
        await fsp.unlink(this.active);
        return was === undefined ? 'none' : 'deactivated';
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
        throw e;
      }
    }
    if (!(await this.exists(name))) throw new SieveStorageError('NONEXISTENT', `Sieve script \`${sanitizeName(name)}' not found`);
    if ((await this.activeName()) === name) return 'already';
    try {
      const st = await fsp.lstat(this.active);
      if (st.isFile() && !(await this.exists('dovecot.orig'))) {
        await this.ensureDir(this.dir);
        await fsp.rename(this.active, this.file('dovecot.orig'));
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    await this.replaceLink(name);
    return 'activated';
  }

  private async replaceLink(name: string): Promise<void> {
    const active = this.active!;
    await this.ensureDir(dirname(active));
    const rel = relative(dirname(active), this.file(name));
    const target = rel.startsWith('..') || isAbsolute(rel) ? this.file(name) : rel;
    const now = Date.now();
    const usec = String(Number(process.hrtime.bigint() % 1000000n));
    const tmp = `${active}-new.${Math.floor(now / 1000)}.P${process.pid}M${usec}.${hostname().replace(/[/:]/g, '_')}`;
    await fsp.unlink(tmp).catch(() => {});
    await fsp.symlink(target, tmp);
    await this.chown(tmp).catch(() => {});
    try {
      await fsp.rename(tmp, active);
    } catch (e) {
      await fsp.unlink(tmp).catch(() => {});
      throw e;
    }
  }

  /** Would a script `name` of `size` bytes fit (the Pigeonhole scan, see the header)? */
  async haveSpace(name: string, size: number, maxScripts: number, maxStorage: number): Promise<QuotaResult> {
    if (maxScripts === 0 && maxStorage === 0) return { ok: true };
    let count = 1;
    let storage = size;
    let entries: string[];
    try {
      entries = await fsp.readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') entries = [];
      else throw e;
    }
    for (const f of entries) {
      if (!f.endsWith('.sieve') || f.length === '.sieve'.length) continue;
      const n = f.slice(0, -'.sieve'.length);
      if (this.active && resolve(this.file(n)) === resolve(this.active)) continue;
      const replaced = n === name;
      if (maxScripts > 0 && !replaced && ++count > maxScripts) return { ok: false, code: 'QUOTA/MAXSCRIPTS', limit: maxScripts };
      if (maxStorage > 0 && !replaced) {
        let st;
        try { st = await fsp.stat(join(this.dir, f)); } catch { continue; }
        storage += st.size;
        if (storage > maxStorage) return { ok: false, code: 'QUOTA/MAXSTORAGE', limit: maxStorage };
      }
    }
    return { ok: true };
  }
}
