/**
 * cmd-store - STORE and UID STORE (RFC 3501 §6.4.6) with .SILENT, keywords, and RFC 7162
 * UNCHANGEDSINCE (`OK [MODIFIED set] Conditional STORE failed`). Non-silent STORE answers
 * `* n FETCH (FLAGS (...))` for every message of the set (with `UID n` for UID STORE, and
 * `MODSEQ (m)` when CONDSTORE is on), as Dovecot. \Recent cannot be stored (BAD).
 */
import { parseStoreArgs } from '../lib-imap/imap-command-args.ts';
import { numbersToSeqSet } from '../lib-imap/imap-seqset.ts';
import type { MessageInfo } from '../lib-storage/mail-storage.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { flagList, keywordUpdate, resolveMessages } from './imapd-sync.ts';

export async function cmdStore(s: ImapSession, c: CommandContext): Promise<Reply> {
  const box = s.box!;
  const cmd = parseStoreArgs(c.args);
  if (box.readOnly) return { status: 'OK', text: 'Store ignored with read-only mailbox' }; // Dovecot
  const idx = resolveMessages(s, cmd.set, c.uid);
  const view = box.messages();
  const uids = idx.map((i) => view[i]!.uid);
  const sys = cmd.flags.filter((f) => f.startsWith('\\'));
  const kws = cmd.flags.filter((f) => !f.startsWith('\\'));
  if (cmd.unchangedSince !== undefined) s.enabled.add('CONDSTORE');
  const mode = cmd.mode === 'set' ? 'replace' : cmd.mode;
  const r = await box.setFlags(uids, mode, sys, kws,
    cmd.unchangedSince !== undefined ? { unchangedSince: Number(cmd.unchangedSince) } : {});
  const perMessage = !cmd.silent || s.condstore;
  const changed = new Map<number, MessageInfo>();
  for (const m of r.changed) { if (perMessage) changed.set(m.uid, m); s.reported.set(m.uid, m); }
  const failed = new Set(r.failed);
  const out: string[] = [keywordUpdate(s)];
  // .SILENT without CONDSTORE answers nothing per message: skip the walk over the set
  if (perMessage) for (const i of idx) {
    const m = changed.get(view[i]!.uid) ?? s.current(view[i]!);
    if (failed.has(m.uid)) continue;
    // .SILENT: no FETCH, except the MODSEQ a CONDSTORE client needs (RFC 7162 §3.1.3)
    if (cmd.silent && !(s.condstore && changed.has(m.uid))) continue;
    const items: string[] = [];
    if (c.uid) items.push(`UID ${m.uid}`);
    if (s.condstore) items.push(`MODSEQ (${m.modseq})`);
    if (!cmd.silent) items.push(`FLAGS ${flagList(m, s.rev2)}`);
    out.push(`* ${i + 1} FETCH (${items.join(' ')})\r\n`);
  }
  const text = out.join('');
  if (text.length > 0) await s.send(text);
  if (failed.size > 0) {
    const ids = c.uid ? [...failed] : idx.filter((i) => failed.has(view[i]!.uid)).map((i) => i + 1);
    return { status: 'OK', code: `MODIFIED ${numbersToSeqSet(ids)}`, text: 'Conditional store failed' };
  }
  return { status: 'OK', text: 'Store completed' };
}
