/**
 * dkim-sign-table - which keys sign a message whose From: domain is D: OpenDKIM's SigningTable
 * and KeyTable in one Postfix lookup table, with the key directory as the table nobody has to
 * write.
 *
 * SUMMARY
 *   const t = dkimSigningTable(config);            // one per main.cf, shared
 *   const { keys, warnings } = await t.keysFor('example.com');
 *
 * DESCRIPTION
 *   postern_dkim_signing_maps (empty by default) is searched first, for D, then for its parent
 *   domains written with a leading dot (`.example.com` matches every subdomain, as OpenDKIM's
 *   `*.example.com`). A value is one or more keys, separated by commas or white space, each
 *       SELECTOR:/path/to/private.key            signs with d=D
 *       DOMAIN:SELECTOR:/path/to/private.key     signs with d=DOMAIN (OpenDKIM's KeyTable form),
 *                                                e.g. subdomains signed with the parent's key
 *   or `none` (D is not signed, whatever the directory holds). The algorithm is the key's.
 *   When the maps have no entry, the active keys of D in postern_dkim_key_directory
 *   (dkim-keys.ts: DIR/D.SELECTOR.ALGORITHM.key) sign: a domain with a key is signed with no
 *   further configuration.
 *
 *   Keys are read once and kept while the file's inode, size, mtime and mode stay the same; the
 *   directory listing while the directory's mtime does (a `postern dkim rotate` is seen by the
 *   next message, no reload).
 *
 * DIAGNOSTICS
 *   A key that cannot be used (dkim-keys.ts readSigningKey: permissions, not a key, too short)
 *   or a table that cannot be searched gives a warning and no key: the caller sends unsigned
 *   rather than hold mail back (OpenDKIM's On-KeyNotFound/On-InternalError = accept).
 *
 * PARAMETERS
 *   postern_dkim_signing_maps, postern_dkim_key_directory
 */
import { statSync, type Stats } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { MainConfig } from '../global/mail-conf.ts';
import { Maps } from '../global/maps.ts';
import { listKeys, readSigningKey, checkSelector, type DkimAlgorithm, type DkimKeyFile } from './dkim-keys.ts';
import type { DkimSigningKey } from './dkim-sign.ts';

export interface DkimKeysFound {
  keys: DkimSigningKey[];
  /** What could not be used, for the log (file and fix named). */
  warnings: string[];
  /** Where the keys came from: the table's name and key, or the directory. */
  source?: string;
}

interface CachedKey { ino: number; size: number; mtimeMs: number; mode: number; key: KeyObject }

const DOMAIN_RE = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/;

export class DkimSigningTable {
  readonly directory: string;
  private readonly maps: Maps | undefined;
  private readonly keyCache = new Map<string, CachedKey>();
  private dirCache: { mtimeMs: number; keys: DkimKeyFile[] } | undefined;

  constructor(directory: string, maps?: Maps) {
    this.directory = directory;
    this.maps = maps;
  }

  static async open(config: MainConfig): Promise<DkimSigningTable> {
    const spec = config.get('postern_dkim_signing_maps').trim();
    const maps = spec ? await Maps.open(spec, { paramName: 'postern_dkim_signing_maps', ...config.dictFlags }) : undefined;
    return new DkimSigningTable(config.get('postern_dkim_key_directory'), maps);
  }

  /** The keys that sign mail from `domain` (lower case). */
  async keysFor(domain: string): Promise<DkimKeysFound> {
    const warnings: string[] = [];
    if (!DOMAIN_RE.test(domain)) return { keys: [], warnings };
    if (this.maps) {
      let hit: { key: string; value: string } | undefined;
      try {
        hit = await this.findInMaps(domain);
      } catch (e) {
        return { keys: [], warnings: [`postern_dkim_signing_maps lookup of ${domain}: ${(e as Error).message}`] };
      }
      if (hit) return { ...this.fromValue(domain, hit.value, warnings), warnings, source: `${this.maps.spec} ${hit.key}` };
    }
    const keys: DkimSigningKey[] = [];
    for (const k of this.directoryKeys(domain, warnings)) {
      const key = this.load(k.file, k.algorithm, warnings);
      if (key) keys.push({ domain: k.domain, selector: k.selector, key, file: k.file });
    }
    return { keys, warnings, source: keys.length ? this.directory : undefined };
  }

  private async findInMaps(domain: string): Promise<{ key: string; value: string } | undefined> {
    const v = await this.maps!.find(domain);
    if (v !== undefined) return { key: domain, value: v };
    for (let d = domain; d.includes('.'); ) {
      d = d.slice(d.indexOf('.') + 1);
      if (!d.includes('.')) break;   // never a top-level domain
      const p = await this.maps!.find(`.${d}`);
      if (p !== undefined) return { key: `.${d}`, value: p };
    }
    return undefined;
  }

  private fromValue(domain: string, value: string, warnings: string[]): { keys: DkimSigningKey[] } {
    const keys: DkimSigningKey[] = [];
    const items = value.split(/[\s,]+/).filter((s) => s !== '');
    if (items.length === 1 && items[0]!.toLowerCase() === 'none') return { keys };
    for (const item of items) {
      const m = /^(?:([A-Za-z0-9.-]+):)?([A-Za-z0-9-]+):(\/.*)$/.exec(item);
      const d = (m?.[1] ?? domain).toLowerCase();
      if (!m || !DOMAIN_RE.test(d) || checkSelector(m[2]!) || !isAbsolute(m[3]!)) {
        warnings.push(`postern_dkim_signing_maps: ${domain}: bad entry "${item}": use SELECTOR:/path/to/key or DOMAIN:SELECTOR:/path/to/key`);
        continue;
      }
      const key = this.load(m[3]!, undefined, warnings);
      if (key) keys.push({ domain: d, selector: m[2]!.toLowerCase(), key, file: m[3]! });
    }
    return { keys };
  }

  private directoryKeys(domain: string, warnings: string[]): DkimKeyFile[] {
    let st: Stats | undefined;
    // No key directory is the usual case of a site that does not sign: no exception per
    // message for it (throwIfNoEntry), a plain stat per message.
    try { st = statSync(this.directory, { throwIfNoEntry: false }); } catch (e) {
      warnings.push(`DKIM key directory ${this.directory}: ${(e as Error).message}`);
      return [];
    }
    if (!st) return [];
    if (!this.dirCache || this.dirCache.mtimeMs !== st.mtimeMs) {
      try {
        this.dirCache = { mtimeMs: st.mtimeMs, keys: listKeys(this.directory) };
      } catch (e) {
        warnings.push((e as Error).message);
        return [];
      }
    }
    return this.dirCache.keys.filter((k) => k.active && k.domain === domain);
  }

  private load(file: string, algorithm: DkimAlgorithm | undefined, warnings: string[]): KeyObject | undefined {
    try {
      const st = statSync(file);
      const c = this.keyCache.get(file);
      if (c && c.ino === st.ino && c.size === st.size && c.mtimeMs === st.mtimeMs && c.mode === st.mode) return c.key;
      const key = readSigningKey(file, algorithm);
      this.keyCache.set(file, { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode, key });
      return key;
    } catch (e) {
      this.keyCache.delete(file);
      const m = (e as Error).message;
      warnings.push(m.startsWith('DKIM key') ? m : `DKIM key ${file}: ${m}`);
      return undefined;
    }
  }
}

const cache = new WeakMap<MainConfig, Promise<DkimSigningTable>>();

/** The signing table of this configuration, opened on first use and shared. */
export function dkimSigningTable(config: MainConfig): Promise<DkimSigningTable> {
  let p = cache.get(config);
  if (!p) {
    p = DkimSigningTable.open(config);
    cache.set(config, p);
    p.catch(() => cache.delete(config));
  }
  return p;
}
