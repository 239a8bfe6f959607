/**
 * local-include - `:include:/file` targets (Postfix local/include.c): the file's targets are
 * delivered as if they stood in the alias or .forward that named it, one level deeper, with the
 * include file owner's rights when that is not root (else the rights of whoever named it).
 *
 * SECURITY: when Postern runs as root the file is read by a child (/bin/cat) running with the
 * rights of whoever named it, so a user cannot :include: a file they could not read
 * (/etc/shadow). It must be a regular file (else bounced 5.3.5); one that cannot be read defers.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { getpwuid } from '../util/dict-unix.ts';
import { expandTargets } from './local-expand.ts';
import type { Privs } from './local-file.ts';
import { isRoot, MAX_LEVEL, type Outcome, type State, type Walk } from './local-state.ts';
import { parseTargetFile, type AliasTarget } from './local-token.ts';

export async function deliverInclude(st: State, path: string, w: Walk): Promise<Outcome> {
  if (w.level > MAX_LEVEL) return { status: 'bounced', dsn: '5.4.6', text: `unreasonable :include: nesting: ${path}` };
  const read = await readInclude(path, w.privs);
  if ('error' in read) return read.error;
  let targets: AliasTarget[];
  try { targets = parseTargetFile(read.text); } catch (e) { return { status: 'deferred', dsn: '4.3.0', text: `${path}: ${(e as Error).message}` }; }
  const owner = read.uid !== 0 ? getpwuid(read.uid) : undefined;
  return expandTargets(st, targets, { ...w, level: w.level + 1, context: 'include', privs: owner ? { uid: owner.uid, gid: owner.gid, name: owner.name } : w.privs });
}

async function readInclude(path: string, privs: Privs | undefined): Promise<{ text: string; uid: number } | { error: Outcome }> {
  const st = await fsp.stat(path).catch((e: Error) => e);
  if (st instanceof Error) return { error: { status: 'deferred', dsn: '4.3.0', text: `cannot open include file ${path}: ${st.message}` } };
  if (!st.isFile()) return { error: { status: 'bounced', dsn: '5.3.5', text: `include file ${path}: not a regular file` } };
  if (!isRoot) {
    const text = await fsp.readFile(path, 'utf8').catch((e: Error) => e);
    if (text instanceof Error) return { error: { status: 'deferred', dsn: '4.3.0', text: `cannot open include file ${path}: ${text.message}` } };
    return { text, uid: st.uid };
  }
  if (!privs) return { error: { status: 'deferred', dsn: '4.3.0', text: 'no unprivileged user to read the include file' } };
  // Read with the rights of whoever named the file: a user cannot :include: /etc/shadow.
  const text = await new Promise<string | Error>((resolve) => {
    const c = spawn('/bin/cat', ['--', path], { uid: privs.uid, gid: privs.gid, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
    const out: Buffer[] = [];
    let err = '';
    c.stdout!.on('data', (b: Buffer) => out.push(b));
    c.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
    c.on('error', (e) => resolve(e));
    c.on('close', (code) => resolve(code === 0 ? Buffer.concat(out).toString('utf8') : new Error(err.trim().replace(/^\/bin\/cat: /, '') || `exit ${code}`)));
  });
  if (text instanceof Error) return { error: { status: 'deferred', dsn: '4.3.0', text: `cannot open include file ${path}: ${text.message}` } };
  return { text, uid: st.uid };
}
