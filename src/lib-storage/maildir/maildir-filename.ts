/**
 * maildir-filename - Maildir file names as Dovecot writes and reads them.
 *
 *   <secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<vsize>:2,<flags>
 *
 * The unique part follows the Maildir spec (cr.yp.to/proto/maildir.html: M microseconds,
 * P pid, Q per-process delivery counter); `,S=` (physical size) and `,W=` (size with CRLF
 * line ends, IMAP RFC822.SIZE) are Dovecot's extensions (maildir-filename.c), read back so
 * no stat() is needed. The "base name" is everything before ':' — Dovecot's key in
 * dovecot-uidlist and its maildir GUID. After ":2," come the flag letters in ASCII order:
 * D Draft, F Flagged, P Passed, R Replied (\Answered), S Seen, T Trashed (\Deleted), then
 * keyword letters a..z = line 0..25 of dovecot-keywords (maildir-keywords.c).
 */
import { hostname } from 'node:os';
import type { SystemFlag } from '../mail-storage.ts';

export const MAILDIR_INFO_SEP = ':';
export const MAILDIR_FLAGS_FULL_SEP = ':2,';

/** IMAP flag → Maildir letter (Dovecot maildir-sync.h / Maildir spec). */
export const FLAG_LETTER: Record<SystemFlag, string> = {
  '\\Draft': 'D', '\\Flagged': 'F', '\\Answered': 'R', '\\Seen': 'S', '\\Deleted': 'T',
};
const LETTER_FLAG: Record<string, SystemFlag> = { D: '\\Draft', F: '\\Flagged', R: '\\Answered', S: '\\Seen', T: '\\Deleted' };
const SYS_LETTERS = ['D', 'F', 'R', 'S', 'T'];
const FLAG_ORDER: readonly SystemFlag[] = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'];

export interface ParsedInfo {
  flags: SystemFlag[];
  /** Keyword indexes (a=0 .. z=25). */
  keywordIdx: number[];
  /** Other letters we do not interpret (e.g. P), kept when rewriting. */
  other: string;
}

/** Base name: the part before ':' (Dovecot MAILDIR_INFO_SEP). */
export function maildirBase(fname: string): string {
  const i = fname.indexOf(MAILDIR_INFO_SEP);
  return i < 0 ? fname : fname.slice(0, i);
}

const NO_INFO: ParsedInfo = Object.freeze({ flags: [], keywordIdx: [], other: '' }) as unknown as ParsedInfo;
/** Parsed info parts by their letters: a mailbox has a handful of distinct ones. */
const infoCache = new Map<string, ParsedInfo>();
const INFO_CACHE_MAX = 4096;

/**
 * Parse ":2,<letters>". Names without info (in new/) have no flags. The result is shared by
 * every name with the same letters (a first SELECT of 10,000 messages parses a few letter
 * strings, not 10,000): never mutate it or its arrays.
 */
export function parseInfo(fname: string): ParsedInfo {
  const i = fname.indexOf(MAILDIR_FLAGS_FULL_SEP);
  if (i < 0) return NO_INFO;
  const letters = fname.slice(i + MAILDIR_FLAGS_FULL_SEP.length);
  let r = infoCache.get(letters);
  if (r === undefined) {
    r = parseLetters(letters);
    if (infoCache.size >= INFO_CACHE_MAX) infoCache.clear();
    infoCache.set(letters, r);
  }
  return r;
}

function parseLetters(letters: string): ParsedInfo {
  const r: ParsedInfo = { flags: [], keywordIdx: [], other: '' };
  const set = new Set<SystemFlag>();
  for (const ch of letters) {
    const f = LETTER_FLAG[ch];
    if (f) set.add(f);
    else if (ch >= 'a' && ch <= 'z') { const k = ch.charCodeAt(0) - 97; if (!r.keywordIdx.includes(k)) r.keywordIdx.push(k); }
    else if (!r.other.includes(ch)) r.other += ch;
  }
  r.flags = internFlags(FLAG_ORDER.filter((f) => set.has(f)));
  r.keywordIdx.sort((a, b) => a - b);
  Object.freeze(r.keywordIdx);
  return Object.freeze(r) as ParsedInfo;
}

const interned = new Map<number, SystemFlag[]>();

/**
 * The one shared (frozen) array for a set of system flags, in FLAG_ORDER: 10,000 messages
 * have at most 32 different flag sets, so records share them (less memory, and a STORE can
 * compute each distinct change once). Never mutate a flags array of a record.
 */
export function internFlags(flags: readonly SystemFlag[]): SystemFlag[] {
  let mask = 0;
  for (const f of flags) mask |= 1 << FLAG_ORDER.indexOf(f);
  let a = interned.get(mask);
  if (!a) {
    a = Object.freeze(FLAG_ORDER.filter((_, i) => (mask & (1 << i)) !== 0)) as SystemFlag[];
    interned.set(mask, a);
  }
  return a;
}

/** Letters for the info part, sorted in ASCII order as Dovecot writes them. */
export function infoLetters(flags: readonly SystemFlag[], keywordIdx: readonly number[], other = ''): string {
  if (other === '' && keywordIdx.length === 0) {
    // the common case (a STORE on thousands of messages): D F R S T are already in ASCII order
    let s = '';
    for (const l of SYS_LETTERS) if (flags.includes(LETTER_FLAG[l]!)) s += l;
    return s;
  }
  const sys = [...flags.map((f) => FLAG_LETTER[f]), ...other].sort().join('');
  const kw = [...new Set(keywordIdx)].sort((a, b) => a - b).map((k) => String.fromCharCode(97 + k)).join('');
  return sys + kw;
}

/** The full file name for cur/: base + ":2," + letters. */
export function withInfo(base: string, flags: readonly SystemFlag[], keywordIdx: readonly number[], other = ''): string {
  return base + MAILDIR_FLAGS_FULL_SEP + infoLetters(flags, keywordIdx, other);
}

/**
 * `,S=` / `,W=` from the base name (Dovecot maildir_filename_get_size), undefined if absent or
 * bad: 1 to 15 digits ended by ',' or the end of the base name. No regular expression: this
 * runs twice per message on a first SELECT.
 */
export function sizeField(fname: string, key: 'S' | 'W'): number | undefined {
  const colon = fname.indexOf(MAILDIR_INFO_SEP);
  const end = colon < 0 ? fname.length : colon;
  const tag = key === 'S' ? ',S=' : ',W=';
  for (let i = fname.indexOf(tag); i >= 0 && i + 3 <= end; i = fname.indexOf(tag, i + 1)) {
    let j = i + 3;
    let n = 0;
    for (let c = fname.charCodeAt(j); j < end && c >= 48 && c <= 57; c = fname.charCodeAt(++j)) n = n * 10 + (c - 48);
    const digits = j - (i + 3);
    if (digits >= 1 && digits <= 15 && (j === end || fname.charCodeAt(j) === 44)) return n;
  }
  return undefined;
}

/** Delivery time from the name's leading seconds (used to order new files as Dovecot does). */
export function nameTime(fname: string): number {
  const m = /^(\d+)(?:\.M(\d+))?/.exec(fname);
  if (!m) return Number.MAX_SAFE_INTEGER;
  return Number(m[1]) * 1e6 + Number(m[2] ?? 0);
}

/** How long the host part is reused before hostname() is asked again (one uname(2) per name before). */
const HOST_TTL_MS = 60_000;
let host: { name: string; at: number } | undefined;

/** Host part with '/' and ':' escaped as the Maildir spec asks (\057, \072). */
function maildirHost(): string {
  const now = Date.now();
  if (!host || now - host.at >= HOST_TTL_MS || now < host.at) {
    host = { name: (hostname() || 'localhost').replace(/\//g, '\\057').replace(/:/g, '\\072').replace(/,/g, '\\054'), at: now };
  }
  return host.name;
}

let counter = 0;
let lastUsec = 0n;

/** A new unique base name (without sizes). Unique within this host: time, pid and counter. */
export function newUniqueName(now: Date = new Date()): string {
  // microseconds of the wall clock, forced to increase within this process
  let us = BigInt(now.getTime()) * 1000n + (process.hrtime.bigint() / 1000n) % 1000n;
  if (us <= lastUsec) us = lastUsec + 1n;
  lastUsec = us;
  const secs = us / 1000000n;
  const usec = us % 1000000n;
  counter++;
  return `${secs}.M${usec}P${process.pid}Q${counter}.${maildirHost()}`;
}

/** Append Dovecot's size fields to a unique name. */
export function withSizes(unique: string, size: number, vsize: number): string {
  return `${unique},S=${size},W=${vsize}`;
}

/**
 * Is this directory entry a message file? Dot files (.nfs*, .lock) and names with '/' or NUL
 * cannot be; Dovecot also skips names starting with '.' (maildir-sync.c).
 */
export function isMessageName(name: string): boolean {
  return name.length > 0 && name[0] !== '.' && !name.includes('/') && !name.includes('\0');
}
