/**
 * local-dotforward - find, read and deliver to a user's .forward file (Postfix
 * local/dotforward.c).
 *
 * forward_path (default `$home/.forward${recipient_delimiter}${extension}, $home/.forward`) is
 * expanded per user with $user $home $shell $recipient $extension $domain $local
 * $recipient_delimiter; an entry that uses a macro with no value (no extension) is skipped, as
 * Postfix skips a path whose expansion hits an undefined macro. Expanded values are filtered by
 * forward_expansion_filter (other characters become `_`). The first file that exists is used.
 *
 * SECURITY: the file is opened without following a symlink (O_NOFOLLOW) and must be a regular
 * file owned by the user (or root), not writable by group or others: otherwise it is ignored
 * with a warning (someone else could redirect the user's mail). It is read whole (at most 1 MB).
 */
import { promises as fsp, constants as C } from 'node:fs';
import { macExpand } from '../util/mac-expand.ts';
import type { PasswdEntry } from '../util/dict-unix.ts';
import { expandTargets } from './local-expand.ts';
import { log, mtaProbe, SENT, userPrivs, type Outcome, type State, type Walk } from './local-state.ts';
import { parseTargetFile, type AliasTarget } from './local-token.ts';
import { splitList } from '../global/mail-conf.ts';

export interface ForwardVars { user: string; home: string; shell: string; recipient: string; extension: string; domain: string; local: string; recipient_delimiter: string }

const MAX_FORWARD = 1 << 20;

export function forwardPaths(forwardPath: string, vars: ForwardVars, filter: string): string[] {
  const out: string[] = [];
  for (const item of splitList(forwardPath)) {
    let undef = false;
    const clean = (v: string) => [...v].map((c) => (filter.includes(c) ? c : '_')).join('');
    const value = macExpand(item, (n) => {
      const v = (vars as unknown as Record<string, string>)[n];
      if (v === undefined || v === '') { return undefined; }
      return n === 'home' ? v : clean(v);
    }, { recurse: false, onReference: undefined });
    // Unconditional references to an empty macro make the entry unusable (MAC_PARSE_UNDEF).
    for (const m of item.matchAll(/\$(?:\{(\w+)\}|\((\w+)\)|(\w+))/g)) {
      const n = (m[1] ?? m[2] ?? m[3])!;
      const v = (vars as unknown as Record<string, string>)[n];
      if (v === undefined || v === '') undef = true;
    }
    if (!undef && value) out.push(value);
  }
  return out;
}

export type ForwardRead = { text: string; path: string } | { skipped: string } | undefined;

/** The first usable forward file's text, a reason it was refused, or undefined (none). */
export async function readForward(paths: string[], uid: number): Promise<ForwardRead> {
  for (const path of paths) {
    let fh;
    try {
      fh = await fsp.open(path, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      if (code === 'ELOOP') return { skipped: `${path}: is a symbolic link` };
      if (code === 'EACCES') continue; // Postfix: unreadable → as if absent
      throw e;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) return { skipped: `${path}: not a regular file` };
      if (st.uid !== uid && st.uid !== 0) return { skipped: `${path}: not owned by the user (uid ${st.uid}, expected ${uid})` };
      if (st.mode & 0o022) return { skipped: `${path}: writable by group or others (mode ${(st.mode & 0o777).toString(8)})` };
      const buf = Buffer.alloc(Math.min(st.size, MAX_FORWARD));
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return { text: buf.subarray(0, bytesRead).toString('utf8'), path };
    } finally {
      await fh.close();
    }
  }
  return undefined;
}

/**
 * Deliver to the targets of UNIX account `pw`'s .forward, with the user's rights; undefined
 * when there is none (or an empty one, or one refused: then with a warning), so the mailbox
 * comes next.
 */
export async function deliverDotForward(st: State, pw: PasswdEntry, name: string, user: string, extension: string, domain: string, w: Walk): Promise<Outcome | undefined> {
  const { config, s } = st.lc;
  const paths = forwardPaths(config.rawOrDefault('forward_path') ?? '', {
    user, home: pw.dir, shell: pw.shell, recipient: `${name}@${domain}`, extension, domain, local: name, recipient_delimiter: s.delim,
  }, config.get('forward_expansion_filter'));
  if (mtaProbe(st)) {
    // An address verification probe (Postfix dotforward.c, DEL_REQ_FLAG_MTA_VRFY): the first
    // forward file that exists answers, unread.
    for (const p of paths) if (await fsp.lstat(p).then(() => true, () => false)) return SENT(`forward via file: ${p}`);
    return undefined;
  }
  const f = await readForward(paths, pw.uid);
  if (f && 'skipped' in f) log.warn(`${st.req.qf.queueId}: ${f.skipped}: ignored`);
  else if (f) {
    let targets: AliasTarget[];
    try { targets = parseTargetFile(f.text); } catch (e) { return { status: 'deferred', dsn: '4.3.0', text: `${f.path}: ${(e as Error).message}` }; }
    if (targets.length) return expandTargets(st, targets, { ...w, privs: userPrivs(config, pw), context: 'forward', expFrom: user });
  }
  return undefined;
}
