/**
 * cmd-copy-move - COPY / UID COPY (RFC 3501 §6.4.7) and MOVE / UID MOVE (RFC 6851) with UIDPLUS
 * COPYUID (RFC 4315 §3). Dovecot's answers:
 *   OK [COPYUID v src dst] Copy completed
 *   * OK [COPYUID v src dst] Moved UIDs. / * n EXPUNGE ... / OK Move completed
 *   NO [TRYCREATE] Mailbox doesn't exist: X      OK No messages found (UID set matching nothing)
 */
import { ImapParseError, argAtom } from '../lib-imap/imap-parser.ts';
import { formatSeqSet } from '../lib-imap/imap-seqset.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import type { CopyResult, Mailbox } from '../lib-storage/mail-storage.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { parseSetArg, resolveMessages, syncToClient } from './imapd-sync.ts';
import { mailboxArg, mailboxText } from './imapd-names.ts';
import { aclOn, allowedFlags, requireRights } from './imapd-acl.ts';

/**
 * COPYUID sets. The copies are numbered in source order, so both lists ascend and each is
 * compacted on its own, as Dovecot writes its two seq_range arrays (`1,3,5:7 4:8`). Were the
 * destination ever out of order, the pairs are kept corresponding, compacted where both run.
 */
function copyUidSets(map: Array<[number, number]>): [string, string] {
  const ascending = map.every(([a, b], i) => i === 0 || (a > map[i - 1]![0] && b > map[i - 1]![1]));
  const sr: [number, number][] = [];
  const dr: [number, number][] = [];
  for (const [a, b] of map) {
    const ls = sr[sr.length - 1];
    const ld = dr[dr.length - 1];
    if (ascending) {
      if (ls && a === ls[1] + 1) ls[1] = a; else sr.push([a, a]);
      if (ld && b === ld[1] + 1) ld[1] = b; else dr.push([b, b]);
      continue;
    }
    if (ls && ld && a === ls[1] + 1 && b === ld[1] + 1) { ls[1] = a; ld[1] = b; continue; }
    sr.push([a, a]);
    dr.push([b, b]);
  }
  return [formatSeqSet(sr), formatSeqSet(dr)];
}

/**
 * ACL: when the destination's rights do not cover every flag, each message is saved as APPEND
 * saves it, without the flags this user may not set there (as Dovecot's acl plugin saves copies).
 */
async function copyFiltered(s: ImapSession, src: Mailbox, uids: readonly number[], dest: string, rights: string, move: boolean): Promise<CopyResult> {
  const map: Array<[number, number]> = [];
  let uidValidity = 0;
  for (const uid of uids) {
    const m = src.byUid(uid);
    if (!m) continue;
    const content = await src.readContent(uid).catch(() => undefined);
    if (!content) continue;
    const flags = allowedFlags(rights, [...m.flags, ...m.keywords]);
    const res = await s.user!.deliver(dest, content, {
      flags: flags.filter((f) => f.startsWith('\\')), keywords: flags.filter((f) => !f.startsWith('\\')), internalDate: await src.internalDate(uid),
    });
    map.push([uid, res.uid]);
    uidValidity = res.uidValidity;
  }
  if (move && map.length > 0) await src.expunge(map.map(([u]) => u));
  return { uidValidity, map };
}

async function copyOrMove(s: ImapSession, c: CommandContext, move: boolean): Promise<Reply> {
  if (c.args.length !== 2) throw new ImapParseError('Invalid arguments');
  const set = parseSetArg(argAtom(c.args[0]));
  const dest = mailboxArg(s, c.args[1]);
  const box = s.box!;
  const idx = resolveMessages(s, set, c.uid);
  const view = box.messages();
  const uids = idx.map((i) => view[i]!.uid);
  if (uids.length === 0) return { status: 'OK', text: 'No messages found' };
  // ACL (imapd-acl.ts): MOVE needs e here, both need i on the destination
  if (move && s.boxRights !== undefined && !s.boxRights.includes('e')) return { status: 'NO', code: 'NOPERM', text: 'Permission denied' };
  if (move && box.readOnly) return { status: 'NO', code: 'CANNOT', text: 'Mailbox is read-only.' };
  let r: CopyResult;
  try {
    if (!(await s.user!.exists(dest))) return { status: 'NO', code: 'TRYCREATE', text: `Mailbox doesn't exist: ${mailboxText(dest)}` };
    const destRights = aclOn(s) ? await requireRights(s, dest, 'i') : undefined;
    if (destRights !== undefined && !/^(?=.*s)(?=.*t)(?=.*w)/.test(destRights)) r = await copyFiltered(s, box, uids, dest, destRights, move);
    else r = move ? await box.move(uids, dest) : await box.copy(uids, dest);
  } catch (e) {
    if (e instanceof MailError && e.code === 'NOTFOUND') return { status: 'NO', code: 'TRYCREATE', text: `Mailbox doesn't exist: ${mailboxText(dest)}` };
    throw e;
  }
  const [src, dst] = copyUidSets(r.map);
  if (!move) return { status: 'OK', code: r.map.length ? `COPYUID ${r.uidValidity} ${src} ${dst}` : undefined, text: 'Copy completed' };
  if (r.map.length) s.send(`* OK [COPYUID ${r.uidValidity} ${src} ${dst}] Moved UIDs.\r\n`);
  await syncToClient(s, true); // RFC 6851 §4.3: the EXPUNGEs belong to the MOVE response
  return { status: 'OK', text: 'Move completed', noSync: true };
}

export function cmdCopy(s: ImapSession, c: CommandContext): Promise<Reply> { return copyOrMove(s, c, false); }
export function cmdMove(s: ImapSession, c: CommandContext): Promise<Reply> { return copyOrMove(s, c, true); }
