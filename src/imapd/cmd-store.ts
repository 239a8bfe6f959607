/**
 * cmd-store - STORE and UID STORE (RFC 3501 §6.4.6) with .SILENT, keywords, and RFC 7162
 * UNCHANGEDSINCE (`OK [MODIFIED set] Conditional STORE failed`). Non-silent STORE answers
 * `* n FETCH (FLAGS (...))` for every message of the set whose flags it changed (with `UID n`
 * for UID STORE, and `MODSEQ (m)` when CONDSTORE is on) and nothing for a message that had
 * the flags already, as Dovecot, then the CONTEXT=SEARCH updates the change causes
 * (RFC 5267 §4). \Recent cannot be stored (BAD).
 */
import { parseStoreArgs } from '../lib-imap/imap-command-args.ts';
import { numbersToSeqSet } from '../lib-imap/imap-seqset.ts';
import { SYSTEM_FLAGS, type FlagMode, type MessageInfo, type StoreResult } from '../lib-storage/mail-storage.ts';
import { allowedFlags } from './imapd-acl.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { flagList, keywordUpdate, resolveMessages } from './imapd-sync.ts';
import { searchUpdateChanges } from './cmd-search-context.ts';

/**
 * A message the STORE did not change: it had the flags already (the result is the same), or
 * another session expunged it meanwhile, where Dovecot answers the flags it would have had.
 */
function applied(m: MessageInfo, mode: 'replace' | 'add' | 'remove', sys: string[], kws: string[]): MessageInfo {
  const has = (f: string): boolean => (m.flags as readonly string[]).includes(f);
  const flags = SYSTEM_FLAGS.filter((f) => mode === 'replace' ? sys.includes(f) : mode === 'add' ? has(f) || sys.includes(f) : has(f) && !sys.includes(f));
  const keywords = mode === 'replace' ? kws : mode === 'add' ? [...new Set([...m.keywords, ...kws])] : m.keywords.filter((k) => !kws.includes(k));
  return { ...m, flags, keywords };
}

/** The same system flags and keywords (keywords in any order; case as stored). */
function sameFlags(a: MessageInfo, b: MessageInfo): boolean {
  if (a.flags.length !== b.flags.length || a.keywords.length !== b.keywords.length) return false;
  for (const f of b.flags) if (!(a.flags as readonly string[]).includes(f)) return false;
  for (const k of b.keywords) if (!a.keywords.includes(k)) return false;
  return true;
}

export async function cmdStore(s: ImapSession, c: CommandContext): Promise<Reply> {
  const box = s.box!;
  const cmd = parseStoreArgs(c.args);
  const rights = s.boxRights;
  const idx = resolveMessages(s, cmd.set, c.uid); // a bad set is BAD even when read-only (Dovecot)
  if (box.readOnly) return { status: 'OK', text: 'Store ignored with read-only mailbox' }; // Dovecot
  const view = box.messages();
  const uids = idx.map((i) => view[i]!.uid);
  // ACL (imapd-acl.ts): the flags the user has no right to change are left out silently
  const wanted = rights === undefined ? cmd.flags : allowedFlags(rights, cmd.flags);
  const sys = wanted.filter((f) => f.startsWith('\\'));
  const kws = wanted.filter((f) => !f.startsWith('\\'));
  if (cmd.unchangedSince !== undefined) s.enabled.add('CONDSTORE');
  let mode: FlagMode = cmd.mode === 'set' ? 'replace' : cmd.mode;
  const opts = cmd.unchangedSince !== undefined ? { unchangedSince: Number(cmd.unchangedSince) } : {};
  if (rights !== undefined && !rights.includes('w')) {
    // Dovecot registers the keywords named even when it may not set them
    const fresh = cmd.flags.filter((f) => !f.startsWith('\\') && !box.keywords().includes(f));
    if (fresh.length > 0) await box.setFlags([], 'add', [], fresh);
  }
  if (rights !== undefined && wanted.length === 0 && (mode !== 'replace' || !/[swt]/.test(rights))) {
    const kwLines = keywordUpdate(s);
    if (kwLines) await s.send(kwLines);
    return { status: 'OK', text: 'Store completed' };
  }
  let r: StoreResult;
  if (rights !== undefined && mode === 'replace' && !(rights.includes('s') && rights.includes('t') && rights.includes('w'))) {
    // a partial replace: the allowed kinds set as asked, the others left as they are
    const drop = allowedFlags(rights, [...SYSTEM_FLAGS]).filter((f) => !sys.includes(f));
    const dropKws = rights.includes('w') ? [...new Set(view.flatMap((m) => m.keywords))].filter((k) => !kws.includes(k)) : [];
    const r1 = await box.setFlags(uids, 'remove', drop, dropKws, opts);
    const r2 = await box.setFlags(uids, 'add', sys, kws, opts);
    const merged = new Map<number, MessageInfo>();
    for (const m of [...r1.changed, ...r2.changed]) merged.set(m.uid, m);
    r = { ...r2, changed: [...merged.values()], failed: [...new Set([...r1.failed, ...r2.failed])] };
    mode = 'add';
  } else r = await box.setFlags(uids, mode, sys, kws, opts);
  const perMessage = !cmd.silent || s.condstore;
  const changed = new Map<number, MessageInfo>();
  for (const m of r.changed) { if (perMessage) changed.set(m.uid, m); s.reported.set(m.uid, m); }
  const failed = new Set(r.failed);
  const out: string[] = [keywordUpdate(s)];
  // .SILENT without CONDSTORE answers nothing per message: skip the walk over the set
  // ACL: when flags were left out, only the messages that changed are answered (Dovecot)
  const onlyChanged = rights !== undefined && wanted.length < cmd.flags.length;
  if (perMessage) for (const i of idx) {
    if (onlyChanged && !changed.has(view[i]!.uid)) continue;
    let m = changed.get(view[i]!.uid);
    if (m === undefined) {
      // not changed by this STORE: it had the flags already (Dovecot answers nothing for it), or
      // it was expunged meanwhile (Dovecot answers the flags it would have had)
      const was = s.current(view[i]!);
      m = applied(was, mode, sys, kws);
      if (sameFlags(was, m)) continue;
    }
    if (failed.has(m.uid)) continue;
    // .SILENT: no FETCH, except the MODSEQ a CONDSTORE client needs (RFC 7162 §3.1.3)
    if (cmd.silent && !(s.condstore && changed.has(m.uid))) continue;
    const items: string[] = [];
    if (c.uid) items.push(`UID ${m.uid}`);
    if (s.condstore) items.push(`MODSEQ (${m.modseq})`);
    if (!cmd.silent) items.push(`FLAGS ${flagList(m, s.rev2)}`);
    out.push(`* ${i + 1} FETCH (${items.join(' ')})\r\n`);
  }
  // RFC 5267 §4: searches kept with RETURN (UPDATE) learn about this STORE in its own answer
  // (after the FETCHes, as Dovecot), .SILENT or not
  if (r.changed.length > 0) out.push(await searchUpdateChanges(s, [], r.changed));
  const text = out.join('');
  if (text.length > 0) await s.send(text);
  if (failed.size > 0) {
    const ids = c.uid ? [...failed] : idx.filter((i) => failed.has(view[i]!.uid)).map((i) => i + 1);
    return { status: 'OK', code: `MODIFIED ${numbersToSeqSet(ids)}`, text: 'Conditional store failed' };
  }
  return { status: 'OK', text: 'Store completed' };
}
