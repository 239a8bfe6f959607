/**
 * maildir-save - delivering one message into a Maildir (Dovecot maildir-save.c, Maildir spec):
 *
 *  1. write the content to tmp/<unique> (O_EXCL), counting the bytes and the bare LFs
 *     (for ,S= and ,W=), fsync the file; set its mtime to the INTERNALDATE;
 *  2. under the in-process mutex and the `dovecot-uidlist.lock` dotlock: rename it to
 *     new/<unique>,S=..,W=.. (no flags) or cur/<unique>,S=..,W=..:2,<flags> (flags or
 *     keywords), fsync the directory, append "<uid> :<base>" to dovecot-uidlist;
 *  3. release; the UID is the one written.
 * Saves that arrive while another holds the lock are committed together in one lock
 * acquisition (group commit), so 50 concurrent deliveries cost a handful of lock cycles.
 * Nothing is visible to readers before step 2, and a crash leaves at most a file in tmp/
 * (Dovecot and Postern clean tmp/ files older than 36 hours, as the Maildir spec suggests).
 */
import { promises as fsp, constants as C } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { DeliverOptions, MessageSource, SystemFlag } from '../mail-storage.ts';
import { SYSTEM_FLAGS } from '../mail-storage.ts';
import { writeFully } from '../../util/fs-write.ts';
import { MailError, mailErrorFromErrno } from '../mail-error.ts';
import { newUniqueName, withInfo, withSizes } from './maildir-filename.ts';
import { inheritOwner } from './maildir-owner.ts';
import { countBareLf, type MaildirState, type MsgRec } from './maildir-sync.ts';

export interface TmpFile { path: string; unique: string; size: number; vsize: number }

function toIterable(src: MessageSource): AsyncIterable<Uint8Array> | Uint8Array[] {
  if (typeof src === 'string') return [Buffer.from(src)];
  if (src instanceof Uint8Array) return [src];
  return src as AsyncIterable<Uint8Array>;
}

/** Step 1: the content into tmp/, fsynced. */
export async function writeTmp(dir: string, src: MessageSource, o: DeliverOptions = {}): Promise<TmpFile> {
  const unique = newUniqueName();
  const path = join(dir, 'tmp', unique);
  let fh: fsp.FileHandle;
  try { fh = await fsp.open(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o600); } catch (e) {
    throw mailErrorFromErrno(e, `create maildir file ${path}`);
  }
  await inheritOwner(path);
  let size = 0, bare = 0, prevCr = false;
  try {
    for await (const chunk0 of toIterable(src) as AsyncIterable<Uint8Array>) {
      const chunk = typeof chunk0 === 'string' ? Buffer.from(chunk0) : chunk0;
      size += chunk.length;
      if (o.maxSize !== undefined && size > o.maxSize) throw new MailError('TOOBIG', 'Message is too large.');
      bare += countBareLf(chunk, prevCr);
      if (chunk.length > 0) prevCr = chunk[chunk.length - 1] === 13;
      await writeFully(fh, chunk);
    }
    await fh.sync();
    await fh.close();
    const t = o.internalDate ?? new Date();
    await fsp.utimes(path, t, t);
  } catch (e) {
    await fh.close().catch(() => {});
    await fsp.unlink(path).catch(() => {});
    if (src instanceof Readable) src.destroy();
    throw mailErrorFromErrno(e, `write(${path})`);
  }
  return { path, unique, size, vsize: size + bare };
}

/** Check and order system flags (PARAMS for unknown ones, e.g. \Recent cannot be stored). */
export function parseSystemFlags(flags: readonly string[] | undefined): SystemFlag[] {
  const set = new Set<SystemFlag>();
  for (const f of flags ?? []) {
    const m = SYSTEM_FLAGS.find((s) => s.toLowerCase() === f.toLowerCase());
    if (!m) {
      if (f.toLowerCase() === '\\recent') continue;   // RFC 3501: \Recent cannot be set; ignored
      throw new MailError('PARAMS', `Invalid system flag ${f.slice(0, 40)}`);
    }
    set.add(m);
  }
  return SYSTEM_FLAGS.filter((f) => set.has(f));
}

interface Pending { tmp: TmpFile; flags: SystemFlag[]; kw: number[]; resolve: (uid: number) => void; reject: (e: unknown) => void }

const queues = new WeakMap<MaildirState, Pending[]>();

/** Steps 2-3 with group commit. Resolves to the UID. */
export function commitSave(state: MaildirState, tmp: TmpFile, flags: SystemFlag[], kw: number[]): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let q = queues.get(state);
    const first = !q || q.length === 0;
    if (!q) { q = []; queues.set(state, q); }
    q.push({ tmp, flags, kw, resolve, reject });
    if (first) void state.mutex.run(() => flush(state));
  });
}

async function flush(state: MaildirState): Promise<void> {
  const batch = queues.get(state)?.splice(0) ?? [];
  if (batch.length === 0) return;
  const placed: Array<{ p: Pending; base: string; fname: string; sub: 'new' | 'cur' }> = [];
  try {
    await state.assignUids([], async () => {
      // under the lock: put the files in place, then let assignUids number them
      const subs = new Set<string>();
      for (const p of batch) {
        const base = withSizes(p.tmp.unique, p.tmp.size, p.tmp.vsize);
        const hasInfo = p.flags.length > 0 || p.kw.length > 0;
        const sub = hasInfo ? 'cur' : 'new';
        const fname = hasInfo ? withInfo(base, p.flags, p.kw) : base;
        try {
          await fsp.rename(p.tmp.path, join(state.dir, sub, fname));
          placed.push({ p, base, fname, sub });
          subs.add(sub);
        } catch (e) {
          await fsp.unlink(p.tmp.path).catch(() => {});
          p.reject(mailErrorFromErrno(e, `rename(${p.tmp.path})`));
        }
      }
      for (const sub of subs) {
        const dh = await fsp.open(join(state.dir, sub), 'r');
        try { await dh.sync(); } finally { await dh.close(); }
      }
    }, () => placed.map((x) => x.base));
  } catch (e) {
    for (const x of placed) await fsp.unlink(join(state.dir, x.sub, x.fname)).catch(() => {});
    for (const p of batch) p.reject(e);
    return;
  }
  for (const x of placed) {
    const uid = state.uidOfBase(x.base);
    if (uid === undefined) { x.p.reject(new MailError('TEMP', 'Internal error occurred. Refer to server log for more information.', `no UID for ${x.base}`)); continue; }
    const rec: MsgRec = { uid, base: x.base, fname: x.fname, sub: x.sub, flags: x.p.flags, kw: x.p.kw, other: '', size: x.p.tmp.size, vsize: x.p.tmp.vsize, modseq: 0 };
    state.addSaved(rec);
    x.p.resolve(uid);
  }
  state.changed();
}
