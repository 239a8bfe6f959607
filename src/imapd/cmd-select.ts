/**
 * cmd-select - SELECT and EXAMINE (RFC 3501 §6.3.1-2) with the CONDSTORE (RFC 7162 §3.1.8)
 * and QRESYNC (RFC 7162 §3.2.5) parameters. Answers as Dovecot 2.3:
 *   * FLAGS (\Answered \Flagged \Deleted \Seen \Draft kw...)
 *   * OK [PERMANENTFLAGS (... \*)] Flags permitted.   |  * OK [PERMANENTFLAGS ()] Read-only mailbox.
 *   * N EXISTS / * R RECENT / * OK [UNSEEN n] First unseen. / * OK [UIDVALIDITY v] UIDs valid
 *   * OK [UIDNEXT n] Predicted next UID / * OK [MAILBOXID (guid)] Ok (RFC 8474 OBJECTID)
 *   * OK [HIGHESTMODSEQ m] Highest (with CONDSTORE)
 *   OK [READ-WRITE] Select completed   |  OK [READ-ONLY] Examine completed
 * A previously selected mailbox is closed first (`* OK [CLOSED] Previous mailbox closed.`,
 * RFC 7162 §3.2.11) — also when the new SELECT fails, which leaves the authenticated state.
 * IMAP4rev2 (after ENABLE IMAP4rev2, imapd-rev2.ts): no RECENT, no [UNSEEN], and a `* LIST` line.
 * QRESYNC: VANISHED (EARLIER) lists the UIDs of the client's known range expunged since its
 * modseq, from the store's expunge history (postern-index); beyond that history, every UID of
 * the range that no longer exists (RFC 7162 §3.2.5.2 allows a superset). imapd-sync.ts
 * vanishedEarlier().
 */
import { argAtom, argModSeq, argNumber, type ImapArg, ImapParseError } from '../lib-imap/imap-parser.ts';
import { parseSeqSet, resolveSeqSet } from '../lib-imap/imap-seqset.ts';
import { numbersToSeqSet } from '../lib-imap/imap-seqset.ts';
import { MAILBOX_NAME_TOO_LONG } from '../lib-storage/mailbox-name.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { flagList, permanentFlagsLine, vanishedEarlier } from './imapd-sync.ts';
import { mailboxArg, mailboxText } from './imapd-names.ts';
import { selectListLine } from './imapd-rev2.ts';
import { aclOn, aclReadOnly, requireRights } from './imapd-acl.ts';
import { mailboxId } from './imapd-objectid.ts';

interface QresyncParam { uidValidity: number; modseq: bigint; known?: [number, number][] }

function parseParams(s: ImapSession, a: ImapArg | undefined): { condstore: boolean; qresync?: QresyncParam } {
  const r: { condstore: boolean; qresync?: QresyncParam } = { condstore: false };
  if (a === undefined) return r;
  if (a.type !== 'list') throw new ImapParseError('Invalid arguments');
  for (let i = 0; i < a.items.length; i++) {
    const name = argAtom(a.items[i])?.toUpperCase();
    if (name === 'CONDSTORE') r.condstore = true;
    else if (name === 'QRESYNC') {
      if (!s.qresync) throw new ImapParseError('QRESYNC not enabled');
      const l = a.items[++i];
      if (l?.type !== 'list' || l.items.length < 2) throw new ImapParseError('Invalid QRESYNC parameters');
      const q: QresyncParam = { uidValidity: argNumber(l.items[0], 'UIDVALIDITY'), modseq: argModSeq(l.items[1], 'modseq', true) };
      const known = argAtom(l.items[2]);
      if (known) q.known = resolveSeqSet(parseSeqSet(known, { allowSearchRes: false }), 0xffffffff);
      r.qresync = q;
    } else throw new ImapParseError(`Unknown SELECT parameter ${String(name ?? '').slice(0, 30)}`);
  }
  return r;
}

async function select(s: ImapSession, c: CommandContext, examine: boolean): Promise<Reply> {
  const readOnly = examine;
  const name = mailboxArg(s, c.args[0]);
  const params = parseParams(s, c.args[1]);
  if (c.args.length > 2) throw new ImapParseError('Invalid arguments');
  if (s.box) {
    const old = s.box;
    s.box = undefined;
    s.state = 'auth';
    await old.close();
    s.send('* OK [CLOSED] Previous mailbox closed.\r\n');
  }
  s.searchRes = [];
  s.reported.clear();
  let box;
  s.boxRights = undefined;
  s.boxExamined = examine;
  s.boxReadOnly = false;
  try {
    if (aclOn(s) && (await s.user!.exists(name))) {
      // ACL (imapd-acl.ts): r to open; read-only without a right to change anything
      s.boxRights = await requireRights(s, name, 'r');
      // the storage view stays writable (\Recent is taken, keywords are registered), as Dovecot
      s.boxReadOnly = aclReadOnly(s.boxRights);
    }
    box = await s.user!.open(name, { readOnly });
  } catch (e) {
    // a name too long to be stored cannot exist either (Dovecot: "doesn't exist" too)
    if (e instanceof MailError && (e.code === 'NOTFOUND' || (e.code === 'PARAMS' && e.message === MAILBOX_NAME_TOO_LONG))) {
      return { status: 'NO', text: `Mailbox doesn't exist: ${mailboxText(name)}` };
    }
    throw e;
  }
  if (params.condstore || params.qresync) s.enabled.add('CONDSTORE');
  s.box = box;
  s.state = 'selected';
  const view = box.messages();
  const st = box.status();
  const kws = box.keywords();
  s.keywordsSent = kws.join(' ');
  const flags = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft', ...kws].join(' ');
  const out: string[] = [];
  out.push(`* FLAGS (${flags})\r\n`);
  out.push(permanentFlagsLine(s, kws)); // with ACL: only the flags the rights let this user change
  out.push(`* ${view.length} EXISTS\r\n`);
  if (!s.rev2) out.push(`* ${st.recent} RECENT\r\n`); // no RECENT in IMAP4rev2 (RFC 9051 Appendix E)
  s.exists = view.length;
  s.recent = st.recent;
  const firstUnseen = view.findIndex((m) => !m.flags.includes('\\Seen'));
  if (firstUnseen >= 0 && !s.rev2) out.push(`* OK [UNSEEN ${firstUnseen + 1}] First unseen.\r\n`);
  out.push(`* OK [UIDVALIDITY ${box.uidValidity}] UIDs valid\r\n`, `* OK [UIDNEXT ${box.uidNext}] Predicted next UID\r\n`);
  const id = await mailboxId(s, name); // RFC 8474 §4.1
  if (id) out.push(`* OK [MAILBOXID (${id})] Ok\r\n`);
  if (s.rev2) out.push(await selectListLine(s, name)); // RFC 9051 §6.3.2: the mailbox's LIST line
  if (s.condstore) out.push(`* OK [HIGHESTMODSEQ ${Math.max(1, box.highestModseq)}] Highest\r\n`);
  const q = params.qresync;
  if (q && q.uidValidity === box.uidValidity) {
    // VANISHED (EARLIER): UIDs of the known range (default 1:UIDNEXT-1) expunged since q.modseq.
    const gone = vanishedEarlier(box, q.modseq, q.known ?? [[1, box.uidNext - 1]]);
    if (gone.length > 0) out.push(`* VANISHED (EARLIER) ${numbersToSeqSet(gone)}\r\n`);
    for (let i = 0; i < view.length; i++) {
      const m = view[i]!;
      if (BigInt(m.modseq) > q.modseq) out.push(`* ${i + 1} FETCH (UID ${m.uid} FLAGS ${flagList(m, s.rev2)} MODSEQ (${m.modseq}))\r\n`);
    }
  }
  await s.send(out.join(''));
  if (s.boxReadOnly && !examine) return { status: 'OK', code: 'READ-ONLY', text: 'Select completed', noSync: true };
  return readOnly || s.boxReadOnly
    ? { status: 'OK', code: 'READ-ONLY', text: 'Examine completed', noSync: true }
    : { status: 'OK', code: 'READ-WRITE', text: 'Select completed', noSync: true };
}

export function cmdSelect(s: ImapSession, c: CommandContext): Promise<Reply> { return select(s, c, false); }
export function cmdExamine(s: ImapSession, c: CommandContext): Promise<Reply> { return select(s, c, true); }
