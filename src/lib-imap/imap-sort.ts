/**
 * imap-sort — the ordering of IMAP SORT (RFC 5256 §3) and SORT=DISPLAY (RFC 5957) over plain
 * per-message records, with Dovecot 2.3's exact keys (lib-storage/index/index-sort.c), so that a
 * SORT answer equals Dovecot's byte for byte (checked in imap-sort-golden.test.ts):
 *
 * - ARRIVAL: the INTERNALDATE, in whole seconds;
 * - DATE: the first Date: header as an instant (time zone applied); missing or unparsable → the
 *   INTERNALDATE instead (RFC 5256 §3 "If the sent date cannot be determined");
 * - SIZE: RFC822.SIZE (the CRLF size);
 * - SUBJECT: the base subject (imap-base-subject.ts); no Subject header → "";
 * - FROM / TO / CC: the local part of the first address of the first such header, after RFC 2047
 *   decoding of the header, folded (i;unicode-casemap); a group's first "address" is the group
 *   name; no header → "";
 * - DISPLAYFROM / DISPLAYTO (RFC 5957): the decoded display name of the first address, or
 *   "mailbox@domain" when it has none (or just "mailbox" for a group), folded;
 * - strings compare like C strcmp on UTF-8; REVERSE flips one key only;
 * - when every key is equal, the lower sequence number comes first — also under REVERSE
 *   (RFC 5256 §3: ties are broken by sequence number; Dovecot never reverses this).
 *
 * API (imapd builds one SortRecord per message, or calls sortRecordFromMessage):
 *   interface SortRecord { seq, uid, size, internalDate, sentDate, subject, from, to, cc,
 *                          messageId, inReplyTo, references }
 *   sortRecordFromMessage(raw: Buffer, meta: {seq, uid, internalDate, size?}): SortRecord
 *   sortMessages(records, criteria: SortCriterion[]): SortRecord[]   (new array, input untouched)
 *   parseSortCriteria(words: string[]): SortCriterion[]              (throws SortCriteriaError)
 * Memory: one precomputed key per record and criterion; time O(n log n) comparisons.
 */
import { parseHeaderBlock, headerFirst, type HeaderField } from '../lib-mail/mail-header.ts';
import { parseAddressList } from '../lib-mail/mail-address.ts';
import { parseMailDate } from '../lib-mail/mail-date.ts';
import { decodeRfc2047 } from '../lib-mail/mail-rfc2047.ts';
import { crlfSize } from '../lib-mail/mail-mime.ts';
import { baseSubject, compareKeys, foldForSort } from './imap-base-subject.ts';

export type SortKey = 'ARRIVAL' | 'CC' | 'DATE' | 'FROM' | 'SIZE' | 'SUBJECT' | 'TO' | 'DISPLAYFROM' | 'DISPLAYTO';

export const SORT_KEYS: readonly SortKey[] = ['ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO', 'DISPLAYFROM', 'DISPLAYTO'];

export interface SortCriterion {
  key: SortKey;
  reverse: boolean;
}

/** The first address of an address header, RFC 2047-decoded (Dovecot get_first_addr). */
export interface SortAddress {
  /** Local part; for a group, the group name. */
  mailbox: string | undefined;
  /** Domain; undefined for a group. */
  domain: string | undefined;
  /** Display name (phrase or trailing comment), undefined if none. */
  name: string | undefined;
}

export interface SortRecord {
  seq: number;
  uid: number;
  /** RFC822.SIZE. */
  size: number;
  internalDate: Date;
  /** First Date: header, parsed; undefined if missing or unparsable. */
  sentDate: Date | undefined;
  /** Raw (unfolded, undecoded) value of the first Subject: header; undefined if none. */
  subject: Buffer | undefined;
  /** First address of the first From:/To:/Cc: header; undefined if no header or no address. */
  from: SortAddress | undefined;
  to: SortAddress | undefined;
  cc: SortAddress | undefined;
  /** Raw values of the first Message-ID:, In-Reply-To:, References: headers (for THREAD). */
  messageId: Buffer | undefined;
  inReplyTo: Buffer | undefined;
  references: Buffer | undefined;
}

export class SortCriteriaError extends Error {}

/** Parses the words of a sort-criteria list, e.g. ["REVERSE", "DATE", "SUBJECT"] (RFC 5256 §3). */
export function parseSortCriteria(words: readonly string[]): SortCriterion[] {
  const out: SortCriterion[] = [];
  let reverse = false;
  for (const w of words) {
    const u = w.toUpperCase();
    if (u === 'REVERSE') {
      if (reverse) throw new SortCriteriaError('REVERSE given twice in a row');
      reverse = true;
      continue;
    }
    if (!(SORT_KEYS as readonly string[]).includes(u)) throw new SortCriteriaError(`Unknown sort argument: ${w}`);
    out.push({ key: u as SortKey, reverse });
    reverse = false;
  }
  if (reverse) throw new SortCriteriaError('REVERSE without a sort key');
  if (out.length === 0) throw new SortCriteriaError('Empty sort program');
  return out;
}

function firstAddress(f: HeaderField | undefined): SortAddress | undefined {
  if (!f) return undefined;
  // Dovecot reads the header with mail_get_first_header_utf8(): encoded words decoded first.
  const decoded = Buffer.from(decodeRfc2047(f.value), 'utf8');
  const list = parseAddressList(decoded, true);
  const a = list[0];
  if (!a) return undefined;
  return {
    mailbox: a.mailbox?.toString('utf8'),
    domain: a.domain?.toString('utf8'),
    name: a.name?.toString('utf8'),
  };
}

/** Builds the SortRecord of a raw message (header parsing only; the body is not looked at). */
export function sortRecordFromMessage(raw: Buffer, meta: { seq: number; uid: number; internalDate: Date; size?: number }): SortRecord {
  const h = parseHeaderBlock(raw, 0, raw.length).fields;
  const val = (name: string): Buffer | undefined => headerFirst(h, name)?.value;
  const dateField = headerFirst(h, 'Date');
  const sent = dateField ? parseMailDate(dateField.value.toString('latin1')) : undefined;
  return {
    seq: meta.seq,
    uid: meta.uid,
    size: meta.size ?? crlfSize(raw),
    internalDate: meta.internalDate,
    sentDate: sent?.date,
    subject: val('Subject'),
    from: firstAddress(headerFirst(h, 'From')),
    to: firstAddress(headerFirst(h, 'To')),
    cc: firstAddress(headerFirst(h, 'Cc')),
    messageId: val('Message-ID'),
    inReplyTo: val('In-Reply-To'),
    references: val('References'),
  };
}

/** Seconds since the epoch, like Dovecot's time_t. */
function seconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}

/** DATE key: sent date, or INTERNALDATE when it is missing/unparsable (or exactly the epoch). */
export function sortDate(r: SortRecord): number {
  const t = r.sentDate && !Number.isNaN(r.sentDate.getTime()) ? seconds(r.sentDate) : 0;
  return t !== 0 ? t : seconds(r.internalDate);
}

function displayName(a: SortAddress | undefined): string {
  if (!a) return '';
  if (a.name !== undefined) {
    // Dovecot decodes the (already decoded) name once more; harmless for real names.
    const n = decodeRfc2047(Buffer.from(a.name, 'utf8'));
    if (n.length > 0) return n;
  }
  if (a.mailbox !== undefined && a.domain !== undefined) return `${a.mailbox}@${a.domain}`;
  return a.mailbox ?? '';
}

/** The comparison key of one record for one sort key: a number or a folded string. */
export function sortKeyOf(r: SortRecord, key: SortKey): number | string {
  switch (key) {
    case 'ARRIVAL': return seconds(r.internalDate);
    case 'DATE': return sortDate(r);
    case 'SIZE': return r.size;
    case 'SUBJECT': return r.subject === undefined ? '' : baseSubject(r.subject).subject;
    case 'FROM': return foldForSort(r.from?.mailbox ?? '');
    case 'TO': return foldForSort(r.to?.mailbox ?? '');
    case 'CC': return foldForSort(r.cc?.mailbox ?? '');
    case 'DISPLAYFROM': return foldForSort(displayName(r.from));
    case 'DISPLAYTO': return foldForSort(displayName(r.to));
  }
}

/** Returns the records in SORT order (RFC 5256 §3), ties by ascending sequence number. */
export function sortMessages<R extends SortRecord>(records: readonly R[], criteria: readonly SortCriterion[]): R[] {
  const n = records.length;
  const keys = criteria.map((c) => {
    const k = new Array<number | string>(n);
    for (let i = 0; i < n; i++) k[i] = sortKeyOf(records[i]!, c.key);
    return k;
  });
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => {
    for (let c = 0; c < criteria.length; c++) {
      const ka = keys[c]![a]!;
      const kb = keys[c]![b]!;
      const r = typeof ka === 'number' ? (ka < (kb as number) ? -1 : ka > (kb as number) ? 1 : 0) : compareKeys(ka, kb as string);
      if (r !== 0) return criteria[c]!.reverse ? -r : r;
    }
    return records[a]!.seq - records[b]!.seq;
  });
  return idx.map((i) => records[i]!);
}
