/**
 * cmd-urlauth - URLAUTH (RFC 4467): GENURLAUTH, RESETKEY and URLFETCH, so a client can hand a
 * message of its mailbox to another party (the submission server's BURL, RFC 4468) by URL.
 * Offered (CAPABILITY URLAUTH) when dovecot.conf sets imap_urlauth_host and mail_attribute_dict,
 * as Dovecot offers it only with imap_urlauth_host.
 *
 *   GENURLAUTH "imap://USER@HOST/MBOX;UIDVALIDITY=N/;UID=N;URLAUTH=ACCESS" INTERNAL
 *     → * GENURLAUTH "...;URLAUTH=ACCESS:internal:TOKEN"       (§6.1)
 *     TOKEN = "01" then the hex HMAC-SHA1 of the rump URL with the mailbox's access key, as
 *     Dovecot 2.3 makes it: a URL made by either server works with the other on the same files
 *   RESETKEY [MAILBOX [INTERNAL]]   new key for MAILBOX; without one, every key is removed (§6.2)
 *   URLFETCH URL...                 → * URLFETCH "URL" {N} message-or-NIL per URL (§6.3)
 *
 * Keys: one random 64-byte key per mailbox, created by the first GENURLAUTH, kept as the
 * mailbox's private attribute vendor/vendor.dovecot/imap-urlauth in mail_attribute_dict, in
 * hex — where and how Dovecot's imap-urlauth keeps it. GENURLAUTH for a URL of another user is
 * BAD "Not permitted to generate URLAUTH for user NAME" (Dovecot's text).
 * URLFETCH answers NIL (never an error naming the reason, §6.3) when the URL does not parse,
 * has expired (EXPIRE), the access identifier does not allow this session (anonymous,
 * authuser: any; user+NAME: NAME logged in; submit+NAME: only the submission server's login,
 * `plugin { urlauth_submit_user = submit@example.org }` — not NAME itself, as Dovecot answers
 * NIL to its owner), the owner or mailbox is unknown, the
 * owner has no key, the token does not match, UIDVALIDITY differs or the UID is gone.
 * `/;SECTION=S` gives what FETCH BODY[S] gives; ;PARTIAL= is not supported (the URL is NIL).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { argAstring, argString, ImapParseError } from '../lib-imap/imap-parser.ts';
import { accessAllows, parseUrlauthUrl, type UrlauthUrl } from '../lib-imap/imap-urlauth-url.ts';
import { parseMime, toCrlf } from '../lib-mail/mail-mime.ts';
import { extractSection } from '../lib-mail/mail-section.ts';
import { parseSectionSpec } from '../lib-imap/imap-fetch-args.ts';
import type { MailUser } from '../lib-storage/mail-storage.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';

const KEY_ATTR = 'vendor/vendor.dovecot/imap-urlauth';
/** Dovecot's token: this version byte (hex) then the HMAC. */
const TOKEN_VERSION = '01';
/** URLs per URLFETCH, and the largest message handed out by one (bounded memory). */
const MAX_URLS = 100;
/** Dovecot's key: 64 random bytes (the HMAC-SHA1 block size). */
const KEY_BYTES = 64;

/** As Dovecot echoes a URL: an atom when it can be one, else a quoted string. */
const astring = (s: string) => /^[^\x00-\x20\x7f(){%*"\\\]]+$/.test(s) ? s : `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
const quote = (s: string) => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;

async function mailboxKey(u: MailUser, dict: string, mailbox: string, create: boolean): Promise<Buffer | undefined> {
  const attrs = u.attributes?.(dict);
  if (!attrs) return undefined;
  const hex = await attrs.get(mailbox, 'private', KEY_ATTR);
  if (hex && /^(?:[0-9a-f]{2}){16,128}$/.test(hex)) return Buffer.from(hex, 'hex');
  if (!create) return undefined;
  const key = randomBytes(KEY_BYTES);
  await attrs.set(mailbox, [{ type: 'private', key: KEY_ATTR, value: key.toString('hex') }]);
  return key;
}

function token(key: Buffer, rump: string): string {
  return TOKEN_VERSION + createHmac('sha1', key).update(rump, 'utf8').digest('hex');
}

export async function cmdGenUrlauth(s: ImapSession, c: CommandContext): Promise<Reply> {
  const dict = s.shared.settings.urlauthDict;
  if (!dict) return { status: 'BAD', text: 'Unknown command.' };
  if (c.args.length < 2 || c.args.length % 2 !== 0) throw new ImapParseError('Invalid arguments');
  const out: string[] = [];
  for (let i = 0; i < c.args.length; i += 2) {
    const rump = argAstring(c.args[i], 'URL');
    const mech = argString(c.args[i + 1])?.toUpperCase();
    if (mech !== 'INTERNAL') return { status: 'BAD', text: `Unsupported URLAUTH mechanism: ${mech ?? ''}` };
    const u = parseUrlauthUrl(rump);
    if (!u || u.token !== undefined) return { status: 'BAD', text: `Invalid URL: ${rump.slice(0, 200)}` };
    if (u.user.toLowerCase() !== s.userRecord!.user.toLowerCase()) throw new ImapParseError(`Not permitted to generate URLAUTH for user ${u.user}`);
    if (!(await s.user!.exists(u.mailbox))) return { status: 'NO', code: 'NONEXISTENT', text: `Mailbox doesn't exist: ${u.mailbox}` };
    const key = await mailboxKey(s.user!, dict, u.mailbox, true);
    if (!key) return { status: 'NO', text: 'URLAUTH keys cannot be stored for this mailbox format' };
    out.push(quote(`${rump}:internal:${token(key, rump)}`));
  }
  s.send(`* GENURLAUTH ${out.join(' ')}\r\n`);
  return { status: 'OK', text: 'GENURLAUTH completed.' };
}

export async function cmdResetKey(s: ImapSession, c: CommandContext): Promise<Reply> {
  const dict = s.shared.settings.urlauthDict;
  if (!dict) return { status: 'BAD', text: 'Unknown command.' };
  const attrs = s.user!.attributes?.(dict);
  if (!attrs) return { status: 'NO', text: 'URLAUTH keys cannot be stored for this mailbox format' };
  if (c.args.length === 0) {
    for (const mb of await s.user!.list()) {
      if (await attrs.get(mb.name, 'private', KEY_ATTR).catch(() => undefined)) await attrs.set(mb.name, [{ type: 'private', key: KEY_ATTR, value: undefined }]);
    }
    return { status: 'OK', text: 'All keys removed.' };
  }
  const mailbox = argAstring(c.args[0], 'mailbox');
  for (const a of c.args.slice(1)) {
    if (argString(a)?.toUpperCase() !== 'INTERNAL') return { status: 'BAD', text: 'Unsupported URLAUTH mechanism' };
  }
  if (!(await s.user!.exists(mailbox))) return { status: 'NO', code: 'NONEXISTENT', text: `Mailbox doesn't exist: ${mailbox}` };
  await attrs.set(mailbox, [{ type: 'private', key: KEY_ATTR, value: randomBytes(KEY_BYTES).toString('hex') }]);
  return { status: 'OK', text: 'Key reset completed.' };
}

export async function cmdUrlFetch(s: ImapSession, c: CommandContext): Promise<Reply> {
  const dict = s.shared.settings.urlauthDict;
  if (!dict) return { status: 'BAD', text: 'Unknown command.' };
  if (c.args.length === 0 || c.args.length > MAX_URLS) throw new ImapParseError('Invalid arguments');
  const urls = c.args.map((a) => argAstring(a, 'URL'));
  for (const url of urls) {
    const data = await fetchOne(s, dict, url).catch((e: Error) => {
      s.shared.log.warn(`${s.who()}: URLFETCH: ${e.message}`);
      return undefined;
    });
    if (s.isClosed) break;
    if (data === undefined) s.send(`* URLFETCH ${astring(url)} NIL\r\n`);
    else {
      s.send(`* URLFETCH ${astring(url)} {${data.length}}\r\n`);
      s.send(data);
      s.send('\r\n');
    }
  }
  return { status: 'OK', text: 'URLFETCH completed.' };
}

async function fetchOne(s: ImapSession, dict: string, url: string): Promise<Buffer | undefined> {
  const u = parseUrlauthUrl(url);
  if (!u || u.token === undefined || u.mechanism?.toUpperCase() !== 'INTERNAL') return undefined;
  if (u.expire && u.expire.getTime() <= Date.now()) return undefined;
  if (!accessAllows(u.access, s.userRecord!.user, s.shared.settings.urlauthSubmitUser)) return undefined;
  const own = u.user.toLowerCase() === s.userRecord!.user.toLowerCase();
  let owner: MailUser | undefined = own ? s.user! : undefined;
  if (!owner) {
    const rec = await s.shared.directory.lookup(u.user);
    if (!rec) return undefined;
    owner = await s.shared.store.forUser(rec);
  }
  try {
    return await fetchFrom(owner, dict, u);
  } finally {
    if (!own) await owner.close();
  }
}

async function fetchFrom(owner: MailUser, dict: string, u: UrlauthUrl): Promise<Buffer | undefined> {
  if (!(await owner.exists(u.mailbox))) return undefined;
  const key = await mailboxKey(owner, dict, u.mailbox, false);
  if (!key) return undefined;
  const want = Buffer.from(token(key, u.rump), 'hex');
  const got = Buffer.from(u.token!.toLowerCase(), 'hex');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
  const mb = await owner.open(u.mailbox, { readOnly: true });
  try {
    if (u.uidValidity !== undefined && u.uidValidity !== mb.uidValidity) return undefined;
    if (!mb.byUid(u.uid)) return undefined;
    const raw = toCrlf(await mb.readContent(u.uid));   // as FETCH BODY[] gives it
    if (u.section === undefined) return raw;
    // ;SECTION=: what FETCH BODY[section] gives (RFC 5092 §3; e.g. 2, 1.2, HEADER, 2.MIME, TEXT)
    let spec;
    try { spec = parseSectionSpec(u.section); } catch { return undefined; }
    return extractSection(parseMime(raw), spec);
  } finally {
    await mb.close();
  }
}
