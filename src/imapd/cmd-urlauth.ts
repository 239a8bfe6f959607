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
 * owner has no key, the token does not match, UIDVALIDITY differs or the UID is gone. The URL
 * must name this server as Dovecot checks it: the host exactly imap_urlauth_host (`*`: any),
 * the port (143 when absent) imap_urlauth_port - else GENURLAUTH is BAD and URLFETCH NIL,
 * "Invalid URL: Inappropriate host name" / "... server port".
 * `/;SECTION=S` gives what FETCH BODY[S] gives; `/;PARTIAL=O.L` (RFC 5092 §3.2) cuts that to L
 * octets from O. A URL that is not a full URLAUTH URL, or names an access identifier this
 * session may not use, also gets Dovecot's `* NO Failed to fetch URLAUTH "URL": reason.` after
 * its NIL (the reason says nothing about the mailbox).
 *
 * URLAUTH=BINARY (RFC 5524): `URLFETCH (URL [BODYPARTSTRUCTURE] [BODY | BINARY])` answers
 *   * URLFETCH URL (BODYPARTSTRUCTURE (...) BINARY ~{N}<data>)
 * BODYPARTSTRUCTURE is FETCH BODYSTRUCTURE of the part the URL names (of the whole message for
 * a URL without SECTION or with HEADER/TEXT only); BINARY is FETCH BINARY[part] (the content
 * transfer encoding removed; ~{N} literal8 as Dovecot sends it), ;PARTIAL= applied after the
 * decoding; a list with only the URL means BODY. BODY with BINARY, or an unknown item, is BAD
 * (Dovecot's texts). An encoding that cannot be decoded gives NIL and
 * `* NO [UNKNOWN-CTE] ...` (RFC 3516 §4.3's code). Dovecot 2.3.19 answers the same as Postern
 * where it answers; it aborts the session (assertion failure) for BINARY of a whole message,
 * BINARY of an unknown encoding and BODYPARTSTRUCTURE with BINARY - those follow the RFC here.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { argAstring, argString, ImapParseError, type ImapArg } from '../lib-imap/imap-parser.ts';
import { accessAllows, parseUrlauthUrl, type UrlauthUrl } from '../lib-imap/imap-urlauth-url.ts';
import { parseMime, toCrlf } from '../lib-mail/mail-mime.ts';
import { applyPartial, extractBinary, extractSection, findPart } from '../lib-mail/mail-section.ts';
import { UnknownCteError } from '../lib-mail/mail-decode.ts';
import { imapBodyStructure } from '../lib-imap/imap-bodystructure.ts';
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

/**
 * Dovecot's check of the URL's server: the host exactly as imap_urlauth_host (`*`: any), the port
 * (143 when absent) as imap_urlauth_port. The reason, or undefined when the URL names this server.
 */
function serverMismatch(s: ImapSession, u: UrlauthUrl): string | undefined {
  const host = s.shared.settings.urlauthHost ?? '*';
  if (host !== '*' && u.host !== host) return 'Invalid URL: Inappropriate host name';
  if ((u.port ?? 143) !== (s.shared.settings.urlauthPort ?? 143)) return 'Invalid URL: Inappropriate server port';
  return undefined;
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
    if (/\/;PARTIAL=\d+\.0+(?:;|$)/i.test(rump)) throw new ImapParseError('Invalid URL: PARTIAL size cannot be zero');
    if (!u || u.token !== undefined) return { status: 'BAD', text: `Invalid URL: ${rump.slice(0, 200)}` };
    if (u.user.toLowerCase() !== s.userRecord!.user.toLowerCase()) throw new ImapParseError(`Not permitted to generate URLAUTH for user ${u.user}`);
    const wrongServer = serverMismatch(s, u);
    if (wrongServer) throw new ImapParseError(wrongServer);
    if (!(await s.user!.exists(u.mailbox))) return { status: 'NO', code: 'NONEXISTENT', text: `Mailbox doesn't exist: ${u.mailbox}` };
    // Dovecot checks what the URL names when it signs it
    if (u.expire && u.expire.getTime() <= Date.now()) throw new ImapParseError('URLAUTH has already expired');
    const mb = await s.user!.open(u.mailbox, { readOnly: true });
    try {
      if (u.uidValidity !== undefined && u.uidValidity !== mb.uidValidity) throw new ImapParseError('Invalid URL: Invalid UIDVALIDITY');
      if (!mb.byUid(u.uid)) throw new ImapParseError('Invalid URL: Message not found');
    } finally { await mb.close(); }
    const key = await mailboxKey(s.user!, dict, u.mailbox, true);
    if (!key) return { status: 'NO', text: 'URLAUTH keys cannot be stored for this mailbox format' };
    out.push(quote(`${rump}:internal:${token(key, rump)}`));
  }
  s.send(`* GENURLAUTH ${out.join(' ')}\r\n`);
  return { status: 'OK', text: 'GENURLAUTH completed' };
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

/** What one URLFETCH argument asks for (RFC 5524 §3). */
interface UrlFetchItems {
  url: string;
  /** Given as a list: the extended answer. */
  extended: boolean;
  body: boolean;
  binary: boolean;
  bodyPartStructure: boolean;
}

/** One argument: a URL, or a list of a URL and fetch items (Dovecot's checks and texts). */
function parseFetchArg(a: ImapArg): UrlFetchItems {
  if (a.type !== 'list') return { url: argAstring(a, 'URL'), extended: false, body: true, binary: false, bodyPartStructure: false };
  const out: UrlFetchItems = { url: argAstring(a.items[0], 'URL'), extended: true, body: false, binary: false, bodyPartStructure: false };
  for (const it of a.items.slice(1)) {
    const name = it.type === 'atom' || it.type === 'number' ? String(it.type === 'atom' ? it.value : it.raw) : undefined;
    if (name === undefined) throw new ImapParseError('Invalid URL fetch parameter');
    switch (name.toUpperCase()) {
      case 'BODY': out.body = true; break;
      case 'BINARY': out.binary = true; break;
      case 'BODYPARTSTRUCTURE': out.bodyPartStructure = true; break;
      default: throw new ImapParseError(`Unknown URL fetch parameter: ${name}`);
    }
  }
  if (out.body && out.binary) throw new ImapParseError('URL cannot have both BODY and BINARY fetch parameters');
  if (!out.body && !out.binary && !out.bodyPartStructure) out.body = true;
  return out;
}

/** What a URL gives: data (BODY or BINARY) and the part's BODYSTRUCTURE, or a failure (NIL). */
type FetchResult =
  | { ok: true; data?: Buffer; literal8: boolean; bodyPartStructure?: Buffer }
  | { ok: false; error?: string };

export async function cmdUrlFetch(s: ImapSession, c: CommandContext): Promise<Reply> {
  const dict = s.shared.settings.urlauthDict;
  if (!dict) return { status: 'BAD', text: 'Unknown command.' };
  if (c.args.length === 0 || c.args.length > MAX_URLS) throw new ImapParseError('Invalid arguments');
  const args = c.args.map(parseFetchArg);   // every argument checked before any answer
  for (const it of args) {
    const r = await fetchOne(s, dict, it).catch((e: Error): FetchResult => {
      s.shared.log.warn(`${s.who()}: URLFETCH: ${e.message}`);
      return { ok: false };
    });
    if (s.isClosed) break;
    const head = `* URLFETCH ${astring(it.url)}`;
    if (!r.ok) {
      s.send(`${head} NIL\r\n${r.error ? `* NO ${r.error}.\r\n` : ''}`);
      continue;
    }
    if (!it.extended) {
      s.send(`${head} {${r.data!.length}}\r\n`);
      s.send(r.data!);
      s.send('\r\n');
      continue;
    }
    const parts: Buffer[] = [Buffer.from(`${head} (`)];
    if (r.bodyPartStructure) parts.push(Buffer.from('BODYPARTSTRUCTURE '), r.bodyPartStructure);
    if (r.data) {
      const lit = `${it.binary ? 'BINARY ' : 'BODY '}${it.binary && r.literal8 ? '~' : ''}{${r.data.length}}\r\n`;
      parts.push(Buffer.from(`${r.bodyPartStructure ? ' ' : ''}${lit}`), r.data);
    }
    parts.push(Buffer.from(')\r\n'));
    s.send(Buffer.concat(parts));
  }
  return { status: 'OK', text: 'URLFETCH completed' };
}

async function fetchOne(s: ImapSession, dict: string, it: UrlFetchItems): Promise<FetchResult> {
  const url = it.url;
  const fail = (why: string): FetchResult => ({ ok: false, error: `Failed to fetch URLAUTH ${quote(url)}: ${why}` });
  if (!/^[a-z][a-z0-9+.-]*:/i.test(url)) return fail('Relative URL not allowed');
  const u = parseUrlauthUrl(url);
  if (!u || u.token === undefined) return fail('Invalid URL: Must be a full URLAUTH URL');
  const wrongServer = serverMismatch(s, u);
  if (wrongServer) return fail(wrongServer);
  if (u.mechanism?.toUpperCase() !== 'INTERNAL') return { ok: false };
  if (u.expire && u.expire.getTime() <= Date.now()) return { ok: false };
  if (!accessAllows(u.access, s.userRecord!.user, s.shared.settings.urlauthSubmitUser)) {
    let who = u.access;
    try { who = decodeURIComponent(u.access); } catch { /* shown as given */ }
    return fail(`No '${who}' access allowed for user ${s.userRecord!.user}`);
  }
  const own = u.user.toLowerCase() === s.userRecord!.user.toLowerCase();
  let owner: MailUser | undefined = own ? s.user! : undefined;
  if (!owner) {
    const rec = await s.shared.directory.lookup(u.user);
    if (!rec) return { ok: false };
    owner = await s.shared.store.forUser(rec);
  }
  try {
    return await fetchFrom(owner, dict, u, it);
  } finally {
    if (!own) await owner.close();
  }
}

async function fetchFrom(owner: MailUser, dict: string, u: UrlauthUrl, it: UrlFetchItems): Promise<FetchResult> {
  if (!(await owner.exists(u.mailbox))) return { ok: false };
  const key = await mailboxKey(owner, dict, u.mailbox, false);
  if (!key) return { ok: false };
  const want = Buffer.from(token(key, u.rump), 'hex');
  const got = Buffer.from(u.token!.toLowerCase(), 'hex');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return { ok: false };
  const mb = await owner.open(u.mailbox, { readOnly: true });
  try {
    if (u.uidValidity !== undefined && u.uidValidity !== mb.uidValidity) return { ok: false };
    if (!mb.byUid(u.uid)) return { ok: false };
    const raw = toCrlf(await mb.readContent(u.uid));   // as FETCH BODY[] gives it
    // ;SECTION=: what FETCH BODY[section] gives (RFC 5092 §3; e.g. 2, 1.2, HEADER, 2.MIME, TEXT)
    let spec;
    try { spec = u.section === undefined ? { path: [] } : parseSectionSpec(u.section); } catch { return { ok: false }; }
    const msg = parseMime(raw);
    const out: FetchResult = { ok: true, literal8: false };
    if (it.bodyPartStructure) {
      const part = findPart(msg, spec.path);
      if (!part) return { ok: false, error: `Failed to read URLAUTH ${quote(u.url)}: Message part not found` };
      out.bodyPartStructure = imapBodyStructure({ ...msg, root: part }, true);
    }
    if (it.binary && spec.text === undefined) {
      let b;
      try { b = extractBinary(msg, spec.path); } catch (e) {
        if (e instanceof UnknownCteError) return { ok: false, error: `[UNKNOWN-CTE] Failed to read URLAUTH ${quote(u.url)}: Unknown Content-Transfer-Encoding` };
        throw e;
      }
      out.data = b.data;
      out.literal8 = b.literal8;
    } else if (it.body || it.binary) {
      out.data = u.section === undefined ? raw : extractSection(msg, spec);
      out.literal8 = out.data.includes(0);
    }
    if (out.data && u.partial) {
      out.data = applyPartial(out.data, u.partial.offset, u.partial.length); // after decoding; literal8 kept (Dovecot: `~{0}`)
    }
    return out;
  } finally {
    await mb.close();
  }
}
