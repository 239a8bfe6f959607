/**
 * cmd-fetch - FETCH and UID FETCH (RFC 3501 §6.4.5, §7.4.2; RFC 9051 §6.4.5), every item of
 * lib-imap's fetch grammar: ENVELOPE, BODYSTRUCTURE, BODY, BODY[section]<partial>, BODY.PEEK,
 * BINARY[part]<partial> / BINARY.PEEK / BINARY.SIZE (RFC 3516), RFC822, RFC822.HEADER,
 * RFC822.TEXT, RFC822.SIZE, FLAGS, INTERNALDATE, UID, MODSEQ (RFC 7162), SAVEDATE (RFC 8514),
 * EMAILID and THREADID (RFC 8474, imapd-objectid.ts),
 * and the CHANGEDSINCE / VANISHED modifiers (RFC 7162 §3.1.4, §3.2.6).
 *
 * Dovecot 2.3's answer shape (checked against its imap):
 *  - item order: UID first for UID FETCH, then the items that need no message content (FLAGS,
 *    UID, RFC822.SIZE, INTERNALDATE, MODSEQ, SAVEDATE) in the order asked, then the content
 *    items in the order asked;
 *  - a non-PEEK body fetch sets \Seen (RFC 3501 §6.4.5) and adds FLAGS to the answer when not
 *    asked (right after UID);
 *  - sequence numbers beyond the mailbox: `BAD Error in IMAP command FETCH: Invalid messageset`;
 *  - a message expunged meanwhile: the others are answered, then
 *    `NO [EXPUNGEISSUED] Some of the requested messages no longer exist.`;
 *  - MODSEQ or CHANGEDSINCE enable CONDSTORE (`* OK [HIGHESTMODSEQ n] Highest` first).
 * Output respects the socket's backpressure, one message at a time.
 */
import { parseFetchArgs, type FetchAtt } from '../lib-imap/imap-fetch-args.ts';
import { imapLiteral, imapLiteral8, imapString } from '../lib-imap/imap-compose.ts';
import { messageSnippet } from '../lib-mail/mail-snippet.ts';
import { formatImapDateTime } from '../lib-imap/imap-date.ts';
import { numbersToSeqSet, resolveSeqSet } from '../lib-imap/imap-seqset.ts';
import { parseMime, toCrlf, type MimeMessage } from '../lib-mail/mail-mime.ts';
import { imapBodyStructure, imapMessageEnvelope } from '../lib-imap/imap-bodystructure.ts';
import { applyPartial, extractBinary, extractSection } from '../lib-mail/mail-section.ts';
import { UnknownCteError } from '../lib-mail/mail-decode.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import { SYSTEM_FLAGS, type MessageInfo } from '../lib-storage/mail-storage.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { flagList, resolveMessages, vanishedEarlier } from './imapd-sync.ts';
import { cacheScope } from './imapd-cache.ts';
import { emailId } from './imapd-objectid.ts';

const QUICK = new Set(['FLAGS', 'UID', 'RFC822.SIZE', 'INTERNALDATE', 'MODSEQ', 'SAVEDATE', 'EMAILID', 'THREADID']);

function isQuick(a: FetchAtt): boolean {
  return a.kind === 'simple' && QUICK.has(a.name);
}

/** Answered among the quick items (Dovecot has them in its cache), though computed from the content. */
function ordersAsQuick(a: FetchAtt): boolean {
  return isQuick(a) || (a.kind === 'simple' && (a.name === 'PREVIEW' || a.name === 'SNIPPET'));
}

function attKey(a: FetchAtt): string {
  return a.kind === 'simple' ? a.name : `${a.kind}:${a.responseName}:${'peek' in a ? a.peek : ''}`;
}

function setsSeen(a: FetchAtt): boolean {
  if (a.kind === 'body' || a.kind === 'binary') return !a.peek;
  return a.kind === 'simple' && (a.name === 'RFC822' || a.name === 'RFC822.TEXT');
}

function needsContent(a: FetchAtt): boolean {
  return !isQuick(a);
}

export function tzOffsetMinutes(d: Date): number {
  return -d.getTimezoneOffset();
}

/**
 * RFC 3501 §4.3: a literal carries no NUL; a message that holds some (APPENDed as literal8 with
 * 8-bit parts) is sent with each NUL as 0x80, as Dovecot's i_stream_create_nonuls(0x80) does.
 * Only BINARY answers (literal8) keep them.
 */
function noNuls(data: Buffer): Buffer {
  if (data.indexOf(0) < 0) return data;
  const out = Buffer.from(data);
  for (let i = out.indexOf(0); i >= 0; i = out.indexOf(0, i + 1)) out[i] = 0x80;
  return out;
}

export async function cmdFetch(s: ImapSession, c: CommandContext): Promise<Reply> {
  const box = s.box!;
  const cmd = parseFetchArgs(c.args, { qresync: s.qresync });
  if (cmd.vanished && !c.uid) return { status: 'BAD', text: 'Error in IMAP command FETCH: VANISHED only allowed with UID FETCH' };
  const idx = resolveMessages(s, cmd.set, c.uid);
  // item order: UID (UID FETCH), quick items as asked, content items as asked; duplicates once
  let atts: FetchAtt[] = [];
  const seen = new Set<string>();
  if (c.uid) { atts.push({ kind: 'simple', name: 'UID' }); seen.add('UID'); }
  for (const a of cmd.atts) if (ordersAsQuick(a) && !seen.has(attKey(a))) { seen.add(attKey(a)); atts.push(a); }
  for (const a of cmd.atts) if (!ordersAsQuick(a) && !seen.has(attKey(a))) { seen.add(attKey(a)); atts.push(a); }
  const wantsModseq = atts.some((a) => a.kind === 'simple' && a.name === 'MODSEQ');
  if (wantsModseq && !s.condstore) {
    s.enabled.add('CONDSTORE');
    s.send(`* OK [HIGHESTMODSEQ ${Math.max(1, box.highestModseq)}] Highest\r\n`);
  }
  const content = atts.some(needsContent);
  const markSeen = !box.readOnly && !s.boxReadOnly && atts.some(setsSeen);
  // ACL: without the s right the implicit \Seen is not stored, though the answer's FLAGS show it
  // (Dovecot's acl plugin drops the change after imap has answered it)
  const seenStored = s.boxRights === undefined || s.boxRights.includes('s');
  const view = box.messages();
  let list = idx.map((i) => ({ seq: i + 1, m: s.current(view[i]!) }));
  if (cmd.changedSince !== undefined) {
    const since = cmd.changedSince;
    if (cmd.vanished) {
      // RFC 7162 §3.2.6: UIDs of the set expunged since CHANGEDSINCE (a superset is allowed).
      const gone = cmd.set.kind === 'ranges' ? vanishedEarlier(box, since, resolveSeqSet(cmd.set, box.uidNext - 1)) : [];
      if (gone.length > 0) s.send(`* VANISHED (EARLIER) ${numbersToSeqSet(gone)}\r\n`);
    }
    list = list.filter(({ m }) => BigInt(m.modseq) > since);
  }
  // \Seen first (one store call for the whole set), so FLAGS show it
  const updated = new Map<number, MessageInfo>();
  let flagsAdded = false;
  if (markSeen) {
    const unseen = list.filter(({ m }) => !m.flags.includes('\\Seen')).map(({ m }) => m.uid);
    if (unseen.length > 0) {
      if (seenStored) {
        const r = await box.setFlags(unseen, 'add', ['\\Seen']);
        for (const m of r.changed) { updated.set(m.uid, m); s.reported.set(m.uid, m); }
      } else {
        for (const { m } of list) if (!m.flags.includes('\\Seen')) updated.set(m.uid, { ...m, flags: SYSTEM_FLAGS.filter((f) => f === '\\Seen' || m.flags.includes(f)) });
      }
      if (!atts.some((a) => a.kind === 'simple' && a.name === 'FLAGS')) {
        const at = c.uid ? 1 : 0;
        atts = [...atts.slice(0, at), { kind: 'simple', name: 'FLAGS' }, ...atts.slice(at)];
        flagsAdded = true;
      }
    }
  }
  let expungedSome = false;
  const cache = s.shared.cache;
  const scope = cacheScope(box, s.user?.user ?? '');
  const contentAtts = atts.filter(needsContent);
  // answers persisted by an earlier process (imapd-cache-file.ts): read once per mailbox
  if (contentAtts.some((a) => a.kind === 'simple' && (a.name === 'ENVELOPE' || a.name === 'BODYSTRUCTURE' || a.name === 'BODY'))) {
    const loading = cache.files.load(box);
    if (loading) await loading;
  }
  /** What must be read from disk for message m: nothing, the header only, or everything. */
  const need = (m: MessageInfo): 'none' | 'header' | 'full' => {
    let header = false;
    for (const a of contentAtts) {
      if (a.kind === 'simple' && (a.name === 'ENVELOPE' || a.name === 'BODYSTRUCTURE' || a.name === 'BODY') && cache.get(scope, m, a.name)) continue;
      if (a.kind === 'simple' && a.name === 'ENVELOPE') { header = true; continue; }
      return 'full';
    }
    return header ? 'header' : 'none';
  };
  // Message files are read in chunks of READ_CHUNK through Mailbox.readMany (for Maildir:
  // synchronous open/read/close in time slices, as Dovecot's imap reads them): four thread-pool
  // round trips per message (open, fstat, read, close) cost more than the reads themselves
  // (FETCH of the newest 50 with their bodies: ~6 ms through the pool, ~2 ms in chunks).
  // A chunk bounds how many message files are held at once.
  const READ_CHUNK = 16;
  const needs = list.map(({ m }) => need(updated.get(m.uid) ?? m));
  let chunk: (Buffer | undefined)[] = [];
  let chunkStart = 0;
  const readChunk = async (from: number): Promise<void> => {
    chunkStart = from;
    chunk = new Array<Buffer | undefined>(Math.min(READ_CHUNK, list.length - from));
    const at: number[] = [];
    const uids: number[] = [];
    for (let j = from; j < from + chunk.length; j++) if (needs[j] !== 'none') { at.push(j - from); uids.push(list[j]!.m.uid); }
    if (uids.length > 0) await box.readMany(uids, (i, content) => { chunk[at[i]!] = content; });
  };
  // answers are written in batches of ~64 KiB: one socket write per message costs a syscall each
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const p = s.send(batch.length === 1 ? batch[0]! : Buffer.concat(batch));
    batch = [];
    batchBytes = 0;
    if (p) await p;
  };
  for (let j = 0; j < list.length; j++) {
    const { seq, m: m0 } = list[j]!;
    const m = updated.get(m0.uid) ?? m0;
    if (j % READ_CHUNK === 0) await readChunk(j);
    const parts: Buffer[] = [];
    try {
      let content: Content | undefined;
      if (needs[j] !== 'none') {
        const data = chunk[j - chunkStart];
        chunk[j - chunkStart] = undefined;
        // readMany skips a message expunged meanwhile
        if (data === undefined) throw new MailError('EXPUNGED', 'expunged');
        content = new Content(data, needs[j] === 'header');
      }
      for (const a of atts) {
        if (flagsAdded && a.kind === 'simple' && a.name === 'FLAGS' && !updated.has(m.uid)) continue;
        const v = fetchItem(s, m, a, content);
        parts.push(v instanceof Buffer ? v : await v);   // most items need no await
      }
    } catch (e) {
      if (e instanceof MailError && e.code === 'EXPUNGED') { expungedSome = true; continue; }
      if (e instanceof UnknownCteError) {
        if (parts.length > 0) batch.push(Buffer.concat([Buffer.from(`* ${seq} FETCH (`), join(parts), Buffer.from(')\r\n')]));
        await flush();
        return { status: 'NO', code: 'UNKNOWN-CTE', text: 'Unknown Content-Transfer-Encoding' };
      }
      throw e;
    }
    const line = Buffer.concat([Buffer.from(`* ${seq} FETCH (`), join(parts), Buffer.from(')\r\n')]);
    batch.push(line);
    batchBytes += line.length;
    if (batchBytes >= 65536) await flush();
    if (s.isClosed) return { status: 'OK', text: 'Fetch completed' };
  }
  await flush();
  if (expungedSome) return { status: 'NO', code: 'EXPUNGEISSUED', text: 'Some of the requested messages no longer exist.' };
  return { status: 'OK', text: 'Fetch completed' };
}

/**
 * One message's content for its FETCH items: parsed only when an item needs the MIME
 * structure (BODY[] and RFC822, the whole message, need no parse: only the CRLF form).
 */
class Content {
  private readonly raw: Buffer;
  private readonly headerOnly: boolean;
  private parsed: MimeMessage | undefined;
  constructor(raw: Buffer, headerOnly: boolean) { this.raw = raw; this.headerOnly = headerOnly; }
  get msg(): MimeMessage { return this.parsed ??= this.headerOnly ? headerOnly(this.raw) : parseMime(this.raw); }
  /** The whole message in CRLF form, as MimeMessage.data. */
  get whole(): Buffer { return this.parsed?.data ?? toCrlf(this.raw); }
}

/** A MimeMessage holding only the top-level header: enough for ENVELOPE (the body is not parsed). */
function headerOnly(raw: Buffer): MimeMessage {
  let end = raw.indexOf('\r\n\r\n');
  end = end >= 0 ? end + 4 : raw.indexOf('\n\n') >= 0 ? raw.indexOf('\n\n') + 2 : raw.length;
  return parseMime(raw.subarray(0, end));
}

function join(parts: Buffer[]): Buffer {
  const out: Buffer[] = [];
  parts.forEach((p, i) => { if (i > 0) out.push(Buffer.from(' ')); out.push(p); });
  return Buffer.concat(out);
}

function fetchItem(s: ImapSession, m: MessageInfo, a: FetchAtt, content: Content | undefined): Buffer | Promise<Buffer> {
  const box = s.box!;
  if (a.kind === 'simple') {
    switch (a.name) {
      case 'UID': return Buffer.from(`UID ${m.uid}`);
      case 'FLAGS': return Buffer.from(`FLAGS ${flagList(m, s.rev2)}`);
      case 'RFC822.SIZE': return Buffer.from(`RFC822.SIZE ${m.vsize}`);
      case 'MODSEQ': return Buffer.from(`MODSEQ (${m.modseq})`);
      case 'EMAILID': return Buffer.from(`EMAILID (${emailId(m)})`); // RFC 8474 §5.1 (imapd-objectid.ts)
      case 'THREADID': return Buffer.from('THREADID NIL'); // RFC 8474 §5.2: no thread index
      case 'INTERNALDATE': return box.internalDate(m.uid).then((d) => Buffer.from(`INTERNALDATE "${formatImapDateTime(d, tzOffsetMinutes(d))}"`));
      case 'SAVEDATE': return box.saveDate(m.uid).then((d) => Buffer.from(`SAVEDATE "${formatImapDateTime(d, tzOffsetMinutes(d))}"`));
      case 'ENVELOPE': case 'BODYSTRUCTURE': case 'BODY': {
        const cache = s.shared.cache;
        const scope = cacheScope(box, s.user?.user ?? '');
        let v = cache.get(scope, m, a.name);
        if (!v) {
          v = a.name === 'ENVELOPE' ? imapMessageEnvelope(content!.msg) : imapBodyStructure(content!.msg, a.name === 'BODYSTRUCTURE');
          cache.set(scope, m, a.name, v);
          cache.files.computed(box);
        }
        return Buffer.concat([Buffer.from(a.name + ' '), v]);
      }
      // RFC 8970: the first 200 characters of the first text part, as Dovecot (lib-mail/mail-snippet.ts)
      case 'PREVIEW': return Buffer.concat([Buffer.from('PREVIEW '), imapString(Buffer.from(messageSnippet(content!.msg), 'utf8'))]);
      case 'SNIPPET': return Buffer.concat([Buffer.from('SNIPPET (FUZZY '), imapString(Buffer.from(messageSnippet(content!.msg), 'utf8')), Buffer.from(')')]);
      case 'RFC822': return Buffer.concat([Buffer.from('RFC822 '), imapLiteral(noNuls(content!.whole))]);
      case 'RFC822.HEADER': return Buffer.concat([Buffer.from('RFC822.HEADER '), imapLiteral(noNuls(extractSection(content!.msg, { path: [], text: 'HEADER' })))]);
      case 'RFC822.TEXT': return Buffer.concat([Buffer.from('RFC822.TEXT '), imapLiteral(noNuls(extractSection(content!.msg, { path: [], text: 'TEXT' })))]);
      default: throw new Error(`unhandled fetch item ${a.name}`);
    }
  }
  if (a.kind === 'body') {
    let data = a.section.path.length === 0 && a.section.text === undefined ? content!.whole : extractSection(content!.msg, a.section);
    if (a.partial) data = applyPartial(data, a.partial.origin, a.partial.octets);
    return Buffer.concat([Buffer.from(a.responseName + ' '), imapLiteral(noNuls(data))]);
  }
  if (a.kind === 'binary') {
    const b = extractBinary(content!.msg, a.path);
    const data = a.partial ? applyPartial(b.data, a.partial.origin, a.partial.octets) : b.data;
    return Buffer.concat([Buffer.from(a.responseName + ' '), b.literal8 ? imapLiteral8(data) : imapLiteral(data)]);
  }
  const b = extractBinary(content!.msg, a.path);
  return Buffer.from(`${a.responseName} ${b.data.length}`);
}
