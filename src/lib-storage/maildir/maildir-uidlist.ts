/**
 * maildir-uidlist - Dovecot's `dovecot-uidlist` (src/lib-storage/index/maildir/maildir-uidlist.c):
 * which UID each Maildir file has, the mailbox's UIDVALIDITY and next UID.
 *
 *   3 V1795805811 N3 Ge0c74e0e73d2096b3327000083ecc375      version 3 header
 *   1 :1795805811.M240044P10035.vm,S=9,W=9                   <uid> [<ext>...] :<base name>
 *   2 W32 :1795805814.M414286P10083.vm,S=28                  ext: S size, W vsize, P pop3 uidl, O pop3 order, G guid
 *
 * Version 1 headers ("1 <uidvalidity> <nextuid>", records "<uid> <name>") are read too.
 * The header's N may be stale: Dovecot appends records without rewriting it, so the next UID
 * is max(N, last uid + 1). Base names are stored without the ":2,..." info part.
 *
 * Writers hold the dotlock `dovecot-uidlist.lock` (maildir-dotlock.ts). New records are
 * appended to the file; anything else (expunged records dropped, header change, repair)
 * writes `dovecot-uidlist.tmp` and renames it over the file, as maildir_uidlist_recreate().
 *
 * Damage: Dovecot deletes a corrupted uidlist and rebuilds it with the UIDVALIDITY from its
 * index. Postern keeps what can be trusted — a valid header keeps UIDVALIDITY and next UID,
 * valid records keep their UIDs — and drops the bad lines with a warning naming file:line.
 * Only when the header itself is unreadable (and dovecot.index has no UIDVALIDITY either)
 * does the mailbox get a new UIDVALIDITY: the only case where old UIDs cannot be trusted.
 */
import { randomBytes } from 'node:crypto';

export const UIDLIST_NAME = 'dovecot-uidlist';
export const UIDLIST_VERSION = 3;

export interface UidlistRecord {
  uid: number;
  /** Base name (no ":2," info). */
  base: string;
  /** Extension fields as written ("W1234", "P..."), preserved on rewrite. */
  ext: string[];
}

export interface UidlistData {
  version: number;
  uidValidity: number;
  nextUid: number;
  /** 32 hex digits (128-bit mailbox GUID); generated when missing. */
  guid: string;
  /** Unknown header fields, kept as written. */
  hdrExt: string[];
  /** Ascending by UID. */
  records: UidlistRecord[];
}

export interface UidlistParse {
  /** undefined when the header is unusable. */
  data: UidlistData | undefined;
  /** "FILE:LINE: what" — to be logged as warnings. */
  problems: string[];
  /** True when the file must be rewritten (problems found, v1 format, no GUID). */
  needsRewrite: boolean;
  /** Byte length of the complete lines parsed (for incremental re-reads). */
  parsedBytes: number;
}

export function newMailboxGuid(): string {
  return randomBytes(16).toString('hex');
}

const MAX_UID = 0xfffffffe;

/** Parse one record line of a version-3 (or 1) uidlist; undefined with a reason if invalid. */
function parseRecord(line: string, version: number): UidlistRecord | string {
  const m = /^(\d{1,10})( +)/.exec(line);
  if (!m) return 'invalid data (expected "<uid> :<filename>")';
  const uid = Number(m[1]);
  if (uid === 0 || uid > MAX_UID) return `invalid UID ${m[1]}`;
  let rest = line.slice(m[0].length);
  const ext: string[] = [];
  if (version === 3) {
    while (rest.length > 0 && rest[0] !== ':') {
      const sp = rest.indexOf(' ');
      const field = sp < 0 ? rest : rest.slice(0, sp);
      if (!/^[A-Z]/.test(field)) return `invalid extension field "${field.slice(0, 40)}"`;
      ext.push(field);
      rest = sp < 0 ? '' : rest.slice(sp).replace(/^ +/, '');
    }
    if (rest[0] !== ':') return 'missing filename';
    rest = rest.slice(1);
  }
  if (rest === '' ) return 'missing filename';
  if (rest.includes('/') || rest.includes('\0') || rest.startsWith('.')) return 'invalid filename';
  const colon = rest.indexOf(':');
  return { uid, base: colon < 0 ? rest : rest.slice(0, colon), ext };
}

/**
 * Parse a uidlist. `text` is decoded as latin1 so any byte survives a round trip.
 * Never throws: problems are reported for the caller to log.
 */
export function parseUidlist(text: string, file: string): UidlistParse {
  const problems: string[] = [];
  const out: UidlistParse = { data: undefined, problems, needsRewrite: false, parsedBytes: 0 };
  if (text.length === 0) return out;
  const lines = text.split('\n');
  const complete = text.endsWith('\n');
  if (!complete) {
    problems.push(`${file}:${lines.length}: truncated last line (no newline) ignored`);
    lines.pop();
  } else lines.pop();
  const hdr = lines[0];
  if (hdr === undefined) { problems.push(`${file}:1: truncated header`); out.needsRewrite = true; return out; }
  let data: UidlistData | undefined;
  const hv = /^([0-9]) (.*)$/.exec(hdr);
  if (!hv) problems.push(`${file}:1: corrupted header (invalid version number)`);
  else if (hv[1] === '1') {
    const m = /^(\d+) (\d+)\s*$/.exec(hv[2]!);
    if (m && Number(m[1]) > 0 && Number(m[2]) > 0) data = { version: 1, uidValidity: Number(m[1]), nextUid: Number(m[2]), guid: '', hdrExt: [], records: [] };
    else problems.push(`${file}:1: corrupted header (version 1)`);
  } else if (hv[1] === '3') {
    let v = 0, n = 0, g = '';
    const hdrExt: string[] = [];
    let bad = '';
    for (const f of hv[2]!.split(' ').filter((x) => x !== '')) {
      const key = f[0]!, val = f.slice(1);
      if (key === 'V') { if (/^\d{1,10}$/.test(val) && Number(val) <= 0xffffffff) v = Number(val); else bad = `invalid UIDVALIDITY "${val.slice(0, 20)}"`; }
      else if (key === 'N') { if (/^\d{1,10}$/.test(val) && Number(val) <= 0xffffffff) n = Number(val); else bad = `invalid next UID "${val.slice(0, 20)}"`; }
      else if (key === 'G') { if (/^[0-9a-f]{32}$/i.test(val)) g = val.toLowerCase(); else bad = `invalid mailbox GUID "${val.slice(0, 40)}"`; }
      else hdrExt.push(f);
    }
    if (bad) problems.push(`${file}:1: ${bad}`);
    else if (v === 0 || n === 0) problems.push(`${file}:1: broken header (uidvalidity = ${v}, next_uid = ${n})`);
    else data = { version: 3, uidValidity: v, nextUid: n, guid: g, hdrExt, records: [] };
  } else problems.push(`${file}:1: unsupported version ${hv[1]}`);
  if (!data) { out.needsRewrite = true; return out; }
  if (data.version !== 3 || data.guid === '') out.needsRewrite = true;
  let prevUid = 0;
  const seen = new Set<string>();
  let bytes = Buffer.byteLength(hdr, 'latin1') + 1;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    bytes += line.length + 1;
    if (line === '') { problems.push(`${file}:${i + 1}: empty line ignored`); out.needsRewrite = true; continue; }
    const r = parseRecord(line, data.version);
    if (typeof r === 'string') { problems.push(`${file}:${i + 1}: ${r}`); out.needsRewrite = true; continue; }
    if (r.uid <= prevUid) { problems.push(`${file}:${i + 1}: UIDs not ordered (${prevUid} then ${r.uid}); line ignored`); out.needsRewrite = true; continue; }
    if (seen.has(r.base)) { problems.push(`${file}:${i + 1}: duplicate file entry ${r.base}; later UID ignored`); out.needsRewrite = true; continue; }
    seen.add(r.base);
    prevUid = r.uid;
    data.records.push(r);
  }
  if (data.nextUid <= prevUid) data.nextUid = prevUid + 1;
  out.data = data;
  out.parsedBytes = complete ? bytes : bytes;
  return out;
}

export function formatHeader(d: UidlistData): string {
  const ext = d.hdrExt.length > 0 ? ' ' + d.hdrExt.join(' ') : '';
  return `${UIDLIST_VERSION} V${d.uidValidity} N${d.nextUid} G${d.guid}${ext}\n`;
}

export function formatRecord(r: UidlistRecord): string {
  return `${r.uid}${r.ext.length > 0 ? ' ' + r.ext.join(' ') : ''} :${r.base}\n`;
}

export function formatUidlist(d: UidlistData): string {
  let s = formatHeader(d);
  for (const r of d.records) s += formatRecord(r);
  return s;
}
