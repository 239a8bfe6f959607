/**
 * imapd-capability - the CAPABILITY list (RFC 3501 §7.2.1), in Dovecot 2.3's order and form,
 * with only what Postern implements:
 *   pre-login  IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE LITERAL+ [STARTTLS] AUTH=PLAIN AUTH=LOGIN
 *              (LOGINDISABLED instead of AUTH=... when disable_plaintext_auth forbids it, as Dovecot)
 *   post-login IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE [SORT SORT=DISPLAY THREAD=...] MULTIAPPEND
 *              CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED CONDSTORE QRESYNC ESEARCH
 *              [ESORT] SEARCHRES WITHIN CONTEXT=SEARCH [CONTEXT=SORT] LIST-STATUS BINARY MOVE STATUS=SIZE SAVEDATE
 *              LITERAL+ NOTIFY SPECIAL-USE QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE SNIPPET=FUZZY
 *              PREVIEW=FUZZY PREVIEW REPLACE [METADATA] [ACL RIGHTS=texk] [CREATE-SPECIAL-USE]
 *              [OBJECTID] UNAUTHENTICATE UTF8=ACCEPT COMPRESS=DEFLATE
 * CREATE-SPECIAL-USE (RFC 6154 §3, cmd-create.ts) and OBJECTID (RFC 8474, imapd-objectid.ts)
 * only where the mailbox format keeps what they need (Maildir, not mbox); Dovecot 2.3 has neither,
 * nor UNAUTHENTICATE (RFC 8437, cmd-unauthenticate.ts), nor UTF8=ACCEPT (RFC 6855: after ENABLE,
 * mailbox names in UTF-8 as in IMAP4rev2, imapd-names.ts, and APPEND's `UTF8 (~{n})` data).
 * IMAP4rev2 (RFC 9051) is spoken after ENABLE IMAP4rev2 (imapd-rev2.ts); CONTEXT=SEARCH is RFC
 * 5267 §4 (cmd-search-context.ts), CONTEXT=SORT its SORT form (cmd-sort.ts; Dovecot 2.3 lacks it).
 * Not announced (Dovecot does): LOGIN-REFERRALS (we never refer), URL-PARTIAL, I18NLEVEL=1,
 * THREAD=REFS. NOTIFY (RFC 5465) is cmd-notify.ts and imapd-notify.ts.
 */
import type { ImapSession } from './imapd-session.ts';
import { sortAvailable } from './cmd-sort.ts';

export function capabilityList(s: ImapSession): string[] {
  const caps = ['IMAP4rev1', 'IMAP4rev2', 'SASL-IR', 'ID', 'ENABLE', 'IDLE'];
  if (s.state === 'nonauth') {
    caps.push('LITERAL+');
    if (!s.secure && s.shared.settings.starttls) caps.push('STARTTLS');
    if (s.shared.settings.disablePlaintextAuth && !s.secured) caps.push('LOGINDISABLED');
    else for (const m of s.shared.settings.mechanisms) caps.push(`AUTH=${m}`);
    return caps;
  }
  if (sortAvailable()) caps.push('SORT', 'SORT=DISPLAY', 'THREAD=REFERENCES', 'THREAD=ORDEREDSUBJECT');
  caps.push('MULTIAPPEND', 'CATENATE', 'UNSELECT', 'CHILDREN', 'NAMESPACE', 'UIDPLUS', 'LIST-EXTENDED',
    'CONDSTORE', 'QRESYNC', 'ESEARCH');
  if (sortAvailable()) caps.push('ESORT');
  caps.push('SEARCHRES', 'WITHIN', 'CONTEXT=SEARCH');
  if (sortAvailable()) caps.push('CONTEXT=SORT'); // RFC 5267 §4 for SORT (cmd-sort.ts, cmd-search-context.ts)
  caps.push('LIST-STATUS', 'BINARY', 'MOVE', 'STATUS=SIZE', 'SAVEDATE', 'LITERAL+',
    'NOTIFY', 'SPECIAL-USE', 'QUOTA', 'QUOTA=RES-STORAGE', 'QUOTA=RES-MESSAGE');
  caps.push('SNIPPET=FUZZY', 'PREVIEW=FUZZY', 'PREVIEW', 'REPLACE'); // RFC 8970 (and its draft's SNIPPET, as Dovecot); RFC 8508
  if (s.shared.settings.metadataDict) caps.push('METADATA'); // RFC 5464, with imap_metadata = yes
  if (s.shared.settings.urlauthDict) caps.push('URLAUTH', 'URLAUTH=BINARY'); // RFC 4467 and RFC 5524, with imap_urlauth_host (cmd-urlauth.ts)
  // RFC 4314, with the imap_acl plugin, where the mailbox format keeps ACLs (not mbox)
  if (s.shared.settings.imapAcl && (!s.user || typeof s.user.acl === 'function')) caps.push('ACL', 'RIGHTS=texk');
  // RFC 6154 §3 (cmd-create.ts) where the mailbox format keeps the attributes (not mbox)
  if (!s.user || typeof s.user.setSpecialUse === 'function') caps.push('CREATE-SPECIAL-USE');
  // RFC 8474 (imapd-objectid.ts) where the mailbox format keeps mailbox GUIDs (not mbox)
  if (!s.user || typeof s.user.mailboxGuid === 'function') caps.push('OBJECTID');
  caps.push('UNAUTHENTICATE'); // RFC 8437 (cmd-unauthenticate.ts)
  caps.push('UTF8=ACCEPT'); // RFC 6855 (imapd-names.ts, ENABLE in cmd-misc.ts, UTF8 APPEND)
  if (!s.compressed) caps.push('COMPRESS=DEFLATE');
  return caps;
}
