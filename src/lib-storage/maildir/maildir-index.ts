/**
 * maildir-index - `postern-index`: Postern's own per-mailbox cache of CONDSTORE/QRESYNC state
 * (RFC 7162), next to dovecot-uidlist (the CONTROL directory). It is a CACHE: deleting it, or
 * any damage to it, loses nothing but the modseqs (clients then refetch flags, as after a
 * restart without it). Dovecot ignores it: its Maildir++ listing only looks at directories
 * starting with `.`, and LAYOUT=fs lists directories; plain files in the root are skipped
 * (as dovecot-uidlist, dovecot-keywords, subscriptions are).
 *
 * FORMAT (latin1 text, one record per line, LF):
 *   postern-index 1 C                      magic, version 1, state: C = clean, D = dirty
 *   V<uidvalidity> H<highestmodseq> B<base> M<cur/ mtime ns> T<when cur/ was read, ns> E<from>
 *                                          E: every expunge with a modseq above it is listed
 *   -<uid> <modseq - B>                    recent expunges (ascending modseq, at most EXPUNGES_MAX)
 *   <uid> <modseq - B> <name suffix>       per live message, ascending UID; the suffix is the
 *                                          file name after the base (":2,FS", or empty): the
 *                                          flags/keywords it had when it got that modseq
 *   .                                      end marker (a truncated file has none)
 * The state byte is at a fixed offset (STATE_OFFSET) so it can be flipped in place.
 *
 * WHEN IS A PERSISTED MODSEQ TRUSTED (see loadIndex / maildir-sync.ts rebuild):
 *  - Never when the file is unreadable in any way, has another version or UIDVALIDITY, or
 *    holds numbers above MODSEQ_MAX: then it is ignored with a warning.
 *  - A message keeps its modseq only if its file name suffix is still the recorded one (an
 *    outside writer — Dovecot, mutt — changed it otherwise: new modseq), AND either
 *      * the file is "clean": written when no writable Postern handle was open on the mailbox
 *        (so its writer made no change after it; the first writable open flips it to D in
 *        place before any STORE can run), or
 *      * cur/ still has the recorded mtime and was read more than a second after it (Dovecot's
 *        DIR_DELAYED_REFRESH rule): nothing was renamed in cur/ since the snapshot.
 *    Otherwise (a crash while dirty and cur/ changed) a change made by Postern after the last
 *    write could have been changed back (A→B→A) with the client having seen B: every message
 *    then gets a new modseq, exactly as without the file.
 *  - HIGHESTMODSEQ never goes backwards for one UIDVALIDITY (RFC 7162 §3.1.2.1): the new base
 *    is max(time-derived µs base, H + 1). If the file is older than the latest changes (crash
 *    between writes), the time base still exceeds every modseq handed out before: each process
 *    starts at >= its start time in µs and assigns far fewer than one modseq per µs, so its
 *    highest modseq stays below the wall clock in µs; a later start is above it.
 * Residual risk (documented in docs/mail-store.md): two Postern processes serving IMAP on one
 * mailbox, one writing a clean file while the other changes a flag back and crashes before
 * its next write (a few seconds window).
 *
 * WRITES: atomically (unique tmp name + rename, no fsync: a cache), debounced by the caller.
 */
import { closeSync, lchownSync, openSync, statSync, readSync, writeSync, promises as fsp, writeFileSync, renameSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { inheritOwner } from './maildir-owner.ts';

export const INDEX_NAME = 'postern-index';
const MAGIC = 'postern-index 1 ';
const STATE_OFFSET = MAGIC.length;
/** Modseqs are JS numbers: refuse anything that could lose precision when incremented. */
export const MODSEQ_MAX = 2 ** 52;
/** How many recent expunges are kept for QRESYNC (older: the caller answers a superset). */
export const EXPUNGES_MAX = 1000;
/** A file larger than this is not a sane index for any mailbox (about 16 M messages). */
const FILE_MAX = 1 << 30;

export interface IndexExpunge { uid: number; modseq: number }

/** What the file holds besides its messages (shared by what is read and what is written). */
interface IndexHeader {
  uidValidity: number;
  highestModseq: number;
  clean: boolean;
  /** cur/ mtime (ns) the snapshot corresponds to, and when cur/ was read (ns). */
  curMtimeNs: bigint;
  curCheckNs: bigint;
  /** Every expunge with a modseq above this is in `expunges`. */
  expungesFrom: number;
}

export interface IndexData extends IndexHeader {
  expunges: IndexExpunge[];
  /** uid → [modseq, name suffix]. */
  msgs: Map<number, { modseq: number; suffix: string }>;
}

export interface IndexSnapshot extends IndexHeader {
  expunges: readonly IndexExpunge[];
  /** Live messages, ascending UID. */
  recs: ReadonlyArray<{ uid: number; modseq: number; base: string; fname: string }>;
}

export function formatIndex(s: IndexSnapshot): string {
  let b = s.highestModseq;
  for (const r of s.recs) if (r.modseq < b) b = r.modseq;
  for (const e of s.expunges) if (e.modseq < b) b = e.modseq;
  const out: string[] = [
    MAGIC + (s.clean ? 'C' : 'D'),
    `V${s.uidValidity} H${s.highestModseq} B${b} M${s.curMtimeNs} T${s.curCheckNs} E${s.expungesFrom}`,
  ];
  for (const e of s.expunges) out.push(`-${e.uid} ${e.modseq - b}`);
  for (const r of s.recs) out.push(`${r.uid} ${r.modseq - b} ${r.fname.slice(r.base.length)}`);
  out.push('.', '');
  return out.join('\n');
}

const HDR = /^V(\d{1,10}) H(\d{1,16}) B(\d{1,16}) M(\d{1,20}) T(\d{1,20}) E(\d{1,16})$/;
const EXP = /^-(\d{1,10}) (\d{1,16})$/;
const MSG = /^(\d{1,10}) (\d{1,16}) ([\x21-\x7e]*)$/;

/** Parse; a string says why the file is unusable. */
export function parseIndex(text: string): IndexData | string {
  const lines = text.split('\n');
  if (lines[0] !== MAGIC + 'C' && lines[0] !== MAGIC + 'D') return lines[0]?.startsWith('postern-index ') ? 'unsupported version' : 'not a postern-index file';
  if (lines.length < 4 || lines[lines.length - 1] !== '' || lines[lines.length - 2] !== '.') return 'truncated';
  const h = HDR.exec(lines[1]!);
  if (!h) return 'bad header line';
  const uidValidity = Number(h[1]), highestModseq = Number(h[2]), base = Number(h[3]);
  if (uidValidity < 1 || uidValidity > 0xffffffff) return 'bad UIDVALIDITY';
  const expungesFrom = Number(h[6]);
  if (highestModseq > MODSEQ_MAX || base > highestModseq || expungesFrom > highestModseq) return 'modseq out of range';
  const d: IndexData = {
    uidValidity, highestModseq, clean: lines[0]!.endsWith('C'), curMtimeNs: BigInt(h[4]!), curCheckNs: BigInt(h[5]!),
    expungesFrom, expunges: [], msgs: new Map(),
  };
  let lastUid = 0;
  for (let i = 2; i < lines.length - 2; i++) {
    const l = lines[i]!;
    const e = l.charCodeAt(0) === 45 ? EXP.exec(l) : undefined;
    if (e) {
      const uid = Number(e[1]), modseq = base + Number(e[2]);
      if (uid < 1 || uid > 0xffffffff || modseq > highestModseq) return `line ${i + 1}: bad expunge record`;
      if (d.expunges.length >= EXPUNGES_MAX || d.msgs.size > 0) return `line ${i + 1}: expunge record out of place`;
      d.expunges.push({ uid, modseq });
      continue;
    }
    const m = MSG.exec(l);
    if (!m) return `line ${i + 1}: bad record`;
    const uid = Number(m[1]), modseq = base + Number(m[2]);
    if (uid <= lastUid || uid > 0xffffffff || modseq > highestModseq) return `line ${i + 1}: bad record`;
    lastUid = uid;
    d.msgs.set(uid, { modseq, suffix: m[3]! });
  }
  return d;
}

/**
 * Read the index of a mailbox. Returns undefined (after calling warn) for any unusable file,
 * and undefined silently when there is none.
 */
export async function loadIndex(ctlDir: string, uidValidity: number, warn: (s: string) => void): Promise<IndexData | undefined> {
  const path = join(ctlDir, INDEX_NAME);
  let text: string;
  try {
    const st = await fsp.lstat(path);
    if (!st.isFile()) { warn(`${path}: not a regular file; ignored (remove it)`); return undefined; }
    if (st.size > FILE_MAX) { warn(`${path}: ${st.size} bytes is not a plausible index; ignored (it is a cache, it will be rewritten)`); return undefined; }
    text = await fsp.readFile(path, 'latin1');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') warn(`${path}: ${(e as Error).message}; ignored`);
    return undefined;
  }
  const d = parseIndex(text);
  if (typeof d === 'string') { warn(`${path}: ${d}; ignored (it is a cache: modseqs restart from a new base, it will be rewritten)`); return undefined; }
  if (d.uidValidity !== uidValidity) { warn(`${path}: UIDVALIDITY ${d.uidValidity} is not the mailbox's ${uidValidity}; ignored`); return undefined; }
  return d;
}

/** Write atomically: unique tmp file in the same directory, then rename over. */
export async function writeIndex(ctlDir: string, text: string): Promise<void> {
  const path = join(ctlDir, INDEX_NAME);
  const tmp = `${path}.tmp.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await fsp.writeFile(tmp, text, { encoding: 'latin1', mode: 0o600 });
    await inheritOwner(tmp);
    await fsp.rename(tmp, path);
  } catch (e) {
    await fsp.unlink(tmp).catch(() => {});
    throw e;
  }
}

/** The same, synchronously (process exit, where no callback runs any more). */
export function writeIndexSync(ctlDir: string, text: string): void {
  const path = join(ctlDir, INDEX_NAME);
  const tmp = `${path}.tmp.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(tmp, text, { encoding: 'latin1', mode: 0o600 });
    if (process.getuid?.() === 0) {
      // as inheritOwner(): a file made by root belongs to the mailbox's owner
      const st = statSync(ctlDir);
      if (st.uid !== 0 || st.gid !== 0) lchownSync(tmp, st.uid, st.gid);
    }
    renameSync(tmp, path);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* not created */ }
    throw e;
  }
}

/**
 * Flip a clean file to dirty in place (one byte, atomic), before a writable handle can change
 * flags. Returns false if there is no file or it is not ours to flip. Synchronous: three
 * syscalls, run once per writable open.
 */
export function markIndexDirty(ctlDir: string): boolean {
  let fd: number;
  try { fd = openSync(join(ctlDir, INDEX_NAME), 'r+'); } catch { return false; }
  try {
    const b = Buffer.alloc(STATE_OFFSET + 1);
    if (readSync(fd, b, 0, b.length, 0) !== b.length || b.toString('latin1', 0, STATE_OFFSET) !== MAGIC) return false;
    if (b[STATE_OFFSET] === 0x44 /* D */) return true;
    writeSync(fd, 'D', STATE_OFFSET, 'latin1');
    return true;
  } catch { return false; } finally { closeSync(fd); }
}
