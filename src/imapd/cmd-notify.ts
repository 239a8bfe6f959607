/**
 * cmd-notify - NOTIFY (RFC 5465 §3, §6): `NOTIFY NONE` and
 *   NOTIFY SET [STATUS] (filter-mailboxes events) ...
 *   filter-mailboxes: SELECTED | SELECTED-DELAYED | INBOXES | PERSONAL | SUBSCRIBED |
 *                     SUBTREE one-or-more-mailbox | MAILBOXES one-or-more-mailbox
 *   events:           NONE | (MessageNew [(fetch-att ...)] MessageExpunge FlagChange
 *                     MailboxName SubscriptionChange ...)
 * parsed and answered as Dovecot 2.3's cmd-notify.c:
 *   - INBOXES is PERSONAL (Dovecot cannot tell which mailboxes receive mail either);
 *   - a syntax error: `BAD Error in IMAP command NOTIFY: Invalid arguments.`; for SELECTED,
 *     MessageNew and MessageExpunge only together and FlagChange only with them (§5.2), and one
 *     SELECTED filter (`Duplicate selected filter`);
 *   - AnnotationChange, MailboxMetadataChange, ServerMetadataChange:
 *     `NO [BADEVENT MailboxMetadataChange ...] Unsupported NOTIFY events.` (§5.9);
 *   - more than NOTIFY_MAX_NAMES names in one filter: `NO [NOTIFICATIONOVERFLOW] Too many
 *     mailbox names` (Dovecot's IMAP_NOTIFY_MAX_NAMES_PER_NS);
 *   - STATUS (§5.1): before the OK, `* STATUS box (MESSAGES UIDNEXT UIDVALIDITY UNSEEN
 *     [HIGHESTMODSEQ])` for every existing mailbox a filter matches, except the selected one
 *     (HIGHESTMODSEQ when FlagChange is asked); a mailbox the ACL lets the user see but not
 *     read answers `* LIST (\NoAccess) ...`, another user's it may not see nothing;
 *   - shared and public namespaces as Dovecot (imapd-notify.ts filterMatches): only filters
 *     naming a mailbox or subtree inside them, never PERSONAL or the bare `shared` root.
 * What happens afterwards is imapd-notify.ts.
 */
import { argBytes, ImapParseError, type ImapArg } from '../lib-imap/imap-parser.ts';
import { parseFetchArgs } from '../lib-imap/imap-fetch-args.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import type { MailboxStatus } from '../lib-storage/mail-storage.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { mailboxArg, mailboxOut } from './imapd-names.ts';
import { aclOn, myRights } from './imapd-acl.ts';
import { imapString } from '../lib-imap/imap-compose.ts';
import {
  EV_ANNOTATION_CHANGE, EV_FLAG_CHANGE, EV_MAILBOX_METADATA_CHANGE, EV_MESSAGE_EXPUNGE, EV_MESSAGE_NEW, EV_SERVER_METADATA_CHANGE,
  NOTIFY_BASELINE_AT_SET, NOTIFY_BASELINE_MAX, NotifyState, sharedList, type NotifyFilter, type NotifySelected,
} from './imapd-notify.ts';

/** Dovecot's IMAP_NOTIFY_MAX_NAMES_PER_NS. */
export const NOTIFY_MAX_NAMES = 100;

const EVENT_NAMES = ['MessageNew', 'MessageExpunge', 'FlagChange', 'AnnotationChange', 'MailboxName', 'SubscriptionChange',
  'MailboxMetadataChange', 'ServerMetadataChange'];
const UNSUPPORTED = EV_ANNOTATION_CHANGE | EV_MAILBOX_METADATA_CHANGE | EV_SERVER_METADATA_CHANGE;
const INVALID = 'Invalid arguments';

class NotifySyntax extends Error {}

function atom(a: ImapArg | undefined): string | undefined {
  return a?.type === 'atom' ? a.value : undefined;
}

function parseEvent(a: ImapArg | undefined): number {
  const v = atom(a)?.toLowerCase();
  const i = v === undefined ? -1 : EVENT_NAMES.findIndex((n) => n.toLowerCase() === v);
  if (i < 0) throw new NotifySyntax(INVALID);
  return 1 << i;
}

interface Parsed { filters: NotifyFilter[]; selected: NotifySelected | undefined; used: number; status: boolean; maxNames: number }

function parseSet(s: ImapSession, args: readonly ImapArg[]): Parsed {
  const p: Parsed = { filters: [], selected: undefined, used: 0, status: false, maxNames: 0 };
  let i = 0;
  if (atom(args[0])?.toUpperCase() === 'STATUS') { p.status = true; i++; }
  const add = (type: NotifyFilter['type'], name: string, events: number): void => {
    let f = p.filters.find((x) => x.type === type && x.events === events);
    if (!f) { f = { type, names: [], events }; p.filters.push(f); }
    if (f.names.includes(name)) return;
    if (type === 'subtree') {
      const sep = s.shared.settings.separator;
      if (f.names.some((n) => name.startsWith(n + sep))) return; // already inside one
      f.names = f.names.filter((n) => !n.startsWith(name + sep)); // a parent replaces its children
    }
    f.names.push(name);
    p.maxNames = Math.max(p.maxNames, f.names.length);
  };
  for (; i < args.length; i++) {
    const g = args[i]!;
    if (g.type !== 'list') throw new NotifySyntax(INVALID);
    const items = g.items;
    const filter = atom(items[0])?.toLowerCase();
    if (filter === undefined) throw new NotifySyntax(INVALID);
    let k = 1;
    if (filter === 'selected' || filter === 'selected-delayed') {
      if (p.selected) throw new NotifySyntax('Duplicate selected filter');
      p.selected = { events: 0, immediate: filter === 'selected', fetchAtts: undefined };
      const ev = items[k];
      if (atom(ev)?.toUpperCase() === 'NONE') continue;
      if (ev?.type !== 'list') throw new NotifySyntax(INVALID);
      for (let j = 0; j < ev.items.length; j++) {
        const e = parseEvent(ev.items[j]);
        p.selected.events |= e;
        p.used |= e;
        const next = ev.items[j + 1];
        if (e === EV_MESSAGE_NEW && next?.type === 'list') {
          try { parseFetchArgs([{ type: 'atom', value: '1' }, next]); } catch (err) { throw new NotifySyntax((err as Error).message); }
          p.selected.fetchAtts = next;
          j++;
        }
      }
      const ne = p.selected.events & (EV_MESSAGE_NEW | EV_MESSAGE_EXPUNGE);
      if (ne !== 0 && ne !== (EV_MESSAGE_NEW | EV_MESSAGE_EXPUNGE)) throw new NotifySyntax('MessageNew and MessageExpunge must be together');
      if ((p.selected.events & (EV_FLAG_CHANGE | EV_ANNOTATION_CHANGE)) !== 0 && (p.selected.events & EV_MESSAGE_EXPUNGE) === 0) {
        throw new NotifySyntax('FlagChange requires MessageNew and MessageExpunge');
      }
      continue;
    }
    let boxes: ImapArg | undefined;
    if (filter === 'subtree' || filter === 'mailboxes') boxes = items[k++];
    const ev = items[k];
    if (atom(ev)?.toUpperCase() === 'NONE') continue;
    if (ev?.type !== 'list' || ev.items.length === 0) throw new NotifySyntax(INVALID);
    let mask = 0;
    for (const e of ev.items) { const b = parseEvent(e); mask |= b; p.used |= b; }
    if (filter === 'inboxes' || filter === 'personal') add('subtree', '', mask);
    else if (filter === 'subscribed') add('subscribed', '', mask);
    else if (filter === 'subtree' || filter === 'mailboxes') {
      if (!boxes) throw new NotifySyntax(INVALID);
      const list = boxes.type === 'list' ? boxes.items : [boxes];
      for (const b of list) {
        if (b.type === 'list' || !argBytes(b)) throw new NotifySyntax(INVALID);
        add(filter, mailboxArg(s, b), mask);
      }
    } else throw new NotifySyntax(INVALID);
  }
  return p;
}

export async function cmdNotify(s: ImapSession, c: CommandContext): Promise<Reply> {
  const verb = atom(c.args[0])?.toUpperCase();
  let p: Parsed;
  try {
    if (verb === 'NONE') p = { filters: [], selected: undefined, used: 0, status: false, maxNames: 0 };
    else if (verb === 'SET') p = parseSet(s, c.args.slice(1));
    else throw new NotifySyntax(INVALID);
  } catch (e) {
    if (e instanceof NotifySyntax) return { status: 'BAD', text: `Error in IMAP command NOTIFY: ${e.message}` };
    throw e;
  }
  if (p.used & UNSUPPORTED) {
    const names = EVENT_NAMES.filter((_, i) => (p.used & (1 << i) & UNSUPPORTED) !== 0);
    return { status: 'NO', code: `BADEVENT ${names.join(' ')}`, text: 'Unsupported NOTIFY events' };
  }
  if (p.maxNames > NOTIFY_MAX_NAMES) return { status: 'NO', code: 'NOTIFICATIONOVERFLOW', text: 'Too many mailbox names' };
  s.notify?.stop();
  s.notify = undefined;
  // Dovecot: from now on the selected mailbox's EXISTS/RECENT only with SELECTED MessageNew,
  // its flag changes only with FlagChange (NOTIFY NONE: neither), even in reply to NOOP
  s.notifyCounts = ((p.selected?.events ?? 0) & EV_MESSAGE_NEW) !== 0;
  s.notifyFlags = ((p.selected?.events ?? 0) & EV_FLAG_CHANGE) !== 0;
  if (verb === 'NONE') return { status: 'OK', text: 'NOTIFY completed' };
  const st = new NotifyState(s, p.filters, p.selected, p.used);
  // one read of the list shared with the user's other sessions that ask at the same time
  const { all, snap } = p.filters.length > 0 ? await sharedList(s, c.start) : { all: [], snap: { exists: new Set<string>(), subs: new Set<string>(), noselect: new Set<string>() } };
  const statuses = new Map<string, MailboxStatus>();
  const wantsStatus = p.filters.some((f) => (f.events & (EV_MESSAGE_NEW | EV_MESSAGE_EXPUNGE | EV_FLAG_CHANGE | EV_ANNOTATION_CHANGE)) !== 0);
  // the filters see the subscriptions of now (Dovecot refreshes them first)
  await st.start(snap);
  if (wantsStatus) {
    for (const m of all) {
      if (m.nonExistent || m.attributes.includes('\\Noselect') || s.box?.name === m.name) continue;
      if (!p.filters.some((f) => st.filterMatches(f, m.name))) continue;
      // without STATUS only the first few are looked at now; the others when they first change
      if (!p.status && statuses.size >= NOTIFY_BASELINE_AT_SET) break;
      const rights = aclOn(s) ? await myRights(s, m.name) : undefined;
      if (rights !== undefined && !rights.includes('l') && s.user!.mailboxOwner?.(m.name) !== s.user!.user) continue; // another's, not visible (Dovecot lists it not)
      if (rights !== undefined && !rights.includes('r')) {
        if (p.status) {
          const attrs = m.attributes.filter((a) => a !== '\\Subscribed');
          await s.send(Buffer.concat([Buffer.from(`* LIST (${[...attrs, '\\NoAccess'].join(' ')}) ${imapString(s.shared.settings.separator).toString('latin1')} `), mailboxOut(s, m.name), Buffer.from('\r\n')]));
        }
        continue;
      }
      let ms: MailboxStatus;
      try { ms = await s.user!.status(m.name); } catch (e) { if (e instanceof MailError) continue; throw e; }
      if (statuses.size < NOTIFY_BASELINE_MAX) statuses.set(m.name, ms);
      if (!p.status) continue;
      const items = [`MESSAGES ${ms.messages}`, `UIDNEXT ${ms.uidNext}`, `UIDVALIDITY ${ms.uidValidity}`, `UNSEEN ${ms.unseen}`];
      if (p.used & (EV_FLAG_CHANGE | EV_ANNOTATION_CHANGE)) items.push(`HIGHESTMODSEQ ${Math.max(1, ms.highestModseq)}`);
      await s.send(Buffer.concat([Buffer.from('* STATUS '), mailboxOut(s, m.name), Buffer.from(` (${items.join(' ')})\r\n`)]));
      if (items.length > 4) s.enabled.add('CONDSTORE'); // Dovecot: a STATUS with HIGHESTMODSEQ enables it
      if (s.isClosed) break;
    }
  }
  st.seed(statuses);
  s.notify = st; // overflowed meanwhile: it says so before the next reply and removes itself
  return { status: 'OK', text: 'NOTIFY completed' };
}
