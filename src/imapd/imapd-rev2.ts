/**
 * imapd-rev2 - IMAP4rev2 (RFC 9051) next to IMAP4rev1. Both are announced; a session speaks
 * IMAP4rev1 until the client sends `ENABLE IMAP4rev2` (RFC 9051 §6.3.1), which answers
 * `* ENABLED IMAP4rev2` once (a second ENABLE lists nothing, RFC 5161 §3.1). From then on the
 * differences of RFC 9051 Appendix E that concern a server apply (docs/imapd.md lists them):
 *   - no `* n RECENT` (SELECT/EXAMINE, later updates) and no \Recent in FLAGS (the RECENT
 *     response and the \Recent flag are gone from IMAP4rev2);
 *   - no `[UNSEEN n]` on SELECT/EXAMINE (deprecated);
 *   - SELECT/EXAMINE send the mailbox's `* LIST` line (required, RFC 9051 §6.3.2);
 *   - SEARCH is answered with ESEARCH, never `* SEARCH` (cmd-search-context.ts);
 *   - mailbox names are UTF-8 on the wire, not modified UTF-7 (RFC 9051 §5.1, imapd-names.ts);
 *   - LIST shows a name that does not exist as a mailbox (a parent of others) with
 *     \NonExistent rather than \Noselect (RFC 9051 §7.3.1: \NonExistent implies \Noselect).
 * The rest of Appendix E is already true in both modes: the folded-in extensions (NAMESPACE,
 * UNSELECT, UIDPLUS, ESEARCH, SEARCHRES, ENABLE, IDLE, SASL-IR, LIST-EXTENDED, LIST-STATUS, MOVE,
 * LITERAL- via LITERAL+, BINARY fetch, SPECIAL-USE, STATUS=SIZE), STATUS DELETED (here),
 * COPYUID for MOVE, TRYCREATE, `* OK [CLOSED]`. Deprecated forms stay accepted (RFC822.*
 * FETCH items, LSUB, CHECK, the RECENT/NEW/OLD search keys and the RECENT STATUS item).
 */
import type { ImapSession } from './imapd-session.ts';
import { mailboxOut } from './imapd-names.ts';

/** The spelling in CAPABILITY and ENABLED. */
export const IMAP4REV2 = 'IMAP4rev2';

/** ENABLE IMAP4rev2: true when this call switched the session (it goes into `* ENABLED`). */
export function enableRev2(s: ImapSession): boolean {
  if (s.enabled.has(IMAP4REV2)) return false;
  s.enabled.add(IMAP4REV2);
  return true;
}

/**
 * The `* LIST` line SELECT/EXAMINE send in IMAP4rev2 (RFC 9051 §6.3.2): the name as LIST
 * shows it with accurate attributes (children, special-use).
 */
export async function selectListLine(s: ImapSession, name: string): Promise<string> {
  const sep = s.shared.settings.separator;
  const all = await s.user!.list();
  const attrs: string[] = [];
  const me = all.find((m) => m.name === name);
  for (const a of me?.attributes ?? []) {
    // children computed below; \Subscribed only with LIST's SUBSCRIBED options (RFC 9051 §6.3.9)
    if (a === '\\Noselect' || a === '\\NonExistent' || a === '\\Subscribed' || a === '\\HasChildren' || a === '\\HasNoChildren') continue;
    if (!attrs.includes(a)) attrs.push(a);
  }
  const pre = name + sep;
  attrs.push(all.some((m) => m.name.startsWith(pre)) ? '\\HasChildren' : '\\HasNoChildren');
  const su = s.shared.settings.specialMailboxes.find((m) => m.name === name)?.specialUse ?? [];
  for (const a of su) if (!attrs.includes(a)) attrs.push(a);
  const q = sep === '"' || sep === '\\' ? '\\' + sep : sep;
  return `* LIST (${attrs.join(' ')}) "${q}" ${mailboxOut(s, name).toString('utf8')}\r\n`;
}

/**
 * STATUS DELETED (RFC 9051 §6.3.11): messages with \Deleted. The selected mailbox counts its
 * view (with this session's own changes); another is opened read-only for the count.
 */
export async function deletedCount(s: ImapSession, name: string): Promise<number> {
  if (s.box && s.box.name === name) {
    let n = 0;
    for (const m of s.box.messages()) if (s.current(m).flags.includes('\\Deleted')) n++;
    return n;
  }
  const box = await s.user!.open(name, { readOnly: true });
  try {
    let n = 0;
    for (const m of box.messages()) if (m.flags.includes('\\Deleted')) n++;
    return n;
  } finally {
    await box.close();
  }
}
